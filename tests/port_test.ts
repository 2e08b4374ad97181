/**
 * Ports end to end: every payload kind posted through a `Port` arrives in
 * the loop's `onMessage`, from the loop's own thread and from workers;
 * refusals (`DataCloneError`, `PayloadTooLargeError`, a full port) queue
 * nothing; backpressure in its three forms drops nothing and frees space
 * oldest first; and the wake policy is what `port.ts` documents.
 *
 * Determinism: the loops use a `VirtualClock`; streams come from a seeded
 * PRNG; nothing asserts on elapsed time. A check that something did *not*
 * happen (a post still blocked, a loop still asleep) is made only where
 * nothing but the awaited event could change it. Every worker test bounds
 * its wait, fails loudly, and terminates its workers.
 *
 * Lone surrogates: the port sends strings that are not well formed through
 * the codec as UTF-16 code units, so they arrive exactly (a `TextEncoder` /
 * `TextDecoder` round trip would turn each into U+FFFD). The UTF-8 decoder
 * keeps a leading BOM (`ignoreBOM: true`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, DeadlockError, Loop, VirtualClock } from "../mod.ts";
import {
  type Port,
  type PostOptions,
  PostTimeoutError,
} from "../runtime/port.ts";
import { MpscQueue, type QueueEntry } from "../runtime/mpsc_queue.ts";
import {
  MSG_BYTES,
  MSG_CONST,
  MSG_FLOAT,
  MSG_INT,
  MSG_STRING,
  MSG_VALUE,
  PayloadTooLargeError,
  readMessage,
} from "../runtime/messages.ts";
import { DataCloneError } from "../runtime/codec.ts";
import { type SpawnedWorker, spawnWorker } from "../runtime/spawn.ts";
import { WAIT_NR } from "../runtime/queue_layout.ts";
import {
  C_ARMED,
  C_DELIVERED,
  C_LAZY_KEPT_ASLEEP,
  C_LAZY_KEPT_ASLEEP_2,
  C_PHASE,
  C_WORDS,
  nonCloneableCases,
  type PayloadCase,
  payloadCases,
  PHASE_BLOCKING,
  PHASE_POSTED,
  prng,
  type ProducerTask,
  streamMessage,
  streamMethod,
} from "./workers/port_payloads.ts";

const WORKER = new URL("./workers/port_producer.ts", import.meta.url);
/** Longest wait of any worker test before it fails. */
const BOUND_MS = 20_000;
const SEED = 0x7e57_0a11;

/** One delivered message; byte views are copied during the call. */
interface Received {
  slot: number;
  data: unknown;
  /** The value was a view whose buffer is the loop's queue buffer. */
  loopView: boolean;
  /** The value (or its buffer) was a SharedArrayBuffer. */
  shared: boolean;
}

function bufferOf(v: unknown): ArrayBufferLike | undefined {
  if (ArrayBuffer.isView(v)) return v.buffer;
  if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) return v;
  return undefined;
}

/** A handler that records messages (copying byte views out of the ring). */
function recorder(loop: Loop, into: Received[]): void {
  loop.onMessage = (data, slot) => {
    const buf = bufferOf(data);
    into.push({
      slot,
      data: data instanceof Uint8Array ? data.slice() : data,
      loopView: buf === loop.buffer,
      shared: buf instanceof SharedArrayBuffer,
    });
  };
}

/** Runs passes that never sleep until nothing is queued (bounded). */
function drainAll(loop: Loop): void {
  for (let i = 0; loop.runNoWait() > 0; i++) {
    if (i > 10_000) throw new Error("Loop did not drain in 10 000 passes");
  }
}

