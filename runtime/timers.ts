/**
 * Timer handles ({@linkcode Timer}), their states and delay validation.
 * The timers themselves live in the loop's store, ordered by deadline,
 * ties broken by creation sequence (`timer_queue.ts`: insert and cancel
 * O(1) or O(log n); memory bounded by four times the larger peak of live
 * timers of the last two bursts, a burst ending when the loop has none).
 *
 * ## Delay meanings (validated by {@linkcode checkDelay})
 *
 * | delay                       | meaning                                     |
 * | --------------------------- | ------------------------------------------- |
 * | 0                           | due on the next pass                        |
 * | fraction (1.5)              | kept exactly; the clock is in fractional ms |
 * | above 2^31-1                | kept exactly; no wrap (no host timer used)  |
 * | negative, NaN, Infinity     | `RangeError`                                |
 * | not a number                | `TypeError`                                 |
 * | interval of 0 (repeating)   | `RangeError`: it would fire every pass      |
 *
 * Repeating timers keep their phase: the n-th run is due at
 * `start + n * interval`, so lateness never accumulates. A timer that falls
 * more than one interval behind skips the missed ticks (it runs once, then
 * is due at the first phase point after now), like tokio's
 * `MissedTickBehavior::Skip`.
 *
 * @module
 */

/**
 * What a timer handle needs from its loop; implemented by `LoopTimers`. A
 * handle names its timer by (id, generation); once the timer is done and
 * its id freed, the generation no longer matches and the timer reads as
 * done.
 */
export interface TimerHost {
  /**
   * @param id The handle's id.
   * @param gen The handle's generation.
   * @returns `TIMER_PENDING`, `TIMER_QUEUED` or `TIMER_DONE`.
   */
  timerState(id: number, gen: number): number;
  /**
   * @param id The handle's id.
   * @param gen The handle's generation.
   * @returns Its deadline, or NaN once it is done and its id freed.
   */
  timerDeadline(id: number, gen: number): number;
  /**
   * @param id The handle's id.
   * @param gen The handle's generation.
   * @returns Its creation sequence, or NaN once done and its id freed.
   */
  timerSeq(id: number, gen: number): number;
  /**
   * @param id An id.
   * @returns Its current generation.
   */
  timerGen(id: number): number;
  /**
   * Cancels the timer if it is still pending or queued.
   *
   * @param id The handle's id.
   * @param gen The handle's generation.
   */
  cancelTimer(id: number, gen: number): void;
  /**
   * Restarts the countdown from a fresh clock read; revives a done timer,
   * under a new id when its old one was freed.
   *
   * @param t The handle (for its callback, delay and interval).
   * @param id The handle's id.
   * @param gen The handle's generation.
   * @param refed Whether the handle is referenced.
   * @returns The timer's id from now on.
   * @throws {LoopClosedError} The loop is closed.
   */
  refreshTimer(t: Timer, id: number, gen: number, refed: boolean): number;
  /**
   * Counts a live timer as referenced or not.
   *
   * @param id The handle's id.
   * @param gen The handle's generation.
   * @param refed The new setting.
   */
  refChanged(id: number, gen: number, refed: boolean): void;
}

/** Timer state: waiting for its deadline. */
export const TIMER_PENDING = 0;
/** Timer state: moved into the run queue for this pass. */
export const TIMER_QUEUED = 1;
/** Timer state: fired (one-shot) or cancelled. */
export const TIMER_DONE = 2;

/**
 * Validates a delay or interval.
 *
 * @param action For the error message, e.g. "set timer".
 * @param name "delay" or "interval".
 * @param ms The value given.
 * @param allowZero Whether 0 is valid.
 * @returns `ms`, known to be a finite number >= 0.
 * @throws {TypeError} Not a number.
 * @throws {RangeError} Negative, NaN, infinite, or 0 when not allowed.
 */
export function checkDelay(
  action: string,
  name: string,
  ms: unknown,
  allowZero = true,
): number {
  if (typeof ms !== "number") {
    throw new TypeError(
      `Cannot ${action}: ${name} must be a number, got ${typeof ms}`,
    );
  }
  if (!Number.isFinite(ms) || ms < 0 || (!allowZero && ms === 0)) {
    throw new RangeError(
      `Cannot ${action}: ${name} must be a finite number ${
        allowZero ? ">= 0" : "> 0"
      }, got ${ms}`,
    );
  }
  return ms;
}

/**
 * A handle to a scheduled callback. The timer itself lives in its loop's
 * timer store; the handle names it and keeps what `refresh()` needs to
 * revive it, so dropping a handle frees nothing a pending timer needs.
 */
export class Timer {
  /** Repeat period in ms, or 0 for a one-shot timer. */
  readonly interval: number;
  /** The callback. */
  readonly callback: () => void;
  /** The delay it was created with (for `refresh`). */
  readonly delay: number;
  readonly #host: TimerHost;
  #id: number;
  #gen: number;
  #refed = true;

  /** @internal Created by `Loop.setTimer`. */
  constructor(
    host: TimerHost,
    id: number,
    gen: number,
    callback: () => void,
    delay: number,
    interval: number,
  ) {
    this.#host = host;
    this.#id = id;
    this.#gen = gen;
    this.callback = callback;
    this.delay = delay;
    this.interval = interval;
  }

  /**
   * When it is next due, in the loop clock's milliseconds; inside its own
   * callback, when it was due. NaN once done (fired or cancelled) and past
   * its callback.
   */
  get deadline(): number {
    return this.#host.timerDeadline(this.#id, this.#gen);
  }

  /**
   * Creation order; breaks deadline ties. Renewed by `refresh()`. NaN when
   * `deadline` is.
   */
  get seq(): number {
    return this.#host.timerSeq(this.#id, this.#gen);
  }

  /** One of `TIMER_PENDING`, `TIMER_QUEUED`, `TIMER_DONE`. */
  get state(): number {
    return this.#host.timerState(this.#id, this.#gen);
  }

  /**
   * Cancels the timer: it will not run, even if it is already due in the
   * current pass. Idempotent.
   */
  cancel(): void {
    this.#host.cancelTimer(this.#id, this.#gen);
  }

  /**
   * Restarts the countdown from now with the original delay, as if newly
   * created (it also takes a new place among equal deadlines). Revives a
   * fired one-shot timer; a cancelled one too. A timer already due and
   * queued in this pass loses that place: it runs at its new deadline, in
   * deadline order. "Now" is a fresh clock read, even inside a pass.
   *
   * @returns This timer.
   * @throws {LoopClosedError} The loop is closed (its timers were cancelled
   *   for good).
   */
  refresh(): this {
    const host = this.#host;
    this.#id = host.refreshTimer(this, this.#id, this.#gen, this.#refed);
    this.#gen = host.timerGen(this.#id);
    return this;
  }

  /**
   * Lets this timer keep `run()` alive (the default).
   *
   * @returns This timer.
   */
  ref(): this {
    if (!this.#refed) {
      this.#refed = true;
      this.#host.refChanged(this.#id, this.#gen, true);
    }
    return this;
  }

  /**
   * Stops this timer from keeping `run()` alive; it still fires if the loop
   * runs for other reasons.
   *
   * @returns This timer.
   */
  unref(): this {
    if (this.#refed) {
      this.#refed = false;
      this.#host.refChanged(this.#id, this.#gen, false);
    }
    return this;
  }

  /**
   * Tells whether the timer is referenced.
   *
   * @returns Whether the timer keeps `run()` alive.
   */
  hasRef(): boolean {
    return this.#refed;
  }
}
