/**
 * The structured-value codec that message payloads travel in: an
 * {@linkcode Encoder} writes a value graph into its own scratch bytes, which
 * the poster copies straight into shared memory, and {@linkcode decode}
 * rebuilds a fresh graph from those bytes on the loop's side.
 *
 * It follows structured-clone semantics (what `postMessage` does), with a
 * few deliberate, documented differences; `node:v8` serialize (~27 µs per
 * small object) was too slow and JSON changes values silently. The measured
 * costs are in `bench/codec_bench.ts`.
 *
 * ## What is supported
 *
 * - Primitives: `undefined`, `null`, booleans, numbers (`-0`, `NaN`,
 *   `±Infinity` kept; int32 fast path), BigInt of any size, strings (UTF-8
 *   when well formed; strings with lone surrogates are stored as UTF-16 code
 *   units so they come back exactly).
 * - Plain objects (prototype `Object.prototype` or `null`, and the `null`
 *   prototype is kept): own enumerable string keys in their order; getters
 *   are invoked, symbol keys and non-enumerable properties are skipped.
 * - Arrays, with holes and `length` kept; very sparse arrays are sent as
 *   index/value pairs. Difference: non-index properties on arrays
 *   (`arr.foo = 1`) are not sent; finding them costs `Object.keys`, which is
 *   O(length) string work (~7.5 µs for 1000 elements on the dev VM).
 * - `Map`, `Set`, `Date` (invalid dates too), `RegExp` (source and flags;
 *   `lastIndex` resets to 0), `ArrayBuffer` (resizable kept), every typed
 *   array (`Float16Array` where the host has it), `DataView`, and boxed
 *   `Number`, `String`, `Boolean`, `BigInt`.
 * - Typed arrays and `DataView`s carry only the bytes they view: they decode
 *   over a fresh buffer of exactly that size (`byteOffset` 0). Difference:
 *   structured clone copies the whole underlying buffer and keeps views of
 *   one buffer sharing it; a payload should not drag a large pool buffer
 *   along. Subclasses (Node's `Buffer`) decode as their base typed array.
 * - Errors (anything `Error.isError` accepts, subclasses included): `name`,
 *   `message`, `stack` and `cause` (the cause is a cloned value, cycles
 *   allowed). As in structured clone the prototype is the standard
 *   constructor named by `name` (`Error`, `EvalError`, `RangeError`,
 *   `ReferenceError`, `SyntaxError`, `TypeError`, `URIError`), else
 *   `Error`; other own properties are not sent. Difference: a non-standard
 *   name (`"AbortError"`) is kept as an own `name` property instead of being
 *   dropped.
 * - Shared references and cycles: an object met twice decodes to one object.
 *
 * ## What is rejected
 *
 * {@linkcode DataCloneError}, with a path to the offending value, for:
 * functions, symbols, `WeakMap`, `WeakSet`, `WeakRef`, `Promise`,
 * `SharedArrayBuffer` and views over one (shared memory cannot travel as
 * bytes: send a copy), detached buffers, instances of other classes
 * (prototype not `Object.prototype`, `null` or a supported built-in; this
 * includes subclasses of `Array`, `Map`, `Set`, `Date`, `RegExp`), objects
 * that borrow a built-in prototype without its internals, and graphs nested
 * more than {@linkcode MAX_DEPTH} levels deep. Errors thrown by getters
 * propagate unchanged. Either way the encoder is left clean and reusable.
 * Proxies cannot be detected and are read through their traps.
 *
 * ## Wire format (version 1)
 *
 * One version byte, then one value. A value is a tag byte and a body;
 * integers in bodies are little-endian, `varint` is unsigned LEB128. The
 * bytes of buffers and views start at the next offset from the message start
 * that is a multiple of 8 (zero padding before them).
 *
 * | tag         | value                 | body                                       |
 * | ----------- | --------------------- | ------------------------------------------ |
 * | `0x00-0x3f` | integer 0-63          | none: the tag is the value                 |
 * | `0x40-0x43` | undefined, null, false, true | none                                |
 * | `0x44`      | int32 number          | 4 bytes                                    |
 * | `0x45`      | other number          | float64, 8 bytes                           |
 * | `0x46/0x47` | BigInt ≥ 0 / < 0      | varint n, n magnitude bytes                |
 * | `0x48`      | string, UTF-8         | u32 byte length, bytes                     |
 * | `0x49`      | string, UTF-16        | u32 code units, 2 bytes each               |
 * | `0x4a/0x4b` | object / null-proto   | (string key, value)*, then `0x51`          |
 * | `0x4c`      | array                 | varint length, length × (value or hole)    |
 * | `0x4d`      | sparse array          | varint length, varint n, n × (varint index, value) |
 * | `0x4e`      | hole                  | none (array elements only)                 |
 * | `0x4f/0x50` | Map / Set             | entries (key, value) / values, then `0x51` |
 * | `0x51`      | end of object, Map, Set | none                                     |
 * | `0x52`      | Date                  | float64 time value                         |
 * | `0x53`      | RegExp                | source string, flags string                |
 * | `0x54`      | ArrayBuffer           | varint n, bytes                            |
 * | `0x55`      | resizable ArrayBuffer | varint n, varint max, bytes                |
 * | `0x56`      | typed array           | kind byte, varint byte length, bytes       |
 * | `0x57`      | DataView              | varint n, bytes                            |
 * | `0x58`      | back-reference        | varint object id                           |
 * | `0x59`      | Number object         | float64                                    |
 * | `0x5a`      | String object         | string                                     |
 * | `0x5b/0x5c` | Boolean object        | none (true / false)                        |
 * | `0x5d`      | BigInt object         | a BigInt value                             |
 * | `0x5e`      | Error                 | flags, name, [message], [stack], [cause]   |
 * | `0x80-0xff` | string, UTF-8         | tag & 0x7f bytes                           |
 *
 * Object ids count every object-tagged value (`0x4a`-`0x4d`, `0x4f`,
 * `0x50`, `0x52`-`0x57`, `0x59`-`0x5e`) in the order it is first written,
 * from 0.
 *
 * @module
 */

/**
 * How many containers may be open at once while encoding (and decoding).
 * The codec recurses, and V8's default 984 KiB stack overflows at ~2,800
 * levels of the heaviest kind (Map and Set) once warm and ~1,500 when cold;
 * 1000 leaves the caller room for its own frames. A stack that overflows
 * anyway, because the caller was already deep, is also reported as a
 * {@linkcode DataCloneError}.
 *
 * @example
 * ```ts
 * import { DataCloneError, Encoder, MAX_DEPTH } from "./codec.ts";
 * let deep: unknown = 0;
 * for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];
 * try {
 *   new Encoder().encode(deep);
 *   throw new Error("accepted");
 * } catch (e) {
 *   if (!(e instanceof DataCloneError)) throw e;
 * }
 * ```
 */
