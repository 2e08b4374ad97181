/**
 * Benchmark baseline, never used by the runtime: the plain answer to "many
 * threads hand one thread work", a bounded ring of int32 pairs in a
 * SharedArrayBuffer guarded by one lock word.
 *
 * ## Contract
 *
 * - **What it is.** A ring of `capacity` slots of two int32 words, with a
 *   head index (next slot to read) and a tail index (next slot to write),
 *   both read and written only under the lock. Producers copy their pair
 *   into the ring; there is no per-producer storage.
 * - **FIFO.** Items come out in the order producers took the lock, so each
 *   producer's items come out in push order.
 * - **Producer progress: blocking.** A push takes the lock (1
 *   compare-and-swap when it is free), writes the pair and the tail with
 *   plain stores, and releases it (1 exchange): 2 atomic calls uncontended.
 *   A producer that finds the lock held spins a bounded number of loads,
 *   then sleeps in `Atomics.wait` until the holder's release notifies it. A
 *   holder that is descheduled stalls everyone.
 * - **Consumer progress: blocking, O(1) before the first item.** A pass takes
 *   the lock once to read head and tail, runs up to `limit` items with plain
 *   loads and no lock held, then takes the lock once more to advance the
 *   head. This is the cheapest honest consumer for a locked ring: 4 atomic
 *   calls per pass, none per item.
 * - **Full ring.** A push to a full ring returns `PUSH_FULL` and queues
 *   nothing; space returns when the consumer advances the head.
 * - **Single consumer.** Only one thread at a time may call `drain`.
 *
 * | operation                | may run concurrently with                    |
 * | ------------------------ | -------------------------------------------- |
 * | `LockRingProducer.push`  | anything (serialized by the lock)            |
 * | `LockRing.drain`         | any push; never another consumer call        |
 *
 * ## Layout (`Int32Array` word indices)
 *
 * | line | word (index)       | name             | written by               | read by          |
 * | ---- | ------------------ | ---------------- | ------------------------ | ---------------- |
 * | 0    | `R_MAGIC` (0)      | magic number     | creator, once            | attachers        |
 * | 0    | `R_CAPACITY` (1)   | slots, power of 2| creator, once            | all              |
 * | 1    | `R_LOCK` (32)      | lock state       | all (CAS, exchange)      | all              |
 * | 1    | `R_HEAD` (33)      | read index       | consumer, under the lock | all, under lock  |
 * | 1    | `R_TAIL` (34)      | write index      | producers, under the lock| all, under lock  |
 * | 2+   | ring               | 2 words a slot   | producer that reserved it| consumer         |
 *
 * Head and tail share the lock's line: no one touches them without taking
 * the lock, which moves that line anyway. The ring starts on its own line.
 *
 * ## Memory-model argument
 *
 * Every write to `R_LOCK` is a read-modify-write (compare-and-swap or
 * exchange), and JS `Atomics` are sequentially consistent, so each lock
 * acquisition reads the value the previous release wrote and happens after
 * it. Plain accesses to head, tail and the ring made inside a critical
 * section are thus ordered with those of every other critical section. The
 * consumer reads slots between the head and the tail it saw under the lock
 * after releasing it: producers wrote them before their release, and will
 * not write them again until a later critical section of the consumer has
 * moved the head past them.
 *
 * @module
 */

import {
  PUSH_FULL,
  PUSH_OK,
  PUSH_WAS_EMPTY,
  type PushResult,
} from "../../mod.ts";
import { LINE_WORDS } from "../../runtime/queue_layout.ts";

