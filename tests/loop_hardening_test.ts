/**
 * Bugs a hostile tester found in the loop, each kept as a named test whose
 * title says the behaviour: close callbacks that throw, dead producers'
 * slots, wake-ups from host callbacks, `track` and constructor validation,
 * a refreshed timer that was already queued, the watchdog's slack for an
 * early timeout, a second `close()`, and the pass's cached time.
 *
 * Loops run on a {@linkcode VirtualClock} unless a test needs the async
 * drive to really sleep (a host callback must find it asleep); those wait
 * for the drive to arm (`metrics().sleeps`), never for a time, and a rescue
 * fails the test if the drive does not settle within 5 s (`loop_harness.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  connect,
  FIRST_USER_TAG,
  Loop,
  type LoopOptions,
  type LoopWarning,
  MpscQueue,
  Producer,
  QueueFullError,
  spawnWorker,
  type Timer,
  VirtualClock,
  type Waiter,
} from "../mod.ts";
import { Watchdog } from "../runtime/loop_watchdog.ts";
import {
  runSyncToEnd as runSyncGuarded,
  settleOrRescue,
} from "./loop_harness.ts";
import { turn } from "./worker_harness.ts";

function virtualLoop(options: LoopOptions = {}): Loop {
  return new Loop({ clock: new VirtualClock(), ...options });
}

/**
 * Calls `fn` from a host callback once the async drive has armed its next
 * sleep (it sleeps until woken: nothing else is due).
 */
function whenAsleep(loop: Loop, fn: () => void): void {
  const before = loop.metrics().sleeps;
  const poll = () => {
    if (loop.metrics().sleeps > before) fn();
    else setTimeout(poll, 1);
  };
  setTimeout(poll, 0);
}

Deno.test("onPortClosed callbacks that throw", async (t) => {
  await t.step(
    "a throwing callback of a port that closes still frees its slot; the error goes to onError",
    () => {
      const errors: string[] = [];
      const got: unknown[] = [];
      const loop = virtualLoop({
        capacity: { producers: 2 }, // the loop's own slot and one port
        onError: (e) => errors.push((e as Error).message),
        onMessage: (data) => got.push(data),
      });
      for (let round = 0; round < 3; round++) {
        const handle = loop.port(); // round 1 on: needs the freed slot
        const port = connect(handle);
        loop.onPortClosed(handle.slot, () => {
          throw new Error(`closer ${round}`);
        });
        port.post(round);
        port.close();
        runSyncGuarded(loop);
        assert.equal(loop.alive(), false);
      }
      assert.deepEqual(got, [0, 1, 2]);
      assert.deepEqual(errors, ["closer 0", "closer 1", "closer 2"]);
    },
  );

  await t.step(
    "producerDied with a throwing callback records the death first: the port is refused, the slot reclaimed, the error rethrown",
    () => {
      const loop = virtualLoop({ capacity: { producers: 2 } });
      const got: unknown[] = [];
      loop.onMessage = (data) => got.push(data);
      const handle = loop.port();
      const port = connect(handle);
      port.post("before");
      loop.onPortClosed(handle.slot, () => {
        throw new Error("closer threw");
      });
      assert.throws(() => loop.producerDied(handle.slot), /closer threw/);
      assert.throws(() => port.post("after"), "the dead port still posts");
      assert.equal(loop.alive(), true, "its completed post is still queued");
      runSyncGuarded(loop);
      assert.deepEqual(got, ["before"]);
      assert.equal(loop.alive(), false);
      const again = loop.port(); // throws if the slot was never reclaimed
      assert.equal(again.slot, handle.slot);
    },
  );

  await t.step(
    "producerDied with a throwing callback and onError: the error goes there, producerDied returns",
    () => {
      const errors: unknown[] = [];
      const loop = virtualLoop({
        capacity: { producers: 2 },
        onError: (e) => errors.push(e),
      });
      const handle = loop.port();
      loop.onPortClosed(handle.slot, () => {
        throw new Error("closer threw");
      });
      loop.producerDied(handle.slot);
      assert.equal(errors.length, 1);
      assert.match((errors[0] as Error).message, /closer threw/);
      assert.equal(loop.alive(), false);
      assert.equal(loop.port().slot, handle.slot);
    },
  );
});

