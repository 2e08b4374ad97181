/**
 * A loop's timers: creation, the reference count that keeps `run()` alive,
 * collecting due timers for a pass, and rescheduling repeating ones.
 *
 * A new timer's deadline counts from the loop's time, as libuv's `uv_now`:
 * inside a pass (a task calling `setTimer`), the pass's time, read once per
 * pass at its first use ({@linkcode LoopTimers.time}; a pass with timers
 * pending reads it first thing, to find the due ones); outside a pass, with
 * a real clock, the time read at the first `setTimer` of the current turn
 * (kept until a microtask queued at that read clears it, or until any loop
 * on this thread begins or ends a pass; promise reactions queued before that
 * microtask share it, as Node's `setTimeout` counts from libuv's cached loop
 * time); with a virtual clock, a fresh read, so `advance()` then `setTimer()` count from the new time. A
 * clock read costs ~95-190 ns here (`performance.now()`), more than the
 * rest of `setTimer` (~35-70 ns: `bench/timers.ts`, VirtualClock insert);
 * the price is that a timer set late in a long pass or turn is due that
 * much earlier than its delay from the moment it was set.
 * `refresh()` is rarer and always reads the clock: "restart the countdown
 * from now" means the moment of the call.
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import { LoopClosedError } from "./port.ts";
import {
  GEN_BITS,
  GEN_SHIFT,
  REFED,
  REPEAT,
  STATE_MASK,
  TimerQueue,
} from "./timer_queue.ts";
import {
  checkDelay,
  Timer,
  TIMER_DONE,
  TIMER_PENDING,
  TIMER_QUEUED,
  type TimerHost,
} from "./timers.ts";

/** Passes begun on this thread by any loop (see `LoopTimers.time`). */
let passEpoch = 0;

