/**
 * The producer side of `MpscQueue`: a claimed slot of a queue
 * buffer, with its own bounded node and payload rings. The contract (2
 * atomics per push, wait-free, the mid-push window) and the memory-model
 * argument are in `mpsc_queue.ts`.
 *
 * @module
 */

import {
  adoptMemory,
  alignUp,
  C_RELEASED_BYTES,
  C_RELEASED_NODES,
  FIRST_PRODUCER_NODE,
  type Layout,
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
  readLayout,
  SLOT_CLAIMED,
  SLOT_FREE,
  SLOT_RESERVED,
  slotWord,
  STUB,
  TAIL,
  WAIT_NR,
} from "./queue_layout.ts";
import { type AtomicSteps, isMemory, stepsFor } from "./wasm_atomics.ts";

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

let markOnConsumerThread: (p: Producer) => void;
let setFence: (p: Producer, word: number, mask: number) => void;
let setArmed: (p: Producer, armed: boolean) => void;
let getArmed: (p: Producer) => boolean;
let getWaitNr: (p: Producer) => number;

/**
 * Makes a port's producer lower the port's write fence in its publish (one
 * WebAssembly call for the exchange, link store, fence and wake check); a
 * publish does so only when the port armed it ({@linkcode armFence}) and
 * the buffer is a known shared memory. Used by `Port`.
 *
 * @param p The port's producer.
 * @param word Word index of the fence.
 * @param mask And-ed into the fence to lower it.
 */
export function fencePublishes(p: Producer, word: number, mask: number): void {
  setFence(p, word, mask);
}

/**
 * Arms (or disarms) the fenced publish of a producer given a fence by
 * {@linkcode fencePublishes}: its next publish lowers the fence and reads
 * `WAIT_NR`, then disarms. Used by `Port` inside its fence.
 *
 * @param p The port's producer.
 * @param armed Whether the next publish is fenced.
 */
export function armFence(p: Producer, armed: boolean): void {
  setArmed(p, armed);
}

/**
 * Whether the fenced publish is still armed: after a write, true means no
 * publish took it (full, or failed) and the fence is still raised.
 *
 * @param p The port's producer.
 * @returns The armed flag.
 */
export function fenceArmed(p: Producer): boolean {
  return getArmed(p);
}

/**
 * `WAIT_NR` as the producer's last fenced publish read it.
 *
 * @param p The port's producer.
 * @returns The word.
 */
export function fencedWaitNr(p: Producer): number {
  return getWaitNr(p);
}

/**
 * Attaches a producer for the consumer's own thread, whose link stores are
 * plain writes (one atomic call per push instead of two). Used by
 * `MpscQueue.attachLocal`; only valid on the thread that consumes.
 *
 * @param buffer The queue buffer.
 * @returns The producer.
 */
