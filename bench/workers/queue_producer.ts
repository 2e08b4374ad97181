/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the queue stream: attaches to the queue, waits for
 * `GO`, then pushes the integers 0 to count-1 (tag {@linkcode ITEM_TAG},
 * value in `a`, 0 in `b`), one `push` or one `pushBatch` chain at a time,
 * each followed by a lazy `wake`. The last push is followed by an eager wake,
 * so a consumer armed for more lazy adds than remain is not left waiting for
 * its min-wait timer. A full slot means an eager wake (the consumer must be
 * running to free it) and a bounded backoff.
 *
 * @module
 */

import { Producer, PUSH_FULL, wake } from "../../mod.ts";
import { Backoff } from "../backoff.ts";
import {
  ITEM_TAG,
  type ProducerReport,
  type QueueJob,
  READY,
  waitForGo,
} from "../protocol.ts";

/** Give up when the slot stays full this long: the consumer is gone. */
const STALL_MS = 20_000;

/**
 * Called when a push found the slot full: wakes the consumer eagerly, pauses,
 * and gives up if the slot has stayed full too long.
 *
 * @returns 1 if this call sent a notify, else 0.
 */
function waitForSpace(w: Int32Array, backoff: Backoff): number {
  const woke = wake(w, false) ? 1 : 0;
  backoff.pause();
  if (backoff.stalledMs() > STALL_MS) {
    throw new Error("Cannot push: the producer slot stayed full for 20 s");
  }
  return woke;
}

function pushOneByOne(
  p: Producer,
  w: Int32Array,
  count: number,
  backoff: Backoff,
): number {
  let wakes = 0;
  for (let i = 0; i < count; i++) {
    while (p.push(ITEM_TAG, i, 0) === PUSH_FULL) {
      wakes += waitForSpace(w, backoff);
    }
    backoff.reset();
    if (wake(w, true)) wakes++;
  }
  return wakes;
}

function pushInBatches(
  p: Producer,
  w: Int32Array,
  count: number,
  batch: number,
  backoff: Backoff,
): number {
  const tags = new Int32Array(batch).fill(ITEM_TAG);
  const as = new Int32Array(batch);
  const bs = new Int32Array(batch);
  let wakes = 0;
  for (let i = 0; i < count; i += batch) {
    const n = Math.min(batch, count - i);
    for (let j = 0; j < n; j++) as[j] = i + j;
    while (p.pushBatch(tags, as, bs, n) === PUSH_FULL) {
      wakes += waitForSpace(w, backoff);
    }
    backoff.reset();
    if (wake(w, true)) wakes++;
  }
  return wakes;
}

self.onmessage = (ev: MessageEvent<QueueJob>) => {
  const { queue, memory, control, count, batch, spinBudgetMs } = ev.data;
  const p = Producer.attach(memory ?? queue);
  const w = new Int32Array(queue);
  const backoff = new Backoff(spinBudgetMs);
  self.postMessage(READY);
  waitForGo(control);
  const t0 = performance.now();
  let wakes = batch === 1
    ? pushOneByOne(p, w, count, backoff)
    : pushInBatches(p, w, count, batch, backoff);
  if (wake(w, false)) wakes++;
  p.detach();
  const report: ProducerReport = {
    done: true,
    fullStalls: backoff.pauses,
    wakes,
    pushMs: performance.now() - t0,
    fullMs: backoff.pausedMs,
  };
  self.postMessage(report);
};
