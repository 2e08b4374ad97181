/**
 * The run report: one plain object ({@linkcode Report}) built from a run's
 * outcome, written as is by `--json`, printed as a table by
 * `report_table.ts` and drawn by `html.ts`. All three show the same
 * numbers.
 *
 * @module
 */

import type { LatencyBin, LatencySummary } from "./latency.ts";
import type { Ended, RunOutcome } from "./run.ts";
import type { WorkloadResult } from "./workload.ts";

/** Identifies the JSON format; bumped when a field changes meaning. */
export const REPORT_FORMAT = "twloop-run-report/1";

/** One point of the time series. */
export interface SeriesPoint {
  /** Real seconds since the start. */
  readonly t: number;
  /** Loop clock ms since the start. */
  readonly clockMs: number;
  /** Items queued. */
  readonly depth: number;
  /** Tasks per second over the preceding interval. */
  readonly taskRate: number;
  /** Messages per second over the preceding interval. */
  readonly messageRate: number;
  /** Wakes per second over the preceding interval. */
  readonly wakeRate: number;
}

/** Everything the runner reports. */
export interface Report {
  /** {@linkcode REPORT_FORMAT}. */
  readonly format: string;
  /** The workload. */
  readonly workload: {
    readonly name: string;
    readonly url: string;
    readonly args: readonly string[];
    readonly result: WorkloadResult | null;
  };
  /** Why the run ended. */
  readonly ended: Ended;
  /** False when the loop was halted with work left (see `loop.pending`). */
  readonly drained: boolean;
  /** The first failure's message, or null. */
  readonly error: string | null;
  /** Failures seen in all. */
  readonly errors: number;
  /** The settings in effect. */
  readonly settings: {
    readonly durationMs: number | null;
    readonly maxEvents: number;
    readonly minEvents: number;
    readonly minWaitMs: number | null;
    readonly virtualTime: boolean;
    readonly seed: number;
  };
  /** When and how long. */
  readonly time: {
    readonly startedAt: string;
    readonly realMs: number;
    readonly clockMs: number;
  };
  /** Totals and rates per real second. */
  readonly throughput: {
    readonly tasks: number;
    readonly tasksPerSec: number;
    readonly messages: number;
    readonly messagesPerSec: number;
  };
  /** Task latency from enqueue to run. */
  readonly latency: LatencySummary & {
    readonly source: "workload" | "probe";
    readonly bins: readonly LatencyBin[];
  };
  /** The runner's `queue()` probes (always sampled). */
  readonly probeLatency: LatencySummary;
  /** The loop's own counters. */
  readonly loop: {
    readonly utilization: number;
    readonly passes: number;
    readonly armings: number;
    readonly sleeps: number;
    readonly wakes: number;
    readonly wakesPerArming: number;
    readonly notifies: number;
    readonly busy: number;
    readonly stalls: number;
    readonly peakDepth: number;
    readonly pending: number;
    readonly pendingTimers: number;
    readonly runMs: number;
    readonly idleMs: number;
  };
  /** Tasks run per source. */
  readonly tasksBySource: {
    readonly task: number;
    readonly timer: number;
    readonly entry: number;
    readonly host: number;
  };
  /** Workers started through `ctx.spawn`. */
  readonly workers: number;
  /** The watchdog's stall reports. */
  readonly warnings: readonly { kind: string; message: string }[];
  /** The time series (at most 1000 points, evenly thinned). */
  readonly series: readonly SeriesPoint[];
}

/**
 * Builds the report.
 *
 * @param o The run's outcome.
 * @param meta The workload's name, URL and arguments, the settings and the
 *   start time.
 * @returns The report.
 */
export function buildReport(
  o: RunOutcome,
  meta: {
    name: string;
    url: string;
    args: readonly string[];
    durationMs?: number;
    virtualTime: boolean;
    seed: number;
    startedAt: Date;
  },
): Report {
  const m = o.metrics;
  const tasks = m.tasks.task + m.tasks.timer + m.tasks.entry + m.tasks.host;
  const secs = Math.max(o.realMs, 1e-3) / 1000;
  const fromWorkload = o.latency.count > 0;
  const hist = fromWorkload ? o.latency : o.probes;
  return {
    format: REPORT_FORMAT,
    workload: {
      name: meta.name,
      url: meta.url,
      args: [...meta.args],
      result: o.result ?? null,
    },
    ended: o.ended,
    drained: o.drained,
    error: o.error === undefined ? null : describe(o.error),
    errors: o.errors,
    settings: {
      durationMs: meta.durationMs ?? null,
      maxEvents: o.loopOptions.maxEvents ?? 20,
      minEvents: o.loopOptions.minEvents ?? 1,
      minWaitMs: o.loopOptions.minWait ?? null,
      virtualTime: meta.virtualTime,
      seed: meta.seed,
    },
    time: {
      startedAt: meta.startedAt.toISOString(),
      realMs: o.realMs,
      clockMs: o.clockMs,
    },
    throughput: {
      tasks,
      tasksPerSec: tasks / secs,
      messages: m.tasks.entry,
      messagesPerSec: m.tasks.entry / secs,
    },
    latency: {
      source: fromWorkload ? "workload" : "probe",
      ...hist.summary(),
      bins: hist.bins(),
    },
    probeLatency: o.probes.summary(),
    loop: {
      utilization: m.utilization,
      passes: m.passes,
      armings: m.armings,
      sleeps: m.sleeps,
      wakes: m.wakes,
      wakesPerArming: m.armings > 0 ? m.wakes / m.armings : 0,
      notifies: m.notifies,
      busy: m.busy,
      stalls: m.stalls,
      peakDepth: m.peakDepth,
      pending: o.pending,
      pendingTimers: m.pendingTimers,
      runMs: m.runMs,
      idleMs: m.idleMs,
    },
    tasksBySource: { ...m.tasks },
    workers: o.workers,
    warnings: o.warnings.map((w) => ({ kind: w.kind, message: w.message })),
    series: thin(o.samples, 1000).map((s) => ({
      t: s.t,
      clockMs: s.clockMs,
      depth: s.depth,
      taskRate: s.taskRate,
      messageRate: s.messageRate,
      wakeRate: s.wakeRate,
    })),
  };
}

/**
 * One line for an error: name and message.
 *
 * @param error Anything thrown.
 * @returns The text.
 */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `thrown value: ${String(error)}`;
}

/** At most `n` items, evenly spread, keeping the first and the last. */
function thin<T>(xs: readonly T[], n: number): T[] {
  if (xs.length <= n) return [...xs];
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    out.push(xs[Math.round((i * (xs.length - 1)) / (n - 1))]);
  }
  return out;
}
