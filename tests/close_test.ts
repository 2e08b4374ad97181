/**
 * `loop.close()` and the port side of the close protocol (`port.ts`), step
 * by step:
 *
 * 1. `close()` stores "closing" and queues a marker: everything queued ahead
 *    of it (tasks, messages) is delivered, in FIFO order; nothing behind it.
 * 2. A post that read "not closing" after its push was delivered: it
 *    returned.
 * 3. A post that read "closing" waits for the seal and then either returned
 *    (delivered) or threw {@linkcode LoopClosedError} carrying its value:
 *    exactly one, checked by counting under a race with three workers.
 * 4. A post on the loop's own thread after `close()` throws at once.
 *
 * Also: the drives asleep (`runSync` in a worker, the async drive here) are
 * woken by a close, timers after close, `Port.close()`, `requestClose()`
 * and idempotence. Loops on this thread use a {@linkcode VirtualClock}
 * unless real workers race them; no test asserts on wall-clock time.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  connect,
  Loop,
  LoopClosedError,
  type LoopOptions,
  type PortHandle,
  VirtualClock,
} from "../mod.ts";
import { WAIT_NR } from "../runtime/queue_layout.ts";
import {
  C_GO,
  C_RETURNED,
  C_WORDS,
  posterOf,
  type PosterReport,
  type PosterTask,
  posterValue,
  type PostMethod,
} from "./workers/close_poster.ts";
import type { LoopHostReport } from "./workers/close_loop.ts";
import { prng, TestWorker, turn, until, within } from "./worker_harness.ts";
import { runSyncToEnd as runSyncGuarded } from "./loop_harness.ts";

const POSTER = new URL("./workers/close_poster.ts", import.meta.url);
const LOOP_HOST = new URL("./workers/close_loop.ts", import.meta.url);
const SEED = 0xc105_e5ed;
/** Bound on every wait for a worker or a drive (a failure, not a timing claim). */
const WAIT_MS = 5000;

function virtualLoop(options: LoopOptions = {}): Loop {
  return new Loop({ clock: new VirtualClock(), ...options });
}

/** Asserts `e` is a LoopClosedError whose `data` is exactly `value`. */
function refusedWith(value: unknown): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof LoopClosedError, `expected LoopClosedError: ${e}`);
    assert.equal(e.data, value, "the error carries the undelivered value");
    assert.equal(e.message, "Cannot post message: loop is closed");
    return true;
  };
}

/** Whether the loop behind `buffer` is armed to sleep (or asleep). */
function armed(buffer: SharedArrayBuffer): boolean {
  return Atomics.load(new Int32Array(buffer), WAIT_NR) >= 1;
}

/** Every run method throws LoopClosedError on a sealed loop. */
async function assertRunMethodsRefuse(loop: Loop): Promise<void> {
  assert.throws(() => loop.runSync(), LoopClosedError);
  assert.throws(() => loop.runOnceSync(), LoopClosedError);
  assert.throws(() => loop.runNoWait(), LoopClosedError);
  await assert.rejects(loop.run(), LoopClosedError);
  await assert.rejects(loop.runOnce(), LoopClosedError);
}

Deno.test("close step 1: the marker splits the queue", async (t) => {
  await t.step(
    "close() outside a run delivers everything queued before it in FIFO order, then seals",
    async () => {
      const got: unknown[] = [];
      const loop = virtualLoop({ onMessage: (d) => got.push(d) });
      const port = connect(loop.port());
      port.post(1);
      port.post("two");
      loop.queue(() => got.push("task"));
      port.post({ three: [3] });
      loop.close();
      assert.deepEqual(got, [1, "two", "task", { three: [3] }]);
      assert.equal(loop.closed, true);
      assert.equal(loop.alive(), false, "an open port no longer holds it");
      assert.equal(loop.pending(), 0);
      await assertRunMethodsRefuse(loop);
    },
  );

  await t.step(
    "close() from a task: items queued ahead of the marker run, items queued after it are refused, the drive returns",
    () => {
      const seen: unknown[] = [];
      const loop = virtualLoop({ onMessage: (d) => seen.push(d) });
      const port = connect(loop.port());
      loop.queue(() => {
        seen.push("closing task");
        loop.close();
        for (
          const [what, fn] of [
            ["queue task", () => loop.queue(() => seen.push("late"))],
            ["set timer", () => loop.setTimer(() => seen.push("late"), 0)],
            ["create port", () => loop.port()],
            ["track promise", () => loop.track(Promise.resolve(), () => {})],
          ] as const
        ) {
          assert.throws(fn, (e) => {
            assert.ok(e instanceof LoopClosedError);
            assert.equal(e.message, `Cannot ${what}: loop is closed`);
            return true;
          });
        }
      });
      // Queued before the task runs, so ahead of the marker it pushes.
      loop.queue(() => seen.push("task"));
      port.post("message");
      assert.equal(runSyncGuarded(loop), 0);
      assert.deepEqual(seen, ["closing task", "task", "message"]);
      assert.equal(loop.closed, true);
    },
  );

  await t.step(
    "close() called by a task that close() itself runs is a no-op",
    () => {
      const loop = virtualLoop();
      const ran: string[] = [];
      loop.queue(() => {
        loop.close();
        ran.push("inner");
      });
      loop.queue(() => ran.push("after"));
      loop.close();
      loop.close();
      assert.deepEqual(ran, ["inner", "after"]);
      assert.equal(loop.closed, true);
      assert.equal(loop.pending(), 0);
    },
  );
});

