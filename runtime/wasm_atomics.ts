/**
 * The queue's hot atomic steps as a tiny WebAssembly module over the queue
 * buffer's shared memory. A JS `Atomics` call costs ~10 ns in V8 here; one
 * call into this module that performs two atomic instructions costs less
 * than one of them. Same memory, same sequentially consistent atomics: the
 * memory-model arguments in `mpsc_queue.ts` hold unchanged.
 *
 * The module is assembled here from its instructions (below, one function
 * per exported step); no build step, no file to fetch.
 *
 * @module
 */

/** The exported steps; addresses are byte offsets into the buffer. */
export interface AtomicSteps {
  /**
   * A push's publication: `prev = exchange(tail, last)`, a plain store of
   * `prev` at `record` (the repair record), then an atomic store of `first`
   * into `prev`'s link at `links + prev * 16`.
   */
  publish(
    tail: number,
    record: number,
    links: number,
    first: number,
    last: number,
  ): number;
  /**
   * A push by the consumer's own thread: `prev = exchange(tail, last)`, then
   * a plain store of `first` into `prev`'s link (only this thread reads it).
   */
  publishLocal(
    tail: number,
    links: number,
    first: number,
    last: number,
  ): number;
  /**
   * `publish`, then a plain store of 0 at `node` (the repair record's end),
   * `Atomics.and(fence, mask)` (a port leaving its write fence) and
   * `Atomics.load(waitNr)` (the wake check), whose value it returns.
   */
  publishFenced(
    tail: number,
    record: number,
    links: number,
    first: number,
    last: number,
    node: number,
    fence: number,
    mask: number,
    waitNr: number,
  ): number;
  /** `Atomics.exchange(word at addr, value)`: returns the old value. */
  xchg(addr: number, value: number): number;
  /** `Atomics.or(word at addr, bits)`: returns the old value. */
  or(addr: number, bits: number): number;
  /** `Atomics.and(word at addr, bits)`: returns the old value. */
  and(addr: number, bits: number): number;
  /** `Atomics.load(word at addr)`. */
  load(addr: number): number;
  /** `Atomics.compareExchange(word at addr, expected, value)`. */
  cas(addr: number, expected: number, value: number): number;
  /** `Atomics.store(word at addr, value)`; returns 0. */
  store(addr: number, value: number): number;
}

// Instruction bytes used below (WebAssembly core and threads proposal).
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const I32_STORE = 0x36;
const I32_CONST = 0x41;
const I32_ADD = 0x6a;
const I32_SHL = 0x74;
const END = 0x0b;
const DROP = 0x1a;
const ATOMIC = 0xfe;
const A_LOAD = 0x10;
const A_STORE = 0x17;
const A_AND = 0x2c;
const A_OR = 0x33;
const A_XCHG = 0x41;
const A_CMPXCHG = 0x48;
/** memarg of a 4-byte access: alignment 2^2, offset 0. */
const WORD = [2, 0];
const I32 = 0x7f;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

interface Fn {
  name: string;
  params: number;
  /** Extra i32 locals. */
  locals: number;
  body: number[];
}

const get = (i: number) => [LOCAL_GET, i];

