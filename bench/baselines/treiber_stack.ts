/**
 * Benchmark baseline, never used by the runtime: the io_uring task_work list
 * as it was before the change in the seed, rebuilt on a SharedArrayBuffer. A
 * lock-free LIFO (Treiber) stack that producers push onto, which the consumer
 * detaches whole and reverses into arrival order before running it, plus a
 * retry list for the items a capped pass could not run.
 *
 * ## Contract
 *
 * - **What it is.** Nodes live in the buffer, 4 words each (`next`, meta, two
 *   values), in per-producer storage with the same sizes and offsets as
 *   `MpscQueue` (see the layout below), so both queues move the same bytes.
 *   Producers push at `HEAD`. The single consumer takes the whole stack with
 *   one `Atomics.exchange(HEAD, NIL)` ("detach"), reverses the detached
 *   chain with plain loads and stores, and runs it front to back.
 * - **FIFO.** Items run in the order their compare-and-swap on `HEAD` took
 *   effect, so each producer's items run in push order. One detach holds only
 *   items pushed after the previous detach, and leftovers of a capped pass
 *   run before anything detached later.
 * - **Producer progress: lock-free, not wait-free.** A push is an
 *   `Atomics.load(HEAD)`, a plain store of the node's `next`, and an
 *   `Atomics.compareExchange(HEAD)`: 2 atomic calls when no other producer
 *   gets in between, one more compare-and-swap for each one that does. A
 *   producer can in principle retry forever; the queue it is compared with
 *   pushes in 2 atomics, always.
 * - **Consumer progress: wait-free, O(n) before the first item.** A pass
 *   whose retry list is empty pays 1 atomic exchange and then a reversal of
 *   everything detached (one plain load and one plain store per node) before
 *   it can run the first item: the latency the seed removes. Running an item
 *   costs plain loads only. Release counters are published once per pass per
 *   producer slot touched (1 `Atomics.store` each), as `MpscQueue` does.
 * - **Capped passes.** A pass runs at most `limit` items. What it detached
 *   and did not run stays, already reversed, on a consumer-private retry
 *   list linked through the same `next` words. The next pass runs the retry
 *   list first and detaches new work only once the retry list is empty, with
 *   what is left of its budget (the kernel's `retry_llist`).
 * - **No mid-push window.** The compare-and-swap publishes a node that is
 *   already linked, so the consumer never sees a "busy" queue.
 * - **No ABA problem.** Nodes are only pushed and detached, never popped one
 *   by one. A push whose compare-and-swap succeeds against a head index that
 *   was detached and pushed again in the meantime still links its node in
 *   front of the current head, which is the right place.
 * - **Single consumer.** Only one thread at a time may call `drain` or
 *   `isEmpty`.
 *
 * | operation                      | may run concurrently with              |
 * | ------------------------------ | -------------------------------------- |
 * | `TreiberProducer.push` (slot s)| any push on another slot; the consumer |
 * | `TreiberStack.drain`           | any push; never another consumer call  |
 * | `TreiberProducer.attach`       | anything (slot claim is a CAS)         |
 *
 * ## Layout
 *
 * Sizes come from `layoutFor` in `runtime/queue_layout.ts`, so the producer
 * table and the node table sit at the offsets `MpscQueue` uses. Differences:
 *
 * | line | word (index)              | name                | written by                    | read by           |
 * | ---- | ------------------------- | ------------------- | ----------------------------- | ----------------- |
 * | 0    | `H_MAGIC` (0)             | `TREIBER_MAGIC`     | creator, once (atomic, last)  | attachers         |
 * | 0    | `H_PRODUCERS` (2)         | producer slots      | creator, once                 | attachers         |
 * | 0    | `H_NODES` (3)             | nodes per producer  | creator, once                 | attachers         |
 * | 1    | `HEAD` (32, `TAIL`'s)     | top of the stack    | producers (CAS), consumer (exchange) | all        |
 * | 3+   | `P_CLAIM` (slot +0)       | slot claim          | attachers (CAS)               | attachers         |
 * | 3+   | `C_RELEASED_NODES` (+32)  | nodes released      | consumer (atomic)             | producer (atomic) |
 * | ...  | node table                | 4 words a node      | owning producer, then consumer| consumer          |
 *
 * `HEAD` is alone on the producers' line, which both sides write (the
 * detach is a write), as the kernel's `work_llist` was. Node 1 (the queue's
 * stub) is unused. The consumer's state (retry list, release counts) is
 * private JavaScript state, not in the buffer.
 *
 * ## Memory-model argument
 *
 * JS `Atomics` are sequentially consistent, and an atomic read that observes
 * an atomic write synchronizes with it. A producer writes its node's values
 * and `next` with plain stores before the compare-and-swap that publishes it.
 * Every successful compare-and-swap and every detach reads the `HEAD` value
 * written by the one before it, so each detach happens after all the pushes
 * it collects, and the plain writes to every node of the chain are visible
 * to the consumer's plain loads. From the detach on, the consumer owns the
 * nodes (it rewrites their `next` words for the reversal); a producer reuses
 * a node only after an `Atomics.load` of the release counter that the
 * consumer stored after its last read of it.
 *
 * @module
 */

