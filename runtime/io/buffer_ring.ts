/**
 * A provided buffer ring in a SharedArrayBuffer (io_uring's
 * `IORING_REGISTER_PBUF_RING`, for one I/O worker): `count` fixed-size
 * buffers that the worker receives into, and a return ring through which
 * the loop gives each buffer back after reading it in place.
 *
 * ## Ownership
 *
 * Each buffer id has exactly one owner at a time, and passes around a
 * cycle: the worker (free, or a receive in flight) → the loop (after the
 * worker posted a completion naming it) → the return ring (after
 * {@linkcode BufferRing.release}) → the worker again (after
 * {@linkcode RingReceiver.collect}). The owner alone touches the buffer's
 * bytes and its length word, with plain accesses.
 *
 * ## Layout (`Int32Array` words; lines are 128 bytes, 32 words)
 *
 * | line | word                 | name               | written by          | read by       |
 * | ---- | -------------------- | ------------------ | ------------------- | ------------- |
 * | 0    | `R_MAGIC` (0)        | magic "twlr"       | creator, once       | attacher      |
 * | 0    | `R_COUNT` (1)        | buffers            | creator, once       | both          |
 * | 0    | `R_SIZE` (2)         | bytes per buffer   | creator, once       | both          |
 * | 0    | `R_SLOTS` (3)        | return ring slots  | creator, once       | both          |
 * | 1    | `RET_TAIL` (32)      | ids returned, ever | loop (atomic)       | worker (atomic)|
 * | 2    | `WAITING` (64)       | worker asleep      | worker (atomic)     | loop (atomic) |
 * | 2    | `S_COLLECTED` (65)   | ids collected, ever| worker (atomic)     | stats         |
 * | 2    | `S_PAUSES` (66)      | receives paused    | worker (atomic)     | stats         |
 * | 2    | `S_STARVED` (67)     | sockets paused now | worker (atomic)     | stats         |
 * | 2    | `S_POSTED` (68)      | completions posted | worker (atomic)     | stats         |
 * | 2    | `S_BATCHES` (69)     | pushes made        | worker (atomic)     | stats         |
 * | 2    | `S_ADD_US` (70)      | µs spent pushing   | worker (atomic)     | stats         |
 * | 3    | `S_RECEIVES` (96)    | receives completed | worker (atomic)     | stats         |
 * | 4+   | return ring          | `R_SLOTS` ids      | loop (plain)        | worker (plain)|
 * | ...  | lengths              | `R_COUNT` words    | buffer's owner      | buffer's owner|
 * | ...  | data                 | `R_COUNT × R_SIZE` | buffer's owner      | buffer's owner|
 *
 * `RET_TAIL` has a line of its own: only the loop writes it, and the worker
 * reads it once per collect. The worker's words (line 2) sit apart so its
 * counters never dirty the line the loop writes on every release.
 *
 * ## Memory-model argument
 *
 * JS `Atomics` are sequentially consistent; plain writes made before an
 * atomic write are visible to an agent that observed that write with an
 * atomic read. Publish/observe pairs:
 *
 * - Loop → worker: the loop writes the id into the return slot (plain),
 *   then `Atomics.store(RET_TAIL)`; the worker `Atomics.load`s `RET_TAIL`
 *   before reading slots below it.
 * - Worker → loop: the worker writes a buffer's bytes (the host's receive,
 *   settled on the worker's thread) and its length (plain), then publishes
 *   the completion through the loop's queue (`Producer.push*`, an
 *   `Atomics.exchange`); the loop reads both after popping it.
 * - Slot reuse: the loop writes return slot `t mod R_SLOTS` only after the
 *   worker has read slot `t - R_SLOTS`. With `R_SLOTS >= R_COUNT`, the
 *   `R_SLOTS + 1` returns at positions `t - R_SLOTS .. t` name at most
 *   `R_COUNT` distinct ids, so some id was returned twice among them; in
 *   between, the worker collected it (reading every slot up to it, in
 *   order, including `t - R_SLOTS`) and posted it again, and the loop
 *   popped that completion: a happens-before chain from the worker's read
 *   to the loop's write. So the loop never checks for space.
 *
 * ## Waking the worker
 *
 * A worker with sockets waiting for buffers sleeps on `RET_TAIL`
 * (`Atomics.waitAsync`): it stores `WAITING = 1`, re-reads `RET_TAIL`, and
 * waits only if nothing came back. A release stores `RET_TAIL`, then loads
 * `WAITING` and notifies only if it is set: 1 plain store, 1 atomic store
 * and 1 atomic load per release when nobody waits. Sequential consistency
 * means either the worker's re-read sees the new tail or the loop's load
 * sees the flag; a notify that lands before the wait is registered finds
 * `RET_TAIL` changed, so the wait returns at once.
 *
 * @module
 */

