/**
 * The SharedArrayBuffer layout behind {@linkcode MpscQueue}: one table of
 * named offsets, the size arithmetic, and validation of a buffer handed to
 * another thread.
 *
 * The buffer is viewed as an `Int32Array` (`w`, word indices below). Every
 * line is 128 bytes (32 words): two 64-byte cache lines, because x86's
 * adjacent-line prefetcher pulls lines in pairs (the reason JCTools pads to
 * 128 too).
 *
 * | line | word (index)        | name               | written by            | read by            |
 * | ---- | ------------------- | ------------------ | --------------------- | ------------------ |
 * | 0    | `H_MAGIC` (0)       | magic number       | creator, once         | attachers          |
 * | 0    | `H_VERSION` (1)     | layout version     | creator, once         | attachers          |
 * | 0    | `H_PRODUCERS` (2)   | producer slots     | creator, once         | all                |
 * | 0    | `H_NODES` (3)       | nodes per producer | creator, once         | all                |
 * | 0    | `H_BYTES` (4)       | bytes per producer | creator, once         | all                |
 * | 0    | `H_STATE` (5)       | open / closed      | owner of the loop     | producers          |
 * | 0    | `H_ID` (6, 7)       | random queue id    | creator, once         | `adoptMemory`      |
 * | 0    | `H_PROBE` (8)       | same-bytes probe   | `adoptMemory` (atomic)| `adoptMemory`      |
 * | 1    | `TAIL` (32)         | last pushed node   | producers (exchange)  | consumer           |
 * | 1    | `WAIT_NR` (33)      | armed wake target  | consumer, producers   | producers          |
 * | 1    | `ADDED` (34)        | lazy adds counted  | producers, consumer   | producers          |
 * | 1    | `NOTIFIES` (35)     | notifies sent      | producers             | metrics            |
 * | 2    | `CURSOR` (64)       | consumer cursor    | consumer              | resume, diagnostics|
 * | 2    | `CURSOR_HELD` (65)  | tryPop item held   | consumer              | resume             |
 * | 3+   | producer table      | 2 lines each       | see `P_*` / `C_*`     |                    |
 * |      | `P_CLAIM` (+0)      | free/reserved/own  | attachers (CAS), loop | attachers          |
 * |      | `P_ALLOC_NODES` (+1)| nodes allocated    | producer (plain)      | consumer estimate  |
 * |      | `P_ALLOC_BYTES` (+2)| bytes allocated    | producer (plain)      | next owner         |
 * |      | `P_PUSH_NODE` (+3)  | push in progress   | producer (plain)      | repair after death |
 * |      | `P_PUSH_PREV` (+4)  | its predecessor    | producer (plain)      | repair after death |
 * |      | `P_FENCE` (+5)      | writing; deaths    | port, loop (atomic)   | port, loop         |
 * |      | `P_GENERATION` (+6) | reservations made  | loop (atomic)         | `connect`          |
 * |      | `C_RELEASED_*` (+32)| nodes/bytes freed  | consumer (atomic)     | producer (atomic)  |
 * |      | `C_SPACE_WAIT` (+35)| producer sleeps    | producer, consumer    | consumer (notify)  |
 * | ...  | node table          | 4 words a node     | owning producer       | consumer           |
 * | ...  | payload rings       | bytes per producer | owning producer       | consumer           |
 *
 * Line 1 is the one producers contend on: every push exchanges `TAIL` and
 * then reads `WAIT_NR`, so the wake words share its line and a push moves one
 * line, not two (the seed keeps `cq_wait_nr` beside the work list for the
 * same reason). The consumer writes line 1 only when it arms a sleep.
 * `CURSOR` sits alone on line 2 so that popping never dirties line 1; the
 * consumer mirrors it there only at the end of a drain.
 *
 * Each producer slot has a producer line (`P_*`, written by that producer)
 * and a consumer line (`C_*`, the consumer's release counters for it), so a
 * producer and the consumer never write the same line.
 *
 * @module
 */

import {
  memoryOf,
  PAGE_BYTES,
  registerMemory,
  sharedMemory,
} from "./wasm_atomics.ts";

/** Words in one 128-byte line. */
export const LINE_WORDS = 32;
/** Bytes in one line. */
export const LINE_BYTES = LINE_WORDS * 4;

/** Magic number in word 0: ASCII "twlq". */
export const MAGIC = 0x74776c71;
/** Bumped whenever this table changes. */
export const LAYOUT_VERSION = 3;

