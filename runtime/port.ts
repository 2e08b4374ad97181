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
 * dropped: every error carries the undelivered value in `data`.
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
 * 4. A post on the loop's own thread never waits for the seal (the loop
 *    cannot run while it waits): its push follows the marker, so it throws.
 *
 * @module
 */

import {
  C_DELIVERED_NODES,
  FENCE_WRITING,
  P_FENCE,
  readLayout,
  slotWord,
  WAIT_NR,
  WAKE_CLOSING,
  WAKE_SEALED,
} from "./queue_layout.ts";
import { Producer, PUSH_FULL } from "./mpsc_queue.ts";
import {
  MessageWriter,
  MSG_CLOSE_REQUEST,
  MSG_PORT_CLOSED,
} from "./messages.ts";
import { wakeArmed } from "./wake.ts";

/** A structured-cloneable description of a reserved port. */
export interface PortHandle {
  /** Marks the object as a port handle. */
  readonly kind: "twloop.port";
  /** The loop's queue buffer. */
  readonly buffer: SharedArrayBuffer;
  /** The reserved producer slot. */
  readonly slot: number;
  /**
   * The slot's deaths reported when it was reserved (its fence, see
   * `queue_layout.ts`): a handle whose thread was reported dead before it
   * connected cannot connect later. Read at `connect` when absent.
   */
  readonly epoch?: number;
}

/** How a post wakes a sleeping loop. */
export type WakePolicy = "lazy" | "eager";

/** Options for one post. */
export interface PostOptions {
  /** Wake policy (default `"lazy"`). */
  wake?: WakePolicy;
  /** Longest wait for space, in ms (default 30 000; `Infinity` allowed). */
  timeout?: number;
}

/** The loop is closed: the value in `data` was not delivered. */
export class LoopClosedError extends Error {
  /** The undelivered value. */
  readonly data: unknown;
  /**
   * Makes the error.
   *
   * @param data The undelivered value.
   * @param action What was attempted, e.g. "post message".
   */
  constructor(data: unknown, action = "post message") {
    super(`Cannot ${action}: loop is closed`);
    this.name = "LoopClosedError";
    this.data = data;
  }
}

