/**
 * The provided buffer ring (`runtime/io/buffer_ring.ts`), both sides on one
 * thread: the ownership cycle, wraparound of the return ring, the worker's
 * wait for a returned buffer, and that buffers never overlap.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  BufferRing,
  RingReceiver,
  S_PAUSES,
  S_POSTED,
} from "../runtime/io/buffer_ring.ts";

Deno.test("every buffer cycles worker → loop → return ring → worker, many times over", () => {
  // 3 buffers, 4 return slots: the ring wraps every 4 returns.
  const ring = BufferRing.create({ count: 3, size: 16 });
  const rx = RingReceiver.attach(ring.buffer);
  const returned: number[] = [];
  for (let round = 0; round < 50; round++) {
    const taken = [rx.take(), rx.take(), rx.take()];
    assert.equal(rx.take(), -1, "no fourth buffer");
    assert.deepEqual(taken.toSorted(), [0, 1, 2]);
    for (const id of taken) {
      rx.view(id).fill(round & 255);
      rx.setLength(id, 1 + id);
      ring.receive(id);
    }
    assert.equal(ring.held, 3);
    for (const id of taken) {
      assert.deepEqual(
        [...ring.bytes(id)],
        new Array(1 + id).fill(round & 255),
      );
    }
    // Give them back in an order other than taken.
    for (const id of taken.toReversed()) ring.release(id);
    returned.length = 0;
    assert.equal(rx.collect((id) => returned.push(id)), 3);
    assert.deepEqual(returned, taken.toReversed(), "collected in return order");
    assert.equal(rx.free, 3);
  }
});

Deno.test("releasing a buffer the loop does not hold, or receiving one twice, throws", () => {
  const ring = BufferRing.create({ count: 2, size: 16 });
  const rx = RingReceiver.attach(ring.buffer);
  assert.throws(() => ring.release(0), RangeError);
  const id = rx.take();
  ring.receive(id);
  assert.throws(() => ring.receive(id), RangeError);
  ring.release(id);
  assert.throws(() => ring.release(id), RangeError);
  assert.throws(() => ring.release(7), RangeError);
  assert.throws(() => ring.receive(-1), RangeError);
});

Deno.test("buffers do not overlap: writing one whole buffer leaves its neighbours intact", () => {
  const ring = BufferRing.create({ count: 4, size: 32 });
  const rx = RingReceiver.attach(ring.buffer);
  const ids = [rx.take(), rx.take(), rx.take(), rx.take()];
  for (const id of ids) rx.view(id).fill(0xa0 + id);
  for (const id of ids) {
    rx.setLength(id, 32);
    ring.receive(id);
    assert.ok(ring.bytes(id).every((b) => b === 0xa0 + id), `buffer ${id}`);
  }
});

Deno.test("waitForReturn resolves at once when a buffer is back, else on the next release", async () => {
  const ring = BufferRing.create({ count: 2, size: 16 });
  const rx = RingReceiver.attach(ring.buffer);
  const a = rx.take();
  ring.receive(a);
  ring.release(a);
  await rx.waitForReturn(); // already returned: no sleep
  assert.equal(rx.collect(() => {}), 1);
  const b = rx.take();
  ring.receive(b);
  let woke = false;
  const waiting = rx.waitForReturn().then(() => woke = true);
  await Promise.resolve();
  assert.equal(woke, false);
  ring.release(b); // notifies: the worker flagged that it waits
  const timeout = setTimeout(() => {}, 5000); // keeps the test alive, no more
  try {
    await waiting;
  } finally {
    clearTimeout(timeout);
  }
  assert.equal(woke, true);
});

Deno.test("stats read the worker's counters", () => {
  const ring = BufferRing.create({ count: 2, size: 16 });
  const rx = RingReceiver.attach(ring.buffer);
  rx.setStat(S_POSTED, 5);
  rx.setStat(S_PAUSES, 2);
  const s = ring.stats();
  assert.equal(s.posted, 5);
  assert.equal(s.pauses, 2);
  assert.equal(s.count, 2);
  assert.equal(s.held, 0);
  assert.ok(Object.isFrozen(s));
});

Deno.test("ring sizes are validated", () => {
  assert.throws(() => BufferRing.create({ count: 0, size: 16 }), RangeError);
  assert.throws(() => BufferRing.create({ count: 1, size: 20 }), RangeError);
  assert.throws(() => BufferRing.create({ count: 1.5, size: 16 }), TypeError);
  assert.throws(
    () => RingReceiver.attach(new SharedArrayBuffer(1024)),
    TypeError,
  );
});
