/**
 * The timer store on its own (`runtime/timer_queue.ts`): id reuse and
 * generations, list order when inserts break a list, and removal of a
 * list's first timer. Loop-level behaviour is in `timers_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  GEN_BITS,
  GEN_SHIFT,
  REFED,
  STATE_MASK,
  TimerQueue,
} from "../runtime/timer_queue.ts";
import { TIMER_DONE, TIMER_PENDING } from "../runtime/timers.ts";
import { rng } from "./rng.ts";

const noop = () => {};

/** A pending timer at `deadline`, appended under `key`. */
function add(q: TimerQueue, deadline: number, seq: number, key: number) {
  const id = q.alloc();
  q.deadline[id] = deadline;
  q.seq[id] = seq;
  q.flags[id] = (q.flags[id] & GEN_BITS) | TIMER_PENDING | REFED;
  q.callbacks[id] = noop;
  q.insert(id, key);
  return id;
}

function drain(q: TimerQueue, now = Infinity): number[] {
  const out = new Int32Array(q.size);
  const n = q.takeDue(now, out.length, out);
  return Array.from(out.subarray(0, n));
}

Deno.test("a freed id comes back with a new generation", () => {
  const q = new TimerQueue();
  const id = add(q, 5, 0, 5);
  const gen = q.flags[id] >>> GEN_SHIFT;
  q.remove(id);
  q.free(id);
  assert.equal(q.live(id, gen), -1, "the old handle is stale");
  const again = add(q, 6, 1, 6);
  assert.equal(again, id, "the only free id is reused");
  assert.notEqual(q.flags[again] >>> GEN_SHIFT, gen);
  assert.equal(q.live(id, gen), -1);
});

Deno.test("an id whose generation would wrap is retired, never reused", () => {
  const q = new TimerQueue();
  const id = add(q, 5, 0, 5);
  q.remove(id);
  // As after 2^27 - 1 reuses: the last generation there is.
  q.flags[id] = GEN_BITS | TIMER_DONE;
  const gen = GEN_BITS >>> GEN_SHIFT;
  assert.equal(q.live(id, gen), GEN_BITS | TIMER_DONE);
  q.free(id);
  assert.equal(q.live(id, gen), -1, "retired: its last handle is stale");
  const other = add(q, 6, 1, 6);
  assert.notEqual(other, id);
});

Deno.test("inserts that break their list's order start a new list; order stays exact", () => {
  const q = new TimerQueue();
  const random = rng(0x51a7);
  const want: [number, number, number][] = []; // deadline, seq, id
  for (let seq = 0; seq < 2000; seq++) {
    // Few keys, deadlines that mostly grow per key but often go back.
    const key = Math.floor(random() * 4);
    const deadline = seq / 10 + key - (random() < 0.2 ? random() * 50 : 0);
    want.push([deadline, seq, add(q, deadline, seq, key)]);
  }
  for (let i = 0; i < want.length; i += 7) q.remove(want[i][2]);
  const left = want.filter((_, i) => i % 7 !== 0)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.equal(q.size, left.length);
  assert.deepEqual(drain(q), left.map((w) => w[2]));
  assert.equal(q.nextDeadline(), Infinity);
});

Deno.test("removing a list's first timer, after takes made its prev link stale", () => {
  const q = new TimerQueue();
  const ids = [1, 2, 3, 4].map((d, i) => add(q, d, i, 0));
  assert.deepEqual(drain(q, 1), [ids[0]]); // ids[1] is now first
  q.remove(ids[1]);
  assert.equal(q.nextDeadline(), 3);
  q.remove(ids[3]); // the last one
  assert.deepEqual(drain(q), [ids[2]]);
  assert.equal(q.size, 0);
});

/** Sets `n` timers, then takes and frees them all: one burst. */
function burst(q: TimerQueue, n: number): [number, number][] {
  const handles: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const id = add(q, i % 7, i, i % 7);
    handles.push([id, q.flags[id] >>> GEN_SHIFT]);
  }
  const due = drain(q);
  assert.equal(due.length, n);
  for (const id of due) q.free(id);
  return handles;
}

Deno.test("a store keeps its arrays across bursts that fill them, drops them after a small one", () => {
  const q = new TimerQueue();
  const big = burst(q, 20_000); // grows to 65536 ids; 20,000 is over a quarter
  const capacity = q.flags.length;
  assert.equal(capacity, 65536);
  for (const [id, gen] of big) assert.equal(q.live(id, gen), -1);
  // The next burst gets ids 0, 1, 2... again in the kept arrays (no
  // growth), at a new generation: old handles stay stale.
  const again = burst(q, 20_000);
  assert.equal(q.flags.length, capacity, "kept, not grown again");
  assert.deepEqual(again.map(([id]) => id), big.map((_, i) => i));
  assert.ok(again.every(([, gen]) => gen > big[0][1]));
  for (const [id, gen] of big) assert.equal(q.live(id, gen), -1);
  // A burst that peaks under a quarter of the arrays ends with them dropped;
  // ids start over at 0 with a generation no old handle has.
  const small = burst(q, 100);
  assert.equal(q.flags.length, 0, "dropped");
  const fresh = add(q, 1, 0, 1);
  assert.equal(fresh, 0);
  const freshGen = q.flags[fresh] >>> GEN_SHIFT;
  for (const [id, gen] of [...big, ...again, ...small]) {
    assert.notEqual(gen, freshGen);
    assert.equal(q.live(id, gen), -1);
  }
  assert.equal(q.live(fresh, freshGen) & STATE_MASK, TIMER_PENDING);
});

Deno.test("clear() (the loop closing) drops the arrays a large burst left, and every handle reads as stale", () => {
  const q = new TimerQueue();
  const handles = burst(q, 20_000); // kept: over a quarter of 65536 ids
  assert.equal(q.flags.length, 65536);
  const live: [number, number][] = [];
  for (let i = 0; i < 10; i++) {
    const id = add(q, 5, i, 5);
    live.push([id, q.flags[id] >>> GEN_SHIFT]);
  }
  q.clear();
  assert.equal(q.flags.length, 0, "dropped");
  assert.equal(q.size, 0);
  assert.equal(q.nextDeadline(), Infinity);
  for (const [id, gen] of [...handles, ...live]) {
    assert.equal(q.live(id, gen), -1);
  }
});