/** Magic number in word 0: ASCII "twlr". */
export const RING_MAGIC = 0x74776c72;
/** Header word: magic number. */
export const R_MAGIC = 0;
/** Header word: slots in the ring (a power of two). */
export const R_CAPACITY = 1;
/** Lock line: the lock word, one of `LOCK_FREE`, `LOCK_HELD`, `LOCK_WAITED`. */
export const R_LOCK = LINE_WORDS;
/** Lock line: index of the next slot to read (monotonic, wraps at 2^32). */
export const R_HEAD = R_LOCK + 1;
/** Lock line: index of the next slot to write (monotonic, wraps at 2^32). */
export const R_TAIL = R_LOCK + 2;
/** First word of the ring. */
export const RING_BASE = 2 * LINE_WORDS;
/** Words per ring slot. */
export const SLOT_WORDS = 2;

/** Lock state: free. */
export const LOCK_FREE = 0;
/** Lock state: held, nobody sleeping on it. */
export const LOCK_HELD = 1;
/** Lock state: held, and someone may be sleeping on it (release notifies). */
export const LOCK_WAITED = 2;
/** Loads spent spinning on a held lock before sleeping (~1-2 µs). */
export const LOCK_SPINS = 128;
/** Longest single sleep on the lock; the loop re-checks after it. */
const LOCK_SLEEP_MS = 100;

/**
 * A mutex on one word (the three-state futex mutex of Drepper's "Futexes
 * Are Tricky"): a compare-and-swap when free, a bounded spin, then
 * `Atomics.wait` with the word marked so the releaser notifies.
 */
export class SpinLock {
  /** Acquisitions that found the lock held (metric). */
  contended = 0;
  /** `Atomics.wait` calls made (metric). */
  sleeps = 0;
  readonly #w: Int32Array;
  readonly #at: number;

  /**
   * Binds a lock to a word.
   *
   * @param w View of the shared buffer.
   * @param at Index of the lock word.
   */
  constructor(w: Int32Array, at: number) {
    this.#w = w;
    this.#at = at;
  }

  /** Takes the lock, spinning and then sleeping while someone holds it. */
  lock(): void {
    const w = this.#w;
    const at = this.#at;
    if (Atomics.compareExchange(w, at, LOCK_FREE, LOCK_HELD) === LOCK_FREE) {
      return;
    }
    this.contended++;
    for (let i = 0; i < LOCK_SPINS; i++) {
      if (
        Atomics.load(w, at) === LOCK_FREE &&
        Atomics.compareExchange(w, at, LOCK_FREE, LOCK_HELD) === LOCK_FREE
      ) return;
    }
    // Taking it as LOCK_WAITED may cost one needless notify later; it never
    // loses one: whoever releases after this exchange sees LOCK_WAITED.
    while (Atomics.exchange(w, at, LOCK_WAITED) !== LOCK_FREE) {
      this.sleeps++;
      Atomics.wait(w, at, LOCK_WAITED, LOCK_SLEEP_MS);
    }
  }

