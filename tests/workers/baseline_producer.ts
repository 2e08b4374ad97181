/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the concurrent case of `tests/baselines_test.ts`: for
 * each job, attaches a producer of the job's queue kind, posts `"ready"`,
 * waits for the start word, pushes `count` items (`a` = sequence number,
 * `b` = the worker's id), retrying on a full queue with a short sleep on a
 * private word, then posts `"done"` (or `{ error }`).
 *
 * @module
 */

import { PUSH_FULL } from "../../mod.ts";
import type { BurstKind } from "../../bench/burst_queues.ts";
import { LockRingProducer } from "../../bench/baselines/lock_ring.ts";
import { TreiberProducer } from "../../bench/baselines/treiber_stack.ts";
import { Producer } from "../../runtime/mpsc_queue.ts";

/** One run's instructions. */
export interface BaselineJob {
  kind: BurstKind;
  buffer: SharedArrayBuffer;
  /** Word 0: 0 until the consumer says start. */
  start: SharedArrayBuffer;
  id: number;
  count: number;
}

/** Give up after this long without being able to push. */
const STALL_MS = 5_000;

function pusher(job: BaselineJob): (a: number, b: number) => number {
  if (job.kind === "twloop" || job.kind === "twloopAtomic") {
    const p = Producer.attach(job.buffer);
    return (a, b) => p.push(1, a, b);
  }
  if (job.kind === "treiber") {
    const p = TreiberProducer.attach(job.buffer);
    return (a, b) => p.push(1, a, b);
  }
  const p = LockRingProducer.attach(job.buffer);
  return (a, b) => p.push(a, b);
}

self.onmessage = (ev: MessageEvent<BaselineJob>) => {
  const job = ev.data;
  try {
    const push = pusher(job);
    const start = new Int32Array(job.start);
    const nap = new Int32Array(new SharedArrayBuffer(4));
    self.postMessage("ready");
    while (Atomics.load(start, 0) === 0) Atomics.wait(start, 0, 0, 100);
    for (let i = 0; i < job.count; i++) {
      const since = performance.now();
      while (push(i, job.id) === PUSH_FULL) {
        if (performance.now() - since > STALL_MS) {
          throw new Error(`worker ${job.id}: queue stayed full at item ${i}`);
        }
        Atomics.wait(nap, 0, 0, 0.02);
      }
    }
    self.postMessage("done");
  } catch (e) {
    self.postMessage({ error: String(e) });
  }
};
