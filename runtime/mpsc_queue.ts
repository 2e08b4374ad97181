/**
 * A wait-free multi-producer, single-consumer FIFO in a SharedArrayBuffer
 * (Vyukov's intrusive queue, as in the io_uring change "switch local
 * task_work to a mpscq"). The layout is in `queue_layout.ts`.
 *
 * ## Contract
 *
 * - **What it is.** Nodes live in the buffer; each has a `next` link and two
 *   value words. Producers append at `TAIL`; the single consumer follows
 *   `next` links from its private cursor. A stub node lets the queue be empty
 *   without a null tail.
 * - **FIFO.** Items come out in the order their `TAIL` exchanges took effect;
 *   so each producer's items come out in the order it pushed them.
 * - **Producer progress: wait-free.** A push is `node.next = NIL` (plain),
 *   `prev = Atomics.exchange(TAIL, node)`, `Atomics.store(prev.next, node)`:
 *   **2 atomic calls per push**, whatever other threads do. A batch of k
 *   items links a private chain with plain writes and publishes it with the
 *   same 2 atomics: 2/k per item. Node and payload storage come from the
 *   producer's own slot, so allocation never contends; when that slot is
 *   full the push returns {@linkcode PUSH_FULL} (one extra `Atomics.load` of
 *   the release counter, only when the cached one says full).
 * - **Consumer progress.** A pop from a backlog is **1 atomic call**
 *   (`Atomics.load(cursor.next)`). Taking the last item costs 5: load `TAIL`,
 *   then push the stub back (exchange + store), then reload the link. Release
 *   counters are published once per drain per producer slot touched (1
 *   `Atomics.store` each), not per item.
 * - **The mid-push window.** Between a producer's exchange and its link
 *   store, the consumer sees a `TAIL` past its cursor with no link to
 *   follow. That is {@linkcode BUSY}: the consumer returns it and must do
 *   other work or yield, never spin on it or sleep on it indefinitely.
 * - **Single consumer.** Only one thread at a time may call `tryPop`,
 *   `drain` or `isEmpty` on a buffer.
 *
 * | operation                 | may run concurrently with               |
 * | ------------------------- | --------------------------------------- |
 * | `Producer.push*` (slot s) | any push on another slot; the consumer  |
 * | `MpscQueue.tryPop/drain`  | any push; never another consumer call   |
 * | `Producer.attach`         | anything (slot claim is a CAS)          |
 *
 * ## Memory-model argument (stated once)
 *
 * JS `Atomics` are sequentially consistent, and an atomic read that observes
 * an atomic write synchronizes with it: every plain write made before that
 * atomic write happens-before everything after the read. Producers make all
 * plain writes to a node (values, payload bytes, `next = NIL`) before the
 * exchange that publishes it, and the consumer reads them only after an
 * atomic load of the link that leads to the node, which the same producer
 * stored after its exchange. Slots are reused only after the producer reads
 * (atomically) the release counter the consumer stored (atomically) after its
 * last read of them. Plain accesses are therefore only to words one side
 * owns at the time.
 *
 * @module
 */

import {
  C_DELIVERED_NODES,
  C_RELEASED_BYTES,
  C_RELEASED_NODES,
  createBuffer,
  CURSOR,
  CURSOR_HELD,
  FIRST_PRODUCER_NODE,
  type Layout,
  layoutFor,
  N_A,
  N_B,
  N_META,
  N_NEXT,
  NIL,
  NODE_WORDS,
  P_ALLOC_BYTES,
  P_ALLOC_NODES,
  P_CLAIM,
  P_PUSH_NODE,
  P_PUSH_PREV,
  PAYLOAD_ALIGN,
  type QueueConfig,
  readLayout,
  SLOT_CLAIMED,
  SLOT_FREE,
  SLOT_RESERVED,
  slotWord,
  STUB,
  TAIL,
} from "./queue_layout.ts";

export type { QueueConfig } from "./queue_layout.ts";

/** `tryPop` result: nothing is queued. */
export const EMPTY: unique symbol = Symbol("empty");
/** `tryPop` result: a producer is between its exchange and its link store. */
export const BUSY: unique symbol = Symbol("busy");

