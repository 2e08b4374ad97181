/**
 * A trivial single-thread queue with the API shape of `MpscQueue` and
 * `Producer` (`runtime/mpsc_queue.ts`): the oracle that the contract suite in
 * `tests/mpsc_queue_test.ts` runs beside the SharedArrayBuffer queue.
 *
 * Items sit in a plain array. Storage is accounted per producer slot, as in
 * the real queue: at most `nodesPerProducer` unreleased items and
 * `bytesPerProducer` unreleased payload bytes (8-byte aligned, without the
 * ring's end-of-ring skip). An item leaves its slot's accounting when the
 * consumer releases it: after the drain callback returns (or throws), or on
 * the `tryPop` call after the one that returned it.
 *
 * A push can be split with {@linkcode ReferenceQueue.beginPush} into
 * "published" and "linked", to model a producer caught between its exchange
 * and its link store: the consumer answers `BUSY` when it reaches an unlinked
 * item.
 *
 * @module
 */

import {
  BUSY,
  type DrainState,
  EMPTY,
  PUSH_FULL,
  PUSH_OK,
  PUSH_WAS_EMPTY,
  type PushResult,
  type QueueConfig,
} from "../runtime/mpsc_queue.ts";
import { layoutFor, PAYLOAD_ALIGN } from "../runtime/queue_layout.ts";

interface Item {
  slot: number;
  tag: number;
  a: number;
  b: number;
  payload: Uint8Array | null;
  linked: boolean;
}

/** Everything a consumer handle works on; shared with a resumed handle. */
interface State {
  readonly config: Readonly<QueueConfig>;
  readonly items: Item[];
  head: number;
  readonly claimed: boolean[];
  readonly usedNodes: number[];
  readonly usedBytes: number[];
  held: Item | null;
}

function alignUp(n: number): number {
  return Math.ceil(n / PAYLOAD_ALIGN) * PAYLOAD_ALIGN;
}

function release(state: State, item: Item): void {
  state.usedNodes[item.slot]--;
  if (item.payload !== null) {
    state.usedBytes[item.slot] -= alignUp(item.payload.length);
  }
}

/** A popped item; like `QueueEntry`, reused for the next item. */
export class ReferenceEntry {
  /** Producer slot that pushed the item. */
  producer: number = -1;
  /** The item's tag. */
  tag: number = 0;
  /** First value word. */
  a: number = 0;
  /** Second value word. */
  b: number = 0;
  /** Payload length, or -1 without a payload. */
  byteLength: number = -1;
  #payload: Uint8Array = new Uint8Array(0);

  /** @internal Points the entry at an item. */
  set(item: Item): this {
    this.producer = item.slot;
    this.tag = item.tag;
    this.a = item.a;
    this.b = item.b;
    this.byteLength = item.payload === null ? -1 : item.payload.length;
    this.#payload = item.payload ?? new Uint8Array(0);
    return this;
  }

  /**
   * The payload.
   *
   * @returns The payload bytes (empty when there is none).
   */
  bytes(): Uint8Array {
    return this.#payload;
  }
}

/** The consumer side of the reference queue. */
export class ReferenceQueue {
  /** How the last `drain` (or failed `tryPop`) ended. */
  lastState: DrainState = "empty";
  readonly #state: State;
  readonly #entry = new ReferenceEntry();

