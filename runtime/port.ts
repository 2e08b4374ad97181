/**
 * Ports: the producer side of a loop as other threads see it.
 *
 * `loop.port()` reserves a producer slot and returns a {@linkcode PortHandle},
 * a plain object carrying the queue's SharedArrayBuffer that survives
 * `postMessage`; a worker turns it into a {@linkcode Port} with
 * {@linkcode connect}.
 *
 * ## Posting
 *
 * `post(data)` encodes `data` (see `messages.ts`) straight into the port's
 * shared storage and pushes it: 2 atomics to fence the write (so that a
 * thread the loop was told is dead, but that still runs, cannot write to a
 * slot the loop may give to a new port: fault protocol in `loop_inbox.ts`),
 * 2 for the push, 1 to read the wake word. Wake policy per post: `"lazy"` (the default) counts toward the
 * loop's `minEvents` threshold, so a loop that asked for batches is woken
 * once per batch; `"eager"` wakes a sleeping loop at once. With the default
 * `minEvents` of 1 both wake on the first post.
 *
 * Backpressure, when the port's storage is full: `tryPost` returns false;
 * `post` wakes the loop and waits (sleeping with a growing pause up to 1 ms,
 * never spinning unboundedly) until space frees or `timeout` ms pass
 * ({@linkcode PostTimeoutError}); `postAsync` does the same without blocking
 * the thread. Space frees in FIFO order as the loop consumes. Nothing is
 * dropped: every error carries the value in `data`.
 *
 * Per-port FIFO holds across all three: `postAsync` calls that wait for
 * space are kept in call order (a later one never overtakes an earlier
 * one), `tryPost` returns false while any of them is pending, and `post`
 * first sends the pending ones, in order, settling their promises.
 *
 * ## Close protocol (seen from a port)
 *
 * 1. The loop's `close()` stores `WAKE_CLOSING` in the wake word, then
 *    pushes a close marker. Every post whose exchange came before the
 *    marker is delivered; every one after it is not.
 * 2. A post reads the wake word after its push. Not closing: its exchange
 *    preceded step 1's store, so it precedes the marker: delivered, return.
 * 3. Closing: the post waits for the loop to reach the marker and seal
 *    (`WAKE_SEALED`, with each slot's delivered count published), then
 *    compares its own sequence number: delivered, return; otherwise throw
 *    {@linkcode LoopClosedError} carrying the value. Exactly one of the two.
 *    The wait lasts as long as the loop takes to reach the marker (a task
 *    that blocks delays it), bounded by the post's own `timeout` (a budget
 *    of its own, apart from any wait for space). If the seal has not come
 *    by then the outcome is not known yet, and the post throws
 *    {@linkcode DeliveryUnknownError}: the value may still be delivered.
 *    It never throws {@linkcode LoopClosedError} for a value that is
 *    delivered. `postAsync` waits the same way without blocking the thread.
 * 4. A post on the loop's own thread never waits for the seal (the loop
 *    cannot run while it waits): its push follows the marker, so it throws.
 *
 * ## Closing a port
 *
 * `close()` pushes a close item behind the port's messages; the loop frees
 * the slot when it reads it. When the port stays full for the close's
 * `timeout`, `close()` throws {@linkcode PostTimeoutError} ("Cannot close
 * port: ...") and the port stays open and keeps its slot (the loop still
 * counts it open, so giving the slot back would let `loop.port()` hand it
 * out twice): call `close()` again. Posting on a closed port throws
 * {@linkcode LoopClosedError} ("Cannot post message: port is closed").
 *
 * ## Handles
 *
 * Each reservation of a slot has a generation (`P_GENERATION` in
 * `queue_layout.ts`) that the handle carries: a handle whose slot was
 * closed and reserved again is stale and `connect` refuses it.
 *
 * @module
 */

import {
  adoptMemory,
  C_DELIVERED_NODES,
  C_SPACE_WAIT,
  FENCE_WRITING,
  P_CLAIM,
  P_FENCE,
  P_GENERATION,
  readLayout,
  sameQueue,
  SLOT_CLAIMED,
  SLOT_RESERVED,
  slotWord,
  WAIT_NR,
  WAKE_CLOSING,
  WAKE_SEALED,
} from "./queue_layout.ts";
import { Producer, PUSH_FULL } from "./mpsc_queue.ts";
import {
  armFence,
  fenceArmed,
  fencedWaitNr,
  fencePublishes,
} from "./producer.ts";
import {
  MessageWriter,
  MSG_CLOSE_REQUEST,
  MSG_PORT_CLOSED,
} from "./messages.ts";
import { wakeArmed } from "./wake.ts";
import { isMemory, WordAtomics } from "./wasm_atomics.ts";