export function attachOnConsumerThread(buffer: SharedArrayBuffer): Producer {
  const p = Producer.attach(buffer);
  markOnConsumerThread(p);
  return p;
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
   * Whether this producer runs on the consumer's thread (the loop's own
   * tasks and timers): then the consumer reads its links in program order,
   * and the link store needs no atomic call.
   */
  #onConsumerThread = false;
  /** WebAssembly atomic steps when the buffer is a known shared memory. */
  readonly #steps: AtomicSteps | undefined;
  /** Byte address of node 0's link (for `#steps.publish`). */
  readonly #links: number;
  /** The port's fence word and its lowering mask (`fencePublishes`). */
  #fence = -1;
  #fenceMask = 0;
  /**
   * Set by a port inside its fence (`armFence`): the next publish lowers the
   * fence and reads `WAIT_NR` into `#waitNr`, then clears this. Still set
   * after a write means no publish took it (full, or failed). Never set
   * without a fence: module functions only, so no caller can point the
   * fenced publish at word -1.
   */
  #fenceArmed = false;
  /** `WAIT_NR` as the last fenced publish read it. */
  #waitNr = 0;
  static {
    markOnConsumerThread = (p) => {
      p.#onConsumerThread = true;
    };
    setFence = (p, word, mask) => {
      p.#fence = word;
      p.#fenceMask = mask;
    };
    setArmed = (p, armed) => {
      p.#fenceArmed = armed && p.#fence >= 0;
    };
    getArmed = (p) => p.#fenceArmed;
    getWaitNr = (p) => p.#waitNr;
  }
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
    this.#steps = stepsFor(buffer);
    this.#links = (layout.nodeBase + N_NEXT) * 4;
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
   * @param shared The queue's {@linkcode MpscQueue.memory} (then pushes
   *   use WebAssembly atomics, ~3x cheaper) or its
   *   {@linkcode MpscQueue.buffer} (JS `Atomics`, unless this thread made
   *   or already adopted the memory).
   * @param reserved A reserved slot number to claim.
   * @returns A producer bound to the calling thread.
   * @throws {TypeError} Not a queue buffer.
   * @throws {RangeError} Every producer slot is taken, or `reserved` is not
   *   a reserved slot.
   */
  static attach(
    shared: SharedArrayBuffer | WebAssembly.Memory,
    reserved?: number,
  ): Producer {
    const buffer = isMemory(shared)
      ? adoptMemory(shared, "attach producer")
      : shared;
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
   * Nodes free in this slot, refreshing the counters if the cache says two
   * or fewer (the loop keeps up to two nodes of its own slot back).
   *
   * @returns Free node count (a snapshot; only grows until this thread pushes).
   */
  freeNodes(): number {
    let free = this.#layout.nodesPerProducer -
      ((this.#allocNodes - this.#releasedNodes) | 0);
    if (free <= 2) {
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
    if (this.#onConsumerThread) return this.#publishLocal(first, last);
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
    const steps = this.#steps;
    let prev: number;
    if (steps !== undefined && this.#fenceArmed) {
      // Also ends the push's record (P_PUSH_NODE = NIL) before the fence
      // is lowered: nothing of this post is written after that.
      this.#fenceArmed = false;
      this.#waitNr = steps.publishFenced(
        TAIL * 4,
        (at + P_PUSH_PREV) * 4,
        this.#links,
        first,
        last,
        (at + P_PUSH_NODE) * 4,
        this.#fence * 4,
        this.#fenceMask,
        WAIT_NR * 4,
      );
      this.lastNode = last;
      return w[at + P_PUSH_PREV] === STUB ? PUSH_WAS_EMPTY : PUSH_OK;
    }
    if (steps !== undefined) {
      // The same exchange, record and link store, in one WebAssembly call.
      prev = steps.publish(
        TAIL * 4,
        (at + P_PUSH_PREV) * 4,
        this.#links,
        first,
        last,
      );
    } else {
      prev = Atomics.exchange(w, TAIL, last);
      w[at + P_PUSH_PREV] = prev;
      Atomics.store(w, base + prev * NODE_WORDS + N_NEXT, first);
    }
    w[at + P_PUSH_NODE] = NIL;
    this.lastNode = last;
    return prev === STUB ? PUSH_WAS_EMPTY : PUSH_OK;
  }

  /**
   * `#publish` on the consumer's thread: the link store is plain, and there
   * is no repair record (this thread cannot die with the consumer alive).
   */
  #publishLocal(first: number, last: number): PushResult {
    const w = this.#w;
    w[this.#slotAt + P_ALLOC_NODES] = this.#allocNodes; // for depth()
    w[this.#slotAt + P_ALLOC_BYTES] = this.#allocBytes;
    const steps = this.#steps;
    let prev: number;
    if (steps !== undefined) {
      prev = steps.publishLocal(TAIL * 4, this.#links, first, last);
    } else {
      prev = Atomics.exchange(w, TAIL, last);
      w[this.#layout.nodeBase + prev * NODE_WORDS + N_NEXT] = first;
    }
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
