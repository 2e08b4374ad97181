/**
 * What the benchmark's main thread and its worker scripts say to each other:
 * the job messages, the producer's report, and the control buffer that starts
 * a run.
 *
 * A run starts the same way for every transport, so the clock starts at the
 * same point: the worker sets itself up, posts {@linkcode READY}, and blocks
 * in `Atomics.wait` on the `GO` word; the main thread reads the clock, stores
 * 1 in `GO` and notifies. The worker's wake-up latency is thus inside every
 * measurement, equally.
 *
 * | word (index) | name | written by            | read by |
 * | ------------ | ---- | --------------------- | ------- |
 * | `GO` (0)     | go   | main thread, once     | worker  |
 *
 * @module
 */

/** Control word: 0 until the main thread says start, then 1. */
export const GO = 0;
/** Bytes of the control buffer (one 128-byte line, nothing else shares it). */
export const CONTROL_BYTES = 128;

/** Message a worker posts once it is set up and about to wait for `GO`. */
export const READY = "ready";

/** Tag every benchmark item carries in the queue. */
export const ITEM_TAG = 7;

/** Job for `workers/queue_producer.ts`. */
export interface QueueJob {
  /** The queue buffer to attach a producer to. */
  queue: SharedArrayBuffer;
  /** The queue's shared memory, when it has one: attached to instead. */
  memory?: WebAssembly.Memory;
  /** The control buffer (see the table above). */
  control: SharedArrayBuffer;
  /** Items to push: the integers 0 to count-1, in order. */
  count: number;
  /** 1 for `push`, more for `pushBatch` chains of that many items. */
  batch: number;
  /** The producer's backoff spin budget on a full slot, ms. */
  spinBudgetMs: number;
}

/** Job for `workers/post_producer.ts`. */
export interface PostJob {
  /** The control buffer. */
  control: SharedArrayBuffer;
  /** Items to post: the integers 0 to count-1, in order. */
  count: number;
}

/** Job for `workers/ping.ts`. */
export interface PingJob {
  /** One word the two threads bounce a counter through. */
  line: SharedArrayBuffer;
  /** Round trips to answer. */
  rounds: number;
}

/** What a producer worker posts after its last item. */
export interface ProducerReport {
  /** Always true; tells the report apart from item messages. */
  done: true;
  /** Pushes (or batches) refused with PUSH_FULL before they went in. */
  fullStalls: number;
  /** Wakes this producer's `wake` calls claimed (notifies sent). */
  wakes: number;
  /** From `GO` to the last push returning, ms (the producer's own clock). */
  pushMs: number;
  /** Of `pushMs`, time spent pausing on a full slot, ms. */
  fullMs: number;
}

/**
 * Worker side of the start protocol: blocks until `GO` is 1.
 *
 * @param control The control buffer from the job.
 */
export function waitForGo(control: SharedArrayBuffer): void {
  const w = new Int32Array(control);
  // Pairs with the main thread's Atomics.store in startRun().
  while (Atomics.load(w, GO) === 0) Atomics.wait(w, GO, 0);
}

/**
 * Main-thread side of the start protocol: releases the worker.
 *
 * @param control The control buffer sent with the job.
 */
export function startRun(control: SharedArrayBuffer): void {
  const w = new Int32Array(control);
  Atomics.store(w, GO, 1);
  Atomics.notify(w, GO);
}
