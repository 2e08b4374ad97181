/**
 * The bad-input table: every public entry point fed wrong types,
 * out-of-range numbers, closed loops, foreign or detached buffers,
 * re-entrant calls and oversized payloads answers with its documented
 * error class and a message of the form `Cannot <action>: <reason>`, and
 * leaves the loop usable: after each case a task still runs and a message
 * posted before it is still delivered, once. README.md's "Errors" table
 * lists the same rows.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  connect,
  DataCloneError,
  deadline,
  DeadlockError,
  delay,
  Loop,
  LoopClosedError,
  MpscQueue,
  PayloadTooLargeError,
  pooledMap,
  type PortHandle,
  Producer,
  type QueueConfig,
  ReentrancyError,
  VirtualClock,
} from "../mod.ts";

type ErrorClass = new (...args: never[]) => Error;

/** One row: what is called, with what, and the error it must raise. */
interface Case {
  call: string;
  input: string;
  error: ErrorClass;
  message: RegExp;
  /** Throws (or rejects) on the given fresh, open loop. */
  run(loop: Loop): unknown;
}

const fn = () => {};
const small = { capacity: { nodesPerProducer: 4, bytesPerProducer: 256 } };

const CASES: Case[] = [
  // Loop options.
  ...[
    ["maxEvents", 0, RangeError],
    ["maxEvents", 2.5, TypeError],
    ["maxEvents", "20", TypeError],
    ["minEvents", 0, RangeError],
    ["stallMs", -1, RangeError],
    ["stallMs", NaN, RangeError],
    ["spinMicros", -5, RangeError],
  ].map(([name, value, error]): Case => ({
    call: "new Loop(options)",
    input: `${name}: ${typeof value === "string" ? `"${value}"` : value}`,
    error: error as ErrorClass,
    message: new RegExp(`^Cannot create loop: ${name}`),
    run: () => new Loop({ [name as string]: value }),
  })),
  {
    call: "new Loop(options)",
    input: "capacity.nodesPerProducer: 2",
    error: RangeError,
    message:
      /^Cannot create loop: capacity\.nodesPerProducer must be a power of two from 4 to 1048576, got 2$/,
    run: () => new Loop({ capacity: { nodesPerProducer: 2 } }),
  },
  {
    call: "new Loop(options)",
    input: "onError: 5",
    error: TypeError,
    message: /^Cannot create loop: onError must be a function$/,
    run: () => new Loop({ onError: 5 as unknown as () => void }),
  },
  {
    call: "new Loop(options)",
    input: "clock without now()",
    error: TypeError,
    message: /^Cannot create loop: clock must have now\(\)$/,
    run: () => new Loop({ clock: {} as unknown as VirtualClock }),
  },
  {
    call: "loop.track(promise, cb)",
    input: "promise 42",
    error: TypeError,
    message: /^Cannot track promise: expected a thenable$/,
    run: (loop) => loop.track(42 as unknown as Promise<void>, fn),
  },
  // Tasks and timers.
  {
    call: "loop.queue(fn)",
    input: "fn not a function",
    error: TypeError,
    message: /^Cannot queue task: expected a function$/,
    run: (loop) => loop.queue(42 as unknown as () => void),
  },
  {
    call: "loop.setTimer(fn, delay)",
    input: "fn not a function",
    error: TypeError,
    message: /^Cannot set timer: /,
    run: (loop) => loop.setTimer("x" as unknown as () => void, 1),
  },
  ...[-1, NaN, Infinity].map((d): Case => ({
    call: "loop.setTimer(fn, delay)",
    input: `delay ${d}`,
    error: RangeError,
    message: /^Cannot set timer: /,
    run: (loop) => loop.setTimer(fn, d),
  })),
  {
    call: "loop.setTimer(fn, delay)",
    input: `delay "5"`,
    error: TypeError,
    message: /^Cannot set timer: /,
    run: (loop) => loop.setTimer(fn, "5" as unknown as number),
  },
  {
    call: "loop.setTimer(fn, delay, interval)",
    input: "interval 0",
    error: RangeError,
    message: /^Cannot set timer: /,
    run: (loop) => loop.setTimer(fn, 1, 0),
  },
  // Re-entrancy.
  ...(["runSync", "runOnceSync", "runNoWait"] as const).map((m): Case => ({
    call: `loop.${m}() inside a task`,
    input: "re-entrant call",
    error: ReentrancyError,
    message: new RegExp(`^Cannot ${m}: `),
    run: (loop) => {
      let caught: unknown;
      loop.queue(() => {
        try {
          loop[m]();
        } catch (e) {
          caught = e;
        }
      });
      loop.runNoWait();
      throw caught;
    },
  })),
  {
    call: "loop.run() inside a task",
    input: "re-entrant call",
    error: ReentrancyError,
    message: /^Cannot run: /,
    run: (loop) => {
      let caught: Promise<unknown> | undefined;
      loop.queue(() => caught = loop.run());
      loop.runNoWait();
      return caught;
    },
  },
  // Ports.
  ...[
    ["null", null],
    ["{}", {}],
    ["an ArrayBuffer", {
      kind: "twloop.port",
      buffer: new ArrayBuffer(64),
      slot: 0,
    }],
    ["a foreign SharedArrayBuffer", {
      kind: "twloop.port",
      buffer: new SharedArrayBuffer(4096),
      slot: 0,
    }],
  ].map(([input, handle]): Case => ({
    call: "connect(handle)",
    input: `handle ${input}`,
    error: TypeError,
    message: /^Cannot connect port: /,
    run: () => connect(handle as PortHandle),
  })),
  {
    call: "connect(handle)",
    input: "a memory that is not a WebAssembly.Memory",
    error: TypeError,
    message: /^Cannot connect port: memory must be a WebAssembly\.Memory$/,
    run: (loop) =>
      connect({ ...loop.port(), memory: {} as WebAssembly.Memory }),
  },
  {
    call: "connect(handle)",
    input: "a WebAssembly.Memory that is not shared",
    error: TypeError,
    message: /^Cannot connect port: the memory is not shared$/,
    run: (loop) =>
      connect({
        ...loop.port(),
        memory: new WebAssembly.Memory({ initial: 1, maximum: 1 }),
      }),
  },
  {
    call: "connect(handle)",
    input: "a memory without the handle's buffer",
    error: TypeError,
    message:
      /^Cannot connect port: a handle with a memory must carry its buffer too$/,
    run: (loop) =>
      connect({
        ...loop.port(),
        buffer: undefined as unknown as SharedArrayBuffer,
      }),
  },
  {
    call: "connect(handle)",
    input: "a memory of another queue than its buffer",
    error: TypeError,
    message:
      /^Cannot connect port: the handle's memory and buffer are different queues$/,
    run: (loop) => {
      const other = new Loop(small);
      try {
        return connect({ ...loop.port(), memory: other.port().memory });
      } finally {
        other.close();
      }
    },
  },
  {
    call: "connect(handle)",
    input: "a shared memory whose maximum differs from its size",
    error: TypeError,
    message: /^Cannot connect port: the memory's maximum must equal its size/,
    run: (loop) => {
      const pages = loop.buffer.byteLength / 65536;
      const m = new WebAssembly.Memory({
        initial: pages,
        maximum: pages + 1,
        shared: true,
      });
      new Uint8Array(m.buffer).set(new Uint8Array(loop.buffer));
      new Int32Array(m.buffer)[6] ^= 1; // another queue id
      const buffer = m.buffer as SharedArrayBuffer;
      return connect({ ...loop.port(), buffer, memory: m });
    },
  },
  {
    call: "port.post(data)",
    input: "posted again from a getter while its value is encoded",
    error: ReentrancyError,
    message:
      /^Cannot post message: this port is already writing a message \(posted again while encoding it\)$/,
    run: (loop) => {
      const port = connect(loop.port());
      return port.post({
        get x() {
          return port.post(1);
        },
      });
    },
  },
  {
    call: "port.close()",
    input: "called from a getter while the port encodes a value",
    error: ReentrancyError,
    message:
      /^Cannot close port: this port is already writing a message \(closed while encoding it\)$/,
    run: (loop) => {
      const port = connect(loop.port());
      let inner: unknown;
      port.post({
        get x() {
          try {
            port.close();
          } catch (e) {
            inner = e;
          }
          return 1;
        },
      });
      throw inner;
    },
  },
  {
    call: "connect(handle)",
    input: "slot out of range",
    error: RangeError,
    message: /^Cannot (connect port|attach producer): /,
    run: (loop) => connect({ ...loop.port(), slot: 9999 }),
  },
  {
    call: "connect(handle)",
    input: "a handle already connected",
    error: RangeError,
    message: /^Cannot connect port: slot \d+ is already connected/,
    run: (loop) => {
      const h = loop.port();
      connect(h);
      connect(h);
    },
  },
  {
    call: "port.post(data)",
    input: "a function",
    error: DataCloneError,
    message: /^Cannot post message: /,
    run: (loop) => connect(loop.port()).post(fn),
  },
  {
    call: "port.post(data)",
    input: "a symbol",
    error: DataCloneError,
    message: /^Cannot post message: /,
    run: (loop) => connect(loop.port()).post(Symbol("s")),
  },
  {
    call: "port.post(data)",
    input: "a class instance with private state",
    error: DataCloneError,
    message: /^Cannot post message: /,
    run: (loop) =>
      connect(loop.port()).post(
        new (class X {
          #p = 1;
          get p() {
            return this.#p;
          }
        })(),
      ),
  },
  {
    call: "port.post(data)",
    input: "a view of a detached buffer",
    error: DataCloneError,
    message: /^Cannot post message: /,
    run: (loop) => {
      const b = new ArrayBuffer(8);
      const view = new Uint8Array(b);
      structuredClone(b, { transfer: [b] });
      connect(loop.port()).post(view);
    },
  },
  {
    call: "port.post(data)",
    input: "bytes larger than the port's storage",
    error: PayloadTooLargeError,
    message: /^Cannot post message: .*\d+/,
    run: (loop) => connect(loop.port()).post(new Uint8Array(1 << 20)),
  },
  {
    call: "port.post(data, options)",
    input: `wake "sometimes"`,
    error: TypeError,
    message: /^Cannot post message: /,
    run: (loop) =>
      connect(loop.port()).post(1, {
        wake: "sometimes" as "lazy",
      }),
  },
  {
    call: "port.post(data, options)",
    input: "timeout -1",
    error: RangeError,
    message: /^Cannot post message: /,
    run: (loop) => connect(loop.port()).post(1, { timeout: -1 }),
  },
  {
    call: "port.post(data) on the loop's thread",
    input: "full port",
    error: DeadlockError,
    message: /^Cannot post message: .*would deadlock$/,
    run: (loop) => {
      const p = connect(loop.port());
      while (p.tryPost(0));
      p.post(0);
    },
  },
  ...[-1, 9999].map((slot): Case => ({
    call: "loop.producerDied(slot)",
    input: `slot ${slot}`,
    error: RangeError,
    message: /^Cannot report producer death: /,
    run: (loop) => loop.producerDied(slot),
  })),
  {
    call: "loop.producerDied(slot)",
    input: "the loop's own slot",
    error: RangeError,
    message: /^Cannot report producer death: /,
    run: (loop) => {
      const used = new Set<number>();
      for (;;) { // every port slot taken: the one left is the loop's own
        try {
          used.add(loop.port().slot);
        } catch {
          break;
        }
      }
      for (let s = 0;; s++) if (!used.has(s)) loop.producerDied(s);
    },
  },
  {
    call: "loop.onPortClosed(slot, fn)",
    input: "fn not a function",
    error: TypeError,
    message: /^Cannot watch port close: /,
    run: (loop) =>
      loop.onPortClosed(loop.port().slot, 5 as unknown as () => void),
  },
  // Queue and clock.
  ...[-1, "big", null].map((config): Case => ({
    call: "MpscQueue.create(config)",
    input: `config ${JSON.stringify(config)}`,
    error: TypeError,
    message: /^Cannot create queue: config must be an object, got /,
    run: () => MpscQueue.create(config as unknown as QueueConfig),
  })),
  {
    call: "MpscQueue.create(config)",
    input: "producers 0",
    error: RangeError,
    message: /^Cannot create queue: /,
    run: () => MpscQueue.create({ producers: 0 }),
  },
  {
    call: "Producer.attach(buffer, slot)",
    input: "a foreign SharedArrayBuffer",
    error: TypeError,
    message: /^Cannot attach producer: /,
    run: () => Producer.attach(new SharedArrayBuffer(4096), 0),
  },
  {
    call: "Producer.attach(memory)",
    input: "a WebAssembly.Memory that is not shared",
    error: TypeError,
    message: /^Cannot attach producer: the memory is not shared$/,
    run: () => Producer.attach(new WebAssembly.Memory({ initial: 1 })),
  },
  {
    call: "clock.advance(ms)",
    input: "ms -1",
    error: RangeError,
    message: /^Cannot advance clock: /,
    run: () => new VirtualClock().advance(-1),
  },
  // Async helpers.
  {
    call: "delay(loop, ms)",
    input: "ms -1",
    error: RangeError,
    message: /^Cannot start delay: /,
    run: (loop) => delay(loop, -1),
  },
  {
    call: "delay(loop, ms)",
    input: "loop not a Loop",
    error: TypeError,
    message: /^Cannot start delay: /,
    run: () => delay({} as Loop, 1),
  },
  {
    call: "deadline(loop, promise, ms)",
    input: "ms NaN",
    error: RangeError,
    message: /^Cannot set deadline: /,
    run: (loop) => deadline(loop, Promise.resolve(1), NaN),
  },
  {
    call: "deadline(loop, promise, ms)",
    input: "promise not a thenable",
    error: TypeError,
    message: /^Cannot set deadline: /,
    run: (loop) => deadline(loop, 5 as unknown as Promise<number>, 1),
  },
  {
    call: "pooledMap(loop, limit, items, fn)",
    input: "limit 0",
    error: RangeError,
    message: /^Cannot start pooled map: limit must be >= 1/,
    run: (loop) => pooledMap(loop, 0, [1], (x) => Promise.resolve(x)),
  },
];

