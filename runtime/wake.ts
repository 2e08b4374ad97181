/**
 * The lazy, counted wake protocol of the io_uring change, over the wake words
 * on the producers' line of a queue buffer (`WAIT_NR`, `ADDED`, `NOTIFIES`;
 * see `queue_layout.ts`).
 *
 * ## Contract
 *
 * The waiter (the queue's consumer) sleeps only on an empty queue. One
 * arming, steps as numbered in the model checked by `tests/wake_model_test.ts`:
 *
 * - W1. `Atomics.store(ADDED, 0)`.
 * - W2. `Atomics.store(WAIT_NR, k)`: armed; wake me after k lazy adds.
 * - W3. Re-check the queue (`Atomics.load(TAIL)`). Not empty: go to W6.
 * - W4. `Atomics.wait(WAIT_NR, k, timeout)`: returns at once if `WAIT_NR`
 *   is no longer k (a producer claimed the wake between W2 and W4).
 * - W5. Woken, timed out, or not-equal.
 * - W6. `Atomics.compareExchange(WAIT_NR, k, IDLE)`: disarm, unless a
 *   producer already did.
 *
 * A producer, after its push (see `Producer.push`), calls {@linkcode wake}:
 *
 * - P3. `w = Atomics.load(WAIT_NR)`; `IDLE`: nobody sleeps, done (1 atomic).
 * - P4. Lazy only: `Atomics.add(ADDED, 1) + 1 < w`: threshold unmet, done.
 * - P5. `Atomics.compareExchange(WAIT_NR, w, IDLE)`; lost: someone else
 *   claimed this arming, done.
 * - P6. `Atomics.add(NOTIFIES, 1)`, `Atomics.notify(WAIT_NR, 1)`.
 *
 * Why no wake-up is lost: atomics are sequentially consistent, so either the
 * producer's P3 comes after W2 (it sees the arming and counts or claims), or
 * its exchange came before W2 and so before W3, which then sees a non-empty
 * queue and does not sleep. Why exactly one notify per arming: only the
 * winner of the compare-exchange in P5 notifies, and only the waiter re-arms.
 * Lazy adds since W1 are the full pending count because the waiter only
 * arms on an empty queue. The min-wait phase re-arms with 1 without W1:
 * any add then wakes.
 *
 * Costs: a producer pays 1 `Atomics.load` when no one waits; a lazy add to
 * an armed waiter 2 more; the notify itself ~3 µs when someone sleeps.
 *
 * @module
 */

import {
  ADDED,
  NOTIFIES,
  STUB,
  TAIL,
  WAIT_NR,
  WAKE_IDLE,
} from "./queue_layout.ts";

/**
 * Producer side of the protocol (steps P3-P6): call after a push.
 *
 * @param w `Int32Array` view of the queue buffer.
 * @param lazy Lazy adds count toward the armed threshold; eager adds
 *   always claim the wake.
 * @returns True when this call sent the arming's one notify.
 */
export function wake(w: Int32Array, lazy: boolean): boolean {
  return wakeArmed(w, Atomics.load(w, WAIT_NR), lazy); // P3
}

/**
 * Steps P4-P6 for a `WAIT_NR` value the caller already loaded (P3): ports
 * read the word once for both the wake and the close check.
 *
 * @param w `Int32Array` view of the queue buffer.
 * @param nr The value loaded from `WAIT_NR`.
 * @param lazy As for {@linkcode wake}.
 * @returns True when this call sent the arming's one notify.
 */
export function wakeArmed(w: Int32Array, nr: number, lazy: boolean): boolean {
  if (nr < 1) return false; // idle, closing or sealed
  if (lazy && Atomics.add(w, ADDED, 1) + 1 < nr) return false; // P4
  // P5: claim the one wake of this arming; pairs with W6 and with re-arming.
  if (Atomics.compareExchange(w, WAIT_NR, nr, WAKE_IDLE) !== nr) return false;
  Atomics.add(w, NOTIFIES, 1); // P6
  Atomics.notify(w, WAIT_NR, 1);
  return true;
}

/** Why a sleep ended. */
export type SleepResult =
  /** The queue was not empty after arming: no sleep happened. */
  | "work"
  /** A producer's notify (or its claim just before the wait) ended it. */
  | "woken"
  /** The timeout passed. */
  | "timed-out";

/** Milliseconds `Atomics.wait` accepts as "forever". */
const FOREVER = Infinity;

/**
 * Waiter side of the protocol, for the queue's single consumer thread.
 */
export class Waiter {
  readonly #w: Int32Array;
  /** Armings made (metric). */
  armings = 0;
  /** Sleeps that actually blocked (metric). */
  sleeps = 0;
  /**
   * After a sleep that timed out: the threshold it was still armed with
   * (no producer claimed its wake), or 0 when a producer did.
   */
  timedOutArmed = 0;
  /** After a sleep that timed out still armed: `ADDED` when it disarmed. */
  timedOutAdded = 0;
  /**
   * Whether the last `sleepAsync` awaited the host (a `waitAsync` that went
   * async), so host tasks and timers had turns; false when it returned at
   * once (work already there, a changed word, a zero timeout).
   */
  yieldedToHost = false;

