/**
 * Where an I/O worker's completions go (`io_worker_thread.ts`): the
 * {@linkcode CompletionSink} interface and the default sink, the worker's
 * port slot of the loop's queue. A worker module passes another sink to
 * `serveIoWorker` to route completions elsewhere (a benchmark baseline
 * queue, a test double); the loop side must then hand the items it drains
 * to `IoWorker.deliver`.
 *
 * A sink runs on the worker's thread only. Whatever it publishes must be
 * visible to the loop before the loop can see that it was published (for
 * the queue: the push's `Atomics.exchange`, see `mpsc_queue.ts`), and it
 * must wake the loop as the wake protocol says (`wake.ts`).
 *
 * @module
 */

import { type Producer, PUSH_FULL } from "../producer.ts";
import { wake } from "../wake.ts";

/**
 * Where a worker's completions go. The worker calls `push` once per turn
 * of its event loop with everything it produced in that turn.
 */
export interface CompletionSink {
  /**
   * Publishes items `0 .. n-1` of the three arrays, in order, as many as
   * fit, and wakes the loop if it must. Never throws.
   *
   * @param tags Item tags (`io_worker_protocol.ts`).
   * @param as First words.
   * @param bs Second words.
   * @param n Items to publish.
   * @returns How many were published (a prefix); fewer than `n` means
   *   full: the worker retries the rest shortly.
   */
  push(
    tags: readonly number[],
    as: readonly number[],
    bs: readonly number[],
    n: number,
  ): number;
}

/** What a sink factory gets. */
export interface SinkContext {
  /** The worker's port slot of the loop's queue. */
  readonly producer: Producer;
  /** `Int32Array` view of the loop's queue buffer (its wake word). */
  readonly queueWords: Int32Array;
  /** `IoWorkerOptions.sinkData`, as cloned into this worker. */
  readonly data: unknown;
}

/**
 * The default sink: the worker's port slot of the loop's queue, one
 * `pushBatch` (2 atomics) and one lazy wake per call.
 *
 * @param context The worker's producer and the queue's words.
 * @returns The sink.
 */
export function queueSink(context: SinkContext): CompletionSink {
  const p = context.producer;
  const w = context.queueWords;
  return {
    push(tags, as, bs, n) {
      const k = Math.min(n, p.freeNodes());
      if (k === 0 || p.pushBatch(tags, as, bs, k) === PUSH_FULL) return 0;
      wake(w, true); // one lazy wake per batch
      return k;
    },
  };
}
