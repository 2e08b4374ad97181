/**
 * The three queues the bursty section compares, behind one small interface,
 * and the handshake by which the main thread asks a worker for a burst.
 *
 * A burst round: the main thread writes the item count to `B_ITEMS`, then
 * the round number to `B_ROUND` (atomic store, notify); the worker pushes
 * that many items and stores the round number in `B_DONE` (atomic store,
 * notify). Meanwhile the main thread, the consumer, waits on `B_DONE`: the
 * consumer sleeps while the backlog builds.
 *
 * | word (index)   | name                  | written by          | read by |
 * | -------------- | --------------------- | ------------------- | ------- |
 * | `B_ROUND` (0)  | round to push, or STOP| main thread         | worker  |
 * | `B_ITEMS` (1)  | items in that round   | main (plain, before `B_ROUND`) | worker |
 * | `B_DONE` (32)  | last round pushed     | worker              | main    |
 *
 * `B_DONE` sits on its own line so the worker's writes never share a line
 * with the main thread's.
 *
 * @module
 */

import { MpscQueue, Producer, type PushResult } from "../mod.ts";
import { AtomicLinkConsumer } from "./baselines/atomic_link_consumer.ts";
import { LockRing, LockRingProducer } from "./baselines/lock_ring.ts";
import { TreiberProducer, TreiberStack } from "./baselines/treiber_stack.ts";
import { ITEM_TAG } from "./protocol.ts";

/**
 * Which queue. `twloopAtomic` is twloop's buffer and producers with the
 * consumer it had before batch acquire (`baselines/atomic_link_consumer.ts`);
 * only the drain-gap section uses it.
 */
export type BurstKind = "twloop" | "twloopAtomic" | "treiber" | "lockRing";

/** The kinds the bursty section compares, in report order. */
export const BURST_KINDS: readonly BurstKind[] = [
  "twloop",
  "treiber",
  "lockRing",
];

/** Row labels. */
export const BURST_LABELS: Record<BurstKind, string> = {
  twloop: "twloop MpscQueue",
  twloopAtomic: "twloop, 1 atomic per pop",
  treiber: "Treiber + reversal",
  lockRing: "lock + ring",
};

/** What the section needs from a consumer: `MpscQueue.drain`'s shape. */
export interface BurstConsumer {
  /** Runs `fn` on at most `limit` items; returns how many ran. */
  drain(limit: number, fn: (e: { a: number }) => void): number;
}

/** What a burst producer does: push one value, in order. */
export interface BurstProducer {
  /** Pushes `a` (tag {@linkcode ITEM_TAG}, second word 0). */
  push(a: number): PushResult;
}

/** A queue of some kind: its buffer and its consumer. */
export interface BurstQueue {
  /** The kind. */
  kind: BurstKind;
  /** Shared buffer, for producers. */
  buffer: SharedArrayBuffer;
  /** The consumer (the queue object itself, not a wrapper). */
  consumer: BurstConsumer;
}

/**
 * Creates a queue with room for `capacity` items from one producer.
 *
 * @param kind Which queue.
 * @param capacity Items, a power of two.
 * @returns The queue.
 */
export function createBurstQueue(
  kind: BurstKind,
  capacity: number,
): BurstQueue {
  if (kind === "twloop") {
    const q = MpscQueue.create({
      producers: 1,
      nodesPerProducer: capacity,
      bytesPerProducer: 0,
    });
    return { kind, buffer: q.buffer, consumer: q };
  }
  if (kind === "twloopAtomic") {
    const q = MpscQueue.create({
      producers: 1,
      nodesPerProducer: capacity,
      bytesPerProducer: 0,
    });
    return {
      kind,
      buffer: q.buffer,
      consumer: new AtomicLinkConsumer(q.buffer),
    };
  }
  if (kind === "treiber") {
    const q = TreiberStack.create({ producers: 1, nodesPerProducer: capacity });
    return { kind, buffer: q.buffer, consumer: q };
  }
  const q = LockRing.create(capacity);
  return { kind, buffer: q.buffer, consumer: q };
}

/**
 * Attaches a producer of the given kind (the wrapper costs one call per
 * push; pushes are not timed in the bursty section).
 *
 * @param kind Which queue.
 * @param buffer Its buffer.
 * @returns The producer.
 */
export function attachBurstProducer(
  kind: BurstKind,
  buffer: SharedArrayBuffer,
): BurstProducer {
  if (kind === "twloop" || kind === "twloopAtomic") {
    const p = Producer.attach(buffer);
    return { push: (a) => p.push(ITEM_TAG, a, 0) };
  }
  if (kind === "treiber") {
    const p = TreiberProducer.attach(buffer);
    return { push: (a) => p.push(ITEM_TAG, a, 0) };
  }
  const p = LockRingProducer.attach(buffer);
  return { push: (a) => p.push(a, 0) };
}

/** Control word: round the worker should push, or {@linkcode B_STOP}. */
export const B_ROUND = 0;
/** Control word: items in the round. */
export const B_ITEMS = 1;
/** Control word: last round the worker finished pushing. */
export const B_DONE = 32;
/** `B_ROUND` value: the worker returns. */
export const B_STOP = -1;
/** Bytes of the control buffer (two lines). */
export const BURST_CONTROL_BYTES = 256;

/** Job for `workers/burst_producer.ts`. */
export interface BurstJob {
  /** Which queue. */
  kind: BurstKind;
  /** Its buffer. */
  queue: SharedArrayBuffer;
  /** The control buffer (see the table above). */
  control: SharedArrayBuffer;
}

/** Spin this long on a handshake word before sleeping on it, ms. */
const SPIN_MS = 0.05;

/**
 * Waits until `w[at]` holds `want` or {@linkcode B_STOP}: a short spin,
 * then `Atomics.wait`.
 *
 * @param w Control view.
 * @param at Word index.
 * @param want Value to wait for.
 * @param timeoutMs Give up after this long.
 * @returns The value seen.
 * @throws {Error} The value did not come in time.
 */
export function awaitWord(
  w: Int32Array,
  at: number,
  want: number,
  timeoutMs: number,
): number {
  const t0 = performance.now();
  for (;;) {
    const v = Atomics.load(w, at);
    if (v === want || v === B_STOP) return v;
    const waited = performance.now() - t0;
    if (waited > timeoutMs) {
      throw new Error(
        `Cannot run burst: control word ${at} stayed ${v}, expected ${want}`,
      );
    }
    if (waited > SPIN_MS) Atomics.wait(w, at, v, timeoutMs - waited);
  }
}