/** Push result: the producer's slot is full; nothing was queued. */
export const PUSH_FULL = 0;
/** Push result: queued behind other items. */
export const PUSH_OK = 1;
/** Push result: queued, and the queue held no item before (the wake hint). */
export const PUSH_WAS_EMPTY = 2;
/** What a push returns. */
export type PushResult =
  | typeof PUSH_FULL
  | typeof PUSH_OK
  | typeof PUSH_WAS_EMPTY;

/** How a `drain` ended. */
export type DrainState = "empty" | "more" | "busy";

/**
 * One popped item, as a reusable view: the queue overwrites it on the next
 * `tryPop` or `drain` step, and its payload bytes are valid only until then.
 */
export class QueueEntry {
  /** Producer slot that pushed the item. */
  producer: number = -1;
  /** The item's tag (0 to 2^30-1). */
  tag: number = 0;
  /** First value word (int32). */
  a: number = 0;
  /** Second value word (int32). */
  b: number = 0;
  /** Payload length in bytes, or -1 when the item has no payload. */
  byteLength: number = -1;
  /** Byte offset of the payload in the queue's buffer. */
  byteOffset: number = 0;
  /** Node index, for diagnostics. */
  node: number = NIL;
  readonly #buffer: SharedArrayBuffer;
  readonly #f64: Float64Array;

  /**
   * Makes an entry view; the queue keeps one and refills it per item.
   *
   * @param buffer The queue buffer the entry views.
   */
  constructor(buffer: SharedArrayBuffer) {
    this.#buffer = buffer;
    this.#f64 = new Float64Array(buffer);
  }

  /**
   * The two value words read as one float64 (pushed with `pushFloat`).
   *
   * @returns The float value.
   */
  float(): number {
    return this.#f64[(this.#nodeWordIndex + N_A) >> 1];
  }

  /** Word index of this entry's node; set by the queue. */
  #nodeWordIndex = 0;
  /**
   * Points the entry at a node (used by the queue when it fills the entry).
   *
   * @param index Word index of the node in the buffer.
   */
  setNodeWord(index: number): void {
    this.#nodeWordIndex = index;
  }

  /**
   * The payload as a view into shared memory, valid until the next pop.
   *
   * @returns A `Uint8Array` over the payload bytes (empty if none).
   */
  bytes(): Uint8Array {
    return new Uint8Array(
      this.#buffer,
      this.byteOffset,
      Math.max(0, this.byteLength),
    );
  }
}

/**
 * The consumer side of a queue, and its owner: {@linkcode MpscQueue.create}
 * makes the buffer that producers attach to.
 *
 * @example
 * ```ts
 * import { MpscQueue, Producer } from "./mpsc_queue.ts";
 * const q = MpscQueue.create({ producers: 2, nodesPerProducer: 8 });
 * const p = Producer.attach(q.buffer);
 * p.push(7, 1, 2);
 * const got: number[] = [];
 * q.drain(10, (e) => {
 *   got.push(e.tag, e.a, e.b);
 * });
 * if (got.join() !== "7,1,2") throw new Error("unexpected");
 * ```
 */
export class MpscQueue {
  /** The shared buffer; send it to workers so they can `Producer.attach`. */
  readonly buffer: SharedArrayBuffer;
  /** The sizes this queue was created with. */
  readonly config: Readonly<QueueConfig>;
  readonly #layout: Layout;
  /** Result of the last `drain`: how it ended. */
  lastState: DrainState = "empty";
  readonly #w: Int32Array;
  readonly #entry: QueueEntry;
  #cursor = STUB;
  /** Pending release counts per producer slot, published once per drain. */
  readonly #relNodes: Int32Array;
  readonly #relBytes: Int32Array;
  readonly #dirty: Int32Array;
  readonly #isDirty: Uint8Array;
  #dirtyCount = 0;
  /** Node popped by `tryPop` whose release waits for the next call. */
  #held = NIL;
  /** The current drain entry was released early by `releaseCurrent`. */
  #early = false;

