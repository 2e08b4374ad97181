/**
 * Payloads for `tests/port_test.ts`, built the same way on both sides: the
 * producer (a worker, or the loop's own thread) posts a fresh catalogue and
 * the loop compares each delivered value with another fresh one. Also the
 * task and control words the test shares with `port_producer.ts` (which
 * cannot be imported from the test: it starts running when loaded).
 * Nothing here touches the runtime, so a worker can import it cheaply.
 *
 * @module
 */

export { rng as prng } from "../rng.ts";

/** A value to post, and what the loop should receive when it differs. */
export interface PayloadCase {
  /** What the case covers; unique. */
  name: string;
  /** How `messages.ts` sends it: the item tag's kind. */
  kind: "int" | "float" | "const" | "bytes" | "string" | "value";
  /** The value to post. */
  value: unknown;
  /** What arrives, when that is not a deep copy of `value`. */
  expect?: unknown;
}

function pattern(n: number, salt: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + salt) & 255;
  return b;
}

/** A `Uint8Array` subclass: arrives as a plain `Uint8Array`. */
class Bytes extends Uint8Array {}

/** Number cases: int32 values take `MSG_INT`, every other number `MSG_FLOAT`. */
function numbers(): PayloadCase[] {
  const ints = [0, 1, -1, 42, 2 ** 31 - 1, -(2 ** 31)];
  const floats = [
    -0,
    NaN,
    Infinity,
    -Infinity,
    2 ** 31,
    -(2 ** 31) - 1,
    0.1,
    -1.5,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    Number.EPSILON,
    Number.MAX_SAFE_INTEGER,
    2 ** 53 + 2,
  ];
  return [
    ...ints.map((v): PayloadCase => ({
      name: `int ${v}`,
      kind: "int",
      value: v,
    })),
    ...floats.map((v): PayloadCase => ({
      name: `float ${Object.is(v, -0) ? "-0" : v}`,
      kind: "float",
      value: v,
    })),
  ];
}

/**
 * String cases. Well-formed strings travel as UTF-8 (`MSG_STRING`); strings
 * with lone surrogates go through the codec as UTF-16 code units and come
 * back exactly, not as U+FFFD (what a `TextEncoder` round trip would give).
 */
function strings(): PayloadCase[] {
  const s = (name: string, value: string): PayloadCase => ({
    name: `string ${name}`,
    kind: value.isWellFormed() ? "string" : "value",
    value,
  });
  return [
    s("empty", ""),
    s("one ASCII char", "a"),
    s("ASCII", "hello, twloop"),
    s("long ASCII", "abcdefghij".repeat(100)),
    s("NUL", "a\0b"),
    s("2-byte UTF-8", "é"),
    s("3-byte UTF-8", "€"),
    s("4-byte UTF-8 (surrogate pair)", "𝄞"),
    s("mixed scripts", "naïve café 日本語 🎉 Ωμέγα"),
    s("leading BOM kept", "\uFEFFbom"),
    s("lone high surrogate", "\uD800"),
    s("lone low surrogate", "\uDFFF"),
    s("lone surrogate inside ASCII", "a\uD800b"),
    s("reversed pair", "\uDC00\uD800"),
    s("pair then lone high", "𝄞\uD834"),
    s("long with one lone surrogate", "x".repeat(300) + "\uDBFF"),
  ];
}

/**
 * Byte cases. Exactly a `Uint8Array` takes `MSG_BYTES` (copied once into
 * the port's storage); every other buffer or view goes through the codec and
 * arrives as a fresh copy of only the bytes it viewed.
 */