// One instruction per line group; comments give the JS equivalent.
// deno-fmt-ignore
const FUNCTIONS: readonly Fn[] = [
  {
    name: "publish", // (tail, record, links, first, last) -> prev
    params: 5,
    locals: 1, // 5: prev
    body: [
      ...get(0), ...get(4), ATOMIC, A_XCHG, ...WORD, LOCAL_SET, 5, // prev = exchange(tail, last)
      ...get(1), ...get(5), I32_STORE, ...WORD, // record = prev (plain)
      ...get(2), ...get(5), I32_CONST, 4, I32_SHL, I32_ADD, // links + prev * 16
      ...get(3), ATOMIC, A_STORE, ...WORD, // atomic store of first there
      ...get(5),
    ],
  },
  {
    // (tail, record, links, first, last, node, fence, mask, waitNr) -> nr
    name: "publishFenced",
    params: 9,
    locals: 1, // 9: prev
    body: [
      ...get(0), ...get(4), ATOMIC, A_XCHG, ...WORD, LOCAL_SET, 9,
      ...get(1), ...get(9), I32_STORE, ...WORD,
      ...get(2), ...get(9), I32_CONST, 4, I32_SHL, I32_ADD,
      ...get(3), ATOMIC, A_STORE, ...WORD,
      ...get(5), I32_CONST, 0, I32_STORE, ...WORD, // node record = NIL (plain)
      ...get(6), ...get(7), ATOMIC, A_AND, ...WORD, DROP, // and(fence, mask)
      ...get(8), ATOMIC, A_LOAD, ...WORD, // load(waitNr)
    ],
  },
  {
    name: "publishLocal", // (tail, links, first, last) -> prev
    params: 4,
    locals: 1, // 4: prev
    body: [
      ...get(0), ...get(3), ATOMIC, A_XCHG, ...WORD, LOCAL_SET, 4,
      ...get(1), ...get(4), I32_CONST, 4, I32_SHL, I32_ADD,
      ...get(2), I32_STORE, ...WORD, // plain store of first there
      ...get(4),
    ],
  },
  { name: "xchg", params: 2, locals: 0, body: [...get(0), ...get(1), ATOMIC, A_XCHG, ...WORD] },
  { name: "or", params: 2, locals: 0, body: [...get(0), ...get(1), ATOMIC, A_OR, ...WORD] },
  { name: "and", params: 2, locals: 0, body: [...get(0), ...get(1), ATOMIC, A_AND, ...WORD] },
  { name: "load", params: 1, locals: 0, body: [...get(0), ATOMIC, A_LOAD, ...WORD] },
  {
    name: "cas",
    params: 3,
    locals: 0,
    body: [...get(0), ...get(1), ...get(2), ATOMIC, A_CMPXCHG, ...WORD],
  },
  {
    name: "store", // returns 0
    params: 2,
    locals: 0,
    body: [...get(0), ...get(1), ATOMIC, A_STORE, ...WORD, I32_CONST, 0],
  },
];

/** The module's bytes; it imports one shared memory as `q.mem`. */
function moduleBytes(pages: number): Uint8Array<ArrayBuffer> {
  const types = FUNCTIONS.map((f) => [
    0x60,
    ...vec(Array.from({ length: f.params }, () => [I32])),
    ...vec([[I32]]),
  ]);
  const memory = [
    ...name("q"),
    ...name("mem"),
    0x02,
    0x03,
    ...uleb(pages),
    ...uleb(pages),
  ];
  const code = FUNCTIONS.map((f) => {
    const locals = f.locals > 0 ? vec([[...uleb(f.locals), I32]]) : vec([]);
    const body = [...locals, ...f.body, END];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec([memory])),
    ...section(3, vec(FUNCTIONS.map((_, i) => uleb(i)))),
    ...section(
      7,
      vec(FUNCTIONS.map((f, i) => [...name(f.name), 0x00, ...uleb(i)])),
    ),
    ...section(10, vec(code)),
  ]);
}

/** Bytes per WebAssembly page. */
export const PAGE_BYTES = 65536;

const modules = new Map<number, WebAssembly.Module>();
/** This thread's queue buffers that are shared WebAssembly memories. */
const memories = new WeakMap<SharedArrayBuffer, WebAssembly.Memory>();
/** The steps over each of them, one instance per buffer and thread. */
const stepsByBuffer = new WeakMap<SharedArrayBuffer, AtomicSteps>();

/**
 * A zeroed shared buffer of `byteLength` bytes (whole pages): the buffer of
 * a shared `WebAssembly.Memory`, remembered for {@linkcode memoryOf}, or a
 * plain `SharedArrayBuffer` where the host cannot make one.
 *
 * @param byteLength A multiple of {@linkcode PAGE_BYTES}.
 * @returns The buffer.
 */
export function sharedMemory(byteLength: number): SharedArrayBuffer {
  const pages = byteLength / PAGE_BYTES;
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({
      initial: pages,
      maximum: pages,
      shared: true,
    });
  } catch {
    return new SharedArrayBuffer(byteLength);
  }
  const buffer: unknown = memory.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) {
    return new SharedArrayBuffer(byteLength);
  }
  memories.set(buffer, memory);
  return buffer;
}

/**
 * Whether `x` is a `WebAssembly.Memory`; false on a host without the
 * `WebAssembly` global (V8's `--jitless`), where queues use plain
 * `SharedArrayBuffer`s and JS `Atomics`.
 *
 * @param x Any value.
 * @returns The answer.
 */
export function isMemory(x: unknown): x is WebAssembly.Memory {
  return typeof WebAssembly !== "undefined" && x instanceof WebAssembly.Memory;
}

/**
 * Remembers that `memory` backs `buffer` on this thread (a memory received
 * from another thread; see `adoptMemory` in `queue_layout.ts`), after
 * instantiating the steps over it, so a memory the module cannot import
 * (one whose maximum differs from its size) is refused here, once, rather
 * than at a later push.
 *
 * @param buffer `memory.buffer`, already checked to be shared.
 * @param memory The memory.
 * @returns False when the steps cannot use the memory (nothing remembered).
 */