/** Header word: magic number. */
export const H_MAGIC = 0;
/** Header word: layout version. */
export const H_VERSION = 1;
/** Header word: number of producer slots. */
export const H_PRODUCERS = 2;
/** Header word: nodes per producer slot (a power of two). */
export const H_NODES = 3;
/** Header word: payload bytes per producer slot (0 or a power of two). */
export const H_BYTES = 4;
/** Header word: {@linkcode STATE_OPEN} or {@linkcode STATE_CLOSED}. */
export const H_STATE = 5;
/**
 * Header words: a random 64-bit id written at creation, so a thread that
 * receives the queue's memory again reuses the buffer it already has.
 */
export const H_ID = 6;
/**
 * Header word `adoptMemory` writes a random value to through one view and
 * reads back through another, to tell the same memory from a copy.
 */
export const H_PROBE = 8;

/** Most nodes a producer slot may have (a power of two). */
export const MAX_NODES_PER_PRODUCER = 1 << 20;

/** Queue state: accepting pushes. */
export const STATE_OPEN = 0;
/** Queue state: closed, pushes are refused. */
export const STATE_CLOSED = 1;

/** Producers' line: node index of the last pushed node (exchange target). */
export const TAIL = 1 * LINE_WORDS;
/** Producers' line: armed wake target, or {@linkcode WAKE_IDLE}. */
export const WAIT_NR = TAIL + 1;
/** Producers' line: lazy adds counted since the waiter armed. */
export const ADDED = TAIL + 2;
/** Producers' line: notifies sent by producers (metric, only on the wake path). */
export const NOTIFIES = TAIL + 3;
/** `WAIT_NR` value meaning "no one is waiting". */
export const WAKE_IDLE = -1;
/** `WAIT_NR` value: the loop is closing; see the close protocol in `port.ts`. */
export const WAKE_CLOSING = -2;
/** `WAIT_NR` value: closed and sealed; `C_DELIVERED_NODES` are final. */
export const WAKE_SEALED = -3;

/** Consumer's line: the cursor, mirrored at the end of each drain. */
export const CURSOR = 2 * LINE_WORDS;
/** Consumer's line: node returned by `tryPop` and not yet released, or NIL. */
export const CURSOR_HELD = CURSOR + 1;

/** First word of the producer table. */
export const PRODUCER_TABLE = 3 * LINE_WORDS;
/** Words per producer slot: a producer line and a consumer line. */
export const SLOT_WORDS = 2 * LINE_WORDS;
/** Producer line: claim state, {@linkcode SLOT_FREE} or {@linkcode SLOT_CLAIMED}. */
export const P_CLAIM = 0;
/** Producer line: nodes ever allocated (written when the producer detaches). */
export const P_ALLOC_NODES = 1;
/** Producer line: payload bytes ever reserved (written when it detaches). */
export const P_ALLOC_BYTES = 2;
/** Producer line: first node of the push in progress, or NIL (plain writes). */
export const P_PUSH_NODE = 3;
/** Producer line: predecessor returned by that push's exchange, or NIL. */
export const P_PUSH_PREV = 4;
/**
 * Producer line: the port's fence (fault protocol in `loop_inbox.ts`). Bit
 * 0 ({@linkcode FENCE_WRITING}) is set by the port while it writes to the
 * slot; the loop adds {@linkcode FENCE_DEATH} each time it is told the
 * slot's thread died. A port refuses to write once the deaths differ from
 * those it connected under; the loop reuses a dead slot only while bit 0 is
 * clear.
 */
export const P_FENCE = 5;
/**
 * Producer line: reservations of the slot made so far (wraps at 2^32). The
 * loop adds one while it holds the slot claimed, before it marks it
 * reserved (`MpscQueue.reserveSlot`), and the handle carries the new value:
 * `connect` refuses a handle whose value differs, checking before and after
 * its claim, so a stale handle cannot take a later reservation. Written
 * only by the loop and only on reservation, so it costs posts nothing.
 */
