/**
 * The loop's stall watchdog: notices work that is queued but not running,
 * wakes the loop, and says what it saw.
 *
 * ## What counts as a stall
 *
 * 1. **Lost wake-up.** The loop never sleeps longer than `stallMs` at a time.
 *    When a sleep times out still armed (no producer claimed its wake) and
 *    the queue holds work, the wake the protocol promises did not come if
 *    either the producers' count reached the armed threshold (`added >=
 *    waitNr`) or the queue holds at least `waitNr` items (a producer pushed
 *    without counting). Fewer lazy items than the threshold is not a stall:
 *    that is what `minEvents` asks for, and the loop just runs them.
 * 2. **Stuck producer.** The queue has read "busy" (a push exchanged but not
 *    linked) for longer than `stallMs` and the producer is not known dead.
 *    The report names the slot whose recorded push holds the cursor.
 *
 * Either way the loop goes on: after a lost wake-up it runs the work at
 * once; behind a stuck producer it keeps pausing (the producer may only be
 * descheduled) and reports once per episode. Reports go to `onWarning`;
 * without one the loop says nothing (a library never writes to the console).
 * An `onWarning` that throws is the loop's error like a task's: it goes to
 * `onError`, or without one out of the run method.
 *
 * A sleep asked for `stallMs` or longer that timed out counts as a full
 * `stallMs` even when the host ended it a little early: Node's
 * `Atomics.waitAsync(..., 30)` was measured returning after 29.17 ms.
 *
 * @module
 */

import type { MpscQueue } from "./mpsc_queue.ts";
import type { Waiter } from "./wake.ts";

/** A stall the watchdog saw. */
export interface LoopWarning {
  /** `lost-wakeup`: work waited a full `stallMs` with no wake; `stuck-producer`: a push stayed half-linked. */
  readonly kind: "lost-wakeup" | "stuck-producer";
  /** One line saying what happened, for logs. */
  readonly message: string;
  /**
   * Milliseconds the work waited before the watchdog acted, as measured:
   * `stallMs` or more, or a little less when the host ended a sleep of
   * `stallMs` early.
   */
  readonly stalledMs: number;
  /** Estimated items queued (`MpscQueue.depth`). */
  readonly queued: number;
  /** The wake threshold the loop was still armed with (0 for `stuck-producer`). */
  readonly waitNr: number;
  /** Lazy adds counted during that arming. */
  readonly added: number;
  /** Slot of the producer holding a half-linked push, or -1. */
  readonly slot: number;
}

/** Watches one loop's sleeps and busy pauses. */
export class Watchdog {
  /** Longest a sleep may last, ms (`Infinity`: the watchdog is off). */
  readonly stallMs: number;
  /** Receives each report. */
  onWarning: ((warning: LoopWarning) => void) | undefined;
  /** Receives what `onWarning` throws (the loop's error path). */
  onError: (error: unknown) => void = (error) => {
    throw error;
  };
  /** Stalls seen (metric). */
  stalls = 0;
  readonly #q: MpscQueue;
  readonly #waiter: Waiter;
  #busySince = -1;
  #busyReported = false;

  /**
   * Watches a queue and its waiter.
   *
   * @param q The loop's queue.
   * @param waiter The loop's waiter.
   * @param stallMs The bound, ms.
   */
  constructor(q: MpscQueue, waiter: Waiter, stallMs: number) {
    this.#q = q;
    this.#waiter = waiter;
    this.stallMs = stallMs;
  }

  /**
   * Caps a sleep at the bound.
   *
   * @param ms The sleep the loop wants.
   * @returns The sleep to take.
   */
  cap(ms: number): number {
    return Math.min(ms, this.stallMs);
  }

  /**
   * Checks a sleep that ended (step 1).
   *
   * @param result How it ended.
   * @param sleptMs How long it lasted.
   * @param askedMs The timeout it was given: one of `stallMs` or more
   *   counts as a full stall however early the host ended it.
   */
  slept(result: string, sleptMs: number, askedMs: number): void {
    if (result !== "timed-out") return;
    if (askedMs < this.stallMs && sleptMs < this.stallMs) return;
    const k = this.#waiter.timedOutArmed;
    if (k === 0 || this.#q.isEmpty()) return;
    const added = this.#waiter.timedOutAdded;
    const queued = this.#q.depth();
    if (added < k && queued < k) return; // below the threshold: by design
    this.#report({
      kind: "lost-wakeup",
      message:
        `Loop stalled: ${queued} queued item(s) waited ${
          sleptMs.toFixed(0)
        } ms ` +
        `with no wake (armed for ${k}, ${added} counted)`,
      stalledMs: sleptMs,
      queued,
      waitNr: k,
      added,
      slot: -1,
    });
  }

  /**
   * Called on each pass that finds a push half-linked (step 2).
   *
   * @param now `performance.now()`.
   */
  busy(now: number): void {
    if (this.#busySince < 0) this.#busySince = now;
    const stalledMs = now - this.#busySince;
    if (this.#busyReported || stalledMs < this.stallMs) return;
    const slot = this.#q.stuckSlot();
    // The push may have been linked since the pass saw it: no stall left.
    if (slot < 0 && !this.#q.halfLinked()) return;
    this.#busyReported = true;
    const who = slot < 0
      ? "a producer that recorded no slot"
      : `producer slot ${slot}`;
    this.#report({
      kind: "stuck-producer",
      message: `Loop stalled: a push by ${who} has stayed ` +
        `half-linked for ${stalledMs.toFixed(0)} ms`,
      stalledMs,
      queued: this.#q.depth(),
      waitNr: 0,
      added: 0,
      slot,
    });
  }

  /** Called when a pass finds the queue not busy. */
  notBusy(): void {
    this.#busySince = -1;
    this.#busyReported = false;
  }

  #report(warning: LoopWarning): void {
    this.stalls++;
    const fn = this.onWarning;
    if (fn === undefined) return;
    try {
      fn(warning);
    } catch (error) {
      this.onError(error);
    }
  }
}