export const MAX_DEPTH = 1000;

const VERSION = 1;

const T_MAX_FIXINT = 0x3f;
const T_UNDEFINED = 0x40;
const T_NULL = 0x41;
const T_FALSE = 0x42;
const T_TRUE = 0x43;
const T_INT32 = 0x44;
const T_FLOAT64 = 0x45;
const T_BIGINT = 0x46;
const T_BIGINT_NEG = 0x47;
const T_STR8 = 0x48;
const T_STR16 = 0x49;
const T_OBJECT = 0x4a;
const T_NULL_OBJECT = 0x4b;
const T_ARRAY = 0x4c;
const T_SPARSE = 0x4d;
const T_HOLE = 0x4e;
const T_MAP = 0x4f;
const T_SET = 0x50;
const T_END = 0x51;
const T_DATE = 0x52;
const T_REGEXP = 0x53;
const T_BUFFER = 0x54;
const T_RESIZABLE = 0x55;
const T_TYPED = 0x56;
const T_VIEW = 0x57;
const T_REF = 0x58;
const T_BOX_NUMBER = 0x59;
const T_BOX_STRING = 0x5a;
const T_BOX_TRUE = 0x5b;
const T_BOX_FALSE = 0x5c;
const T_BOX_BIGINT = 0x5d;
const T_ERROR = 0x5e;
const T_SHORT_STR = 0x80;

/** Error body flags. */
const E_MESSAGE = 1;
const E_STACK = 2;
const E_CAUSE = 4;

/**
 * Strings up to this many UTF-16 units are written by a char-code loop, and
 * up to this many bytes read by `fromCharCode` in batches of 8; longer ones
 * go through `TextEncoder.encodeInto` / `TextDecoder`, whose fixed cost
 * (measured on the 2-vCPU dev VM: ~100 ns to encode and ~150-270 ns to
 * decode 8-64 ASCII bytes, ~50-90 ns for the batched `fromCharCode`) only
 * pays off beyond it.
 */
const SHORT_STRING = 64;
/** ASCII strings up to this many bytes are looked up in the decode cache. */
const CACHED_STRING = 32;
const STRING_CACHE_BITS = 12;
const STRING_CACHE_SIZE = 1 << STRING_CACHE_BITS;
/**
 * Decoded short ASCII strings by a hash of their bytes: repeated keys and
 * values come back as the same string object, which saves building it and
 * lets V8 reuse its internalized form when it becomes a property key.
 */
const STRING_CACHE: string[] = new Array(STRING_CACHE_SIZE).fill("");
/**
 * The bytes of each cached string, and their count (0: empty slot). Hits
 * compare these rather than the string's char codes: once V8 uses a cached
 * string as a property key it turns it into a thin string, whose `charCodeAt`
 * is several times slower.
 */
const CACHE_BYTES = new Uint8Array(STRING_CACHE_SIZE * CACHED_STRING);
const CACHE_LENGTHS = new Uint8Array(STRING_CACHE_SIZE);

/** Objects the encoder compares by `===` before it switches to a Map. */
const LINEAR_IDS = 8;
/** A dense walk turns sparse after this many holes, if half are holes. */
const SPARSE_HOLES = 32;

/** Where a child sits in its container, for error paths. */
const P_KEY = 0;
const P_INDEX = 1;
const P_MAP = 2;
const P_SET = 3;
const P_CAUSE = 4;

interface Ctor {
  new (buffer: ArrayBuffer): ArrayBufferView;
  readonly BYTES_PER_ELEMENT: number;
  readonly prototype: object;
  readonly name: string;
}
type Getter = (this: unknown) => unknown;

const g = globalThis as unknown as Record<string, Ctor | undefined>;
/** Typed array constructors by wire kind byte; absent ones stay undefined. */
const TYPED: (Ctor | undefined)[] = [
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
  "Float16Array",
].map((name) => g[name]);
const TYPED_KIND = new Map<string, number>(
  TYPED.flatMap((c, kind) => c ? [[c.name, kind] as [string, number]] : []),
);

function getter(proto: object, key: PropertyKey): Getter {
  return Object.getOwnPropertyDescriptor(proto, key)!.get as Getter;
}
const typedArrayName = getter(
  Object.getPrototypeOf(Uint8Array.prototype),
  Symbol.toStringTag,
);
const mapSize = getter(Map.prototype, "size");
const setSize = getter(Set.prototype, "size");
const bufferLength = getter(ArrayBuffer.prototype, "byteLength");
/** Brand check that, unlike `byteLength`, still works once detached. */
const viewBuffer = getter(DataView.prototype, "buffer");
const regexpSource = getter(RegExp.prototype, "source");
const toTag = Object.prototype.toString;
const hasOwn = Object.hasOwn;
/** `Map.prototype.getOrInsert` where the host has it: one hash lookup. */
const getOrInsert = (Map.prototype as unknown as {
  getOrInsert?: (this: Map<object, number>, k: object, v: number) => number;
}).getOrInsert;
const isError: (v: unknown) => boolean =
  (Error as unknown as { isError?: (v: unknown) => boolean }).isError ??
    ((v) => toTag.call(v) === "[object Error]");

const K_MAP = 0;
const K_SET = 1;
const K_DATE = 2;
const K_REGEXP = 3;
const K_BUFFER = 4;
const K_VIEW = 5;
const K_TYPED = 6;
const K_NUMBER = 7;
const K_STRING = 8;
const K_BOOLEAN = 9;
const K_BIGINT = 10;
const K_ERROR = 11;

