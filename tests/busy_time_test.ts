/**
 * The async drive's busy-time bound (`runtime/busy_time.ts`) on a clock the
 * test moves: how often it reads the clock, and how late a turn can come.
 *
 * @module
 */
import assert from "node:assert/strict";
import { BUSY_STRIDE_MAX, BusyTime } from "../runtime/busy_time.ts";

/** A clock the test advances, counting its reads. */
function fakeClock() {
  const c = { t: 0, reads: 0, now: () => (c.reads++, c.t) };
  return c;
}

/** Runs passes of the given lengths until a turn is owed; its pass index. */
function turnAfter(busy: BusyTime, clock: { t: number }, passMs: number[]) {
  for (let i = 0; i < passMs.length; i++) {
    clock.t += passMs[i];
    if (busy.over(20)) return i;
  }
  return -1;
}

Deno.test("slow passes: the clock is read after every pass, the turn comes with the pass that crosses the budget", () => {
  const clock = fakeClock();
  const busy = new BusyTime(0, clock.now);
  const at = turnAfter(busy, clock, new Array(50).fill(3)); // 3 ms passes
  assert.equal(at, 6, "after 21 ms of passes");
  assert.equal(clock.reads, 7);
});

Deno.test("quick passes: the clock is read every 2nd, then every 4th pass, and the turn comes at most 3 passes late", () => {
  const clock = fakeClock();
  const busy = new BusyTime(0, clock.now);
  const passes = 1000;
  const at = turnAfter(busy, clock, new Array(passes).fill(0.05));
  // The budget is crossed in pass 400 (20.05 ms); the turn comes then or
  // at most BUSY_STRIDE_MAX - 1 passes later.
  assert.ok(at >= 400 && at <= 400 + BUSY_STRIDE_MAX - 1, `turn at ${at}`);
  assert.ok(
    clock.reads <= Math.ceil(at / BUSY_STRIDE_MAX) + 2,
    `${clock.reads} reads`,
  );
});

Deno.test("passes that turn slow right after quick ones: the turn is at most 3 passes late, then every pass is read again", () => {
  const clock = fakeClock();
  const busy = new BusyTime(0, clock.now);
  const quick = new Array(40).fill(0.05); // 2 ms, stride up to 4
  const slow = new Array(40).fill(5);
  const at = turnAfter(busy, clock, [...quick, ...slow]);
  // 2 ms of quick passes, then the budget is crossed in the 4th slow pass.
  const crossing = 40 + 3;
  assert.ok(
    at >= crossing && at <= crossing + BUSY_STRIDE_MAX - 1,
    `turn at ${at}`,
  );
  busy.yielded();
  const reads = clock.reads;
  assert.equal(turnAfter(busy, clock, new Array(10).fill(5)), 4, "21+ ms");
  assert.equal(clock.reads - reads, 5, "read after each slow pass");
});

Deno.test("a turn resets the count: busy time starts again from the turn", () => {
  const clock = fakeClock();
  const busy = new BusyTime(0, clock.now);
  clock.t = 15;
  assert.equal(busy.over(20), false);
  busy.yielded(); // the host had a turn at 15 ms
  clock.t = 30;
  assert.equal(busy.over(20), false, "15 ms since the turn");
  clock.t = 36;
  assert.equal(busy.over(20), true, "21 ms since the turn");
});

Deno.test("a budget that shrank for passes between two reads still holds the next read: the turn is at most 3 passes late", () => {
  const clock = fakeClock();
  const busy = new BusyTime(0, clock.now);
  // Quick passes at the 20 ms budget until the stride is 4, then passes
  // whose budget is 10 ms (tracked operations in flight) for only part of a
  // stride: reads that fall on a 20 ms pass must still compare with 10.
  let at = -1;
  for (let i = 0; i < 1000 && at < 0; i++) {
    clock.t += 0.05;
    const budget = clock.t > 10 && i % 4 === 1 ? 10 : 20;
    if (busy.over(budget)) at = i;
  }
  // 10 ms is crossed in pass 200 (10.05 ms); its stride ends by pass 203.
  assert.ok(at >= 200 && at <= 200 + BUSY_STRIDE_MAX - 1, `turn at ${at}`);
});