function bytes(): PayloadCase[] {
  const pool = pattern(32, 5);
  const sab = new Uint8Array(new SharedArrayBuffer(6)).fill(7);
  const resizable = new ArrayBuffer(4, { maxByteLength: 16 });
  new Uint8Array(resizable).set([1, 2, 3, 4]);
  const dv = new DataView(new ArrayBuffer(6));
  dv.setInt16(0, -2, true);
  dv.setFloat32(2, 1.5, true);
  return [
    { name: "Uint8Array empty", kind: "bytes", value: new Uint8Array(0) },
    {
      name: "Uint8Array small",
      kind: "bytes",
      value: new Uint8Array([0, 1, 127, 128, 255]),
    },
    { name: "Uint8Array 300 bytes", kind: "bytes", value: pattern(300, 1) },
    {
      name: "Uint8Array view at an offset",
      kind: "bytes",
      value: pool.subarray(3, 20),
      expect: pool.slice(3, 20),
    },
    {
      name: "Uint8Array over a SharedArrayBuffer (copied)",
      kind: "bytes",
      value: sab,
      expect: new Uint8Array(6).fill(7),
    },
    {
      name: "Uint8Array subclass",
      kind: "value",
      value: Bytes.from([9, 8, 7]),
      expect: new Uint8Array([9, 8, 7]),
    },
    {
      name: "ArrayBuffer",
      kind: "value",
      value: pattern(13, 2).buffer,
    },
    { name: "ArrayBuffer empty", kind: "value", value: new ArrayBuffer(0) },
    { name: "ArrayBuffer resizable", kind: "value", value: resizable },
    {
      name: "Uint8ClampedArray",
      kind: "value",
      value: new Uint8ClampedArray([0, 200, 255]),
    },
    { name: "Int8Array", kind: "value", value: new Int8Array([-128, 0, 127]) },
    {
      name: "Uint16Array",
      kind: "value",
      value: new Uint16Array([0, 65535, 258]),
    },
    {
      name: "Int16Array view at an offset",
      kind: "value",
      value: new Int16Array([9, -1, 2, -3]).subarray(1),
      expect: new Int16Array([-1, 2, -3]),
    },
    {
      name: "Int32Array",
      kind: "value",
      value: new Int32Array([2 ** 31 - 1, -(2 ** 31), 0]),
    },
    {
      name: "Float32Array",
      kind: "value",
      value: new Float32Array([1.5, -0, Infinity]),
    },
    {
      name: "Float64Array",
      kind: "value",
      value: new Float64Array([NaN, -0, Number.MIN_VALUE]),
    },
    {
      name: "BigInt64Array",
      kind: "value",
      value: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    },
    {
      name: "BigUint64Array",
      kind: "value",
      value: new BigUint64Array([2n ** 64n - 1n, 0n]),
    },
    { name: "DataView", kind: "value", value: dv },
  ];
}

/** Structured values: everything goes through the codec (`MSG_VALUE`). */
function structured(): PayloadCase[] {
  const holes = [1, , 3, ,]; // length 4, holes at 1 and 3
  const sparse: unknown[] = [];
  sparse[2] = "two";
  sparse[900] = { at: 900 };
  sparse.length = 1000;
  const nullProto = Object.assign(Object.create(null), { a: 1, b: [2] });
  const sticky = /a+b/gy;
  sticky.lastIndex = 5;
  const self: Record<string, unknown> = { name: "self" };
  self.me = self;
  const shared = { shared: true };
  const ring: unknown[] = ["ring"];
  ring.push(ring);
  const map = new Map<unknown, unknown>([["k", 1]]);
  map.set(map, map);
  const set = new Set<unknown>([1]);
  set.add(set);
  const v = (name: string, value: unknown, expect?: unknown): PayloadCase => ({
    name,
    kind: "value",
    value,
    ...(expect === undefined ? {} : { expect }),
  });
  return [
    { name: "undefined", kind: "const", value: undefined },
    { name: "null", kind: "const", value: null },
    { name: "true", kind: "const", value: true },
    { name: "false", kind: "const", value: false },
    v("BigInt 0", 0n),
    v("BigInt -1", -1n),
    v("BigInt 2^100", 2n ** 100n),
    v("BigInt -(2^70)", -(2n ** 70n)),
    v("array of primitives", [0, -0, NaN, "s", true, null, undefined, 7n]),
    v("array with holes", holes),
    v("sparse array", sparse),
    v("empty array and object", [[], {}]),
    v("plain object", { a: 1, "key with spaces": "v", "日本": [1, 2] }),
    v("null-prototype object", nullProto),
    v(
      "Map",
      new Map<unknown, unknown>([[1, "one"], ["two", 2], [{ k: 1 }, [3]]]),
    ),
    v("Set", new Set<unknown>([1, "1", 2n, null])),
    v("Date", new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789))),
    v("invalid Date", new Date(NaN)),
    v("RegExp", /a+\/b[c-z]?/giu),
    v("RegExp lastIndex resets to 0", sticky, /a+b/gy),
    v("boxed primitives", [
      new Number(-0),
      new String("s"),
      new Boolean(false),
    ]),
    v(
      "Error with cause",
      new RangeError("out of range", { cause: { code: 7 } }),
    ),
    v("nested graph", {
      users: [{ id: 1, tags: new Set(["a"]) }, { id: 2, seen: new Date(0) }],
      index: new Map([["by-id", new Map([[1, 0]])]]),
      blob: new Float64Array([1, 2]),
      deep: { a: { b: { c: { d: { e: "bottom" } } } } },
    }),
    v("cyclic object", self),
    v("shared reference", { left: shared, right: shared }),
    v("cyclic array", ring),
    v("cyclic Map", map),
    v("cyclic Set", set),
  ];
}

/**
 * Every payload kind, in a fixed order: the sequence numbers of a producer
 * are the indices.
 *
 * @returns Fresh values each call.
 */