/** No space freed in time: the value in `data` was not queued. */
export class PostTimeoutError extends Error {
  /** The undelivered value. */
  readonly data: unknown;
  /**
   * Makes the error.
   *
   * @param data The undelivered value.
   * @param ms The timeout that passed.
   */
  constructor(data: unknown, ms: number) {
    super(`Cannot post message: no space in the port's storage after ${ms} ms`);
    this.name = "PostTimeoutError";
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

function checkOptions(o: PostOptions | undefined): void {
  if (o === undefined) return;
  if (o.wake !== undefined && o.wake !== "lazy" && o.wake !== "eager") {
    throw new TypeError(
      `Cannot post message: wake must be "lazy" or "eager", got ${
        String(o.wake)
      }`,
    );
  }
  const t = o.timeout;
  if (t !== undefined && (typeof t !== "number" || !(t >= 0))) {
    throw new RangeError(
      `Cannot post message: timeout must be a number >= 0, got ${String(t)}`,
    );
  }
}

/**
 * Turns a handle from `loop.port()` into a port on this thread.
 *
 * @param handle The handle, received through `postMessage` or directly.
 * @returns The connected port.
 * @throws {TypeError} Not a port handle, or not a twloop queue buffer.
 * @throws {RangeError} The slot was already connected, or its thread was
 *   reported dead before connecting.
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
  readLayout(handle.buffer, "connect port"); // names the action on failure
  // Read before attaching: a death reported from here on is this port's.
  const now = deathsOf(handle.buffer, handle.slot);
  const deaths = handle.epoch ?? now;
  if (now !== deaths) {
    throw new RangeError(
      `Cannot connect port: slot ${handle.slot}'s thread was reported dead`,
    );
  }
  return new Port(Producer.attach(handle.buffer, handle.slot), deaths);
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

/**
 * A connected port. Use it from one thread only.
 */
export class Port {
  readonly #p: Producer;
  readonly #w: Int32Array;
  readonly #fence: number;
  readonly #deaths: number;
  readonly #writer: MessageWriter;
  readonly #onLoopThread: boolean;
  readonly #retryLater: ((retry: () => boolean) => void) | undefined;
  readonly #pause = new Int32Array(new SharedArrayBuffer(4));
  #closed = false;

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
    this.#fence = slotWord(producer.slot) + P_FENCE;
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
    if (this.#closed) {
      throw new LoopClosedError(data, "post message: port");
    }
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
    const f = Atomics.or(this.#w, this.#fence, FENCE_WRITING);
    if ((f & ~FENCE_WRITING) === this.#deaths) return true;
    this.#leave();
    this.#closed = true;
    return false;
  }

  /** After writing to the slot: lowers the fence's writing bit. */
  #leave(): void {
    Atomics.and(this.#w, this.#fence, ~FENCE_WRITING);
  }

  /** `writer.write(data)` inside the fence; throws if refused. */
  #write(data: unknown, bytes?: Uint8Array): number {
    if (!this.#enter()) throw new LoopClosedError(data, "post message: port");
    try {
      return bytes === undefined
        ? this.#writer.write(data)
        : this.#writer.writeEncoded(bytes);
    } finally {
      this.#leave();
    }
  }

  /**
   * Settles a push that succeeded: wakes the loop, and during a close
   * decides whether the item made it before the marker.
   */
  #settle(data: unknown, lazy: boolean, wait: boolean): void {
    const nr = Atomics.load(this.#w, WAIT_NR);
    if (nr > WAKE_CLOSING) {
      wakeArmed(this.#w, nr, lazy);
      return;
    }
    if (!this.#delivered(wait)) throw new LoopClosedError(data);
  }

  #delivered(wait: boolean): boolean {
    const w = this.#w;
    if (!this.#onLoopThread && wait) {
      // Bounded: the loop seals as soon as it reaches the close marker.
      while (Atomics.load(w, WAIT_NR) === WAKE_CLOSING) {
        if (Atomics.wait(w, WAIT_NR, WAKE_CLOSING, 1000) === "timed-out") break;
      }
    }
    if (Atomics.load(w, WAIT_NR) !== WAKE_SEALED) return false;
    const delivered = Atomics.load(w, slotWord(this.slot) + C_DELIVERED_NODES);
    const mine = (this.#p.pushed - 1) | 0;
    return ((mine - delivered) | 0) < 0;
  }

  #closedNow(): boolean {
    return Atomics.load(this.#w, WAIT_NR) <= WAKE_CLOSING;
  }

  /**
   * Posts unless the port's storage is full.
   *
   * @param data Any cloneable value.
   * @param options Wake policy.
   * @returns False when full: nothing was queued.
   * @throws {DataCloneError} `data` cannot be cloned; nothing queued.
   * @throws {PayloadTooLargeError} `data` exceeds the port's storage.
   * @throws {LoopClosedError} The loop is closed; carries `data`.
   */
  tryPost(data: unknown, options?: PostOptions): boolean {
    this.#check(data);
    checkOptions(options);
    if (this.#write(data) === PUSH_FULL) {
      if (this.#closedNow()) throw new LoopClosedError(data);
      return false;
    }
    this.#settle(data, options?.wake !== "eager", true);
    return true;
  }

  /**
   * Posts, waiting (blocking this thread, bounded by `timeout`) while the
   * port's storage is full.
   *
   * @param data Any cloneable value.
   * @param options Wake policy and timeout.
   * @throws {DataCloneError} `data` cannot be cloned; nothing queued.
   * @throws {PayloadTooLargeError} `data` exceeds the port's storage.
   * @throws {LoopClosedError} The loop is closed; carries `data`.
   * @throws {PostTimeoutError} No space in time; carries `data`.
   * @throws {DeadlockError} Full on the loop's own thread, where waiting
   *   would deadlock; carries `data`.
   */
  post(data: unknown, options?: PostOptions): void {
    if (this.tryPost(data, options)) return;
    const timeout = options?.timeout ?? DEFAULT_TIMEOUT;
    const bytes = this.#encoded(data);
    const end = performance.now() + timeout;
    if (this.#onLoopThread) throw new DeadlockError(data);
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
    for (let pause = 0.02;; pause = Math.min(1, pause * 2)) {
      this.#nudge();
      Atomics.wait(this.#pause, 0, 0, pause);
      if (this.#retry(data, bytes, options)) return;
      if (performance.now() > end) throw new PostTimeoutError(data, timeout);
    }
  }

  /**
   * Posts, awaiting space without blocking the thread.
   *
   * @param data Any cloneable value.
   * @param options Wake policy and timeout.
   * @returns Resolves once queued.
   * @throws As {@linkcode Port.post} (as rejections), except it never
   *   deadlocks on the loop's own thread.
   */
  async postAsync(data: unknown, options?: PostOptions): Promise<void> {
    if (this.tryPost(data, options)) return;
    const timeout = options?.timeout ?? DEFAULT_TIMEOUT;
    const bytes = this.#encoded(data)?.slice(); // the scratch is reused
    const end = performance.now() + timeout;
    for (let pause = 0;; pause = Math.min(1, pause + 0.25)) {
      this.#nudge();
      await new Promise((r) => setTimeout(r, pause));
      if (this.#retry(data, bytes, options)) return;
      if (performance.now() > end) throw new PostTimeoutError(data, timeout);
    }
  }

  /** The encoded form of a structured value, so retries do not re-encode. */
  #encoded(data: unknown): Uint8Array | undefined {
    const simple = typeof data !== "object" || data === null ||
      data instanceof Uint8Array;
    return simple && typeof data !== "function" && typeof data !== "symbol"
      ? undefined
      : this.#writer.encode(data);
  }

  #retry(
    data: unknown,
    bytes: Uint8Array | undefined,
    options: PostOptions | undefined,
  ): boolean {
    this.#check(data);
    if (this.#write(data, bytes) === PUSH_FULL) {
      if (this.#closedNow()) throw new LoopClosedError(data);
      return false;
    }
    this.#settle(data, options?.wake !== "eager", true);
    return true;
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
   * @throws {LoopClosedError} This port is closed.
   * @throws {PostTimeoutError} Off the loop's thread, the port stayed full
   *   for 30 s.
   */
  requestClose(): void {
    this.#check();
    if (!this.#sendControl(MSG_CLOSE_REQUEST, !this.#onLoopThread)) {
      this.#retryLater!(() => this.#sendControl(MSG_CLOSE_REQUEST, false));
    }
  }

  /**
   * Closes the port: tells the loop (in FIFO order, after every message
   * already posted) and gives the slot back. Idempotent. On the loop's own
   * thread a full port does not block: the loop pushes the close once its
   * passes have freed space.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#sendControl(MSG_PORT_CLOSED, !this.#onLoopThread)) {
      this.#retryLater!(() => this.#sendControl(MSG_PORT_CLOSED, false));
    }
  }

  /**
   * Pushes a control item (a close or a close request) and wakes the loop.
   * With `wait`, polls a full port for up to ~30 s; a close that cannot be
   * sent gives the slot back itself (`detach`).
   *
   * @returns False when the port was full and `wait` was false: nothing
   *   done yet, call again.
   */
  #sendControl(tag: number, wait: boolean): boolean {
    const closing = tag === MSG_PORT_CLOSED;
    if (!this.#enter()) { // reported dead: the slot is not ours now
      if (closing) return true;
      throw new LoopClosedError(undefined, "request close");
    }
    try {
      for (let i = 0; !this.#closedNow(); i++) {
        if (this.#p.push(tag, 0, 0) !== PUSH_FULL) {
          const nr = Atomics.load(this.#w, WAIT_NR);
          if (nr > WAKE_CLOSING) wakeArmed(this.#w, nr, false);
          // A close item sent: the loop frees the slot when it reads it
          // (`loop_inbox.ts`). Freeing it here would let `loop.port()` hand
          // it to a new port while this close is still queued.
          return true;
        }
        if (!wait) return false;
        if (i > 30_000) break;
        this.#nudge();
        Atomics.wait(this.#pause, 0, 0, 1);
      }
      if (closing) this.#p.detach(); // nobody will read a close item
      else if (!this.#closedNow()) {
        throw new PostTimeoutError(undefined, 30_000);
      }
      return true;
    } finally {
      this.#leave();
    }
  }
}