export const P_GENERATION = 6;
/** `P_FENCE` bit: the port is writing to the slot. */
export const FENCE_WRITING = 1;
/** `P_FENCE` step: one death reported. */
export const FENCE_DEATH = 2;
/** Consumer line: nodes of this slot released by the consumer (monotonic, wraps). */
export const C_RELEASED_NODES = LINE_WORDS;
/** Consumer line: payload bytes of this slot released (monotonic, wraps). */
export const C_RELEASED_BYTES = LINE_WORDS + 1;
/** Consumer line: nodes of this slot delivered before the close marker. */
export const C_DELIVERED_NODES = LINE_WORDS + 2;
/**
 * Consumer line: 1 while the slot's producer sleeps waiting for space. The
 * producer sets it, re-checks for space, then waits on this word; the
 * consumer, after publishing released storage, clears it and notifies.
 * Sequentially consistent atomics on both sides: either the producer's
 * re-check sees the release, or the consumer sees the 1.
 */
export const C_SPACE_WAIT = LINE_WORDS + 3;
/** Slot claim state: free. */
export const SLOT_FREE = 0;
/** Slot claim state: owned by a live producer. */
export const SLOT_CLAIMED = 1;
/** Slot claim state: reserved by `loop.port()` for one `connect`. */
export const SLOT_RESERVED = 2;

/** Words per node. */
export const NODE_WORDS = 4;
/** Node word: index of the next node, or {@linkcode NIL}. */
export const N_NEXT = 0;
/** Node word: `tag * 2 + hasBytes`. */
export const N_META = 1;
/** Node word: first value (or payload start counter; or low half of a float64). */
export const N_A = 2;
/** Node word: second value (or payload length; or high half of a float64). */
export const N_B = 3;

/** Node index meaning "no node". */
export const NIL = 0;
/** Node index of the consumer's stub node. */
export const STUB = 1;
/** Node index of producer slot 0's first node. */
export const FIRST_PRODUCER_NODE = 2;

/** Payload byte ranges start on 8-byte boundaries (float64 and BigInt views). */
export const PAYLOAD_ALIGN = 8;

/**
 * Rounds a payload length up to {@linkcode PAYLOAD_ALIGN}.
 *
 * @param n Bytes.
 * @returns `n` rounded up to a multiple of 8.
 */
export function alignUp(n: number): number {
  return (n + PAYLOAD_ALIGN - 1) & -PAYLOAD_ALIGN;
}

/** Sizes chosen when a queue is created. */
export interface QueueConfig {
  /** Producer slots (threads that may push at once), 1 to 4096. Default 16. */
  producers: number;
  /** Nodes per producer, a power of two, 1 to 2^20. Default 1024. */
  nodesPerProducer: number;
  /** Payload bytes per producer, 0 or a power of two, 64 to 2^26. Default 2^20 (1 MiB: a 64 KiB ring held only 16 messages of 4 KiB, and each refill cost two cross-thread wake-ups; `bench/payloads.ts`). Memory is reserved per slot but only touched pages become resident. */
  bytesPerProducer: number;
}

/** Defaults used for options left out of {@linkcode QueueConfig}. */
export const DEFAULT_CONFIG: Readonly<QueueConfig> = Object.freeze({
  producers: 16,
  nodesPerProducer: 1024,
  bytesPerProducer: 1 << 20,
});

