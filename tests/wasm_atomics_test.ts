/**
 * The WebAssembly atomic steps (`runtime/wasm_atomics.ts`): each step does
 * what the JS `Atomics` call it stands for does, on the same words, checked
 * against JS `Atomics` on a twin buffer with seeded inputs; queue buffers
 * are shared memories that travel to producers and ports; bad memories are
 * refused with a clear error.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, Loop, MpscQueue, Producer } from "../mod.ts";
import {
  atomicSteps,
  memoryOf,
  PAGE_BYTES,
  WordAtomics,
} from "../runtime/wasm_atomics.ts";
import { armFence, fenceArmed } from "../runtime/producer.ts";
import { rng } from "./rng.ts";
import { TestWorker } from "./worker_harness.ts";

function sharedMemory(pages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({
    initial: pages,
    maximum: pages,
    shared: true,
  });
}

/** A byte copy of a loop's queue in a new shared memory of its size. */
function copyOf(loop: Loop): WebAssembly.Memory {
  const pages = loop.buffer.byteLength / PAGE_BYTES;
  const copy = sharedMemory(pages);
  new Uint8Array(copy.buffer).set(new Uint8Array(loop.buffer));
  return copy;
}

Deno.test("wasm steps: each step matches JS Atomics on the same inputs (seeded)", () => {
  const seed = 0x3a7f01;
  const random = rng(seed);
  const memory = sharedMemory(1);
  const steps = atomicSteps(memory);
  const w = new Int32Array(memory.buffer);
  const twin = new Int32Array(new SharedArrayBuffer(PAGE_BYTES));
  const word = () => Math.floor(random() * 64);
  const value = () => (random() * 2 ** 32) | 0;
  for (let i = 0; i < 64; i++) w[i] = twin[i] = value();
  /** A push's chain and tail; does the exchange on the twin. */
  const push = () => {
    const first = 1 + Math.floor(random() * 12);
    const last = 1 + Math.floor(random() * 12);
    w[0] = twin[0] = 1 + Math.floor(random() * 12);
    return { first, last, prev: Atomics.exchange(twin, 0, last) };
  };
  for (let step = 0; step < 20_000; step++) {
    const i = word();
    const v = value();
    const where = `seed 0x${seed.toString(16)}, step ${step}`;
    switch (step % 9) {
      case 0:
        assert.equal(steps.load(i * 4), Atomics.load(twin, i), where);
        break;
      case 1:
        steps.store(i * 4, v);
        Atomics.store(twin, i, v);
        break;
      case 2: {
        const expected = random() < 0.5 ? twin[i] : v;
        assert.equal(
          steps.cas(i * 4, expected, v ^ 1),
          Atomics.compareExchange(twin, i, expected, v ^ 1),
          where,
        );
        break;
      }
      case 3:
        assert.equal(steps.or(i * 4, v), Atomics.or(twin, i, v), where);
        break;
      case 4:
        assert.equal(steps.and(i * 4, v), Atomics.and(twin, i, v), where);
        break;
      case 6:
        assert.equal(steps.xchg(i * 4, v), Atomics.exchange(twin, i, v), where);
        break;
      case 5: {
        // publish(tail, record, links, first, last): word 0 is the tail, 1
        // the record; links start at word 8, 4 words a node.
        const { first, last, prev } = push();
        twin[1] = prev;
        Atomics.store(twin, 8 + prev * 4, first);
        assert.equal(steps.publish(0, 4, 32, first, last), prev, where);
        break;
      }
      case 7: {
        // publishLocal(tail, links, first, last): no record, plain link.
        const { first, last, prev } = push();
        twin[8 + prev * 4] = first;
        assert.equal(steps.publishLocal(0, 32, first, last), prev, where);
        break;
      }
      case 8: {
        // publishFenced(tail, record, links, first, last, node, fence, mask,
        // waitNr): word 2 the node record, 3 the fence, 4 the wake word.
        const { first, last, prev } = push();
        twin[1] = prev;
        Atomics.store(twin, 8 + prev * 4, first);
        twin[2] = 0;
        Atomics.and(twin, 3, ~1);
        const nr = Atomics.load(twin, 4);
        const got = steps.publishFenced(0, 4, 32, first, last, 8, 12, ~1, 16);
        assert.equal(got, nr, where);
        break;
      }
    }
    assert.deepEqual(w.subarray(0, 64), twin.subarray(0, 64), where);
  }
});

