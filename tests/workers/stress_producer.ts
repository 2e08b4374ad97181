/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for `tests/stress_test.ts`. Attaches, posts `{ kind:
 * "ready" }`, waits for the start word, then pushes `count` items tagged
 * `a = id`, `b = sequence number` (and a tag derived from both), mostly one
 * by one and sometimes as a `pushBatch` chain, calling `wake` after each
 * successful push. On `PUSH_FULL` it retries with a bounded spin, then sleeps
 * 0.05 ms at a time on a private word: it never busy-spins for long. Posts
 * `{ kind: "done", ... }` or `{ kind: "error", message }`.
 *
 * @module
 */
import { Producer, PUSH_FULL } from "../../runtime/mpsc_queue.ts";
import { wake } from "../../runtime/wake.ts";
import { rng as prng } from "../rng.ts";

/** Control word: 0 until the consumer starts the run. */
export const S_START = 0;
/** Control word: 1 + id of the first worker that failed, else 0. */
export const S_FAILED = 1;
/** Control words: items pushed so far by worker `id`, at `S_PROGRESS + id`. */
export const S_PROGRESS = 8;
/** Words in the control buffer (room for 24 workers). */
export const S_WORDS = 32;

/** One worker's share of the run. */
export interface StressTask {
  buffer: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
  id: number;
  count: number;
  seed: number;
  /** Lazy adds (the last push is always eager). */
  lazy: boolean;
}

/** What a worker posts at the end. */
export interface StressReport {
  kind: "done";
  id: number;
  slot: number;
  pushed: number;
  /** Pushes refused with PUSH_FULL, retried. */
  full: number;
  /** Timed backoff sleeps taken. */
  sleeps: number;
  /** Items pushed through `pushBatch`. */
  batched: number;
  /** Wake calls that sent a notify. */
  notified: number;
}

/** Tag the consumer checks: mixes the id and sequence number. */
export function stressTag(id: number, seq: number): number {
  return (Math.imul(seq, 0x9e3779b1) ^ id) & 0x3fffffff;
}

const SPINS_BEFORE_SLEEP = 32;
const BACKOFF_MS = 0.05;
const STUCK_MS = 20_000;

function run(task: StressTask, p: Producer): StressReport {
  const w = new Int32Array(task.buffer);
  const ctrl = new Int32Array(task.ctrl);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const random = prng(task.seed);
  const tags = new Int32Array(8);
  const as = new Int32Array(8).fill(task.id);
  const bs = new Int32Array(8);
  const report: StressReport = {
    kind: "done",
    id: task.id,
    slot: p.slot,
    pushed: 0,
    full: 0,
    sleeps: 0,
    batched: 0,
    notified: 0,
  };
  const startBy = performance.now() + STUCK_MS;
  while (Atomics.load(ctrl, S_START) === 0) {
    if (performance.now() > startBy) throw new Error("Never started");
    Atomics.wait(ctrl, S_START, 0, 100);
  }
  const { id, count } = task;
  let seq = 0;
  let refused = 0;
  let stuckSince = 0;
  while (seq < count) {
    if (Atomics.load(ctrl, S_FAILED) !== 0) throw new Error("Run aborted");
    let n = 1;
    if (random() < 1 / 16) {
      n = Math.min(2 + Math.floor(random() * 7), count - seq);
    }
    let r;
    if (n > 1) {
      for (let i = 0; i < n; i++) {
        tags[i] = stressTag(id, seq + i);
        bs[i] = seq + i;
      }
      r = p.pushBatch(tags, as, bs, n);
      if (r === PUSH_FULL) n = 1; // Fall back to a single push below.
      else report.batched += n;
    }
    if (n === 1) r = p.push(stressTag(id, seq), id, seq);
    if (r === PUSH_FULL) {
      report.full++;
      if (++refused <= SPINS_BEFORE_SLEEP) continue;
      if (stuckSince === 0) stuckSince = performance.now();
      else if (performance.now() - stuckSince > STUCK_MS) {
        throw new Error(`Queue full for ${STUCK_MS} ms at seq ${seq}`);
      }
      report.sleeps++;
      Atomics.wait(pause, 0, 0, BACKOFF_MS);
      continue;
    }
    refused = 0;
    stuckSince = 0;
    seq += n;
    if (wake(w, task.lazy && seq < count)) report.notified++;
    if ((seq & 1023) < n) Atomics.store(ctrl, S_PROGRESS + id, seq);
  }
  Atomics.store(ctrl, S_PROGRESS + id, seq);
  report.pushed = seq;
  return report;
}

self.onmessage = (event: MessageEvent<StressTask>) => {
  const task = event.data;
  let p: Producer | undefined;
  try {
    p = Producer.attach(task.buffer);
    self.postMessage({ kind: "ready" });
    self.postMessage(run(task, p));
  } catch (e) {
    const ctrl = new Int32Array(task.ctrl);
    Atomics.compareExchange(ctrl, S_FAILED, 0, 1 + task.id);
    // Wakes the consumer so it sees the failure now, not at its timeout.
    wake(new Int32Array(task.buffer), false);
    self.postMessage({
      kind: "error",
      message: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  } finally {
    p?.detach();
  }
};
