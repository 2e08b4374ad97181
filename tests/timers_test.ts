/**
 * Timer behaviour of the loop (`runtime/timers.ts`, `Loop.setTimer`), all
 * under a {@linkcode VirtualClock}: no real sleeping, no wall-clock
 * assertions. Time moves only by `clock.advance` or `clock.jumpTo` (a "slow"
 * callback advances it from inside), or by the loop jumping an idle virtual
 * clock to the next deadline.
 *
 * Runs that could spin forever on a bug are bounded by a watchdog: an
 * unreferenced timer far in the future that stops the loop. It never keeps
 * the loop alive by itself, so it fires only when the loop kept running with
 * nothing referenced left.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type Clock,
  Loop,
  type LoopOptions,
  type Timer,
  VirtualClock,
} from "../mod.ts";
import { TIMER_DONE, TIMER_PENDING } from "../runtime/timers.ts";
import { rng } from "./rng.ts";
import { runSyncToEnd, runSyncWatched } from "./loop_harness.ts";

function setup(options: LoopOptions = {}): { clock: VirtualClock; loop: Loop } {
  const clock = new VirtualClock();
  return { clock, loop: new Loop({ clock, ...options }) };
}

function isSetTimerError(type: typeof TypeError | typeof RangeError) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    assert.equal(e.constructor, type);
    assert.match(e.message, /^Cannot set timer: \S/);
    assert.doesNotMatch(e.message, /\.$/);
    return true;
  };
}

const noop = () => {};

Deno.test("delay validation", async (t) => {
  await t.step("negative, NaN and infinite delays throw RangeError", () => {
    const { loop } = setup();
    for (const d of [-1, -0.001, NaN, Infinity, -Infinity]) {
      assert.throws(
        () => loop.setTimer(noop, d),
        isSetTimerError(RangeError),
        `delay ${d}`,
      );
    }
    assert.equal(loop.alive(), false, "a rejected timer must not be counted");
    assert.equal(loop.metrics().pendingTimers, 0);
  });

  await t.step("a delay that is not a number throws TypeError", () => {
    const { loop } = setup();
    for (const d of ["10", null, undefined, 10n, {}, [5]]) {
      assert.throws(
        () => loop.setTimer(noop, d as unknown as number),
        isSetTimerError(TypeError),
        `delay ${typeof d}`,
      );
    }
    assert.equal(loop.alive(), false);
  });

  await t.step("a callback that is not a function throws TypeError", () => {
    const { loop } = setup();
    for (const cb of [undefined, null, "noop", 1, {}]) {
      assert.throws(
        () => loop.setTimer(cb as unknown as () => void, 1),
        isSetTimerError(TypeError),
      );
    }
    assert.equal(loop.alive(), false);
  });

  await t.step(
    "an interval of 0 throws RangeError (it would fire every pass)",
    () => {
      const { loop } = setup();
      assert.throws(
        () => loop.setTimer(noop, 0, 0),
        isSetTimerError(RangeError),
      );
      assert.throws(
        () => loop.setTimer(noop, 5, -0),
        isSetTimerError(RangeError),
      );
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "negative, NaN and infinite intervals throw RangeError; non-numbers TypeError",
    () => {
      const { loop } = setup();
      for (const i of [-10, NaN, Infinity]) {
        assert.throws(
          () => loop.setTimer(noop, 1, i),
          isSetTimerError(RangeError),
          `interval ${i}`,
        );
      }
      assert.throws(
        () => loop.setTimer(noop, 1, "10" as unknown as number),
        isSetTimerError(TypeError),
      );
      assert.equal(loop.alive(), false);
    },
  );
});

Deno.test("a delay of 0 is due on the next pass, never the current one", () => {
  const { clock, loop } = setup();
  const ran: string[] = [];
  loop.setTimer(() => ran.push("t0 set before the run"), 0);
  loop.queue(() => {
    ran.push("task A");
    loop.setTimer(() => ran.push("t0 set by A"), 0);
    loop.queue(() => ran.push("task B queued by A"));
  });
  loop.runNoWait();
  // Due timers join the queue behind what is already queued (A) and ahead
  // of what A queues while the pass runs (B).
  assert.deepEqual(ran, [
    "task A",
    "t0 set before the run",
    "task B queued by A",
  ]);
  loop.runNoWait();
  assert.deepEqual(ran.at(-1), "t0 set by A");
  assert.equal(clock.now(), 0, "a 0 delay needs no time to pass");
  assert.equal(loop.alive(), false);
});

Deno.test("fractional delays give exact deadlines", async (t) => {
  await t.step(
    "each timer fires with the clock exactly at start + delay",
    () => {
      const clock = new VirtualClock(0.1);
      const loop = new Loop({ clock });
      const fired: [string, number][] = [];
      const at = (name: string) => () => fired.push([name, loop.now]);
      loop.setTimer(at("1.5"), 1.5);
      loop.setTimer(at("0.2"), 0.2);
      loop.setTimer(at("1.5+1e-9"), 1.5 + 1e-9);
      runSyncToEnd(loop);
      assert.deepEqual(fired, [
        ["0.2", 0.1 + 0.2],
        ["1.5", 0.1 + 1.5],
        ["1.5+1e-9", 0.1 + (1.5 + 1e-9)],
      ]);
    },
  );

  await t.step(
    "within one millisecond, the earlier fractional deadline runs first",
    () => {
      const { loop } = setup();
      const fired: number[] = [];
      for (const d of [10.75, 10.25, 10.5, 10, 10.999]) {
        loop.setTimer(() => fired.push(loop.now), d);
      }
      runSyncToEnd(loop);
      assert.deepEqual(fired, [10, 10.25, 10.5, 10.75, 10.999]);
    },
  );
});

Deno.test("delays above 2^31-1 fire at exactly that virtual time, with no wrap", () => {
  const { clock, loop } = setup();
  const fired: number[] = [];
  for (const d of [2 ** 40, 2 ** 31 + 0.5, 2 ** 31, 2 ** 31 - 1]) {
    loop.setTimer(() => fired.push(loop.now), d);
  }
  clock.advance(1);
  loop.runNoWait();
  assert.deepEqual(fired, [], "no long delay may wrap to a short one");
  runSyncToEnd(loop);
  assert.deepEqual(fired, [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 0.5, 2 ** 40]);
  assert.equal(clock.now(), 2 ** 40);
});

Deno.test("equal deadlines run in creation order", () => {
  const { clock, loop } = setup();
  const ran: number[] = [];
  for (let i = 0; i < 5; i++) loop.setTimer(() => ran.push(i), 10);
  clock.advance(4);
  // Same deadline (4 + 6 = 10), created later: runs after the first five.
  loop.setTimer(() => ran.push(5), 6);
  loop.setTimer(() => ran.push(-1), 9); // deadline 13: after all of them
  runSyncToEnd(loop);
  assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, -1]);
});

Deno.test("repeating timers", async (t) => {
  await t.step(
    "keep their phase at start + n*interval when callbacks are slow",
    () => {
      const { clock, loop } = setup();
      const fired: number[] = [];
      const seen: number[] = [];
      const timer = loop.setTimer(
        () => {
          fired.push(loop.now);
          seen.push(clock.now());
          clock.advance(9.5); // a slow callback: most of an interval
          if (fired.length === 6) timer.cancel();
        },
        10,
        10,
      );
      runSyncToEnd(loop);
      assert.deepEqual(fired, [10, 20, 30, 40, 50, 60]);
      assert.deepEqual(
        seen,
        fired,
        "each run starts exactly on its phase point",
      );
    },
  );

  await t.step(
    "keep the phase of their first deadline when delay and interval differ",
    () => {
      const { clock, loop } = setup();
      const fired: number[] = [];
      const timer = loop.setTimer(
        () => {
          fired.push(loop.now);
          clock.advance(2.25);
          if (fired.length === 4) timer.cancel();
        },
        3,
        7,
      );
      runSyncToEnd(loop);
      assert.deepEqual(fired, [3, 10, 17, 24]);
    },
  );

  await t.step(
    "skip missed ticks when late: run once, then the next phase point after now",
    () => {
      const { clock, loop } = setup();
      const fired: number[] = [];
      const timer = loop.setTimer(
        () => {
          fired.push(loop.now);
          if (fired.length === 2) clock.advance(25); // now 45: ticks 30 and 40 missed
          if (fired.length === 5) timer.cancel();
        },
        10,
        10,
      );
      runSyncToEnd(loop);
      // 30 runs late (once, at 45); 40 is skipped; the phase resumes at 50.
      assert.deepEqual(fired, [10, 20, 45, 50, 60]);
    },
  );

  await t.step(
    "a timer late by exactly one interval runs once and resumes at the next phase point",
    () => {
      const { clock, loop } = setup();
      const fired: number[] = [];
      const timer = loop.setTimer(
        () => {
          fired.push(loop.now);
          if (fired.length === 1) clock.advance(20); // now 30: tick 20 late by 10
          if (fired.length === 4) timer.cancel();
        },
        10,
        10,
      );
      runSyncToEnd(loop);
      assert.deepEqual(fired, [10, 30, 40, 50]);
    },
  );

  await t.step(
    "a late timer catching up does not burst when the clock is advanced from outside",
    () => {
      const { clock, loop } = setup();
      const fired: number[] = [];
      loop.setTimer(() => fired.push(loop.now), 10, 10);
      clock.jumpTo(1000);
      loop.runNoWait();
      assert.deepEqual(fired, [1000], "one run for 100 missed ticks");
      clock.jumpTo(1010);
      loop.runNoWait();
      assert.deepEqual(fired, [1000, 1010], "phase kept at 10 + n*10");
    },
  );
});

Deno.test("a timer cancelled by an earlier callback in the same pass does not run", async (t) => {
  await t.step(
    "the cancelled timer is skipped, the rest of the pass runs",
    () => {
      const { clock, loop } = setup();
      const ran: string[] = [];
      const later: { b?: Timer } = {}; // set after the timer that uses it
      loop.setTimer(() => {
        ran.push("a");
        later.b!.cancel();
      }, 10);
      later.b = loop.setTimer(() => ran.push("b"), 10);
      loop.setTimer(() => ran.push("c"), 10);
      clock.jumpTo(10);
      loop.runNoWait();
      assert.deepEqual(ran, ["a", "c"]);
      assert.equal(loop.pending(), 0);
    },
  );

  await t.step(
    "after that pass nothing referenced is left (alive() is false)",
    () => {
      const { clock, loop } = setup();
      const later: { b?: Timer } = {}; // set after the timer that uses it
      loop.setTimer(() => later.b!.cancel(), 10);
      later.b = loop.setTimer(noop, 10);
      clock.jumpTo(10);
      loop.runNoWait();
      assert.equal(loop.metrics().pendingTimers, 0);
      assert.equal(
        loop.alive(),
        false,
        "cancelling a timer already queued for this pass must release its reference",
      );
    },
  );

  await t.step(
    "cancelling a repeating timer from an earlier callback stops it for good",
    () => {
      const { clock, loop } = setup();
      const ran: string[] = [];
      const later: { r?: Timer } = {}; // set after the timer that uses it
      loop.setTimer(() => {
        ran.push("a");
        later.r!.cancel();
      }, 10);
      later.r = loop.setTimer(() => ran.push("r"), 10, 10);
      loop.setTimer(() => ran.push("end"), 50);
      clock.jumpTo(10);
      loop.runNoWait();
      assert.deepEqual(ran, ["a"]);
      clock.jumpTo(50);
      loop.runNoWait();
      assert.deepEqual(ran, ["a", "end"]);
    },
  );
});

Deno.test("a throwing callback does not reorder, repeat or block other timers", async (t) => {
  await t.step(
    "with onError set: errors reported in order, every other timer runs once",
    () => {
      const errors: unknown[] = [];
      const { loop } = setup({ onError: (e) => errors.push(e) });
      const ran: string[] = [];
      const boomB = new Error("b");
      const boomR = new Error("r");
      loop.setTimer(() => ran.push("a"), 10);
      loop.setTimer(() => {
        ran.push("b");
        throw boomB;
      }, 10);
      loop.setTimer(() => ran.push("c"), 10);
      let n = 0;
      const r = loop.setTimer(
        () => {
          ran.push(`r${++n}`);
          if (n === 2) throw boomR;
          if (n === 3) r.cancel();
        },
        5,
        5,
      );
      loop.setTimer(() => ran.push("d"), 12);
      runSyncToEnd(loop);
      assert.deepEqual(ran, ["r1", "a", "b", "c", "r2", "d", "r3"]);
      assert.deepEqual(errors, [boomB, boomR]);
    },
  );

  await t.step(
    "without onError: runSync rethrows, the rest run on the next run call",
    () => {
      const { clock, loop } = setup();
      const ran: string[] = [];
      const boom = new Error("b");
      loop.setTimer(() => ran.push("a"), 10);
      loop.setTimer(() => {
        ran.push("b");
        throw boom;
      }, 10);
      loop.setTimer(() => ran.push("c"), 10);
      loop.setTimer(() => ran.push("d"), 20);
      assert.throws(() => loop.runSync(), (e) => e === boom);
      assert.deepEqual(ran, ["a", "b"]);
      assert.equal(clock.now(), 10);
      assert.equal(loop.pending(), 1, "c is still queued");
      assert.equal(loop.alive(), true);
      runSyncToEnd(loop);
      assert.deepEqual(ran, ["a", "b", "c", "d"], "b did not run again");
    },
  );

  await t.step(
    "without onError: a throwing repeating timer keeps its phase",
    () => {
      const { loop } = setup();
      const fired: number[] = [];
      const r = loop.setTimer(
        () => {
          fired.push(loop.now);
          if (fired.length === 3) r.cancel();
          throw new Error("tick");
        },
        10,
        10,
      );
      for (let i = 0; i < 3; i++) assert.throws(() => loop.runSync(), /tick/);
      runSyncToEnd(loop);
      assert.deepEqual(fired, [10, 20, 30]);
    },
  );
});

Deno.test("refresh()", async (t) => {
  await t.step(
    "moves the deadline and takes a new place among equal deadlines",
    () => {
      const { clock, loop } = setup();
      const fired: [string, number][] = [];
      const at = (name: string) => () => fired.push([name, loop.now]);
      const a = loop.setTimer(at("a"), 10);
      loop.setTimer(at("b"), 10);
      clock.advance(5);
      loop.setTimer(at("c"), 10); // deadline 15
      assert.equal(a.refresh(), a);
      assert.equal(a.deadline, 15);
      runSyncToEnd(loop);
      assert.deepEqual(fired, [["b", 10], ["c", 15], ["a", 15]]);
    },
  );

  await t.step("re-arms a fired one-shot timer, and a cancelled one", () => {
    const { loop } = setup();
    const fired: number[] = [];
    const t1 = loop.setTimer(() => fired.push(loop.now), 10);
    runSyncToEnd(loop);
    t1.refresh();
    assert.equal(loop.alive(), true);
    runSyncToEnd(loop);
    t1.cancel();
    t1.refresh();
    runSyncToEnd(loop);
    assert.deepEqual(fired, [10, 20, 30]);
    assert.equal(loop.alive(), false);
  });

  await t.step(
    "from an earlier callback of the same pass, delays an already-due timer",
    () => {
      const { clock, loop } = setup();
      const ran: [string, number][] = [];
      const later: { b?: Timer } = {}; // set after the timer that uses it
      loop.setTimer(() => {
        ran.push(["a", loop.now]);
        later.b!.refresh();
      }, 10);
      later.b = loop.setTimer(() => ran.push(["b", loop.now]), 10);
      clock.jumpTo(10);
      loop.runNoWait();
      assert.deepEqual(ran, [["a", 10]], "b was moved to 20 before it ran");
      clock.jumpTo(20);
      loop.runNoWait();
      assert.deepEqual(ran, [["a", 10], ["b", 20]]);
      assert.equal(loop.metrics().pendingTimers, 0);
      assert.equal(
        loop.alive(),
        false,
        "refreshing a queued timer must not count its reference twice",
      );
    },
  );

  await t.step(
    "inside its own repeating callback restarts the phase from now",
    () => {
      const { clock, loop } = setup();
      const fired: number[] = [];
      const r = loop.setTimer(
        () => {
          fired.push(loop.now);
          if (fired.length === 2) {
            clock.advance(3);
            r.refresh(); // due at 18 + delay 10, then every 5
          }
          if (fired.length === 4) r.cancel();
        },
        10,
        5,
      );
      runSyncToEnd(loop);
      assert.deepEqual(fired, [10, 15, 28, 33]);
      assert.equal(loop.alive(), false);
    },
  );
});

Deno.test("ref and unref", async (t) => {
  await t.step(
    "an unreferenced timer alone never keeps runSync() alive",
    () => {
      const { clock, loop } = setup();
      let ran = false;
      const timer = loop.setTimer(() => (ran = true), 10).unref();
      assert.equal(timer.hasRef(), false);
      assert.equal(loop.alive(), false);
      assert.equal(loop.runSync(), 0);
      assert.equal(ran, false);
      assert.equal(clock.now(), 0, "the clock did not jump for it");
      assert.equal(loop.metrics().pendingTimers, 1, "still scheduled");
    },
  );

  await t.step(
    "an unreferenced timer alone never keeps run() alive",
    async () => {
      const { clock, loop } = setup();
      let ran = false;
      loop.setTimer(() => (ran = true), 10, 10).unref();
      assert.equal(await loop.run(), 0);
      assert.equal(ran, false);
      assert.equal(clock.now(), 0);
    },
  );

  await t.step(
    "an unreferenced timer fires while the loop runs for other reasons",
    () => {
      const { clock, loop } = setup();
      const fired: [string, number][] = [];
      loop.setTimer(() => fired.push(["unref 5", loop.now]), 5).unref();
      loop.setTimer(() => fired.push(["unref 15", loop.now]), 15).unref();
      loop.setTimer(() => fired.push(["ref 10", loop.now]), 10);
      runSyncToEnd(loop);
      assert.deepEqual(fired, [["unref 5", 5], ["ref 10", 10]]);
      assert.equal(
        clock.now(),
        10,
        "the loop ended with the last referenced timer",
      );
      assert.equal(loop.metrics().pendingTimers, 1);
    },
  );

  await t.step(
    "an unreferenced repeating timer runs only while something else is referenced",
    () => {
      const { loop } = setup();
      const fired: number[] = [];
      loop.setTimer(() => fired.push(loop.now), 10, 10).unref();
      loop.setTimer(noop, 35);
      runSyncToEnd(loop);
      assert.deepEqual(fired, [10, 20, 30]);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "ref() after unref() keeps the loop alive again; both are idempotent",
    () => {
      const { loop } = setup();
      let ran = 0;
      const timer = loop.setTimer(() => ran++, 10);
      timer.unref().unref();
      assert.equal(loop.alive(), false);
      timer.ref().ref();
      assert.equal(timer.hasRef(), true);
      assert.equal(loop.alive(), true);
      runSyncToEnd(loop);
      assert.equal(ran, 1);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "unref() from inside its own repeating callback lets the loop end",
    () => {
      const { loop } = setup();
      const fired: number[] = [];
      const r = loop.setTimer(
        () => {
          fired.push(loop.now);
          if (fired.length === 2) r.unref();
        },
        10,
        10,
      );
      runSyncToEnd(loop);
      assert.deepEqual(fired, [10, 20]);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "unref() on a timer already queued for this pass releases it once",
    () => {
      const { clock, loop } = setup();
      const later: { b?: Timer } = {}; // set after the timer that uses it
      const ran: string[] = [];
      loop.setTimer(() => later.b!.unref(), 10);
      later.b = loop.setTimer(() => ran.push("b"), 10);
      clock.jumpTo(10);
      loop.runNoWait();
      assert.deepEqual(ran, ["b"], "an unreferenced timer still fires");
      assert.equal(loop.alive(), false);
    },
  );
});

Deno.test("cancel() is idempotent", () => {
  const { loop } = setup();
  const ran: string[] = [];
  const a = loop.setTimer(() => ran.push("a"), 10);
  const b = loop.setTimer(() => ran.push("b"), 20);
  const u = loop.setTimer(() => ran.push("u"), 5).unref();
  a.cancel();
  a.cancel();
  a.cancel();
  u.cancel();
  u.cancel();
  assert.equal(loop.alive(), true, "b is still referenced");
  assert.equal(loop.metrics().pendingTimers, 1);
  runSyncToEnd(loop);
  assert.deepEqual(ran, ["b"]);
  b.cancel(); // after it fired: no effect
  b.cancel();
  assert.equal(loop.alive(), false);
  const c = loop.setTimer(() => ran.push("c"), 1);
  b.cancel();
  a.cancel();
  assert.equal(loop.alive(), true, "stale cancels must not release c");
  runSyncToEnd(loop);
  assert.deepEqual(ran, ["b", "c"]);
  c.cancel();
  assert.equal(loop.alive(), false);
});

Deno.test("stale handles never reach the timer that reuses their id", async (t) => {
  await t.step("cancel, ref, unref and refresh of a cancelled handle", () => {
    const { loop } = setup();
    const ran: string[] = [];
    const a = loop.setTimer(() => ran.push("a"), 10);
    a.cancel();
    const c = loop.setTimer(() => ran.push("c"), 20); // may take a's id
    assert.equal(a.state, TIMER_DONE);
    assert.ok(Number.isNaN(a.deadline));
    a.cancel();
    a.unref();
    a.ref();
    assert.equal(c.state, TIMER_PENDING);
    assert.equal(c.deadline, 20);
    assert.equal(c.hasRef(), true);
    assert.equal(loop.metrics().pendingTimers, 1);
    a.refresh(); // revived under another id: both run
    assert.equal(a.deadline, 10);
    runSyncToEnd(loop);
    assert.deepEqual(ran, ["a", "c"]);
    assert.equal(loop.alive(), false);
  });

  await t.step(
    "a queued entry of a cancelled timer does not run the timer set in its place",
    () => {
      const { clock, loop } = setup();
      const ran: [string, number][] = [];
      const later: { y?: Timer } = {};
      loop.setTimer(() => {
        ran.push(["x", loop.now]);
        later.y!.cancel(); // y is queued in this pass: its id is freed
        loop.setTimer(() => ran.push(["z", loop.now]), 0); // reuses it
      }, 10);
      later.y = loop.setTimer(() => ran.push(["y", loop.now]), 10);
      clock.jumpTo(10);
      loop.runNoWait();
      assert.deepEqual(ran, [["x", 10]], "y's entry must not run z now");
      loop.runNoWait();
      assert.deepEqual(ran, [["x", 10], ["z", 10]]);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "10^4 set/cancel cycles: old handles leave new timers alone",
    () => {
      const { loop } = setup();
      const random = rng(0x9e1);
      const old: Timer[] = [];
      let ran = 0;
      let live: Timer | undefined;
      for (let i = 0; i < 10_000; i++) {
        live?.cancel();
        if (live !== undefined) old.push(live);
        live = loop.setTimer(() => ran++, 1 + Math.floor(random() * 5));
        const stale = old[Math.floor(random() * old.length)];
        if (stale !== undefined) {
          stale.cancel();
          stale.unref();
          stale.ref();
          assert.equal(stale.state, TIMER_DONE);
        }
        assert.equal(live.state, TIMER_PENDING);
        assert.equal(loop.metrics().pendingTimers, 1);
      }
      runSyncToEnd(loop);
      assert.equal(ran, 1);
    },
  );

  await t.step(
    "after the emptied store is dropped, old handles still read as done",
    () => {
      const { loop } = setup();
      let ran = 0;
      const old: Timer[] = [];
      for (let i = 0; i < 5000; i++) {
        old.push(loop.setTimer(() => ran++, i % 7));
      }
      runSyncToEnd(loop); // every id freed: the store starts over
      assert.equal(ran, 5000);
      const fresh = [1, 2, 3].map(() => loop.setTimer(() => ran++, 1));
      for (const h of old.slice(0, 10)) {
        assert.equal(h.state, TIMER_DONE);
        assert.ok(Number.isNaN(h.deadline));
        h.cancel();
        h.unref();
      }
      for (const f of fresh) {
        assert.equal(f.state, TIMER_PENDING);
        assert.equal(f.hasRef(), true);
      }
      assert.equal(loop.metrics().pendingTimers, 3);
      old[0].refresh(); // revived in the new store, beside the fresh ones
      runSyncToEnd(loop);
      assert.equal(ran, 5004);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "a fired one-shot reads its deadline in its callback only",
    () => {
      const { loop } = setup({ onError: () => {} });
      const seen: [number, number][] = [];
      const a: Timer = loop.setTimer(() => seen.push([a.state, a.deadline]), 7);
      const b: Timer = loop.setTimer(() => {
        throw new Error("boom");
      }, 8);
      runSyncToEnd(loop);
      assert.deepEqual(seen, [[TIMER_DONE, 7]]);
      assert.ok(Number.isNaN(a.deadline), "its id was freed after it ran");
      assert.ok(Number.isNaN(b.deadline), "freed after a throw too");
      assert.equal(loop.metrics().pendingTimers, 0);
    },
  );
});

Deno.test("due timers leave half of a tiny slot to the tasks their callbacks queue", () => {
  const { clock, loop } = setup({
    capacity: { nodesPerProducer: 8 },
    maxEvents: 3,
  });
  const ran: string[] = [];
  for (let i = 0; i < 30; i++) {
    loop.setTimer(() => {
      ran.push(`t${i}`);
      loop.queue(() => ran.push(`q${i}`)); // must never find the slot full
    }, 1 + (i % 3));
  }
  clock.jumpTo(10);
  runSyncToEnd(loop);
  assert.equal(ran.length, 60);
  const timers = ran.filter((x) => x[0] === "t").map((x) => Number(x.slice(1)));
  const order = Array.from({ length: 30 }, (_, i) => i)
    .sort((a, b) => (a % 3) - (b % 3) || a - b);
  assert.deepEqual(timers, order, "deadline order, ties in creation order");
  for (let i = 0; i < 30; i++) {
    assert.ok(ran.indexOf(`t${i}`) < ran.indexOf(`q${i}`));
  }
});

Deno.test("a timer set with the pass's time after a refresh read the clock runs in deadline order", () => {
  const { clock, loop } = setup();
  const ran: [string, number][] = [];
  const a = loop.setTimer(() => ran.push(["a", loop.now]), 5);
  loop.setTimer(() => {
    clock.advance(3); // a slow callback: the clock is at 13, the pass at 10
    a.refresh(); // a fresh read: due at 18
    loop.setTimer(() => ran.push(["b", loop.now]), 5); // 10 + 5 = 15
    loop.setTimer(() => ran.push(["c", loop.now]), 5); // 15, after b
  }, 10);
  // A repeating timer of the same delay, rescheduled into the same list.
  const r: Timer = loop.setTimer(
    () => {
      ran.push(["r", loop.now]);
      if (loop.now >= 20) r.cancel();
    },
    5,
    5,
  );
  runSyncToEnd(loop);
  assert.deepEqual(ran, [
    ["a", 5],
    ["r", 5],
    ["r", 10],
    ["r", 15], // created before b and c: it keeps its place on ties
    ["b", 15],
    ["c", 15],
    ["a", 18],
    ["r", 20],
  ]);
});

Deno.test("10^5 timers with seeded random deadlines and cancellations fire in exact (deadline, creation) order", () => {
  const N = 100_000;
  const random = rng(0x7717);
  const { loop } = setup({ maxEvents: 256 });
  const timers: Timer[] = [];
  const deadline: number[] = [];
  /** For each timer, the timer its callback cancels, or -1. */
  const victim: number[] = [];
  const fired: number[] = [];
  for (let i = 0; i < N; i++) {
    // Whole milliseconds collide often (creation order decides); a quarter
    // get a fraction so one millisecond holds several distinct deadlines.
    const d = Math.floor(random() * 2000) +
      (random() < 0.25 ? Math.floor(random() * 4) / 4 : 0);
    deadline.push(d);
    victim.push(random() < 0.1 ? Math.floor(random() * N) : -1);
    timers.push(loop.setTimer(() => {
      fired.push(i);
      if (victim[i] >= 0) timers[victim[i]].cancel();
    }, d));
  }
  const cancelled = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    if (random() < 0.2) {
      cancelled[i] = 1;
      timers[i].cancel();
    }
  }
  // The model: walk (deadline, creation) order; a run cancels its victim.
  const order = Array.from({ length: N }, (_, i) => i)
    .sort((x, y) => deadline[x] - deadline[y] || x - y);
  const expected: number[] = [];
  for (const i of order) {
    if (cancelled[i]) continue;
    expected.push(i);
    if (victim[i] >= 0) cancelled[victim[i]] = 1;
  }
  const tripped = runSyncWatched(loop);
  assert.equal(fired.length, expected.length);
  for (let k = 0; k < expected.length; k++) {
    if (fired[k] !== expected[k]) {
      const i = fired[k];
      const j = expected[k];
      assert.fail(
        `run #${k}: timer ${i} (deadline ${
          deadline[i]
        }) ran where timer ${j} (deadline ${deadline[j]}) was due`,
      );
    }
  }
  assert.equal(
    tripped,
    false,
    "runSync kept running after the last timer (alive() stuck true)",
  );
  assert.equal(loop.metrics().timersFired, expected.length);
});

