/**
 * Per-item costs of the queue's hot paths on one thread, with no worker and
 * so no cache-line traffic: the instruction cost alone. Each round fills a
 * 1024-node producer slot and drains it again; only the operation under test
 * is inside the clock, and a round's time is divided by its 1024 items.
 *
 * - `drain`: `MpscQueue.drain(1024, fn)` over a pre-filled backlog of 1024
 *   (one `Atomics.load` per item, the last item's stub dance, one release
 *   publish), with a callback that sums the values.
 * - `push`: 1024 × `Producer.push` (2 atomics each).
 * - `push + wake`: the same, each followed by a lazy `wake` with nobody
 *   waiting (1 more `Atomics.load`): the producer's cost in the stream.
 * - `pushBatch 64`: 16 chains of 64 (2 atomics per chain).
 * - `push + drain(1)`: the consumer at the producer's heels: each item is
 *   pushed and drained alone, so every pop is the queue's last and pays for
 *   putting the stub back (the exchange on `TAIL`) and a release publish.
 *
 * @module
 */

import {
  MpscQueue,
  Producer,
  PUSH_FULL,
  type QueueEntry,
  wake,
} from "../mod.ts";
import { ITEM_TAG } from "./protocol.ts";
import { summarize, type Summary } from "./stats.ts";

/** Items per round: the backlog the drain cost is quoted at. */
export const BACKLOG = 1024;

/** What one round measures. */
export type CostKind =
  | "drain"
  | "push"
  | "pushWake"
  | "pushBatch64"
  | "pushDrainOne";

/** Nanoseconds per item of each operation. */
export type ItemCosts = Record<CostKind, Summary>;

const BATCH = 64;

/**
 * Measures every {@linkcode CostKind}.
 *
 * @param rounds Measured rounds per kind (after as many warm-up rounds).
 * @returns Nanoseconds per item: median and range over the rounds.
 * @throws {Error} An item came back wrong.
 */
export function measureItemCosts(rounds: number): ItemCosts {
  const q = MpscQueue.create({
    producers: 1,
    nodesPerProducer: BACKLOG,
    bytesPerProducer: 0,
  });
  const p = Producer.attach(q.buffer);
  const w = new Int32Array(q.buffer);
  const tags = new Int32Array(BATCH).fill(ITEM_TAG);
  const as = new Int32Array(BATCH);
  const bs = new Int32Array(BATCH);
  let sum = 0;
  const onItem = (e: QueueEntry) => {
    sum += e.a;
  };

  const fill = (kind: CostKind): void => {
    let full = false;
    if (kind === "pushBatch64") {
      for (let i = 0; i < BACKLOG; i += BATCH) {
        for (let j = 0; j < BATCH; j++) as[j] = i + j;
        full ||= p.pushBatch(tags, as, bs, BATCH) === PUSH_FULL;
      }
    } else if (kind === "pushWake") {
      for (let i = 0; i < BACKLOG; i++) {
        full ||= p.push(ITEM_TAG, i, 0) === PUSH_FULL;
        wake(w, true);
      }
    } else {
      for (let i = 0; i < BACKLOG; i++) {
        full ||= p.push(ITEM_TAG, i, 0) === PUSH_FULL;
      }
    }
    if (full) throw new Error("Cannot measure costs: producer slot was full");
  };
  const drain = (): void => {
    sum = 0;
    const n = q.drain(BACKLOG, onItem);
    if (n !== BACKLOG || sum !== (BACKLOG * (BACKLOG - 1)) / 2) {
      throw new Error(`Cannot measure costs: drained ${n} items, sum ${sum}`);
    }
  };

  const round = (kind: CostKind): number => {
    if (kind === "pushDrainOne") {
      sum = 0;
      const t0 = performance.now();
      for (let i = 0; i < BACKLOG; i++) {
        if (p.push(ITEM_TAG, i, 0) === PUSH_FULL || q.drain(1, onItem) !== 1) {
          throw new Error("Cannot measure costs: push and drain of one failed");
        }
      }
      return performance.now() - t0;
    }
    if (kind === "drain") {
      fill("push");
      const t0 = performance.now();
      drain();
      return performance.now() - t0;
    }
    const t0 = performance.now();
    fill(kind);
    const ms = performance.now() - t0;
    drain();
    return ms;
  };

  const kinds: CostKind[] = [
    "drain",
    "push",
    "pushWake",
    "pushBatch64",
    "pushDrainOne",
  ];
  const samples = new Map<CostKind, number[]>(kinds.map((k) => [k, []]));
  for (let r = 0; r < 2 * rounds; r++) {
    for (const kind of kinds) {
      const ns = (round(kind) * 1e6) / BACKLOG;
      if (r >= rounds) samples.get(kind)!.push(ns);
    }
  }
  return Object.fromEntries(
    kinds.map((k) => [k, summarize(samples.get(k)!)]),
  ) as ItemCosts;
}
