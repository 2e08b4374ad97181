/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for `tests/wake_test.ts`. It attaches to the queue, posts
 * `{ kind: "ready" }`, runs one task and posts `{ kind: "done", ... }`, or
 * `{ kind: "error", message }` if anything throws.
 *
 * - `when-armed`: waits until `WAIT_NR` holds `armed`, waits `delayMs` more,
 *   then pushes one item per entry of `lazy` and calls `wake` after each.
 * - `rounds`: the no-lost-wake-up rounds. For each round the consumer opens
 *   (`R_ROUND`), spins a seeded random number of iterations to land in the
 *   waiter's arming window, pushes one item `a = round` and wakes (lazily only
 *   when the round's threshold `R_MODE` is 1, so the push alone suffices).
 *
 * @module
 */
import { Producer, PUSH_FULL } from "../../runtime/mpsc_queue.ts";
import { WAIT_NR } from "../../runtime/queue_layout.ts";
import { wake } from "../../runtime/wake.ts";
import { rng as prng } from "../rng.ts";

/** Control word: the round the consumer opened; -1 stops the producer. */
export const R_ROUND = 0;
/** Control word: the round's threshold `k`. */
export const R_MODE = 1;
/** Control word: the last round whose item the producer pushed. */
export const R_PUSHED = 2;
/** Words in the rounds control buffer. */
export const R_WORDS = 4;

/** Push once `WAIT_NR` is `armed`. */
export interface WhenArmedTask {
  kind: "when-armed";
  buffer: SharedArrayBuffer;
  armed: number;
  delayMs: number;
  /** One push per entry; `true` for a lazy add, `false` for an eager one. */
  lazy: boolean[];
}

/** The no-lost-wake-up rounds. */
export interface RoundsTask {
  kind: "rounds";
  buffer: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
  seed: number;
  /** Upper bound of the random spin before each push. */
  spinMax: number;
}

/** What the worker posts when a task ends. */
export interface ProducerReport {
  kind: "done";
  /** `when-armed`: what each `wake` call returned. */
  claims: boolean[];
  /** `rounds`: wake calls that sent the arming's notify. */
  claimed: number;
  /** `rounds`: items pushed. */
  pushed: number;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps the worker thread for `ms` milliseconds. */
function sleepMs(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

function pushOne(p: Producer, a: number): void {
  for (let tries = 0; p.push(1, a, 0) === PUSH_FULL; tries++) {
    if (tries > 10_000) throw new Error("Queue stayed full for 0.5 s");
    sleepMs(0.05);
  }
}

function whenArmed(task: WhenArmedTask, p: Producer): ProducerReport {
  const w = new Int32Array(task.buffer);
  const deadline = performance.now() + 10_000;
  while (Atomics.load(w, WAIT_NR) !== task.armed) {
    if (performance.now() > deadline) {
      throw new Error(`WAIT_NR never became ${task.armed}`);
    }
    sleepMs(0.05);
  }
  if (task.delayMs > 0) sleepMs(task.delayMs);
  const claims = task.lazy.map((lazy, i) => {
    pushOne(p, i);
    return wake(w, lazy);
  });
  return { kind: "done", claims, claimed: 0, pushed: claims.length };
}

/** Spins `n` iterations of cheap work the compiler cannot drop. */
let sink = 0;
function spin(n: number): void {
  let x = sink;
  for (let i = 0; i < n; i++) x = (Math.imul(x, 31) + i) | 0;
  sink = x;
}

function rounds(task: RoundsTask, p: Producer): ProducerReport {
  const w = new Int32Array(task.buffer);
  const ctrl = new Int32Array(task.ctrl);
  const random = prng(task.seed);
  let last = 0;
  let claimed = 0;
  let pushed = 0;
  for (;;) {
    let round: number;
    let spins = 0;
    while ((round = Atomics.load(ctrl, R_ROUND)) === last) {
      // The consumer notifies R_ROUND when it opens a round; the timeout
      // only bounds a missed notify.
      if (++spins > 20_000) Atomics.wait(ctrl, R_ROUND, last, 50);
    }
    if (round < 0) break;
    const k = Atomics.load(ctrl, R_MODE);
    const lazy = k === 1 && random() < 0.5;
    spin(Math.floor(random() * (task.spinMax + 1)));
    pushOne(p, round);
    pushed++;
    if (wake(w, lazy)) claimed++;
    Atomics.store(ctrl, R_PUSHED, round);
    last = round;
  }
  return { kind: "done", claims: [], claimed, pushed };
}

self.onmessage = (event: MessageEvent<WhenArmedTask | RoundsTask>) => {
  const task = event.data;
  let p: Producer | undefined;
  try {
    p = Producer.attach(task.buffer);
    self.postMessage({ kind: "ready" });
    const report = task.kind === "rounds"
      ? rounds(task, p)
      : whenArmed(task, p);
    self.postMessage(report);
  } catch (e) {
    self.postMessage({
      kind: "error",
      message: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  } finally {
    p?.detach();
  }
};
