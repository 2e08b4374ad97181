/**
 * The stall watchdog (`runtime/loop_watchdog.ts`): a wake-up lost on
 * purpose, a push left half-linked, and work below the wake threshold,
 * which is not a stall.
 *
 * These tests need real sleeps of a few tens of milliseconds (the watchdog
 * bounds a real `Atomics.wait`); they assert what was reported, never how
 * long anything took. Every wait is bounded and fails loudly.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  FIRST_USER_TAG,
  Loop,
  type LoopWarning,
  Producer,
  type QueueEntry,
  wake,
} from "../mod.ts";
import {
  FIRST_PRODUCER_NODE,
  N_META,
  N_NEXT,
  NIL,
  nodeWord,
  P_ALLOC_NODES,
  P_PUSH_NODE,
  P_PUSH_PREV,
  readLayout,
  slotWord,
  TAIL,
  WAIT_NR,
} from "../runtime/queue_layout.ts";

/** Fails the test if `p` has not settled within `ms`. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a wake-up lost by a worker is noticed, reported and the work runs (blocking drive)", async () => {
  const warnings: LoopWarning[] = [];
  const got: number[] = [];
  const loop = new Loop({
    stallMs: 30,
    spinMicros: 0,
    onWarning: (w) => warnings.push(w),
  });
  const h = loop.port();
  // Without the watchdog the loop would sleep until this guard fires.
  const guard = loop.setTimer(() => {
    throw new Error("No stall noticed within 5 s");
  }, 5000);
  loop.onEntry = (e: QueueEntry) => {
    got.push(e.a);
    guard.cancel();
    loop.producerDied(h.slot); // the port no longer holds the loop
  };
  const worker = new Worker(
    new URL("./workers/silent_producer.ts", import.meta.url),
    { type: "module" },
  );
  try {
    const reply = new Promise((resolve) => (worker.onmessage = resolve));
    worker.postMessage({ buffer: h.buffer, slot: h.slot });
    loop.runSync(); // sleeps; only the watchdog can end this sleep
    const msg = await within(10_000, "worker reply", reply);
    assert.equal((msg as MessageEvent).data, "pushed");
  } finally {
    worker.terminate();
  }
  assert.deepEqual(got, [42]);
  assert.equal(warnings.length, 1);
  const [w] = warnings;
  assert.equal(w.kind, "lost-wakeup");
  assert.equal(w.waitNr, 1);
  assert.equal(w.slot, -1);
  assert.ok(w.queued >= 1, `queued ${w.queued}`);
  assert.ok(w.stalledMs >= 30);
  assert.match(w.message, /^Loop stalled: 1 queued item\(s\) waited \d+ ms/);
  assert.equal(loop.metrics().stalls, 1);
});

Deno.test("a wake-up lost on the loop's own thread is noticed under the async drive", async () => {
  const warnings: LoopWarning[] = [];
  const got: number[] = [];
  const loop = new Loop({
    stallMs: 30,
    spinMicros: 0,
    onWarning: (w) => warnings.push(w),
  });
  const h = loop.port();
  const p = Producer.attach(h.buffer, h.slot);
  const guard = loop.setTimer(() => {
    throw new Error("The item did not run within 5 s");
  }, 5000);
  loop.onEntry = (e) => {
    got.push(e.a);
    guard.cancel();
    loop.producerDied(h.slot);
  };
  const w = new Int32Array(loop.buffer);
  let tries = 0;
  const pushWhenAsleep = () => {
    if (Atomics.load(w, WAIT_NR) < 1) {
      if (++tries > 1000) throw new Error("the loop never armed a sleep");
      setTimeout(pushWhenAsleep, 1);
      return;
    }
    p.push(FIRST_USER_TAG, 7, 0); // and no wake()
  };
  setTimeout(pushWhenAsleep, 1);
  await within(10_000, "loop.run()", loop.run());
  assert.deepEqual(got, [7]);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].kind, "lost-wakeup");
});

Deno.test("fewer lazy posts than minEvents are run after stallMs without a warning", async () => {
  const warnings: LoopWarning[] = [];
  const got: number[] = [];
  const loop = new Loop({
    minEvents: 4,
    stallMs: 20,
    spinMicros: 0,
    onWarning: (w) => warnings.push(w),
  });
  const h = loop.port();
  const p = Producer.attach(h.buffer, h.slot);
  const guard = loop.setTimer(() => {
    throw new Error("The item did not run within 5 s");
  }, 5000);
  loop.onEntry = (e) => {
    got.push(e.a);
    guard.cancel();
    loop.producerDied(h.slot);
  };
  const w = new Int32Array(loop.buffer);
  let tries = 0;
  const pushWhenAsleep = () => {
    if (Atomics.load(w, WAIT_NR) < 1) {
      if (++tries > 1000) throw new Error("the loop never armed a sleep");
      setTimeout(pushWhenAsleep, 1);
      return;
    }
    p.push(FIRST_USER_TAG, 3, 0);
    assert.equal(wake(w, true), false, "1 lazy add of 4 must not wake");
  };
  setTimeout(pushWhenAsleep, 1);
  await within(10_000, "loop.run()", loop.run());
  assert.deepEqual(got, [3]);
  assert.deepEqual(warnings, []);
  assert.equal(loop.metrics().stalls, 0);
});

Deno.test("a push left half-linked is reported once with the producer's slot, and delivered once linked", () => {
  const warnings: LoopWarning[] = [];
  const got: number[] = [];
  const loop = new Loop({ stallMs: 20, onWarning: (w) => warnings.push(w) });
  const h = loop.port();
  loop.onEntry = (e) => got.push(e.a);
  // The first half of a push by hand, recorded as Producer does: fill the
  // slot's first node, record it, exchange it into TAIL; no link yet.
  const w = new Int32Array(loop.buffer);
  const layout = readLayout(loop.buffer, "test");
  const node = FIRST_PRODUCER_NODE + h.slot * layout.nodesPerProducer;
  const at = nodeWord(layout, node);
  const sw = slotWord(h.slot);
  w[at + N_NEXT] = NIL;
  w[at + N_META] = FIRST_USER_TAG * 2;
  w[at + 2] = 99;
  w[sw + P_ALLOC_NODES] = 1;
  w[sw + P_PUSH_NODE] = node;
  const prev = Atomics.exchange(w, TAIL, node);
  w[sw + P_PUSH_PREV] = prev;

  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; warnings.length === 0; i++) {
    if (i > 2000) throw new Error("no stall reported within ~10 s");
    loop.runNoWait();
    Atomics.wait(pause, 0, 0, 5);
  }
  for (let i = 0; i < 5; i++) loop.runNoWait(); // still stuck: no repeat
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].kind, "stuck-producer");
  assert.equal(warnings[0].slot, h.slot);
  assert.match(warnings[0].message, /producer slot \d+ has stayed half-linked/);
  assert.deepEqual(got, []);

  Atomics.store(w, nodeWord(layout, prev) + N_NEXT, node); // second half
  w[sw + P_PUSH_NODE] = NIL;
  loop.runNoWait();
  assert.deepEqual(got, [99]);
  assert.equal(warnings.length, 1);
  loop.producerDied(h.slot);
  loop.close();
});

Deno.test("stallMs is validated: Infinity turns the watchdog off", () => {
  assert.throws(
    () => new Loop({ stallMs: 0 }),
    (e) =>
      e instanceof RangeError && /^Cannot create loop: stallMs/.test(e.message),
  );
  assert.throws(
    () => new Loop({ stallMs: -1 }),
    RangeError,
  );
  assert.throws(
    () => new Loop({ stallMs: "5" as unknown as number }),
    TypeError,
  );
  new Loop({ stallMs: Infinity }).close();
});