/** Supported built-ins by prototype (subclasses do not match). */
const KINDS = new Map<object, number>([
  [Map.prototype, K_MAP],
  [Set.prototype, K_SET],
  [Date.prototype, K_DATE],
  [RegExp.prototype, K_REGEXP],
  [ArrayBuffer.prototype, K_BUFFER],
  [DataView.prototype, K_VIEW],
  [Number.prototype, K_NUMBER],
  [String.prototype, K_STRING],
  [Boolean.prototype, K_BOOLEAN],
  [BigInt.prototype, K_BIGINT],
  ...TYPED.flatMap((c) =>
    c ? [[c.prototype, K_TYPED] as [object, number]] : []
  ),
]);
/** The error constructors structured clone knows, by name. */
const ERRORS: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};
for (const ctor of Object.values(ERRORS)) KINDS.set(ctor.prototype, K_ERROR);
/** Known non-cloneable built-ins, for messages. */
const UNCLONEABLE = new Map<unknown, string>([
  [WeakMap.prototype, "WeakMap"],
  [WeakSet.prototype, "WeakSet"],
  [WeakRef.prototype, "WeakRef"],
  [Promise.prototype, "Promise"],
  [Symbol.prototype, "Symbol object"],
  [SharedArrayBuffer.prototype, "SharedArrayBuffer"],
]);
const SHARED_HINT = "; send a copy of its bytes (e.g. `.slice()`) instead";

/**
 * Thrown by {@linkcode Encoder.encode} when a value cannot travel in a
 * message. The message names what was found and where, as a path from the
 * posted value: `Cannot post message: function at value.a.b could not be
 * cloned`.
 *
 * @example
 * ```ts
 * import { DataCloneError, Encoder } from "./codec.ts";
 * try {
 *   new Encoder().encode({ a: { b: () => 1 } });
 * } catch (e) {
 *   if (!(e instanceof DataCloneError)) throw e;
 *   if (!e.message.includes("function at value.a.b")) throw e;
 * }
 * ```
 */
export class DataCloneError extends Error {
  /** Always `"DataCloneError"`. */
  override name = "DataCloneError";
}

/**
 * Writes values in the codec's wire format into a scratch buffer that it
 * reuses and grows. Use one per thread; it is not reentrant (a getter that
 * calls `encode` on the same encoder gets a `TypeError`).
 *
 * @example
 * ```ts
 * import { decode, Encoder } from "./codec.ts";
 * const encoder = new Encoder();
 * const n = encoder.encode({ id: 7, tags: new Set(["a"]) });
 * const copy = encoder.bytes.slice(0, n); // e.g. into shared memory
 * const value = decode(copy) as { id: number; tags: Set<string> };
 * if (value.id !== 7 || !value.tags.has("a")) throw new Error("mismatch");
 * ```
 */
export class Encoder {
  #buf: Uint8Array;
  #dv: DataView;
  #pos = 0;
  #busy = false;
  /** Objects by id, for the linear lookup and for rewinding a sparse walk. */
  #seen: object[] = [];
  #count = 0;
  /** Ids by object, built once more than {@linkcode LINEAR_IDS} are seen. */
  #ids: Map<object, number> | null = null;
  #depth = 0;
  /** -1 unknown, else whether `Object.prototype` has enumerable keys. */
  #polluted = -1;
  /** Per open container: the child's key or index, and what kind it is. */
  #path: (string | number)[] = [];
  #pathKind: number[] = [];
  #initial: number;

  /**
   * Creates an encoder with an empty scratch buffer.
   *
   * @param initialCapacity Starting scratch size in bytes; it doubles on
   *   demand, and shrinks back after a large message is followed by small
   *   ones.
   */
  constructor(initialCapacity = 1024) {
    this.#initial = Math.max(16, initialCapacity >>> 0);
    this.#buf = new Uint8Array(this.#initial);
    this.#dv = new DataView(this.#buf.buffer);
  }

  /**
   * The scratch buffer; the first `n` bytes, where `n` is what the last
   * successful {@linkcode Encoder.encode} returned, hold the message. Valid
   * until the next `encode`, which may also replace the buffer: read it after
   * `encode` returns (`const n = e.encode(v); e.bytes.subarray(0, n)`), never
   * before (`e.bytes.subarray(0, e.encode(v))` can see the old buffer).
   *
   * @returns The scratch buffer.
   */
  get bytes(): Uint8Array {
    return this.#buf;
  }

  /**
   * Encodes `value` into {@linkcode Encoder.bytes}.
   *
   * @param value The value graph to encode.
   * @returns The number of bytes written at the start of `bytes`.
   * @throws {DataCloneError} When the graph holds something that cannot be
   *   cloned (see the module docs); nothing is left half-done and the encoder
   *   stays usable.
   * @throws {TypeError} When called from a getter during an `encode` on the
   *   same encoder.
   */
  encode(value: unknown): number {
    if (this.#busy) throw new TypeError("Cannot encode: encoder is busy");
    this.#busy = true;
    if (this.#buf.length > 65536 && this.#pos < this.#buf.length >>> 3) {
      this.#buf = new Uint8Array(this.#initial);
      this.#dv = new DataView(this.#buf.buffer);
    }
    this.#buf[0] = VERSION;
    this.#pos = 1;
    try {
      this.#value(value);
    } catch (e) {
      this.#pos = 0;
      if (isStackOverflow(e)) throw this.#reject("value nested too deep");
      throw e;
    } finally {
      this.#release();
    }
    return this.#pos;
  }

  #release(): void {
    const seen = this.#seen;
    if (this.#count > 4096) seen.length = 0;
    else for (let i = 0; i < this.#count; i++) seen[i] = undefined!;
    this.#count = 0;
    this.#ids = null;
    this.#depth = 0;
    this.#polluted = -1;
    this.#busy = false;
  }

  #grow(need: number): void {
    const old = this.#buf;
    const next = new Uint8Array(Math.max(old.length * 2, this.#pos + need));
    next.set(old.subarray(0, this.#pos));
    this.#buf = next;
    this.#dv = new DataView(next.buffer);
  }

  #varint(n: number): void {
    const buf = this.#buf;
    let pos = this.#pos;
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[pos++] = n;
    this.#pos = pos;
  }

  #value(v: unknown): void {
    if (this.#pos + 16 > this.#buf.length) this.#grow(16);
    switch (typeof v) {
      case "number":
        return this.#number(v);
      case "string":
        return this.#string(v);
      case "object":
        if (v === null) {
          this.#buf[this.#pos++] = T_NULL;
          return;
        }
        return this.#object(v);
      case "boolean":
        this.#buf[this.#pos++] = v ? T_TRUE : T_FALSE;
        return;
      case "undefined":
        this.#buf[this.#pos++] = T_UNDEFINED;
        return;
      case "bigint":
        return this.#bigint(v);
      default:
        throw this.#reject(typeof v);
    }
  }

  #number(v: number): void {
    const buf = this.#buf;
    const pos = this.#pos;
    if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
      if (v >= 0 && v <= T_MAX_FIXINT) {
        buf[pos] = v;
        this.#pos = pos + 1;
        return;
      }
      buf[pos] = T_INT32;
      buf[pos + 1] = v;
      buf[pos + 2] = v >> 8;
      buf[pos + 3] = v >> 16;
      buf[pos + 4] = v >> 24;
      this.#pos = pos + 5;
      return;
    }
    buf[pos] = T_FLOAT64;
    this.#dv.setFloat64(pos + 1, v, true);
    this.#pos = pos + 9;
  }

  #string(s: string): void {
    const n = s.length;
    if (this.#pos + 3 * n + 5 > this.#buf.length) this.#grow(3 * n + 5);
    const buf = this.#buf;
    const start = this.#pos;
    if (n <= SHORT_STRING) {
      let pos = start + 1;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.#stringSlow(s);
        buf[pos++] = c;
      }
      buf[start] = T_SHORT_STR | n;
      this.#pos = pos;
      return;
    }
    this.#stringSlow(s);
  }

  /** Non-ASCII or long strings; `#pos` is still at the string's tag. */
  #stringSlow(s: string): void {
    const buf = this.#buf;
    const start = this.#pos;
    const n = s.length;
    if (!s.isWellFormed()) {
      buf[start] = T_STR16;
      this.#u32(start + 1, n);
      let pos = start + 5;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        buf[pos++] = c;
        buf[pos++] = c >> 8;
      }
      this.#pos = pos;
      return;
    }
    if (3 * n <= 0x7f) {
      this.#pos = utf8Encode(s, buf, start + 1);
      buf[start] = T_SHORT_STR | (this.#pos - start - 1);
      return;
    }
    const body = start + 5;
    const written = n <= SHORT_STRING
      ? utf8Encode(s, buf, body) - body
      : textEncoder.encodeInto(s, buf.subarray(body)).written;
    buf[start] = T_STR8;
    this.#u32(start + 1, written);
    this.#pos = body + written;
  }