import {
  C_RELEASED_NODES,
  FIRST_PRODUCER_NODE,
  H_MAGIC,
  H_NODES,
  H_PRODUCERS,
  type Layout,
  layoutFor,
  N_A,
  N_B,
  N_META,
  N_NEXT,
  NIL,
  NODE_WORDS,
  P_CLAIM,
  SLOT_CLAIMED,
  SLOT_FREE,
  slotWord,
  TAIL,
} from "../../runtime/queue_layout.ts";
import {
  memoryOf,
  registerMemory,
  sharedMemory,
  WordAtomics,
} from "../../runtime/wasm_atomics.ts";
import {
  PUSH_FULL,
  PUSH_OK,
  PUSH_WAS_EMPTY,
  type PushResult,
} from "../../mod.ts";

/** Magic number in word 0: ASCII "twlt" (the queue's is "twlq"). */
export const TREIBER_MAGIC = 0x74776c74;
/** Producers' line: node index of the top of the stack, or NIL. */
export const HEAD = TAIL;

/** Sizes of a baseline stack. */
export interface TreiberConfig {
  /** Producer slots. */
  producers: number;
  /** Nodes per producer slot, a power of two. */
  nodesPerProducer: number;
  /**
   * Put the stack in a shared WebAssembly memory and make its atomic calls
   * through twloop's WebAssembly steps (`runtime/wasm_atomics.ts`), to
   * compare the two algorithms on the same footing. Default: JS `Atomics`.
   */
  wasm?: boolean;
}

/** One item, as a view the consumer refills for each item. */
export class TreiberEntry {
  /** Producer slot that pushed the item. */
  producer = -1;
  /** The item's tag. */
  tag = 0;
  /** First value word. */
  a = 0;
  /** Second value word. */
  b = 0;
}

function layoutOf(config: TreiberConfig): Layout {
  return layoutFor({ ...config, bytesPerProducer: 0 });
}

function readHeader(buffer: SharedArrayBuffer): Layout {
  const w = new Int32Array(buffer);
  if (Atomics.load(w, H_MAGIC) !== TREIBER_MAGIC) {
    throw new TypeError("Cannot attach producer: not a Treiber baseline");
  }
  return layoutOf({
    producers: w[H_PRODUCERS],
    nodesPerProducer: w[H_NODES],
  });
}

/** The consumer side, and owner of the buffer. */
export class TreiberStack {
  /** The shared buffer; producers attach to it. */
  readonly buffer: SharedArrayBuffer;
  /** Its shared memory, with `wasm: true`: send this to producers. */
  readonly memory: WebAssembly.Memory | undefined;
  /** WebAssembly atomic calls, with `wasm: true`. */
  readonly #a: WordAtomics | undefined;
  /** Detaches that found work (metric). */
  detaches = 0;
  readonly #w: Int32Array;
  readonly #layout: Layout;
  readonly #entry = new TreiberEntry();
  /** First node of the retry list (detached, reversed, not yet run). */
  #retry = NIL;
  /** The callback returned false: the pass ends. */
  #stopped = false;
  readonly #released: Int32Array;
  readonly #dirty: Int32Array;
  readonly #isDirty: Uint8Array;
  #dirtyCount = 0;