/** A virtual clock that counts its reads. */
class CountingClock extends VirtualClock {
  reads = 0;
  override now(): number {
    this.reads++;
    return super.now();
  }
}

Deno.test("the loop reads its clock at most once per pass, and not at all in a pass without timers", () => {
  const clock = new CountingClock(1000);
  const loop = new Loop({ clock });
  try {
    const base = clock.reads; // the constructor's read
    let ran = 0;
    for (let i = 0; i < 100; i++) loop.queue(() => ran++);
    loop.runSync();
    assert.equal(ran, 100);
    assert.equal(clock.reads, base, "tasks alone read no clock");
    // A task that sets 50 timers and reads loop.now: one read in its pass,
    // and every timer counts from that same time.
    const seen: number[] = [];
    loop.queue(() => {
      for (let i = 0; i < 50; i++) loop.setTimer(() => seen.push(loop.now), 5);
      clock.advance(3); // time moves on inside the pass
      seen.push(loop.now);
    });
    const before = clock.reads;
    loop.runOnceSync(); // runs the task; sleeping jumps the virtual clock
    assert.equal(seen.length, 1);
    assert.equal(seen[0], 1000, "the pass's time, read at its first use");
    assert.ok(clock.reads - before <= 2, `${clock.reads - before} reads`);
    loop.runSync();
    assert.equal(seen.length, 51);
    // All 50 were due at 1005 (1000 + 5), not 1003 + 5: one pass time.
    for (const t of seen.slice(1)) assert.equal(t, 1005);
  } finally {
    loop.close();
  }
});