/** A structured-cloneable description of a reserved port. */
export interface PortHandle {
  /** Marks the object as a port handle. */
  readonly kind: "twloop.port";
  /** The loop's queue buffer. */
  readonly buffer: SharedArrayBuffer;
  /**
   * The shared WebAssembly memory whose buffer is `buffer`, when the loop
   * has one: `connect` then uses it, and posts take WebAssembly atomics.
   */
  readonly memory?: WebAssembly.Memory;
  /** The reserved producer slot. */
  readonly slot: number;
  /**
   * The slot's deaths reported when it was reserved (its fence, see
   * `queue_layout.ts`): a handle whose thread was reported dead before it
   * connected cannot connect later. Read at `connect` when absent.
   */
  readonly epoch?: number;
  /**
   * Which reservation of the slot this handle is for (`P_GENERATION` in
   * `queue_layout.ts`): `connect` refuses it once the slot was closed and
   * reserved again. Not checked when absent (a hand-made handle).
   */
  readonly generation?: number;
}

/** How a post wakes a sleeping loop. */
export type WakePolicy = "lazy" | "eager";

/** Options for one post. */
export interface PostOptions {
  /** Wake policy (default `"lazy"`). */
  wake?: WakePolicy;
  /**
   * Longest wait for space, in ms (default 30 000; `Infinity` allowed);
   * separately, the longest wait for the verdict of a post queued while the
   * loop was closing (close protocol step 3 in `port.ts`).
   */
  timeout?: number;
}

/**
 * A call that cannot nest was made from inside itself: a run method from a
 * task of the same loop, or a post from a getter of the value the same port
 * is encoding.
 */
export class ReentrancyError extends Error {
  /**
   * Makes the error.
   *
   * @param method The method called, e.g. "runSync".
   * @param why What was already under way.
   */
  constructor(
    method: string,
    why = "the loop is already running (called from inside a task)",
  ) {
    super(`Cannot ${method}: ${why}`);
    this.name = "ReentrancyError";
  }
}

/**
 * The loop is closed, or the port is (closed by `close()` or refused after
 * its thread was reported dead; the message then says "port is closed"):
 * the value in `data` was not delivered.
 */
export class LoopClosedError extends Error {
  /** The undelivered value. */
  readonly data: unknown;
  /**
   * Makes the error.
   *
   * @param data The undelivered value.
   * @param action What was attempted, e.g. "post message".
   * @param what What is closed: "loop" (default) or "port".
   */
  constructor(data: unknown, action = "post message", what = "loop") {
    super(`Cannot ${action}: ${what} is closed`);
    this.name = "LoopClosedError";
    this.data = data;
  }
}

/**
 * No space freed in time: the value in `data` was not queued (for a
 * `close()`, the port stays open).
 */
export class PostTimeoutError extends Error {
  /** The undelivered value. */
  readonly data: unknown;
  /**
   * Makes the error.
   *
   * @param data The undelivered value.
   * @param ms The timeout that passed.
   * @param action What was attempted, e.g. "post message".
   * @param after Said after the cause, e.g. "; the port stays open".
   */
  constructor(data: unknown, ms: number, action = "post message", after = "") {
    super(
      `Cannot ${action}: no space in the port's storage after ${ms} ms${after}`,
    );
    this.name = "PostTimeoutError";
    this.data = data;
  }
}

/**
 * The message was queued while the loop was closing, and the loop did not
 * seal within the post's `timeout`: whether it is delivered is not known
 * (it is if it was queued ahead of the close marker). Close protocol step 3.
 */
export class DeliveryUnknownError extends Error {
  /** The value, possibly delivered. */
  readonly data: unknown;
  /**
   * Makes the error.
   *
   * @param data The value.
   * @param ms The timeout that passed.
   */
  constructor(data: unknown, ms: number) {
    super(
      `Cannot confirm message delivery: the loop is closing and did not seal within ${ms} ms, so the message may or may not be delivered`,
    );
    this.name = "DeliveryUnknownError";
    this.data = data;
  }
}

/**
 * A blocking wait that only this thread could end: a post blocking on a
 * full port of a loop that runs on the same thread. Nothing was queued.
 */
export class DeadlockError extends Error {
  /** The undelivered value. */
  readonly data: unknown;
  /**
   * Makes the error.
   *
   * @param data The undelivered value.
   */
  constructor(data: unknown) {
    super(
      "Cannot post message: the port is full and this thread runs the loop, so waiting would deadlock",
    );
    this.name = "DeadlockError";
    this.data = data;
  }
}