  /**
   * Creates a queue; sizes are validated like the real queue's.
   *
   * @param config Sizes, defaults as in `QueueConfig`.
   */
  constructor(config: Partial<QueueConfig> | State = {}) {
    if ("items" in config) {
      this.#state = config;
      return;
    }
    const layout = layoutFor(config);
    const n = layout.producers;
    this.#state = {
      config: Object.freeze({
        producers: n,
        nodesPerProducer: layout.nodesPerProducer,
        bytesPerProducer: layout.bytesPerProducer,
      }),
      items: [],
      head: 0,
      claimed: new Array(n).fill(false),
      usedNodes: new Array(n).fill(0),
      usedBytes: new Array(n).fill(0),
      held: null,
    };
  }

  /** The sizes the queue was made with. */
  get config(): Readonly<QueueConfig> {
    return this.#state.config;
  }

  /**
   * Claims the lowest free producer slot.
   *
   * @returns The producer.
   * @throws {RangeError} Every slot is taken.
   */
  attach(): ReferenceProducer {
    const s = this.#claim();
    if (s < 0) {
      throw new RangeError(
        `Cannot attach producer: all ${this.config.producers} producer slots are taken`,
      );
    }
    return new ReferenceProducer(this.#state, s);
  }

  #claim(): number {
    const claimed = this.#state.claimed;
    const s = claimed.indexOf(false);
    if (s >= 0) claimed[s] = true;
    return s;
  }

  /**
   * Publishes an item from a free slot without linking it: the consumer
   * answers `BUSY` on reaching it until the returned function runs.
   *
   * @param tag Tag.
   * @param a First value.
   * @param b Second value.
   * @returns The link step; it also frees the slot again.
   * @throws {RangeError} No slot is free.
   */
  beginPush(tag: number, a: number, b: number): () => void {
    const state = this.#state;
    const slot = this.#claim();
    if (slot < 0) throw new RangeError("No free slot for a split push");
    if (state.usedNodes[slot] >= state.config.nodesPerProducer) {
      throw new RangeError("Slot for a split push is full");
    }
    const item: Item = { slot, tag, a, b, payload: null, linked: false };
    state.usedNodes[slot]++;
    state.items.push(item);
    return () => {
      item.linked = true;
      state.claimed[slot] = false;
    };
  }

  /**
   * A consumer handle that continues where this one stopped.
   *
   * @returns The new handle; stop using this one.
   */
  resume(): ReferenceQueue {
    this.#releaseHeld();
    return new ReferenceQueue(this.#state);
  }

  #releaseHeld(): void {
    const state = this.#state;
    if (state.held !== null) {
      release(state, state.held);
      state.held = null;
    }
  }

  /** Takes the next linked item, or null with `lastState` set. */
  #take(): Item | null {
    const state = this.#state;
    if (state.head === state.items.length) {
      state.items.length = 0;
      state.head = 0;
      this.lastState = "empty";
      return null;
    }
    const item = state.items[state.head];
    if (!item.linked) {
      this.lastState = "busy";
      return null;
    }
    state.head++;
    return item;
  }

  /**
   * Pops one item; the previous one is released on this call.
   *
   * @returns The entry, `EMPTY` or `BUSY`.
   */
  tryPop(): ReferenceEntry | typeof EMPTY | typeof BUSY {
    this.#releaseHeld();
    const item = this.#take();
    if (item === null) return this.lastState === "empty" ? EMPTY : BUSY;
    this.#state.held = item;
    return this.#entry.set(item);
  }

  /**
   * Runs `fn` on at most `limit` items; `fn` returning `false` stops after
   * that item; a throw consumes the item it was thrown on and propagates.
   *
   * @param limit Maximum items.
   * @param fn Called per item.
   * @returns Items taken.
   */
  drain(
    limit: number,
    fn: (entry: ReferenceEntry) => void | boolean,
  ): number {
    this.#releaseHeld();
    let n = 0;
    while (n < limit) {
      const item = this.#take();
      if (item === null) return n;
      n++;
      let go: void | boolean;
      try {
        go = fn(this.#entry.set(item));
      } finally {
        release(this.#state, item);
      }
      if (go === false) break;
    }
    this.lastState = "more";
    return n;
  }

  /**
   * Whether nothing is queued or being pushed.
   *
   * @returns True when empty.
   */
  isEmpty(): boolean {
    return this.#state.head === this.#state.items.length;
  }
}

/** The producer side of the reference queue. */
export class ReferenceProducer {
  /** The slot this producer owns. */
  readonly slot: number;
  readonly #state: State;
  #detached = false;

  /**
   * Binds a producer to a claimed slot; use `ReferenceQueue.attach`.
   *
   * @param state Queue state.
   * @param slot The claimed slot.
   */
  constructor(state: State, slot: number) {
    this.#state = state;
    this.slot = slot;
  }

  /** Largest payload one push can carry. */
  get maxPayload(): number {
    return this.#state.config.bytesPerProducer;
  }

  #freeNodes(): number {
    if (this.#detached) return 0;
    return this.#state.config.nodesPerProducer -
      this.#state.usedNodes[this.slot];
  }

  #append(items: Item[]): PushResult {
    const state = this.#state;
    const wasEmpty = state.head === state.items.length;
    for (const item of items) state.items.push(item);
    state.usedNodes[this.slot] += items.length;
    return wasEmpty ? PUSH_WAS_EMPTY : PUSH_OK;
  }

  /**
   * Pushes one item.
   *
   * @param tag Tag.
   * @param a First value.
   * @param b Second value.
   * @returns `PUSH_FULL`, `PUSH_OK` or `PUSH_WAS_EMPTY`.
   */
  push(tag: number, a: number, b: number): PushResult {
    if (this.#freeNodes() < 1) return PUSH_FULL;
    const slot = this.slot;
    return this.#append([{ slot, tag, a, b, payload: null, linked: true }]);
  }

  /**
   * Pushes `count` items, all or nothing.
   *
   * @param tags Tags.
   * @param as First values.
   * @param bs Second values.
   * @param count Items to push.
   * @returns As `push`.
   */
  pushBatch(
    tags: ArrayLike<number>,
    as: ArrayLike<number>,
    bs: ArrayLike<number>,
    count: number,
  ): PushResult {
    if (count <= 0) return PUSH_OK;
    if (this.#freeNodes() < count) return PUSH_FULL;
    const items: Item[] = [];
    for (let i = 0; i < count; i++) {
      items.push({
        slot: this.slot,
        tag: tags[i],
        a: as[i],
        b: bs[i],
        payload: null,
        linked: true,
      });
    }
    return this.#append(items);
  }

  /**
   * Pushes an item whose payload `write` fills.
   *
   * @param tag Tag.
   * @param length Payload length.
   * @param write Fills `target[offset .. offset+length)`.
   * @returns As `push`.
   * @throws {RangeError} `length` exceeds `maxPayload`.
   */
  pushWith(
    tag: number,
    length: number,
    write: (target: Uint8Array, offset: number) => void,
  ): PushResult {
    const size = this.maxPayload;
    if (length > size || length < 0) {
      throw new RangeError(
        `Cannot push payload: ${length} bytes exceeds the ${size}-byte payload limit per producer`,
      );
    }
    const state = this.#state;
    if (this.#freeNodes() < 1) return PUSH_FULL;
    if (state.usedBytes[this.slot] + alignUp(length) > size) return PUSH_FULL;
    const payload = new Uint8Array(length);
    write(payload, 0);
    state.usedBytes[this.slot] += alignUp(length);
    const slot = this.slot;
    return this.#append([{
      slot,
      tag,
      a: 0,
      b: length,
      payload,
      linked: true,
    }]);
  }

  /**
   * Pushes a copy of `bytes`.
   *
   * @param tag Tag.
   * @param bytes Payload.
   * @returns As `push`.
   */
  pushBytes(tag: number, bytes: Uint8Array): PushResult {
    return this.pushWith(tag, bytes.length, (t, o) => t.set(bytes, o));
  }

  /** Frees the slot; queued items stay queued, later pushes are refused. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#state.claimed[this.slot] = false;
  }
}