/** Runs `f`, sync or async, and returns what it threw or rejected with. */
async function caught(f: () => unknown): Promise<unknown> {
  try {
    const r = f();
    if (r instanceof Promise) await r;
    if (r !== null && typeof r === "object" && Symbol.asyncIterator in r) {
      for await (const _ of r as AsyncIterable<unknown>) {
        // drain
      }
    }
  } catch (e) {
    return e;
  }
  return undefined;
}

for (const c of CASES) {
  Deno.test(`bad input: ${c.call} with ${c.input} -> ${c.error.name}`, async () => {
    const loop = new Loop({ clock: new VirtualClock(), ...small });
    const witness = connect(loop.port());
    witness.post("before");
    const got: unknown[] = [];
    loop.onMessage = (d) => got.push(d);
    const e = await caught(() => c.run(loop));
    assert.ok(e instanceof c.error, `threw ${String(e)}, not ${c.error.name}`);
    assert.match((e as Error).message, c.message);
    // The loop is still usable, and nothing queued before was lost.
    let ran = 0;
    loop.queue(() => ran++);
    witness.post("after");
    for (let i = 0; i < 100 && loop.runNoWait() > 0; i++);
    assert.equal(ran, 1, "a task queued after the error did not run");
    assert.deepEqual(got.filter((d) => typeof d === "string"), [
      "before",
      "after",
    ]);
  });
}

Deno.test("bad input: every call on a closed loop throws LoopClosedError naming the action", () => {
  const loop = new Loop({ clock: new VirtualClock() });
  const port = connect(loop.port());
  loop.close();
  const calls: [string, () => unknown][] = [
    ["queue task", () => loop.queue(fn)],
    ["set timer", () => loop.setTimer(fn, 1)],
    ["create port", () => loop.port()],
    ["track promise", () => loop.track(Promise.resolve(), fn)],
    ["post message", () => port.post(7)],
    ["post message", () => port.tryPost(7)],
  ];
  for (const [action, call] of calls) {
    assert.throws(call, (e) => {
      assert.ok(e instanceof LoopClosedError, String(e));
      assert.match(e.message, new RegExp(`^Cannot ${action}: loop is closed`));
      return true;
    });
  }
  assert.throws(() => port.post(7), (e) => (e as LoopClosedError).data === 7);
});
