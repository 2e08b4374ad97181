import assert from "node:assert/strict";
import {
  DataCloneError,
  decode,
  Encoder,
  MAX_DEPTH,
} from "../runtime/codec.ts";

const encoder = new Encoder(64);

/** Encodes, copies the message into shared memory at `offset`, decodes. */
function roundTrip<T>(value: T, offset = 8): T {
  const n = encoder.encode(value);
  const shared = new Uint8Array(new SharedArrayBuffer(n + offset + 8));
  shared.set(encoder.bytes.subarray(0, n), offset);
  return decode(shared.subarray(offset, offset + n)) as T;
}

function units(s: string): number[] {
  return Array.from({ length: s.length }, (_, i) => s.charCodeAt(i));
}

/**
 * Asserts that `b` is a faithful copy of `a`: same kinds, prototypes, keys in
 * order, holes, values (`Object.is`), and the same sharing structure (a
 * bijection between the objects of both graphs, so cycles compare).
 */
function assertIsomorphic(a: unknown, b: unknown, path = "value"): void {
  const aToB = new Map<object, object>();
  const bToA = new Map<object, object>();
  const visit = (x: unknown, y: unknown, at: string): void => {
    if (typeof x !== "object" || x === null) {
      if (!Object.is(x, y)) {
        assert.fail(`${at}: ${String(x)} !== ${String(y)}`);
      }
      return;
    }
    assert.ok(typeof y === "object" && y !== null, `${at}: not an object`);
    if (aToB.has(x) || bToA.has(y)) {
      assert.ok(aToB.get(x) === y && bToA.get(y) === x, `${at}: sharing`);
      return;
    }
    aToB.set(x, y);
    bToA.set(y, x);
    const proto = Object.getPrototypeOf(x);
    assert.equal(Object.getPrototypeOf(y), proto, `${at}: prototype`);
    if (Array.isArray(x)) {
      const ya = y as unknown[];
      assert.equal(ya.length, x.length, `${at}: length`);
      const keys = Object.keys(x);
      assert.deepEqual(Object.keys(ya), keys, `${at}: indices`);
      for (const k of keys) visit(x[+k], ya[+k], `${at}[${k}]`);
    } else if (x instanceof Map) {
      const ye = [...(y as Map<unknown, unknown>)];
      const xe = [...x];
      assert.equal(ye.length, xe.length, `${at}: size`);
      xe.forEach(([k, v], i) => {
        visit(k, ye[i][0], `${at}<key ${i}>`);
        visit(v, ye[i][1], `${at}<value ${i}>`);
      });
    } else if (x instanceof Set) {
      const ye = [...(y as Set<unknown>)];
      const xe = [...x];
      assert.equal(ye.length, xe.length, `${at}: size`);
      xe.forEach((v, i) => visit(v, ye[i], `${at}<${i}>`));
    } else if (x instanceof Date) {
      assert.ok(Object.is(x.getTime(), (y as Date).getTime()), `${at}: time`);
    } else if (x instanceof RegExp) {
      assert.equal((y as RegExp).source, x.source, `${at}: source`);
      assert.equal((y as RegExp).flags, x.flags, `${at}: flags`);
    } else if (x instanceof ArrayBuffer) {
      assert.deepEqual(new Uint8Array(y as ArrayBuffer), new Uint8Array(x));
    } else if (ArrayBuffer.isView(x)) {
      const yv = y as ArrayBufferView;
      assert.equal(yv.byteLength, x.byteLength, `${at}: byteLength`);
      const bytes = (v: ArrayBufferView) =>
        new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      assert.deepEqual(bytes(yv), bytes(x), `${at}: bytes`);
    } else if (x instanceof Error) {
      const ye = y as Error;
      assert.equal(ye.name, x.name, `${at}: name`);
      assert.equal(ye.message, x.message, `${at}: message`);
      assert.equal(ye.stack, x.stack, `${at}: stack`);
      assert.equal(Object.hasOwn(ye, "cause"), Object.hasOwn(x, "cause"));
      if (Object.hasOwn(x, "cause")) visit(x.cause, ye.cause, `${at}.cause`);
    } else if (
      x instanceof Number || x instanceof String || x instanceof Boolean ||
      x instanceof BigInt
    ) {
      assert.ok(
        Object.is(x.valueOf(), (y as { valueOf(): unknown }).valueOf()),
        at,
      );
    } else {
      const keys = Object.keys(x);
      assert.deepEqual(Object.keys(y), keys, `${at}: keys`);
      for (const k of keys) {
        visit(
          (x as Record<string, unknown>)[k],
          (y as Record<string, unknown>)[k],
          `${at}.${k}`,
        );
      }
    }
  };
  visit(a, b, path);
}

