/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the `postMessage` side of the message-rate section:
 * waits for `GO`, posts messages 0 to count-1 of its payload kind to the
 * main thread with `self.postMessage`, one message each, then a report.
 *
 * @module
 */

import { itemMaker, type PayloadJob } from "../payload_items.ts";
import { type ProducerReport, READY, waitForGo } from "../protocol.ts";

self.onmessage = (ev: MessageEvent<PayloadJob>) => {
  const { control, kind, count } = ev.data;
  const make = itemMaker(kind);
  self.postMessage(READY);
  waitForGo(control);
  const t0 = performance.now();
  for (let s = 0; s < count; s++) self.postMessage(make(s));
  const report: ProducerReport = {
    done: true,
    fullStalls: 0,
    wakes: 0,
    pushMs: performance.now() - t0,
    fullMs: 0,
  };
  self.postMessage(report);
};