Deno.test("wasm steps: a queue's buffer is a shared memory that producers and ports take", () => {
  const q = MpscQueue.create({ producers: 2, nodesPerProducer: 8 });
  assert.ok(q.memory instanceof WebAssembly.Memory);
  assert.equal(q.memory.buffer, q.buffer);
  assert.equal(memoryOf(q.buffer), q.memory);
  assert.equal(q.buffer.byteLength % PAGE_BYTES, 0);
  assert.ok(new WordAtomics(q.buffer).steps !== undefined);
  const p = Producer.attach(q.memory);
  p.push(5, 1, 2);
  const got: number[] = [];
  q.drain(10, (e) => {
    got.push(e.tag, e.a, e.b);
  });
  assert.deepEqual(got, [5, 1, 2]);

  const loop = new Loop();
  try {
    const h = loop.port();
    assert.ok(h.memory instanceof WebAssembly.Memory);
    assert.equal(structuredClone(h).memory instanceof WebAssembly.Memory, true);
    const seen: unknown[] = [];
    loop.onMessage = (v) => seen.push(v);
    connect(h).post(42);
    loop.runNoWait();
    assert.deepEqual(seen, [42]);
  } finally {
    loop.close();
  }
});

Deno.test("wasm steps: every copy of a queue's memory on one thread maps to the buffer it already has", () => {
  const q = MpscQueue.create({ producers: 3, nodesPerProducer: 8 });
  const a = Producer.attach(structuredClone(q.memory!));
  const b = Producer.attach(structuredClone(q.memory!));
  assert.equal(a.buffer, q.buffer);
  assert.equal(b.buffer, q.buffer);
  // Another queue's memory keeps its own buffer.
  const other = MpscQueue.create({ producers: 3, nodesPerProducer: 8 });
  assert.equal(
    Producer.attach(structuredClone(other.memory!)).buffer,
    other.buffer,
  );
  a.push(1, 0, 0);
  b.push(2, 0, 0);
  const tags: number[] = [];
  q.drain(10, (e) => {
    tags.push(e.tag);
  });
  assert.deepEqual(tags, [1, 2]);
});

Deno.test("wasm steps: a handle whose memory is not a shared WebAssembly.Memory is refused", () => {
  const loop = new Loop();
  try {
    const h = loop.port();
    assert.throws(
      () => connect({ ...h, memory: {} as WebAssembly.Memory }),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message ===
          "Cannot connect port: memory must be a WebAssembly.Memory",
    );
    assert.throws(
      () =>
        connect({
          ...h,
          memory: new WebAssembly.Memory({ initial: 1, maximum: 1 }),
        }),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message === "Cannot connect port: the memory is not shared",
    );
    // Nothing was claimed: the real handle still connects.
    connect(h).post(1);
  } finally {
    loop.close();
  }
});

