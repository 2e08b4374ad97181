/**
 * The vocabulary both halves of the codec share: the format version, the tag
 * bytes, the Error body flags, the typed array kind table, the error
 * constructors and the limits that must agree on both sides. The tags are
 * described by the wire format table in `codec.ts`, which is the contract;
 * `codec_encode.ts` writes it and `codec_decode.ts` reads it.
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

/** The first byte of every message: the wire format version. */
export const VERSION = 1;

/** Tags `0x00`-`0x3f` are the integers 0-63 themselves. */
export const T_MAX_FIXINT = 0x3f;
/** `undefined`. */
export const T_UNDEFINED = 0x40;
/** `null`. */
export const T_NULL = 0x41;
/** `false`. */
export const T_FALSE = 0x42;
/** `true`. */
export const T_TRUE = 0x43;
/** An int32 number: 4 bytes. */
export const T_INT32 = 0x44;
/** Any other number: float64, 8 bytes. */
export const T_FLOAT64 = 0x45;
/** A BigInt >= 0: varint n, n magnitude bytes. */
export const T_BIGINT = 0x46;
/** A BigInt < 0: varint n, n magnitude bytes. */
export const T_BIGINT_NEG = 0x47;
/** A UTF-8 string: u32 byte length, bytes. */
export const T_STR8 = 0x48;
/** A UTF-16 string (lone surrogates): u32 code units, 2 bytes each. */
export const T_STR16 = 0x49;
/** A plain object: (string key, value)*, then {@linkcode T_END}. */
export const T_OBJECT = 0x4a;
/** A null-prototype object: (string key, value)*, then {@linkcode T_END}. */
export const T_NULL_OBJECT = 0x4b;
/** An array: varint length, length × (value or {@linkcode T_HOLE}). */
export const T_ARRAY = 0x4c;
/** A sparse array: varint length, varint n, n × (varint index, value). */
export const T_SPARSE = 0x4d;
/** A missing array element (array elements only). */
export const T_HOLE = 0x4e;
/** A Map: (key, value)*, then {@linkcode T_END}. */
export const T_MAP = 0x4f;
/** A Set: value*, then {@linkcode T_END}. */
export const T_SET = 0x50;
/** Closes an object, Map or Set. */
export const T_END = 0x51;
/** A Date: float64 time value. */
export const T_DATE = 0x52;
/** A RegExp: source string, flags string. */
export const T_REGEXP = 0x53;
/** An ArrayBuffer: varint n, bulk bytes. */
export const T_BUFFER = 0x54;
/** A resizable ArrayBuffer: varint n, varint max, bulk bytes. */
export const T_RESIZABLE = 0x55;
/** A typed array: kind byte ({@linkcode TYPED}), varint n, bulk bytes. */
export const T_TYPED = 0x56;
/** A DataView: varint n, bulk bytes. */
export const T_VIEW = 0x57;
/** An object written before: varint object id. */
export const T_REF = 0x58;
/** A Number object: float64. */
export const T_BOX_NUMBER = 0x59;
/** A String object: a string value. */
export const T_BOX_STRING = 0x5a;
/** A Boolean object holding `true`. */
export const T_BOX_TRUE = 0x5b;
/** A Boolean object holding `false`. */
export const T_BOX_FALSE = 0x5c;
/** A BigInt object: a BigInt value. */
export const T_BOX_BIGINT = 0x5d;
/** An Error: flags, name, [message], [stack], [cause]. */
export const T_ERROR = 0x5e;
/** Tags `0x80`-`0xff`: a UTF-8 string of `tag & 0x7f` bytes. */
export const T_SHORT_STR = 0x80;

/** Error body flag: a message string follows the name. */
export const E_MESSAGE = 1;
/** Error body flag: a stack string follows. */
export const E_STACK = 2;
/** Error body flag: a cause value ends the body. */
export const E_CAUSE = 4;

/**
 * Strings up to this many UTF-16 units are written by a char-code loop, and
 * up to this many bytes read by `fromCharCode` in batches of 8; longer ones
 * go through `TextEncoder.encodeInto` / `TextDecoder`, whose fixed cost
 * (measured on the 2-vCPU dev VM: ~100 ns to encode and ~150-270 ns to
 * decode 8-64 ASCII bytes, ~50-90 ns for the batched `fromCharCode`) only
 * pays off beyond it.
 */
export const SHORT_STRING = 64;

/**
 * Bulk bytes (buffers and views) start at a multiple of this many bytes from
 * the message start; see `#bulk` in `codec_encode.ts` for why.
 */
export const BULK_ALIGN = 8;

/**
 * The per-message object tables (the encoder's seen objects, the decoder's
 * refs) are cleared slot by slot up to this many entries and reused; past it
 * they are dropped, so one huge message does not keep a huge array alive.
 */
export const TABLE_REUSE_LIMIT = 4096;

/** A typed array constructor, as the codec uses it. */
export interface Ctor {
  /** Views the whole of `buffer`. */
  new (buffer: ArrayBuffer): ArrayBufferView;
  /** Element size in bytes. */
  readonly BYTES_PER_ELEMENT: number;
  /** Its prototype, for recognising instances. */
  readonly prototype: object;
  /** Its name, as `Symbol.toStringTag` reports it for instances. */
  readonly name: string;
}

const g = globalThis as unknown as Record<string, Ctor | undefined>;
/**
 * Typed array constructors by wire kind byte (the index); absent ones
 * (`Float16Array` on older hosts) stay undefined. Append only: the index is
 * on the wire.
 */
export const TYPED: (Ctor | undefined)[] = [
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

/** The error constructors structured clone knows, by name. */
export const ERRORS: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};
