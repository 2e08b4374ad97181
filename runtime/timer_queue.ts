/**
 * The loop's timer store and deadline order ({@linkcode TimerQueue}).
 *
 * ## Storage: a slab of ids
 *
 * A timer is an id indexing typed arrays: deadline and creation sequence
 * (float64), list links, its list and one state word (int32), and its
 * callback in one JS array: 40 bytes a timer. Repeating timers keep their
 * interval in a map. No per-timer object lives here, and the `Timer`
 * handle given to the caller is not referenced from here either: a dropped
 * handle dies young. The object-per-timer layout this replaced spent ~45%
 * of a 10^6-timer run in the garbage collector (`bench/timers.ts`,
 * `--trace-gc`), copying timers that had to survive; what is left is
 * mostly first touches of fresh memory (page faults, ~0.6 ms per MB on
 * these VMs), hence the few bytes per timer.
 *
 * | state word bits | meaning                                          |
 * | --------------- | ------------------------------------------------ |
 * | 0-1             | `TIMER_PENDING`, `TIMER_QUEUED`, `TIMER_DONE`, free |
 * | 2               | `REFED`: keeps `run()` alive                     |
 * | 3               | `REPEAT`: has an interval                        |
 * | 4-30            | generation, bumped on every free                 |
 *
 * Freed ids are reused, first freed first (the free queue is threaded
 * through the `next` links): an id waits as long as it can before reuse,
 * and ids come back in about the order timers fired, which keeps a
 * recycled store's lists about as local as a fresh one's. A stale handle
 * (id, generation) cannot reach the timer that reuses its id; an id whose
 * 27-bit generation would wrap is retired rather than reused (40 bytes
 * per 2^27 reuses of one id).
 *
 * The arrays grow four times over when full (a copy touches every page
 * again; pages not used yet cost address space, not memory). When the last
 * live id is freed, ending a burst, a store with room for more than
 * `SHRINK_ABOVE` ids starts over: ids are handed out from 0 again, in
 * order (as fresh ones, not in the order the burst freed them, which
 * scatters the next burst's writes), at a generation above every one handed
 * out before, so old handles stay stale. It drops its arrays if the burst's
 * peak of live timers stayed under a quarter of them, and keeps them
 * otherwise: a program that sets bursts of 10^6 timers does not grow them
 * again for each burst (that was ~9 % of a burst's time). So memory is
 * bounded by four times the larger peak of the last two bursts: arrays a
 * large burst grew are kept until a later burst peaks under a quarter of
 * them, or the loop closes (`clear`).
 *
 * ## Order: one FIFO list per delay, a heap of lists
 *
 * As in Node's timer lists, timers are chained in lists keyed by their
 * delay. Set with the same delay from a clock that never goes back, they
 * come due in the order they were set, so an append keeps its list in
 * (deadline, creation) order with no sorting. A binary min-heap orders the
 * lists by their first timer. A timer that would come before its list's
 * last one (set with the pass's time after a `refresh()` read the clock, a
 * repeating timer rescheduled) starts a new list instead, which then takes
 * that key's appends; the old list drains on its own.
 *
 * Costs: insert O(1), plus O(log L) for a new list among L lists; cancel
 * O(1), plus O(log L) when it was a list's first timer; taking the
 * earliest O(log L). With n distinct delays this is a heap of n timers,
 * O(log n).
 *
 * @module
 */

/** State: the id is in the free queue. */
const FREE = 3;
/** State word bits holding the state. */
export const STATE_MASK = 3;
/** State word bit: the timer keeps `run()` alive. */
export const REFED = 4;
/** State word bit: the timer repeats (its interval is in the map). */
export const REPEAT = 8;
/** The generation's place in the state word. */
export const GEN_SHIFT = 4;
/** The generation bits, kept by every state change but a free. */
export const GEN_BITS = 0x7fffffff & ~((1 << GEN_SHIFT) - 1);
/** No timer / no list. */
const NIL = -1;
/** A store with room for more ids than this starts over once none is live. */
const SHRINK_ABOVE = 4096;
/** Keys 0..SMALL_KEYS-1 (whole ms) find their list without the map. */
const SMALL_KEYS = 1024;