  private constructor(config: TreiberConfig) {
    this.#layout = layoutOf(config);
    this.buffer = config.wasm
      ? sharedMemory(this.#layout.byteLength)
      : new SharedArrayBuffer(this.#layout.byteLength);
    this.memory = memoryOf(this.buffer);
    this.#a = this.memory !== undefined
      ? new WordAtomics(this.buffer)
      : undefined;
    const w = this.#w = new Int32Array(this.buffer);
    w[H_PRODUCERS] = this.#layout.producers;
    w[H_NODES] = this.#layout.nodesPerProducer;
    w[HEAD] = NIL;
    // Publishes the header to attachers (their Atomics.load of H_MAGIC).
    Atomics.store(w, H_MAGIC, TREIBER_MAGIC);
    this.#released = new Int32Array(this.#layout.producers);
    this.#dirty = new Int32Array(this.#layout.producers);
    this.#isDirty = new Uint8Array(this.#layout.producers);
  }

  /**
   * Creates a stack and its buffer.
   *
   * @param config Sizes.
   * @returns The consumer handle.
   * @throws {RangeError} A size is out of range.
   */
  static create(config: TreiberConfig): TreiberStack {
    return new TreiberStack(config);
  }

  /** Reverses a detached chain in place; returns its new first node. */
  #reverse(top: number): number {
    const w = this.#w;
    const base = this.#layout.nodeBase + N_NEXT;
    let prev = NIL;
    let node = top;
    while (node !== NIL) {
      const at = base + node * NODE_WORDS;
      const next = w[at]; // plain: published by the detach, see the header
      w[at] = prev; // plain: the consumer owns detached nodes
      prev = node;
      node = next;
    }
    return prev;
  }

  /** Runs up to `limit` items from the retry list. */
  #runRetry(
    limit: number,
    fn: (e: TreiberEntry) => void | boolean,
  ): number {
    const w = this.#w;
    const e = this.#entry;
    const nodes = this.#layout.nodesPerProducer;
    const base = this.#layout.nodeBase;
    let n = 0;
    while (n < limit) {
      const node = this.#retry;
      if (node === NIL) break;
      const at = base + node * NODE_WORDS;
      this.#retry = w[at + N_NEXT];
      n++;
      const slot = ((node - FIRST_PRODUCER_NODE) / nodes) | 0;
      e.producer = slot;
      e.tag = w[at + N_META] >>> 1;
      e.a = w[at + N_A];
      e.b = w[at + N_B];
      let go: void | boolean = true;
      try {
        go = fn(e);
      } finally {
        this.#released[slot]++;
        if (this.#isDirty[slot] === 0) {
          this.#isDirty[slot] = 1;
          this.#dirty[this.#dirtyCount++] = slot;
        }
      }
      if (go === false) {
        this.#stopped = true;
        break;
      }
    }
    return n;
  }