Deno.test("dead producers' slots", async (t) => {
  const modes: [string, (loop: Loop) => unknown][] = [
    ["runSync", (loop) => runSyncGuarded(loop)],
    ["runNoWait", (loop) => loop.runNoWait()],
    ["runOnceSync", (loop) => loop.runOnceSync()],
    ["run", (loop) => settleOrRescue(loop, loop.run())],
  ];
  for (const [name, drive] of modes) {
    await t.step(
      `a dead producer's slot is free again once ${name}() returns with nothing alive`,
      async () => {
        const loop = virtualLoop({ capacity: { producers: 2 } });
        const got: number[] = [];
        loop.onMessage = (data) => got.push(data as number);
        for (let i = 0; i < 4; i++) {
          const handle = loop.port(); // i >= 1: "all 2 producer slots are taken"
          connect(handle).post(i);
          loop.producerDied(handle.slot);
          await drive(loop);
          assert.equal(loop.alive(), false);
        }
        assert.deepEqual(got, [0, 1, 2, 3]);
      },
    );
  }

  await t.step(
    "port() outside a run method reclaims a drained dead slot without a pass",
    () => {
      const loop = virtualLoop({ capacity: { producers: 2 } });
      for (let i = 0; i < 3; i++) {
        const handle = loop.port(); // never connected
        loop.producerDied(handle.slot);
      }
      assert.equal(loop.pending(), 0);
    },
  );
});

Deno.test("port() from a host callback while the async drive sleeps reclaims a drained dead slot", async () => {
  const loop = new Loop({ stallMs: Infinity, capacity: { producers: 2 } });
  const got: unknown[] = [];
  loop.onMessage = (data) => got.push(data);
  loop.ref();
  const first = loop.port();
  connect(first).post("first");
  let second: number | undefined;
  let failure: unknown;
  whenAsleep(loop, () => {
    try {
      loop.producerDied(first.slot); // "first" was delivered before the sleep
      second = loop.port().slot; // no pass in between: port() must reclaim
      loop.producerDied(second);
    } catch (e) {
      failure = e;
    } finally {
      loop.unref();
    }
  });
  await settleOrRescue(loop, loop.run());
  assert.equal(failure, undefined, `port() failed: ${failure}`);
  assert.deepEqual(got, ["first"]);
  assert.equal(second, first.slot);
  assert.equal(loop.alive(), false);
});

Deno.test("host callbacks wake an async run() asleep", async (t) => {
  // stallMs Infinity: without a wake the drive would sleep forever. Each
  // case arranges what keeps the loop alive and returns the host callback.
  const cases: [string, (loop: Loop) => () => void][] = [
    ["stop()", (loop) => {
      loop.ref(); // released below, after run() returned
      return () => loop.stop();
    }],
    ["unref()", (loop) => {
      loop.ref();
      return () => loop.unref();
    }],
    ["producerDied()", (loop) => {
      const handle = loop.port();
      return () => loop.producerDied(handle.slot);
    }],
    ["SpawnedWorker.terminate()", (loop) => {
      const idle = "data:application/javascript,self.onmessage = () => {};";
      const w = spawnWorker(loop, idle);
      return () => w.terminate();
    }],
  ];
  for (const [name, arrange] of cases) {
    await t.step(
      `${name} from a host callback wakes the sleeping drive, which returns`,
      async () => {
        const loop = new Loop({ stallMs: Infinity });
        const act = arrange(loop);
        whenAsleep(loop, act);
        await settleOrRescue(loop, loop.run());
        if (name === "stop()") loop.unref();
        assert.equal(loop.alive(), false);
      },
    );
  }
});