/** Ids, timer state and the lists of pending timers. */
export class TimerQueue {
  /** When each timer is next due, in the loop clock's ms. */
  deadline = new Float64Array(0);
  /**
   * Creation order; breaks deadline ties. Renewed by `refresh()`, so its
   * low 32 bits also name the run-queue entry that may fire a queued
   * timer (see `LoopTimers.fire`).
   */
  seq = new Float64Array(0);
  /** The state word: see the table in the module docs. */
  flags = new Int32Array(0);
  /** The callbacks, undefined for free ids. */
  callbacks: ((() => void) | undefined)[] = [];
  /** Intervals of repeating timers, by id. */
  readonly #intervals = new Map<number, number>();
  /** Next in its list, or next in the free queue. */
  #next = new Int32Array(0);
  #prev = new Int32Array(0);
  #list = new Int32Array(0);
  /** Oldest free id (taken first), or NIL. */
  #freeHead = NIL;
  /** Newest free id, or NIL. */
  #freeTail = NIL;
  /** Ids handed out and not freed. */
  #live = 0;
  /** The most ids live at once since the store was last empty. */
  #peak = 0;
  /** Generation bits of ids handed out for the first time. */
  #genBase = 0;
  /** The highest generation bits given so far (until they wrap). */
  #genTop = 0;
  /** Ids handed out at least once: 0..#used-1. */
  #used = 0;
  #size = 0;

  // Lists: the same slab scheme, indexed by list id.
  #head = new Int32Array(0);
  #tail = new Int32Array(0);
  /** Position of the list in `#heap`. */
  #pos = new Int32Array(0);
  #key = new Float64Array(0);
  #listFree = new Int32Array(0);
  #listFreeCount = 0;
  #listUsed = 0;
  /** The list that takes appends for a key. */
  readonly #byKey = new Map<number, number>();
  /**
   * The same for whole-ms keys below `SMALL_KEYS` (NIL: none), which most
   * delays are: an array read instead of a map lookup per insert.
   */
  readonly #small = new Int32Array(SMALL_KEYS).fill(NIL);
  /** Min-heap of list ids by their first timer. */
  #heap = new Int32Array(0);
  #heapSize = 0;

  /** @returns Number of timers waiting in lists. */
  get size(): number {
    return this.#size;
  }

