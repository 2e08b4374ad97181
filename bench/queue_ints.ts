/**
 * The queue side of the integer stream: one producer worker pushes the
 * integers 0 to n-1 into a twloop queue, the main thread consumes them with
 * `MpscQueue.drain` and sleeps with `Waiter.sleep` when the queue is empty.
 * Every item's tag and value are checked against the expected sequence, and
 * the count and the sum are checked at the end.
 *
 * @module
 */

import {
  MpscQueue,
  type QueueConfig,
  type QueueEntry,
  Waiter,
} from "../mod.ts";
import { Backoff, SPIN_BUDGET_MS } from "./backoff.ts";
import {
  CONTROL_BYTES,
  ITEM_TAG,
  type QueueJob,
  startRun,
} from "./protocol.ts";
import { awaitReport, prepareWorker } from "./worker_control.ts";

/**
 * The queue the stream runs through: one producer slot of 1024 nodes (the
 * default size), no payload ring (integers only).
 */
export const STREAM_QUEUE: Readonly<QueueConfig> = Object.freeze({
  producers: 1,
  nodesPerProducer: 16384,
  bytesPerProducer: 0,
});

/** Items per `drain` call: the loop's `maxEvents`. */
export const DRAIN_LIMIT = 256;

/**
 * Items the sleeping consumer waits for before it wants a wake: the slot
 * less 256 nodes, which leave the producer room for ~10-40 µs of pushes
 * while the consumer wakes up (p50 ~5 µs, DESIGN.md). A lazy `wake` counts
 * one per call, so a batch counts once: the threshold in calls is this
 * divided by the batch length. Measured on 500,000-item streams (2 vCPU):
 * 256 gave 2.6x more sleeps and ~30% fewer msg/s than 768; 1024 (the whole
 * slot) was no better than 768.
 */
export const WAKE_ITEMS = STREAM_QUEUE.nodesPerProducer - 4096;

/** The seed's min-wait: after this, any add wakes the consumer. */
export const MIN_WAIT_MS = 1;

/** Settings of one queue stream run; defaults are the constants above. */
export interface StreamOptions {
  /** Nodes in the producer's slot (a power of two). */
  nodesPerProducer?: number;
  /** Items per `drain` call. */
  drainLimit?: number;
  /** Items the sleeping consumer waits for. */
  wakeItems?: number;
  /** Spin budget of both sides' backoff, ms. */
  spinBudgetMs?: number;
}

/** A sleep longer than this with nothing arriving means the run is stuck. */
const STALL_MS = 20_000;

/** One stream run, as the consumer saw it. */
export interface StreamSample {
  /** From the start signal to the last item received, in milliseconds. */
  ms: number;
  /** Items per second over `ms`. */
  perSecond: number;
  /** Times the consumer blocked in `Atomics.wait`. */
  sleeps: number;
  /** Time the consumer spent in `Waiter.sleep`, ms. */
  sleepMs: number;
  /** Notifies the producer sent. */
  wakes: number;
  /** Consumer pauses because a push was mid-window. */
  busy: number;
  /** Producer pauses because its slot was full. */
  fullStalls: number;
  /** The producer's own time from the start signal to its last push, ms. */
  pushMs: number;
  /** Of `pushMs`, time the producer spent pausing on a full slot, ms. */
  fullMs: number;
}

/**
 * Checks a finished stream; throws on any loss, duplicate or reordering.
 *
 * @param what Which transport, for the message.
 * @param count Items sent.
 * @param received Items received.
 * @param wrong Items whose value or tag was not the expected one.
 * @param sum Sum of the values received.
 * @throws {Error} Delivery was not exactly 0..count-1 in order.
 */
export function verifyStream(
  what: string,
  count: number,
  received: number,
  wrong: number,
  sum: number,
): void {
  const expected = (count * (count - 1)) / 2;
  if (received !== count || wrong !== 0 || sum !== expected) {
    throw new Error(
      `Cannot trust ${what} run: received ${received} of ${count} items, ` +
        `${wrong} out of order or mistagged, sum ${sum} (expected ${expected})`,
    );
  }
}

/** Worker script that {@linkcode runQueueStream} expects. */
export const QUEUE_PRODUCER = "./workers/queue_producer.ts";

/**
 * Streams `count` integers from a worker through a fresh queue.
 *
 * @param worker An idle worker running {@linkcode QUEUE_PRODUCER}.
 * @param count Items to send.
 * @param batch 1 for `push`, or the `pushBatch` chain length.
 * @param options Queue size and consumer settings.
 * @returns The measurement.
 * @throws {Error} Delivery failed verification, or the run stalled.
 */
export async function runQueueStream(
  worker: Worker,
  count: number,
  batch: number,
  options: StreamOptions = {},
): Promise<StreamSample> {
  const nodesPerProducer = options.nodesPerProducer ??
    STREAM_QUEUE.nodesPerProducer;
  const drainLimit = options.drainLimit ?? DRAIN_LIMIT;
  const wakeItems = options.wakeItems ?? WAKE_ITEMS;
  const spinBudgetMs = options.spinBudgetMs ?? SPIN_BUDGET_MS;
  const q = MpscQueue.create({ ...STREAM_QUEUE, nodesPerProducer });
  const waiter = new Waiter(q.buffer);
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const job: QueueJob = {
    queue: q.buffer,
    memory: q.memory,
    control,
    count,
    batch,
    spinBudgetMs,
  };
  await prepareWorker(worker, job);

  let received = 0;
  let wrong = 0;
  let sum = 0;
  const onItem = (e: QueueEntry) => {
    const v = e.a;
    if (v !== received || e.tag !== ITEM_TAG) wrong++;
    received++;
    sum += v;
  };
  const k = Math.max(1, Math.floor(wakeItems / batch));
  const backoff = new Backoff(spinBudgetMs);
  let sleepMs = 0;

  const t0 = performance.now();
  startRun(control);
  while (received < count) {
    if (q.drain(drainLimit, onItem) > 0) backoff.reset();
    if (received >= count) break;
    const state = q.lastState;
    if (state === "busy") {
      // A push is between its exchange and its link: never sleep on it.
      backoff.pause();
      if (backoff.stalledMs() > STALL_MS) break;
    } else if (state === "empty") {
      backoff.reset();
      const before = performance.now();
      const r = waiter.sleep(k, STALL_MS, MIN_WAIT_MS);
      sleepMs += performance.now() - before;
      if (r === "timed-out") break;
    }
  }
  const ms = performance.now() - t0;

  const report = await awaitReport(worker, STALL_MS);
  // Anything still queued after the producer finished is a duplicate.
  q.drain(Infinity, onItem);
  verifyStream(`queue (batch ${batch})`, count, received, wrong, sum);
  return {
    ms,
    perSecond: count / (ms / 1000),
    sleeps: waiter.sleeps,
    sleepMs,
    wakes: report.wakes,
    busy: backoff.pauses,
    fullStalls: report.fullStalls,
    pushMs: report.pushMs,
    fullMs: report.fullMs,
  };
}