Deno.test("close and timers", async (t) => {
  await t.step(
    "a timer already queued as due when close() runs does not fire, pending timers and intervals are cancelled, the clock is not advanced",
    async () => {
      const clock = new VirtualClock();
      const loop = new Loop({ clock, maxEvents: 1 });
      const fired: string[] = [];
      loop.setTimer(() => fired.push("interval"), 5, 5);
      const later = loop.setTimer(() => fired.push("later"), 10);
      loop.queue(() => fired.push("task"));
      loop.queue(() => loop.close());
      // Due now: the first pass queues it behind the two tasks; with one task
      // per pass the closing task runs before it, so it sits ahead of the
      // marker when the loop is closed.
      loop.setTimer(() => fired.push("due"), 0);
      assert.equal(runSyncGuarded(loop), 0);
      assert.deepEqual(fired, ["task"]);
      assert.equal(
        clock.now(),
        0,
        "the loop did not jump to a cancelled deadline",
      );
      assert.equal(loop.metrics().pendingTimers, 0);
      assert.equal(loop.metrics().timersFired, 0);
      later.cancel(); // harmless after close
      later.unref();
      assert.throws(
        () => later.refresh(),
        (e: unknown) =>
          e instanceof LoopClosedError &&
          e.message === "Cannot refresh timer: loop is closed",
      );
      assert.equal(loop.metrics().pendingTimers, 0, "refresh revived nothing");
      assert.equal(loop.alive(), false);
      await assertRunMethodsRefuse(loop);
    },
  );

  await t.step(
    "an interval whose callback closes the loop fires no more",
    () => {
      const clock = new VirtualClock();
      const loop = new Loop({ clock });
      let ticks = 0;
      loop.setTimer(
        () => {
          if (++ticks === 3) loop.close();
        },
        5,
        5,
      );
      assert.equal(runSyncGuarded(loop), 0);
      assert.equal(ticks, 3);
      assert.equal(clock.now(), 15);
      assert.equal(loop.metrics().pendingTimers, 0);
    },
  );
});

Deno.test("close step 4: posts on the loop's own thread", async (t) => {
  await t.step(
    "after close(), tryPost, post and postAsync throw LoopClosedError carrying the value, during the closing pass and after the seal; none is delivered",
    async () => {
      const got: unknown[] = [];
      const loop = virtualLoop({ onMessage: (d) => got.push(d) });
      const port = connect(loop.port());
      const obj = { during: true };
      let during: Promise<void> | undefined;
      loop.queue(() => {
        loop.close();
        assert.throws(() => port.tryPost(obj), refusedWith(obj));
        assert.throws(() => port.post(7), refusedWith(7));
        during = port.postAsync("async during");
      });
      port.post("before"); // ahead of the marker the task pushes
      assert.equal(runSyncGuarded(loop), 0);
      await assert.rejects(during!, refusedWith("async during"));
      const bytes = new Uint8Array([1, 2, 3]);
      assert.throws(() => port.tryPost(bytes), refusedWith(bytes));
      assert.throws(() => port.post(-0.5), refusedWith(-0.5));
      const late = { late: 1 };
      await assert.rejects(port.postAsync(late), refusedWith(late));
      assert.deepEqual(got, ["before"]);
    },
  );

  await t.step(
    "after close(), tryPost on a full port throws LoopClosedError rather than returning false",
    () => {
      const got: unknown[] = [];
      const loop = virtualLoop({
        onMessage: (d) => got.push(d),
        capacity: { nodesPerProducer: 4 },
      });
      const port = connect(loop.port());
      loop.queue(() => {
        loop.close();
        assert.throws(() => port.tryPost(5), refusedWith(5));
        assert.throws(() => port.post(6), refusedWith(6));
      });
      for (let i = 1; i <= 4; i++) port.post(i);
      assert.equal(port.tryPost(0), false, "the port is full");
      assert.equal(runSyncGuarded(loop), 0);
      assert.deepEqual(got, [1, 2, 3, 4]);
    },
  );
});

