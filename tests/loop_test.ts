/**
 * The loop (`runtime/loop.ts`): run modes, the per-pass cap and fairness,
 * re-entrancy, task errors, the microtask rule, `queue` backpressure,
 * `track`, and metrics. Every loop runs on a {@linkcode VirtualClock}: no
 * real sleeping and no wall-clock assertions.
 *
 * Two guards keep a buggy loop from hanging the suite; neither is asserted
 * on for timing:
 * - sync drives run under a watchdog, an unreferenced timer far in the
 *   future that stops the loop (it fires only if the loop kept running with
 *   nothing referenced left);
 * - async drives that wait on the host get a rescue that, if the drive has
 *   not settled after a few real seconds, stops the loop and wakes it.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  FIRST_USER_TAG,
  Loop,
  type LoopOptions,
  Producer,
  QueueFullError,
  ReentrancyError,
  VirtualClock,
} from "../mod.ts";
import { runSyncToEnd, settleOrRescue } from "./loop_harness.ts";

function setup(options: LoopOptions = {}): { clock: VirtualClock; loop: Loop } {
  const clock = new VirtualClock();
  return { clock, loop: new Loop({ clock, ...options }) };
}

/** Queues `n` tasks that append their index to `into`. */
function queueNumbered(loop: Loop, n: number, into: number[], from = 0): void {
  for (let i = from; i < from + n; i++) loop.queue(() => into.push(i));
}

/** Sizes of the loop's own slot the full-slot cases run at. */
const SLOT_SIZES = [4, 8, 16, 32];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