  /** Releases the lock; wakes one sleeper if any may be waiting. */
  unlock(): void {
    // Pairs with the next acquirer's compareExchange or exchange.
    if (Atomics.exchange(this.#w, this.#at, LOCK_FREE) === LOCK_WAITED) {
      Atomics.notify(this.#w, this.#at, 1);
    }
  }
}

/** One item, as a view the consumer refills for each item. */
export class RingEntry {
  /** First value word. */
  a = 0;
  /** Second value word. */
  b = 0;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** The consumer side, and owner of the buffer. */
export class LockRing {
  /** The shared buffer; producers attach to it. */
  readonly buffer: SharedArrayBuffer;
  /** The consumer's lock handle (its metrics count the consumer's waits). */
  readonly lock: SpinLock;
  readonly #w: Int32Array;
  readonly #mask: number;
  readonly #entry = new RingEntry();

  private constructor(capacity: number) {
    this.buffer = new SharedArrayBuffer(
      (RING_BASE + capacity * SLOT_WORDS) * 4,
    );
    const w = this.#w = new Int32Array(this.buffer);
    this.#mask = capacity - 1;
    this.lock = new SpinLock(w, R_LOCK);
    w[R_CAPACITY] = capacity;
    // Publishes the header to attachers (their Atomics.load of R_MAGIC).
    Atomics.store(w, R_MAGIC, RING_MAGIC);
  }

  /**
   * Creates a ring and its buffer.
   *
   * @param capacity Slots, a power of two.
   * @returns The consumer handle.
   * @throws {RangeError} `capacity` is not a power of two.
   */
  static create(capacity: number): LockRing {
    if (!isPowerOfTwo(capacity) || capacity > 1 << 24) {
      throw new RangeError(
        `Cannot create ring: capacity must be a power of two up to 2^24, got ${capacity}`,
      );
    }
    return new LockRing(capacity);
  }

  /**
   * Runs `fn` on at most `limit` items in FIFO order; the rest stay queued.
   * `fn` returning `false` ends the pass after that item. If `fn` throws,
   * that item counts as consumed and the error propagates.
   *
   * @param limit Maximum items to take (0 or more).
   * @param fn Called with each entry; the entry is valid only during the call.
   * @returns How many items were taken.
   */
  drain(limit: number, fn: (e: RingEntry) => void | boolean): number {
    const w = this.#w;
    this.lock.lock();
    const head = w[R_HEAD];
    const tail = w[R_TAIL];
    this.lock.unlock();
    const n = Math.min((tail - head) | 0, limit);
    const e = this.#entry;
    let k = 0;
    try {
      while (k < n) {
        const at = RING_BASE + ((head + k) & this.#mask) * SLOT_WORDS;
        e.a = w[at]; // plain: written before the producer's unlock
        e.b = w[at + 1];
        k++;
        if (fn(e) === false) break;
      }
    } finally {
      if (k > 0) {
        this.lock.lock();
        w[R_HEAD] = (head + k) | 0;
        this.lock.unlock();
      }
    }
    return k;
  }

  /**
   * Whether nothing is queued (a snapshot). Takes the lock.
   *
   * @returns True when head equals tail.
   */
  isEmpty(): boolean {
    this.lock.lock();
    const empty = this.#w[R_HEAD] === this.#w[R_TAIL];
    this.lock.unlock();
    return empty;
  }
}

/** The producer side: any number per buffer, one per thread. */
export class LockRingProducer {
  /** This producer's lock handle (its metrics count this producer's waits). */
  readonly lock: SpinLock;
  readonly #w: Int32Array;
  readonly #capacity: number;

  private constructor(buffer: SharedArrayBuffer) {
    this.#w = new Int32Array(buffer);
    this.#capacity = this.#w[R_CAPACITY];
    this.lock = new SpinLock(this.#w, R_LOCK);
  }

  /**
   * Attaches a producer to a ring's buffer.
   *
   * @param buffer From {@linkcode LockRing.buffer}.
   * @returns A producer for the calling thread.
   * @throws {TypeError} Not a ring buffer.
   */
  static attach(buffer: SharedArrayBuffer): LockRingProducer {
    const w = new Int32Array(buffer);
    if (Atomics.load(w, R_MAGIC) !== RING_MAGIC) {
      throw new TypeError("Cannot attach producer: not a lock ring");
    }
    return new LockRingProducer(buffer);
  }

  /**
   * Pushes a pair of int32 values.
   *
   * @param a First value.
   * @param b Second value.
   * @returns `PUSH_FULL` (ring full, nothing queued), `PUSH_OK`, or
   *   `PUSH_WAS_EMPTY` (the ring held nothing before).
   */
  push(a: number, b: number): PushResult {
    const w = this.#w;
    this.lock.lock();
    const head = w[R_HEAD];
    const tail = w[R_TAIL];
    const used = (tail - head) | 0;
    if (used >= this.#capacity) {
      this.lock.unlock();
      return PUSH_FULL;
    }
    const at = RING_BASE + (tail & (this.#capacity - 1)) * SLOT_WORDS;
    w[at] = a;
    w[at + 1] = b;
    w[R_TAIL] = (tail + 1) | 0;
    this.lock.unlock();
    return used === 0 ? PUSH_WAS_EMPTY : PUSH_OK;
  }
}
