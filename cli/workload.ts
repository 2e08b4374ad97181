/**
 * The workload contract: what `deno task start path/to/workload.ts` expects
 * from the module it runs, and what it hands the module.
 *
 * A workload is a module whose default export is a function. The runner
 * makes a {@linkcode Loop} with the options given on the command line, calls
 * the function once with a {@linkcode WorkloadContext}, and drives the loop
 * with the async `loop.run()` itself: the workload only sets work up (timers,
 * workers, ports, I/O) and must not call a run method of `ctx.loop`.
 *
 * ## When the run ends
 *
 * 1. **Finished**: the promise the function returned (if any) has settled
 *    and the loop has nothing left (no referenced timers, open ports,
 *    queued tasks or host operations in flight).
 * 2. **Duration or Ctrl-C**: `ctx.signal` aborts (its `reason` is
 *    `"duration"` or `"interrupted"`). The workload should stop producing:
 *    tell its workers, cancel its timers, close its ports. The runner waits
 *    up to a grace period (2 s) for the loop to drain, then stops it and
 *    reports what was still queued as `pending`.
 * 3. **Failed**: the function throws or its promise rejects, a task throws,
 *    or a spawned worker dies with an error. The runner stops the loop,
 *    prints the report with the pending count, then the error, and exits 1.
 *
 * ## Latency
 *
 * The report's task latency is the time from an item's enqueue to the start
 * of the task that handles it. Only the workload knows when its items were
 * enqueued, so it measures them: a producer (any thread) stamps each item
 * with {@linkcode stamp} when it posts it, and the handler on the loop calls
 * `ctx.record(stampFromItem)` when it runs. `stamp()` is
 * `performance.timeOrigin + performance.now()`, comparable across workers
 * of one process to a few microseconds. Workloads that measure it
 * themselves (timer lateness, say) call `ctx.recordLatency(ms)` instead. If
 * a workload records nothing, the report falls back to the runner's own
 * probes: a `loop.queue()` task sent 100 times a second, timed from the
 * `queue()` call to its run.
 *
 * ## The result
 *
 * The function may return (or resolve to) a flat object of numbers,
 * strings and booleans, such as `{ sent: 1000, received: 1000 }`: the report
 * prints it under "workload" and `--json` stores it under `workload.result`.
 *
 * @example A workload that posts from two workers
 * ```ts ignore
 * // my_workload.ts
 * import type { WorkloadContext } from "../cli/workload.ts";
 *
 * export default async function (ctx: WorkloadContext) {
 *   const stop = new Int32Array(new SharedArrayBuffer(4));
 *   ctx.signal.addEventListener("abort", () => Atomics.store(stop, 0, 1));
 *   let received = 0;
 *   ctx.loop.onMessage = (msg) => {
 *     ctx.record((msg as { t: number }).t); // enqueue -> run
 *     received++;
 *   };
 *   for (let i = 0; i < 2; i++) {
 *     ctx.spawn(new URL("./my_worker.ts", import.meta.url), { stop });
 *   }
 *   await new Promise((r) => ctx.signal.addEventListener("abort", r));
 *   return { received };
 * }
 * ```
 *
 * @module
 */

import type { Loop } from "../runtime/loop.ts";
import type { SpawnedWorker } from "../runtime/spawn.ts";

/** Why `ctx.signal` aborted: the value of `signal.reason`. */
export type StopReason = "duration" | "interrupted" | "failed";

/** What the runner hands a workload. */
export interface WorkloadContext {
  /** The loop, made with the command line's options; the runner drives it. */
  readonly loop: Loop;
  /**
   * Starts a module worker connected to `loop` (`spawnWorker`); in the
   * worker, `workerPort()` gives its port and `data`. The runner terminates
   * workers still running when the run ends.
   *
   * @param url The worker module; resolve it with `import.meta.url`.
   * @param data Any structured-cloneable value for the worker.
   * @returns The worker and its port slot.
   */
  spawn(url: string | URL, data?: unknown): SpawnedWorker;
  /** The arguments after the workload path (after `--` for flags). */
  readonly args: readonly string[];
  /**
   * Seeded randomness (`--seed`): the same seed gives the same sequence.
   *
   * @returns A float in [0, 1).
   */
  random(): number;
  /** The seed behind `random()`. */
  readonly seed: number;
  /** Aborts at the end of `--duration` or on Ctrl-C; see the module docs. */
  readonly signal: AbortSignal;
  /** `--duration` in ms of the loop's clock, or undefined (run to the end). */
  readonly duration: number | undefined;
  /** Whether the loop runs on a virtual clock (`--virtual-time`). */
  readonly virtualTime: boolean;
  /**
   * Records one task latency: now minus `enqueuedAt`.
   *
   * @param enqueuedAt A {@linkcode stamp} taken when the item was posted.
   */
  record(enqueuedAt: number): void;
  /**
   * Records one latency the workload measured itself.
   *
   * @param ms The latency in milliseconds.
   */
  recordLatency(ms: number): void;
  /**
   * Prints a line (above the live status line; nothing under `--quiet`).
   *
   * @param line The text.
   */
  log(line: string): void;
}

/** What a workload may return: named numbers for the report. */
export type WorkloadResult = Readonly<
  Record<string, number | string | boolean>
>;

/** The default export of a workload module. */
export type Workload = (
  ctx: WorkloadContext,
) => WorkloadResult | void | Promise<WorkloadResult | void>;

/**
 * A timestamp comparable across the workers of one process, in ms since
 * the epoch with sub-microsecond resolution. Take it when an item is
 * enqueued; pass it to `ctx.record` when the item's task runs.
 *
 * @returns `performance.timeOrigin + performance.now()`.
 */
export function stamp(): number {
  return performance.timeOrigin + performance.now();
}