/** The timer side of a loop. */
export class LoopTimers implements TimerHost {
  readonly #clock: Clock;
  readonly #changed: () => void;
  readonly #q = new TimerQueue();
  #seq = 0;
  #refed = 0;
  #closed = false;
  /** Whether a pass is running (set and cleared by the loop). */
  inPass = false;
  /**
   * The running pass's time, or NaN when not read yet in this pass or
   * outside a pass. Cleared by the loop at a pass's start and end.
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
    return this.#q.size;
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
    const id = this.#add(callback, this.time() + delay, delay, every, REFED);
    return new Timer(this, id, this.timerGen(id), callback, delay, every);
  }

  /** A new pending timer; returns its id. */
  #add(
    callback: () => void,
    deadline: number,
    delay: number,
    interval: number,
    refed: number,
  ): number {
    const q = this.#q;
    const id = q.alloc(); // may grow the arrays: read them after
    q.deadline[id] = deadline;
    q.seq[id] = this.#seq++;
    q.flags[id] = (q.flags[id] & GEN_BITS) | TIMER_PENDING | refed;
    if (interval > 0) q.setInterval(id, interval);
    q.callbacks[id] = callback;
    q.insert(id, delay);
    if (refed !== 0) this.#refed++;
    return id;
  }

  /** The timer's state word when (id, gen) names a live timer, else -1. */
  #live(id: number, gen: number): number {
    return this.#q.live(id, gen);
  }

  /** {@inheritDoc TimerHost.timerState} */
  timerState(id: number, gen: number): number {
    const f = this.#live(id, gen);
    return f < 0 ? TIMER_DONE : f & STATE_MASK;
  }

  /** {@inheritDoc TimerHost.timerDeadline} */
  timerDeadline(id: number, gen: number): number {
    return this.#live(id, gen) < 0 ? NaN : this.#q.deadline[id];
  }

  /** {@inheritDoc TimerHost.timerSeq} */
  timerSeq(id: number, gen: number): number {
    return this.#live(id, gen) < 0 ? NaN : this.#q.seq[id];
  }

  /** {@inheritDoc TimerHost.timerGen} */
  timerGen(id: number): number {
    return this.#q.flags[id] >>> GEN_SHIFT;
  }

  /** {@inheritDoc TimerHost.cancelTimer} */
  cancelTimer(id: number, gen: number): void {
    const f = this.#live(id, gen);
    if (f < 0 || (f & STATE_MASK) === TIMER_DONE) return;
    if ((f & STATE_MASK) === TIMER_PENDING) this.#q.remove(id);
    if ((f & REFED) !== 0) this.#refed--;
    this.#q.free(id); // a queued entry finds the id free: it does not run
    this.#changed();
  }

  /** {@inheritDoc TimerHost.refreshTimer} */
  refreshTimer(t: Timer, id: number, gen: number, refed: boolean): number {
    if (this.#closed) throw new LoopClosedError(undefined, "refresh timer");
    const q = this.#q;
    const f = this.#live(id, gen);
    const now = this.#clock.now(); // see the module docs
    if (f < 0) {
      const r = refed ? REFED : 0;
      id = this.#add(t.callback, now + t.delay, t.delay, t.interval, r);
    } else {
      // Live: pending, queued, or done inside its own callback (revived).
      const state = f & STATE_MASK;
      if (state === TIMER_PENDING) q.remove(id);
      if (state === TIMER_DONE && refed) this.#refed++;
      q.deadline[id] = now + t.delay;
      q.seq[id] = this.#seq++;
      q.flags[id] = (f & ~(STATE_MASK | REFED)) | TIMER_PENDING |
        (refed ? REFED : 0);
      q.insert(id, t.delay);
    }
    this.#changed();
    return id;
  }

  /** {@inheritDoc TimerHost.refChanged} */
  refChanged(id: number, gen: number, refed: boolean): void {
    const f = this.#live(id, gen);
    if (f < 0 || (f & STATE_MASK) === TIMER_DONE) return;
    const q = this.#q;
    if (refed) {
      q.flags[id] = f | REFED;
      this.#refed++;
    } else {
      q.flags[id] = f & ~REFED;
      this.#refed--;
    }
    this.#changed();
  }

  /**
   * Takes every timer due at `now`, at most `room`, in (deadline, creation)
   * order, marking each queued. Its run-queue entry carries the low 32
   * bits of its `seq` as a ticket for `fire`: a `refresh()` renews `seq`,
   * a free hands the id to a timer with a new one. All are collected
   * before any runs.
   *
   * @param now The pass's time.
   * @param room Most timers to take.
   * @param ids Receives their ids from index 0.
   * @param tickets Receives their tickets, index for index.
   * @returns How many were taken.
   */
  collectDue(
    now: number,
    room: number,
    ids: Int32Array,
    tickets: Int32Array,
  ): number {
    const q = this.#q;
    const n = q.takeDue(now, room, ids);
    const flags = q.flags;
    const seq = q.seq;
    for (let k = 0; k < n; k++) {
      const id = ids[k];
      flags[id] = (flags[id] & ~STATE_MASK) | TIMER_QUEUED;
      tickets[k] = seq[id]; // int32 array: keeps the low 32 bits
    }
    return n;
  }

  /**
   * Called when a queued timer's task runs, before its callback. A one-shot
   * timer is done from here on; its id is freed by `settle` after the
   * callback (so the callback can still read its handle, or revive it).
   *
   * @param id The timer's id, from its run-queue entry.
   * @param ticket The ticket its run-queue entry carries.
   * @returns The callback to run, or undefined when the timer was
   *   cancelled or refreshed since this entry was queued (it must not run:
   *   a refreshed timer runs from its new entry, in deadline order, or not
   *   yet), or the loop is closed.
   */
  fire(id: number, ticket: number): (() => void) | undefined {
    const q = this.#q;
    const f = q.flags[id];
    if ((f & STATE_MASK) !== TIMER_QUEUED || (q.seq[id] | 0) !== ticket) {
      return undefined;
    }
    if (this.#closed) return undefined;
    if ((f & REPEAT) !== 0) {
      // Keep the phase; skip ticks already past (no drift, no burst),
      // counted at the pass's time (read here: one-shots do not need it).
      const every = q.interval(id);
      const at = q.deadline[id];
      const behind = Math.floor((this.time() - at) / every) + 1;
      q.deadline[id] = at + Math.max(1, behind) * every;
      q.flags[id] = (f & ~STATE_MASK) | TIMER_PENDING;
      q.insert(id, every);
    } else {
      q.flags[id] = (f & ~STATE_MASK) | TIMER_DONE;
      if ((f & REFED) !== 0) this.#refed--;
    }
    return q.callbacks[id];
  }

  /**
   * After a fired timer's callback returned or threw: frees the id of a
   * one-shot timer that is still done. A timer the callback refreshed is
   * pending again; one it refreshed and cancelled was freed then (and its
   * id may already hold a new timer, which is pending or has a new `seq`:
   * a done timer always carries the ticket it was fired with).
   *
   * @param id The timer's id.
   * @param ticket The ticket `fire` accepted.
   */
  settle(id: number, ticket: number): void {
    const q = this.#q;
    if (
      (q.flags[id] & STATE_MASK) === TIMER_DONE && (q.seq[id] | 0) === ticket
    ) {
      q.free(id);
    }
  }

  /**
   * @returns The loop's time: inside a pass, the pass's (the clock read at
   *   its first use in the pass); outside one, the turn's (see the module
   *   docs), or a fresh read of a virtual clock.
   */
  time(): number {
    let now = this.passNow;
    // NaN: not read yet in this pass or turn. A turn's time also ends when
    // any loop on this thread begins or ends a pass (a blocking drive runs
    // no microtask that could end it).
    if (now === now && (this.inPass || this.#turnEpoch === passEpoch)) {
      return now;
    }
    now = this.#clock.now();
    if (this.inPass) {
      this.passNow = now;
    } else if (!this.#clock.virtual) {
      this.passNow = now;
      this.#turnEpoch = passEpoch;
      if (!this.#turnEnding) {
        this.#turnEnding = true; // one microtask, however many reads
        queueMicrotask(this.#endTurn);
      }
    }
    return now;
  }

  /** A microtask to end the turn's time is queued. */
  #turnEnding = false;
  /** `passEpoch` when the turn's time was read. */
  #turnEpoch = 0;

  /**
   * A pass of this loop begins (`true`: its time is read afresh) or ends.
   * Either ends every loop's turn time on this thread: after a pass a
   * blocking drive may sleep, and no microtask runs to end them.
   *
   * @param inPass Whether a pass is now running.
   */
  setPass(inPass: boolean): void {
    passEpoch++;
    this.inPass = inPass;
    this.passNow = NaN;
  }

  /** Ends a turn's time (outside a pass); a pass clears it itself. */
  readonly #endTurn = (): void => {
    this.#turnEnding = false;
    if (!this.inPass) this.passNow = NaN;
  };

  /** @returns The earliest pending deadline, or Infinity. */
  nextDeadline(): number {
    return this.#q.nextDeadline();
  }

  /**
   * Cancels every timer for good (the loop is closing): pending ones leave
   * the queue, queued ones will not fire.
   */
  cancelAll(): void {
    this.#closed = true;
    this.#q.clear();
    this.#refed = 0;
  }
}
