/**
 * The benchmark's baselines (`bench/baselines/`) must be correct before
 * their numbers mean anything. One small contract runs against the Treiber
 * stack with reversal, the lock-guarded ring, twloop's consumer from before
 * batch acquire, and twloop's `MpscQueue` as the control: order, counts, capped passes, full queues, callbacks that stop
 * or throw, and a concurrent run with two producer workers.
 *
 * Items carry `a` = the producer's sequence number and `b` = its id, so
 * per-producer FIFO is checked on every item. Single-thread cases are seeded
 * and use tiny capacities so storage wraps around many times.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AtomicLinkConsumer } from "../bench/baselines/atomic_link_consumer.ts";
import { LockRing, LockRingProducer } from "../bench/baselines/lock_ring.ts";
import {
  TreiberProducer,
  TreiberStack,
} from "../bench/baselines/treiber_stack.ts";
import type { BurstKind } from "../bench/burst_queues.ts";
import {
  MpscQueue,
  Producer,
  PUSH_FULL,
  PUSH_OK,
  PUSH_WAS_EMPTY,
  type PushResult,
} from "../runtime/mpsc_queue.ts";
import type { BaselineJob } from "./workers/baseline_producer.ts";
import { rng as prng } from "./rng.ts";

/** An item as the contract sees it. */
interface Item {
  a: number;
  b: number;
}

interface Subject {
  buffer: SharedArrayBuffer;
  drain(limit: number, fn: (e: Item) => void | boolean): number;
  /** A producer; `push(a, b)`. */
  attach(): { push(a: number, b: number): PushResult };
}

/** `capacity`: items per producer (twloop, Treiber) or in all (ring). */
type Make = (producers: number, capacity: number) => Subject;

const SUBJECTS: Record<BurstKind | "treiberWasm", Make> = {
  twloop: (producers, capacity) => {
    const q = MpscQueue.create({
      producers,
      nodesPerProducer: capacity,
      bytesPerProducer: 0,
    });
    return {
      buffer: q.buffer,
      drain: (limit, fn) => q.drain(limit, fn),
      attach: () => {
        const p = Producer.attach(q.buffer);
        return { push: (a, b) => p.push(1, a, b) };
      },
    };
  },
  twloopAtomic: (producers, capacity) => {
    // twloop's buffer and producers, its consumer from before batch acquire.
    const buffer = MpscQueue.create({
      producers,
      nodesPerProducer: capacity,
      bytesPerProducer: 0,
    }).buffer;
    const q = new AtomicLinkConsumer(buffer);
    return {
      buffer,
      drain: (limit, fn) => q.drain(limit, fn),
      attach: () => {
        const p = Producer.attach(buffer);
        return { push: (a, b) => p.push(1, a, b) };
      },
    };
  },
  treiber: (producers, capacity) => {
    const q = TreiberStack.create({ producers, nodesPerProducer: capacity });
    return {
      buffer: q.buffer,
      drain: (limit, fn) => q.drain(limit, fn),
      attach: () => {
        const p = TreiberProducer.attach(q.buffer);
        return { push: (a, b) => p.push(1, a, b) };
      },
    };
  },
  treiberWasm: (producers, capacity) => {
    // The saturation bench's same-footing row: WebAssembly atomic calls.
    const q = TreiberStack.create({
      producers,
      nodesPerProducer: capacity,
      wasm: true,
    });
    assert.ok(q.memory instanceof WebAssembly.Memory);
    return {
      buffer: q.buffer,
      drain: (limit, fn) => q.drain(limit, fn),
      attach: () => {
        const p = TreiberProducer.attach(structuredClone(q.memory!));
        return { push: (a, b) => p.push(1, a, b) };
      },
    };
  },
  lockRing: (producers, capacity) => {
    // One shared ring: the same total room, rounded up to a power of two.
    const q = LockRing.create(2 ** Math.ceil(Math.log2(capacity * producers)));
    return {
      buffer: q.buffer,
      drain: (limit, fn) => q.drain(limit, fn),
      attach: () => {
        const p = LockRingProducer.attach(q.buffer);
        return { push: (a, b) => p.push(a, b) };
      },
    };
  },
};

const KINDS = Object.keys(SUBJECTS) as (keyof typeof SUBJECTS)[];
/** Kinds the two-worker case covers (its worker attaches by kind). */
const WORKER_KINDS = KINDS.filter((k) => k !== "treiberWasm") as BurstKind[];

/** Drains up to `limit` items into a list of `[a, b]` pairs. */
function take(q: Subject, limit = Infinity): number[][] {
  const got: number[][] = [];
  const n = q.drain(limit, (e) => {
    got.push([e.a, e.b]);
  });
  assert.equal(n, got.length, "drain's count matches the callbacks");
  return got;
}

function seq(from: number, to: number, b = 0): number[][] {
  return Array.from({ length: to - from }, (_, i) => [from + i, b]);
}

