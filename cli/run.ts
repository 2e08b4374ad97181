/**
 * Running one workload: make the loop, hand the workload its context, drive
 * the loop with the async `run()`, and collect what the report needs.
 *
 * ## The drive
 *
 * 1. The loop is made with the command line's options (and a
 *    `VirtualClock` under `--virtual-time`). Task errors, uncaught errors
 *    of host callbacks and unhandled rejections during the run all count
 *    as a workload failure.
 * 2. The runner holds one `ref()` on the loop while the workload's
 *    function (or its promise) runs, so `run()` cannot return before the
 *    workload is done setting up; when it settles the hold is released.
 * 3. `run()` returns when nothing is left (finished). At `--duration` (a
 *    loop timer, so it is measured on the loop's clock) or on the first
 *    Ctrl-C, `ctx.signal` aborts and the workload gets a grace period to
 *    wind down. After the grace period, on a second Ctrl-C (a repeat
 *    within 250 ms is the same key press) or on a failure, the runner
 *    halts the loop: `stop()` plus a wake in case it sleeps. A failure
 *    after Ctrl-C (a workload that rejects because it was cut short) is
 *    kept as the error, but the run still ends "interrupted".
 * 4. What the loop still held is read right after `run()` returns
 *    (`pending()`, pending timers), before anything else touches the loop;
 *    then the sampler stops and workers still running are terminated. The
 *    loop is not closed: closing would run the queued tasks, and the point
 *    of a halt is to stop running them. Nothing is dropped silently: the
 *    report states the count.
 *
 * @module
 */

import { Loop, type LoopOptions } from "../runtime/loop.ts";
import type { LoopMetrics } from "../runtime/loop_metrics.ts";
import type { LoopWarning } from "../runtime/loop_watchdog.ts";
import { VirtualClock } from "../runtime/clock.ts";
import { type SpawnedWorker, spawnWorker } from "../runtime/spawn.ts";
import { LoopClosedError } from "../runtime/port.ts";
import type { Timer } from "../runtime/timers.ts";
import { wake } from "../runtime/wake.ts";
import { LatencyHistogram } from "./latency.ts";
import { seededRandom } from "./random.ts";
import { type Sample, Sampler } from "./sampler.ts";
import {
  stamp,
  type StopReason,
  type Workload,
  type WorkloadContext,
  type WorkloadResult,
} from "./workload.ts";

/**
 * A second Ctrl-C halts at once only if it comes this many ms after the
 * first: one key press can arrive twice, because `deno task` forwards the
 * SIGINT its process group already delivered to the runner.
 */
const SECOND_INTERRUPT_MS = 250;

/** Real ms between the runner's `queue()` latency probes. */
export const PROBE_MS = 10;

/** How a run ended. */
export type Ended = "finished" | "duration" | "interrupted" | "failed";

/** What {@linkcode runWorkload} needs. */
export interface RunConfig {
  /** The workload's default export. */
  readonly workload: Workload;
  /** Its arguments. */
  readonly args?: readonly string[];
  /** Stop after this many ms of the loop's clock. */
  readonly duration?: number;
  /** Loop options from the command line. */
  readonly maxEvents?: number;
  /** Loop options from the command line. */
  readonly minEvents?: number;
  /** Loop options from the command line. */
  readonly minWait?: number;
  /** Run the loop on a virtual clock. */
  readonly virtualTime?: boolean;
  /** Seed of `ctx.random()` (default 1). */
  readonly seed?: number;
  /**
   * Subscribes to interrupts (Ctrl-C): the first aborts `ctx.signal`, the
   * second halts at once. Returns the unsubscribe function.
   */
  readonly interrupts?: (onInterrupt: () => void) => () => void;
  /** Called after each sample (progress). */
  readonly onSample?: (sampler: Sampler) => void;
  /** Prints a line (workload logs, warnings). */
  readonly log?: (line: string) => void;
  /** Real ms between samples (default 100). */
  readonly sampleMs?: number;
  /** Real ms between the runner's latency probes (default 10). */
  readonly probeMs?: number;
  /** Real ms the workload gets to wind down after an abort (default 2000). */
  readonly graceMs?: number;
}

/** What a run produced. */
export interface RunOutcome {
  /** Why it ended. */
  readonly ended: Ended;
  /** False when the loop was halted with work possibly left. */
  readonly drained: boolean;
  /** Whether the workload's function settled. */
  readonly workloadSettled: boolean;
  /**
   * The first failure: always set when `ended` is `"failed"`; also set
   * when the workload failed while winding down after Ctrl-C.
   */
  readonly error?: unknown;
  /** Failures seen in all (tasks, callbacks, the workload). */
  readonly errors: number;
  /** What the workload returned. */
  readonly result?: WorkloadResult;
  /** The loop's counters when `run()` returned. */
  readonly metrics: LoopMetrics;
  /** Items still queued when `run()` returned. */
  readonly pending: number;
  /** Real ms from the workload's call to the end of `run()`. */
  readonly realMs: number;
  /** Loop clock ms over the same span. */
  readonly clockMs: number;
  /** Latencies the workload recorded. */
  readonly latency: LatencyHistogram;
  /** The runner's `queue()` probes. */
  readonly probes: LatencyHistogram;
  /** The time series. */
  readonly samples: readonly Sample[];
  /** Stall reports of the loop's watchdog. */
  readonly warnings: readonly LoopWarning[];
  /** Workers started through `ctx.spawn`. */
  readonly workers: number;
  /** The loop options in effect. */
  readonly loopOptions: Readonly<LoopOptions>;
}