Deno.test("Port.close() and requestClose()", async (t) => {
  await t.step(
    "Port.close() delivers the port's earlier messages, then runs onPortClosed, and frees the slot; the drive ends; later posts throw LoopClosedError carrying the value",
    async () => {
      const order: unknown[] = [];
      const loop = virtualLoop({ onMessage: (d) => order.push(d) });
      const handle = loop.port();
      const port = connect(handle);
      loop.onPortClosed(handle.slot, () => order.push("closed"));
      port.post(1);
      port.post(2);
      port.close();
      port.close(); // idempotent
      assert.equal(await within(loop.run(), WAIT_MS, "run() to end"), 0);
      assert.deepEqual(order, [1, 2, "closed"]);
      assert.equal(
        loop.closed,
        false,
        "closing a port does not close the loop",
      );
      assert.throws(() => port.post(3), (e) => {
        assert.ok(e instanceof LoopClosedError);
        assert.equal(e.data, 3, "the error carries the undelivered value");
        return true;
      });
      assert.throws(() => port.tryPost("x"), LoopClosedError);
      await assert.rejects(port.postAsync("y"), LoopClosedError);
      assert.throws(() => port.requestClose(), LoopClosedError);
      assert.equal(loop.port().slot, handle.slot, "the slot is free again");
    },
  );

  await t.step(
    "a slot given back by Port.close() and reserved again before the loop saw that close keeps the new port's close and callback its own",
    () => {
      const got: unknown[] = [];
      const closed: string[] = [];
      const loop = virtualLoop({ onMessage: (d) => got.push(d) });
      const ha = loop.port();
      const a = connect(ha);
      loop.onPortClosed(ha.slot, () => closed.push("a"));
      a.post("a1");
      a.close(); // its close is still queued: the loop has not run
      const hb = loop.port();
      const b = connect(hb);
      loop.onPortClosed(hb.slot, () => closed.push("b"));
      b.post("b1");
      while (loop.pending() > 0) loop.runNoWait();
      assert.deepEqual(got, ["a1", "b1"]);
      assert.deepEqual(closed, ["a"], "only a's callback ran");
      assert.equal(loop.alive(), true, "b's open port holds the loop");
      b.close();
      assert.equal(runSyncGuarded(loop), 0);
      assert.deepEqual(closed, ["a", "b"]);
      assert.equal(loop.alive(), false);
    },
  );

  await t.step(
    "requestClose() closes the loop in FIFO order: posts made before the loop handles it are delivered, later ones throw",
    () => {
      const got: unknown[] = [];
      const loop = virtualLoop({ onMessage: (d) => got.push(d) });
      const port = connect(loop.port());
      port.post(1);
      port.requestClose();
      port.post(2); // behind the request, ahead of the marker it leads to
      assert.equal(loop.closed, false, "the request is a queued item");
      assert.equal(runSyncGuarded(loop), 0);
      assert.equal(loop.closed, true);
      assert.deepEqual(got, [1, 2]);
      assert.throws(() => port.post(3), refusedWith(3));
      port.requestClose(); // the loop is closed already: nothing to do
      port.close();
      port.close();
    },
  );
});