  #u32(at: number, n: number): void {
    const buf = this.#buf;
    buf[at] = n;
    buf[at + 1] = n >> 8;
    buf[at + 2] = n >> 16;
    buf[at + 3] = n >> 24;
  }

  #bigint(v: bigint, tag = -1): void {
    const negative = v < 0n;
    const magnitude = negative ? -v : v;
    if (tag >= 0) this.#buf[this.#pos++] = tag;
    this.#buf[this.#pos++] = negative ? T_BIGINT_NEG : T_BIGINT;
    if (BigInt.asUintN(64, magnitude) === magnitude) {
      this.#buf[this.#pos++] = 8;
      this.#dv.setBigUint64(this.#pos, magnitude, true);
      this.#pos += 8;
      return;
    }
    // Hex is linear both ways; shifting 32 bits at a time is quadratic.
    const hex = magnitude.toString(16);
    const n = (hex.length + 1) >>> 1;
    if (this.#pos + n + 5 > this.#buf.length) this.#grow(n + 5);
    this.#varint(n);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let end = hex.length; end > 0; end -= 2) {
      buf[pos++] = parseInt(hex.slice(Math.max(0, end - 2), end), 16);
    }
    this.#pos = pos;
  }

  #object(v: object): void {
    const id = this.#identify(v);
    if (id >= 0) {
      this.#buf[this.#pos++] = T_REF;
      this.#varint(id);
      return;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype) {
      return this.#record(v as Record<string, unknown>, T_OBJECT);
    }
    if (proto === Array.prototype && Array.isArray(v)) return this.#array(v);
    if (proto === null) {
      return this.#record(v as Record<string, unknown>, T_NULL_OBJECT);
    }
    this.#builtin(v, proto);
  }

  /**
   * The id of `v` if it was seen before, else -1 after giving it the next
   * id. The first {@linkcode LINEAR_IDS} objects are compared by `===`: most
   * messages are small and skip the Map entirely.
   */
  #identify(v: object): number {
    const id = this.#count;
    const ids = this.#ids;
    if (ids !== null) {
      const found = getOrInsert !== undefined
        ? getOrInsert.call(ids, v, id)
        : (ids.get(v) ?? (ids.set(v, id), id));
      if (found !== id) return found;
    } else {
      const seen = this.#seen;
      for (let i = 0; i < id; i++) if (seen[i] === v) return i;
      if (id === LINEAR_IDS) {
        this.#ids = new Map();
        for (let i = 0; i < id; i++) this.#ids.set(seen[i], i);
        this.#ids.set(v, id);
      }
    }
    this.#seen[id] = v;
    this.#count = id + 1;
    return -1;
  }

  /** Forgets the objects remembered since `mark` and rewinds to `pos`. */
  #rewind(pos: number, mark: number): void {
    for (let i = mark; i < this.#count; i++) this.#ids?.delete(this.#seen[i]);
    this.#count = mark;
    this.#pos = pos;
  }

  /** Opens a container; returns the depth to restore when it closes. */
  #enter(kind: number): number {
    const d = this.#depth;
    if (d >= MAX_DEPTH) {
      throw this.#reject(`object nested more than ${MAX_DEPTH} levels deep`);
    }
    this.#pathKind[d] = kind;
    this.#depth = d + 1;
    return d;
  }

  #record(v: Record<string, unknown>, tag: number): void {
    this.#buf[this.#pos++] = tag;
    const d = this.#enter(P_KEY);
    const path = this.#path;
    if (tag === T_NULL_OBJECT || !this.#inheritsKeys()) {
      // for-in walks V8's enum cache with fast loads: ~4x Object.keys here.
      for (const key in v) {
        path[d] = key;
        this.#string(key);
        this.#value(v[key]);
      }
    } else {
      for (const key of Object.keys(v)) {
        if (!hasOwn(v, key)) continue;
        path[d] = key;
        this.#string(key);
        this.#value(v[key]);
      }
    }
    if (this.#pos >= this.#buf.length) this.#grow(1);
    this.#buf[this.#pos++] = T_END;
    this.#depth = d;
  }

  /** Whether `Object.prototype` has enumerable keys; checked once a call. */
  #inheritsKeys(): boolean {
    if (this.#polluted === -1) {
      this.#polluted = 0;
      for (const _ in Object.prototype) this.#polluted = 1;
    }
    return this.#polluted === 1;
  }

  #array(a: unknown[]): void {
    const start = this.#pos;
    const mark = this.#count;
    const n = a.length;
    this.#buf[this.#pos++] = T_ARRAY;
    this.#varint(n);
    const d = this.#enter(P_INDEX);
    const path = this.#path;
    let holes = 0;
    for (let i = 0; i < n; i++) {
      const e = a[i];
      if (e === undefined && !(i in a)) {
        if (++holes > SPARSE_HOLES && holes > i >>> 1) {
          this.#rewind(start, mark);
          this.#depth = d;
          return this.#sparse(a);
        }
        if (this.#pos >= this.#buf.length) this.#grow(1);
        this.#buf[this.#pos++] = T_HOLE;
        continue;
      }
      path[d] = i;
      this.#value(e);
    }
    this.#depth = d;
  }

  #sparse(a: unknown[]): void {
    // Own keys list array indices first, ascending; the named rest is skipped.
    const keys = Object.keys(a);
    let n = 0;
    while (n < keys.length && isIndex(keys[n])) n++;
    this.#buf[this.#pos++] = T_SPARSE;
    this.#varint(a.length);
    this.#varint(n);
    const d = this.#enter(P_INDEX);
    for (let i = 0; i < n; i++) {
      const index = +keys[i];
      this.#path[d] = index;
      if (this.#pos + 5 > this.#buf.length) this.#grow(5);
      this.#varint(index);
      this.#value(a[index]);
    }
    this.#depth = d;
  }

  #builtin(v: object, proto: object): void {
    const kind = KINDS.get(proto) ??
      (isError(v) ? K_ERROR : typedArrayName.call(v) ? K_TYPED : -1);
    if (kind === K_MAP && branded(mapSize, v)) {
      return this.#entries(v as Map<unknown, unknown>, T_MAP, P_MAP);
    }
    if (kind === K_SET && branded(setSize, v)) {
      return this.#entries(v as Set<unknown>, T_SET, P_SET);
    }
    if (kind === K_DATE && branded(Date.prototype.getTime, v)) {
      this.#buf[this.#pos++] = T_DATE;
      return this.#float(Date.prototype.getTime.call(v));
    }
    if (kind === K_REGEXP && branded(regexpSource, v)) {
      this.#buf[this.#pos++] = T_REGEXP;
      this.#string(regexpSource.call(v) as string);
      return this.#string((v as RegExp).flags);
    }
    if (kind === K_BUFFER && branded(bufferLength, v)) return this.#buffer(v);
    if (kind === K_TYPED || kind === K_VIEW) {
      return this.#arrayView(v, proto, kind);
    }
    if (kind === K_ERROR) return this.#error(v as Error);
    if (kind === K_NUMBER && branded(Number.prototype.valueOf, v)) {
      this.#buf[this.#pos++] = T_BOX_NUMBER;
      return this.#float(Number.prototype.valueOf.call(v));
    }
    if (kind === K_STRING && branded(String.prototype.valueOf, v)) {
      this.#buf[this.#pos++] = T_BOX_STRING;
      return this.#string(String.prototype.valueOf.call(v));
    }
    if (kind === K_BOOLEAN && branded(Boolean.prototype.valueOf, v)) {
      const b = Boolean.prototype.valueOf.call(v);
      this.#buf[this.#pos++] = b ? T_BOX_TRUE : T_BOX_FALSE;
      return;
    }
    if (kind === K_BIGINT && branded(BigInt.prototype.valueOf, v)) {
      return this.#bigint(BigInt.prototype.valueOf.call(v), T_BOX_BIGINT);
    }
    const hint = proto === SharedArrayBuffer.prototype ? SHARED_HINT : "";
    throw this.#reject(describe(proto, kind), hint);
  }

  #float(v: number): void {
    this.#dv.setFloat64(this.#pos, v, true);
    this.#pos += 8;
  }

  #entries(
    v: Map<unknown, unknown> | Set<unknown>,
    tag: number,
    kind: number,
  ): void {
    this.#buf[this.#pos++] = tag;
    const d = this.#enter(kind);
    const path = this.#path;
    let i = 0;
    if (tag === T_MAP) {
      for (const [key, value] of v as Map<unknown, unknown>) {
        path[d] = i++;
        this.#value(key);
        path[d] = i++;
        this.#value(value);
      }
    } else {
      for (const value of v as Set<unknown>) {
        path[d] = i++;
        this.#value(value);
      }
    }
    if (this.#pos >= this.#buf.length) this.#grow(1);
    this.#buf[this.#pos++] = T_END;
    this.#depth = d;
  }

  #buffer(v: object): void {
    const ab = v as ArrayBuffer;
    if (isDetached(ab)) throw this.#reject("detached ArrayBuffer");
    const n = ab.byteLength;
    if (this.#pos + n + 18 > this.#buf.length) this.#grow(n + 18);
    if (ab.resizable) {
      this.#buf[this.#pos++] = T_RESIZABLE;
      this.#varint(n);
      this.#varint(ab.maxByteLength);
    } else {
      this.#buf[this.#pos++] = T_BUFFER;
      this.#varint(n);
    }
    this.#bulk(new Uint8Array(ab));
  }

  /**
   * Copies bulk bytes to the next offset that is a multiple of 8: V8 copies
   * out of a SharedArrayBuffer word by word from an aligned address and byte
   * by byte otherwise (4 KiB: ~0.5 µs against ~1.5 µs on the dev VM), and
   * queue payloads start 8-aligned.
   */
  #bulk(src: Uint8Array): void {
    const buf = this.#buf;
    let pos = this.#pos;
    while (pos & 7) buf[pos++] = 0;
    buf.set(src, pos);
    this.#pos = pos + src.length;
  }

  #arrayView(v: object, proto: object, kind: number): void {
    const name = kind === K_TYPED
      ? (typedArrayName.call(v) as string | undefined) ?? ""
      : "";
    if (kind === K_TYPED ? !name : !branded(viewBuffer, v)) {
      throw this.#reject(describe(proto, kind));
    }
    const view = v as ArrayBufferView;
    const buffer = view.buffer;
    const what = name || "DataView";
    if (!(buffer instanceof ArrayBuffer)) {
      throw this.#reject(`${what} over a SharedArrayBuffer`, SHARED_HINT);
    }
    if (isDetached(buffer)) {
      throw this.#reject(`${what} over a detached buffer`);
    }
    const n = view.byteLength;
    if (this.#pos + n + 14 > this.#buf.length) this.#grow(n + 14);
    if (name) {
      this.#buf[this.#pos++] = T_TYPED;
      this.#buf[this.#pos++] = TYPED_KIND.get(name)!;
    } else this.#buf[this.#pos++] = T_VIEW;
    this.#varint(n);
    this.#bulk(new Uint8Array(buffer, view.byteOffset, n));
  }

  #error(e: Error): void {
    const name = e.name;
    const hasMessage = Object.hasOwn(e, "message");
    const message = hasMessage ? String(e.message) : "";
    const stack = Object.hasOwn(e, "stack") ? e.stack : undefined;
    const hasCause = Object.hasOwn(e, "cause");
    this.#buf[this.#pos++] = T_ERROR;
    this.#buf[this.#pos++] = (hasMessage ? E_MESSAGE : 0) |
      (typeof stack === "string" ? E_STACK : 0) | (hasCause ? E_CAUSE : 0);
    this.#string(typeof name === "string" ? name : "Error");
    if (hasMessage) this.#string(message);
    if (typeof stack === "string") this.#string(stack);
    if (hasCause) {
      const d = this.#enter(P_CAUSE);
      this.#value(e.cause);
      this.#depth = d;
    }
  }

  #reject(what: string, hint = ""): DataCloneError {
    const at = formatPath(this.#path, this.#pathKind, this.#depth);
    return new DataCloneError(
      `Cannot post message: ${what} at ${at} could not be cloned${hint}`,
    );
  }
}