  private constructor(buffer: SharedArrayBuffer, layout: Layout) {
    this.buffer = buffer;
    this.#layout = layout;
    this.config = Object.freeze({
      producers: layout.producers,
      nodesPerProducer: layout.nodesPerProducer,
      bytesPerProducer: layout.bytesPerProducer,
    });
    this.#w = new Int32Array(buffer);
    this.#entry = new QueueEntry(buffer);
    this.#relNodes = new Int32Array(layout.producers);
    this.#relBytes = new Int32Array(layout.producers);
    this.#dirty = new Int32Array(layout.producers);
    this.#isDirty = new Uint8Array(layout.producers);
    for (let s = 0; s < layout.producers; s++) {
      this.#relNodes[s] = Atomics.load(this.#w, slotWord(s) + C_RELEASED_NODES);
      this.#relBytes[s] = Atomics.load(this.#w, slotWord(s) + C_RELEASED_BYTES);
    }
    this.#cursor = Atomics.load(this.#w, CURSOR);
    // A previous consumer's tryPop item was delivered but not released.
    const held = this.#w[CURSOR_HELD];
    if (held !== NIL) {
      this.#fill(held);
      this.#release();
      this.#publish();
    }
  }

  /**
   * Creates a queue and its buffer.
   *
   * @param config Sizes; see {@linkcode QueueConfig}.
   * @returns The consumer handle.
   * @throws {TypeError} A size is not an integer.
   * @throws {RangeError} A size is out of range.
   */
  static create(config: Partial<QueueConfig> = {}): MpscQueue {
    const layout = layoutFor(config);
    return new MpscQueue(createBuffer(layout), layout);
  }

  /**
   * Takes over as consumer of an existing buffer (after the previous
   * consumer stopped), resuming from the cursor it left in the buffer.
   *
   * @param buffer A queue buffer.
   * @returns The consumer handle.
   * @throws {TypeError} Not a queue buffer.
   */
  static resume(buffer: SharedArrayBuffer): MpscQueue {
    return new MpscQueue(buffer, readLayout(buffer, "resume queue"));
  }