/** Words in one 128-byte line. */
const LINE = 32;
/** Magic in word 0: ASCII "twlr". */
export const RING_MAGIC = 0x74776c72;
/** Header: magic. */
export const R_MAGIC = 0;
/** Header: buffer count. */
export const R_COUNT = 1;
/** Header: bytes per buffer. */
export const R_SIZE = 2;
/** Header: return ring slots (a power of two >= count). */
export const R_SLOTS = 3;
/** Loop's line: ids returned so far (monotonic, wraps at 2^32). */
export const RET_TAIL = 1 * LINE;
/** Worker's line: 1 while the worker waits on `RET_TAIL`. */
export const WAITING = 2 * LINE;
/** Stats: ids collected from the return ring. */
export const S_COLLECTED = WAITING + 1;
/** Stats: times a socket had to wait for a buffer. */
export const S_PAUSES = WAITING + 2;
/** Stats: sockets waiting for a buffer right now. */
export const S_STARVED = WAITING + 3;
/** Stats: completions posted to the loop. */
export const S_POSTED = WAITING + 4;
/** Stats: pushes (each a batch of completions). */
export const S_BATCHES = WAITING + 5;
/** Stats: microseconds spent in pushes and wakes. */
export const S_ADD_US = WAITING + 6;
/** Stats: receives completed with data. */
export const S_RECEIVES = 3 * LINE;
/** First word of the return ring. */
const RING_BASE = 4 * LINE;
/** Largest buffer, bytes. */
export const MAX_BUFFER_SIZE = 1 << 24;
/** Most buffers in one ring. */
export const MAX_BUFFERS = 1 << 16;

/** Sizes of a ring. */
export interface RingConfig {
  /** Buffers (1 to 65536). */
  count: number;
  /** Bytes per buffer (16 to 2^24, a multiple of 16). */
  size: number;
}

/** Where each part of a ring's buffer starts. */
interface RingLayout {
  count: number;
  size: number;
  slots: number;
  lenBase: number;
  dataByte: number;
  bytes: number;
}

function layout(count: number, size: number, slots: number): RingLayout {
  const lenBase = RING_BASE + slots;
  const dataByte = Math.ceil(((lenBase + count) * 4) / (LINE * 4)) * LINE * 4;
  return {
    count,
    size,
    slots,
    lenBase,
    dataByte,
    bytes: dataByte + count * size,
  };
}

function checkConfig(c: RingConfig): void {
  for (
    const [k, v, lo, hi] of [
      ["count", c.count, 1, MAX_BUFFERS],
      ["size", c.size, 16, MAX_BUFFER_SIZE],
    ] as const
  ) {
    if (typeof v !== "number" || !Number.isInteger(v)) {
      throw new TypeError(
        `Cannot create buffer ring: ${k} must be an integer, got ${String(v)}`,
      );
    }
    if (v < lo || v > hi) {
      throw new RangeError(
        `Cannot create buffer ring: ${k} must be from ${lo} to ${hi}, got ${v}`,
      );
    }
  }
  if (c.size % 16 !== 0) {
    throw new RangeError(
      `Cannot create buffer ring: size must be a multiple of 16, got ${c.size}`,
    );
  }
}

/** A snapshot of a ring's counters (each may lag its writer slightly). */
export interface RingStats {
  /** Buffers in the ring. */
  readonly count: number;
  /** Buffers the loop holds now (read, not yet released). */
  readonly held: number;
  /** Times a socket had to wait for a buffer (backpressure). */
  readonly pauses: number;
  /** Sockets waiting for a buffer right now. */
  readonly starved: number;
  /** Completions the worker posted. */
  readonly posted: number;
  /** Pushes the worker made (each a batch of completions). */
  readonly batches: number;
  /** Receives that brought data. */
  readonly receives: number;
  /** Milliseconds the worker spent pushing completions and waking the loop. */
  readonly addMs: number;
}