/** One host macrotask turn. */
function turn(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** Whether `p` settles within `turns` macrotask turns. */
async function settlesWithin(p: Promise<unknown>, turns: number) {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  for (let i = 0; i < turns && !settled; i++) await turn();
  return settled;
}

/**
 * Awaits `p`, failing loudly after `ms`; `onTimeout` then unblocks whatever
 * `p` waits on so nothing is left running.
 */
async function within<T>(
  p: Promise<T>,
  ms: number,
  what: () => string,
  onTimeout: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const limit = new Promise<void>((r) => {
    timer = setTimeout(() => {
      timedOut = true;
      r();
    }, ms);
  });
  try {
    const r = await Promise.race([p, limit]);
    if (!timedOut) return r as T;
  } finally {
    clearTimeout(timer);
  }
  onTimeout();
  await p.catch(() => {});
  throw new Error(`Timed out after ${ms} ms: ${what()}`);
}

/** Runs the loop's async drive to its end, bounded; stops it on timeout. */
async function runBounded(
  loop: Loop,
  what: () => string,
  workers: { terminate(): void }[],
): Promise<void> {
  const state = () => `loop run (${what()})`;
  await within(loop.run(), BOUND_MS, state, () => {
    for (const w of workers) w.terminate();
    try {
      loop.queue(() => loop.stop()); // wakes the drive if it sleeps
    } catch { /* closed or full: it ends anyway */ }
  });
}

/** Errors from spawned workers, for waits made while the loop is idle. */
function watchErrors(s: SpawnedWorker, into: string[]): void {
  s.worker.addEventListener("error", (e) => into.push(e.message));
}

/** Polls `ready` across macrotask turns; fails on a worker error or time. */
async function waitFor(
  ready: () => boolean,
  what: string,
  errors: string[],
): Promise<void> {
  const end = performance.now() + BOUND_MS;
  while (!ready()) {
    if (errors.length > 0) throw new Error(`Worker failed: ${errors[0]}`);
    if (performance.now() > end) throw new Error(`Timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Identity, shape and placement checks deep equality cannot make. */
function checkCase(
  c: PayloadCase,
  r: Received,
  copyBytes: boolean,
  where: string,
): void {
  const msg = `${where}: ${c.name}`;
  const want = "expect" in c ? c.expect : c.value;
  assert.deepStrictEqual(r.data, want, msg);
  const d = r.data as never;
  switch (c.kind) {
    case "int":
    case "float":
      assert.ok(Object.is(r.data, c.value), msg);
      break;
    case "bytes":
      // MSG_BYTES: a view into the loop's queue buffer unless copyBytes.
      assert.ok(r.data instanceof Uint8Array, msg);
      assert.equal(r.loopView, !copyBytes, `${msg}: view into shared memory`);
      assert.equal(r.shared, !copyBytes, `${msg}: shared`);
      break;
  }
  if (c.kind === "value" && bufferOf(r.data) !== undefined) {
    // Codec-decoded buffers and views: fresh, unshared, only their bytes.
    assert.equal(r.shared, false, `${msg}: shared`);
    if (ArrayBuffer.isView(r.data)) assert.equal(r.data.byteOffset, 0, msg);
  }
  switch (c.name) {
    case "cyclic object":
      assert.equal(d["me"], d, msg);
      break;
    case "shared reference":
      assert.equal(d["left"], d["right"], msg);
      break;
    case "cyclic array":
      assert.equal(d[1], d, msg);
      break;
    case "cyclic Map":
      assert.equal((d as Map<unknown, unknown>).get(d), d, msg);
      break;
    case "cyclic Set":
      assert.ok((d as Set<unknown>).has(d), msg);
      break;
    case "array with holes":
      assert.deepEqual(Object.keys(d), ["0", "2"], msg);
      assert.equal((d as unknown[]).length, 4, msg);
      break;
    case "sparse array":
      assert.deepEqual(Object.keys(d), ["2", "900"], msg);
      assert.equal((d as unknown[]).length, 1000, msg);
      break;
    case "ArrayBuffer resizable":
      assert.equal((d as ArrayBuffer).resizable, true, msg);
      assert.equal((d as ArrayBuffer).maxByteLength, 16, msg);
      break;
    case "Error with cause":
      assert.ok(r.data instanceof RangeError, msg);
      assert.equal((d as Error).message, "out of range", msg);
      assert.deepStrictEqual((d as Error).cause, { code: 7 }, msg);
      break;
    case "RegExp lastIndex resets to 0":
      assert.equal((d as RegExp).lastIndex, 0, msg);
      break;
  }
  if (typeof c.value === "string") {
    // Exact UTF-16 code units, lone surrogates included.
    const units = (s: string) => Array.from(s, (ch) => ch.codePointAt(0));
    assert.deepEqual(units(r.data as string), units(c.value), msg);
  }
}

function checkCatalogue(
  got: Received[],
  slot: number,
  copyBytes: boolean,
  where: string,
): void {
  const cases = payloadCases();
  assert.equal(got.length, cases.length, `${where}: messages delivered`);
  cases.forEach((c, seq) => {
    assert.equal(got[seq].slot, slot, `${where}: slot of message ${seq}`);
    checkCase(c, got[seq], copyBytes, `${where}, message ${seq}`);
  });
}

// --- 1. Every payload kind round-trips -------------------------------------

Deno.test("each payload kind takes the item tag messages.ts documents; numbers and constants carry no payload bytes", () => {
  const q = MpscQueue.create({ producers: 2, nodesPerProducer: 128 });
  const port = connect({
    kind: "twloop.port",
    buffer: q.buffer,
    slot: q.reserveSlot(),
  });
  const cases = payloadCases();
  for (const c of cases) port.post(c.value);
  const tags = { int: MSG_INT, float: MSG_FLOAT, const: MSG_CONST };
  const other = { bytes: MSG_BYTES, string: MSG_STRING, value: MSG_VALUE };
  let seq = 0;
  const n = q.drain(1000, (e: QueueEntry) => {
    const c = cases[seq++];
    if (c.kind in tags) {
      assert.equal(e.tag, tags[c.kind as keyof typeof tags], c.name);
      assert.equal(e.byteLength, -1, `${c.name}: no payload bytes`);
    } else {
      assert.equal(e.tag, other[c.kind as keyof typeof other], c.name);
    }
    if (c.kind === "int") assert.equal(e.a, c.value, c.name);
    if (c.kind === "float") assert.ok(Object.is(e.float(), c.value), c.name);
    const data = readMessage(e, true);
    const r = { slot: e.producer, data, loopView: false, shared: false };
    r.shared = bufferOf(data) instanceof SharedArrayBuffer;
    checkCase(c, r, true, "raw queue");
  });
  assert.equal(n, cases.length);
  assert.equal(q.lastState, "empty");
});

Deno.test("a port with no payload storage still carries every number, constant, empty string and empty Uint8Array", () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    capacity: { bytesPerProducer: 0 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  const cases = payloadCases().filter((c) =>
    c.kind === "int" || c.kind === "float" || c.kind === "const" ||
    c.name === "string empty" || c.name === "Uint8Array empty"
  );
  for (const c of cases) port.post(c.value);
  assert.throws(
    () => port.post("a"),
    (e) => e instanceof PayloadTooLargeError && /0-byte/.test(e.message),
  );
  port.close();
  drainAll(loop);
  assert.equal(got.length, cases.length);
  cases.forEach((c, i) => checkCase(c, got[i], false, "no payload storage"));
});

for (const copyBytes of [false, true]) {
  Deno.test(`every payload kind posted on the loop's own thread arrives intact and in order (copyBytes ${copyBytes})`, async () => {
    const got: Received[] = [];
    const loop = new Loop({ clock: new VirtualClock(), copyBytes });
    recorder(loop, got);
    const port = connect(loop.port());
    const cases = payloadCases();
    for (let i = 0; i < cases.length; i++) {
      const v = cases[i].value;
      if (i % 3 === 0) port.post(v);
      else if (i % 3 === 1) assert.equal(port.tryPost(v), true);
      else await port.postAsync(v);
      if (i % 7 === 6) loop.runNoWait(); // deliver some while posting
    }
    port.close();
    drainAll(loop);
    checkCatalogue(got, port.slot, copyBytes, "loop thread");
  });
}

Deno.test("every payload kind posted from a spawned worker arrives intact and in order, and its refused non-cloneable posts add nothing", async () => {
  const got: Received[] = [];
  const loop = new Loop({ clock: new VirtualClock() });
  recorder(loop, got);
  const task: ProducerTask = { mode: "catalogue" };
  const w = spawnWorker(loop, WORKER, { data: task, name: "catalogue" });
  try {
    await runBounded(loop, () => `${got.length} delivered`, [w]);
    checkCatalogue(got, w.slot, false, "worker");
  } finally {
    w.terminate();
  }
});

Deno.test("a default byte view aliases the port's storage and is overwritten by later posts; copyBytes hands over a stable copy", () => {
  for (const copyBytes of [false, true]) {
    const kept: Uint8Array[] = [];
    const loop = new Loop({
      clock: new VirtualClock(),
      copyBytes,
      capacity: { bytesPerProducer: 64 },
      onMessage: (d) => kept.push(d as Uint8Array),
    });
    const port = connect(loop.port());
    port.post(new Uint8Array(32).fill(1)); // ring bytes 0..32
    drainAll(loop);
    port.post(new Uint8Array(32).fill(2)); // 32..64
    port.post(new Uint8Array(32).fill(3)); // wraps onto 0..32, the first's
    const first = kept[0];
    assert.equal(first.buffer === loop.buffer, !copyBytes);
    assert.deepEqual([...new Set(first)], [copyBytes ? 1 : 3]);
    drainAll(loop);
    assert.deepEqual(kept.map((b) => b[0]), [copyBytes ? 1 : 3, 2, 3]);
  }
});

// --- 2. Refusals queue nothing ---------------------------------------------

type Method = "post" | "tryPost" | "postAsync";
const METHODS: Method[] = ["post", "tryPost", "postAsync"];

/** Calls a port method; returns the error it threw or rejected with. */
async function failure(
  port: Port,
  how: Method,
  value: unknown,
  options?: PostOptions,
): Promise<unknown> {
  try {
    if (how === "postAsync") await port.postAsync(value, options);
    else if (how === "post") port.post(value, options);
    else if (!port.tryPost(value, options)) return "refused";
  } catch (e) {
    return e;
  }
  return "accepted";
}

Deno.test("non-cloneable values fail post, tryPost and postAsync with DataCloneError, queue nothing, and the next post is delivered", async () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    capacity: { nodesPerProducer: 4 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  let seq = 0;
  for (const bad of nonCloneableCases()) {
    for (const how of METHODS) {
      const e = await failure(port, how, bad.value);
      assert.ok(e instanceof DataCloneError, `${bad.name} via ${how}: ${e}`);
      assert.equal(e.name, "DataCloneError");
      assert.match(e.message, /^Cannot post message: .* could not be cloned/);
      assert.equal(loop.pending(), seq % 2, `${bad.name} via ${how} queued`);
      port.post(seq++);
      if (seq % 2 === 0) drainAll(loop);
    }
  }
  // A full port still reports the clone error, not "full".
  while (port.tryPost(seq)) seq++;
  for (const how of METHODS) {
    const e = await failure(port, how, () => 0);
    assert.ok(e instanceof DataCloneError, `full port via ${how}: ${e}`);
  }
  drainAll(loop);
  port.post(seq++);
  port.close();
  drainAll(loop);
  assert.deepEqual(
    got.map((r) => r.data),
    Array.from({ length: seq }, (_, i) => i),
  );
});

Deno.test("a payload larger than the port's storage is refused with PayloadTooLargeError naming the limit, never truncated, and the port stays usable", async () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    capacity: { nodesPerProducer: 8, bytesPerProducer: 64 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  const tooLarge: [string, unknown, number | undefined][] = [
    ["Uint8Array of 65 bytes", new Uint8Array(65), 65],
    ["ASCII string of 65 chars", "x".repeat(65), 65],
    ["string of 66 UTF-8 bytes", "€".repeat(22), 66],
    ["object holding 70 chars", { s: "x".repeat(70) }, undefined],
    ["Float64Array of 9", new Float64Array(9), undefined],
    ["lone surrogates", "\uD800".repeat(40), undefined],
  ];
  const fits: unknown[] = [
    Uint8Array.from({ length: 64 }, (_, i) => i),
    "y".repeat(64),
    "€".repeat(21),
  ];
  const expected: unknown[] = [];
  for (const [name, value, size] of tooLarge) {
    for (const how of METHODS) {
      const e = await failure(port, how, value);
      assert.ok(e instanceof PayloadTooLargeError, `${name} via ${how}: ${e}`);
      assert.ok(e instanceof RangeError);
      assert.equal(e.name, "PayloadTooLargeError");
      assert.match(e.message, /exceeds the 64-byte payload limit of a port$/);
      if (size !== undefined) {
        assert.match(e.message, new RegExp(`${size} bytes`));
      }
      assert.equal(loop.pending(), 0, `${name} via ${how} queued`);
      const ok = fits[expected.length % fits.length];
      port.post(ok); // needs the whole ring: it is empty again
      expected.push(ok);
      drainAll(loop);
    }
  }
  // Too large is an error even when the port is full, never "wait for room".
  port.post(new Uint8Array(40));
  expected.push(new Uint8Array(40));
  assert.equal(port.tryPost(new Uint8Array(40)), false);
  for (const how of METHODS) {
    const e = await failure(port, how, new Uint8Array(65));
    assert.ok(e instanceof PayloadTooLargeError, `full port via ${how}: ${e}`);
  }
  port.close();
  drainAll(loop);
  assert.deepStrictEqual(got.map((r) => r.data), expected);
});

// --- 3. Backpressure ---------------------------------------------------------

Deno.test("tryPost returns false on a port whose nodes are full, queues nothing, and each consumed message frees exactly one node, oldest first", () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    maxEvents: 1,
    capacity: { nodesPerProducer: 4 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  for (let i = 0; i < 4; i++) assert.equal(port.tryPost(i), true);
  let next = 4;
  for (let round = 0; round < 16; round++) {
    assert.equal(port.tryPost(next), false, `round ${round}: full`);
    assert.equal(port.tryPost({ big: next }), false);
    assert.equal(loop.pending(), 4);
    loop.runNoWait();
    assert.equal(got.at(-1)!.data, next - 4, "oldest delivered first");
    assert.equal(port.tryPost(next++), true, `round ${round}: one free node`);
  }
  port.close();
  drainAll(loop);
  assert.deepEqual(
    got.map((r) => r.data),
    Array.from({ length: next }, (_, i) => i),
  );
});

Deno.test("tryPost returns false when payload bytes are full; bytes free oldest first and the ring wraps without loss", () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    maxEvents: 1,
    capacity: { nodesPerProducer: 16, bytesPerProducer: 64 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  const msg = (i: number) => new Uint8Array(24).fill(i + 1);
  assert.equal(port.tryPost(msg(0)), true); // ring bytes 0..24
  assert.equal(port.tryPost(msg(1)), true); // 24..48
  assert.equal(port.tryPost(msg(2)), false, "16 bytes left");
  assert.equal(port.tryPost(-1), true, "a number needs no bytes");
  let next = 2;
  let oldest = 0;
  for (let round = 0; round < 16; round++) {
    assert.equal(port.tryPost(msg(next)), false, `round ${round}: bytes full`);
    assert.equal(port.tryPost("z".repeat(20)), false);
    loop.runNoWait();
    const last = got.at(-1)!.data;
    if (last === -1) continue; // freed no bytes: still full
    assert.deepEqual(last, msg(oldest++), "oldest bytes freed first");
    // Room for one more; the third message wraps to the ring's start.
    assert.equal(port.tryPost(msg(next++)), true, `round ${round}: room`);
  }
  port.close();
  drainAll(loop);
  const bytes = got.filter((r) => r.data !== -1).map((r) => r.data);
  assert.deepEqual(bytes, Array.from({ length: next }, (_, i) => msg(i)));
  assert.equal(got.length, next + 1);
  assert.equal(got[2].data, -1, "the number kept its place");
});

Deno.test("post on the loop's own thread refuses to block on a full port (it would deadlock) and queues nothing", () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    capacity: { nodesPerProducer: 4 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  for (let i = 0; i < 4; i++) port.post(i);
  for (const options of [undefined, { timeout: 0 }, { timeout: Infinity }]) {
    assert.throws(
      () => port.post(4, options),
      (e) =>
        e instanceof DeadlockError && e.data === 4 &&
        /^Cannot post message: .* would deadlock$/.test(e.message),
    );
    assert.equal(loop.pending(), 4);
  }
  port.close();
  drainAll(loop);
  assert.deepEqual(got.map((r) => r.data), [0, 1, 2, 3]);
});

Deno.test("postAsync on the loop's own thread awaits space without blocking: the loop drains meanwhile and nothing is dropped", async () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    spinMicros: 0,
    maxEvents: 3,
    capacity: { nodesPerProducer: 4 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  const obj = { seq: 4 };
  for (let i = 0; i < 4; i++) port.post(i);
  const e = await failure(port, "postAsync", obj, { timeout: 5 });
  assert.ok(e instanceof PostTimeoutError, `${e}`);
  assert.equal(e.data, obj, "the timeout error carries the value");
  assert.match(e.message, /no space in the port's storage after 5 ms/);
  const first = port.postAsync(4);
  // Nothing but the loop can free space, and it is not running.
  assert.equal(await settlesWithin(first, 3), false);
  assert.equal(loop.pending(), 4);
  const COUNT = 60;
  const producer = (async () => {
    await first;
    for (let i = 5; i < COUNT; i++) await port.postAsync(i);
    // close() on the loop's thread cannot wait for room, and on a full port
    // its close item is lost (see the ignored test below): close once the
    // loop has taken everything.
    while (got.length < COUNT) await turn();
    port.close();
  })();
  await runBounded(loop, () => `${got.length} delivered`, []);
  await producer;
  assert.deepEqual(
    got.map((r) => r.data),
    Array.from({ length: COUNT }, (_, i) => i),
  );
});

Deno.test("post in a worker blocks on a full port until the loop frees space, times out with PostTimeoutError carrying the value, and drops nothing", async () => {
  const got: Received[] = [];
  const errors: string[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    maxEvents: 1,
    capacity: { nodesPerProducer: 4 },
  });
  recorder(loop, got);
  const ctrl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
  const COUNT = 50;
  const task: ProducerTask = {
    mode: "backpressure",
    fill: 4,
    count: COUNT,
    ctrl: ctrl.buffer as SharedArrayBuffer,
  };
  const w = spawnWorker(loop, WORKER, { data: task, name: "backpressure" });
  watchErrors(w, errors);
  try {
    // The worker filled the port, saw tryPost refuse and post/postAsync time
    // out (it throws otherwise), and is now blocked in post.
    await waitFor(
      () => Atomics.load(ctrl, C_PHASE) === PHASE_BLOCKING,
      "the worker to fill its port",
      errors,
    );
    assert.equal(loop.pending(), 4, "only the 4 accepted posts are queued");
    await turn();
    await turn();
    assert.equal(Atomics.load(ctrl, C_PHASE), PHASE_BLOCKING, "still blocked");
    assert.equal(got.length, 0);
    await runBounded(loop, () => `${got.length} delivered`, [w]);
    assert.equal(errors.length, 0, errors[0]);
    assert.equal(Atomics.load(ctrl, C_PHASE), PHASE_POSTED);
    assert.deepEqual(
      got.map((r) => r.data),
      Array.from({ length: COUNT }, (_, i) => i),
    );
  } finally {
    w.terminate();
  }
});

Deno.test("three producers (spawned worker, connected worker, loop thread) stream seeded mixed kinds through tiny ports in per-producer order, none lost or repeated", async () => {
  const loop = new Loop({
    clock: new VirtualClock(),
    maxEvents: 3,
    spinMicros: 0,
    capacity: { producers: 4, nodesPerProducer: 8, bytesPerProducer: 256 },
  });
  const WORKER_COUNT = 300;
  const LOCAL_COUNT = 100;
  const seedOf = (id: number) => (SEED + id * 0x9e37) | 0;
  const idOf = new Map<number, number>();
  const expectNext = [0, 0, 0];
  const gens = [0, 1, 2].map((id) => prng(seedOf(id)));
  loop.onMessage = (data, slot) => {
    const id = idOf.get(slot);
    assert.ok(id !== undefined, `message from unknown slot ${slot}`);
    const seq = expectNext[id]++;
    const want = streamMessage(id, seq, gens[id]);
    streamMethod(gens[id]); // keep the generator in step with the producer
    assert.deepStrictEqual(data, want, `producer ${id}, message ${seq}`);
  };
  const failures: string[] = [];
  const spawned = spawnWorker(loop, WORKER, {
    data: { mode: "stream", id: 0, seed: seedOf(0), count: WORKER_COUNT },
    name: "stream 0",
  });
  idOf.set(spawned.slot, 0);
  const handle = loop.port();
  idOf.set(handle.slot, 1);
  const plain = new Worker(WORKER, { type: "module", name: "stream 1" });
  plain.addEventListener("error", (e) => {
    e.preventDefault();
    failures.push(e.message);
    loop.producerDied(handle.slot);
    try {
      loop.queue(() => {
        throw new Error(`Worker failed: ${e.message}`);
      });
    } catch { /* closed */ }
  });
  const task: ProducerTask = {
    mode: "stream",
    id: 1,
    seed: seedOf(1),
    count: WORKER_COUNT,
  };
  plain.postMessage({ kind: "connect", handle, task });
  const port = connect(loop.port());
  idOf.set(port.slot, 2);
  const local = (async () => {
    const random = prng(seedOf(2));
    for (let seq = 0; seq < LOCAL_COUNT; seq++) {
      const m = streamMessage(2, seq, random);
      // On the loop's thread post cannot block: it becomes postAsync.
      if (streamMethod(random) !== "tryPost") await port.postAsync(m);
      else while (!port.tryPost(m)) await turn();
    }
    port.close();
  })();
  const workers = [spawned, { terminate: () => plain.terminate() }];
  try {
    await runBounded(
      loop,
      () => `delivered per producer ${expectNext.join()}`,
      workers,
    );
    await local;
    assert.deepEqual(failures, []);
    assert.deepEqual(expectNext, [WORKER_COUNT, WORKER_COUNT, LOCAL_COUNT]);
    assert.equal(
      loop.metrics().tasks.entry,
      2 * WORKER_COUNT + LOCAL_COUNT + 3,
    );
  } finally {
    for (const w of workers) w.terminate();
  }
});

Deno.test({
  name:
    "close() on the loop's own thread with a full port still tells the loop, so the drive ends",
  fn() {
    const got: Received[] = [];
    const loop = new Loop({
      clock: new VirtualClock(),
      capacity: { nodesPerProducer: 4 },
    });
    recorder(loop, got);
    const port = connect(loop.port());
    for (let i = 0; i < 4; i++) port.post(i);
    port.close();
    drainAll(loop);
    assert.deepEqual(got.map((r) => r.data), [0, 1, 2, 3]);
    assert.equal(loop.alive(), false, "the port still holds the loop open");
  },
});

Deno.test("requestClose() on the loop's own thread with a full port does not block: the loop pushes it once its passes free space, after the port's messages", () => {
  const got: Received[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    capacity: { nodesPerProducer: 4 },
  });
  recorder(loop, got);
  const port = connect(loop.port());
  for (let i = 0; i < 4; i++) port.post(i);
  port.requestClose(); // full: handed to the loop
  assert.equal(loop.closed, false);
  drainAll(loop);
  assert.deepEqual(got.map((r) => r.data), [0, 1, 2, 3]);
  assert.equal(loop.closed, true, "the request never reached the loop");
});