/** Word offsets derived from a config; the same on every thread. */
export interface Layout extends QueueConfig {
  /** Word index of node 0. */
  nodeBase: number;
  /** Byte offset of producer slot 0's payload ring. */
  bytesBase: number;
  /**
   * Total buffer size in bytes: whole WebAssembly pages (64 KiB), so the
   * buffer can be a shared `WebAssembly.Memory` (see `wasm_atomics.ts`).
   */
  byteLength: number;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function checkInt(
  name: string,
  value: unknown,
  min: number,
  max: number,
  pow2: boolean,
): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(
      `Cannot create queue: ${name} must be an integer, got ${String(value)}`,
    );
  }
  if (
    value < min || value > max || (pow2 && value !== 0 && !isPowerOfTwo(value))
  ) {
    throw new RangeError(
      `Cannot create queue: ${name} must be ${pow2 ? "a power of two " : ""}` +
        `from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

/**
 * Validates a partial config and derives the layout.
 *
 * @param options Sizes; omitted fields take {@linkcode DEFAULT_CONFIG}.
 * @returns The full layout.
 * @throws {TypeError} A size is not an integer.
 * @throws {RangeError} A size is out of range or not a power of two.
 */
export function layoutFor(options: Partial<QueueConfig> = {}): Layout {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot create queue: config must be an object, got ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  const producers = checkInt(
    "producers",
    options.producers ?? DEFAULT_CONFIG.producers,
    1,
    4096,
    false,
  );
  const nodesPerProducer = checkInt(
    "nodesPerProducer",
    options.nodesPerProducer ?? DEFAULT_CONFIG.nodesPerProducer,
    1,
    MAX_NODES_PER_PRODUCER,
    true,
  );
  const bytesPerProducer = checkInt(
    "bytesPerProducer",
    options.bytesPerProducer ?? DEFAULT_CONFIG.bytesPerProducer,
    0,
    1 << 26,
    true,
  );
  if (bytesPerProducer !== 0 && bytesPerProducer < 64) {
    throw new RangeError(
      `Cannot create queue: bytesPerProducer must be 0 or at least 64, got ${bytesPerProducer}`,
    );
  }
  const nodeCount = FIRST_PRODUCER_NODE + producers * nodesPerProducer;
  const nodeBase = PRODUCER_TABLE + producers * SLOT_WORDS;
  const nodeWords = Math.ceil((nodeCount * NODE_WORDS) / LINE_WORDS) *
    LINE_WORDS;
  const bytesBase = (nodeBase + nodeWords) * 4;
  const used = bytesBase + producers * bytesPerProducer;
  const byteLength = Math.ceil(used / PAGE_BYTES) * PAGE_BYTES;
  if (byteLength > 2 ** 31) {
    throw new RangeError(
      `Cannot create queue: ${byteLength} bytes exceeds the 2 GiB limit`,
    );
  }
  return {
    producers,
    nodesPerProducer,
    bytesPerProducer,
    nodeBase,
    bytesBase,
    byteLength,
  };
}

/**
 * Allocates and initialises a queue buffer: header, empty queue (the stub is
 * both cursor and tail), no waiter, every producer slot free.
 *
 * @param layout From {@linkcode layoutFor}.
 * @returns A new SharedArrayBuffer.
 */
export function createBuffer(layout: Layout): SharedArrayBuffer {
  const sab = sharedMemory(layout.byteLength);
  const w = new Int32Array(sab);
  w[H_MAGIC] = MAGIC;
  w[H_VERSION] = LAYOUT_VERSION;
  w[H_PRODUCERS] = layout.producers;
  w[H_NODES] = layout.nodesPerProducer;
  w[H_BYTES] = layout.bytesPerProducer;
  w[H_STATE] = STATE_OPEN;
  w.set(crypto.getRandomValues(new Int32Array(2)), H_ID);
  if (memoryOf(sab) !== undefined) remember(sab);
  w[TAIL] = STUB;
  w[WAIT_NR] = WAKE_IDLE;
  w[CURSOR] = STUB;
  // These plain writes reach other threads through whatever hands them the
  // buffer (postMessage is a synchronizing operation).
  return sab;
}

/** Buffers adopted on this thread, by queue id. */
const adopted = new Map<string, WeakRef<SharedArrayBuffer>>();

/**
 * The buffer of a queue memory received from another thread. Each clone of a
 * memory arrives as a new object; this returns the buffer this thread got
 * first for the same queue (by the header's id), so every producer and port
 * of that queue on this thread shares one WebAssembly instance, which keeps
 * V8's calls into it monomorphic (see `wasm_atomics.ts`).
 *
 * @param memory A shared memory from `MpscQueue.memory` or a port handle.
 * @param action For the error message, e.g. "connect port".
 * @param reference A buffer the memory must share its bytes with (a port
 *   handle's `buffer`), checked when this thread knows no buffer of the
 *   queue yet; one it knows is always checked.
 * @returns The buffer to use.
 * @throws {TypeError} The memory is not shared, is a copy of the queue or
 *   another queue's, or its maximum differs from its size.
 */
export function adoptMemory(
  memory: WebAssembly.Memory,
  action: string,
  reference?: SharedArrayBuffer,
): SharedArrayBuffer {
  const buffer: unknown = memory.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(`Cannot ${action}: the memory is not shared`);
  }
  if (buffer.byteLength < PRODUCER_TABLE * 4) return buffer; // readLayout says
  readLayout(buffer, action); // not a queue: says so
  const known = adopted.get(idOf(buffer))?.deref();
  const ref = known ?? reference;
  if (ref !== undefined && ref !== buffer && !sameBytes(buffer, ref)) {
    throw new TypeError(
      `Cannot ${action}: the memory is not the queue's own (a copy of it, or another queue)`,
    );
  }
  if (known !== undefined && memoryOf(known) !== undefined) return known;
  if (!registerMemory(buffer, memory)) {
    throw new TypeError(
      `Cannot ${action}: the memory's maximum must equal its size (as a queue makes it)`,
    );
  }
  // Only a memory checked against the queue's buffer becomes this thread's
  // for the queue's id: an unchecked one (a copy, for all we know) is used
  // as it is, and cannot take the place of the real one.
  if (ref !== undefined) remember(buffer);
  return buffer;
}