Deno.test("track() validates its promise", async (t) => {
  for (
    const [label, bad] of [
      ["a number", 42],
      ["null", null],
      ["an object without then", {}],
      ["an object whose then is not a function", { then: 1 }],
    ] as const
  ) {
    await t.step(
      `track(${label}) throws a TypeError and counts no host operation`,
      () => {
        const loop = virtualLoop();
        assert.throws(
          () => loop.track(bad as unknown as PromiseLike<void>, () => {}),
          (e: unknown) => {
            assert.ok(e instanceof TypeError);
            assert.equal(
              e.message,
              "Cannot track promise: expected a thenable",
            );
            return true;
          },
        );
        assert.equal(loop.alive(), false, "a failed track keeps it alive");
      },
    );
  }

  await t.step(
    "track() with a callback that is not a function throws and counts nothing",
    () => {
      const loop = virtualLoop();
      assert.throws(
        () =>
          loop.track(
            Promise.resolve(1),
            5 as unknown as (r: PromiseSettledResult<number>) => void,
          ),
        TypeError,
      );
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "a thenable whose then throws is delivered as a rejection; the loop is not kept alive",
    async () => {
      const loop = virtualLoop();
      const results: PromiseSettledResult<unknown>[] = [];
      const hostile = {
        then() {
          throw new Error("then threw");
        },
      };
      loop.track(hostile as PromiseLike<unknown>, (r) => results.push(r));
      await settleOrRescue(loop, loop.run());
      assert.equal(results.length, 1);
      assert.equal(results[0].status, "rejected");
      assert.equal(loop.alive(), false);
    },
  );
});

Deno.test("refresh() of a timer already queued", async (t) => {
  await t.step(
    "a timer refreshed after it was queued runs at its new deadline, in deadline order",
    () => {
      const clock = new VirtualClock();
      const loop = new Loop({ clock, maxEvents: 1 });
      const out: string[] = [];
      loop.setTimer(() => out.push(`A@${loop.now}`), 0);
      const x = loop.setTimer(() => out.push(`X@${loop.now}`), 10);
      clock.advance(10);
      loop.runNoWait(); // A and X queued; the cap of 1 runs only A
      assert.deepEqual(out, ["A@10"]);
      x.refresh(); // due at 20 now
      loop.setTimer(() => out.push(`Y@${loop.now}`), 5); // due at 15
      clock.advance(10);
      runSyncGuarded(loop);
      assert.deepEqual(out, ["A@10", "Y@20", "X@20"]);
      assert.equal(loop.alive(), false);
    },
  );

  for (const maxEvents of [20, 2, 1]) {
    await t.step(
      `tie order after a refresh in a callback does not depend on maxEvents (${maxEvents})`,
      () => {
        const loop = virtualLoop({ maxEvents });
        const out: string[] = [];
        const timers: Timer[] = [];
        loop.setTimer(() => {
          out.push("A");
          loop.setTimer(() => out.push("C"), 0);
          timers[0].refresh(); // B takes a new place among equal deadlines
        }, 0);
        timers.push(loop.setTimer(() => out.push("B"), 0));
        runSyncGuarded(loop);
        assert.deepEqual(out, ["A", "C", "B"]);
      },
    );
  }

  await t.step(
    "a repeating timer refreshed while queued keeps deadline order and its new phase",
    () => {
      const clock = new VirtualClock();
      const loop = new Loop({ clock, maxEvents: 1 });
      const out: string[] = [];
      loop.setTimer(() => {}, 0);
      const r = loop.setTimer(
        () => {
          out.push(`R@${loop.now}`);
          if (out.length === 4) r.cancel();
        },
        10,
        10,
      );
      clock.advance(10);
      loop.runNoWait(); // R queued behind the first timer, not run
      r.refresh(); // due at 20, then every 10
      loop.setTimer(() => out.push(`Y@${loop.now}`), 5); // due at 15
      clock.advance(10);
      runSyncGuarded(loop);
      assert.deepEqual(out, ["Y@20", "R@20", "R@30", "R@40"]);
    },
  );
});

Deno.test("runOnceSync() sleeps once, at most stallMs (documented)", () => {
  // Real clock: a virtual one would jump to the deadline instead.
  const loop = new Loop({ stallMs: 1, spinMicros: 0 });
  let fired = false;
  const timer = loop.setTimer(() => fired = true, 60_000);
  assert.equal(loop.runOnceSync(), 0);
  assert.equal(fired, false, "returns having run nothing");
  assert.equal(loop.metrics().sleeps, 1);
  timer.cancel();
});

Deno.test("Loop options and errors", async (t) => {
  for (const hook of ["onError", "onWarning", "onMessage", "onEntry"]) {
    await t.step(`new Loop({ ${hook}: 5 }) throws a TypeError`, () => {
      assert.throws(
        () => new Loop({ [hook]: 5 } as unknown as LoopOptions),
        (e: unknown) => {
          assert.ok(e instanceof TypeError);
          assert.equal(
            e.message,
            `Cannot create loop: ${hook} must be a function`,
          );
          return true;
        },
      );
    });
  }

  await t.step("setting a hook to a non-function throws a TypeError", () => {
    const loop = virtualLoop();
    for (const hook of ["onWarning", "onMessage", "onEntry"] as const) {
      assert.throws(() => {
        (loop as unknown as Record<string, unknown>)[hook] = 5;
      }, TypeError);
      loop[hook] = undefined; // clearing is allowed
    }
  });

  for (const clock of [{}, null, { now: 5 }]) {
    await t.step(
      `new Loop({ clock: ${JSON.stringify(clock)} }) throws a TypeError`,
      () => {
        assert.throws(
          () => new Loop({ clock } as unknown as LoopOptions),
          (e: unknown) => {
            assert.ok(e instanceof TypeError);
            assert.equal(
              e.message,
              "Cannot create loop: clock must have now()",
            );
            return true;
          },
        );
      },
    );
  }

  await t.step(
    "QueueFullError counts the tasks actually queued (one node is kept for the close marker, one for due timers)",
    () => {
      const loop = virtualLoop({ capacity: { nodesPerProducer: 8 } });
      for (let i = 0; i < 6; i++) loop.queue(() => {});
      assert.throws(
        () => loop.queue(() => {}),
        (e: unknown) => {
          assert.ok(e instanceof QueueFullError);
          assert.equal(
            e.message,
            "Cannot queue task: 6 tasks already queued on the loop (its own slot holds capacity.nodesPerProducer - 2 = 6)",
          );
          return true;
        },
      );
      assert.equal(loop.pending(), 6);
    },
  );

  await t.step(
    "an onWarning that throws goes to onError; run() still resolves",
    async () => {
      const errors: string[] = [];
      const warnings: LoopWarning[] = [];
      const loop = new Loop({
        stallMs: 5,
        onError: (e) => errors.push((e as Error).message),
        onWarning: (w) => {
          warnings.push(w);
          throw new Error("onWarning threw");
        },
        onEntry: () => loop.unref(),
      });
      loop.ref();
      // Pushed while the drive sleeps, without a wake: a lost wake-up.
      whenAsleep(loop, () => {
        Producer.attach(loop.buffer).push(FIRST_USER_TAG, 42, 0);
      });
      await settleOrRescue(loop, loop.run());
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].kind, "lost-wakeup");
      assert.deepEqual(errors, ["onWarning threw"]);
    },
  );

  await t.step(
    "a second close() after one that threw runs on to the marker and seals",
    () => {
      const loop = virtualLoop();
      const ran: string[] = [];
      loop.queue(() => {
        throw new Error("task boom");
      });
      loop.queue(() => ran.push("second"));
      assert.throws(() => loop.close(), /task boom/);
      assert.equal(loop.closed, true);
      assert.deepEqual(ran, []);
      loop.close();
      assert.deepEqual(ran, ["second"], "the second close() did nothing");
      assert.equal(loop.alive(), false);
      assert.equal(loop.pending(), 0);
      loop.close(); // sealed: a no-op
    },
  );
});