// --- 4. Wake policy --------------------------------------------------------

Deno.test("with minEvents 3, lazy posts (the default) leave the sleeping loop asleep until the third, an eager post wakes it at once (loop thread)", async () => {
  const got: unknown[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    minEvents: 3,
    spinMicros: 0,
    stallMs: Infinity, // no watchdog timeouts: only posts end a sleep
    onMessage: (d) => got.push(d),
  });
  const w = new Int32Array(loop.buffer);
  const port = connect(loop.port());
  const wakeUp = () => loop.queue(() => {});
  const sleepOnce = () => {
    const once = loop.runOnce(); // arms and sleeps synchronously
    assert.equal(Atomics.load(w, WAIT_NR), 3, "asleep, waiting for 3");
    return once;
  };
  const stillAsleep = async (once: Promise<number>, notifies: number) => {
    assert.equal(await settlesWithin(once, 3), false, "woke early");
    assert.equal(Atomics.load(w, WAIT_NR), 3);
    assert.equal(loop.metrics().notifies, notifies);
  };
  const woken = async (once: Promise<number>, n: number, what: string) => {
    await within(once, BOUND_MS, () => what, wakeUp);
    const m = loop.metrics();
    assert.equal(m.notifies, n, `${what}: notifies`);
    assert.equal(m.wakes, n, `${what}: wakes`);
    drainAll(loop);
  };

  let once = sleepOnce();
  port.post(1);
  port.post(2, { wake: "lazy" });
  await stillAsleep(once, 0);
  assert.deepEqual(got, []);
  port.post(3);
  await woken(once, 1, "third lazy post");
  assert.deepEqual(got, [1, 2, 3]);

  once = sleepOnce();
  port.post(4, { wake: "eager" });
  await woken(once, 2, "eager post");
  once = sleepOnce();
  assert.equal(port.tryPost(5, { wake: "eager" }), true);
  await woken(once, 3, "eager tryPost");
  once = sleepOnce();
  await port.postAsync(6, { wake: "eager" });
  await woken(once, 4, "eager postAsync");
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);

  once = sleepOnce();
  assert.equal(port.tryPost(7), true);
  await port.postAsync(8);
  await stillAsleep(once, 4);
  port.post(9, { wake: "eager" });
  await woken(once, 5, "eager post after two lazy ones");
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9]);

  // Lazy counts left from an earlier arming (7 and 8) and lazy posts made
  // while the loop is awake (10 and 11) do not count toward a new arming.
  port.post(10);
  port.post(11);
  loop.runNoWait();
  once = sleepOnce();
  port.post(12);
  port.post(13);
  await stillAsleep(once, 5);
  port.post(14);
  await woken(once, 6, "third lazy post of a new arming");
  assert.equal(got.length, 14);
  port.close();
  drainAll(loop);
});