/** A real-time stand-in the test moves by hand (`virtual` is false). */
class ManualRealClock implements Clock {
  readonly virtual = false;
  time = 1000;
  reads = 0;
  now(): number {
    this.reads++;
    return this.time;
  }
  jumpTo(): void {}
}

Deno.test("outside a pass, a real clock is read once per synchronous turn: timers set in one turn count from its first read", async () => {
  const clock = new ManualRealClock();
  const loop = new Loop({ clock });
  try {
    const base = clock.reads;
    const a = loop.setTimer(() => {}, 10);
    clock.time += 4; // the turn runs on; its timers keep the turn's time
    const b = loop.setTimer(() => {}, 10);
    for (let i = 0; i < 100; i++) loop.setTimer(() => {}, 1).cancel();
    assert.equal(clock.reads - base, 1, "one read for the whole turn");
    assert.equal(a.deadline, 1010);
    assert.equal(b.deadline, 1010);
    await Promise.resolve(); // a microtask ends the turn
    const c = loop.setTimer(() => {}, 10);
    assert.equal(c.deadline, 1014, "a new turn reads the clock again");
    assert.equal(clock.reads - base, 2);
    // A pass does not take a turn's time: it reads its own.
    clock.time += 6;
    const d = loop.setTimer(() => {}, 100); // still c's turn: 1004 + 100
    clock.time += 5;
    let inPass = NaN;
    loop.queue(() => inPass = loop.setTimer(() => {}, 0).deadline);
    loop.runNoWait();
    assert.equal(d.deadline, 1104);
    assert.equal(inPass, 1015, "the pass read the clock itself");
    for (const t of [a, b, c, d]) t.cancel();
  } finally {
    loop.close();
  }
});