  /**
   * Binds a waiter to a queue buffer; one per consumer thread.
   *
   * @param buffer The queue buffer.
   */
  constructor(buffer: SharedArrayBuffer) {
    this.#w = new Int32Array(buffer);
  }

  /**
   * Notifies sent by producers so far (a snapshot, may lag by one in-flight
   * wake).
   *
   * @returns The count.
   */
  notifies(): number {
    return Atomics.load(this.#w, NOTIFIES);
  }

  /** W1-W3: arm for `k` adds; returns false if the queue is not empty. */
  #arm(k: number, zeroAdded: boolean): boolean {
    const w = this.#w;
    this.armings++;
    if (zeroAdded) Atomics.store(w, ADDED, 0); // W1
    Atomics.store(w, WAIT_NR, k); // W2: pairs with the producer's P3
    // W3: the producers' exchange on TAIL is what this load observes.
    if (Atomics.load(w, TAIL) !== STUB) {
      Atomics.compareExchange(w, WAIT_NR, k, WAKE_IDLE); // W6
      return false;
    }
    return true;
  }

  /**
   * Sleeps until `k` lazy adds (or one eager add) arrive, or `timeoutMs`
   * passes. With `minWaitMs` below `timeoutMs`, after `minWaitMs` the waiter
   * re-arms with 1 so that any add wakes it (the seed's min-wait timer).
   * Call only when the consumer has drained the queue (cursor on the stub).
   *
   * @param k Lazy adds to wait for, 1 or more.
   * @param timeoutMs Longest sleep in milliseconds; `Infinity` for none.
   * @param minWaitMs When to lower the threshold to 1; defaults to never.
   * @returns Why the sleep ended.
   */
  sleep(
    k: number,
    timeoutMs: number = FOREVER,
    minWaitMs: number = FOREVER,
  ): SleepResult {
    const w = this.#w;
    // The min-wait phase only matters when waiting for more than 1 add.
    const first = k > 1 ? Math.min(timeoutMs, minWaitMs) : timeoutMs;
    if (!this.#arm(k, true)) return "work";
    this.sleeps++;
    let r = Atomics.wait(w, WAIT_NR, k, first); // W4
    let armed = this.#disarm(k, r); // W6
    if (r === "timed-out" && minWaitMs < timeoutMs && k > 1) {
      if (!this.#arm(1, false)) return "work";
      r = Atomics.wait(w, WAIT_NR, 1, timeoutMs - minWaitMs);
      armed = this.#disarm(1, r);
    }
    return this.#result(r, armed);
  }

  /** W6; after a timeout, records whether no producer had claimed the wake. */
  #disarm(k: number, r: string): number {
    const w = this.#w;
    const still = Atomics.compareExchange(w, WAIT_NR, k, WAKE_IDLE) === k;
    if (r !== "timed-out" || !still) return 0;
    this.timedOutAdded = Atomics.load(w, ADDED);
    return k;
  }

  #result(r: string, armed: number): SleepResult {
    if (r !== "timed-out") return "woken";
    this.timedOutArmed = armed;
    return "timed-out";
  }

  /**
   * The same protocol with `Atomics.waitAsync`, so the thread keeps running
   * promise reactions and host I/O while it waits. A pending `waitAsync`
   * does not keep Deno or Node alive, so a referenced host timer is held
   * for the duration of the sleep.
   *
   * @param k Lazy adds to wait for, 1 or more.
   * @param timeoutMs Longest sleep in milliseconds; `Infinity` for none.
   * @param minWaitMs When to lower the threshold to 1; defaults to never.
   * @param keepAlive Hold a host timer while waiting (default true); pass
   *   false when the caller already keeps the process alive.
   * @returns Why the sleep ended.
   */
  async sleepAsync(
    k: number,
    timeoutMs: number = FOREVER,
    minWaitMs: number = FOREVER,
    keepAlive = true,
  ): Promise<SleepResult> {
    // The min-wait phase only matters when waiting for more than 1 add.
    const first = k > 1 ? Math.min(timeoutMs, minWaitMs) : timeoutMs;
    this.yieldedToHost = false;
    if (!this.#arm(k, true)) return "work";
    this.sleeps++;
    let r = await this.#waitAsync(k, first, keepAlive);
    let armed = this.#disarm(k, r); // W6
    if (r === "timed-out" && minWaitMs < timeoutMs && k > 1) {
      if (!this.#arm(1, false)) return "work";
      r = await this.#waitAsync(1, timeoutMs - minWaitMs, keepAlive);
      armed = this.#disarm(1, r);
    }
    return this.#result(r, armed);
  }

  async #waitAsync(
    k: number,
    timeoutMs: number,
    keepAlive: boolean,
  ): Promise<string> {
    const res = Atomics.waitAsync(this.#w, WAIT_NR, k, timeoutMs); // W4
    let r: string;
    if (!res.async) {
      r = res.value;
    } else {
      this.yieldedToHost = true;
      if (!keepAlive) {
        r = await res.value;
      } else {
        // Keeps the process alive: setInterval is referenced in Deno and
        // Node.
        const hold = setInterval(() => {}, 1 << 30);
        try {
          r = await res.value;
        } finally {
          clearInterval(hold);
        }
      }
    }
    return r;
  }
}