Deno.test("with the default minEvents of 1 a lazy post wakes the sleeping loop", async () => {
  const got: unknown[] = [];
  const loop = new Loop({
    clock: new VirtualClock(),
    spinMicros: 0,
    stallMs: Infinity, // no watchdog timeouts: only posts end a sleep
    onMessage: (d) => got.push(d),
  });
  const port = connect(loop.port());
  const once = loop.runOnce();
  assert.equal(Atomics.load(new Int32Array(loop.buffer), WAIT_NR), 1);
  port.post("lazy");
  await within(once, BOUND_MS, () => "lazy post", () => loop.queue(() => {}));
  assert.equal(loop.metrics().notifies, 1);
  assert.equal(loop.metrics().wakes, 1);
  port.close();
  drainAll(loop);
  assert.deepEqual(got, ["lazy"]);
});

Deno.test("from a worker, with minEvents 3: two lazy posts leave the loop asleep, the third wakes it; eager post, tryPost, postAsync and close each wake it alone", async () => {
  const K = 3;
  const got: unknown[] = [];
  const ctrl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
  const loop = new Loop({
    clock: new VirtualClock(),
    minEvents: K,
    spinMicros: 0,
    stallMs: Infinity, // no watchdog timeouts: only posts end a sleep
    onMessage: (d) => {
      got.push(d);
      Atomics.store(ctrl, C_DELIVERED, got.length);
    },
  });
  const w = new Int32Array(loop.buffer);
  // Seen from a macrotask of this thread, an armed WAIT_NR means the loop
  // finished arming, re-checking the queue and calling waitAsync.
  const observer = setInterval(() => {
    if (Atomics.load(w, WAIT_NR) === K) {
      Atomics.store(ctrl, C_ARMED, loop.metrics().armings);
    }
  }, 1);
  const task: ProducerTask = {
    mode: "wake",
    ctrl: ctrl.buffer as SharedArrayBuffer,
    buffer: loop.buffer,
    minEvents: K,
  };
  const spawned = spawnWorker(loop, WORKER, { data: task, name: "wake" });
  try {
    await runBounded(loop, () => `${got.length} delivered`, [spawned]);
  } finally {
    clearInterval(observer);
    spawned.terminate();
  }
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(Atomics.load(ctrl, C_LAZY_KEPT_ASLEEP), 1, "lazy posts woke it");
  assert.equal(
    Atomics.load(ctrl, C_LAZY_KEPT_ASLEEP_2),
    1,
    "lazy posts woke it",
  );
  const m = loop.metrics();
  // Threshold, eager post, eager tryPost, eager postAsync, close.
  assert.equal(m.notifies, 5, "notifies");
  assert.equal(m.wakes, 5, "wakes");
  assert.equal(m.armings, 5, "armings");
});