const textEncoder = new TextEncoder();
/** `ignoreBOM` keeps a leading U+FEFF as a character instead of eating it. */
const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** UTF-8 of a well-formed string; returns the position after it. */
function utf8Encode(s: string, buf: Uint8Array, pos: number): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) buf[pos++] = c;
    else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c < 0xdc00) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      buf[pos++] = 0xf0 | (c >> 18);
      buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

let overflowMessage: string | undefined;

/** True for V8's own stack overflow, told apart by its exact message. */
function isStackOverflow(e: unknown): boolean {
  if (!(e instanceof RangeError)) return false;
  if (overflowMessage === undefined) {
    const probe = (n: number): number => probe(n + 1) + 1;
    try {
      probe(0);
    } catch (overflow) {
      overflowMessage = (overflow as Error).message;
    }
  }
  return e.message === overflowMessage;
}

/** `ArrayBuffer.prototype.detached`, probed where the host lacks it. */
function isDetached(ab: ArrayBuffer): boolean {
  const detached = (ab as { detached?: boolean }).detached;
  if (detached !== undefined) return detached;
  try {
    new Uint8Array(ab, 0, 0);
    return false;
  } catch {
    return true;
  }
}

function isIndex(key: string): boolean {
  const n = +key;
  return n >= 0 && n < 4294967295 && String(n) === key;
}