function assertRejects(value: unknown, message: RegExp): void {
  assert.throws(() => encoder.encode(value), (e: unknown) => {
    assert.ok(e instanceof DataCloneError, `not a DataCloneError: ${e}`);
    assert.equal(e.name, "DataCloneError");
    assert.match(e.message, /^Cannot post message: .* could not be cloned/);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("primitives round-trip with Object.is identity", () => {
  const values = [
    undefined,
    null,
    true,
    false,
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
    1,
    -1,
    63,
    64,
    127,
    255,
    256,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    0.1,
    -1.5e-300,
    1712345678901,
  ];
  for (const v of values) {
    assert.ok(Object.is(roundTrip(v), v), `${String(v)}`);
  }
});

Deno.test("small integers take one byte and int32 takes five", () => {
  assert.equal(encoder.encode(5), 2);
  assert.equal(encoder.encode(-5), 6);
  assert.equal(encoder.encode(2 ** 31 - 1), 6);
  assert.equal(encoder.encode(-0), 10);
  assert.equal(encoder.encode(0.5), 10);
});

Deno.test("BigInt of any size and sign round-trips", () => {
  const values = [
    0n,
    1n,
    -1n,
    2n ** 63n,
    -(2n ** 63n),
    2n ** 64n - 1n,
    2n ** 64n,
    -(2n ** 64n),
    2n ** 1000n + 12345n,
    -(3n ** 2000n),
    BigInt("0x" + "f".repeat(1001)),
  ];
  for (const v of values) assert.equal(roundTrip(v), v);
});

Deno.test("strings round-trip: ASCII, UTF-8, every length class", () => {
  const values = [
    "",
    "a",
    "hello, world",
    "x".repeat(31),
    "x".repeat(32),
    "x".repeat(33),
    "y".repeat(64),
    "y".repeat(65),
    "z".repeat(127),
    "z".repeat(128),
    "q".repeat(100_000),
    "café",
    "日本語のテキスト",
    "emoji 😀 and 👍🏽 and 𝄞",
    "é".repeat(42),
    "é".repeat(43),
    "mixed ascii then ü".repeat(20),
    "\u0000\u007f\u0080\u07ff\u0800\uffff",
    "😀".repeat(5000),
    "\ufeff",
    "\ufeffbyte order mark first",
    "\ufeff" + "long ".repeat(50),
  ];
  for (const v of values) assert.equal(roundTrip(v), v);
});

Deno.test("strings with lone surrogates round-trip by code units", () => {
  const values = [
    "\ud800",
    "\udc00",
    "a\ud800b",
    "end\ud83d",
    "\ude00start",
    "pair 😀 then lone \udbff",
    "x".repeat(200) + "\ud800" + "y".repeat(200),
    "\udc00\ud800",
    "\ud800".repeat(20_000),
  ];
  for (const v of values) {
    const out = roundTrip(v);
    assert.deepEqual(units(out), units(v));
  }
});

Deno.test("repeated short strings decode equal from the string cache", () => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `k${i % 5000}`);
  const out = roundTrip(keys);
  assert.deepEqual(out, keys);
  const obj = Object.fromEntries(keys.map((k, i) => [k, i]));
  assert.deepEqual(roundTrip(obj), obj);
});

Deno.test("arrays keep holes, undefined and length", () => {
  // deno-lint-ignore no-sparse-arrays
  const holey = [1, , 3, , undefined];
  const out = roundTrip(holey);
  assert.equal(out.length, 5);
  assert.deepEqual(Object.keys(out), ["0", "2", "4"]);
  assert.ok(!(1 in out) && !(3 in out) && 4 in out);
  assert.equal(out[4], undefined);

  const empty = roundTrip(new Array(5));
  assert.equal(empty.length, 5);
  assert.deepEqual(Object.keys(empty), []);

  const trailing: number[] = [1, 2];
  trailing.length = 10;
  assert.equal(roundTrip(trailing).length, 10);
  assertIsomorphic(roundTrip([[1, [2, [3, []]]], "x"]), [
    [1, [2, [3, []]]],
    "x",
  ]);
});

Deno.test("sparse arrays travel as index/value pairs, length kept", () => {
  const sparse: unknown[] = [];
  sparse[3] = "a";
  sparse[1e9] = { b: 1 };
  const n = encoder.encode(sparse);
  assert.ok(n < 64, `sparse array took ${n} bytes`);
  const out = roundTrip(sparse);
  assert.equal(out.length, 1e9 + 1);
  assert.deepEqual(Object.keys(out), ["3", "1000000000"]);
  assert.deepEqual(out[1e9], { b: 1 });

  const big: number[] = [];
  big.length = 2 ** 32 - 1;
  big[2 ** 32 - 2] = 7;
  const bigOut = roundTrip(big);
  assert.equal(bigOut.length, 2 ** 32 - 1);
  assert.equal(bigOut[2 ** 32 - 2], 7);
});

Deno.test("a dense prefix abandoned for the sparse form keeps object ids", () => {
  const shared = { s: 1 };
  const many = Array.from({ length: 20 }, (_, i) => ({ i }));
  const arr: unknown[] = [shared, ...many];
  arr[100_000] = shared;
  const value = [arr, shared, many[3]];
  const out = roundTrip(value);
  assertIsomorphic(out, value);
  assert.equal((out[0] as unknown[])[0], out[1]);
  assert.equal((out[0] as unknown[])[100_000], out[1]);
  assert.equal((out[0] as unknown[])[4], out[2]);
});

Deno.test("non-index properties on arrays are not sent (documented)", () => {
  const arr: unknown[] & { extra?: number } = [1, 2];
  arr.extra = 3;
  const out = roundTrip(arr);
  assert.deepEqual(Object.keys(out), ["0", "1"]);
});

Deno.test("plain objects keep own enumerable string keys in JS order", () => {
  const sym = Symbol("s");
  const o: Record<string | symbol, unknown> = {
    b: 1,
    a: 2,
    10: "ten",
    2: "two",
    "": "empty",
    "key with spaces": true,
    "ключ": "unicode",
    [sym]: "ignored",
  };
  Object.defineProperty(o, "hidden", { value: 1, enumerable: false });
  const out = roundTrip(o);
  assert.deepEqual(Object.keys(out), Object.keys(o));
  assert.deepEqual(Object.getOwnPropertySymbols(out), []);
  assert.ok(!("hidden" in out));
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
});

Deno.test("an own __proto__ key stays a plain property", () => {
  const o = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}');
  const out = roundTrip(o);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.ok(Object.hasOwn(out, "__proto__"));
  assert.deepEqual(Object.keys(out), ["__proto__", "x"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("null-prototype objects stay null-prototype", () => {
  const o = Object.assign(Object.create(null), { a: 1, __proto__x: 2 });
  const out = roundTrip(o);
  assert.equal(Object.getPrototypeOf(out), null);
  assert.deepEqual(Object.keys(out), ["a", "__proto__x"]);
});

Deno.test("getters are invoked and their values sent", () => {
  let calls = 0;
  const o = {
    get x(): number {
      calls++;
      return 42;
    },
  };
  assert.deepEqual(roundTrip(o), { x: 42 });
  assert.equal(calls, 1);
});

Deno.test("inherited enumerable keys from a polluted Object.prototype are skipped", () => {
  const proto = Object.prototype as Record<string, unknown>;
  proto.pollution = "bad";
  try {
    const out = roundTrip({ a: 1 });
    assert.deepEqual(Object.keys(out), ["a"]);
  } finally {
    delete proto.pollution;
  }
});

Deno.test("Map and Set keep order, keys of any kind and prototypes", () => {
  const key = { k: 1 };
  const map = new Map<unknown, unknown>([
    [1, "one"],
    ["1", "string one"],
    [NaN, "nan"],
    [key, [key]],
    [undefined, null],
  ]);
  const out = roundTrip(map);
  assert.equal(Object.getPrototypeOf(out), Map.prototype);
  assertIsomorphic(out, map);
  const outKey = [...out.keys()][3] as object;
  assert.equal((out.get(outKey) as unknown[])[0], outKey);

  const set = new Set<unknown>([3, "3", -0, { a: 1 }, new Set([1])]);
  const setOut = roundTrip(set);
  assert.equal(Object.getPrototypeOf(setOut), Set.prototype);
  assertIsomorphic(setOut, set);
});

Deno.test("Date and RegExp round-trip, invalid dates and all flags included", () => {
  for (const d of [new Date(0), new Date(1712345678901), new Date(NaN)]) {
    const out = roundTrip(d);
    assert.equal(Object.getPrototypeOf(out), Date.prototype);
    assert.ok(Object.is(out.getTime(), d.getTime()));
  }
  const regexps = [/a+b/g, /x\/y/dimsuy, /[\p{L}--[a-z]]/v, new RegExp("")];
  for (const r of regexps) {
    r.lastIndex = 3;
    const out = roundTrip(r);
    assert.equal(Object.getPrototypeOf(out), RegExp.prototype);
    assert.equal(out.source, r.source);
    assert.equal(out.flags, r.flags);
    assert.equal(out.lastIndex, 0);
  }
});

const TYPED_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  (globalThis as unknown as { Float16Array?: typeof Float32Array })
    .Float16Array,
].filter((c) => c !== undefined);

Deno.test("every typed array kind round-trips with its prototype", () => {
  for (const Ctor of TYPED_ARRAYS) {
    const isBig = Ctor === BigInt64Array || Ctor === BigUint64Array;
    const source = Array.from(
      { length: 9 },
      (_, i) => isBig ? BigInt(i * 1000 - 3) : i * 37.25 - 50,
    );
    const view = new (Ctor as unknown as new (a: unknown[]) => ArrayLike<
      unknown
    >)(isBig ? source.map((v) => BigInt.asUintN(64, v as bigint)) : source);
    const out = roundTrip(view);
    assert.equal(Object.getPrototypeOf(out), Ctor.prototype, Ctor.name);
    assert.deepEqual(Array.from(out), Array.from(view), Ctor.name);
    const empty = roundTrip(new Ctor(0));
    assert.equal(Object.getPrototypeOf(empty), Ctor.prototype);
    assert.equal(empty.length, 0);
  }
});

Deno.test("views carry only their bytes, over a fresh exact buffer", () => {
  const pool = new Float64Array([1, 2, 3, 4, 5, 6]);
  const view = pool.subarray(2, 4);
  const out = roundTrip(view);
  assert.deepEqual(Array.from(out), [3, 4]);
  assert.equal(out.byteOffset, 0);
  assert.equal(out.buffer.byteLength, 16);

  const dv = new DataView(new Uint8Array([9, 8, 7, 6, 5]).buffer, 1, 3);
  const dvOut = roundTrip(dv);
  assert.equal(Object.getPrototypeOf(dvOut), DataView.prototype);
  assert.deepEqual(new Uint8Array(dvOut.buffer), new Uint8Array([8, 7, 6]));
});

Deno.test("typed array subclasses (like Node's Buffer) decode as the base", () => {
  class Bytes extends Uint8Array {}
  const out = roundTrip(new Bytes([1, 2, 3]));
  assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype);
  assert.deepEqual(Array.from(out), [1, 2, 3]);
});

Deno.test("ArrayBuffers round-trip, resizable ones keep maxByteLength", () => {
  const ab = new Uint8Array([1, 2, 3, 250]).buffer;
  const out = roundTrip(ab);
  assert.equal(Object.getPrototypeOf(out), ArrayBuffer.prototype);
  assert.deepEqual(new Uint8Array(out), new Uint8Array([1, 2, 3, 250]));
  const rab = new ArrayBuffer(3, { maxByteLength: 32 });
  new Uint8Array(rab).set([7, 8, 9]);
  const rOut = roundTrip(rab);
  assert.ok(rOut.resizable);
  assert.equal(rOut.maxByteLength, 32);
  assert.deepEqual(new Uint8Array(rOut), new Uint8Array([7, 8, 9]));
});

Deno.test("a view shared twice decodes to one view", () => {
  const bytes = new Uint8Array([1, 2]);
  const out = roundTrip({ a: bytes, b: bytes });
  assert.equal(out.a, out.b);
});

Deno.test("boxed primitives round-trip", () => {
  const values = [
    Object(-0),
    Object(NaN),
    Object("boxed"),
    Object(true),
    Object(false),
    Object(12n),
    Object(-(2n ** 100n)),
  ];
  for (const v of values) {
    const out = roundTrip(v);
    assert.equal(Object.getPrototypeOf(out), Object.getPrototypeOf(v));
    assert.ok(Object.is(out.valueOf(), v.valueOf()));
  }
});

Deno.test("standard errors keep type, name, message, stack and cause", () => {
  const ctors = [
    Error,
    EvalError,
    RangeError,
    ReferenceError,
    SyntaxError,
    TypeError,
    URIError,
  ];
  for (const Ctor of ctors) {
    const e = new Ctor("boom", { cause: { code: 7 } });
    const out = roundTrip(e);
    assert.equal(Object.getPrototypeOf(out), Ctor.prototype);
    assert.ok(out instanceof Error);
    assert.equal(out.name, Ctor.name);
    assert.equal(out.message, "boom");
    assert.equal(out.stack, e.stack);
    assert.deepEqual(out.cause, { code: 7 });
    assert.ok(!Object.keys(out).includes("cause"), "cause not enumerable");
  }
  const bare = roundTrip(new Error());
  assert.ok(!Object.hasOwn(bare, "message"));
  assert.ok(!Object.hasOwn(bare, "cause"));
  const undefinedCause = roundTrip(new Error("x", { cause: undefined }));
  assert.ok(Object.hasOwn(undefinedCause, "cause"));
});

Deno.test("error subclasses get the standard prototype, custom names kept", () => {
  class TimeoutError extends RangeError {
    override name = "TimeoutError";
    extra = 1;
  }
  const out = roundTrip(new TimeoutError("slow"));
  assert.equal(Object.getPrototypeOf(out), Error.prototype);
  assert.equal(out.name, "TimeoutError");
  assert.equal(out.message, "slow");
  assert.ok(!("extra" in out), "other own properties are not sent");

  const renamed = new Error("r");
  renamed.name = "TypeError";
  assert.equal(Object.getPrototypeOf(roundTrip(renamed)), TypeError.prototype);

  const agg = roundTrip(new AggregateError([1], "many"));
  assert.equal(agg.name, "AggregateError");
  assert.equal(Object.getPrototypeOf(agg), Error.prototype);
});

Deno.test("an error whose cause is itself keeps the cycle", () => {
  const e = new Error("loop");
  e.cause = e;
  const out = roundTrip(e);
  assert.equal(out.cause, out);
});

Deno.test("shared references decode to one object, cycles preserved", () => {
  const shared = { s: [1] };
  const value: Record<string, unknown> = { a: shared, b: [shared, shared] };
  value.self = value;
  const out = roundTrip(value);
  assert.equal(out.a, (out.b as unknown[])[0]);
  assert.equal(out.a, (out.b as unknown[])[1]);
  assert.equal(out.self, out);
  assertIsomorphic(out, value);

  const list: unknown[] = [];
  list.push(list, new Map([[list, list]]), new Set([list]));
  const listOut = roundTrip(list);
  assert.equal(listOut[0], listOut);
  assertIsomorphic(listOut, list);
});

Deno.test("identity holds past the linear lookup, in both directions", () => {
  const nodes = Array.from({ length: 40 }, (_, i) => ({ i, next: null }));
  const graph = nodes.map((n, i) => ({ n, back: nodes[(i * 7) % 40] }));
  (nodes[39] as { next: unknown }).next = graph;
  const out = roundTrip(graph);
  assertIsomorphic(out, graph);
  assert.equal(out[0].back, out[0].n);
  assert.equal(out[3].back, out[21].n);
});

Deno.test("decoding from shared memory copies out: no aliasing", () => {
  const value = {
    bytes: new Uint8Array(4096).fill(7),
    floats: new Float64Array([1.5, 2.5]),
    buffer: new Uint8Array([1, 2, 3]).buffer,
    view: new DataView(new Uint8Array([4, 5]).buffer),
    text: "shared text",
    long: "l".repeat(500),
  };
  const n = encoder.encode(value);
  for (const offset of [8, 13]) {
    const sab = new SharedArrayBuffer(n + 32);
    const shared = new Uint8Array(sab, offset, n);
    shared.set(encoder.bytes.subarray(0, n));
    const out = decode(shared) as typeof value;
    new Uint8Array(sab).fill(0xff);
    assert.ok(out.bytes.every((b) => b === 7));
    assert.deepEqual(Array.from(out.floats), [1.5, 2.5]);
    assert.deepEqual(new Uint8Array(out.buffer), new Uint8Array([1, 2, 3]));
    assert.deepEqual(new Uint8Array(out.view.buffer), new Uint8Array([4, 5]));
    assert.equal(out.text, "shared text");
    assert.equal(out.long, "l".repeat(500));
    for (const v of [out.bytes, out.floats, out.view]) {
      assert.ok(v.buffer instanceof ArrayBuffer);
      assert.ok(!(v.buffer as unknown instanceof SharedArrayBuffer));
    }
  }
});

Deno.test("functions and symbols are rejected with a path", () => {
  assertRejects(() => 1, /function at value could/);
  assertRejects({ a: { b: () => 1 } }, /function at value\.a\.b could/);
  assertRejects([0, [1, Symbol("x")]], /symbol at value\[1\]\[1\] could/);
  assertRejects(
    { "a b": { 0: Math.max } },
    /function at value\["a b"\]\["0"\]/,
  );
  assertRejects(
    new Map([["k", new Set([1, () => 1])]]),
    /function at value\.<map value 0>\.<set value 1> could/,
  );
  assertRejects(new Map([[() => 1, 1]]), /at value\.<map key 0> could/);
  const e = new Error("x", { cause: [() => 1] });
  assertRejects(e, /function at value\.cause\[0\] could/);
});

Deno.test("class instances and non-cloneable built-ins are rejected", () => {
  class A {
    #x = 1;
    y = 2;
    get x(): number {
      return this.#x;
    }
  }
  assertRejects({ a: new A() }, /instance of class A at value\.a could/);
  assertRejects(new WeakMap(), /WeakMap at value could/);
  assertRejects(new WeakSet(), /WeakSet at value could/);
  assertRejects(new WeakRef({}), /WeakRef at value could/);
  assertRejects([Promise.resolve(1)], /Promise at value\[0\] could/);
  assertRejects(Object(Symbol("s")), /Symbol object at value could/);
  class Registry extends Map {}
  class List extends Array {}
  assertRejects(new Registry(), /instance of class Registry at value could/);
  assertRejects(List.of(1), /instance of class List at value could/);
  assertRejects(new (class {})(), /object with a custom prototype at value/);
  assertRejects(
    Object.create(Map.prototype),
    /object with Map\.prototype but no Map internals at value/,
  );
  assertRejects(
    Object.create(Uint8Array.prototype),
    /object with Uint8Array\.prototype but no Uint8Array internals/,
  );
  assertRejects(Object.create(Date.prototype), /no Date internals/);
  assertRejects(Object.create({}), /object with a custom prototype at value/);
});

Deno.test("shared memory is rejected with a hint to send a copy", () => {
  const sab = new SharedArrayBuffer(8);
  assertRejects(
    { sab },
    /SharedArrayBuffer at value\.sab could not be cloned; send a copy/,
  );
  assertRejects(
    [new Int32Array(sab)],
    /Int32Array over a SharedArrayBuffer at value\[0\] could not be cloned; send a copy/,
  );
  assertRejects(new DataView(sab), /DataView over a SharedArrayBuffer/);
});

Deno.test("detached buffers are rejected", () => {
  const ab = new ArrayBuffer(8);
  const view = new Uint8Array(ab);
  const dv = new DataView(ab);
  ab.transfer();
  assertRejects(ab, /detached ArrayBuffer at value could/);
  assertRejects({ view }, /Uint8Array over a detached buffer at value\.view/);
  assertRejects([dv], /DataView over a detached buffer at value\[0\]/);
});

function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

Deno.test("graphs up to MAX_DEPTH round-trip, deeper ones are rejected", () => {
  assert.deepEqual(roundTrip(nested(MAX_DEPTH)), nested(MAX_DEPTH));
  assertRejects(
    nested(MAX_DEPTH + 1),
    new RegExp(`object nested more than ${MAX_DEPTH} levels deep at value`),
  );
  assertRejects(nested(MAX_DEPTH * 20), /nested more than/);
});

Deno.test("a stack that overflows anyway is reported as DataCloneError", () => {
  // Burn stack before encoding so that a depth under the limit overflows.
  const outcomes = new Set<string>();
  const dive = (k: number): void => {
    if (k > 0) return dive(k - 1);
    try {
      encoder.encode(nested(MAX_DEPTH));
      outcomes.add("ok");
    } catch (e) {
      assert.ok(e instanceof DataCloneError, `escaped: ${e}`);
      assert.match(e.message, /nested too deep at value/);
      outcomes.add("rejected");
    }
  };
  for (let k = 0; k < 200_000; k += 500) {
    try {
      dive(k);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      break; // the test's own recursion overflowed before encoding
    }
    if (outcomes.has("rejected")) break;
  }
  assert.ok(outcomes.has("rejected"), "never overflowed inside encode");
  assert.equal(roundTrip({ after: [1] }).after[0], 1);
});

Deno.test("the encoder stays usable after a rejection", () => {
  const value = { id: 1, list: [1, 2, 3], m: new Map([[1, { x: "y" }]]) };
  const fresh = new Encoder();
  const n = fresh.encode(value);
  const expected = fresh.bytes.slice(0, n);
  const many = Array.from({ length: 50 }, (_, i) => ({ i }));
  assertRejects({ many, bad: [value, () => 1] }, /function/);
  assertRejects(nested(MAX_DEPTH + 5), /nested/);
  const again = encoder.encode(value);
  assert.deepEqual(encoder.bytes.slice(0, again), expected);
  assertIsomorphic(decode(expected), value);
});

Deno.test("errors thrown by getters propagate unchanged, encoder reset", () => {
  const boom = new Error("getter failed");
  const value = {
    a: [1, 2],
    get b(): number {
      throw boom;
    },
  };
  assert.throws(() => encoder.encode(value), (e) => e === boom);
  assert.deepEqual(roundTrip({ ok: [value.a] }), { ok: [[1, 2]] });
});

Deno.test("encode called from a getter on the same encoder is a TypeError", () => {
  const value = {
    get inner(): number {
      return encoder.encode(1);
    },
  };
  assert.throws(() => encoder.encode(value), TypeError);
  assert.equal(roundTrip("fine"), "fine");
});

Deno.test("the scratch buffer grows for large messages and shrinks back", () => {
  const small = new Encoder(16);
  const big = "b".repeat(1 << 20);
  const n = small.encode({ big });
  assert.ok(small.bytes.length >= n);
  assert.deepEqual(decode(small.bytes.subarray(0, n)), { big });
  small.encode(1);
  small.encode(2);
  assert.ok(small.bytes.length < 1 << 16, "scratch shrank");
  assert.equal(decode(small.bytes.subarray(0, small.encode(3))), 3);
});

Deno.test("malformed messages are TypeErrors", () => {
  const n = encoder.encode({ a: [1, "two", 3.5] });
  const good = encoder.bytes.slice(0, n);
  const cases = [
    new Uint8Array(0),
    Uint8Array.of(99, 0),
    good.subarray(0, n - 1),
    Uint8Array.of(...good, 0),
    Uint8Array.of(1, 0x7f),
    Uint8Array.of(1, 0x58, 5),
    Uint8Array.of(1, 0x4e),
    Uint8Array.of(1, 0x4c, 3, 1),
  ];
  for (const bytes of cases) {
    assert.throws(() => decode(bytes), TypeError, String(bytes));
  }
  assert.deepEqual(decode(good), { a: [1, "two", 3.5] });
});

// --- Seeded fuzz against structuredClone -----------------------------------

/** xorshift32: small, seedable, good enough to shape test graphs. */
function random(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

function graph(rand: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const pool: object[] = [];
  const keys = ["id", "name", "a", "b", "0", "10", "x y", "ü", "__proto__"];
  const numbers = [0, -0, 1, 63, 64, -1, 2 ** 31, -(2 ** 31), 0.5, NaN];
  const str = (): string => {
    const n = Math.floor(rand() * (rand() < 0.1 ? 300 : 12));
    let s = "";
    for (let i = 0; i < n; i++) {
      const r = rand();
      s += r < 0.7
        ? String.fromCharCode(32 + Math.floor(rand() * 95))
        : r < 0.85
        ? String.fromCharCode(Math.floor(rand() * 0x10000))
        : r < 0.95
        ? "😀"
        : pick(["\ud800", "\udfff"]);
    }
    return s;
  };
  const leaf = (): unknown => {
    switch (Math.floor(rand() * 10)) {
      case 0:
        return pick([undefined, null, true, false]);
      case 1:
        return pick([...numbers, Infinity, rand() * 1e6]);
      case 2:
        return BigInt(Math.floor(rand() * 1e9)) **
            BigInt(1 + (rand() * 5 | 0)) *
          (rand() < 0.5 ? -1n : 1n);
      case 3:
        return new Date(rand() < 0.1 ? NaN : Math.floor(rand() * 2e12));
      case 4:
        return new RegExp(
          str().replace(/[\\[\](){}.*+?^$|\ud800-\udfff]/g, ""),
          pick(["", "g", "imsu"]),
        );
      case 5:
        return pick([
          () => new Uint8Array([1, 2, 3]),
          () => new Float64Array([NaN, -0, 1.5]),
          () => new BigInt64Array([-5n]),
          () => new Int16Array(rand() * 40 | 0).map((_, i) => i * 99),
          () => new DataView(new ArrayBuffer(4)),
          () => new Uint8Array(new ArrayBuffer(16), 4, 8).fill(5),
          () => new ArrayBuffer(3),
        ])();
      case 6:
        return pick([Object(1.5), Object("s"), Object(false), Object(3n)]);
      default:
        return rand() < 0.5 ? str() : pick(numbers);
    }
  };
  const node = (depth: number): unknown => {
    if (pool.length > 0 && rand() < 0.15) return pick(pool);
    if (depth > 5 || rand() < 0.35) return leaf();
    const n = Math.floor(rand() * 6);
    switch (Math.floor(rand() * 5)) {
      case 0: {
        const o: Record<string, unknown> = {};
        pool.push(o);
        for (let i = 0; i < n; i++) {
          const key = rand() < 0.7 ? pick(keys) : str();
          Object.defineProperty(o, key, {
            value: node(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return o;
      }
      case 1: {
        const a: unknown[] = [];
        pool.push(a);
        for (let i = 0; i < n; i++) {
          if (rand() < 0.02) a.length += 100;
          else if (rand() < 0.2) a.length++;
          else a.push(node(depth + 1));
        }
        return a;
      }
      case 2: {
        const m = new Map<unknown, unknown>();
        pool.push(m);
        for (let i = 0; i < n; i++) m.set(node(depth + 1), node(depth + 1));
        return m;
      }
      case 3: {
        const s = new Set<unknown>();
        pool.push(s);
        for (let i = 0; i < n; i++) s.add(node(depth + 1));
        return s;
      }
      default: {
        const ctor = pick([Error, TypeError, RangeError, SyntaxError]);
        const e = new ctor(str());
        pool.push(e);
        if (rand() < 0.5) e.cause = node(depth + 1);
        return e;
      }
    }
  };
  return node(0);
}

Deno.test("2000 seeded random graphs decode like structuredClone", () => {
  const rand = random(0x7e57c0de);
  for (let i = 0; i < 2000; i++) {
    const value = graph(rand);
    const expected = structuredClone(value);
    const out = roundTrip(value, i % 2 ? 8 : 11);
    assertIsomorphic(out, expected, `graph ${i}`);
    assertIsomorphic(out, value, `graph ${i}`);
  }
});