/**
 * Loops that run on this thread, by queue buffer: posting there must not
 * block, and a push that has to wait is handed to the loop instead
 * (`retryLater`: the loop calls it after each pass's tasks until it returns
 * true).
 */
const loopsHere = new WeakMap<
  SharedArrayBuffer,
  (retry: () => boolean) => void
>();

/**
 * Records that the loop owning `buffer` runs on this thread.
 *
 * @param buffer The loop's queue buffer.
 * @param retryLater Keeps a push that found the port full, to be retried
 *   by the loop after the tasks of each pass until it returns true.
 */
export function markLoopThread(
  buffer: SharedArrayBuffer,
  retryLater: (retry: () => boolean) => void,
): void {
  loopsHere.set(buffer, retryLater);
}

const DEFAULT_TIMEOUT = 30_000;

/**
 * How long `post` polls a full port for space before it starts sleeping,
 * ms: the loop's own default poll before it sleeps (`spinMicros`, 50 µs).
 * Sleeping alone capped a 4 KiB stream from one worker at ~0.15 M msg/s,
 * ~16 messages (one 64 KiB payload ring) per timed wait (bench/payloads.ts).
 */
const SPACE_SPIN_MS = 0.05;

/** Validates options (`null` counts as absent, as WebIDL dictionaries do). */
function checkOptions(
  o: PostOptions | null | undefined,
  action = "post message",
): void {
  if (o === undefined || o === null) return;
  if (typeof o !== "object") {
    throw new TypeError(
      `Cannot ${action}: options must be an object, got ${String(o)}`,
    );
  }
  if (o.wake !== undefined && o.wake !== "lazy" && o.wake !== "eager") {
    throw new TypeError(
      `Cannot ${action}: wake must be "lazy" or "eager", got ${String(o.wake)}`,
    );
  }
  const t = o.timeout;
  if (t !== undefined && (typeof t !== "number" || !(t >= 0))) {
    throw new RangeError(
      `Cannot ${action}: timeout must be a number >= 0, got ${String(t)}`,
    );
  }
}

/** The timeout of checked options, ms. */
function timeoutOf(o: PostOptions | null | undefined): number {
  return o?.timeout ?? DEFAULT_TIMEOUT;
}

