/**
 * The one-way cache-line transfer time between the main thread's core and a
 * worker's, which DESIGN.md asks every benchmark to log (63-247 ns on these
 * VMs, depending on vCPU placement). Measured as a ping-pong on one word:
 * a round trip moves the line there and back, so one way is half of it
 * (each side's `Atomics` call overhead included).
 *
 * @module
 */

import type { PingJob } from "./protocol.ts";
import { summarize, type Summary } from "./stats.ts";
import { prepareWorker, spawnWorker } from "./worker_control.ts";

/** Round trips timed together as one sample. */
const PER_SAMPLE = 100;
/** Give up on a round after this many loads (~1 s of spinning). */
const MAX_SPINS = 1e8;

/**
 * Measures the one-way transfer time.
 *
 * @param samples Samples of {@linkcode PER_SAMPLE} round trips each.
 * @returns Nanoseconds one way: median and range over the samples.
 * @throws {Error} The worker stopped answering.
 */
export async function measureCoreToCore(samples: number): Promise<Summary> {
  const line = new SharedArrayBuffer(128);
  const w = new Int32Array(line);
  const warmup = samples;
  const job: PingJob = { line, rounds: (warmup + samples) * PER_SAMPLE };
  const worker = spawnWorker("./workers/ping.ts");
  const oneWay: number[] = [];
  try {
    await prepareWorker(worker, job);
    let i = 0;
    for (let s = 0; s < warmup + samples; s++) {
      const t0 = performance.now();
      for (let r = 0; r < PER_SAMPLE; r++) {
        i++;
        Atomics.store(w, 0, 2 * i - 1);
        let spins = 0;
        // Pairs with the worker's Atomics.store of the answer.
        while (Atomics.load(w, 0) !== 2 * i) {
          if (++spins === MAX_SPINS) {
            throw new Error("Cannot measure core-to-core: no answer");
          }
        }
      }
      const ns = ((performance.now() - t0) * 1e6) / PER_SAMPLE / 2;
      if (s >= warmup) oneWay.push(ns);
    }
  } finally {
    worker.terminate();
  }
  return summarize(oneWay);
}
