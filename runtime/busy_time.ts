/**
 * The async drive's busy time since the host last had a turn, read from the
 * clock as rarely as its bound allows (see {@linkcode BusyTime}).
 *
 * @module
 */

/** Most passes between two clock reads of {@linkcode BusyTime}. */
export const BUSY_STRIDE_MAX = 4;

/**
 * Busy time since the host last had a turn. A clock read costs 60-190 ns on
 * these VMs, half of what the async drive adds to a pass of quick tasks
 * (measured: the drive's overhead per task of a chain of tasks fell from ~13
 * to ~6 ns without it). So the clock is read after every pass while passes
 * are slow, and after every 2nd, then 4th pass while the passes between two
 * reads took under a sixteenth of the budget: a turn comes at most 3 passes
 * late, when passes turn slow right after quick ones.
 */
export class BusyTime {
  readonly #now: () => number;
  #since: number;
  #lastRead: number;
  #stride = 1;
  #left = 1;
  /** The smallest budget asked for since the last read. */
  #budget = Infinity;

  /**
   * @param start The time the drive started, from `now`.
   * @param now The clock, in ms.
   */
  constructor(start: number, now: () => number) {
    this.#now = now;
    this.#since = this.#lastRead = start;
  }

  /** The host had a turn (a real sleep, or an I/O turn). */
  yielded(): void {
    this.#since = this.#lastRead = this.#now();
    this.#stride = this.#left = 1;
    this.#budget = Infinity;
  }

  /**
   * Called after a pass that kept the drive busy.
   *
   * @param budgetMs Busy time after which the host is owed a turn; the
   *   next clock read compares with the smallest one since the last read.
   * @returns True when a turn is owed.
   */
  over(budgetMs: number): boolean {
    // The budget shrinks while tracked operations are in flight: a pass
    // that skips its read still holds the next read to its budget.
    if (budgetMs < this.#budget) this.#budget = budgetMs;
    if (--this.#left > 0) return false;
    budgetMs = this.#budget;
    this.#budget = Infinity;
    const now = this.#now();
    if (now - this.#since > budgetMs) return true;
    const quick = now - this.#lastRead < budgetMs / 16;
    this.#stride = quick ? Math.min(this.#stride * 2, BUSY_STRIDE_MAX) : 1;
    this.#left = this.#stride;
    this.#lastRead = now;
    return false;
  }
}