/**
 * Whether two buffers hold the same queue: same size and the same random id
 * in their headers (clones of one buffer cannot be compared by identity).
 *
 * @param a A queue buffer.
 * @param b Another buffer.
 * @returns The answer.
 */
export function sameQueue(a: SharedArrayBuffer, b: unknown): boolean {
  return b instanceof SharedArrayBuffer && b.byteLength === a.byteLength &&
    b.byteLength >= (H_ID + 2) * 4 && idOf(a) === idOf(b);
}

/**
 * Whether two buffers are views of the same memory: a random value stored
 * through each is read back through the other (a thread copying one into
 * the other could fake one direction, not both).
 */
function sameBytes(a: SharedArrayBuffer, b: SharedArrayBuffer): boolean {
  if (a.byteLength !== b.byteLength || a.byteLength < (H_PROBE + 1) * 4) {
    return false;
  }
  const wa = new Int32Array(a, 0, H_PROBE + 1);
  const wb = new Int32Array(b, 0, H_PROBE + 1);
  const nonces = crypto.getRandomValues(new Int32Array(16));
  let ab = false;
  let ba = false;
  // Several tries: another thread probing the same queue may overwrite.
  for (let i = 0; i < 16 && !(ab && ba); i += 2) {
    Atomics.store(wa, H_PROBE, nonces[i]);
    ab ||= Atomics.load(wb, H_PROBE) === nonces[i];
    Atomics.store(wb, H_PROBE, nonces[i + 1]);
    ba ||= Atomics.load(wa, H_PROBE) === nonces[i + 1];
  }
  return ab && ba;
}

function idOf(buffer: SharedArrayBuffer): string {
  const w = new Int32Array(buffer, 0, H_ID + 2);
  return `${w[H_ID]}:${w[H_ID + 1]}:${buffer.byteLength}`;
}

/** Records a queue memory's buffer as this thread's for its id. */
function remember(buffer: SharedArrayBuffer): void {
  if (adopted.size >= 64) {
    for (const [k, ref] of adopted) {
      if (ref.deref() === undefined) adopted.delete(k);
    }
  }
  adopted.set(idOf(buffer), new WeakRef(buffer));
}

/**
 * Reads and checks the layout of a buffer made by {@linkcode createBuffer}.
 *
 * @param buffer A buffer received from another thread.
 * @param action What the caller was doing, for the error message.
 * @returns The layout.
 * @throws {TypeError} Not a SharedArrayBuffer, or not a twloop queue buffer.
 */
export function readLayout(buffer: unknown, action: string): Layout {
  if (!(buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(`Cannot ${action}: expected a SharedArrayBuffer`);
  }
  if (buffer.byteLength < PRODUCER_TABLE * 4) {
    throw new TypeError(`Cannot ${action}: buffer is not a twloop queue`);
  }
  const w = new Int32Array(buffer);
  if (
    Atomics.load(w, H_MAGIC) !== MAGIC ||
    Atomics.load(w, H_VERSION) !== LAYOUT_VERSION
  ) {
    throw new TypeError(`Cannot ${action}: buffer is not a twloop queue`);
  }
  let layout: Layout;
  try {
    layout = layoutFor({
      producers: w[H_PRODUCERS],
      nodesPerProducer: w[H_NODES],
      bytesPerProducer: w[H_BYTES],
    });
  } catch {
    throw new TypeError(`Cannot ${action}: buffer has a corrupt header`);
  }
  if (layout.byteLength !== buffer.byteLength) {
    throw new TypeError(
      `Cannot ${action}: buffer size does not match its header`,
    );
  }
  return layout;
}

/**
 * Word index of a node.
 *
 * @param layout The queue layout.
 * @param node Node index.
 * @returns Index of the node's first word in the `Int32Array` view.
 */
export function nodeWord(layout: Layout, node: number): number {
  return layout.nodeBase + node * NODE_WORDS;
}

/**
 * Word index of a producer slot's table entry.
 *
 * @param slot Producer slot number.
 * @returns Index of the slot's producer line.
 */
export function slotWord(slot: number): number {
  return PRODUCER_TABLE + slot * SLOT_WORDS;
}