for (const kind of KINDS) {
  const make = SUBJECTS[kind];

  Deno.test(`${kind}: one producer's items come out in push order, each once`, () => {
    const q = make(1, 128);
    const p = q.attach();
    for (let i = 0; i < 100; i++) assert.notEqual(p.push(i, 0), PUSH_FULL);
    assert.deepEqual(take(q), seq(0, 100));
    assert.deepEqual(take(q), []);
  });

  Deno.test(`${kind}: the first push into an empty queue says so`, () => {
    const q = make(1, 8);
    const p = q.attach();
    assert.equal(p.push(0, 0), PUSH_WAS_EMPTY);
    assert.equal(p.push(1, 0), PUSH_OK);
    take(q);
    assert.equal(p.push(2, 0), PUSH_WAS_EMPTY);
  });

  Deno.test(`${kind}: capped passes run at most the cap and keep order across later pushes`, () => {
    const q = make(1, 256);
    const p = q.attach();
    for (let i = 0; i < 50; i++) p.push(i, 0);
    assert.deepEqual(take(q, 20), seq(0, 20));
    for (let i = 50; i < 60; i++) p.push(i, 0);
    assert.deepEqual(take(q, 20), seq(20, 40));
    assert.deepEqual(take(q, 20), seq(40, 60));
    assert.deepEqual(take(q, 20), []);
  });

  Deno.test(`${kind}: a full queue refuses a push, drops nothing, and takes it after a drain`, () => {
    const q = make(1, 4);
    const p = q.attach();
    for (let i = 0; i < 4; i++) assert.notEqual(p.push(i, 0), PUSH_FULL);
    assert.equal(p.push(4, 0), PUSH_FULL);
    assert.deepEqual(take(q, 1), seq(0, 1));
    assert.notEqual(p.push(4, 0), PUSH_FULL);
    assert.deepEqual(take(q), seq(1, 5));
  });

  Deno.test(`${kind}: a callback returning false ends the pass after its item`, () => {
    const q = make(1, 16);
    const p = q.attach();
    for (let i = 0; i < 10; i++) p.push(i, 0);
    const got: number[] = [];
    const n = q.drain(Infinity, (e) => {
      got.push(e.a);
      return e.a !== 3;
    });
    assert.equal(n, 4);
    assert.deepEqual(got, [0, 1, 2, 3]);
    assert.deepEqual(take(q), seq(4, 10));
  });

  Deno.test(`${kind}: a throwing callback consumes its item and leaves the rest queued`, () => {
    const q = make(1, 16);
    const p = q.attach();
    for (let i = 0; i < 5; i++) p.push(i, 0);
    assert.throws(
      () =>
        q.drain(Infinity, (e) => {
          if (e.a === 2) throw new Error("boom");
        }),
      /boom/,
    );
    assert.deepEqual(take(q), seq(3, 5));
  });

  Deno.test(`${kind}: three producers interleaved at random, tiny storage: exact push order, counts`, () => {
    const rand = prng(0x5eed + kind.length);
    const q = make(3, 8);
    const ps = [q.attach(), q.attach(), q.attach()];
    const next = [0, 0, 0];
    const pushed: number[][] = [];
    const drained: number[][] = [];
    for (let step = 0; step < 5000; step++) {
      if (rand() < 0.6) {
        const id = Math.floor(rand() * 3);
        if (ps[id].push(next[id], id) !== PUSH_FULL) {
          pushed.push([next[id], id]);
          next[id]++;
        }
      } else {
        drained.push(...take(q, 1 + Math.floor(rand() * 25)));
      }
    }
    drained.push(...take(q));
    // One thread: the queue's order is exactly the order pushes succeeded.
    assert.deepEqual(drained, pushed);
    assert.ok(next.every((n) => n > 100), `each producer pushed: ${next}`);
  });
}

// ---------------------------------------------------------------------------
// Concurrent producers

const WORKERS = 2;
const PER_WORKER = 20_000;

function spawn(): Worker {
  return new Worker(
    new URL("./workers/baseline_producer.ts", import.meta.url),
    { type: "module" },
  );
}

/** Resolves with each worker's next message, rejecting on an error event. */
function next(worker: Worker, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no message in ${ms} ms`)),
      ms,
    );
    worker.onmessage = (e) => {
      clearTimeout(timer);
      resolve(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      clearTimeout(timer);
      reject(new Error(e.message));
    };
  });
}

Deno.test("two producer workers at once: every queue keeps each producer's order and count", async () => {
  const workers = Array.from({ length: WORKERS }, spawn);
  try {
    for (const kind of WORKER_KINDS) {
      const q = SUBJECTS[kind](WORKERS, 256);
      const start = new SharedArrayBuffer(4);
      const ready = workers.map((w) => next(w, 30_000));
      workers.forEach((w, id) => {
        const job: BaselineJob = {
          kind,
          buffer: q.buffer,
          start,
          id,
          count: PER_WORKER,
        };
        w.postMessage(job);
      });
      assert.deepEqual(await Promise.all(ready), workers.map(() => "ready"));
      const done = workers.map((w) => next(w, 10_000));
      const s = new Int32Array(start);
      Atomics.store(s, 0, 1);
      Atomics.notify(s, 0);

      const expect = new Array(WORKERS).fill(0);
      let wrong = 0;
      let received = 0;
      const nap = new Int32Array(new SharedArrayBuffer(4));
      const deadline = performance.now() + 30_000;
      while (received < WORKERS * PER_WORKER && performance.now() < deadline) {
        const n = q.drain(20, (e) => {
          if (e.a !== expect[e.b]) wrong++;
          expect[e.b] = e.a + 1;
        });
        received += n;
        if (n === 0) Atomics.wait(nap, 0, 0, 0.02);
      }
      for (const m of await Promise.all(done)) assert.equal(m, "done", kind);
      assert.equal(take(q).length, 0, `${kind}: nothing beyond the pushes`);
      assert.equal(wrong, 0, `${kind}: per-producer order`);
      assert.equal(received, WORKERS * PER_WORKER, `${kind}: count`);
      assert.deepEqual(expect, workers.map(() => PER_WORKER), kind);
    }
  } finally {
    for (const w of workers) w.terminate();
  }
});
