/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker side of `ingest.ts`: says it is ready, waits for the start line,
 * then posts `events` readings from random sensors,
 * each stamped right before its post, stopping early when the stop word is
 * set; then says how many it sent and closes its port.
 *
 * @module
 */

import { workerPort } from "../mod.ts";
import { seededRandom } from "../cli/random.ts";
import { stamp } from "../cli/workload.ts";
import type { IngestTask } from "./ingest.ts";

const { port, data } = await workerPort();
const task = data as IngestTask;
const random = seededRandom(task.seed);
port.post({ ready: true }, { wake: "eager" });
Atomics.wait(task.go, 0, 0); // the start line: every worker is up
const pause = new Int32Array(new SharedArrayBuffer(4));
const t0 = performance.now();
let sent = 0;
for (; sent < task.events; sent++) {
  if ((sent & 255) === 0 && Atomics.load(task.stop, 0) !== 0) break;
  if (task.rate > 0) {
    // Paced: event n is due at t0 + n / rate; sleep until then (stop-aware).
    const ahead = t0 + (sent * 1000) / task.rate - performance.now();
    if (ahead > 0) Atomics.wait(pause, 0, 0, Math.min(ahead, 50));
    if (ahead > 50) {
      sent--;
      continue;
    }
  }
  const sensor = Math.floor(random() * task.sensors);
  const value = Math.round(random() * 10_000) / 100;
  port.post({ sensor, value, t: stamp() }); // waits while the port is full
}
port.post({ done: sent });
port.close();
