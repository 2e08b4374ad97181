/**
 * Time series of a running loop: every tick (100 ms of real time by
 * default) the runner reads the loop's counters and its queue depth and
 * keeps one {@linkcode Sample}. Progress lines and the HTML charts are drawn
 * from these samples.
 *
 * Counters are cumulative; rates are per second of real time over the
 * interval since the previous sample.
 *
 * @module
 */

import type { Loop } from "../runtime/loop.ts";

/** One reading of the loop. */
export interface Sample {
  /** Real seconds since the run started. */
  readonly t: number;
  /** Loop clock ms since the run started (differs under virtual time). */
  readonly clockMs: number;
  /** Items queued (`loop.pending()`, a snapshot). */
  readonly depth: number;
  /** Tasks run so far, every source. */
  readonly tasks: number;
  /** Items from other threads (source `entry`) run so far. */
  readonly messages: number;
  /** Sleeps ended by a producer's wake so far. */
  readonly wakes: number;
  /** Tasks per second since the previous sample. */
  readonly taskRate: number;
  /** Messages per second since the previous sample. */
  readonly messageRate: number;
  /** Wakes per second since the previous sample. */
  readonly wakeRate: number;
}

/** Collects samples of one loop. */
export class Sampler {
  readonly #loop: Loop;
  readonly #t0: number;
  readonly #clock0: number;
  /** Samples in time order (the first is the start, all zero). */
  readonly samples: Sample[] = [];

  /**
   * Starts the series with an all-zero sample.
   *
   * @param loop The loop to read.
   */
  constructor(loop: Loop) {
    this.#loop = loop;
    this.#t0 = performance.now();
    this.#clock0 = loop.clock.now();
    this.samples.push({
      t: 0,
      clockMs: 0,
      depth: loop.pending(),
      tasks: 0,
      messages: 0,
      wakes: 0,
      taskRate: 0,
      messageRate: 0,
      wakeRate: 0,
    });
  }

  /** @returns Real seconds since the start. */
  elapsed(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  /**
   * Takes one sample.
   *
   * @returns The new sample.
   */
  sample(): Sample {
    const m = this.#loop.metrics();
    const t = this.elapsed();
    const prev = this.samples[this.samples.length - 1];
    const tasks = m.tasks.task + m.tasks.timer + m.tasks.entry + m.tasks.host;
    const dt = Math.max(t - prev.t, 1e-6);
    const s: Sample = {
      t,
      clockMs: this.#loop.clock.now() - this.#clock0,
      depth: this.#loop.pending(),
      tasks,
      messages: m.tasks.entry,
      wakes: m.wakes,
      taskRate: (tasks - prev.tasks) / dt,
      messageRate: (m.tasks.entry - prev.messages) / dt,
      wakeRate: (m.wakes - prev.wakes) / dt,
    };
    this.samples.push(s);
    return s;
  }

  /**
   * Rates over the last `seconds` (at least the last interval).
   *
   * @param seconds The window.
   * @returns Tasks, messages and wakes per second.
   */
  recentRates(
    seconds: number,
  ): { tasks: number; messages: number; wakes: number } {
    const s = this.samples;
    const last = s[s.length - 1];
    let i = s.length - 2;
    while (i > 0 && last.t - s[i].t < seconds) i--;
    const from = s[Math.max(0, i)];
    const dt = Math.max(last.t - from.t, 1e-6);
    return {
      tasks: (last.tasks - from.tasks) / dt,
      messages: (last.messages - from.messages) / dt,
      wakes: (last.wakes - from.wakes) / dt,
    };
  }
}