Deno.test("outside a pass, a virtual clock is read afresh each time: advance() then setTimer() counts from the new time", () => {
  const clock = new CountingClock(0);
  const loop = new Loop({ clock });
  try {
    const a = loop.setTimer(() => {}, 10);
    clock.advance(4);
    const b = loop.setTimer(() => {}, 10);
    assert.equal(a.deadline, 10);
    assert.equal(b.deadline, 14);
    a.cancel();
    b.cancel();
  } finally {
    loop.close();
  }
});

Deno.test("a synchronous driver that sets timers outside passes and runs passes in between queues one turn-ending microtask, not one per pass", async () => {
  const clock = new ManualRealClock();
  const loop = new Loop({ clock });
  try {
    const queued: number[] = [];
    const real = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (fn) => {
      queued.push(1);
      real(fn);
    };
    try {
      for (let i = 0; i < 100; i++) {
        loop.setTimer(() => {}, 1000).cancel();
        loop.runNoWait();
      }
    } finally {
      globalThis.queueMicrotask = real;
    }
    assert.equal(queued.length, 1);
    await Promise.resolve();
    clock.time += 7;
    const t = loop.setTimer(() => {}, 10);
    assert.equal(t.deadline, 1017, "the turn ended: a fresh read");
    t.cancel();
  } finally {
    loop.close();
  }
});