Deno.test("close wakes a sleeping loop", async (t) => {
  await t.step(
    "close() from a host callback wakes the async drive asleep in Atomics.waitAsync; it delivers what was queued and returns",
    async () => {
      const got: unknown[] = [];
      const loop = virtualLoop({
        onMessage: (d) => got.push(d),
        spinMicros: 0,
      });
      const port = connect(loop.port()); // holds the loop alive, no timers
      port.post("queued");
      const drive = loop.run();
      await until(
        () => got.length === 1 && armed(loop.buffer),
        WAIT_MS,
        () => "the async drive to deliver and go to sleep",
      );
      loop.close(); // from a host timer callback, outside any pass
      assert.equal(
        await within(drive, WAIT_MS, "the async drive to return after close()"),
        0,
      );
      assert.deepEqual(got, ["queued"]);
      assert.equal(loop.closed, true);
      const m = loop.metrics();
      assert.equal(m.wakes, 1, "the sleep ended by a wake, not its timeout");
      assert.equal(m.stalls, 0);
      assert.throws(() => port.post("late"), refusedWith("late"));
    },
  );

  await t.step(
    "requestClose() from another thread wakes a loop asleep in runSync in a worker; earlier posts are delivered, later ones throw on the posting thread",
    async () => {
      const w = new TestWorker<
        { kind: "port"; handle: PortHandle } | LoopHostReport
      >(LOOP_HOST, {});
      try {
        const m = await w.next(WAIT_MS, "the loop worker's port");
        assert.equal(m.kind, "port");
        const handle = (m as { handle: PortHandle }).handle;
        const port = connect(handle);
        await until(
          () => armed(handle.buffer),
          WAIT_MS,
          () => "the worker's loop to go to sleep",
        );
        port.post("a");
        await until(
          () => armed(handle.buffer),
          WAIT_MS,
          () => "the worker's loop to deliver and sleep again",
        );
        port.post({ b: 2 });
        await until(
          () => armed(handle.buffer),
          WAIT_MS,
          () => "the worker's loop to sleep a third time",
        );
        port.requestClose();
        const r = await w.next(WAIT_MS, "runSync() to return after the close");
        assert.equal(r.kind, "done");
        const report = r as LoopHostReport;
        assert.deepEqual(report.got, ["a", { b: 2 }]);
        assert.equal(report.closed, true);
        assert.equal(report.left, 0);
        assert.ok(
          report.wakes >= 3,
          `woken by two posts and the request, got ${report.wakes} wakes`,
        );
        assert.throws(() => port.post("late"), refusedWith("late"));
        const late = { late: true };
        await assert.rejects(port.postAsync(late), refusedWith(late));
        port.close();
      } finally {
        w.terminate();
      }
    },
  );
});

/** Starts a poster worker on `loop` and waits until it connected. */
async function startPoster(
  loop: Loop,
  ctrl: Int32Array,
  task: Omit<PosterTask, "handle" | "ctrl">,
): Promise<{ w: TestWorker<PosterReport>; slot: number }> {
  const handle = loop.port();
  const w = new TestWorker<PosterReport | { kind: "ready" }>(POSTER, {
    ...task,
    handle,
    ctrl: ctrl.buffer,
  });
  const m = await w.next(WAIT_MS, `poster ${task.id} to connect`);
  assert.equal(m.kind, "ready");
  return { w: w as TestWorker<PosterReport>, slot: handle.slot };
}

function go(ctrl: Int32Array): void {
  Atomics.store(ctrl, C_GO, 1);
  Atomics.notify(ctrl, C_GO);
}

Deno.test("close steps 2-3: posts from workers", async (t) => {
  await t.step(
    "posts from a worker after the loop closed throw LoopClosedError carrying the value: tryPost, post, postAsync",
    async () => {
      const got: unknown[] = [];
      const loop = virtualLoop({ onMessage: (d) => got.push(d) });
      const ctrl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
      const { w } = await startPoster(loop, ctrl, {
        mode: "after-seal",
        id: 0,
        method: "post",
        wake: "lazy",
        fill: 0,
      });
      try {
        loop.close();
        go(ctrl);
        const r = await w.next(WAIT_MS, "the poster's report");
        assert.equal(r.returned, 0);
        assert.deepEqual(
          r.refused.map((x) => [x.method, x.name, x.message, x.sameData]),
          (["tryPost", "post", "postAsync"] as const).map((m) => [
            m,
            "LoopClosedError",
            "Cannot post message: loop is closed",
            true,
          ]),
        );
        assert.deepEqual(got, []);
      } finally {
        w.terminate();
      }
    },
  );

  await t.step(
    "a worker's post() waiting for space on a full port is refused with LoopClosedError when the loop closes; the posts that returned are delivered",
    async () => {
      const got: unknown[] = [];
      const loop = virtualLoop({
        onMessage: (d) => got.push(d),
        capacity: { nodesPerProducer: 4 },
      });
      const ctrl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
      const { w } = await startPoster(loop, ctrl, {
        mode: "blocked",
        id: 1,
        method: "post",
        wake: "eager",
        fill: 4,
      });
      try {
        go(ctrl);
        await until(
          () => Atomics.load(ctrl, C_RETURNED + 1) === 4,
          WAIT_MS,
          () => "the poster to fill its port",
        );
        await turn(5); // most likely waiting inside post() by now
        loop.close();
        const r = await w.next(WAIT_MS, "the poster's report");
        assert.equal(r.returned, 4);
        assert.equal(r.refused.length, 1);
        assert.equal(r.refused[0].name, "LoopClosedError");
        assert.equal(r.refused[0].sameData, true);
        assert.deepEqual(
          got,
          [0, 1, 2, 3].map((i) => posterValue(1, i, "post")),
        );
      } finally {
        w.terminate();
      }
    },
  );

  const rounds = 6;
  const methods: PostMethod[] = ["post", "tryPost", "postAsync"];
  await t.step(
    `close racing posts from ${methods.length} workers (${rounds} rounds, sync and async drives): every post either returned and was delivered exactly once, or threw LoopClosedError carrying its value [seed 0x${
      SEED.toString(16)
    }]`,
    async () => {
      const random = prng(SEED);
      for (let round = 0; round < rounds; round++) {
        const at = Math.floor(random() * 400);
        const where = `round ${round}, close after ${at} messages, seed 0x${
          SEED.toString(16)
        }`;
        try {
          await closeRace(round, at, random, methods);
        } catch (e) {
          if (e instanceof Error) e.message += ` [${where}]`;
          throw e;
        }
      }
    },
  );
});

