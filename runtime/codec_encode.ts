/**
 * The writing half of the codec: {@linkcode Encoder} turns a value graph into
 * the wire format described in `codec.ts`, and {@linkcode DataCloneError}
 * reports what cannot be sent, with a path to it. The supported and rejected
 * values, and the deliberate differences from structured clone, are listed
 * in `codec.ts`; tags and shared limits come from `codec_wire.ts`.
 *
 * @module
 */

import {
  BULK_ALIGN,
  E_CAUSE,
  E_MESSAGE,
  E_STACK,
  ERRORS,
  MAX_DEPTH,
  SHORT_STRING,
  T_ARRAY,
  T_BIGINT,
  T_BIGINT_NEG,
  T_BOX_BIGINT,
  T_BOX_FALSE,
  T_BOX_NUMBER,
  T_BOX_STRING,
  T_BOX_TRUE,
  T_BUFFER,
  T_DATE,
  T_END,
  T_ERROR,
  T_FALSE,
  T_FLOAT64,
  T_HOLE,
  T_INT32,
  T_MAP,
  T_MAX_FIXINT,
  T_NULL,
  T_NULL_OBJECT,
  T_OBJECT,
  T_REF,
  T_REGEXP,
  T_RESIZABLE,
  T_SET,
  T_SHORT_STR,
  T_SPARSE,
  T_STR16,
  T_STR8,
  T_TRUE,
  T_TYPED,
  T_UNDEFINED,
  T_VIEW,
  TABLE_REUSE_LIMIT,
  TYPED,
  VERSION,
} from "./codec_wire.ts";

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

type Getter = (this: unknown) => unknown;

/** Wire kind byte by typed array name. */
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
    if (this.#count > TABLE_REUSE_LIMIT) seen.length = 0;
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
   * Copies bulk bytes to the next offset that is a multiple of
   * {@linkcode BULK_ALIGN} (8): V8 copies out of a SharedArrayBuffer word by
   * word from an aligned address and byte by byte otherwise (4 KiB: ~0.5 µs
   * against ~1.5 µs on the dev VM), and queue payloads start 8-aligned.
   */
  #bulk(src: Uint8Array): void {
    const buf = this.#buf;
    let pos = this.#pos;
    while (pos & (BULK_ALIGN - 1)) buf[pos++] = 0;
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
export function isDetached(ab: ArrayBuffer): boolean {
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
