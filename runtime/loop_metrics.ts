/**
 * Counters a loop keeps about itself. Plain field increments on the loop
 * thread (no atomics); producers' notify count is read from the queue buffer
 * only when a snapshot is taken.
 *
 * @module
 */

import type { SleepResult, Waiter } from "./wake.ts";

/** A task source name, as counted in {@linkcode LoopMetrics.tasks}. */
export type Source = "task" | "timer" | "entry" | "host";

/** A snapshot of a loop's counters. */
export interface LoopMetrics {
  /** Tasks run, per source: `task` (queue), `timer`, `entry` (other threads), `host`. */
  readonly tasks: Readonly<Record<Source, number>>;
  /** Timers fired (same as `tasks.timer`). */
  readonly timersFired: number;
  /** Passes made. */
  readonly passes: number;
  /** Times the waiter armed. */
  readonly armings: number;
  /** Sleeps that blocked. */
  readonly sleeps: number;
  /** Sleeps ended by a producer's wake (not a timeout). */
  readonly wakes: number;
  /** Notifies sent by producers (read from shared memory). */
  readonly notifies: number;
  /** Passes that found a producer mid-push. */
  readonly busy: number;
  /** Stalls the watchdog reported (see `loop_watchdog.ts`). */
  readonly stalls: number;
  /**
   * Largest queue depth seen after a pass (an estimate, see
   * `MpscQueue.depth`), sampled after the first pass of a backlog and every
   * 8th pass while it lasts, so it can miss up to 7 passes' growth.
   */
  readonly peakDepth: number;
  /** Timers waiting in the heap. */
  readonly pendingTimers: number;
  /** Milliseconds inside run methods. */
  readonly runMs: number;
  /** Milliseconds of that spent asleep. */
  readonly idleMs: number;
  /** Share of run time not asleep, 0 to 1 (never negative). */
  readonly utilization: number;
}

/** Mutable counters behind {@linkcode LoopMetrics}. */
export class MetricsCollector {
  readonly #tasks = new Float64Array(4);
  #passes = 0;
  #wakes = 0;
  #busy = 0;
  #peak = 0;
  #runMs = 0;
  #idleMs = 0;

  /** Counts one pass. */
  pass(): void {
    this.#passes++;
  }

  /** @param source 0 task, 1 timer, 2 entry, 3 host. */
  ran(source: number): void {
    this.#tasks[source]++;
  }

  /** Counts a pass that met a producer mid-push. */
  busy(): void {
    this.#busy++;
  }

  /** @param d Queue depth after a pass. */
  depth(d: number): void {
    if (d > this.#peak) this.#peak = d;
  }

  /**
   * @param r How the sleep ended.
   * @param ms How long it took.
   */
  slept(r: SleepResult, ms: number): void {
    if (r === "woken") this.#wakes++;
    if (r !== "work") this.#idleMs += Math.max(0, ms);
  }

  /** @param ms Time spent in one run method call. */
  ranFor(ms: number): void {
    this.#runMs += Math.max(0, ms);
  }

  /**
   * @param waiter The loop's waiter (armings, sleeps, notifies).
   * @param pendingTimers Timers in the heap.
   * @param stalls Stalls the watchdog reported.
   * @returns A frozen snapshot.
   */
  snapshot(
    waiter: Waiter,
    pendingTimers: number,
    stalls: number,
  ): LoopMetrics {
    const t = this.#tasks;
    const idle = Math.min(this.#idleMs, this.#runMs);
    return Object.freeze({
      tasks: Object.freeze({
        task: t[0],
        timer: t[1],
        entry: t[2],
        host: t[3],
      }),
      timersFired: t[1],
      passes: this.#passes,
      armings: waiter.armings,
      sleeps: waiter.sleeps,
      wakes: this.#wakes,
      notifies: waiter.notifies(),
      busy: this.#busy,
      stalls,
      peakDepth: this.#peak,
      pendingTimers,
      runMs: this.#runMs,
      idleMs: idle,
      utilization: this.#runMs > 0 ? Math.max(0, 1 - idle / this.#runMs) : 0,
    });
  }
}