/** True when calling a brand-checking getter or method on `v` succeeds. */
function branded(check: (this: never) => unknown, v: object): boolean {
  try {
    (check as (this: unknown) => unknown).call(v);
    return true;
  } catch {
    return false;
  }
}

/** Names a rejected object for the error message. */
function describe(proto: object, kind: number): string {
  const known = UNCLONEABLE.get(proto);
  if (known !== undefined) return known;
  const n = name(proto);
  if (kind !== -1) return `object with ${n}.prototype but no ${n} internals`;
  return n ? `instance of class ${n}` : "object with a custom prototype";
}

function name(proto: object): string {
  try {
    if (!hasOwn(proto, "constructor")) return "";
    const ctor = (proto as { constructor?: unknown }).constructor;
    return typeof ctor === "function" ? ctor.name : "";
  } catch {
    return "";
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
/** Shown in full up to this many segments, else head and tail. */
const PATH_SEGMENTS = 24;

function formatPath(
  path: (string | number)[],
  kinds: number[],
  depth: number,
): string {
  const segment = (d: number): string => {
    const key = path[d];
    switch (kinds[d]) {
      case P_KEY:
        return IDENTIFIER.test(key as string)
          ? `.${key}`
          : `[${JSON.stringify(key)}]`;
      case P_INDEX:
        return `[${key}]`;
      case P_MAP:
        return `.<map ${(key as number) & 1 ? "value" : "key"} ${
          (key as number) >> 1
        }>`;
      case P_SET:
        return `.<set value ${key}>`;
      default:
        return ".cause";
    }
  };
  let out = "value";
  const half = PATH_SEGMENTS >> 1;
  for (let d = 0; d < depth; d++) {
    if (depth > PATH_SEGMENTS && d === half) {
      out += `…(${depth - PATH_SEGMENTS} more)…`;
      d = depth - half;
    }
    out += segment(d);
  }
  return out;
}

/**
 * Decodes one message written by {@linkcode Encoder.encode} into a fresh
 * value graph. `bytes` may be a view over a SharedArrayBuffer at any offset:
 * strings are built and typed arrays, `DataView`s and `ArrayBuffer`s are
 * copied out, so nothing in the result aliases `bytes`.
 *
 * @example
 * ```ts
 * import { decode, Encoder } from "./codec.ts";
 * const encoder = new Encoder();
 * const a = { self: null as unknown };
 * a.self = a;
 * const n = encoder.encode([a, a, -0, new Date(0)]);
 * const shared = new Uint8Array(new SharedArrayBuffer(n + 8), 8, n);
 * shared.set(encoder.bytes.subarray(0, n));
 * const [x, y, zero] = decode(shared) as [typeof a, typeof a, number];
 * if (x !== y || x.self !== x || !Object.is(zero, -0)) throw new Error("bad");
 * ```
 *
 * @param bytes Exactly the bytes of one message.
 * @returns The decoded value.
 * @throws {TypeError} When `bytes` is not a whole message in this format
 *   (`Cannot decode message: …`).
 */
export function decode(bytes: Uint8Array): unknown {
  const reader = idleReader ?? new Reader();
  idleReader = null;
  try {
    return reader.read(bytes);
  } finally {
    reader.clear();
    idleReader = reader;
  }
}

const EMPTY_BYTES = new Uint8Array(0);
/** 8 aligned bytes for float64 and 64-bit BigInt reads. */
const SCRATCH = new Uint8Array(8);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);
const HEX = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);
const fromCharCode = String.fromCharCode;

function malformed(what: string, at: number): TypeError {
  return new TypeError(`Cannot decode message: ${what} at byte ${at}`);
}

/** A pooled reader; `decode` takes a fresh one if it is re-entered. */
let idleReader: Reader | null = null;

class Reader {
  bytes: Uint8Array = EMPTY_BYTES;
  pos = 0;
  end = 0;
  /** Decoded objects by id. */
  refs: unknown[] = [];
  count = 0;
  depth = 0;