Deno.test("watchdog: a sleep of stallMs the host ended early still counts as a stall", () => {
  // Node's Atomics.waitAsync(..., 30) returned after 29.17 ms.
  const q = MpscQueue.create({ producers: 2, nodesPerProducer: 4 });
  Producer.attach(q.buffer).push(FIRST_USER_TAG, 1, 0);
  const waiter = { timedOutArmed: 1, timedOutAdded: 0 } as unknown as Waiter;
  const seen: LoopWarning[] = [];
  const dog = new Watchdog(q, waiter, 30);
  dog.onWarning = (w) => seen.push(w);
  dog.slept("timed-out", 29.17, 30);
  assert.equal(seen.length, 1, "an early timeout of a full sleep was ignored");
  assert.equal(seen[0].kind, "lost-wakeup");
  dog.slept("timed-out", 10, 10); // a shorter sleep (a timer was due)
  assert.equal(seen.length, 1, "a sleep asked shorter than stallMs counted");
});

Deno.test("setTimer inside a pass uses the pass's time (no clock read per call)", () => {
  const clock = new VirtualClock();
  let reads = 0;
  const counting = {
    virtual: true,
    now: () => {
      reads++;
      return clock.now();
    },
    jumpTo: (t: number) => clock.jumpTo(t),
  };
  const loop = new Loop({ clock: counting });
  const fired: number[] = [];
  let readsInTask = -1;
  loop.queue(() => {
    const before = reads;
    clock.advance(5); // the task took 5 ms
    for (let i = 0; i < 100; i++) loop.setTimer(() => fired.push(loop.now), 10);
    readsInTask = reads - before;
  });
  runSyncGuarded(loop);
  assert.equal(readsInTask, 0, "setTimer read the clock inside a pass");
  assert.equal(fired.length, 100);
  assert.equal(fired[0], 10, "due 10 ms after the pass's time (uv_now)");
  const outside = reads;
  loop.setTimer(() => {}, 1).cancel();
  assert.equal(reads, outside + 1, "outside a pass setTimer reads the clock");
});

