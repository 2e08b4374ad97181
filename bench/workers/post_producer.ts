/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the `postMessage` baseline: waits for `GO`, posts the
 * integers 0 to count-1 one message each, then a report.
 *
 * @module
 */

import {
  type PostJob,
  type ProducerReport,
  READY,
  waitForGo,
} from "../protocol.ts";

self.onmessage = (ev: MessageEvent<PostJob>) => {
  const { control, count } = ev.data;
  self.postMessage(READY);
  waitForGo(control);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) self.postMessage(i);
  const report: ProducerReport = {
    done: true,
    fullStalls: 0,
    wakes: 0,
    pushMs: performance.now() - t0,
    fullMs: 0,
  };
  self.postMessage(report);
};
