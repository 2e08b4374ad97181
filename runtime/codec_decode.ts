/**
 * The reading half of the codec: {@linkcode decode} rebuilds a fresh value
 * graph from one message in the wire format described in `codec.ts`. It
 * trusts nothing: a message that is cut short, has trailing bytes, an
 * unknown tag or a bad back-reference is rejected with a `TypeError`. Tags
 * and shared limits come from `codec_wire.ts`.
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

const hasOwn = Object.hasOwn;
/** `ignoreBOM` keeps a leading U+FEFF as a character instead of eating it. */
const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

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
    if (this.count > TABLE_REUSE_LIMIT) this.refs.length = 0;
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

  /** A copy of the next `n` bulk bytes (aligned), never aliasing. */
  take(n: number): Uint8Array<ArrayBuffer> {
    const p = (this.pos + BULK_ALIGN - 1) & -BULK_ALIGN;
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