/**
 * One round: three posters race a close that comes after `at` deliveries,
 * from inside `onMessage` under `runSync` (even rounds) or from a host
 * callback while the async drive runs (odd rounds).
 */
async function closeRace(
  round: number,
  at: number,
  random: () => number,
  methods: PostMethod[],
): Promise<void> {
  const sync = round % 2 === 0;
  const delivered: number[][] = methods.map(() => []);
  let count = 0;
  let failure: unknown;
  const loop = new Loop({
    onMessage: (d, slot) => {
      try {
        const [id, seq] = posterOf(d);
        assert.equal(slot, slots[id], `poster ${id} message from slot ${slot}`);
        delivered[id].push(seq);
      } catch (e) {
        failure ??= e;
      }
      if (++count === at && sync) loop.close();
    },
  });
  const slots: number[] = [];
  const ctrl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
  const workers: TestWorker<PosterReport>[] = [];
  try {
    for (let id = 0; id < methods.length; id++) {
      const method = methods[(id + round) % methods.length];
      const { w, slot } = await startPoster(loop, ctrl, {
        mode: "race",
        id,
        method,
        wake: random() < 0.5 ? "lazy" : "eager",
        fill: 0,
      });
      workers.push(w);
      slots.push(slot);
    }
    // Fails the round, rather than hang it, if the close never comes.
    loop.setTimer(() => {
      failure ??= new Error(`Close never came: ${count} delivered`);
      loop.close();
    }, 10_000).unref();
    if (at === 0) loop.queue(() => loop.close());
    go(ctrl);
    if (sync) {
      loop.runSync();
    } else {
      const drive = loop.run();
      await until(
        () => count >= at,
        WAIT_MS,
        () => `${at} deliveries (got ${count})`,
      );
      loop.close(); // outside any pass: the drive may be asleep or running
      await within(drive, WAIT_MS, "the async drive to end after close()");
    }
    assert.equal(loop.closed, true);
    if (failure !== undefined) throw failure;
    let returned = 0;
    for (let id = 0; id < workers.length; id++) {
      const r = await workers[id].next(WAIT_MS, `poster ${id}'s report`);
      const method = methods[(id + round) % methods.length];
      const what = `poster ${id} (${method})`;
      assert.equal(r.slot, slots[id]);
      // Returned posts: delivered, once each, in order; nothing else was.
      assert.deepEqual(
        delivered[id],
        Array.from({ length: r.returned }, (_, i) => i),
        `${what}: delivered exactly the ${r.returned} posts that returned`,
      );
      // The rest: refused, each carrying its own value.
      assert.equal(r.refused.length, 2, `${what}: refusals`);
      for (const x of r.refused) {
        assert.equal(x.name, "LoopClosedError", `${what}: ${x.message}`);
        assert.equal(x.sameData, true, `${what}: error carries the value`);
      }
      returned += r.returned;
    }
    assert.equal(count, returned, "deliveries = posts that returned");
    assert.ok(count >= at, `close came after ${at} deliveries, got ${count}`);
  } finally {
    for (const w of workers) w.terminate();
  }
}