/** A `postAsync` waiting for space, kept in call order. */
interface PendingPost {
  /** The value, for errors. */
  readonly data: unknown;
  /** What to write: `data`, or a copy of its bytes taken at call time. */
  readonly send: unknown;
  /** `data` encoded at call time (structured values), or undefined. */
  readonly bytes: Uint8Array | undefined;
  /** Its options, as checked at call time. */
  readonly options: PostOptions;
  /** Give up waiting for space at this `performance.now()`. */
  readonly end: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Turns a handle from `loop.port()` into a port on this thread.
 *
 * @param handle The handle, received through `postMessage` or directly.
 * @returns The connected port.
 * @throws {TypeError} Not a port handle, not a twloop queue buffer, or the
 *   slot is not an integer.
 * @throws {RangeError} The slot is out of range, was already connected, its
 *   thread was reported dead before connecting, or the handle is stale (its
 *   slot was closed and reserved again).
 */
export function connect(handle: PortHandle): Port {
  if (
    handle === null || typeof handle !== "object" ||
    handle.kind !== "twloop.port"
  ) {
    throw new TypeError(
      "Cannot connect port: expected a handle from loop.port()",
    );
  }
  const { memory, slot, generation } = handle;
  // A thread without WebAssembly (V8's --jitless) uses the buffer alone.
  const wasm = typeof WebAssembly !== "undefined";
  if (memory !== undefined && wasm && !isMemory(memory)) {
    throw new TypeError(
      "Cannot connect port: memory must be a WebAssembly.Memory",
    );
  }
  // The memory's buffer must be the same shared bytes as `handle.buffer`.
  if (memory !== undefined && !(handle.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(
      "Cannot connect port: a handle with a memory must carry its buffer too",
    );
  }
  const buffer = memory !== undefined && wasm
    ? adoptMemory(memory, "connect port", handle.buffer)
    : handle.buffer;
  const layout = readLayout(buffer, "connect port"); // names the action
  if (
    memory !== undefined && handle.buffer !== undefined &&
    !sameQueue(buffer, handle.buffer)
  ) {
    throw new TypeError(
      "Cannot connect port: the handle's memory and buffer are different queues",
    );
  }
  if (typeof slot !== "number" || !Number.isInteger(slot)) {
    throw new TypeError(
      `Cannot connect port: slot must be an integer, got ${String(slot)}`,
    );
  }
  if (slot < 0 || slot >= layout.producers) {
    throw new RangeError(
      `Cannot connect port: slot must be from 0 to ${
        layout.producers - 1
      }, got ${slot}`,
    );
  }
  const w = new Int32Array(buffer);
  const genAt = slotWord(slot) + P_GENERATION;
  // Pairs with the Atomics.add in MpscQueue.reserveSlot.
  if (generation !== undefined && Atomics.load(w, genAt) !== generation) {
    throw staleHandle();
  }
  // Read before attaching: a death reported from here on is this port's.
  const now = deathsOf(buffer, slot);
  const deaths = handle.epoch ?? now;
  if (now !== deaths) {
    throw new RangeError(
      `Cannot connect port: slot ${slot}'s thread was reported dead`,
    );
  }
  // Claimed already: a second connect of the same handle.
  if (Atomics.load(w, slotWord(slot) + P_CLAIM) === SLOT_CLAIMED) {
    throw new RangeError(
      `Cannot connect port: slot ${slot} is already connected (a handle connects once)`,
    );
  }
  const producer = Producer.attach(buffer, slot);
  // reserveSlot counts a reservation before the slot shows as reserved, so
  // a claim that took a later reservation than the handle's sees it here
  // (the first check above only narrows this window). Give it back.
  if (generation !== undefined && Atomics.load(w, genAt) !== generation) {
    Atomics.compareExchange(
      w,
      slotWord(slot) + P_CLAIM,
      SLOT_CLAIMED,
      SLOT_RESERVED,
    );
    throw staleHandle();
  }
  return new Port(producer, deaths);
}

function staleHandle(): RangeError {
  return new RangeError(
    "Cannot connect port: the handle is stale (its slot was closed and reserved again)",
  );
}

/** The slot's fence without its writing bit (0 for a handle attach rejects). */
function deathsOf(buffer: unknown, slot: number): number {
  if (!(buffer instanceof SharedArrayBuffer) || !Number.isInteger(slot)) {
    return 0;
  }
  const at = slotWord(slot) + P_FENCE;
  const w = new Int32Array(buffer);
  return at >= 0 && at < w.length ? Atomics.load(w, at) & ~FENCE_WRITING : 0;
}

/** Resolves after one host timer of `ms` (the thread stays free). */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A connected port. Use it from one thread only.
 */
export class Port {
  readonly #p: Producer;
  readonly #w: Int32Array;
  /** The hot path's atomic calls (WebAssembly when it can). */
  readonly #atomics: WordAtomics;
  readonly #fence: number;
  /** Publishes lower the fence themselves (WebAssembly; `fencePublishes`). */
  readonly #fused: boolean;
  /** The last write's publish read `WAIT_NR` (see `#waitNr`). */
  #fencedNr = false;
  readonly #deaths: number;
  readonly #writer: MessageWriter;
  readonly #onLoopThread: boolean;
  readonly #retryLater: ((retry: () => boolean) => void) | undefined;
  readonly #pause = new Int32Array(new SharedArrayBuffer(4));
  /** `postAsync` calls waiting for space, oldest first. */
  readonly #pending: PendingPost[] = [];
  #pumping = false;
  #closed = false;
  /** Inside `#write` (encoding may call back into this port). */
  #writing = false;

  /**
   * Wraps an attached producer; use {@linkcode connect}.
   *
   * @param producer The producer for this port's slot.
   * @param deaths The slot's fence read before attaching, without its
   *   writing bit (default: read now).
   */
  constructor(producer: Producer, deaths?: number) {
    this.#p = producer;
    this.#w = new Int32Array(producer.buffer);
    this.#atomics = new WordAtomics(producer.buffer);
    this.#fused = this.#atomics.steps !== undefined;
    this.#fence = slotWord(producer.slot) + P_FENCE;
    if (this.#fused) fencePublishes(producer, this.#fence, ~FENCE_WRITING);
    this.#deaths = deaths ??
      (Atomics.load(this.#w, this.#fence) & ~FENCE_WRITING);
    this.#writer = new MessageWriter(producer);
    this.#retryLater = loopsHere.get(producer.buffer);
    this.#onLoopThread = this.#retryLater !== undefined;
  }

  /** The producer slot, as the loop's `onMessage` reports it. */
  get slot(): number {
    return this.#p.slot;
  }

  #check(data?: unknown): void {
    if (this.#closed) throw new LoopClosedError(data, "post message", "port");
  }

  /**
   * Before writing to the slot: raises the fence's writing bit and, in the
   * same atomic step, reads whether the loop was told this thread died.
   * Pairs with the `Atomics.add` in `Inbox.died`: either that sees the bit
   * (and waits for {@linkcode Port.#leave} before reusing the slot), or
   * this sees the death. Refused, the port closes and must not write.
   *
   * @returns False when refused.
   */
  #enter(): boolean {
    const f = this.#atomics.or(this.#fence, FENCE_WRITING);
    if ((f & ~FENCE_WRITING) === this.#deaths) return true;
    this.#leave();
    this.#closed = true;
    return false;
  }

  /** After writing to the slot: lowers the fence's writing bit. */
  #leave(): void {
    this.#atomics.and(this.#fence, ~FENCE_WRITING);
  }

  /**
   * Writes `send` (or its encoded `bytes`) inside the fence; throws,
   * carrying `data`, if refused.
   */
  #write(data: unknown, bytes?: Uint8Array, send: unknown = data): number {
    // Encoding runs user code (getters, toJSON). A post from there would
    // lower the fence while this write is still under way, and a death
    // report could then reuse the slot under it: refused, nothing queued.
    this.#notWriting("post message", "posted again");
    if (!this.#enter()) {
      throw new LoopClosedError(data, "post message", "port");
    }
    const p = this.#p;
    this.#writing = true;
    armFence(p, this.#fused);
    try {
      return bytes === undefined
        ? this.#writer.write(send)
        : this.#writer.writeEncoded(bytes);
    } finally {
      this.#writing = false;
      // A fenced publish lowered the fence and read WAIT_NR; otherwise
      // (no publish, or JS Atomics) leave here, and load it in #waitNr.
      this.#fencedNr = this.#fused && !fenceArmed(p);
      if (!this.#fencedNr) {
        armFence(p, false);
        this.#leave();
      }
    }
  }

  /** `WAIT_NR` after the last successful write: read by its publish or now. */
  #waitNr(): number {
    // Pairs with the store of WAKE_CLOSING in Loop.close.
    return this.#fencedNr ? fencedWaitNr(this.#p) : this.#atomics.load(WAIT_NR);
  }

  /**
   * One push attempt, settled (`#settle`) when it succeeds.
   *
   * @returns False when the port is full: nothing queued.
   */
  #push(
    data: unknown,
    bytes: Uint8Array | undefined,
    options: PostOptions | undefined,
  ): boolean {
    if (this.#write(data, bytes) === PUSH_FULL) {
      if (this.#closedNow()) throw new LoopClosedError(data);
      return false;
    }
    this.#settle(data, options);
    return true;
  }

  /**
   * Settles a push that succeeded: wakes the loop, and during a close
   * blocks for the verdict (close protocol step 3).
   */
  #settle(data: unknown, options: PostOptions | undefined): void {
    const nr = this.#waitNr();
    if (nr > WAKE_CLOSING) {
      wakeArmed(this.#w, nr, options?.wake !== "eager");
      return;
    }
    const seq = (this.#p.pushed - 1) | 0;
    const timeout = timeoutOf(options);
    if (!this.#onLoopThread) this.#awaitSeal(timeout);
    this.#verdict(data, timeout, seq);
  }

  /** As `#settle`, without blocking the thread for the verdict. */
  async #settleAsync(
    data: unknown,
    options: PostOptions | undefined,
  ): Promise<void> {
    const nr = this.#waitNr(); // as in #settle
    if (nr > WAKE_CLOSING) {
      wakeArmed(this.#w, nr, options?.wake !== "eager");
      return;
    }
    const seq = (this.#p.pushed - 1) | 0; // before later pushes
    const timeout = timeoutOf(options);
    if (!this.#onLoopThread) {
      const end = performance.now() + timeout;
      for (
        let pause = 0;
        !this.#sealedOr(end);
        pause = Math.min(1, pause + 0.25)
      ) {
        await sleep(pause);
      }
    }
    this.#verdict(data, timeout, seq);
  }

  /** Blocks until the loop seals or `timeout` ms pass. */
  #awaitSeal(timeout: number): void {
    const end = performance.now() + timeout;
    while (!this.#sealedOr(end)) {
      // Woken by the notify in Loop.#seal.
      Atomics.wait(this.#w, WAIT_NR, WAKE_CLOSING, end - performance.now());
    }
  }

  /** Whether the close has an outcome yet, or `end` has passed. */
  #sealedOr(end: number): boolean {
    // Pairs with the store of WAKE_SEALED in Loop.#seal, which follows the
    // publication of the delivered counts read in #verdict.
    return Atomics.load(this.#w, WAIT_NR) !== WAKE_CLOSING ||
      performance.now() >= end;
  }

  /**
   * The close's verdict on the push numbered `seq`: returns when it was
   * delivered, throws otherwise, or when the loop has not sealed yet.
   */
  #verdict(data: unknown, timeout: number, seq: number): void {
    const w = this.#w;
    if (Atomics.load(w, WAIT_NR) !== WAKE_SEALED) {
      // On the loop's thread the push followed the marker (step 4).
      if (this.#onLoopThread) throw new LoopClosedError(data);
      throw new DeliveryUnknownError(data, timeout);
    }
    const delivered = Atomics.load(w, slotWord(this.slot) + C_DELIVERED_NODES);
    if (((seq - delivered) | 0) >= 0) throw new LoopClosedError(data);
  }

  #closedNow(): boolean {
    return Atomics.load(this.#w, WAIT_NR) <= WAKE_CLOSING;
  }

  /**
   * Posts unless the port's storage is full, or earlier `postAsync` calls
   * are still waiting for space (they go first: per-port FIFO).
   *
   * @param data Any cloneable value.
   * @param options Wake policy; `timeout` bounds only the wait for a close
   *   verdict (close protocol step 3).
   * @returns False when full or when `postAsync` calls are pending:
   *   nothing was queued.
   * @throws {TypeError} `options` is not an object, or `wake` is invalid.
   * @throws {RangeError} `timeout` is not a number >= 0.
   * @throws {DataCloneError} `data` cannot be cloned; nothing queued.
   * @throws {PayloadTooLargeError} `data` exceeds the port's storage.
   * @throws {ReentrancyError} Posted from a getter of a value this port is
   *   encoding; nothing queued.
   * @throws {LoopClosedError} The loop or the port is closed; carries
   *   `data`, which was not delivered.
   * @throws {DeliveryUnknownError} Queued while the loop was closing, and
   *   no verdict within `timeout`; carries `data`.
   */
  tryPost(data: unknown, options?: PostOptions): boolean {
    this.#check(data);
    if (options !== undefined) checkOptions(options); // kept out of line
    if (this.#pending.length !== 0) return false;
    if (this.#write(data) === PUSH_FULL) {
      if (this.#closedNow()) throw new LoopClosedError(data);
      return false;
    }
    this.#settle(data, options);
    return true;
  }

  /**
   * Posts, waiting (blocking this thread, bounded by `timeout`) while the
   * port's storage is full. `postAsync` calls of this port still waiting
   * for space are sent first, in order (their promises settle as they are
   * sent, or fail past their own timeouts), so `post` never overtakes them.
   *
   * @param data Any cloneable value.
   * @param options Wake policy and timeout (the longest wait for space, and
   *   separately the longest wait for a close verdict).
   * @throws {TypeError} `options` is not an object, or `wake` is invalid.
   * @throws {RangeError} `timeout` is not a number >= 0.
   * @throws {DataCloneError} `data` cannot be cloned; nothing queued.
   * @throws {PayloadTooLargeError} `data` exceeds the port's storage.
   * @throws {ReentrancyError} Posted from a getter of a value this port is
   *   encoding; nothing queued.
   * @throws {LoopClosedError} The loop or the port is closed; carries
   *   `data`, which was not delivered.
   * @throws {DeliveryUnknownError} Queued while the loop was closing, and
   *   no verdict within `timeout`; carries `data`.
   * @throws {PostTimeoutError} No space in time; carries `data`.
   * @throws {DeadlockError} Full on the loop's own thread, where waiting
   *   would deadlock; carries `data`.
   */
  post(data: unknown, options?: PostOptions): void {
    this.#check(data);
    if (options !== undefined) checkOptions(options);
    if (this.#pending.length === 0) { // as tryPost, inlined by hand
      if (this.#write(data) !== PUSH_FULL) return this.#settle(data, options);
      if (this.#closedNow()) throw new LoopClosedError(data);
    }
    return this.#wait(data, options);
  }

  /** `post` on a full port, or behind pending `postAsync` calls. */
  #wait(data: unknown, options: PostOptions | undefined): void {
    const timeout = timeoutOf(options);
    const bytes = this.#encoded(data);
    const end = performance.now() + timeout;
    if (this.#onLoopThread) {
      if (this.#retry(data, bytes, options)) return;
      throw new DeadlockError(data);
    }
    // Poll first: a running loop frees space at the end of every pass (a
    // few µs), while one timed wait lasts ~60-110 µs whatever its timeout
    // (the kernel's timer slack, measured in bench/backoff.ts).
    this.#nudge();
    const spinEnd = Math.min(end, performance.now() + SPACE_SPIN_MS);
    do {
      for (let i = 0; i < 16; i++) {
        if (this.#retry(data, bytes, options)) return;
      }
    } while (performance.now() < spinEnd);
    // Then sleep until the loop releases storage of this slot: it clears
    // C_SPACE_WAIT and notifies (protocol in queue_layout.ts). The timeout
    // only bounds a missed notify (e.g. the loop thread stopped).
    const at = slotWord(this.#p.slot) + C_SPACE_WAIT;
    for (let pause = 0.02;; pause = Math.min(10, pause * 2)) {
      Atomics.store(this.#w, at, 1);
      if (this.#retry(data, bytes, options)) return;
      this.#nudge();
      Atomics.wait(this.#w, at, 1, pause);
      if (this.#retry(data, bytes, options)) return;
      if (performance.now() > end) throw new PostTimeoutError(data, timeout);
    }
  }

  /**
   * Posts, awaiting space without blocking the thread. Calls that wait
   * are kept in call order: a later `postAsync`, `tryPost` or `post` on
   * this port never overtakes them. The value is captured at call time
   * (structured values encoded, bytes copied), so changing it afterwards
   * does not change what is sent. `close()` rejects the calls still
   * waiting (await them first).
   *
   * @param data Any cloneable value.
   * @param options Wake policy and timeout.
   * @returns Resolves once queued (during a close: once delivered).
   * @throws As {@linkcode Port.post} (as rejections), except it never
   *   deadlocks on the loop's own thread.
   */
  postAsync(data: unknown, options?: PostOptions): Promise<void> {
    try {
      this.#check(data);
      checkOptions(options);
      if (this.#pending.length === 0) {
        if (this.#write(data) !== PUSH_FULL) {
          return this.#settleAsync(data, options);
        }
        if (this.#closedNow()) throw new LoopClosedError(data);
      }
      // The caller may change its bytes while this waits; the scratch that
      // #encoded returns is reused.
      const send = data instanceof Uint8Array ? new Uint8Array(data) : data;
      const bytes = this.#encoded(data)?.slice();
      const timeout = timeoutOf(options);
      const end = performance.now() + timeout;
      return new Promise((resolve, reject) => {
        this.#pending.push({
          data,
          send,
          bytes,
          options: { wake: options?.wake, timeout },
          end,
          resolve,
          reject,
        });
        if (!this.#pumping) this.#pump();
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Sends pending `postAsync` values in order as space frees, async. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      for (let pause = 0; this.#pending.length !== 0;) {
        if (this.#sendPending(true)) continue;
        this.#nudge();
        await sleep(pause);
        pause = Math.min(1, pause + 0.25);
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Tries to send the oldest pending `postAsync` value, settling its
   * promise when it is sent, refused or out of time. With `async`, the
   * close verdict is awaited without blocking; without, as `post` does.
   *
   * @returns False when the port is full and the value still waits.
   */
  #sendPending(async: boolean): boolean {
    const q = this.#pending;
    const it = q[0];
    try {
      this.#check(it.data);
      if (this.#write(it.data, it.bytes, it.send) === PUSH_FULL) {
        if (this.#closedNow()) throw new LoopClosedError(it.data);
        if (performance.now() <= it.end) return false;
        throw new PostTimeoutError(it.data, it.options.timeout!);
      }
      q.shift();
      if (async) {
        this.#settleAsync(it.data, it.options).then(
          it.resolve,
          it.reject,
        );
      } else {
        this.#settle(it.data, it.options);
        it.resolve();
      }
    } catch (e) {
      if (q[0] === it) q.shift();
      it.reject(e);
    }
    return true;
  }

  /** The encoded form of a structured value, so retries do not re-encode. */
  #encoded(data: unknown): Uint8Array | undefined {
    const simple = typeof data !== "object" || data === null ||
      data instanceof Uint8Array;
    if (simple && typeof data !== "function" && typeof data !== "symbol") {
      return undefined;
    }
    this.#notWriting("post message", "posted again");
    this.#writing = true; // encoding runs user code, as in #write
    try {
      return this.#writer.encode(data);
    } finally {
      this.#writing = false;
    }
  }

  /**
   * Refuses a call made from user code that runs while this port encodes a
   * message (a getter of the value): it would write or lower the fence
   * under that write.
   */
  #notWriting(action: string, what: string): void {
    if (this.#writing) {
      throw new ReentrancyError(
        action,
        `this port is already writing a message (${what} while encoding it)`,
      );
    }
  }

  /**
   * Sends the pending `postAsync` values, then `data`.
   *
   * @returns False when the port is full: `data` not queued yet.
   */
  #retry(
    data: unknown,
    bytes: Uint8Array | undefined,
    options: PostOptions | undefined,
  ): boolean {
    this.#check(data);
    while (this.#pending.length !== 0) {
      if (!this.#sendPending(false)) return false;
    }
    return this.#push(data, bytes, options);
  }

  /** Wakes the loop so it drains, whatever its batching threshold. */
  #nudge(): void {
    const nr = Atomics.load(this.#w, WAIT_NR);
    if (nr > 0) wakeArmed(this.#w, nr, false);
  }

  /**
   * Asks the loop to close (its `close()` runs as a task, in FIFO order
   * after this port's earlier messages), waking it if it sleeps. On the
   * loop's own thread a full port does not block: the request is pushed by
   * the loop once its passes have freed space.
   *
   * @param options `timeout`: the longest wait for space, ms (default
   *   30 000).
   * @throws {LoopClosedError} This port is closed.
   * @throws {ReentrancyError} Called while this port encodes a message.
   * @throws {PostTimeoutError} Off the loop's thread, the port stayed full
   *   for `timeout` ms; nothing was sent.
   */
  requestClose(options?: Pick<PostOptions, "timeout">): void {
    if (this.#closed) {
      throw new LoopClosedError(undefined, "request close", "port");
    }
    this.#notWriting("request close", "close requested");
    checkOptions(options, "request close");
    const timeout = timeoutOf(options);
    if (!this.#sendControl(MSG_CLOSE_REQUEST, !this.#onLoopThread, timeout)) {
      this.#retryLater!(() =>
        this.#sendControl(MSG_CLOSE_REQUEST, false, timeout)
      );
    }
  }

  /**
   * Closes the port: tells the loop (in FIFO order, after every message
   * already posted) and gives the slot back (the loop frees it when it
   * reads the close). Idempotent once it succeeded. On the loop's own
   * thread a full port does not block: the loop pushes the close once its
   * passes have freed space. `postAsync` calls still waiting for space are
   * rejected with {@linkcode LoopClosedError}.
   *
   * @param options `timeout`: the longest wait for space, ms (default
   *   30 000).
   * @throws {ReentrancyError} Called while this port encodes a message.
   * @throws {PostTimeoutError} Off the loop's thread, the port stayed full
   *   for `timeout` ms ("Cannot close port: ..."): the port stays open, the
   *   loop still counts it, and `close()` may be called again.
   */
  close(options?: Pick<PostOptions, "timeout">): void {
    if (this.#closed) return;
    this.#notWriting("close port", "closed");
    checkOptions(options, "close port");
    const timeout = timeoutOf(options);
    this.#closed = true;
    try {
      if (!this.#sendControl(MSG_PORT_CLOSED, !this.#onLoopThread, timeout)) {
        this.#retryLater!(() =>
          this.#sendControl(MSG_PORT_CLOSED, false, timeout)
        );
      }
    } catch (e) {
      this.#closed = false; // nothing sent: still open
      throw e;
    }
  }

  /**
   * Pushes a control item (a close or a close request) and wakes the loop.
   * With `wait`, polls a full port for up to `timeout` ms, then throws
   * {@linkcode PostTimeoutError}. The slot is never given back here while
   * the loop counts the port open: only the loop frees it, on reading the
   * close item.
   *
   * @returns False when the port was full and `wait` was false: nothing
   *   done yet, call again.
   */
  #sendControl(tag: number, wait: boolean, timeout: number): boolean {
    const closing = tag === MSG_PORT_CLOSED;
    if (!this.#enter()) { // reported dead: the slot is not ours now
      if (closing) return true;
      throw new LoopClosedError(undefined, "request close", "port");
    }
    try {
      const end = performance.now() + timeout;
      while (!this.#closedNow()) {
        if (this.#p.push(tag, 0, 0) !== PUSH_FULL) {
          const nr = Atomics.load(this.#w, WAIT_NR);
          if (nr > WAKE_CLOSING) wakeArmed(this.#w, nr, false);
          // A close item sent: the loop frees the slot when it reads it
          // (`loop_inbox.ts`). Freeing it here would let `loop.port()` hand
          // it to a new port while this close is still queued.
          return true;
        }
        if (!wait) return false;
        if (performance.now() > end) {
          throw closing
            ? new PostTimeoutError(
              undefined,
              timeout,
              "close port",
              "; the port stays open, call close() again",
            )
            : new PostTimeoutError(undefined, timeout, "request close");
        }
        this.#nudge();
        Atomics.wait(this.#pause, 0, 0, 1);
      }
      // The loop is closing or closed: it will not read a close item, and
      // no longer hands out ports.
      if (closing) this.#p.detach();
      return true;
    } finally {
      this.#leave();
    }
  }
}