  read(bytes: Uint8Array): unknown {
    this.bytes = bytes;
    this.end = bytes.length;
    if (bytes[0] !== VERSION) throw malformed("unknown format version", 0);
    this.pos = 1;
    const value = this.value();
    if (this.pos !== this.end) {
      const what = this.pos < this.end ? "trailing bytes" : "truncated message";
      throw malformed(what, this.pos);
    }
    return value;
  }

  clear(): void {
    this.bytes = EMPTY_BYTES;
    if (this.count > 4096) this.refs.length = 0;
    else for (let i = 0; i < this.count; i++) this.refs[i] = undefined;
    this.count = 0;
    this.depth = 0;
  }

  keep<T>(value: T): T {
    this.refs[this.count++] = value;
    return value;
  }

  enter(): void {
    if (++this.depth > MAX_DEPTH) throw malformed("nesting too deep", this.pos);
  }

  value(): unknown {
    const tag = this.bytes[this.pos++];
    if (tag >= T_SHORT_STR) return this.utf8(tag & 0x7f);
    if (tag <= T_MAX_FIXINT) return tag;
    switch (tag) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_INT32:
        return this.int32();
      case T_FLOAT64:
        return this.float();
      case T_BIGINT:
      case T_BIGINT_NEG:
        return this.bigint(tag === T_BIGINT_NEG);
      case T_STR8:
      case T_STR16:
        return this.string(tag);
      case T_OBJECT:
        return this.record({});
      case T_NULL_OBJECT:
        return this.record(Object.create(null));
      case T_ARRAY:
        return this.array();
      case T_SPARSE:
        return this.sparse();
      case T_MAP:
      case T_SET:
        return this.entries(tag);
      case T_DATE:
        return this.keep(new Date(this.float()));
      case T_REGEXP:
        return this.keep(new RegExp(this.key(), this.key()));
      case T_BUFFER:
        return this.keep(this.take(this.varint()).buffer);
      case T_RESIZABLE:
        return this.keep(this.resizable());
      case T_TYPED:
        return this.keep(this.typed());
      case T_VIEW:
        return this.keep(new DataView(this.take(this.varint()).buffer));
      case T_REF:
        return this.ref();
      case T_BOX_NUMBER:
        return this.keep(Object(this.float()));
      case T_BOX_STRING:
        return this.keep(Object(this.key()));
      case T_BOX_TRUE:
      case T_BOX_FALSE:
        return this.keep(Object(tag === T_BOX_TRUE));
      case T_BOX_BIGINT:
        return this.keep(Object(this.boxedBigint()));
      case T_ERROR:
        return this.error();
      default:
        throw malformed(`unexpected tag ${tag}`, this.pos - 1);
    }
  }

  varint(): number {
    const b = this.bytes;
    let byte = b[this.pos++];
    if (byte < 0x80) return byte;
    let n = byte & 0x7f;
    let scale = 128;
    do {
      byte = b[this.pos++];
      n += (byte & 0x7f) * scale;
      scale *= 128;
    } while (byte >= 0x80);
    return n;
  }

  int32(): number {
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 4;
    return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
  }

  u32(): number {
    return this.int32() >>> 0;
  }

  float(): number {
    const b = this.bytes;
    const p = this.pos;
    if (p + 8 > this.end) throw malformed("truncated number", p);
    SCRATCH[0] = b[p];
    SCRATCH[1] = b[p + 1];
    SCRATCH[2] = b[p + 2];
    SCRATCH[3] = b[p + 3];
    SCRATCH[4] = b[p + 4];
    SCRATCH[5] = b[p + 5];
    SCRATCH[6] = b[p + 6];
    SCRATCH[7] = b[p + 7];
    this.pos = p + 8;
    return SCRATCH_VIEW.getFloat64(0, true);
  }

  /** Advances over `n` bytes and returns the index of the first. */
  skip(n: number): number {
    const p = this.pos;
    if (p + n > this.end) throw malformed("truncated value", p);
    this.pos = p + n;
    return p;
  }

  /** A copy of the next `n` bulk bytes (8-aligned), never aliasing. */
  take(n: number): Uint8Array<ArrayBuffer> {
    const p = (this.pos + 7) & ~7;
    if (p + n > this.end) throw malformed("truncated bytes", this.pos);
    this.pos = p + n;
    return this.bytes.slice(p, p + n);
  }

  bigint(negative: boolean): bigint {
    const n = this.varint();
    const b = this.bytes;
    const p = this.skip(n);
    let magnitude: bigint;
    if (n <= 8) {
      SCRATCH.fill(0);
      for (let i = 0; i < n; i++) SCRATCH[i] = b[p + i];
      magnitude = SCRATCH_VIEW.getBigUint64(0, true);
    } else {
      let hex = "0x";
      for (let i = p + n - 1; i >= p; i--) hex += HEX[b[i]];
      magnitude = BigInt(hex);
    }
    return negative ? -magnitude : magnitude;
  }

  boxedBigint(): bigint {
    const tag = this.bytes[this.pos++];
    if (tag !== T_BIGINT && tag !== T_BIGINT_NEG) {
      throw malformed("BigInt object without a BigInt", this.pos - 1);
    }
    return this.bigint(tag === T_BIGINT_NEG);
  }

  /** A string in a key position (object keys, RegExp parts, Error fields). */
  key(): string {
    const tag = this.bytes[this.pos++];
    if (tag >= T_SHORT_STR) return this.utf8(tag & 0x7f);
    return this.string(tag);
  }

  string(tag: number): string {
    if (tag === T_STR8) return this.utf8(this.u32());
    if (tag === T_STR16) return this.utf16(this.u32());
    throw malformed("expected a string", this.pos - 1);
  }

  utf8(n: number): string {
    const b = this.bytes;
    const p = this.skip(n);
    const end = p + n;
    if (n <= CACHED_STRING) {
      if (n === 0) return "";
      // Hash three bytes and the length: O(1), and the compare below
      // verifies every byte anyway.
      const slot = Math.imul(
        (n << 24) ^ (b[p] << 16) ^ (b[p + (n >>> 1)] << 8) ^ b[end - 1],
        0x9e3779b1,
      ) >>> (32 - STRING_CACHE_BITS);
      const at = slot * CACHED_STRING;
      if (CACHE_LENGTHS[slot] === n) {
        let i = 0;
        while (i < n && CACHE_BYTES[at + i] === b[p + i]) i++;
        if (i === n) return STRING_CACHE[slot];
      }
      CACHE_LENGTHS[slot] = 0;
      for (let i = 0; i < n; i++) {
        const c = b[p + i];
        if (c >= 0x80) return utf8Decode(b, p, end);
        CACHE_BYTES[at + i] = c;
      }
      CACHE_LENGTHS[slot] = n;
      return (STRING_CACHE[slot] = asciiDecode(b, p, end));
    }
    if (n <= SHORT_STRING) {
      for (let i = p; i < end; i++) {
        if (b[i] >= 0x80) return utf8Decode(b, p, end);
      }
      return asciiDecode(b, p, end);
    }
    return textDecoder.decode(b.subarray(p, end));
  }

  utf16(n: number): string {
    const b = this.bytes;
    const p = this.skip(2 * n);
    const units: number[] = [];
    let s = "";
    for (let i = p, end = p + 2 * n; i < end;) {
      units.length = 0;
      for (const stop = Math.min(end, i + 8192); i < stop; i += 2) {
        units.push(b[i] | (b[i + 1] << 8));
      }
      s += fromCharCode.apply(null, units);
    }
    return s;
  }

  record(o: Record<string, unknown>): object {
    this.keep(o);
    this.enter();
    const b = this.bytes;
    while (b[this.pos] !== T_END) {
      const key = this.key();
      const value = this.value();
      if (key === "__proto__") define(o, key, value, true);
      else o[key] = value;
    }
    this.pos++;
    this.depth--;
    return o;
  }

  array(): unknown[] {
    const n = this.varint();
    const a: unknown[] = [];
    this.keep(a);
    this.enter();
    const b = this.bytes;
    for (let i = 0; i < n; i++) {
      if (b[this.pos] === T_HOLE) {
        this.pos++;
        a.length = i + 1;
      } else a[i] = this.value();
    }
    this.depth--;
    return a;
  }

  sparse(): unknown[] {
    const length = this.varint();
    const n = this.varint();
    const a: unknown[] = [];
    a.length = length;
    this.keep(a);
    this.enter();
    for (let i = 0; i < n; i++) {
      const index = this.varint();
      if (index >= length) throw malformed("index out of range", this.pos);
      a[index] = this.value();
    }
    this.depth--;
    return a;
  }

  entries(tag: number): Map<unknown, unknown> | Set<unknown> {
    const b = this.bytes;
    this.enter();
    if (tag === T_MAP) {
      const map = this.keep(new Map<unknown, unknown>());
      while (b[this.pos] !== T_END) map.set(this.value(), this.value());
      this.pos++;
      this.depth--;
      return map;
    }
    const set = this.keep(new Set<unknown>());
    while (b[this.pos] !== T_END) set.add(this.value());
    this.pos++;
    this.depth--;
    return set;
  }

  resizable(): ArrayBuffer {
    const n = this.varint();
    const max = this.varint();
    if (max < n) throw malformed("maxByteLength below byteLength", this.pos);
    const buffer = new ArrayBuffer(n, { maxByteLength: max });
    new Uint8Array(buffer).set(this.take(n));
    return buffer;
  }

  typed(): ArrayBufferView {
    const kind = this.bytes[this.pos++];
    const ctor = TYPED[kind];
    if (ctor === undefined) {
      throw malformed(`typed array kind ${kind} not available`, this.pos - 1);
    }
    const n = this.varint();
    if (n % ctor.BYTES_PER_ELEMENT !== 0) {
      throw malformed("typed array length not a whole element", this.pos);
    }
    const copy = this.take(n);
    return ctor === Uint8Array ? copy : new ctor(copy.buffer);
  }

  ref(): unknown {
    const id = this.varint();
    if (id >= this.count) throw malformed("unknown back-reference", this.pos);
    return this.refs[id];
  }

  error(): Error {
    const flags = this.bytes[this.pos++];
    const name = this.key();
    const message = flags & E_MESSAGE ? this.key() : undefined;
    const stack = flags & E_STACK ? this.key() : undefined;
    const ctor = hasOwn(ERRORS, name) ? ERRORS[name] : Error;
    const e = this.keep(new ctor());
    if (name !== ctor.prototype.name) define(e, "name", name);
    if (message !== undefined) define(e, "message", message);
    if (stack !== undefined) define(e, "stack", stack);
    else delete e.stack;
    if (flags & E_CAUSE) {
      this.enter();
      define(e, "cause", this.value());
      this.depth--;
    }
    return e;
  }
}

