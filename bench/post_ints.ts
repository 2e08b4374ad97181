/**
 * The `postMessage` baseline of the integer stream: one worker posts the
 * integers 0 to n-1, one message each; the main thread's `onmessage` checks
 * and counts them. Same start signal and same checks as the queue stream.
 *
 * @module
 */

import {
  CONTROL_BYTES,
  type PostJob,
  type ProducerReport,
  startRun,
} from "./protocol.ts";
import type { StreamSample } from "./queue_ints.ts";
import { verifyStream } from "./queue_ints.ts";
import { isReport, prepareWorker } from "./worker_control.ts";

/** A run taking longer than this is reported as stuck. */
const STALL_MS = 60_000;

/** Worker script that {@linkcode runPostStream} expects. */
export const POST_PRODUCER = "./workers/post_producer.ts";

/**
 * Streams `count` integers from a worker with `postMessage`.
 *
 * @param worker An idle worker running {@linkcode POST_PRODUCER}.
 * @param count Items to send.
 * @returns The measurement (queue-only fields are 0).
 * @throws {Error} Delivery failed verification, or the run stalled.
 */
export async function runPostStream(
  worker: Worker,
  count: number,
): Promise<StreamSample> {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const job: PostJob = { control, count };
  await prepareWorker(worker, job);

  let received = 0;
  let wrong = 0;
  let sum = 0;
  let t1 = NaN;
  const done = Promise.withResolvers<ProducerReport | null>();
  // The producer's report follows its last item on the same port, so
  // items arriving after it would be extras; none may arrive at all.
  worker.onmessage = (ev: MessageEvent<number | ProducerReport>) => {
    const v = ev.data;
    if (typeof v === "number") {
      if (v !== received) wrong++;
      received++;
      sum += v;
      if (received === count) t1 = performance.now();
    } else if (isReport(v)) {
      done.resolve(v);
    }
  };
  worker.onerror = (ev) => {
    ev.preventDefault();
    done.reject(new Error(`Cannot finish postMessage run: ${ev.message}`));
  };
  const stall = setTimeout(() => done.resolve(null), STALL_MS);

  const t0 = performance.now();
  startRun(control);
  let report: ProducerReport | null;
  try {
    report = await done.promise;
  } finally {
    clearTimeout(stall);
  }
  verifyStream("postMessage", count, received, wrong, sum);
  const ms = t1 - t0;
  return {
    ms,
    perSecond: count / (ms / 1000),
    sleeps: 0,
    sleepMs: 0,
    wakes: 0,
    busy: 0,
    fullStalls: 0,
    pushMs: report?.pushMs ?? NaN,
    fullMs: 0,
  };
}