/**
 * Runs a workload to its end; see the module docs.
 *
 * @param c The workload and settings.
 * @returns The outcome; a failing workload resolves with `ended: "failed"`.
 * @throws {TypeError} A loop option has the wrong type.
 * @throws {RangeError} A loop option is out of range.
 */
export async function runWorkload(c: RunConfig): Promise<RunOutcome> {
  const loopOptions: LoopOptions = {
    maxEvents: c.maxEvents,
    minEvents: c.minEvents,
    minWait: c.minWait,
  };
  const loop = new Loop({
    ...loopOptions,
    clock: c.virtualTime ? new VirtualClock() : undefined,
  });
  const wakeWord = new Int32Array(loop.buffer);
  const stopper = new AbortController();
  const latency = new LatencyHistogram();
  const probes = new LatencyHistogram();
  const warnings: LoopWarning[] = [];
  const spawned: SpawnedWorker[] = [];
  const log = c.log ?? (() => {});
  let ended: Ended = "finished";
  let error: unknown;
  let errors = 0;
  let halted = false;
  let settled = false;
  let result: WorkloadResult | undefined;
  let grace: ReturnType<typeof setTimeout> | undefined;
  let durationTimer: Timer | undefined;

  /** Step 3: stop the run method, waking the loop if it sleeps. */
  const halt = () => {
    if (halted) return;
    halted = true;
    loop.stop();
    wake(wakeWord, false);
  };
  const abort = (reason: StopReason) => {
    if (stopper.signal.aborted) return;
    if (ended === "finished") ended = reason;
    grace = setTimeout(halt, c.graceMs ?? 2000);
    try {
      stopper.abort(reason);
    } catch (e) {
      fail(e);
    }
  };
  const fail = (e: unknown) => {
    if (errors++ > 0) return;
    error = e;
    // After Ctrl-C the user asked for a stop: an error raised while the
    // workload winds down is reported, but the run stays "interrupted".
    if (ended !== "interrupted") ended = "failed";
    abort("failed");
    halt();
  };

  loop.onError = fail;
  loop.onWarning = (w) => {
    warnings.push(w);
    log(`warning: ${w.message}`);
  };
  const onError = (ev: ErrorEvent) => {
    ev.preventDefault();
    fail(ev.error ?? new Error(ev.message));
  };
  const onRejection = (ev: PromiseRejectionEvent) => {
    ev.preventDefault();
    fail(ev.reason);
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  let firstInterrupt = -1;
  const unsubscribe = c.interrupts?.(() => {
    const now = performance.now();
    if (firstInterrupt < 0) {
      firstInterrupt = now;
      abort("interrupted");
    } else if (now - firstInterrupt >= SECOND_INTERRUPT_MS) halt();
  });

  const random = seededRandom(c.seed ?? 1);
  const ctx: WorkloadContext = {
    loop,
    spawn(url, data) {
      const w = spawnWorker(loop, url, { data });
      spawned.push(w);
      return w;
    },
    args: Object.freeze([...(c.args ?? [])]),
    random,
    seed: c.seed ?? 1,
    signal: stopper.signal,
    duration: c.duration,
    virtualTime: c.virtualTime ?? false,
    record: (enqueuedAt) => latency.record(stamp() - enqueuedAt),
    recordLatency: (ms) => latency.record(ms),
    log,
  };

  const sampler = new Sampler(loop);
  const sampling = setInterval(() => {
    sampler.sample();
    c.onSample?.(sampler);
  }, c.sampleMs ?? 100);
  // A probe waits in the same FIFO as everything else the loop runs.
  const probing = setInterval(() => {
    if (loop.closed || halted) return;
    const t = performance.now();
    loop.tryQueue(() => probes.record(performance.now() - t));
  }, c.probeMs ?? PROBE_MS);

  const t0 = performance.now();
  const clock0 = loop.clock.now();
  if (c.duration !== undefined) {
    durationTimer = loop.setTimer(() => abort("duration"), c.duration).unref();
  }
  // Step 2: hold the loop while the workload's function runs.
  loop.ref();
  const release = () => {
    settled = true;
    loop.unref();
    wake(wakeWord, false); // an asleep drive re-checks alive()
  };
  try {
    Promise.resolve(c.workload(ctx)).then((r) => {
      if (r !== null && typeof r === "object") result = r;
    }, fail).finally(release);
  } catch (e) {
    fail(e);
    release();
  }

  let pending = 0;
  let metrics: LoopMetrics;
  try {
    if (!halted) {
      try {
        await loop.run();
      } catch (e) {
        // A workload that closed the loop itself ends the run cleanly.
        if (!(e instanceof LoopClosedError && loop.closed)) fail(e);
      }
    }
    // Step 4: read what is left before anything else touches the loop.
    pending = loop.pending();
    metrics = loop.metrics();
  } finally {
    clearInterval(sampling);
    clearInterval(probing);
    clearTimeout(grace);
    unsubscribe?.();
    if (!loop.closed) durationTimer?.cancel();
    for (const w of spawned) {
      try {
        w.terminate();
      } catch { /* already gone */ }
    }
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
  const realMs = performance.now() - t0;
  const clockMs = loop.clock.now() - clock0;
  sampler.sample();
  return {
    ended,
    drained: !halted || pending === 0,
    workloadSettled: settled,
    error,
    errors,
    result,
    metrics,
    pending,
    realMs,
    clockMs,
    latency,
    probes,
    samples: sampler.samples,
    warnings,
    workers: spawned.length,
    loopOptions: {
      maxEvents: c.maxEvents ?? 20,
      minEvents: c.minEvents ?? 1,
      minWait: c.minWait,
    },
  };
}
