/**
 * Benchmark baseline, never used by the runtime: twloop's consumer as it
 * was before "batch acquire" (see `runtime/mpsc_queue.ts`), kept to measure
 * what that change bought in the same run. It consumes an `MpscQueue`
 * buffer, fed by ordinary `Producer`s, and reads every link with its own
 * `Atomics.load`: the textbook Vyukov pop, 1 atomic call per item.
 *
 * ## Contract
 *
 * - **What it is.** The consumer side only: a cursor that follows `next`
 *   links from the stub, the stub pushed back behind the last node (exchange
 *   on `TAIL` plus a link store), release counters published once per pass
 *   per slot touched. Same FIFO order and mid-push "busy" state as the
 *   queue's own consumer.
 * - **Consumer progress.** 1 `Atomics.load` per item from a backlog; 5
 *   atomic calls for the last item.
 * - **Single consumer.** It replaces the buffer's `MpscQueue` consumer: use
 *   one or the other on a buffer, never both, and never `tryPop`.
 *
 * ## Memory-model argument
 *
 * As in `runtime/mpsc_queue.ts` without its batch-acquire exception: every
 * link is read with an atomic load that observes the producer's atomic
 * store of it, which follows the producer's plain writes to the node.
 *
 * @module
 */

import {
  C_RELEASED_NODES,
  FIRST_PRODUCER_NODE,
  H_NODES,
  H_PRODUCERS,
  layoutFor,
  N_A,
  N_B,
  N_META,
  N_NEXT,
  NIL,
  NODE_WORDS,
  slotWord,
  STUB,
  TAIL,
} from "../../runtime/queue_layout.ts";

/** One item, as a view the consumer refills for each item. */
export class AtomicLinkEntry {
  /** Producer slot. */
  producer = -1;
  /** Tag. */
  tag = 0;
  /** First value word. */
  a = 0;
  /** Second value word. */
  b = 0;
}

/** The consumer, over a buffer made by `MpscQueue.create`. */
export class AtomicLinkConsumer {
  /** How the last `drain` ended. */
  lastState: "empty" | "more" | "busy" = "empty";
  readonly #w: Int32Array;
  readonly #base: number;
  readonly #nodes: number;
  readonly #entry = new AtomicLinkEntry();
  readonly #released: Int32Array;
  readonly #dirty: Int32Array;
  readonly #isDirty: Uint8Array;
  #dirtyCount = 0;
  #cursor = STUB;

  /**
   * Takes over a fresh queue buffer (no item consumed yet).
   *
   * @param buffer From `MpscQueue.create(...).buffer`.
   */
  constructor(buffer: SharedArrayBuffer) {
    this.#w = new Int32Array(buffer);
    const layout = layoutFor({
      producers: this.#w[H_PRODUCERS],
      nodesPerProducer: this.#w[H_NODES],
      bytesPerProducer: 0,
    });
    this.#base = layout.nodeBase;
    this.#nodes = layout.nodesPerProducer;
    this.#released = new Int32Array(layout.producers);
    this.#dirty = new Int32Array(layout.producers);
    this.#isDirty = new Uint8Array(layout.producers);
  }

  #loadNext(node: number): number {
    // Pairs with the producer's Atomics.store of this link.
    return Atomics.load(this.#w, this.#base + node * NODE_WORDS + N_NEXT);
  }

  /** The pre-batch-acquire pop: returns the node taken, or NIL. */
  #take(): number {
    const w = this.#w;
    let c = this.#cursor;
    let next = this.#loadNext(c);
    if (c === STUB) {
      if (next === NIL) {
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
    if (Atomics.load(w, TAIL) !== c) {
      this.lastState = "busy";
      return NIL;
    }
    const stub = this.#base + STUB * NODE_WORDS;
    Atomics.store(w, stub + N_NEXT, NIL);
    const prev = Atomics.exchange(w, TAIL, STUB);
    Atomics.store(w, this.#base + prev * NODE_WORDS + N_NEXT, STUB);
    next = this.#loadNext(c);
    if (next !== NIL) {
      this.#cursor = next;
      return c;
    }
    this.lastState = "busy";
    return NIL;
  }

  /**
   * Runs `fn` on at most `limit` items in FIFO order; `fn` returning
   * `false` ends the pass after that item. If `fn` throws, that item counts
   * as consumed and the error propagates.
   *
   * @param limit Most items to take.
   * @param fn Called with each entry (valid only during the call).
   * @returns Items taken.
   */
  drain(
    limit: number,
    fn: (e: AtomicLinkEntry) => void | boolean,
  ): number {
    const w = this.#w;
    const e = this.#entry;
    let n = 0;
    try {
      while (n < limit) {
        const node = this.#take();
        if (node === NIL) return n;
        n++;
        const at = this.#base + node * NODE_WORDS;
        const slot = ((node - FIRST_PRODUCER_NODE) / this.#nodes) | 0;
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
        if (go === false) break;
      }
      this.lastState = "more";
      return n;
    } finally {
      for (let i = 0; i < this.#dirtyCount; i++) {
        const s = this.#dirty[i];
        // Pairs with the producer's Atomics.load of its release counter.
        Atomics.store(w, slotWord(s) + C_RELEASED_NODES, this.#released[s]);
        this.#isDirty[s] = 0;
      }
      this.#dirtyCount = 0;
    }
  }
}
