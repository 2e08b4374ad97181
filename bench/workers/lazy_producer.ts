/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the lazy-wake section: attaches to the queue, waits for
 * `GO`, then pushes the integers 0 to count-1 one at a time, each followed by
 * a lazy `wake`, and, when the job asks for pacing, by `gapMs` of busy work
 * (a stand-in for the producer's own work between events). The last push is
 * followed by an eager wake so the consumer is not left waiting for its
 * min-wait timer; a full slot means an eager wake and a bounded backoff, as
 * in `queue_producer.ts`.
 *
 * @module
 */

import { Producer, PUSH_FULL, wake } from "../../mod.ts";
import { Backoff } from "../backoff.ts";
import type { LazyJob } from "../lazy_wake.ts";
import {
  ITEM_TAG,
  type ProducerReport,
  READY,
  waitForGo,
} from "../protocol.ts";

/** Give up when the slot stays full this long: the consumer is gone. */
const STALL_MS = 20_000;

/** Busy work until `ms` have passed; returns loop turns, so it is not dead code. */
function work(ms: number): number {
  const until = performance.now() + ms;
  let turns = 0;
  while (performance.now() < until) turns++;
  return turns;
}

self.onmessage = (ev: MessageEvent<LazyJob>) => {
  const { queue, control, count, gapMs, spinBudgetMs } = ev.data;
  const p = Producer.attach(queue);
  const w = new Int32Array(queue);
  const backoff = new Backoff(spinBudgetMs);
  self.postMessage(READY);
  waitForGo(control);
  const t0 = performance.now();
  let wakes = 0;
  let turns = 0;
  for (let i = 0; i < count; i++) {
    while (p.push(ITEM_TAG, i, 0) === PUSH_FULL) {
      if (wake(w, false)) wakes++;
      backoff.pause();
      if (backoff.stalledMs() > STALL_MS) {
        throw new Error("Cannot push: the producer slot stayed full for 20 s");
      }
    }
    backoff.reset();
    if (wake(w, true)) wakes++;
    if (gapMs > 0) turns += work(gapMs);
  }
  if (wake(w, false)) wakes++;
  p.detach();
  const report: ProducerReport & { turns: number } = {
    done: true,
    fullStalls: backoff.pauses,
    wakes,
    pushMs: performance.now() - t0,
    fullMs: backoff.pausedMs,
    turns,
  };
  self.postMessage(report);
};