export function registerMemory(
  buffer: SharedArrayBuffer,
  memory: WebAssembly.Memory,
): boolean {
  let steps: AtomicSteps;
  try {
    steps = atomicSteps(memory);
  } catch {
    return false;
  }
  memories.set(buffer, memory);
  stepsByBuffer.set(buffer, steps);
  return true;
}

/**
 * The shared memory behind a queue buffer on this thread, if known: made
 * here, or adopted from a handle that carried it.
 *
 * @param buffer A queue buffer.
 * @returns The memory, or undefined (the buffer came alone: JS `Atomics`).
 */
export function memoryOf(
  buffer: SharedArrayBuffer,
): WebAssembly.Memory | undefined {
  return memories.get(buffer);
}

/**
 * The steps over a queue buffer's memory, one instance per buffer and
 * thread, or undefined when the buffer is not a known memory.
 *
 * @param buffer A queue buffer.
 * @returns The steps, or undefined.
 */
export function stepsFor(buffer: SharedArrayBuffer): AtomicSteps | undefined {
  let s = stepsByBuffer.get(buffer);
  if (s === undefined) {
    const memory = memories.get(buffer);
    if (memory === undefined) return undefined;
    s = atomicSteps(memory);
    stepsByBuffer.set(buffer, s);
  }
  return s;
}

/**
 * Instantiates the steps over a shared memory.
 *
 * @param memory A shared `WebAssembly.Memory` whose size never changes.
 * @returns The steps.
 */
export function atomicSteps(memory: WebAssembly.Memory): AtomicSteps {
  const pages = memory.buffer.byteLength / PAGE_BYTES;
  let m = modules.get(pages);
  if (m === undefined) {
    m = new WebAssembly.Module(moduleBytes(pages));
    modules.set(pages, m);
  }
  const inst = new WebAssembly.Instance(m, { q: { mem: memory } });
  return inst.exports as unknown as AtomicSteps;
}

/**
 * Atomic operations on the words of one queue buffer (word indices, as an
 * `Int32Array` over it): through the WebAssembly steps when the buffer is a
 * known shared memory, else JS `Atomics`. V8 inlines a call into
 * WebAssembly only at a call site that has seen a single instance, so the
 * calls are cheapest on a thread that uses one queue (a loop's thread, a
 * worker with one port); a thread that uses several still works, at about
 * the cost of JS `Atomics`.
 */
export class WordAtomics {
  /** The steps, or undefined: JS `Atomics` on {@linkcode WordAtomics.w}. */
  readonly steps: AtomicSteps | undefined;
  /** An `Int32Array` over the whole buffer. */
  readonly w: Int32Array;

  /** @param buffer A queue buffer. */
  constructor(buffer: SharedArrayBuffer) {
    this.steps = stepsFor(buffer);
    this.w = new Int32Array(buffer);
  }

  /**
   * @param i Word index.
   * @returns `Atomics.load` of the word.
   */
  load(i: number): number {
    const s = this.steps;
    return s !== undefined ? s.load(i * 4) : Atomics.load(this.w, i);
  }

  /**
   * @param i Word index.
   * @param value Stored with `Atomics.store`.
   */
  store(i: number, value: number): void {
    const s = this.steps;
    if (s !== undefined) s.store(i * 4, value);
    else Atomics.store(this.w, i, value);
  }

  /**
   * @param i Word index.
   * @param expected Compared.
   * @param value Stored when equal.
   * @returns The old value (`Atomics.compareExchange`).
   */
  cas(i: number, expected: number, value: number): number {
    const s = this.steps;
    return s !== undefined
      ? s.cas(i * 4, expected, value)
      : Atomics.compareExchange(this.w, i, expected, value);
  }

  /**
   * @param i Word index.
   * @param value Stored.
   * @returns The old value (`Atomics.exchange`).
   */
  exchange(i: number, value: number): number {
    const s = this.steps;
    return s !== undefined
      ? s.xchg(i * 4, value)
      : Atomics.exchange(this.w, i, value);
  }

  /**
   * @param i Word index.
   * @param bits Or-ed in.
   * @returns The old value (`Atomics.or`).
   */
  or(i: number, bits: number): number {
    const s = this.steps;
    return s !== undefined ? s.or(i * 4, bits) : Atomics.or(this.w, i, bits);
  }

  /**
   * @param i Word index.
   * @param bits And-ed in.
   * @returns The old value (`Atomics.and`).
   */
  and(i: number, bits: number): number {
    const s = this.steps;
    return s !== undefined ? s.and(i * 4, bits) : Atomics.and(this.w, i, bits);
  }
}