function define(
  o: object,
  key: string,
  value: unknown,
  enumerable = false,
): void {
  Object.defineProperty(o, key, {
    value,
    writable: true,
    enumerable,
    configurable: true,
  });
}

/**
 * Builds a string from ASCII bytes with as few `fromCharCode` calls as
 * possible: eight codes a call, then one call for the rest.
 */
function asciiDecode(b: Uint8Array, p: number, end: number): string {
  let s = "";
  for (; end - p >= 8; p += 8) {
    s += fromCharCode(
      b[p],
      b[p + 1],
      b[p + 2],
      b[p + 3],
      b[p + 4],
      b[p + 5],
      b[p + 6],
      b[p + 7],
    );
  }
  switch (end - p) {
    case 0:
      return s;
    case 1:
      return s + fromCharCode(b[p]);
    case 2:
      return s + fromCharCode(b[p], b[p + 1]);
    case 3:
      return s + fromCharCode(b[p], b[p + 1], b[p + 2]);
    case 4:
      return s + fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3]);
    case 5:
      return s + fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4]);
    case 6:
      return s +
        fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5]);
    default:
      return s + fromCharCode(
        b[p],
        b[p + 1],
        b[p + 2],
        b[p + 3],
        b[p + 4],
        b[p + 5],
        b[p + 6],
      );
  }
}

/** Decodes short UTF-8 without the `TextDecoder` call cost. */
function utf8Decode(b: Uint8Array, p: number, end: number): string {
  let s = "";
  while (p < end) {
    const c = b[p++];
    if (c < 0x80) s += fromCharCode(c);
    else if (c < 0xe0) s += fromCharCode(((c & 0x1f) << 6) | (b[p++] & 0x3f));
    else if (c < 0xf0) {
      s += fromCharCode(
        ((c & 0x0f) << 12) | ((b[p++] & 0x3f) << 6) | (b[p++] & 0x3f),
      );
    } else {
      const u = (((c & 0x07) << 18) | ((b[p++] & 0x3f) << 12) |
        ((b[p++] & 0x3f) << 6) | (b[p++] & 0x3f)) - 0x10000;
      s += fromCharCode(0xd800 + (u >> 10), 0xdc00 + (u & 0x3ff));
    }
  }
  return s;
}
