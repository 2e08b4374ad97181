/**
 * The bursty section's measuring machinery: a harness per queue and producer
 * side (one queue, one producer, an item callback that checks every item),
 * and the timed rounds. The method is described in `bursty.ts`.
 *
 * @module
 */

import { PUSH_FULL } from "../mod.ts";
import {
  attachBurstProducer,
  awaitWord,
  B_DONE,
  B_ITEMS,
  B_ROUND,
  B_STOP,
  BURST_CONTROL_BYTES,
  type BurstJob,
  type BurstKind,
  type BurstProducer,
  type BurstQueue,
  createBurstQueue,
} from "./burst_queues.ts";
import { summarize } from "./stats.ts";
import { prepareWorker, spawnWorker } from "./worker_control.ts";

/** Where the producer runs: on the consumer's thread or in a worker. */
export type Side = "thread" | "worker";

/** A round not answered within this long means the worker is stuck. */
const ROUND_TIMEOUT_MS = 10_000;

/** What the item callback records. */
export interface Tally {
  /** Value the next item must carry. */
  next: number;
  /** Items seen this round. */
  seen: number;
  /** Items with the wrong value, ever. */
  wrong: number;
  /** Clock reading at the first item of the round, or 0. */
  first: number;
}

/**
 * The item callback of each queue. Separate function literals, so the
 * inline caches of each see only its own queue's entry class: V8 shares
 * feedback between closures of one literal.
 */
function checkerFor(kind: BurstKind, t: Tally): (e: { a: number }) => void {
  if (kind === "twloop") {
    return (e) => {
      if (t.first === 0) t.first = performance.now();
      if (e.a !== t.next) t.wrong++;
      t.next = (t.next + 1) | 0;
      t.seen++;
    };
  }
  if (kind === "twloopAtomic") {
    return (e) => {
      if (t.first === 0) t.first = performance.now();
      if (e.a !== t.next) t.wrong++;
      t.next = (t.next + 1) | 0;
      t.seen++;
    };
  }
  if (kind === "treiber") {
    return (e) => {
      if (t.first === 0) t.first = performance.now();
      if (e.a !== t.next) t.wrong++;
      t.next = (t.next + 1) | 0;
      t.seen++;
    };
  }
  return (e) => {
    if (t.first === 0) t.first = performance.now();
    if (e.a !== t.next) t.wrong++;
    t.next = (t.next + 1) | 0;
    t.seen++;
  };
}

/** One queue with its producer, on one side. */
export interface Harness {
  side: Side;
  queue: BurstQueue;
  tally: Tally;
  onItem: (e: { a: number }) => void;
  /** Queues `items` items (untimed). */
  fill: (items: number) => void;
  /** Stops the worker, if any. */
  close: () => void;
}

/**
 * A queue whose producer is the calling thread.
 *
 * @param kind Which queue.
 * @param capacity Items it holds.
 * @returns The harness.
 */
export function localHarness(kind: BurstKind, capacity: number): Harness {
  const queue = createBurstQueue(kind, capacity);
  const p: BurstProducer = attachBurstProducer(kind, queue.buffer);
  const tally: Tally = { next: 0, seen: 0, wrong: 0, first: 0 };
  let value = 0;
  return {
    side: "thread",
    queue,
    tally,
    onItem: checkerFor(kind, tally),
    fill: (items) => {
      for (let i = 0; i < items; i++) {
        if (p.push(value) === PUSH_FULL) {
          throw new Error(`Cannot queue burst: ${kind} queue full at ${i}`);
        }
        value = (value + 1) | 0;
      }
    },
    close: () => {},
  };
}

/**
 * A queue whose producer is a worker (`workers/burst_producer.ts`).
 *
 * @param kind Which queue.
 * @param capacity Items it holds.
 * @returns The harness, once the worker is ready.
 * @throws {Error} The worker did not start.
 */