Deno.test("run modes", async (t) => {
  await t.step("runSync runs until nothing referenced is left", () => {
    const { clock, loop } = setup();
    const ran: string[] = [];
    loop.queue(() => {
      ran.push("task");
      loop.setTimer(() => ran.push("timer 30"), 30);
    });
    loop.setTimer(() => {
      ran.push("timer 10");
      loop.queue(() => ran.push("task from timer"));
    }, 10);
    loop.setTimer(() => ran.push("unref 50"), 50).unref();
    assert.equal(runSyncToEnd(loop), 0);
    assert.deepEqual(ran, ["task", "timer 10", "task from timer", "timer 30"]);
    assert.equal(clock.now(), 30);
    assert.equal(loop.alive(), false);
    assert.equal(loop.pending(), 0);
  });

  await t.step(
    "stop() inside a task makes runSync return right after that task",
    () => {
      const { loop } = setup();
      const ran: number[] = [];
      for (let i = 0; i < 5; i++) {
        loop.queue(() => {
          ran.push(i);
          if (i === 1) loop.stop();
        });
      }
      const left = loop.runSync();
      assert.deepEqual(ran, [0, 1], "tasks after the stopping one wait");
      assert.equal(left, 3);
      assert.equal(loop.pending(), 3);
      assert.equal(loop.alive(), true);
    },
  );

  await t.step(
    "a runSync after stop() continues where the loop stopped",
    () => {
      const { loop } = setup();
      const ran: number[] = [];
      let stopped = false;
      for (let i = 0; i < 5; i++) {
        loop.queue(() => {
          ran.push(i);
          if (i === 1) loop.stop();
        });
      }
      loop.setTimer(() => {
        ran.push(10);
        stopped = true;
        loop.stop();
      }, 10);
      loop.setTimer(() => ran.push(20), 20);
      loop.runSync();
      loop.runSync();
      assert.equal(stopped, true);
      assert.deepEqual(
        ran,
        [0, 1, 2, 3, 4, 10],
        "stopped after the timer at 10",
      );
      assert.equal(loop.alive(), true);
      runSyncToEnd(loop);
      assert.deepEqual(ran, [0, 1, 2, 3, 4, 10, 20]);
    },
  );

  await t.step(
    "runNoWait and runOnceSync run at most maxEvents per pass and return what is still queued",
    () => {
      const { loop } = setup({ maxEvents: 4 });
      const ran: number[] = [];
      queueNumbered(loop, 10, ran);
      assert.equal(loop.pending(), 10);
      assert.equal(loop.runNoWait(), 6);
      assert.deepEqual(ran, range(0, 4));
      assert.equal(loop.pending(), 6);
      assert.equal(loop.runOnceSync(), 2);
      assert.deepEqual(ran, range(0, 8));
      assert.equal(loop.pending(), 2);
      assert.equal(loop.runNoWait(), 0);
      assert.deepEqual(ran, range(0, 10));
      assert.equal(loop.pending(), 0);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "tasks queued during a pass count toward the same pass's cap",
    () => {
      const { loop } = setup({ maxEvents: 3 });
      const ran: string[] = [];
      loop.queue(() => {
        ran.push("a");
        loop.queue(() => ran.push("a1"));
        loop.queue(() => ran.push("a2"));
        loop.queue(() => ran.push("a3"));
      });
      assert.equal(loop.runNoWait(), 1);
      assert.deepEqual(ran, ["a", "a1", "a2"]);
      assert.equal(loop.runNoWait(), 0);
      assert.deepEqual(ran, ["a", "a1", "a2", "a3"]);
    },
  );

  await t.step(
    "runNoWait never sleeps: with only a future timer the virtual clock stays put",
    () => {
      const { clock, loop } = setup();
      let fired = false;
      loop.setTimer(() => (fired = true), 100);
      assert.equal(loop.runNoWait(), 0);
      assert.equal(fired, false);
      assert.equal(
        clock.now(),
        0,
        "runNoWait moved the virtual clock (a virtual sleep)",
      );
      assert.equal(loop.alive(), true);
    },
  );

  await t.step(
    "runOnceSync with only a future timer sleeps (virtually) until it is due",
    () => {
      const { clock, loop } = setup();
      const fired: number[] = [];
      loop.setTimer(() => fired.push(loop.now), 100);
      loop.runOnceSync();
      assert.equal(clock.now(), 100);
      if (fired.length === 0) loop.runOnceSync();
      assert.deepEqual(fired, [100]);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "runOnceSync and runNoWait on a loop with nothing to do return 0 at once",
    () => {
      const { clock, loop } = setup();
      assert.equal(loop.runOnceSync(), 0);
      assert.equal(loop.runNoWait(), 0);
      assert.equal(loop.runSync(), 0);
      assert.equal(clock.now(), 0);
      assert.equal(loop.metrics().sleeps, 0);
    },
  );

  await t.step("alive() in each state", () => {
    const { loop } = setup();
    assert.equal(loop.alive(), false, "new loop");
    loop.queue(() => {});
    assert.equal(loop.alive(), true, "queued task");
    loop.runNoWait();
    assert.equal(loop.alive(), false, "after the task ran");
    const timer = loop.setTimer(() => {}, 10);
    assert.equal(loop.alive(), true, "referenced timer");
    timer.unref();
    assert.equal(loop.alive(), false, "unreferenced timer");
    timer.ref();
    assert.equal(loop.alive(), true, "timer referenced again");
    timer.cancel();
    assert.equal(loop.alive(), false, "cancelled timer");
    loop.ref();
    loop.ref();
    assert.equal(loop.alive(), true, "ref() held twice");
    loop.unref();
    assert.equal(loop.alive(), true, "ref() still held once");
    loop.unref();
    assert.equal(loop.alive(), false, "every ref() released");
    loop.unref(); // one too many: must not go negative
    loop.ref();
    assert.equal(loop.alive(), true, "extra unref() did not go negative");
    loop.unref();
    assert.equal(loop.alive(), false);
    const producer = Producer.attach(loop.buffer);
    producer.push(FIRST_USER_TAG, 1, 2);
    assert.equal(loop.alive(), true, "item from another producer");
    loop.runNoWait();
    assert.equal(loop.alive(), false, "after the item was delivered");
    const { promise, resolve } = Promise.withResolvers<number>();
    loop.track(promise, () => {});
    assert.equal(loop.alive(), true, "tracked promise pending");
    resolve(1);
  });

  await t.step("async run() runs tasks and timers to the end", async () => {
    const { clock, loop } = setup();
    const ran: string[] = [];
    loop.setTimer(() => ran.push("timer 5"), 5);
    loop.queue(() => {
      ran.push("task");
      loop.setTimer(() => ran.push("timer 7"), 7);
    });
    assert.equal(await settleOrRescue(loop, loop.run()), 0);
    assert.deepEqual(ran, ["task", "timer 5", "timer 7"]);
    assert.equal(clock.now(), 7);
    assert.equal(loop.alive(), false);
  });

  await t.step(
    "async runOnce() makes one pass and resolves with what is still queued",
    async () => {
      const { loop } = setup({ maxEvents: 2 });
      const ran: number[] = [];
      queueNumbered(loop, 3, ran);
      assert.equal(await loop.runOnce(), 1);
      assert.deepEqual(ran, [0, 1]);
      assert.equal(await loop.runOnce(), 0);
      assert.deepEqual(ran, [0, 1, 2]);
      assert.equal(
        await loop.run(),
        0,
        "run() on an idle loop resolves at once",
      );
    },
  );

  await t.step(
    "stop() inside a task makes async run() resolve after that task",
    async () => {
      const { loop } = setup();
      const ran: number[] = [];
      for (let i = 0; i < 4; i++) {
        loop.queue(() => {
          ran.push(i);
          if (i === 0) loop.stop();
        });
      }
      assert.equal(await loop.run(), 3);
      assert.deepEqual(ran, [0]);
      assert.equal(await settleOrRescue(loop, loop.run()), 0);
      assert.deepEqual(ran, [0, 1, 2, 3]);
    },
  );
});

Deno.test("fairness under a flood of self-requeuing tasks", async (t) => {
  const maxEvents = 8;
  const flood = 50;

  function startFlood(loop: Loop): number[] {
    const runs = new Array<number>(flood).fill(0);
    for (let i = 0; i < flood; i++) {
      const task = () => {
        runs[i]++;
        loop.queue(task);
      };
      loop.queue(task);
    }
    return runs;
  }

  await t.step(
    "a due timer still runs within ceil((flood + 1) / maxEvents) passes",
    () => {
      const { clock, loop } = setup({ maxEvents });
      const runs = startFlood(loop);
      let pass = 0;
      let firedInPass = 0;
      loop.setTimer(() => (firedInPass = pass), 5);
      for (pass = 1; pass <= 3; pass++) loop.runNoWait();
      assert.equal(firedInPass, 0, "not due yet");
      clock.advance(5);
      // The timer joins the queue behind the flood (always `flood` items at a
      // pass boundary) and each pass takes maxEvents.
      const bound = Math.ceil((flood + 1) / maxEvents);
      const dueFrom = pass;
      for (; pass < dueFrom + 3 * bound && firedInPass === 0; pass++) {
        loop.runNoWait();
      }
      assert.ok(firedInPass > 0, "the timer never ran");
      assert.ok(
        firedInPass - dueFrom + 1 <= bound,
        `timer ran ${
          firedInPass - dueFrom + 1
        } passes after it was due; bound ${bound}`,
      );
      for (let i = 0; i < 10; i++) loop.runNoWait();
      const passes = loop.metrics().passes;
      const total = runs.reduce((a, b) => a + b, 0);
      assert.equal(
        total,
        passes * maxEvents - 1,
        "every slot but the timer's went to the flood",
      );
      assert.ok(
        Math.min(...runs) >= Math.floor(total / flood) - 1,
        "the flood stays fair to itself",
      );
      assert.equal(loop.pending(), flood, "the flood keeps running");
      assert.equal(loop.metrics().timersFired, 1);
    },
  );

  await t.step(
    "items pushed by another producer are delivered within ceil((flood + k) / maxEvents) passes, in order",
    () => {
      const { loop } = setup({ maxEvents });
      const runs = startFlood(loop);
      const producer = Producer.attach(loop.buffer);
      let pass = 0;
      const got: { tag: number; a: number; b: number; pass: number }[] = [];
      loop.onEntry = (e) => got.push({ tag: e.tag, a: e.a, b: e.b, pass });
      for (pass = 1; pass <= 3; pass++) loop.runNoWait();
      const k = 12;
      for (let i = 0; i < k; i++) {
        producer.push(FIRST_USER_TAG + (i % 3), i, producer.slot);
      }
      const bound = Math.ceil((flood + k) / maxEvents);
      const pushedAt = pass;
      for (; pass < pushedAt + 3 * bound && got.length < k; pass++) {
        loop.runNoWait();
      }
      assert.deepEqual(got.map((g) => g.a), range(0, k), "producer order kept");
      assert.ok(got.every((g, i) => g.tag === FIRST_USER_TAG + (i % 3)));
      assert.ok(got.every((g) => g.b === producer.slot));
      const last = got.at(-1)!.pass - pushedAt + 1;
      assert.ok(
        last <= bound,
        `last item after ${last} passes; bound ${bound}`,
      );
      const before = runs.reduce((a, b) => a + b, 0);
      for (let i = 0; i < 5; i++) loop.runNoWait();
      assert.equal(runs.reduce((a, b) => a + b, 0), before + 5 * maxEvents);
      assert.equal(loop.metrics().tasks.entry, k);
    },
  );

  for (const fill of ["above half the slot", "the whole slot"]) {
    await t.step(
      `due timers still run when the flood keeps ${fill} (nodesPerProducer 64)`,
      () => {
        const { clock, loop } = setup({
          maxEvents,
          capacity: { nodesPerProducer: 64 },
        });
        let queued = 0;
        let refused = 0;
        const task = () => {
          if (!loop.tryQueue(task)) refused++;
        };
        // 40 > 64 / 2; "the whole slot" queues until tryQueue refuses.
        while (
          (fill === "the whole slot" || queued < 40) && loop.tryQueue(task)
        ) {
          queued++;
        }
        assert.ok(queued >= 40, `only ${queued} tasks fit`);
        const fired: number[] = [];
        for (let i = 0; i < 3; i++) loop.setTimer(() => fired.push(i), 0);
        clock.advance(1);
        const bound = 3 * Math.ceil((queued + 3) / maxEvents);
        for (let pass = 0; pass < bound && fired.length < 3; pass++) {
          loop.runNoWait();
        }
        assert.deepEqual(fired, [0, 1, 2], `fired within ${bound} passes`);
        // A queued timer holds a node the flood may have wanted: the flood
        // is told (tryQueue returns false), never silently dropped.
        assert.equal(loop.pending() + refused, queued, "every task accounted");
        assert.ok(refused <= 3, `${refused} refusals for 3 timers`);
        if (fill !== "the whole slot") assert.equal(refused, 0);
      },
    );
  }

  await t.step(
    "a due timer still runs when loop.track() completions keep the slot full (nodesPerProducer 8, await run())",
    async () => {
      const { clock, loop } = setup({
        maxEvents,
        capacity: { nodesPerProducer: 8 },
      });
      const LIMIT = 20_000; // the flood ends by itself here
      let completions = 0;
      let firedAt = -1;
      const host = () => {
        if (++completions === 100) clock.advance(5);
        if (firedAt < 0 && completions < LIMIT) {
          loop.track(Promise.resolve(), host);
        }
      };
      for (let i = 0; i < 8; i++) loop.track(Promise.resolve(), host);
      loop.setTimer(() => (firedAt = completions), 5);
      await settleOrRescue(loop, loop.run());
      assert.ok(firedAt >= 0, "the timer never ran");
      assert.ok(
        firedAt < LIMIT / 2,
        `the timer waited for ${firedAt} completions`,
      );
    },
  );
});

Deno.test("calling a run method from inside a task throws ReentrancyError and the loop stays usable", async (t) => {
  type Method = "runSync" | "runOnceSync" | "runNoWait" | "run" | "runOnce";
  const SYNC = ["runSync", "runOnceSync", "runNoWait"] as const;
  const ASYNC = ["run", "runOnce"] as const;

  /** Queues a task that calls every run method; resolves with what each threw. */
  function probe(loop: Loop): Promise<Map<Method, unknown>> {
    const { promise, resolve } = Promise.withResolvers<Map<Method, unknown>>();
    loop.queue(() => {
      const seen = new Map<Method, unknown>();
      for (const m of SYNC) {
        try {
          loop[m]();
          seen.set(m, "returned");
        } catch (e) {
          seen.set(m, e);
        }
      }
      const settled = ASYNC.map((m) =>
        loop[m]().then(
          () => seen.set(m, "resolved"),
          (e) => seen.set(m, e),
        )
      );
      Promise.all(settled).then(() => resolve(seen));
    });
    return promise;
  }

  function check(seen: Map<Method, unknown>): void {
    for (const m of [...SYNC, ...ASYNC]) {
      const e = seen.get(m);
      assert.ok(e instanceof ReentrancyError, `${m}: got ${String(e)}`);
      assert.equal(e.name, "ReentrancyError");
      assert.match(e.message, new RegExp(`^Cannot ${m}: \\S`));
      assert.doesNotMatch(e.message, /\.$/);
    }
  }

  await t.step("under runSync", async () => {
    const { loop } = setup();
    const seen = probe(loop);
    runSyncToEnd(loop);
    check(await seen);
    const ran: number[] = [];
    queueNumbered(loop, 2, ran);
    loop.setTimer(() => ran.push(9), 1);
    runSyncToEnd(loop);
    assert.deepEqual(ran, [0, 1, 9]);
  });

  await t.step("under async run", async () => {
    const { loop } = setup();
    const seen = probe(loop);
    await settleOrRescue(loop, loop.run());
    check(await seen);
    const ran: number[] = [];
    queueNumbered(loop, 2, ran);
    assert.equal(await settleOrRescue(loop, loop.run()), 0);
    assert.deepEqual(ran, [0, 1]);
  });
});

Deno.test("task errors", async (t) => {
  await t.step(
    "with onError, each error is reported and every task runs in order",
    () => {
      const errors: unknown[] = [];
      const { loop } = setup({ maxEvents: 3, onError: (e) => errors.push(e) });
      const ran: number[] = [];
      const boom = [new Error("2"), new Error("5")];
      for (let i = 0; i < 8; i++) {
        loop.queue(() => {
          ran.push(i);
          if (i === 2) throw boom[0];
          if (i === 5) throw boom[1];
        });
      }
      runSyncToEnd(loop);
      assert.deepEqual(ran, range(0, 8));
      assert.deepEqual(errors, boom);
    },
  );

  await t.step(
    "without onError, runSync rethrows after that task; the rest stay queued in order",
    () => {
      const { loop } = setup({ maxEvents: 3 });
      const ran: number[] = [];
      const boom = new Error("task 4");
      for (let i = 0; i < 10; i++) {
        loop.queue(() => {
          ran.push(i);
          if (i === 4) throw boom;
        });
      }
      assert.throws(() => loop.runSync(), (e) => e === boom);
      assert.deepEqual(
        ran,
        range(0, 5),
        "stopped right after the throwing task",
      );
      assert.equal(loop.pending(), 5);
      assert.equal(loop.alive(), true);
      assert.equal(runSyncToEnd(loop), 0);
      assert.deepEqual(ran, range(0, 10), "nothing lost, nothing run twice");
    },
  );

  await t.step(
    "without onError, async run() rejects and a later run() continues",
    async () => {
      const { loop } = setup();
      const ran: number[] = [];
      const boom = new Error("task 1");
      for (let i = 0; i < 4; i++) {
        loop.queue(() => {
          ran.push(i);
          if (i === 1) throw boom;
        });
      }
      await assert.rejects(loop.run(), (e) => e === boom);
      assert.deepEqual(ran, [0, 1]);
      assert.equal(loop.pending(), 2);
      assert.equal(await settleOrRescue(loop, loop.run()), 0);
      assert.deepEqual(ran, [0, 1, 2, 3]);
    },
  );

  await t.step("an onEntry handler that throws goes to onError too", () => {
    const errors: unknown[] = [];
    const { loop } = setup({ onError: (e) => errors.push(e) });
    const got: number[] = [];
    loop.onEntry = (e) => {
      got.push(e.a);
      if (e.a === 0) throw new Error("entry 0");
    };
    const producer = Producer.attach(loop.buffer);
    producer.push(FIRST_USER_TAG, 0, 0);
    producer.push(FIRST_USER_TAG, 1, 0);
    runSyncToEnd(loop);
    assert.deepEqual(got, [0, 1]);
    assert.equal(errors.length, 1);
  });
});

Deno.test("promise reactions queued by a task", async (t) => {
  /** Tasks t0..t(n-1), each queueing reaction m<i>. */
  function queueWithReactions(loop: Loop, n: number, log: string[]): void {
    for (let i = 0; i < n; i++) {
      loop.queue(() => {
        log.push(`t${i}`);
        Promise.resolve().then(() => log.push(`m${i}`));
      });
    }
  }

  /** The order the module docs promise: per pass, its tasks then their reactions. */
  function expectedAsync(n: number, maxEvents: number): string[] {
    const out: string[] = [];
    for (let p = 0; p < n; p += maxEvents) {
      const pass = range(p, Math.min(n, p + maxEvents));
      out.push(...pass.map((i) => `t${i}`), ...pass.map((i) => `m${i}`));
    }
    return out;
  }

  for (const maxEvents of [20, 1]) {
    await t.step(
      `run the async drive's reactions after the pass, before the next (maxEvents ${maxEvents})`,
      async () => {
        const { loop } = setup({ maxEvents });
        const log: string[] = [];
        const n = 45;
        queueWithReactions(loop, n, log);
        await settleOrRescue(loop, loop.run());
        assert.deepEqual(log, expectedAsync(n, maxEvents));
      },
    );

    await t.step(
      `wait until runSync returns (maxEvents ${maxEvents})`,
      async () => {
        const { loop } = setup({ maxEvents });
        const log: string[] = [];
        const n = 45;
        queueWithReactions(loop, n, log);
        runSyncToEnd(loop);
        assert.deepEqual(log, range(0, n).map((i) => `t${i}`));
        await Promise.resolve();
        assert.deepEqual(log.slice(n), range(0, n).map((i) => `m${i}`));
      },
    );
  }

  await t.step("run after each async runOnce() pass", async () => {
    const { loop } = setup({ maxEvents: 3 });
    const log: string[] = [];
    queueWithReactions(loop, 5, log);
    await loop.runOnce();
    assert.deepEqual(log, ["t0", "t1", "t2", "m0", "m1", "m2"]);
    await loop.runOnce();
    assert.deepEqual(log, expectedAsync(5, 3));
  });
});

Deno.test("queue() and tryQueue()", async (t) => {
  await t.step("a task that is not a function throws TypeError", () => {
    const { loop } = setup();
    for (const bad of [undefined, null, "task", 1, {}, Promise.resolve()]) {
      for (const call of [loop.queue, loop.tryQueue]) {
        assert.throws(
          () => call.call(loop, bad as unknown as () => void),
          (e: unknown) =>
            e instanceof TypeError && /^Cannot queue task: \S/.test(e.message),
        );
      }
    }
    assert.equal(loop.pending(), 0);
    assert.equal(loop.alive(), false);
  });

  await t.step(
    "queue() throws QueueFullError when the loop's own slot is full; nothing is lost",
    () => {
      // Of the loop's own slot, one node is kept for close()'s marker and
      // one for due timers.
      const { loop } = setup({ capacity: { nodesPerProducer: 4 } });
      const ran: number[] = [];
      queueNumbered(loop, 2, ran);
      assert.throws(
        () => loop.queue(() => ran.push(99)),
        (e: unknown) => {
          assert.ok(e instanceof QueueFullError);
          assert.ok(e instanceof RangeError);
          assert.equal(e.name, "QueueFullError");
          assert.match(e.message, /^Cannot queue task: \S/);
          return true;
        },
      );
      assert.equal(loop.pending(), 2);
      runSyncToEnd(loop);
      assert.deepEqual(ran, [0, 1]);
      queueNumbered(loop, 2, ran, 2);
      runSyncToEnd(loop);
      assert.deepEqual(ran, range(0, 4), "the slot is reusable after a run");
    },
  );

  await t.step(
    "tryQueue() returns false when full, true again after a run",
    () => {
      const { loop } = setup({ capacity: { nodesPerProducer: 4 } });
      const ran: number[] = [];
      queueNumbered(loop, 2, ran);
      assert.equal(loop.tryQueue(() => ran.push(99)), false);
      assert.equal(loop.pending(), 2);
      loop.runNoWait();
      assert.equal(loop.tryQueue(() => ran.push(2)), true);
      runSyncToEnd(loop);
      assert.deepEqual(ran, [0, 1, 2]);
    },
  );

  await t.step(
    "a running task no longer counts as queued: it may queue a follow-up into a full slot",
    () => {
      const { loop } = setup({ capacity: { nodesPerProducer: 4 } });
      const ran: string[] = [];
      let accepted: boolean | undefined;
      loop.queue(() => {
        ran.push("a");
        accepted = loop.tryQueue(() => ran.push("a's follow-up"));
      });
      loop.queue(() => ran.push("b"));
      runSyncToEnd(loop);
      assert.equal(accepted, true, "tryQueue refused with only 1 of 2 queued");
      assert.deepEqual(ran, ["a", "b", "a's follow-up"]);
    },
  );

  await t.step(
    "a chain of tasks, each queuing the next, runs to its end in a slot of any size",
    () => {
      // The nodes of the tasks a pass already ran are free before the pass
      // ends (a drain publishes its releases once, at its end): a task that
      // finds the slot full gets them published, not a QueueFullError.
      for (const nodesPerProducer of SLOT_SIZES) {
        const { loop } = setup({ capacity: { nodesPerProducer } });
        let ran = 0;
        const task = () => {
          if (++ran < 1000) loop.queue(task);
        };
        loop.queue(task);
        runSyncToEnd(loop);
        assert.equal(ran, 1000, `${nodesPerProducer} nodes`);
        assert.equal(loop.metrics().tasks.task, 1000);
      }
    },
  );

  await t.step(
    "a task fills the loop's own slot exactly as far as code outside a pass can",
    () => {
      for (const nodesPerProducer of SLOT_SIZES) {
        const { loop } = setup({ capacity: { nodesPerProducer } });
        let inside = 0;
        let error: unknown;
        loop.queue(() => {
          try {
            for (;;) {
              loop.queue(() => {});
              inside++;
            }
          } catch (e) {
            error = e;
          }
        });
        runSyncToEnd(loop);
        let outside = 0;
        while (loop.tryQueue(() => {})) outside++;
        runSyncToEnd(loop);
        assert.equal(outside, nodesPerProducer - 2, "two nodes kept back");
        assert.equal(inside, outside, `${nodesPerProducer} nodes`);
        assert.ok(error instanceof QueueFullError);
        assert.match(
          (error as Error).message,
          new RegExp(`^Cannot queue task: ${inside} tasks already queued`),
        );
      }
    },
  );

  await t.step(
    "due timers beyond the slot's free nodes stay due for the next pass, in order",
    () => {
      const { clock, loop } = setup({ capacity: { nodesPerProducer: 4 } });
      const ran: string[] = [];
      for (let i = 0; i < 7; i++) loop.setTimer(() => ran.push(`t${i}`), 10);
      loop.queue(() => ran.push("task"));
      clock.advance(10);
      runSyncToEnd(loop);
      assert.deepEqual(ran, ["task", ...range(0, 7).map((i) => `t${i}`)]);
      assert.equal(loop.metrics().timersFired, 7);
    },
  );
});

Deno.test("track(promise, callback)", async (t) => {
  await t.step(
    "delivers a result and a rejection as tasks, in FIFO order with other work",
    async () => {
      const { loop } = setup();
      const unhandled: unknown[] = [];
      const onUnhandled = (e: PromiseRejectionEvent) => {
        unhandled.push(e.reason);
        e.preventDefault();
      };
      globalThis.addEventListener("unhandledrejection", onUnhandled);
      try {
        const seen: unknown[][] = [];
        const boom = new Error("host failed");
        loop.track(
          Promise.resolve(42),
          (r) => seen.push(["ok", r.status === "fulfilled" ? r.value : r]),
        );
        loop.track(
          Promise.reject(boom),
          (r) => seen.push(["err", r.status === "rejected" ? r.reason : r]),
        );
        loop.queue(() => seen.push(["task"]));
        assert.equal(await settleOrRescue(loop, loop.run()), 0);
        assert.deepEqual(seen, [
          ["task"],
          ["ok", 42],
          ["err", boom],
        ]);
        // Give a stray rejection the turns it needs to be reported.
        await new Promise((r) => setTimeout(r, 0));
        assert.deepEqual(unhandled, []);
        assert.equal(loop.metrics().tasks.host, 2);
        assert.equal(loop.alive(), false);
      } finally {
        globalThis.removeEventListener("unhandledrejection", onUnhandled);
      }
    },
  );

  await t.step(
    "keeps async run() alive while the promise is pending",
    async () => {
      const { loop } = setup();
      const { promise, resolve } = Promise.withResolvers<string>();
      const log: string[] = [];
      loop.track(
        promise,
        (r) => log.push(`callback ${r.status === "fulfilled" ? r.value : r}`),
      );
      let settled = false;
      const drive = loop.run().then((n) => {
        log.push("run settled");
        settled = true;
        return n;
      });
      for (let i = 0; i < 10; i++) await Promise.resolve();
      assert.equal(settled, false, "run() must wait for the tracked promise");
      assert.equal(loop.alive(), true);
      resolve("done");
      assert.equal(await settleOrRescue(loop, drive), 0);
      assert.deepEqual(log, ["callback done", "run settled"]);
    },
  );

  await t.step(
    "keeps async run() alive for a pending rejection too",
    async () => {
      const { loop } = setup();
      const { promise, reject } = Promise.withResolvers<string>();
      const errors: unknown[] = [];
      loop.track(
        promise,
        (r) => errors.push(r.status === "rejected" ? r.reason : r),
      );
      const drive = loop.run();
      await Promise.resolve();
      const boom = new Error("late");
      reject(boom);
      assert.equal(await settleOrRescue(loop, drive), 0);
      assert.deepEqual(errors, [boom]);
    },
  );
});

Deno.test("metrics() snapshot", async (t) => {
  await t.step(
    "counts tasks per source, timers fired, passes and peak depth",
    () => {
      const { loop } = setup();
      const producer = Producer.attach(loop.buffer);
      loop.onEntry = () => {};
      for (let i = 0; i < 50; i++) loop.queue(() => {});
      for (let i = 0; i < 5; i++) producer.push(FIRST_USER_TAG, i, 0);
      loop.setTimer(() => {}, 10);
      loop.setTimer(() => {}, 20);
      loop.setTimer(() => {}, 15).cancel();
      const before = loop.metrics();
      assert.equal(before.passes, 0);
      assert.equal(before.pendingTimers, 2);
      assert.ok(Object.isFrozen(before));
      loop.runSync();
      const m = loop.metrics();
      assert.deepEqual(m.tasks, { task: 50, timer: 2, entry: 5, host: 0 });
      assert.equal(m.timersFired, 2);
      // 55 items: passes of 20, 20, 15; then one pass per timer.
      assert.equal(m.passes, 5);
      assert.ok(
        m.peakDepth >= 35 && m.peakDepth <= 55,
        `peakDepth ${m.peakDepth}`,
      );
      assert.equal(m.pendingTimers, 0);
      assert.equal(m.busy, 0);
      assert.equal(before.passes, 0, "a snapshot does not change afterwards");
    },
  );

  await t.step(
    "utilization stays within [0, 1] and idle time never exceeds run time",
    async () => {
      const { loop } = setup();
      const m0 = loop.metrics();
      assert.ok(m0.utilization >= 0 && m0.utilization <= 1);
      for (let i = 0; i < 100; i++) loop.queue(() => {});
      loop.setTimer(() => {}, 5);
      loop.runSync();
      const { promise, resolve } = Promise.withResolvers<void>();
      loop.track(promise, () => {});
      const drive = loop.run();
      await Promise.resolve();
      resolve();
      await settleOrRescue(loop, drive);
      const m = loop.metrics();
      assert.equal(m.tasks.host, 1);
      assert.ok(
        m.utilization >= 0 && m.utilization <= 1,
        `utilization ${m.utilization}`,
      );
      assert.ok(
        m.idleMs >= 0 && m.idleMs <= m.runMs,
        `idle ${m.idleMs} of ${m.runMs}`,
      );
      assert.ok(m.runMs >= 0);
    },
  );
});

Deno.test("await runOnce() on a virtual clock jumps to the next deadline even after a pass that kept it busy past the host-turn bound", async () => {
  const { clock, loop } = setup();
  try {
    let fired = 0;
    loop.setTimer(() => fired++, 100);
    loop.queue(() => {
      // 25 real ms of work: past the bound after which the drive yields to
      // the host, which must not take the place of the jump.
      const end = performance.now() + 25;
      while (performance.now() < end) { /* busy */ }
    });
    await settleOrRescue(loop, loop.runOnce());
    assert.equal(clock.now(), 100);
    await settleOrRescue(loop, loop.runOnce());
    assert.equal(fired, 1);
  } finally {
    loop.close();
  }
});
