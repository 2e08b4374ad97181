/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the twloop side of the message-rate section, started
 * with `spawnWorker(loop, ...)`: it connects its port with `workerPort()`,
 * then for each job waits for `GO`, posts messages 0 to count-1 of the
 * job's payload kind with `port.post` (default options: lazy wake, blocking
 * while the port's storage is full), and reports through `postMessage`,
 * outside the measured stream. A close job closes the port, after which the
 * loop terminates this worker.
 *
 * @module
 */

import { workerPort } from "../../mod.ts";
import { type CloseJob, itemMaker, type PayloadJob } from "../payload_items.ts";
import { type ProducerReport, READY, waitForGo } from "../protocol.ts";

const connected = workerPort();

self.onmessage = async (ev: MessageEvent<PayloadJob | CloseJob>) => {
  const job = ev.data;
  if (!("close" in job) && !("kind" in job)) return; // the port's hello
  const { port } = await connected;
  if ("close" in job) {
    port.close();
    return;
  }
  const { control, kind, count } = job;
  const make = itemMaker(kind);
  self.postMessage(READY);
  waitForGo(control);
  const t0 = performance.now();
  for (let s = 0; s < count; s++) port.post(make(s));
  const report: ProducerReport = {
    done: true,
    fullStalls: 0,
    wakes: 0,
    pushMs: performance.now() - t0,
    fullMs: 0,
  };
  self.postMessage(report);
};