export async function workerHarness(
  kind: BurstKind,
  capacity: number,
): Promise<Harness> {
  const queue = createBurstQueue(kind, capacity);
  const control = new SharedArrayBuffer(BURST_CONTROL_BYTES);
  const c = new Int32Array(control);
  const worker = spawnWorker("./workers/burst_producer.ts");
  const job: BurstJob = { kind, queue: queue.buffer, control };
  try {
    await prepareWorker(worker, job);
  } catch (e) {
    worker.terminate();
    throw e;
  }
  let failure = "";
  worker.onerror = (ev) => {
    ev.preventDefault();
    failure = ev.message;
  };
  const tally: Tally = { next: 0, seen: 0, wrong: 0, first: 0 };
  let round = 0;
  return {
    side: "worker",
    queue,
    tally,
    onItem: checkerFor(kind, tally),
    fill: (items) => {
      c[B_ITEMS] = items; // published by the B_ROUND store below
      round++;
      Atomics.store(c, B_ROUND, round);
      Atomics.notify(c, B_ROUND);
      try {
        awaitWord(c, B_DONE, round, ROUND_TIMEOUT_MS);
      } catch (e) {
        throw new Error(`${(e as Error).message} (worker: ${failure || "?"})`);
      }
    },
    close: () => {
      Atomics.store(c, B_ROUND, B_STOP);
      Atomics.notify(c, B_ROUND);
      worker.terminate();
    },
  };
}

/** What the clock itself costs and how finely it ticks. */
export interface ClockProfile {
  /** Median time between two back-to-back `performance.now()` readings, ms. */
  costMs: number;
  /** Smallest step between distinct readings of that gap, ns (resolution). */
  stepNs: number;
}

/**
 * Profiles `performance.now()`: its cost inside each timed interval, and its
 * resolution (gaps between back-to-back readings come in steps of it).
 *
 * @param samples Pairs to take.
 * @returns The profile.
 */
export function profileClock(samples = 20_000): ClockProfile {
  const d = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    d[i] = performance.now() - t0;
  }
  d.sort();
  let stepNs = Infinity;
  for (let i = 1; i < samples; i++) {
    const gap = (d[i] - d[i - 1]) * 1e6;
    if (gap > 2) stepNs = Math.min(stepNs, gap); // below 2 ns: float rounding
  }
  if (!Number.isFinite(stepNs)) {
    // Every pair read the same gap: the clock ticks more coarsely than it
    // costs. Its tick is then the wait for the next distinct reading.
    const t0 = performance.now();
    let t1 = t0;
    while (t1 === t0) t1 = performance.now();
    stepNs = (t1 - t0) * 1e6;
  }
  return { costMs: d[samples >> 1], stepNs };
}

/** One repetition of one cell. */
export interface Sample {
  /** Median over rounds of the first-item time, ns. */
  firstNs: number;
  /** Drain time over all rounds divided by all items, ns. */
  drainNs: number;
}

/**
 * Runs timed rounds: queue `backlog` items (untimed), then drain them in
 * passes of at most `limit`, timing the first item and the whole drain, and
 * check every item.
 *
 * @param h The harness.
 * @param backlog Items per round.
 * @param rounds Rounds.
 * @param limit Items per pass (`Infinity`: uncapped).
 * @param clockMs Clock cost to subtract from each interval.
 * @returns The repetition's figures.
 * @throws {Error} An item was lost, repeated, or out of order.
 */
export function measureRounds(
  h: Harness,
  backlog: number,
  rounds: number,
  limit: number,
  clockMs: number,
): Sample {
  const c = h.queue.consumer;
  const t = h.tally;
  const firsts = new Float64Array(rounds);
  let drainMs = 0;
  for (let r = 0; r < rounds; r++) {
    h.fill(backlog);
    t.first = 0;
    t.seen = 0;
    let got = 0;
    const t0 = performance.now();
    while (got < backlog) {
      const n = c.drain(limit, h.onItem);
      if (n === 0) break;
      got += n;
    }
    const t2 = performance.now();
    firsts[r] = t.first - t0 - clockMs;
    drainMs += t2 - t0 - clockMs;
    const extra = c.drain(Infinity, h.onItem);
    if (t.seen !== backlog || got !== backlog || extra !== 0 || t.wrong > 0) {
      throw new Error(
        `Cannot trust ${h.queue.kind} burst of ${backlog}: ran ${t.seen} ` +
          `(drain said ${got}, then ${extra} more), ${t.wrong} out of order`,
      );
    }
  }
  return {
    firstNs: summarize(Array.from(firsts)).median * 1e6,
    drainNs: (drainMs * 1e6) / (backlog * rounds),
  };
}
