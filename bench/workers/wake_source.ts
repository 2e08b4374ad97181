/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The waking side of the wake-latency section (`wake_latency.ts`): for each
 * job, posts `READY`, answers the clock calibration pings, then fires one
 * wake per round the main thread asks for, after a random busy delay so the
 * main thread is surely asleep. Each fire carries this thread's clock
 * reading taken right before it, and is, by mode:
 *
 * - `wait`: the stamp in the control buffer, `Atomics.store` + `notify`;
 * - `runSync`, `run`: `pushFloat(stamp)` into the loop's queue through the
 *   reserved slot, then an eager `wake`;
 * - `postMessage`: `self.postMessage(stamp)`; `channel`: on the job's port.
 *
 * @module
 */

import { FIRST_USER_TAG, Producer, PUSH_FULL, wake } from "../../mod.ts";
import { READY } from "../protocol.ts";
import {
  F_STAMP,
  F_WTIME,
  W_CAL_DONE,
  W_FIRE,
  W_PING,
  W_ROUND,
  W_STOP,
  type WakeJob,
} from "../wake_latency.ts";

/** Give up waiting for the main thread after this long. */
const IDLE_MS = 30_000;
/** Most loads spent waiting for one calibration ping (~1 s). */
const MAX_SPINS = 1e8;

/** Seeded xorshift32, so every run has the same delays. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function calibrate(w: Int32Array, f: Float64Array): void {
  let answered = 0;
  let spins = 0;
  for (;;) {
    // Pairs with the main thread's Atomics.store of each ping.
    const v = Atomics.load(w, W_PING);
    if (v === W_CAL_DONE) return;
    if (v !== answered && (v & 1) === 1) {
      f[F_WTIME] = performance.now(); // published by the store below
      answered = v + 1;
      Atomics.store(w, W_PING, answered);
      spins = 0;
    } else if (++spins === MAX_SPINS) {
      throw new Error("Cannot calibrate: no ping");
    }
  }
}

function spinFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* busy: stay on the CPU */ }
}

self.onmessage = (ev: MessageEvent<WakeJob>) => {
  const job = ev.data;
  const w = new Int32Array(job.control);
  const f = new Float64Array(job.control);
  const p = job.handle
    ? Producer.attach(job.handle.buffer, job.handle.slot)
    : undefined;
  const q = job.handle ? new Int32Array(job.handle.buffer) : undefined;
  const port = job.port;
  const next = rng(job.seed);
  self.postMessage(READY);
  calibrate(w, f);
  for (let round = 1;; round++) {
    let r = Atomics.load(w, W_ROUND);
    while (r !== W_STOP && r < round) {
      if (Atomics.wait(w, W_ROUND, r, IDLE_MS) === "timed-out") return;
      r = Atomics.load(w, W_ROUND);
    }
    if (r === W_STOP) break;
    spinFor(job.minDelayMs + next() * (job.maxDelayMs - job.minDelayMs));
    const stamp = performance.now();
    if (job.mode === "wait") {
      f[F_STAMP] = stamp; // published by the store below
      Atomics.store(w, W_FIRE, round);
      Atomics.notify(w, W_FIRE, 1);
    } else if (p && q) {
      if (p.pushFloat(FIRST_USER_TAG, stamp) === PUSH_FULL) {
        throw new Error("Cannot fire: the loop's slot is full");
      }
      wake(q, false);
    } else if (port) {
      port.postMessage(stamp);
    } else {
      self.postMessage(stamp);
    }
  }
  p?.detach();
};
