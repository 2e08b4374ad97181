/**
 * A bounded backoff for the two places the benchmark must wait on the other
 * thread without a wake-up: the consumer seeing a push mid-window ("busy")
 * and a producer whose slot is full (PUSH_FULL; the queue has no wake-up for
 * producers waiting on space, so they poll).
 *
 * Pauses first spin on an atomic load (~12 ns each, DESIGN.md), doubling from
 * 16 loads up to {@linkcode MAX_SPIN_LOADS} (~3 µs), for as long as the run of
 * pauses is shorter than {@linkcode SPIN_BUDGET_MS}; after that each pause
 * gives up the CPU with a timed `Atomics.wait`. On a 2-vCPU machine a
 * producer caught mid-push may have been preempted, and only yielding lets
 * it finish. The budget covers the consumer's usual wake-up latency (p50
 * ~5 µs, p99 up to ~160 µs, DESIGN.md) because a yield is expensive: a timed
 * wait of 20 µs measured ~110 µs at p50 on these VMs (the kernel's timer
 * slack), and even 1 µs took ~75 µs.
 *
 * @module
 */

/** Longest single spin, in atomic loads (~3 µs). */
export const MAX_SPIN_LOADS = 256;
/** Default of how long a run of pauses spins before it starts yielding. */
export const SPIN_BUDGET_MS = 0.2;
/** Timeout of one yielding pause (it lasts ~110 µs in practice). */
export const YIELD_MS = 0.02;

/** One thread's backoff state. */
export class Backoff {
  #loads = 16;
  /** When the current run of pauses began (`performance.now()`), or 0. */
  #since = 0;
  /** Pauses taken since construction (metric). */
  pauses = 0;
  /** Pauses that yielded the CPU (metric). */
  yields = 0;
  /** Time spent in runs of pauses that have ended (metric, ms). */
  pausedMs = 0;
  /** A private word nobody notifies: the timed wait always times out. */
  readonly #scratch = new Int32Array(new SharedArrayBuffer(4));
  readonly #spinBudgetMs: number;

  /**
   * Creates a backoff in its initial (reset) state.
   *
   * @param spinBudgetMs How long a run of pauses spins before yielding.
   */
  constructor(spinBudgetMs: number = SPIN_BUDGET_MS) {
    this.#spinBudgetMs = spinBudgetMs;
  }

  /** Call when progress was made: the next pause starts a new run. */
  reset(): void {
    if (this.#since !== 0) {
      this.pausedMs += performance.now() - this.#since;
      this.#since = 0;
    }
    this.#loads = 16;
  }

  /**
   * How long the current run of pauses has lasted.
   *
   * @returns Milliseconds since the first pause after the last reset.
   */
  stalledMs(): number {
    return this.#since === 0 ? 0 : performance.now() - this.#since;
  }

  /** Waits a little: a spin while within the budget, else one yield. */
  pause(): void {
    this.pauses++;
    if (this.#since === 0) this.#since = performance.now();
    if (this.stalledMs() < this.#spinBudgetMs) {
      const loads = this.#loads;
      if (loads < MAX_SPIN_LOADS) this.#loads = loads * 2;
      let seen = 0;
      for (let i = 0; i < loads; i++) seen |= Atomics.load(this.#scratch, 0);
      if (seen !== 0) throw new Error("Cannot back off: scratch word changed");
      return;
    }
    this.yields++;
    Atomics.wait(this.#scratch, 0, 0, YIELD_MS);
  }
}
