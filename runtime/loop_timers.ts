/**
 * A loop's timers: creation, the reference count that keeps `run()` alive,
 * collecting due timers for a pass, and rescheduling repeating ones.
 *
 * A new timer's deadline counts from the loop's time, as libuv's `uv_now`:
 * inside a pass (a task calling `setTimer`), the time the pass read at its
 * start ({@linkcode LoopTimers.passNow}); outside a pass, a fresh clock
 * read. A clock read costs 160-370 ns here (`performance.now()`), as much
 * as the rest of `setTimer`; the price is that a timer set late in a long
 * pass is due that much earlier than its delay from the moment it was set.
 * `refresh()` is rarer and always reads the clock: "restart the countdown
 * from now" means the moment of the call.
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import {
  checkDelay,
  Timer,
  TIMER_DONE,
  TIMER_PENDING,
  TIMER_QUEUED,
  type TimerHost,
  TimerQueue,
} from "./timers.ts";

/** The timer side of a loop. */
export class LoopTimers implements TimerHost {
  readonly #clock: Clock;
  readonly #changed: () => void;
  readonly #queue = new TimerQueue();
  #seq = 0;
  #ticket = 0;
  #refed = 0;
  #closed = false;
  /**
   * The running pass's time, or NaN outside a pass (then the clock is read).
   * Set by the loop at the start of a pass and cleared at its end.
   */
  passNow = NaN;

  /**
   * Binds the timers to the loop's clock.
   *
   * @param clock The loop's clock.
   * @param changed Called after a timer changed (cancel, refresh, ref):
   *   the loop wakes if asleep, to recompute its sleep.
   */
  constructor(clock: Clock, changed: () => void) {
    this.#clock = clock;
    this.#changed = changed;
  }

  /** @returns Referenced timers pending or queued (they keep `run()` alive). */
  get refed(): number {
    return this.#refed;
  }

  /** @returns Timers waiting for their deadline. */
  get pending(): number {
    return this.#queue.size;
  }

  /**
   * Creates a timer; see `Loop.setTimer`.
   *
   * @param callback Runs when due.
   * @param delay Milliseconds from now.
   * @param interval Repeat period, or undefined.
   * @returns The handle.
   */
  set(callback: () => void, delay: number, interval?: number): Timer {
    if (typeof callback !== "function") {
      throw new TypeError("Cannot set timer: callback must be a function");
    }
    checkDelay("set timer", "delay", delay);
    const every = interval === undefined
      ? 0
      : checkDelay("set timer", "interval", interval, false);
    const now = this.#time();
    const t = new Timer(this, callback, now + delay, delay, every, this.#seq++);
    this.#queue.push(t);
    this.#refed++;
    return t;
  }

  /**
   * Keeps the queue and the reference count in step with a timer whose
   * state just changed (cancel, refresh, ref, unref).
   *
   * @param t The timer.
   * @param wasRefed Referenced before the change.
   * @param wasLive Pending or queued before the change.
   */
  timerChanged(t: Timer, wasRefed: boolean, wasLive: boolean): void {
    if (wasLive && wasRefed) this.#refed--;
    this.#queue.remove(t);
    if (t.state !== TIMER_DONE) {
      if (Number.isNaN(t.deadline)) {
        t.deadline = this.#clock.now() + t.delay; // see the module docs
        t.seq = this.#seq++;
      }
      if (t.state === TIMER_PENDING) this.#queue.push(t);
      if (t.hasRef()) this.#refed++;
    }
    this.#changed();
  }

  /**
   * Takes every timer due at `now`, at most `room`, in (deadline, creation)
   * order, marking each queued with a new ticket, which its run-queue entry
   * must carry to `fire`. All are collected before any runs.
   *
   * @param now The pass's time.
   * @param room Most timers to take.
   * @param out Receives the timers.
   */
  collectDue(now: number, room: number, out: Timer[]): void {
    const from = out.length;
    this.#queue.takeDue(now, room, out);
    for (let i = from; i < out.length; i++) {
      out[i].state = TIMER_QUEUED;
      out[i].ticket = this.#ticket = (this.#ticket + 1) | 0;
    }
  }

  /**
   * Called when a queued timer's task runs, before its callback.
   *
   * @param t The timer.
   * @param ticket The ticket its run-queue entry carries.
   * @param now The pass's time.
   * @returns False when the timer was cancelled or refreshed since this
   *   entry was queued (it must not run: a refreshed timer runs from its
   *   new entry, in deadline order, or not yet).
   */
  fire(t: Timer, ticket: number, now: number): boolean {
    if (t.state !== TIMER_QUEUED || t.ticket !== ticket) return false;
    if (this.#closed) return false;
    if (t.interval > 0) {
      // Keep the phase; skip ticks already past (no drift, no burst).
      const behind = Math.floor((now - t.deadline) / t.interval) + 1;
      t.deadline += Math.max(1, behind) * t.interval;
      t.state = TIMER_PENDING;
      this.#queue.push(t);
    } else {
      t.state = TIMER_DONE;
      if (t.hasRef()) this.#refed--;
    }
    return true;
  }

  /** @returns The loop's time: the pass's inside one, else the clock's. */
  #time(): number {
    const now = this.passNow;
    return now === now ? now : this.#clock.now(); // NaN: outside a pass
  }

  /** @returns The earliest pending deadline, or Infinity. */
  nextDeadline(): number {
    return this.#queue.peek()?.deadline ?? Infinity;
  }

  /**
   * Cancels every timer for good (the loop is closing): pending ones leave
   * the queue, queued ones will not fire.
   */
  cancelAll(): void {
    this.#closed = true;
    this.#queue.clear();
    this.#refed = 0;
  }
}