export function payloadCases(): PayloadCase[] {
  return [...numbers(), ...strings(), ...bytes(), ...structured()];
}

/** A class whose instances cannot be cloned. */
class Point {
  x = 1;
  y = 2;
}

/**
 * Values `post` must refuse with `DataCloneError`, before queuing anything.
 *
 * @returns Fresh values each call.
 */
export function nonCloneableCases(): { name: string; value: unknown }[] {
  const detached = new ArrayBuffer(8);
  const detachedView = new Uint8Array(detached);
  structuredClone(detached, { transfer: [detached] });
  return [
    { name: "arrow function", value: () => 1 },
    { name: "class", value: Point },
    { name: "symbol", value: Symbol("s") },
    { name: "class instance", value: new Point() },
    { name: "Array subclass", value: new (class List extends Array {})() },
    { name: "function nested in an object", value: { a: { b: () => 0 } } },
    { name: "symbol in an array", value: [1, Symbol.iterator] },
    { name: "function as a Map value", value: new Map([[1, () => 0]]) },
    { name: "WeakMap", value: new WeakMap() },
    { name: "WeakSet", value: new WeakSet() },
    { name: "WeakRef", value: new WeakRef({}) },
    { name: "Promise", value: Promise.resolve(1) },
    { name: "SharedArrayBuffer", value: new SharedArrayBuffer(8) },
    {
      name: "Int32Array over a SharedArrayBuffer",
      value: new Int32Array(new SharedArrayBuffer(8)),
    },
    { name: "detached ArrayBuffer", value: detached },
    { name: "Uint8Array over a detached buffer", value: detachedView },
    { name: "borrowed Date prototype", value: Object.create(Date.prototype) },
  ];
}

/**
 * Message `seq` of producer `id` in a seeded stream of mixed kinds. Every
 * kind carries both numbers, so the loop can check per-producer order.
 *
 * @param id Producer id (0 to 2000).
 * @param seq Sequence number (0 to 999 999).
 * @param random The producer's seeded PRNG; advanced the same on both sides.
 * @returns The message.
 */
export function streamMessage(
  id: number,
  seq: number,
  random: () => number,
): unknown {
  const kind = Math.floor(random() * 6);
  const extra = Math.floor(random() * 40);
  switch (kind) {
    case 0:
      return id * 1_000_000 + seq;
    case 1:
      return id * 1_000_000 + seq + 0.25;
    case 2:
      return `${id}:${seq}:` + "é€𝄞".repeat(extra % 9);
    case 3: {
      const b = pattern(3 + extra, seq);
      b[0] = id;
      b[1] = seq & 255;
      b[2] = seq >> 8;
      return b;
    }
    case 4:
      return { id, seq, at: new Date(seq), tags: new Set([id, seq]) };
    default:
      return [id, seq, , "x".repeat(extra)];
  }
}

/** How a producer posts a stream message. */
export type PostMethod = "post" | "tryPost" | "postAsync";

/**
 * The method for one stream message, from the same PRNG.
 *
 * @param random The producer's PRNG.
 * @returns Which port method to use.
 */
export function streamMethod(random: () => number): PostMethod {
  const r = random();
  return r < 0.5 ? "post" : r < 0.75 ? "tryPost" : "postAsync";
}

/** Control word: the backpressure phase the worker reached. */
export const C_PHASE = 0;
/** Control word: messages the loop delivered (the loop writes it). */
export const C_DELIVERED = 1;
/** Control word: the last arming the test saw asleep (the test writes it). */
export const C_ARMED = 2;
/** Control words: wake observations, 1 when as expected, 2 when not. */
export const C_LAZY_KEPT_ASLEEP = 3;
/** Second lazy observation (after the eager rounds). */
export const C_LAZY_KEPT_ASLEEP_2 = 4;
/** Words in the control buffer. */
export const C_WORDS = 8;

/**
 * Backpressure phase: the port is full, the refusals were checked, and the
 * worker is about to block in `post`.
 */
export const PHASE_BLOCKING = 1;
/** Backpressure phase: every message posted. */
export const PHASE_POSTED = 2;

/** What the worker is asked to do. */
export interface ProducerTask {
  mode: "catalogue" | "stream" | "backpressure" | "wake";
  /** Stream: producer id and seed. */
  id?: number;
  seed?: number;
  /** Stream and backpressure: messages to post. */
  count?: number;
  /** Backpressure: messages that fill the port. */
  fill?: number;
  /** Backpressure and wake: control words. */
  ctrl?: SharedArrayBuffer;
  /** Wake: the loop's queue buffer and its `minEvents`. */
  buffer?: SharedArrayBuffer;
  minEvents?: number;
}