  #loadNext(node: number): number {
    return Atomics.load(
      this.#w,
      this.#layout.nodeBase + node * NODE_WORDS + N_NEXT,
    );
  }

  /**
   * Advances the cursor past one node if it can. Returns the node taken,
   * or NIL with `lastState` set to "empty" or "busy".
   */
  #take(): number {
    const w = this.#w;
    let c = this.#cursor;
    let next = this.#loadNext(c);
    if (c === STUB) {
      if (next === NIL) {
        // Observes the producers' exchange: TAIL past the stub means a
        // producer published without linking yet.
        this.lastState = Atomics.load(w, TAIL) === STUB ? "empty" : "busy";
        return NIL;
      }
      this.#cursor = c = next;
      next = this.#loadNext(c);
    }
    if (next !== NIL) {
      this.#cursor = next;
      return c;
    }
    // c may be the last node. Another exchange after it means a push is
    // mid-window: busy. Otherwise put the stub behind c so c can be taken
    // without leaving the queue without a node.
    if (Atomics.load(w, TAIL) !== c) {
      this.lastState = "busy";
      return NIL;
    }
    const stub = this.#layout.nodeBase + STUB * NODE_WORDS;
    Atomics.store(w, stub + N_NEXT, NIL);
    const prev = Atomics.exchange(w, TAIL, STUB);
    Atomics.store(w, this.#layout.nodeBase + prev * NODE_WORDS + N_NEXT, STUB);
    next = this.#loadNext(c);
    if (next !== NIL) {
      this.#cursor = next;
      return c;
    }
    this.lastState = "busy";
    return NIL;
  }

  #fill(node: number): QueueEntry {
    const w = this.#w;
    const e = this.#entry;
    const at = this.#layout.nodeBase + node * NODE_WORDS;
    const meta = w[at + N_META];
    const slot =
      ((node - FIRST_PRODUCER_NODE) / this.#layout.nodesPerProducer) |
      0;
    e.node = node;
    e.producer = slot;
    e.tag = meta >>> 1;
    e.a = w[at + N_A];
    e.b = w[at + N_B];
    e.setNodeWord(at);
    if ((meta & 1) === 0) {
      e.byteLength = -1;
    } else {
      const size = this.#layout.bytesPerProducer;
      e.byteLength = e.b;
      e.byteOffset = this.#layout.bytesBase + slot * size + (e.a & (size - 1));
    }
    return e;
  }

  /** Counts the entry's node (and its payload) as released, locally. */
  #release(): void {
    const e = this.#entry;
    const slot = e.producer;
    if (this.#isDirty[slot] === 0) {
      this.#isDirty[slot] = 1;
      this.#dirty[this.#dirtyCount++] = slot;
    }
    this.#relNodes[slot]++;
    if (e.byteLength >= 0) {
      this.#relBytes[slot] = (e.a + alignUp(e.byteLength)) | 0;
    }
  }

  /** Publishes local release counts: one atomic store per slot touched. */
  #publish(): void {
    const w = this.#w;
    for (let i = 0; i < this.#dirtyCount; i++) {
      const s = this.#dirty[i];
      const at = slotWord(s);
      Atomics.store(w, at + C_RELEASED_BYTES, this.#relBytes[s]);
      // Pairs with the producer's Atomics.load in #refresh(): after it, the
      // producer may overwrite the released nodes and bytes.
      Atomics.store(w, at + C_RELEASED_NODES, this.#relNodes[s]);
      this.#isDirty[s] = 0;
    }
    this.#dirtyCount = 0;
    w[CURSOR] = this.#cursor;
    w[CURSOR_HELD] = this.#held;
  }

  #releaseHeld(): void {
    if (this.#held !== NIL) {
      this.#release();
      this.#held = NIL;
      this.#publish();
    }
  }

  /**
   * Pops one item. The returned entry is reused: read it before the next
   * call. The previous entry's storage is released on this call.
   *
   * @returns The entry, {@linkcode EMPTY}, or {@linkcode BUSY}.
   */
  tryPop(): QueueEntry | typeof EMPTY | typeof BUSY {
    this.#releaseHeld();
    const node = this.#take();
    if (node === NIL) return this.lastState === "empty" ? EMPTY : BUSY;
    this.#held = node;
    this.#w[CURSOR] = this.#cursor; // for resume(): delivered once, not again
    this.#w[CURSOR_HELD] = node;
    return this.#fill(node);
  }

  /**
   * Runs `fn` on at most `limit` items in FIFO order; the rest stay queued.
   * `fn` returning `false` stops the drain after that item.
   * Storage of each item is released after `fn` returns for it (published
   * once, at the end). If `fn` throws, the item it threw on counts as
   * consumed and the error propagates; the remaining items stay queued.
   *
   * @param limit Maximum items to take (0 or more).
   * @param fn Called with each entry; the entry is valid only during the call.
   * @returns How many items were taken; {@linkcode MpscQueue.lastState} says
   *   whether more remain ("more"), none ("empty") or a push is mid-window
   *   ("busy").
   */
  drain(limit: number, fn: (entry: QueueEntry) => void | boolean): number {
    this.#releaseHeld();
    let n = 0;
    try {
      while (n < limit) {
        const node = this.#take();
        if (node === NIL) return n;
        n++;
        const e = this.#fill(node);
        let go: void | boolean = true;
        this.#early = false;
        try {
          go = fn(e);
        } finally {
          if (!this.#early) this.#release();
        }
        if (go === false) break;
      }
      this.lastState = "more";
      return n;
    } finally {
      this.#publish();
    }
  }

  /**
   * Inside a `drain` callback: releases the current entry's storage now and
   * publishes it (2 atomic stores), so its producer can reuse it before the
   * drain ends. The entry must not be read afterwards.
   */
  releaseCurrent(): void {
    if (this.#early) return;
    this.#early = true;
    this.#release();
    this.#publish();
  }

  /**
   * Items queued, estimated: per producer slot, nodes allocated (a plain,
   * possibly stale read of the count each producer writes on every push)
   * minus nodes released. Stale in the direction of too few, never
   * negative. Consumer thread only; O(producer slots).
   *
   * @returns The estimate.
   */
  depth(): number {
    const w = this.#w;
    let n = 0;
    for (let s = 0; s < this.#layout.producers; s++) {
      const d = (w[slotWord(s) + P_ALLOC_NODES] - this.#relNodes[s]) | 0;
      if (d > 0) n += d;
    }
    return n;
  }

  /**
   * Reserves a free producer slot for one later `Producer.attach(buffer,
   * slot)`, so the owner knows which slot a worker will use.
   *
   * @returns The slot number.
   * @throws {RangeError} Every slot is taken.
   */
  reserveSlot(): number {
    const w = this.#w;
    for (let s = 0; s < this.#layout.producers; s++) {
      const at = slotWord(s) + P_CLAIM;
      if (
        Atomics.compareExchange(w, at, SLOT_FREE, SLOT_RESERVED) === SLOT_FREE
      ) {
        return s;
      }
    }
    throw new RangeError(
      `Cannot reserve port: all ${this.#layout.producers} producer slots are taken`,
    );
  }

  /**
   * Stores the link a dead producer left unstored (fault protocol step 4 in
   * `loop_inbox.ts`). Only when the consumer is stuck exactly at the
   * recorded predecessor: that node is the cursor, so it is neither released
   * nor reusable, and the value stored is the one the producer would store.
   *
   * The producer's records (`P_PUSH_NODE`, `P_PUSH_PREV`) are plain writes,
   * read here with atomic loads after the host reported the thread dead.
   * The ECMAScript memory model gives a dead agent's last plain writes no
   * order; a stale read can only name an older push, whose predecessor is
   * not the current cursor with an empty link, so it is refused.
   *
   * @param slot The dead producer's slot.
   * @returns True when a link was stored.
   */
  repair(slot: number): boolean {
    const w = this.#w;
    const at = slotWord(slot);
    const node = Atomics.load(w, at + P_PUSH_NODE);
    const prev = Atomics.load(w, at + P_PUSH_PREV);
    const c = this.#cursor;
    if (node === NIL || prev === NIL || prev !== c) return false;
    if (this.#loadNext(c) !== NIL || Atomics.load(w, TAIL) === c) return false;
    const link = this.#layout.nodeBase + prev * NODE_WORDS + N_NEXT;
    return Atomics.compareExchange(w, link, NIL, node) === NIL;
  }

  /**
   * Frees a dead producer's slot for a new port once nothing it published
   * is still queued (fault protocol step 5): its allocation counters are
   * rewound to what the consumer released, which drops any half-written,
   * never-published item.
   *
   * @param slot The dead producer's slot.
   * @returns True when the slot was freed.
   */
  reclaim(slot: number): boolean {
    const w = this.#w;
    const at = slotWord(slot);
    const published = w[at + P_ALLOC_NODES];
    if (!this.isEmpty() && published !== this.#relNodes[slot]) return false;
    this.#publish();
    w[at + P_ALLOC_NODES] = this.#relNodes[slot];
    w[at + P_ALLOC_BYTES] = this.#relBytes[slot];
    w[at + P_PUSH_NODE] = NIL;
    w[at + P_PUSH_PREV] = NIL;
    // Publishes the rewound counters to the next attach's compareExchange.
    Atomics.store(w, at + P_CLAIM, SLOT_FREE);
    return true;
  }

  /**
   * Nodes of a slot consumed so far (this consumer's own count, including
   * releases not yet published).
   *
   * @param slot Producer slot.
   * @returns The count (wraps at 2^32).
   */
  consumed(slot: number): number {
    return this.#relNodes[slot];
  }

  /**
   * Publishes every slot's consumed count as its delivered count (the close
   * protocol's seal; see `port.ts`).
   */
  publishDelivered(): void {
    const w = this.#w;
    for (let s = 0; s < this.#layout.producers; s++) {
      Atomics.store(w, slotWord(s) + C_DELIVERED_NODES, this.#relNodes[s]);
    }
  }

  /**
   * Whether nothing is queued or being pushed (a snapshot: a push may land
   * right after). Consumer thread only.
   *
   * @returns True when the cursor is the stub and `TAIL` is the stub.
   */
  isEmpty(): boolean {
    return this.#cursor === STUB && Atomics.load(this.#w, TAIL) === STUB;
  }
}

function alignUp(n: number): number {
  return (n + PAYLOAD_ALIGN - 1) & -PAYLOAD_ALIGN;
}

/**
 * The producer side: a claimed slot of a queue buffer. Any thread holding the
 * buffer may attach; each producer must be used by one thread only.
 */
export class Producer {
  /** The slot this producer owns. */
  readonly slot: number;
  /** The queue buffer. */
  readonly buffer: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #u8: Uint8Array;
  readonly #f64: Float64Array;
  readonly #layout: Layout;
  readonly #firstNode: number;
  readonly #slotAt: number;
  readonly #bytesAt: number;
  #allocNodes: number;
  #allocBytes: number;
  #releasedNodes: number;
  #releasedBytes: number;
  #detached = false;
  /**
   * Count of nodes this producer had allocated after its last push: the
   * push's sequence number in this slot plus one (wraps at 2^32).
   */
  get pushed(): number {
    return this.#allocNodes;
  }
  /** Node index of the last item pushed (for diagnostics). */
  lastNode: number = NIL;

  private constructor(buffer: SharedArrayBuffer, layout: Layout, slot: number) {
    this.slot = slot;
    this.buffer = buffer;
    this.#layout = layout;
    this.#w = new Int32Array(buffer);
    this.#u8 = new Uint8Array(buffer);
    this.#f64 = new Float64Array(buffer);
    this.#firstNode = FIRST_PRODUCER_NODE + slot * layout.nodesPerProducer;
    this.#slotAt = slotWord(slot);
    this.#bytesAt = layout.bytesBase + slot * layout.bytesPerProducer;
    const w = this.#w;
    // Written by the previous owner before it freed the slot (Atomics.store
    // of P_CLAIM in detach(), observed by our compareExchange).
    this.#allocNodes = w[this.#slotAt + P_ALLOC_NODES];
    this.#allocBytes = w[this.#slotAt + P_ALLOC_BYTES];
    this.#releasedNodes = Atomics.load(w, this.#slotAt + C_RELEASED_NODES);
    this.#releasedBytes = Atomics.load(w, this.#slotAt + C_RELEASED_BYTES);
  }

  /**
   * Claims a free producer slot of a queue buffer, or a slot reserved for
   * this caller by {@linkcode MpscQueue.reserveSlot}.
   *
   * @param buffer The buffer from {@linkcode MpscQueue.buffer}.
   * @param reserved A reserved slot number to claim.
   * @returns A producer bound to the calling thread.
   * @throws {TypeError} Not a queue buffer.
   * @throws {RangeError} Every producer slot is taken, or `reserved` is not
   *   a reserved slot.
   */
  static attach(buffer: SharedArrayBuffer, reserved?: number): Producer {
    const layout = readLayout(buffer, "attach producer");
    const w = new Int32Array(buffer);
    if (reserved !== undefined) {
      const ok = Number.isInteger(reserved) && reserved >= 0 &&
        reserved < layout.producers &&
        Atomics.compareExchange(
            w,
            slotWord(reserved) + P_CLAIM,
            SLOT_RESERVED,
            SLOT_CLAIMED,
          ) === SLOT_RESERVED;
      if (!ok) {
        throw new RangeError(
          `Cannot attach producer: slot ${reserved} is not reserved (already connected?)`,
        );
      }
      return new Producer(buffer, layout, reserved);
    }
    for (let s = 0; s < layout.producers; s++) {
      if (
        Atomics.compareExchange(
          w,
          slotWord(s) + P_CLAIM,
          SLOT_FREE,
          SLOT_CLAIMED,
        ) === SLOT_FREE
      ) {
        return new Producer(buffer, layout, s);
      }
    }
    throw new RangeError(
      `Cannot attach producer: all ${layout.producers} producer slots are taken`,
    );
  }

  /**
   * Re-reads the consumer's release counters; 2 atomic loads, called only
   * when the cached counters say the slot is full.
   */
  #refresh(): void {
    // Pairs with the consumer's Atomics.store in MpscQueue.#publish().
    this.#releasedNodes = Atomics.load(
      this.#w,
      this.#slotAt + C_RELEASED_NODES,
    );
    this.#releasedBytes = Atomics.load(
      this.#w,
      this.#slotAt + C_RELEASED_BYTES,
    );
  }

  /**
   * Nodes free in this slot, refreshing the counters if the cache says none.
   *
   * @returns Free node count (a snapshot; only grows until this thread pushes).
   */
  freeNodes(): number {
    let free = this.#layout.nodesPerProducer -
      ((this.#allocNodes - this.#releasedNodes) | 0);
    if (free <= 1) {
      this.#refresh();
      free = this.#layout.nodesPerProducer -
        ((this.#allocNodes - this.#releasedNodes) | 0);
    }
    return free;
  }

  /** Claims the next node of this slot, or NIL when full or closed. */
  #allocNode(): number {
    if (this.#detached || this.freeNodes() <= 0) return NIL;
    const node = this.#firstNode +
      (this.#allocNodes & (this.#layout.nodesPerProducer - 1));
    this.#allocNodes = (this.#allocNodes + 1) | 0;
    return node;
  }

  /** Publishes the chain first..last: 2 atomics. */
  #publish(first: number, last: number): PushResult {
    const w = this.#w;
    const base = this.#layout.nodeBase;
    const at = this.#slotAt;
    w[base + last * NODE_WORDS + N_NEXT] = NIL;
    // Plain writes for depth estimates and for repair after this thread
    // dies mid-push (see MpscQueue.repair): the push's first node, and,
    // once known, its predecessor.
    w[at + P_ALLOC_NODES] = this.#allocNodes;
    w[at + P_ALLOC_BYTES] = this.#allocBytes;
    w[at + P_PUSH_PREV] = NIL;
    w[at + P_PUSH_NODE] = first;
    // The exchange publishes every plain write above; the consumer observes
    // it through the link below (Atomics.load in MpscQueue.#loadNext) or
    // through TAIL (Atomics.load in MpscQueue.#take).
    const prev = Atomics.exchange(w, TAIL, last);
    w[at + P_PUSH_PREV] = prev;
    Atomics.store(w, base + prev * NODE_WORDS + N_NEXT, first);
    w[at + P_PUSH_NODE] = NIL;
    this.lastNode = last;
    return prev === STUB ? PUSH_WAS_EMPTY : PUSH_OK;
  }

  #fillNode(
    node: number,
    tag: number,
    a: number,
    b: number,
    hasBytes: number,
  ): void {
    const at = this.#layout.nodeBase + node * NODE_WORDS;
    const w = this.#w;
    w[at + N_META] = tag * 2 + hasBytes;
    w[at + N_A] = a;
    w[at + N_B] = b;
  }

  /**
   * Pushes an item of two int32 values.
   *
   * @param tag 0 to 2^30-1; what the consumer dispatches on.
   * @param a First value (int32).
   * @param b Second value (int32).
   * @returns {@linkcode PUSH_FULL} (nothing queued: the slot is full or
   *   detached), {@linkcode PUSH_OK} or {@linkcode PUSH_WAS_EMPTY}.
   */
  push(tag: number, a: number, b: number): PushResult {
    const node = this.#allocNode();
    if (node === NIL) return PUSH_FULL;
    this.#fillNode(node, tag, a, b, 0);
    return this.#publish(node, node);
  }

  /**
   * Pushes an item carrying one float64.
   *
   * @param tag 0 to 2^30-1.
   * @param value Any number; read back with {@linkcode QueueEntry.float}.
   * @returns As {@linkcode Producer.push}.
   */
  pushFloat(tag: number, value: number): PushResult {
    const node = this.#allocNode();
    if (node === NIL) return PUSH_FULL;
    const at = this.#layout.nodeBase + node * NODE_WORDS;
    this.#w[at + N_META] = tag * 2;
    this.#f64[(at + N_A) >> 1] = value;
    return this.#publish(node, node);
  }

  /**
   * Pushes `count` items as one chain published with a single exchange.
   * All or nothing: if the slot has fewer than `count` free nodes, nothing is
   * queued.
   *
   * @param tags Tag of each item.
   * @param as First value of each item.
   * @param bs Second value of each item.
   * @param count How many items to take from the arrays.
   * @returns As {@linkcode Producer.push}; PUSH_FULL if `count` items do not fit.
   */
  pushBatch(
    tags: ArrayLike<number>,
    as: ArrayLike<number>,
    bs: ArrayLike<number>,
    count: number,
  ): PushResult {
    if (count <= 0) return PUSH_OK;
    if (this.#detached) return PUSH_FULL;
    if (this.freeNodes() < count) {
      this.#refresh();
      if (this.freeNodes() < count) return PUSH_FULL;
    }
    const w = this.#w;
    const base = this.#layout.nodeBase;
    const first = this.#allocNode();
    let prev = first;
    this.#fillNode(first, tags[0], as[0], bs[0], 0);
    for (let i = 1; i < count; i++) {
      const node = this.#allocNode();
      this.#fillNode(node, tags[i], as[i], bs[i], 0);
      w[base + prev * NODE_WORDS + N_NEXT] = node;
      prev = node;
    }
    return this.#publish(first, prev);
  }

  /**
   * Reserves payload space: returns the monotonic start counter, or -1.
   * Payloads never wrap: a range that would cross the ring's end skips to
   * its start, and the skipped bytes are released with the payload.
   */
  #reserveBytes(length: number): number {
    const size = this.#layout.bytesPerProducer;
    const need = alignUp(length);
    const pos = this.#allocBytes & (size - 1);
    const skip = pos + need > size ? size - pos : 0;
    const total = skip + need;
    let used = (this.#allocBytes - this.#releasedBytes) | 0;
    if (size - used < total) {
      this.#refresh();
      used = (this.#allocBytes - this.#releasedBytes) | 0;
      // An empty ring has no data to overlap: the skipped tail is free too.
      if (size - used < total && !(used === 0 && need <= size)) return -1;
    }
    const start = (this.#allocBytes + skip) | 0;
    this.#allocBytes = (this.#allocBytes + total) | 0;
    return start;
  }

  /**
   * Largest payload a single push can carry in this queue.
   *
   * @returns Bytes per producer slot.
   */
  get maxPayload(): number {
    return this.#layout.bytesPerProducer;
  }

  /**
   * Pushes an item whose payload is `length` bytes written by `write` straight
   * into shared memory (one copy, no intermediate buffer).
   *
   * @param tag 0 to 2^30-1.
   * @param length Payload length in bytes, 0 to {@linkcode Producer.maxPayload}.
   * @param write Fills `target[offset .. offset+length)` and may return the
   *   bytes it actually wrote (at most `length`; the rest of the reservation
   *   is given back at once). A throw abandons the push; the reserved bytes
   *   are reclaimed when the next payload is released.
   * @returns As {@linkcode Producer.push}.
   * @throws {RangeError} `length` exceeds {@linkcode Producer.maxPayload}.
   */
  pushWith(
    tag: number,
    length: number,
    write: (target: Uint8Array, offset: number) => number | void,
  ): PushResult {
    const size = this.#layout.bytesPerProducer;
    if (length > size || length < 0) {
      throw new RangeError(
        `Cannot push payload: ${length} bytes exceeds the ${size}-byte payload limit per producer`,
      );
    }
    if (this.#detached || this.freeNodes() <= 0) return PUSH_FULL;
    const start = this.#reserveBytes(length);
    if (start === -1) return PUSH_FULL;
    const wrote = write(this.#u8, this.#bytesAt + (start & (size - 1)));
    if (typeof wrote === "number" && wrote >= 0 && wrote < length) {
      this.#allocBytes = (start + alignUp(wrote)) | 0; // give back the unused tail
      length = wrote;
    }
    const node = this.#allocNode();
    this.#fillNode(node, tag, start, length, 1);
    return this.#publish(node, node);
  }

  /**
   * Pushes a copy of `bytes` as the item's payload.
   *
   * @param tag 0 to 2^30-1.
   * @param bytes The payload; copied once into shared memory.
   * @returns As {@linkcode Producer.push}.
   * @throws {RangeError} The payload exceeds {@linkcode Producer.maxPayload}.
   */
  pushBytes(tag: number, bytes: Uint8Array): PushResult {
    return this.pushWith(tag, bytes.length, (t, o) => t.set(bytes, o));
  }

  /**
   * Gives the slot back for another producer. Items already pushed stay
   * queued and are delivered; this producer refuses further pushes.
   */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    const w = this.#w;
    w[this.#slotAt + P_ALLOC_NODES] = this.#allocNodes;
    w[this.#slotAt + P_ALLOC_BYTES] = this.#allocBytes;
    // Publishes the counters above to the next owner's compareExchange.
    Atomics.store(w, this.#slotAt + P_CLAIM, SLOT_FREE);
  }
}
