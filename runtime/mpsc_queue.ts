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
 *   the release counter, only when the cached one says full). When the
 *   buffer is a shared WebAssembly memory known to the thread (the default:
 *   see `wasm_atomics.ts`), the exchange and the link store are one call
 *   into WebAssembly (~9 ns against ~34 for the two JS calls); a producer
 *   on the consumer's own thread (`attachLocal`) stores the link plainly.
 * - **Consumer progress.** Popping a backlog costs **1 atomic call per
 *   batch**, not per item: one `Atomics.load(TAIL)` (a snapshot), then
 *   every link up to the snapshot node is read with a plain load ("batch
 *   acquire", argued below). Reaching the snapshot node takes a new
 *   snapshot; a plain read that finds no link is retried atomically. Taking
 *   the last item costs 1: at the snapshot node the consumer first tries a
 *   `compareExchange` that swings `TAIL` from it back to the stub (the
 *   consumer writes `TAIL` only there); when a push raced it, the link is
 *   read and a new snapshot taken instead.
 *   Release counters are published once per drain per producer slot touched
 *   (1 `Atomics.store` each), not per item.
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
 * owns at the time, with one exception, argued next.
 *
 * **Batch acquire.** The consumer loads `TAIL` atomically and gets node T,
 * after it reached its cursor c. Each node's exchange read the value the
 * previous exchange wrote (that value is the node's predecessor), so the
 * exchanges form a chain of synchronizing read-modify-writes, and the load
 * of T synchronizes with T's exchange: every node from c to T, and every
 * plain write made to it before its exchange (values, `next = NIL`),
 * happens-before the consumer's next reads. The link of a node n strictly
 * before T is then read plainly. That read may race with the atomic store of
 * n's link, but ECMA-262's valid executions (§ "Coherent Reads", "Tear Free
 * Reads") let it return only a whole value from a write not hidden by a
 * later one that happens-before the read: the `NIL` written before n's
 * exchange, or the link being stored now. Links of n's earlier lives are
 * hidden (they happen-before the release that let n be reused, which
 * happens-before that `NIL`). So the read gives `NIL`, retried with an
 * atomic load, or n's true successor, whose exchange is at or before T's
 * and whose values are therefore visible. The link of T itself, and of any
 * node past it, is never read plainly.
 *
 * @module
 */

import {
  alignUp,
  C_DELIVERED_NODES,
  C_RELEASED_BYTES,
  C_RELEASED_NODES,
  C_SPACE_WAIT,
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
  P_GENERATION,
  P_PUSH_NODE,
  P_PUSH_PREV,
  type QueueConfig,
  readLayout,
  SLOT_CLAIMED,
  SLOT_FREE,
  SLOT_RESERVED,
  slotWord,
  STUB,
  TAIL,
} from "./queue_layout.ts";
import { attachOnConsumerThread, type Producer } from "./producer.ts";
import { memoryOf, WordAtomics } from "./wasm_atomics.ts";

export type { QueueConfig } from "./queue_layout.ts";

/** `tryPop` result: nothing is queued. */
export const EMPTY: unique symbol = Symbol("empty");
/** `tryPop` result: a producer is between its exchange and its link store. */
export const BUSY: unique symbol = Symbol("busy");

/** `#next`: the node is the end of the `TAIL` snapshot; link not read. */
const SNAP_END = -2;

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
  /**
   * The shared WebAssembly memory behind {@linkcode MpscQueue.buffer}, when
   * the host could make one: send it (it is cloneable) to workers instead of
   * the buffer, so their producers push with WebAssembly atomics.
   */
  readonly memory: WebAssembly.Memory | undefined;
  /** The sizes this queue was created with. */
  readonly config: Readonly<QueueConfig>;
  readonly #layout: Layout;
  /** Result of the last `drain`: how it ended. */
  lastState: DrainState = "empty";
  readonly #w: Int32Array;
  readonly #entry: QueueEntry;
  /** Atomic calls on the buffer, through WebAssembly when it can. */
  readonly #atomics: WordAtomics;
  #cursor = STUB;
  /**
   * A `TAIL` value loaded after the cursor was reached, or NIL: every node
   * from the cursor up to (not including) it is covered, so its link may be
   * read plainly. Cleared when the cursor reaches it or the stub is pushed.
   */
  #snap = NIL;
  /** log2(nodesPerProducer): a node's slot by shift, not division. */
  readonly #slotShift: number;
  /** Word index of node 0 (the layout's, kept at hand for the hot path). */
  readonly #nodeBase: number;
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
  /** The current drain's callback returned false. */
  #halted = false;

  private constructor(buffer: SharedArrayBuffer, layout: Layout) {
    this.buffer = buffer;
    this.memory = memoryOf(buffer);
    this.#atomics = new WordAtomics(buffer);
    this.#layout = layout;
    this.config = Object.freeze({
      producers: layout.producers,
      nodesPerProducer: layout.nodesPerProducer,
      bytesPerProducer: layout.bytesPerProducer,
    });
    this.#w = new Int32Array(buffer);
    this.#slotShift = 31 - Math.clz32(layout.nodesPerProducer);
    this.#nodeBase = layout.nodeBase;
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

  /**
   * Attaches a producer for this consumer's own thread (a loop's own tasks):
   * its pushes store links with plain writes, one atomic call per push.
   * Use it only on the thread that calls `drain`/`tryPop`.
   *
   * @returns The producer.
   * @throws {RangeError} Every producer slot is taken.
   */
  attachLocal(): Producer {
    return attachOnConsumerThread(this.buffer);
  }

  #load(i: number): number {
    return this.#atomics.load(i);
  }

  #cas(i: number, expected: number, value: number): number {
    return this.#atomics.cas(i, expected, value);
  }

  #store(i: number, value: number): void {
    this.#atomics.store(i, value);
  }

  #loadNext(node: number): number {
    return this.#load(this.#nodeBase + node * NODE_WORDS + N_NEXT);
  }

  /**
   * The link of `c`, the cursor or the node just past it. Plain when `c` is
   * covered by the `TAIL` snapshot (see "Batch acquire" in the module docs),
   * else one `Atomics.load` of `TAIL` for a new snapshot first. A plain read
   * that finds no link is retried with an atomic load: it may be stale.
   */
  #next(c: number): number {
    const at = this.#nodeBase + c * NODE_WORDS + N_NEXT;
    let snap = this.#snap;
    if (snap === c) {
      // The snapshot ends here: `#take` first tries to take c as the last
      // node (one compareExchange), and calls again with no snapshot.
      this.#snap = NIL;
      return SNAP_END;
    }
    if (snap === NIL) {
      // Observes the exchanges of every node up to the snapshot (the
      // producer's Atomics.exchange in Producer.#publish, and through the
      // chain of exchanges on TAIL, all those before it).
      snap = this.#load(TAIL);
      if (snap === c) return this.#load(at); // not covered
      this.#snap = snap;
    }
    const next = this.#w[at]; // plain: c is covered, see the module docs
    return next !== NIL ? next : this.#load(at);
  }

  /**
   * Advances the cursor past one node if it can. Returns the node taken,
   * or NIL with `lastState` set to "empty" or "busy".
   */
  #take(): number {
    const w = this.#w;
    let c = this.#cursor;
    let next = this.#next(c);
    if (c === STUB) {
      if (next === NIL) {
        // Observes the producers' exchange: TAIL past the stub means a
        // producer published without linking yet.
        this.lastState = this.#load(TAIL) === STUB ? "empty" : "busy";
        return NIL;
      }
      this.#cursor = c = next;
      next = this.#next(c);
    }
    if (next === SNAP_END) {
      // c was TAIL at the snapshot: if it still is, take it now without
      // reading its link.
      w[this.#nodeBase + STUB * NODE_WORDS + N_NEXT] = NIL;
      if (this.#cas(TAIL, c, STUB) === c) {
        this.#cursor = STUB;
        return c;
      }
      next = this.#next(c);
    }
    if (next !== NIL) {
      this.#cursor = next;
      return c;
    }
    // c has no link yet. If it is still the last node, swing TAIL back to
    // the stub in one compareExchange and take c: a push after that links
    // behind the stub. The stub's link is reset first, with a plain write
    // that happens-before any push reading STUB from TAIL (through the
    // compareExchange). If TAIL moved on, a push is mid-window: its link
    // is usually stored by now, so read it once more before saying busy.
    this.#snap = NIL;
    w[this.#nodeBase + STUB * NODE_WORDS + N_NEXT] = NIL;
    if (this.#cas(TAIL, c, STUB) === c) {
      this.#cursor = STUB;
      return c;
    }
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
    const at = this.#nodeBase + node * NODE_WORDS;
    const meta = w[at + N_META];
    const slot = (node - FIRST_PRODUCER_NODE) >>> this.#slotShift;
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
      this.#store(at + C_RELEASED_BYTES, this.#relBytes[s]);
      // Pairs with the producer's Atomics.load in #refresh(): after it, the
      // producer may overwrite the released nodes and bytes.
      this.#store(at + C_RELEASED_NODES, this.#relNodes[s]);
      // A producer asleep for space wakes now, not at its timeout.
      if (this.#load(at + C_SPACE_WAIT) !== 0) {
        Atomics.store(w, at + C_SPACE_WAIT, 0);
        Atomics.notify(w, at + C_SPACE_WAIT);
      }
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
    this.#halted = false;
    try {
      while (n < limit) {
        n += this.#runCovered(limit - n, fn);
        if (this.#halted || n >= limit) break;
        const node = this.#take();
        if (node === NIL) return n;
        n++;
        if (this.#runOne(node, fn) === false) break;
      }
      this.lastState = "more";
      return n;
    } finally {
      this.#publish();
    }
  }

  /** Runs `fn` on a taken node and releases it; returns what `fn` did. */
  #runOne(
    node: number,
    fn: (entry: QueueEntry) => void | boolean,
  ): void | boolean {
    const e = this.#fill(node);
    this.#early = false;
    try {
      return fn(e);
    } finally {
      if (!this.#early) this.#release();
    }
  }

  /**
   * The hot path of `drain`: runs up to `limit` items while the cursor is
   * covered by the `TAIL` snapshot, following links with plain loads (no
   * atomic call per item; see "Batch acquire" in the module docs). Stops at
   * the snapshot node, at the stub, or at a link not yet seen; `#take`
   * handles those. Sets `#halted` when `fn` returns false.
   */
  #runCovered(
    limit: number,
    fn: (entry: QueueEntry) => void | boolean,
  ): number {
    const snap = this.#snap;
    if (snap === NIL) return 0;
    const w = this.#w;
    const links = this.#nodeBase + N_NEXT;
    let c = this.#cursor;
    let n = 0;
    // The stub carries no item: `#take` steps over it.
    while (n < limit && c !== snap && c !== STUB) {
      const next = w[links + c * NODE_WORDS]; // plain: c is covered
      if (next === NIL) break;
      this.#cursor = next;
      n++;
      if (this.#runOne(c, fn) === false) {
        this.#halted = true;
        break;
      }
      c = next;
    }
    return n;
  }

  /**
   * Publishes the releases of the items delivered so far, as a drain does
   * when it returns. For a producer on the consumer's own thread whose slot
   * is full in the middle of a drain (the loop's own tasks): the items the
   * drain already ran may have freed room. Consumer thread only.
   */
  publishReleases(): void {
    this.#publish();
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
   * slot)`, so the owner knows which slot a worker will use. Counts the
   * reservation in the slot's `P_GENERATION` (read it after this call) while
   * the slot is still claimed, before it shows as reserved: whoever claims
   * the reservation can see which one it claimed.
   *
   * @returns The slot number.
   * @throws {RangeError} Every slot is taken.
   */
  reserveSlot(): number {
    const w = this.#w;
    for (let s = 0; s < this.#layout.producers; s++) {
      const at = slotWord(s) + P_CLAIM;
      if (
        Atomics.compareExchange(w, at, SLOT_FREE, SLOT_CLAIMED) === SLOT_FREE
      ) {
        // Pairs with the loads around the claim in `connect` (port.ts).
        Atomics.add(w, slotWord(s) + P_GENERATION, 1);
        Atomics.store(w, at, SLOT_RESERVED);
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
    const link = this.#nodeBase + prev * NODE_WORDS + N_NEXT;
    return Atomics.compareExchange(w, link, NIL, node) === NIL;
  }

  /**
   * Whether the consumer waits on a missing link: a push was published
   * behind its cursor (the tail moved on) but not linked yet.
   *
   * @returns True while the link is missing.
   */
  halfLinked(): boolean {
    const c = this.#cursor;
    return this.#loadNext(c) === NIL && Atomics.load(this.#w, TAIL) !== c;
  }

  /**
   * Which producer holds the consumer up: the slot whose recorded push (see
   * `repair`) has the cursor as predecessor while the cursor's link is still
   * unstored. For diagnostics; the records are plain writes, so a producer
   * that has only just exchanged may not show yet.
   *
   * @returns The slot, or -1 when none is known.
   */
  stuckSlot(): number {
    const w = this.#w;
    const c = this.#cursor;
    if (!this.halfLinked()) return -1;
    for (let s = 0; s < this.#layout.producers; s++) {
      const at = slotWord(s);
      if (
        Atomics.load(w, at + P_PUSH_PREV) === c &&
        Atomics.load(w, at + P_PUSH_NODE) !== NIL
      ) return s;
    }
    return -1;
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
    return this.#cursor === STUB && this.#load(TAIL) === STUB;
  }
}

export { Producer, PUSH_FULL, PUSH_OK, PUSH_WAS_EMPTY } from "./producer.ts";
export type { PushResult } from "./producer.ts";