/**
 * The loop's side of a ring: reads buffers in place and gives them back.
 *
 * @example
 * ```ts
 * import { BufferRing, RingReceiver } from "./buffer_ring.ts";
 * const ring = BufferRing.create({ count: 2, size: 16 });
 * const rx = RingReceiver.attach(ring.buffer); // usually in the worker
 * const id = rx.take();
 * rx.view(id).set([1, 2, 3]);
 * rx.setLength(id, 3);
 * ring.receive(id); // the loop got the completion naming `id`
 * if (ring.bytes(id).join() !== "1,2,3") throw new Error("unexpected");
 * ring.release(id);
 * rx.collect(() => {});
 * ```
 */
export class BufferRing {
  /** The shared buffer; the worker attaches to it. */
  readonly buffer: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #l: RingLayout;
  readonly #held: Uint8Array;
  #heldCount = 0;
  #tail = 0;

  private constructor(buffer: SharedArrayBuffer, l: RingLayout) {
    this.buffer = buffer;
    this.#l = l;
    this.#w = new Int32Array(buffer);
    this.#held = new Uint8Array(l.count);
  }

  /**
   * Creates a ring; every buffer starts with the worker.
   *
   * @param config Buffer count and size.
   * @returns The loop's side.
   * @throws {TypeError} A size is not an integer.
   * @throws {RangeError} A size is out of range.
   */
  static create(config: RingConfig): BufferRing {
    checkConfig(config);
    let slots = 1;
    while (slots < config.count) slots *= 2;
    const l = layout(config.count, config.size, slots);
    const buffer = new SharedArrayBuffer(l.bytes);
    const w = new Int32Array(buffer);
    w[R_COUNT] = l.count;
    w[R_SIZE] = l.size;
    w[R_SLOTS] = l.slots;
    Atomics.store(w, R_MAGIC, RING_MAGIC); // publishes the header
    return new BufferRing(buffer, l);
  }

  /** Buffers in the ring. */
  get count(): number {
    return this.#l.count;
  }

  /** Bytes per buffer. */
  get size(): number {
    return this.#l.size;
  }

  /** Buffers the loop holds now. */
  get held(): number {
    return this.#heldCount;
  }