  /** Publishes release counts: one atomic store per slot touched. */
  #publish(): void {
    const w = this.#w;
    for (let i = 0; i < this.#dirtyCount; i++) {
      const s = this.#dirty[i];
      // Pairs with the producer's Atomics.load in TreiberProducer.#refresh.
      const at = slotWord(s) + C_RELEASED_NODES;
      if (this.#a !== undefined) this.#a.store(at, this.#released[s]);
      else Atomics.store(w, at, this.#released[s]);
      this.#isDirty[s] = 0;
    }
    this.#dirtyCount = 0;
  }

  /**
   * Runs `fn` on at most `limit` items in FIFO order: first the retry list,
   * then, if it ran empty, a fresh detach with the rest of the budget.
   * `fn` returning `false` ends the pass after that item. If `fn` throws,
   * that item counts as run and the error propagates.
   *
   * @param limit Maximum items to run (0 or more).
   * @param fn Called with each entry; the entry is valid only during the call.
   * @returns How many items ran.
   */
  drain(limit: number, fn: (e: TreiberEntry) => void | boolean): number {
    this.#stopped = false;
    try {
      let n = this.#runRetry(limit, fn);
      if (this.#retry !== NIL || n >= limit || this.#stopped) return n;
      // Observes every producer's compare-and-swap (see the header).
      const a = this.#a;
      const top = a !== undefined
        ? a.exchange(HEAD, NIL)
        : Atomics.exchange(this.#w, HEAD, NIL);
      if (top === NIL) return n;
      this.detaches++;
      this.#retry = this.#reverse(top);
      n += this.#runRetry(limit - n, fn);
      return n;
    } finally {
      this.#publish();
    }
  }

  /**
   * Whether nothing is queued (a snapshot: a push may land right after).
   * Consumer thread only.
   *
   * @returns True when the retry list and the stack are empty.
   */
  isEmpty(): boolean {
    return this.#retry === NIL && Atomics.load(this.#w, HEAD) === NIL;
  }
}

/** The producer side: a claimed slot of a stack's buffer. */
export class TreiberProducer {
  /** The slot this producer owns. */
  readonly slot: number;
  /** The buffer it pushes into. */
  readonly buffer: SharedArrayBuffer;
  /** Compare-and-swaps that lost to another producer (metric). */
  casRetries = 0;
  readonly #w: Int32Array;
  readonly #a: WordAtomics | undefined;
  readonly #layout: Layout;
  readonly #firstNode: number;
  readonly #releasedAt: number;
  #allocated: number;
  #released: number;

  private constructor(buffer: SharedArrayBuffer, layout: Layout, slot: number) {
    this.slot = slot;
    this.buffer = buffer;
    this.#w = new Int32Array(buffer);
    this.#a = memoryOf(buffer) !== undefined
      ? new WordAtomics(buffer)
      : undefined;
    this.#layout = layout;
    this.#firstNode = FIRST_PRODUCER_NODE + slot * layout.nodesPerProducer;
    this.#releasedAt = slotWord(slot) + C_RELEASED_NODES;
    this.#released = Atomics.load(this.#w, this.#releasedAt);
    this.#allocated = this.#released;
  }

  /**
   * Claims a free producer slot.
   *
   * @param shared {@linkcode TreiberStack.buffer}, or its `memory` (then
   *   the producer's atomic calls go through WebAssembly).
   * @returns A producer for the calling thread.
   * @throws {TypeError} Not a baseline buffer.
   * @throws {RangeError} Every slot is taken.
   */
  static attach(
    shared: SharedArrayBuffer | WebAssembly.Memory,
  ): TreiberProducer {
    let buffer: SharedArrayBuffer;
    if (shared instanceof WebAssembly.Memory) {
      buffer = shared.buffer as unknown as SharedArrayBuffer;
      registerMemory(buffer, shared);
    } else {
      buffer = shared;
    }
    const layout = readHeader(buffer);
    const w = new Int32Array(buffer);
    for (let s = 0; s < layout.producers; s++) {
      const at = slotWord(s) + P_CLAIM;
      if (
        Atomics.compareExchange(w, at, SLOT_FREE, SLOT_CLAIMED) === SLOT_FREE
      ) {
        return new TreiberProducer(buffer, layout, s);
      }
    }
    throw new RangeError(
      `Cannot attach producer: all ${layout.producers} producer slots are taken`,
    );
  }

  /**
   * Frees the slot for another producer. Call with nothing of it queued
   * (the next owner starts from the consumer's release count).
   */
  detach(): void {
    Atomics.store(this.#w, slotWord(this.slot) + P_CLAIM, SLOT_FREE);
  }

  /** Re-reads the consumer's release counter when the cache says full. */
  #refresh(): void {
    // Pairs with the consumer's Atomics.store in TreiberStack.#publish.
    this.#released = Atomics.load(this.#w, this.#releasedAt);
  }

  /**
   * Pushes an item of two int32 values.
   *
   * @param tag 0 to 2^30-1.
   * @param a First value.
   * @param b Second value.
   * @returns `PUSH_FULL` (slot full, nothing queued), `PUSH_OK`, or
   *   `PUSH_WAS_EMPTY` (the stack was empty before).
   */
  push(tag: number, a: number, b: number): PushResult {
    const nodes = this.#layout.nodesPerProducer;
    if (((this.#allocated - this.#released) | 0) >= nodes) {
      this.#refresh();
      if (((this.#allocated - this.#released) | 0) >= nodes) return PUSH_FULL;
    }
    const node = this.#firstNode + (this.#allocated & (nodes - 1));
    this.#allocated = (this.#allocated + 1) | 0;
    const w = this.#w;
    const at = this.#layout.nodeBase + node * NODE_WORDS;
    w[at + N_META] = tag * 2;
    w[at + N_A] = a;
    w[at + N_B] = b;
    const wa = this.#a;
    let head = wa !== undefined ? wa.load(HEAD) : Atomics.load(w, HEAD);
    for (;;) {
      w[at + N_NEXT] = head; // plain: the node is still private
      // Publishes the node and its plain writes (see the header); observed
      // by the consumer's Atomics.exchange in TreiberStack.drain.
      const seen = wa !== undefined
        ? wa.cas(HEAD, head, node)
        : Atomics.compareExchange(w, HEAD, head, node);
      if (seen === head) break;
      head = seen;
      this.casRetries++;
    }
    return head === NIL ? PUSH_WAS_EMPTY : PUSH_OK;
  }
}