  /**
   * Takes a free id. Its fields are stale but for the generation bits of
   * its state word: the caller sets the rest.
   *
   * @returns The id.
   */
  alloc(): number {
    if (++this.#live > this.#peak) this.#peak = this.#live;
    const id = this.#freeHead;
    if (id !== NIL) {
      this.#freeHead = this.#next[id];
      if (this.#freeHead === NIL) this.#freeTail = NIL;
      return id;
    }
    if (this.#used === this.flags.length) this.#grow();
    this.flags[this.#used] = this.#genBase;
    return this.#used++;
  }

  /**
   * @param id An id from a handle.
   * @param gen The handle's generation.
   * @returns The id's state word if it still has that generation, else -1.
   */
  live(id: number, gen: number): number {
    if (id >= this.#used) return -1; // the store was dropped since
    const f = this.flags[id];
    if ((f & STATE_MASK) === FREE) return -1; // a retired id keeps its gen
    return f >>> GEN_SHIFT === gen ? f : -1;
  }

  /**
   * Frees an id; its generation moves on. An id whose generation would
   * wrap is retired instead (never handed out again: a store holding one
   * no longer starts over), so no stale handle can ever match a later timer.
   *
   * @param id A live id, not in a list.
   */
  free(id: number): void {
    const f = this.flags[id];
    if ((f & REPEAT) !== 0) this.#intervals.delete(id);
    this.callbacks[id] = undefined;
    const gen = (f & GEN_BITS) + (1 << GEN_SHIFT);
    if (gen > GEN_BITS) {
      this.flags[id] = (f & GEN_BITS) | FREE; // retired: matches no handle
    } else {
      if (gen > this.#genTop) this.#genTop = gen;
      this.flags[id] = gen | FREE;
      this.#next[id] = NIL;
      if (this.#freeTail === NIL) this.#freeHead = id;
      else this.#next[this.#freeTail] = id;
      this.#freeTail = id;
    }
    if (--this.#live === 0) this.#burstEnded();
  }

  /**
   * The last live id was freed (no list is left either): a store that
   * handed out many ids starts over, and drops arrays the burst left
   * mostly idle.
   */
  #burstEnded(): void {
    const peak = this.#peak;
    this.#peak = 0;
    if (
      this.flags.length <= SHRINK_ABOVE ||
      this.#genTop >= GEN_BITS // the new base must be above every old one
    ) return;
    this.#genBase = this.#genTop = this.#genTop + (1 << GEN_SHIFT);
    this.#startOver();
    // free() left every callback undefined: kept arrays need no clearing.
    if (peak * 4 < this.flags.length) this.#drop();
  }

  /** Forgets every id and list slot handed out: the next come from 0. */
  #startOver(): void {
    this.#used = 0;
    this.#freeHead = this.#freeTail = NIL;
    this.#listUsed = 0;
    this.#listFreeCount = 0;
  }

  /** Drops the arrays of a store that is starting over. */
  #drop(): void {
    this.deadline = new Float64Array(0);
    this.seq = new Float64Array(0);
    this.flags = new Int32Array(0);
    this.#next = new Int32Array(0);
    this.#prev = new Int32Array(0);
    this.#list = new Int32Array(0);
    this.callbacks = [];
    this.#head = new Int32Array(0);
    this.#tail = new Int32Array(0);
    this.#pos = new Int32Array(0);
    this.#key = new Float64Array(0);
    this.#listFree = new Int32Array(0);
    this.#heap = new Int32Array(0);
  }

  /**
   * @param id A live id.
   * @returns Its interval, or 0 for a one-shot timer.
   */
  interval(id: number): number {
    return (this.flags[id] & REPEAT) === 0 ? 0 : this.#intervals.get(id)!;
  }

  /**
   * Sets the interval of a fresh id, and `REPEAT` in its state word.
   *
   * @param id A live id.
   * @param every Repeat period in ms, > 0.
   */
  setInterval(id: number, every: number): void {
    this.#intervals.set(id, every);
    this.flags[id] |= REPEAT;
  }

  /**
   * Frees every live id (the loop is closing).
   */
  clear(): void {
    for (let id = 0; id < this.#used; id++) {
      if ((this.flags[id] & STATE_MASK) !== FREE) this.free(id);
    }
    // No id is handed out after this: the arrays go, whatever their size,
    // and every handle reads as stale (its id is not below #used).
    this.#startOver();
    this.#drop();
    this.#byKey.clear();
    this.#small.fill(NIL);
    this.#heapSize = 0;
    this.#size = 0;
  }

  /**
   * Appends a pending timer to the list of `key`, or starts a new list.
   *
   * @param id A timer with deadline and seq set, not in a list.
   * @param key The list key: its delay, or its interval when rescheduled.
   */
  insert(id: number, key: number): void {
    this.#size++;
    const small = (key >>> 0) === key && key < SMALL_KEYS;
    const l = small ? this.#small[key] : this.#byKey.get(key) ?? NIL;
    if (l !== NIL) {
      const tail = this.#tail[l];
      if (!this.#before(id, tail)) {
        this.#next[tail] = id;
        this.#prev[id] = tail;
        this.#next[id] = NIL;
        this.#list[id] = l;
        this.#tail[l] = id;
        return;
      }
    }
    const list = this.#newList(id, key);
    if (small) this.#small[key] = list;
    else this.#byKey.set(key, list);
  }

  /** @param id A timer in a list (pending). */
  remove(id: number): void {
    this.#size--;
    const l = this.#list[id];
    const first = this.#head[l] === id; // its prev link is stale then
    const p = this.#prev[id];
    const n = this.#next[id];
    if (n === NIL) this.#tail[l] = p;
    else this.#prev[n] = p;
    if (!first) {
      this.#next[p] = n;
    } else if (n === NIL) {
      this.#dropList(l);
    } else {
      this.#head[l] = n; // a later first timer: the list moves down
      this.#down(this.#pos[l]);
    }
  }

  /**
   * Takes the pending timers due at `now`, earliest first, at most `room`.
   *
   * @param now Timers with `deadline <= now` are due.
   * @param room Most timers to take.
   * @param out Receives their ids from index 0.
   * @returns How many were taken.
   */
  takeDue(now: number, room: number, out: Int32Array): number {
    const deadline = this.deadline;
    let k = 0;
    while (k < room && this.#heapSize > 0) {
      const l = this.#heap[0];
      const id = this.#head[l];
      if (deadline[id] > now) break;
      const n = this.#next[id];
      if (n === NIL) {
        this.#dropList(l);
      } else {
        this.#head[l] = n; // n's prev link goes stale: see remove()
        this.#down(0);
      }
      out[k++] = id;
    }
    this.#size -= k;
    return k;
  }

  /** @returns The earliest pending deadline, or Infinity. */
  nextDeadline(): number {
    return this.#heapSize === 0
      ? Infinity
      : this.deadline[this.#head[this.#heap[0]]];
  }

  #before(a: number, b: number): boolean {
    const da = this.deadline[a];
    const db = this.deadline[b];
    return da < db || (da === db && this.seq[a] < this.seq[b]);
  }

  #newList(id: number, key: number): number {
    let l: number;
    if (this.#listFreeCount > 0) {
      l = this.#listFree[--this.#listFreeCount];
    } else {
      if (this.#listUsed === this.#head.length) this.#growLists();
      l = this.#listUsed++;
    }
    this.#head[l] = this.#tail[l] = id;
    this.#key[l] = key;
    this.#prev[id] = this.#next[id] = NIL;
    this.#list[id] = l;
    const i = this.#heapSize++;
    this.#heap[i] = l;
    this.#pos[l] = i;
    this.#up(i);
    return l;
  }

  /** Removes an emptied list from the heap and the key map. */
  #dropList(l: number): void {
    const key = this.#key[l];
    if ((key >>> 0) === key && key < SMALL_KEYS) {
      if (this.#small[key] === l) this.#small[key] = NIL;
    } else if (this.#byKey.get(key) === l) {
      this.#byKey.delete(key);
    }
    this.#listFree[this.#listFreeCount++] = l;
    const i = this.#pos[l];
    const last = this.#heap[--this.#heapSize];
    if (i === this.#heapSize) return;
    this.#heap[i] = last;
    this.#pos[last] = i;
    this.#down(i);
    this.#up(this.#pos[last]);
  }

  /** Whether list a's first timer is due before list b's. */
  #first(a: number, b: number): boolean {
    return this.#before(this.#head[a], this.#head[b]);
  }

  #up(i: number): void {
    const h = this.#heap;
    const l = h[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#first(l, h[p])) break;
      h[i] = h[p];
      this.#pos[h[i]] = i;
      i = p;
    }
    h[i] = l;
    this.#pos[l] = i;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = this.#heapSize;
    const l = h[i];
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.#first(h[c + 1], h[c])) c++;
      if (!this.#first(h[c], l)) break;
      h[i] = h[c];
      this.#pos[h[i]] = i;
      i = c;
    }
    h[i] = l;
    this.#pos[l] = i;
  }

  #grow(): void {
    const n = Math.max(64, this.flags.length * 4);
    this.deadline = grown(this.deadline, new Float64Array(n));
    this.seq = grown(this.seq, new Float64Array(n));
    this.flags = grown(this.flags, new Int32Array(n));
    this.#next = grown(this.#next, new Int32Array(n));
    this.#prev = grown(this.#prev, new Int32Array(n));
    this.#list = grown(this.#list, new Int32Array(n));
    // One allocation per growth; push() would reallocate ~25 times on the
    // way to 10^6, each a fresh large-object page run to fault in.
    const callbacks = new Array<(() => void) | undefined>(n).fill(undefined);
    for (let i = 0; i < this.#used; i++) callbacks[i] = this.callbacks[i];
    this.callbacks = callbacks;
  }

  #growLists(): void {
    const n = Math.max(16, this.#head.length * 2);
    this.#head = grown(this.#head, new Int32Array(n));
    this.#tail = grown(this.#tail, new Int32Array(n));
    this.#pos = grown(this.#pos, new Int32Array(n));
    this.#key = grown(this.#key, new Float64Array(n));
    this.#listFree = grown(this.#listFree, new Int32Array(n));
    this.#heap = grown(this.#heap, new Int32Array(n));
  }
}

/** `to` with `from` copied to its start. */
function grown<T extends Int32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