  #check(id: number, action: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.#l.count) {
      throw new RangeError(`Cannot ${action}: no buffer ${id} in the ring`);
    }
  }

  /**
   * Records that a completion handed buffer `id` to the loop.
   *
   * @param id The buffer named by the completion.
   * @throws {RangeError} No such buffer, or the loop holds it already.
   */
  receive(id: number): void {
    this.#check(id, "receive buffer");
    if (this.#held[id] !== 0) {
      throw new RangeError(
        `Cannot receive buffer: buffer ${id} is already held by the loop`,
      );
    }
    this.#held[id] = 1;
    this.#heldCount++;
  }

  /**
   * The bytes the worker received into buffer `id`, in place: valid until
   * the buffer is released.
   *
   * @param id A buffer the loop holds.
   * @returns A view of exactly the received bytes.
   */
  bytes(id: number): Uint8Array {
    const l = this.#l;
    // Written by the worker before the completion that handed it over.
    const n = this.#w[l.lenBase + id];
    return new Uint8Array(this.buffer, l.dataByte + id * l.size, n);
  }

  /**
   * Gives buffer `id` back to the worker (1 plain store, 1 atomic store, 1
   * atomic load; a notify only if the worker sleeps waiting for one).
   *
   * @param id A buffer the loop holds.
   * @throws {RangeError} No such buffer, or the loop does not hold it.
   */
  release(id: number): void {
    this.#check(id, "release buffer");
    if (this.#held[id] === 0) {
      throw new RangeError(
        `Cannot release buffer: buffer ${id} is not held by the loop`,
      );
    }
    this.#held[id] = 0;
    this.#heldCount--;
    const w = this.#w;
    const t = this.#tail;
    w[RING_BASE + (t & (this.#l.slots - 1))] = id; // slot free: see header
    this.#tail = (t + 1) | 0;
    // Publishes the slot; pairs with Atomics.load(RET_TAIL) in collect().
    Atomics.store(w, RET_TAIL, this.#tail);
    // Pairs with the worker's store of WAITING in waitForReturn().
    if (Atomics.load(w, WAITING) !== 0) Atomics.notify(w, RET_TAIL);
  }

  /**
   * The worker's counters.
   *
   * @returns A snapshot.
   */
  stats(): RingStats {
    const w = this.#w;
    return Object.freeze({
      count: this.#l.count,
      held: this.#heldCount,
      pauses: Atomics.load(w, S_PAUSES),
      starved: Atomics.load(w, S_STARVED),
      posted: Atomics.load(w, S_POSTED) >>> 0,
      batches: Atomics.load(w, S_BATCHES) >>> 0,
      receives: Atomics.load(w, S_RECEIVES) >>> 0,
      addMs: (Atomics.load(w, S_ADD_US) >>> 0) / 1000,
    });
  }
}

/**
 * The worker's side of a ring: takes free buffers to receive into, and
 * collects the ones the loop gave back. One thread only.
 */
export class RingReceiver {
  readonly #w: Int32Array;
  readonly #l: RingLayout;
  readonly #views: Uint8Array[];
  /** Free ids, a stack: the most recently returned buffer is warmest. */
  readonly #free: Int32Array;
  #top = 0;
  /** Return ring position collected up to. */
  #head = 0;

  private constructor(buffer: SharedArrayBuffer, l: RingLayout) {
    this.#w = new Int32Array(buffer);
    this.#l = l;
    this.#views = Array.from(
      { length: l.count },
      (_, id) => new Uint8Array(buffer, l.dataByte + id * l.size, l.size),
    );
    this.#free = new Int32Array(l.count);
    for (let id = l.count - 1; id >= 0; id--) this.#free[this.#top++] = id;
  }

  /**
   * Attaches to a ring made by {@linkcode BufferRing.create}.
   *
   * @param buffer The ring's buffer.
   * @returns The worker's side.
   * @throws {TypeError} Not a ring buffer.
   */
  static attach(buffer: SharedArrayBuffer): RingReceiver {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < 512) {
      throw new TypeError("Cannot attach buffer ring: not a ring buffer");
    }
    const w = new Int32Array(buffer);
    if (Atomics.load(w, R_MAGIC) !== RING_MAGIC) {
      throw new TypeError("Cannot attach buffer ring: not a ring buffer");
    }
    return new RingReceiver(buffer, layout(w[R_COUNT], w[R_SIZE], w[R_SLOTS]));
  }

  /** Buffers in the ring. */
  get count(): number {
    return this.#l.count;
  }

  /** Free buffers this side holds (a snapshot). */
  get free(): number {
    return this.#top;
  }

  /**
   * Takes a free buffer.
   *
   * @returns Its id, or -1 when none is free.
   */
  take(): number {
    return this.#top === 0 ? -1 : this.#free[--this.#top];
  }

  /**
   * Puts back a buffer taken and not handed to the loop.
   *
   * @param id The buffer.
   */
  putBack(id: number): void {
    this.#free[this.#top++] = id;
  }

  /**
   * The whole buffer `id`, to receive into.
   *
   * @param id A buffer this side holds.
   * @returns Its view (the same object every time).
   */
  view(id: number): Uint8Array {
    return this.#views[id];
  }

  /**
   * Records how many bytes buffer `id` holds, before handing it over.
   *
   * @param id A buffer this side holds.
   * @param n Bytes received.
   */
  setLength(id: number, n: number): void {
    this.#w[this.#l.lenBase + id] = n;
  }

  /**
   * Takes back every buffer the loop returned since the last call.
   *
   * @param onReturn Called with each id, in return order.
   * @returns How many came back.
   */
  collect(onReturn: (id: number) => void): number {
    const w = this.#w;
    // Pairs with Atomics.store(RET_TAIL) in BufferRing.release().
    const tail = Atomics.load(w, RET_TAIL);
    const n = (tail - this.#head) | 0;
    if (n === 0) return 0;
    const mask = this.#l.slots - 1;
    for (let i = 0; i < n; i++) {
      const id = w[RING_BASE + ((this.#head + i) & mask)];
      this.#free[this.#top++] = id;
      onReturn(id);
    }
    this.#head = tail;
    Atomics.store(w, S_COLLECTED, tail);
    return n;
  }

  /**
   * Resolves once the loop has returned a buffer not yet collected (at
   * once if it already has). Does not keep a host alive by itself.
   */
  async waitForReturn(): Promise<void> {
    const w = this.#w;
    const head = this.#head;
    Atomics.store(w, WAITING, 1); // pairs with the load in release()
    try {
      if (Atomics.load(w, RET_TAIL) !== head) return;
      const r = Atomics.waitAsync(w, RET_TAIL, head);
      if (r.async) await r.value;
    } finally {
      Atomics.store(w, WAITING, 0);
    }
  }

  /**
   * Sets one of the stats words (`S_*`).
   *
   * @param word The word.
   * @param v The value.
   */
  setStat(word: number, v: number): void {
    Atomics.store(this.#w, word, v);
  }
}
