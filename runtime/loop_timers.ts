/**
 * A loop's timers: creation, the reference count that keeps `run()` alive,
 * collecting due timers for a pass, and rescheduling repeating ones.
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
  #refed = 0;
  #closed = false;

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
    const now = this.#clock.now();
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
        t.deadline = this.#clock.now() + t.delay;
        t.seq = this.#seq++;
      }
      if (t.state === TIMER_PENDING) this.#queue.push(t);
      if (t.hasRef()) this.#refed++;
    }
    this.#changed();
  }

  /**
   * Takes every timer due at `now`, at most `room`, in (deadline, creation)
   * order, marking each queued. All are collected before any runs.
   *
   * @param now The pass's time.
   * @param room Most timers to take.
   * @param out Receives the timers.
   */
  collectDue(now: number, room: number, out: Timer[]): void {
    const from = out.length;
    this.#queue.takeDue(now, room, out);
    for (let i = from; i < out.length; i++) out[i].state = TIMER_QUEUED;
  }

  /**
   * Called when a queued timer's task runs, before its callback.
   *
   * @param t The timer.
   * @param now The pass's time.
   * @returns False when the timer was cancelled or refreshed since it was
   *   queued (it must not run).
   */
  fire(t: Timer, now: number): boolean {
    if (t.state !== TIMER_QUEUED || this.#closed) return false;
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
