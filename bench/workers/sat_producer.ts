/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the saturated runs (`saturation.ts`): for each job,
 * attaches to the job's transport, posts `READY`, waits for `GO`, pushes
 * items (id, 0), (id, 1), ... as fast as it can, and posts a
 * {@linkcode SatReport}. A full slot or ring means a bounded backoff and a
 * retry. One push loop per transport, so each stays monomorphic.
 *
 * @module
 */

import { Producer, PUSH_FULL } from "../../mod.ts";
import { Backoff } from "../backoff.ts";
import { LockRingProducer } from "../baselines/lock_ring.ts";
import { TreiberProducer } from "../baselines/treiber_stack.ts";
import { ITEM_TAG, READY, waitForGo } from "../protocol.ts";
import { encodeItem, type SatJob, type SatReport } from "../saturation.ts";

/** Give up when the slot stays full this long: the consumer is gone. */
const STALL_MS = 30_000;

function full(backoff: Backoff): void {
  backoff.pause();
  if (backoff.stalledMs() > STALL_MS) {
    throw new Error("Cannot push: the queue stayed full for 30 s");
  }
}

function runTwloop(job: SatJob, lat: Float64Array | undefined): SatReport {
  const p = Producer.attach(job.queue!);
  const backoff = new Backoff(job.spinBudgetMs);
  self.postMessage(READY);
  waitForGo(job.control);
  const id = job.id;
  for (let i = 0; i < job.count; i++) {
    for (;;) {
      const t0 = lat ? performance.now() : 0;
      if (p.push(ITEM_TAG, id, i) !== PUSH_FULL) {
        if (lat) lat[i] = performance.now() - t0;
        break;
      }
      full(backoff);
    }
    backoff.reset();
  }
  p.detach();
  return report(job, backoff, 0, 0, lat);
}

/**
 * The WebAssembly Treiber stack's buffer as this worker first received it:
 * the pool reuses one stack, and each job's clone of its memory is a new
 * object; attaching through the first keeps one instance behind the calls.
 */
let treiberWasm: SharedArrayBuffer | undefined;

function runTreiber(job: SatJob, lat: Float64Array | undefined): SatReport {
  let shared = job.queue!;
  if (job.kind === "treiberWasm") {
    if (treiberWasm === undefined) {
      const p = TreiberProducer.attach(shared);
      treiberWasm = p.buffer;
      p.detach();
    }
    shared = treiberWasm;
  }
  const p = TreiberProducer.attach(shared);
  const backoff = new Backoff(job.spinBudgetMs);
  self.postMessage(READY);
  waitForGo(job.control);
  const id = job.id;
  for (let i = 0; i < job.count; i++) {
    for (;;) {
      const t0 = lat ? performance.now() : 0;
      if (p.push(ITEM_TAG, id, i) !== PUSH_FULL) {
        if (lat) lat[i] = performance.now() - t0;
        break;
      }
      full(backoff);
    }
    backoff.reset();
  }
  p.detach();
  return report(job, backoff, p.casRetries, 0, lat);
}

function runLockRing(job: SatJob, lat: Float64Array | undefined): SatReport {
  const p = LockRingProducer.attach(job.queue as SharedArrayBuffer);
  const backoff = new Backoff(job.spinBudgetMs);
  self.postMessage(READY);
  waitForGo(job.control);
  const id = job.id;
  for (let i = 0; i < job.count; i++) {
    for (;;) {
      const t0 = lat ? performance.now() : 0;
      if (p.push(id, i) !== PUSH_FULL) {
        if (lat) lat[i] = performance.now() - t0;
        break;
      }
      full(backoff);
    }
    backoff.reset();
  }
  return report(job, backoff, p.lock.contended, p.lock.sleeps, lat);
}

function runPost(job: SatJob, lat: Float64Array | undefined): SatReport {
  const backoff = new Backoff(job.spinBudgetMs);
  self.postMessage(READY);
  waitForGo(job.control);
  const id = job.id;
  for (let i = 0; i < job.count; i++) {
    const t0 = lat ? performance.now() : 0;
    self.postMessage(encodeItem(id, i));
    if (lat) lat[i] = performance.now() - t0;
  }
  return report(job, backoff, 0, 0, lat);
}

function runChannel(job: SatJob, lat: Float64Array | undefined): SatReport {
  const port = job.port!;
  const backoff = new Backoff(job.spinBudgetMs);
  self.postMessage(READY);
  waitForGo(job.control);
  const id = job.id;
  for (let i = 0; i < job.count; i++) {
    const t0 = lat ? performance.now() : 0;
    port.postMessage(encodeItem(id, i));
    if (lat) lat[i] = performance.now() - t0;
  }
  // The port stays open: closing right after a post can drop the post. The
  // main thread closes its end once it has every item.
  return report(job, backoff, 0, 0, lat);
}

function report(
  job: SatJob,
  backoff: Backoff,
  contended: number,
  lockSleeps: number,
  lat: Float64Array | undefined,
): SatReport {
  return {
    done: true,
    id: job.id,
    fullStalls: backoff.pauses,
    contended,
    lockSleeps,
    pushMs: lat,
  };
}

const RUNNERS = {
  twloop: runTwloop,
  treiber: runTreiber,
  treiberWasm: runTreiber,
  lockRing: runLockRing,
  postMessage: runPost,
  channel: runChannel,
};

self.onmessage = (ev: MessageEvent<SatJob | string>) => {
  const job = ev.data;
  if (typeof job !== "object") return;
  const lat = job.timed
    ? new Float64Array(new ArrayBuffer(job.count * 8))
    : undefined;
  const r = RUNNERS[job.kind](job, lat);
  if (lat) self.postMessage(r, [lat.buffer as ArrayBuffer]);
  else self.postMessage(r);
};