Deno.test("wasm steps: a handle whose memory and buffer are different queues is refused", () => {
  const a = new Loop({ capacity: { producers: 4, nodesPerProducer: 4 } });
  const b = new Loop({ capacity: { producers: 4, nodesPerProducer: 4 } });
  try {
    const ha = a.port();
    const hb = b.port();
    assert.equal(ha.slot, hb.slot, "same slot and generation in each loop");
    assert.throws(
      () => connect({ ...hb, memory: ha.memory }),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message ===
          "Cannot connect port: the handle's memory and buffer are different queues",
    );
    // Nothing was claimed: each rightful handle connects and delivers.
    const seen: unknown[] = [];
    a.onMessage = (v) => seen.push(["a", v]);
    b.onMessage = (v) => seen.push(["b", v]);
    connect(ha).post(1);
    connect(hb).post(2);
    a.runNoWait();
    b.runNoWait();
    assert.deepEqual(seen, [["a", 1], ["b", 2]]);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("wasm steps: a shared memory whose maximum differs from its size is refused with TypeError, and not remembered", () => {
  const loop = new Loop({ capacity: { producers: 4, nodesPerProducer: 64 } });
  try {
    const h = loop.port();
    const pages = loop.buffer.byteLength / PAGE_BYTES;
    const m = new WebAssembly.Memory({
      initial: pages,
      maximum: pages + 1,
      shared: true,
    });
    // A copy of the queue under another id, so it is not mapped to the
    // loop's own buffer.
    new Uint8Array(m.buffer).set(new Uint8Array(loop.buffer));
    new Int32Array(m.buffer)[6] ^= 1;
    for (const attempt of [1, 2]) {
      assert.throws(
        () =>
          connect({ ...h, buffer: m.buffer as SharedArrayBuffer, memory: m }),
        (e: unknown) =>
          e instanceof TypeError &&
          e.message ===
            "Cannot connect port: the memory's maximum must equal its size (as a queue makes it)",
        `attempt ${attempt}`,
      );
    }
    assert.equal(memoryOf(m.buffer as SharedArrayBuffer), undefined);
    connect(h).post(7);
    const seen: unknown[] = [];
    loop.onMessage = (v) => seen.push(v);
    loop.runNoWait();
    assert.deepEqual(seen, [7]);
  } finally {
    loop.close();
  }
});

Deno.test("wasm steps: a producer without a port's fence cannot be armed to publish through one", () => {
  const q = MpscQueue.create({ producers: 2, nodesPerProducer: 8 });
  const p = Producer.attach(q.memory!);
  armFence(p, true); // no fence word: stays disarmed
  assert.equal(fenceArmed(p), false);
  p.push(3, 4, 5);
  const got: number[] = [];
  q.drain(10, (e) => {
    got.push(e.tag, e.a, e.b);
  });
  assert.deepEqual(got, [3, 4, 5]);
});

Deno.test("without a WebAssembly global (as under V8's --jitless), loops, producers and ports run on JS Atomics", () => {
  const g = globalThis as { WebAssembly?: unknown };
  const saved = g.WebAssembly;
  delete g.WebAssembly;
  try {
    assert.equal(typeof g.WebAssembly, "undefined");
    const loop = new Loop();
    try {
      const h = loop.port();
      assert.equal(h.memory, undefined);
      assert.ok(h.buffer instanceof SharedArrayBuffer);
      const seen: unknown[] = [];
      loop.onMessage = (v) => seen.push(v);
      const port = connect(structuredClone(h));
      port.post(1);
      port.post({ two: [2n, "2"] });
      const ran: number[] = [];
      loop.queue(() => ran.push(3));
      loop.runNoWait();
      assert.deepEqual(seen, [1, { two: [2n, "2"] }]);
      assert.deepEqual(ran, [3]);
    } finally {
      loop.close();
    }
    const q = MpscQueue.create({ producers: 2, nodesPerProducer: 8 });
    assert.equal(q.memory, undefined);
    Producer.attach(q.buffer).push(9, 8, 7);
    const got: number[] = [];
    q.drain(10, (e) => {
      got.push(e.tag, e.a, e.b);
    });
    assert.deepEqual(got, [9, 8, 7]);
  } finally {
    g.WebAssembly = saved;
  }
});

Deno.test("wasm steps: a byte copy of a queue's memory is refused, on the loop's thread and in a thread that never saw the queue; the rightful handle still delivers", async () => {
  const loop = new Loop({ capacity: { producers: 4, nodesPerProducer: 64 } });
  try {
    const got: unknown[] = [];
    loop.onMessage = (v) => got.push(v);
    const h = loop.port();
    const copy = copyOf(loop);
    assert.throws(
      () => connect({ ...h, memory: copy }),
      (e: unknown) =>
        e instanceof TypeError &&
        /^Cannot connect port: the memory is not the queue's own/.test(
          e.message,
        ),
    );
    const w = new TestWorker<
      { kind: "done"; attached: string; forged: string; rightful: string }
    >(
      new URL("./workers/forging_connector.ts", import.meta.url),
      loop.port(),
    );
    try {
      const r = await w.next(10_000, "the forging worker's report");
      assert.match(
        r.forged,
        /^TypeError: Cannot connect port: the memory is not the queue's own/,
      );
      assert.equal(r.attached, "used as it is");
      assert.equal(r.rightful, "ok");
    } finally {
      w.terminate();
    }
    connect(h).post("here");
    for (let i = 0; i < 3; i++) loop.runNoWait();
    assert.deepEqual(got.toSorted(), ["here", "rightful"]);
  } finally {
    loop.close();
  }
});

Deno.test("wasm steps: a thread without WebAssembly connects a handle that carries a memory, through its buffer", () => {
  const loop = new Loop();
  try {
    const got: unknown[] = [];
    loop.onMessage = (v) => got.push(v);
    const h = loop.port();
    assert.ok(h.memory !== undefined);
    const g = globalThis as { WebAssembly?: unknown };
    const saved = g.WebAssembly;
    delete g.WebAssembly; // as a --jitless worker receives it
    try {
      const port = connect(h);
      port.post(7);
    } finally {
      g.WebAssembly = saved;
    }
    loop.runNoWait();
    assert.deepEqual(got, [7]);
  } finally {
    loop.close();
  }
});

Deno.test("wasm steps: a memory attached with nothing to check it against is used as it is, and does not become the thread's memory for its queue", () => {
  const loop = new Loop({ capacity: { producers: 4, nodesPerProducer: 64 } });
  try {
    const got: unknown[] = [];
    loop.onMessage = (v) => got.push(v);
    const h = loop.port();
    const copy = copyOf(loop);
    new Int32Array(copy.buffer)[6] ^= 1; // a queue id this thread never saw
    const p = Producer.attach(copy);
    assert.equal(p.buffer, copy.buffer, "used as it is");
    assert.throws(
      () =>
        connect({ ...h, buffer: undefined as unknown as SharedArrayBuffer }),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message ===
          "Cannot connect port: a handle with a memory must carry its buffer too",
    );
    connect(h).post("rightful");
    loop.runNoWait();
    assert.deepEqual(got, ["rightful"]);
  } finally {
    loop.close();
  }
});
