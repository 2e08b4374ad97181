/**
 * Timer handles and the indexed binary heap that orders them by deadline,
 * ties broken by creation sequence. Insert, cancel and pop are O(log n);
 * each timer knows its heap index, so cancel removes it at once and memory
 * stays bounded by the live timers.
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

/** What a loop needs from its timers; implemented by `Loop`. */
export interface TimerHost {
  /** @internal Re-inserts or removes a timer after a state change. */
  timerChanged(timer: Timer, wasRefed: boolean): void;
}

/** Timer state: waiting in the heap. */
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
 * A handle to a scheduled callback.
 */
export class Timer {
  /** When it is next due, in the loop clock's milliseconds. */
  deadline: number;
  /** Creation order; breaks deadline ties. Renewed by `refresh()`. */
  seq: number;
  /** Repeat period in ms, or 0 for a one-shot timer. */
  readonly interval: number;
  /** The callback. */
  readonly callback: () => void;
  /** Position in the heap, or -1 when not in it. */
  heapIndex: number = -1;
  /** One of `TIMER_PENDING`, `TIMER_QUEUED`, `TIMER_DONE`. */
  state: number = TIMER_PENDING;
  /** The delay it was created with (for `refresh`). */
  readonly delay: number;
  #refed = true;
  readonly #host: TimerHost;

  /** @internal Created by `Loop.setTimer`. */
  constructor(
    host: TimerHost,
    callback: () => void,
    deadline: number,
    delay: number,
    interval: number,
    seq: number,
  ) {
    this.#host = host;
    this.callback = callback;
    this.deadline = deadline;
    this.delay = delay;
    this.interval = interval;
    this.seq = seq;
  }

  /**
   * Cancels the timer: it will not run, even if it is already due in the
   * current pass. Idempotent.
   */
  cancel(): void {
    if (this.state === TIMER_DONE) return;
    const refed = this.#refed;
    this.state = TIMER_DONE;
    this.#host.timerChanged(this, refed);
  }

  /**
   * Restarts the countdown from now with the original delay, as if newly
   * created (it also takes a new place among equal deadlines). Revives a
   * fired one-shot timer; a cancelled one too.
   *
   * @returns This timer.
   */
  refresh(): this {
    const refed = this.#refed;
    this.state = TIMER_PENDING;
    this.deadline = Number.NaN; // set by the host from its clock
    this.#host.timerChanged(this, refed);
    return this;
  }

  /**
   * Lets this timer keep `run()` alive (the default).
   *
   * @returns This timer.
   */
  ref(): this {
    const was = this.#refed;
    this.#refed = true;
    if (!was && this.state !== TIMER_DONE) this.#host.timerChanged(this, was);
    return this;
  }

  /**
   * Stops this timer from keeping `run()` alive; it still fires if the loop
   * runs for other reasons.
   *
   * @returns This timer.
   */
  unref(): this {
    const was = this.#refed;
    this.#refed = false;
    if (was && this.state !== TIMER_DONE) this.#host.timerChanged(this, was);
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

function before(a: Timer, b: Timer): boolean {
  return a.deadline < b.deadline ||
    (a.deadline === b.deadline && a.seq < b.seq);
}

/** A min-heap of timers by (deadline, seq), with removal by handle. */
export class TimerHeap {
  readonly #items: Timer[] = [];

  /** @returns Number of timers in the heap. */
  get size(): number {
    return this.#items.length;
  }

  /** @returns The earliest timer, or undefined. */
  peek(): Timer | undefined {
    return this.#items[0];
  }

  /** @param t A timer not in the heap. */
  push(t: Timer): void {
    t.heapIndex = this.#items.length;
    this.#items.push(t);
    this.#up(t.heapIndex);
  }

  /** @returns The earliest timer, removed; undefined when empty. */
  pop(): Timer | undefined {
    const items = this.#items;
    if (items.length === 0) return undefined;
    const top = items[0];
    this.remove(top);
    return top;
  }

  /** @param t A timer; ignored when it is not in the heap. */
  remove(t: Timer): void {
    const items = this.#items;
    const i = t.heapIndex;
    if (i < 0 || items[i] !== t) return;
    const last = items.pop()!;
    t.heapIndex = -1;
    if (i === items.length) return;
    items[i] = last;
    last.heapIndex = i;
    this.#up(i);
    this.#down(last.heapIndex);
  }

  #up(i: number): void {
    const items = this.#items;
    const t = items[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(t, items[p])) break;
      items[i] = items[p];
      items[i].heapIndex = i;
      i = p;
    }
    items[i] = t;
    t.heapIndex = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const t = items[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(items[c + 1], items[c])) c++;
      if (!before(items[c], t)) break;
      items[i] = items[c];
      items[i].heapIndex = i;
      i = c;
    }
    items[i] = t;
    t.heapIndex = i;
  }
}