Deno.test("a pass of any loop on the thread ends another loop's turn time: a blocking drive runs no microtask that could", () => {
  const clock = new ManualRealClock();
  const b = new Loop({ clock });
  const a = new Loop({ clock: new VirtualClock() });
  try {
    const deadlines: number[] = [];
    // Loop a's tasks run under its blocking drive and set timers on b,
    // outside b's passes, while time moves on.
    for (let i = 0; i < 3; i++) {
      a.queue(() => {
        clock.time += 25;
        const t = b.setTimer(() => {}, 50);
        deadlines.push(t.deadline);
        t.cancel();
      });
    }
    a.runSync(); // with maxEvents 20: one pass runs all three
    for (let i = 0; i < 3; i++) {
      a.queue(() => {
        clock.time += 25;
        deadlines.push(b.setTimer(() => {}, 50).deadline);
      });
      a.runSync(); // a pass each
    }
    assert.deepEqual(deadlines, [1075, 1075, 1075, 1150, 1175, 1200]);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("a loop's blocking sleep ends another loop's turn time: a timer set after it counts from after the sleep", () => {
  const clock = new ManualRealClock();
  // A clock that moves while the loop sleeps: the sleep's end is later.
  const sleeper = new Loop({ clock: new VirtualClock() });
  const b = new Loop({ clock });
  try {
    sleeper.queue(() => b.setTimer(() => {}, 10_000).cancel()); // b's turn read
    sleeper.runNoWait(); // a pass: it ends with a drive that could now sleep
    clock.time += 100; // ...for 100 ms
    assert.equal(b.setTimer(() => {}, 80).deadline, 1180);
  } finally {
    sleeper.close();
    b.close();
  }
});