Deno.test("overloaded repeating timers on a 4-node slot leave the host its timers under await loop.run()", async () => {
  // Each pass queues at most half the slot's free nodes of due timers, then
  // finds more due: its sleep of 0 ms returns at once. Before such sleeps
  // counted against the busy-time bound, the host got 1 tick in 300 ms.
  const loop = new Loop({ capacity: { nodesPerProducer: 4 } });
  const busy = (ms: number) => {
    const e = performance.now() + ms;
    while (performance.now() < e) { /* a callback that takes 0.1 ms */ }
  };
  const stopAt = performance.now() + 300;
  const timers: Timer[] = [];
  for (let i = 0; i < 40; i++) {
    timers.push(loop.setTimer(
      () => {
        busy(0.1);
        if (performance.now() > stopAt) { for (const t of timers) t.cancel(); }
      },
      1,
      1,
    ));
  }
  let ticks = 0;
  const tick = setInterval(() => ticks++, 5);
  try {
    await settleOrRescue(loop, loop.run());
  } finally {
    clearInterval(tick);
    loop.close();
  }
  assert.ok(ticks >= 5, `the host's setInterval(5) ticked ${ticks} times`);
});

Deno.test("track() completions that find the loop's own slot full run in the order they settled, after the ones before them", async () => {
  const loop = virtualLoop({ capacity: { nodesPerProducer: 4 } });
  try {
    const order: string[] = [];
    while (loop.tryQueue(() => order.push("task")));
    loop.track(Promise.resolve(), () => order.push("A"));
    loop.track(Promise.resolve(), () => order.push("B"));
    await turn(); // A and B settle: the slot is full, both wait
    loop.runNoWait(); // runs the tasks; A and B are queued at the pass end
    loop.track(Promise.resolve(), () => order.push("C"));
    await turn(); // C settles after them
    loop.runNoWait();
    loop.runNoWait();
    assert.deepEqual(order.filter((x) => x !== "task"), ["A", "B", "C"]);
    assert.equal(loop.alive(), false, "every completion accounted for");
  } finally {
    loop.close();
  }
});

Deno.test("close() drops track() completions still waiting for room, as it drops later ones", async () => {
  const loop = virtualLoop({ capacity: { nodesPerProducer: 4 } });
  const order: string[] = [];
  while (loop.tryQueue(() => order.push("task")));
  loop.track(Promise.resolve(), () => order.push("A"));
  await turn();
  assert.equal(loop.alive(), true);
  loop.close();
  assert.deepEqual(order, ["task", "task"]);
  assert.equal(loop.alive(), false);
});
