import assert from "node:assert/strict";
import {
  abortable,
  deadline,
  DeadlineError,
  delay,
  pooledMap,
} from "../runtime/async.ts";
import { RealClock, VirtualClock } from "../runtime/clock.ts";
import { Loop } from "../runtime/loop.ts";
import { wake } from "../runtime/wake.ts";

function virtualLoop(): { loop: Loop; clock: VirtualClock } {
  const clock = new VirtualClock();
  return { loop: new Loop({ clock }), clock };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Never rejects, so a test can run the loop before looking at the result. */
function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );
}

/**
 * Turns missed wake-ups into a failure instead of a hang: every `ms` of real
 * time a host timer wakes the loop (without keeping it alive) and notes that
 * it had to.
 */
function watchdog(loop: Loop, ms: number) {
  let fired = false;
  const id = setInterval(() => {
    fired = true;
    wake(new Int32Array(loop.buffer), false);
  }, ms);
  return {
    get fired(): boolean {
      return fired;
    },
    disarm: () => clearInterval(id),
  };
}

const never = (): Promise<never> => new Promise<never>(() => {});

// ---- delay ----------------------------------------------------------------

Deno.test("delay resolves in deadline order, ties in call order, at its timer's time", async () => {
  const { loop, clock } = virtualLoop();
  const seen: string[] = [];
  for (
    const [name, ms] of [["a", 30], ["b", 10], ["c", 0], ["d", 10]] as const
  ) {
    delay(loop, ms).then(() => seen.push(`${name}@${loop.now}`));
  }
  assert.equal(loop.metrics().pendingTimers, 4);
  await loop.run();
  assert.deepEqual(seen, ["c@0", "b@10", "d@10", "a@30"]);
  assert.equal(clock.now(), 30);
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("delay keeps run() alive until its timer fires, then run() ends", async () => {
  const { loop } = virtualLoop();
  let done = false;
  delay(loop, 5_000).then(() => done = true);
  assert.equal(loop.alive(), true);
  await loop.run();
  assert.equal(done, true);
  assert.equal(loop.alive(), false);
});

Deno.test("delay with an already aborted signal rejects with its reason and sets no timer", async () => {
  const { loop } = virtualLoop();
  const reason = new Error("early");
  const r = await settle(
    delay(loop, 10, { signal: AbortSignal.abort(reason) }),
  );
  assert.deepEqual(r, { ok: false, error: reason });
  assert.equal(loop.metrics().pendingTimers, 0);
  assert.equal(loop.alive(), false);
});

Deno.test("aborting a delay from a loop task cancels its timer, so run() ends at the abort", async () => {
  const { loop, clock } = virtualLoop();
  const c = new AbortController();
  const r = settle(delay(loop, 100, { signal: c.signal }));
  loop.setTimer(() => c.abort("stop"), 10);
  await loop.run();
  assert.deepEqual(await r, { ok: false, error: "stop" });
  assert.equal(clock.now(), 10);
  assert.equal(loop.metrics().timersFired, 1);
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("aborting without a reason rejects with an AbortError", async () => {
  const { loop } = virtualLoop();
  const c = new AbortController();
  const r = settle(delay(loop, 100, { signal: c.signal }));
  c.abort();
  const got = await r;
  assert.equal(got.ok, false);
  assert.equal((got as { error: DOMException }).error.name, "AbortError");
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("aborting after the delay resolved changes nothing", async () => {
  const { loop } = virtualLoop();
  const c = new AbortController();
  const p = delay(loop, 10, { signal: c.signal });
  await loop.run();
  await p;
  c.abort("late"); // no rejection, unhandled or otherwise
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("delay validates at the call, with the loop's delay rules", () => {
  const { loop } = virtualLoop();
  for (const ms of [-1, NaN, Infinity]) {
    assert.throws(() => delay(loop, ms), RangeError);
  }
  assert.throws(() => delay(loop, "5" as unknown as number), TypeError);
  assert.throws(() => delay({} as Loop, 5), TypeError);
  assert.throws(
    () => delay(loop, 5, { signal: {} as AbortSignal }),
    TypeError,
  );
  assert.throws(
    () => delay(loop, -1),
    { message: "Cannot start delay: ms must be a finite number >= 0, got -1" },
  );
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("delay works with the real clock and the async drive", async () => {
  const loop = new Loop({ clock: new RealClock() });
  const order: number[] = [];
  delay(loop, 2).then(() => order.push(2));
  delay(loop, 1).then(() => order.push(1));
  await loop.run();
  assert.deepEqual(order, [1, 2]);
});

Deno.test("a delay started from a promise reaction wakes a sleeping async drive", async () => {
  // The loop sleeps toward `far`; the second delay is set from a reaction.
  // Without the wake it would fire only when `far` does, in the same pass.
  const loop = new Loop({ clock: new RealClock() });
  const far = new AbortController();
  const farDelay = settle(delay(loop, 2_000, { signal: far.signal }));
  delay(loop, 1).then(() => delay(loop, 1)).then(() => far.abort());
  await loop.run();
  assert.equal((await farDelay).ok, false);
  assert.equal(loop.metrics().timersFired, 2);
});

// ---- deadline ---------------------------------------------------------------

Deno.test("deadline settles with the promise and cancels its timer when the promise is first", async () => {
  const { loop } = virtualLoop();
  const value = new Promise<string>((r) => loop.setTimer(() => r("v"), 10));
  const a = settle(deadline(loop, value, 50));
  const b = settle(deadline(loop, delay(loop, 20), 50));
  await loop.run();
  assert.deepEqual(await a, { ok: true, value: "v" });
  assert.deepEqual(await b, { ok: true, value: undefined });
  assert.equal(loop.metrics().timersFired, 2); // the deadlines never fired
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("deadline rejects with the promise's error when it rejects first", async () => {
  const { loop } = virtualLoop();
  const err = new Error("boom");
  const p = new Promise((_, reject) => loop.setTimer(() => reject(err), 10));
  const r = settle(deadline(loop, p, 50));
  await loop.run();
  assert.deepEqual(await r, { ok: false, error: err });
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("deadline rejects with a DeadlineError when the promise is too slow", async () => {
  const { loop, clock } = virtualLoop();
  let lateAt = -1;
  const slow = delay(loop, 90).then(() => lateAt = loop.now);
  const r = settle(deadline(loop, slow, 50));
  await loop.run();
  const got = await r;
  assert.equal(got.ok, false);
  const e = (got as { error: unknown }).error;
  assert.ok(e instanceof DeadlineError && e instanceof Error);
  assert.equal(e.name, "DeadlineError");
  assert.equal(e.message, "Cannot complete: deadline of 50 ms exceeded");
  assert.equal(e.ms, 50);
  assert.equal(lateAt, 90); // the slow operation itself is not stopped
  assert.equal(clock.now(), 90);
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("deadline over a promise that never settles does not keep run() alive past it", async () => {
  const { loop, clock } = virtualLoop();
  const r = settle(deadline(loop, never(), 50));
  await loop.run();
  assert.ok((await r as { error: unknown }).error instanceof DeadlineError);
  assert.equal(clock.now(), 50);
});

Deno.test("a rejection after the deadline passed is handled", async () => {
  const { loop } = virtualLoop();
  const p = new Promise((_, reject) => loop.setTimer(() => reject("late"), 90));
  const r = settle(deadline(loop, p, 50));
  await loop.run(); // an unhandled "late" would fail this test
  assert.ok((await r as { error: unknown }).error instanceof DeadlineError);
});

Deno.test("deadline aborted before or during rejects with the reason and leaves no timer", async () => {
  const { loop, clock } = virtualLoop();
  const early = settle(
    deadline(loop, never(), 50, { signal: AbortSignal.abort("early") }),
  );
  assert.equal(loop.metrics().pendingTimers, 0);
  const c = new AbortController();
  const during = settle(deadline(loop, never(), 50, { signal: c.signal }));
  loop.setTimer(() => c.abort("during"), 10);
  await loop.run();
  assert.deepEqual(await early, { ok: false, error: "early" });
  assert.deepEqual(await during, { ok: false, error: "during" });
  assert.equal(clock.now(), 10);
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("deadline validates at the call", () => {
  const { loop } = virtualLoop();
  const p = Promise.resolve(1);
  assert.throws(() => deadline(loop, p, -1), RangeError);
  assert.throws(() => deadline(loop, p, NaN), RangeError);
  assert.throws(() => deadline(loop, p, null as unknown as number), TypeError);
  assert.throws(
    () => deadline(loop, 1 as unknown as Promise<number>, 5),
    { name: "TypeError", message: /^Cannot set deadline: promise must be/ },
  );
  assert.throws(() => deadline(null as unknown as Loop, p, 5), TypeError);
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("a deadline settled by a host promise wakes a sleeping run() at once", async () => {
  // The drive sleeps toward the 2 s deadline; the host timer settles the
  // promise. The sleep must end by a wake, not by running out.
  const loop = new Loop({ clock: new RealClock() });
  const host = new Promise((r) => setTimeout(() => r("host"), 1));
  const r = deadline(loop, host, 2_000);
  await loop.run();
  assert.equal(await r, "host");
  assert.equal(loop.metrics().wakes, 1);
  assert.equal(loop.metrics().timersFired, 0);
});

// ---- abortable --------------------------------------------------------------

Deno.test("abortable settles like the promise unless aborted first", async () => {
  const c = new AbortController();
  assert.equal(await abortable(Promise.resolve(1), c.signal), 1);
  await assert.rejects(abortable(Promise.reject(new Error("x")), c.signal), {
    message: "x",
  });
  const pending = settle(abortable(never(), c.signal));
  c.abort("stop");
  assert.deepEqual(await pending, { ok: false, error: "stop" });
  const early = settle(abortable(Promise.reject("dropped"), c.signal));
  assert.deepEqual(await early, { ok: false, error: "stop" });
});

Deno.test("abortable iterable rejects a pending next() on abort and closes the source", async () => {
  let closed = false;
  const source: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => {
      let i = 0;
      return {
        next: () =>
          i < 2 ? Promise.resolve({ value: i++, done: false }) : never(),
        return: () => {
          closed = true;
          return Promise.resolve({ value: undefined, done: true });
        },
      };
    },
  };
  const c = new AbortController();
  const seen: number[] = [];
  const run = settle((async () => {
    for await (const v of abortable(source, c.signal)) seen.push(v);
  })());
  await delayHost(); // the source is now stuck in next()
  c.abort("stop");
  assert.deepEqual(await run, { ok: false, error: "stop" });
  assert.deepEqual(seen, [0, 1]);
  assert.equal(closed, true);
});

Deno.test("abortable iterable passes through the source's end, error and a break", async () => {
  const log: string[] = [];
  async function* gen(fail: boolean) {
    try {
      yield 1;
      yield 2;
      if (fail) throw new Error("source");
    } finally {
      log.push("finally");
    }
  }
  const signal = new AbortController().signal;
  assert.deepEqual(await Array.fromAsync(abortable(gen(false), signal)), [
    1,
    2,
  ]);
  await assert.rejects(Array.fromAsync(abortable(gen(true), signal)), {
    message: "source",
  });
  for await (const v of abortable(gen(false), signal)) if (v === 1) break;
  assert.deepEqual(log, ["finally", "finally", "finally"]);
  const aborted = abortable(gen(false), AbortSignal.abort("early"));
  await assert.rejects(aborted.next(), (e) => e === "early");
});

Deno.test("abortable validates its arguments", () => {
  const signal = new AbortController().signal;
  assert.throws(() => abortable(1 as unknown as Promise<number>, signal), {
    name: "TypeError",
    message:
      "Cannot make abortable: expected a thenable or an async iterable, got number",
  });
  assert.throws(
    () => abortable(Promise.resolve(1), {} as AbortSignal),
    TypeError,
  );
});

/** One host macrotask turn, for tests that do not involve a loop. */
function delayHost(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

// ---- pooledMap --------------------------------------------------------------

Deno.test("pooledMap keeps at most limit calls in flight and yields in input order", async () => {
  for (const limit of [1, 2, 3, 10]) {
    const { loop } = virtualLoop();
    const input = [50, 10, 30, 20, 40, 10, 0];
    let inFlight = 0;
    let max = 0;
    const results = Array.fromAsync(
      pooledMap(loop, limit, input, async (ms) => {
        max = Math.max(max, ++inFlight);
        try {
          await delay(loop, ms);
          return `r${ms}`;
        } finally {
          inFlight--;
        }
      }),
    );
    await loop.run();
    assert.deepEqual(await results, input.map((ms) => `r${ms}`));
    assert.equal(max, Math.min(limit, input.length), `limit ${limit}`);
    assert.equal(loop.metrics().pendingTimers, 0);
  }
});

Deno.test("pooledMap takes plain values and an empty input", async () => {
  const { loop } = virtualLoop();
  const doubled = Array.fromAsync(pooledMap(loop, 2, [1, 2, 3], (x) => x * 2));
  const empty = Array.fromAsync(pooledMap(loop, 2, [], (x) => x));
  await loop.run();
  assert.deepEqual(await doubled, [2, 4, 6]);
  assert.deepEqual(await empty, []);
});

Deno.test("pooledMap pulls an async source only as calls can start", async () => {
  const { loop } = virtualLoop();
  let pulled = 0;
  let settled = 0;
  let maxAhead = 0;
  async function* source() {
    for (let i = 0; i < 6; i++) {
      pulled++;
      maxAhead = Math.max(maxAhead, pulled - settled);
      yield i;
    }
  }
  const results = Array.fromAsync(
    pooledMap(loop, 2, source(), async (i) => {
      await delay(loop, 10 * (6 - i));
      settled++;
      return i;
    }),
  );
  await loop.run();
  assert.deepEqual(await results, [0, 1, 2, 3, 4, 5]);
  assert.equal(maxAhead, 2);
});

Deno.test("pooledMap keeps run() alive between the awaits inside a call", async () => {
  // Between the two delays nothing but the tracked call holds the loop, so
  // the drive sleeps with no timeout; the second delay must wake it.
  const { loop } = virtualLoop();
  const dog = watchdog(loop, 500);
  const results = Array.fromAsync(
    pooledMap(loop, 2, ["a", "b", "c"], async (x) => {
      await delay(loop, 10);
      await null;
      await Promise.resolve();
      await delay(loop, 10); // set well after the first timer's pass
      return x;
    }),
  );
  await loop.run();
  dog.disarm();
  assert.equal(dog.fired, false);
  assert.deepEqual(await results, ["a", "b", "c"]);
  assert.equal(loop.metrics().pendingTimers, 0);
});

/** Consumes `it`, noting results, the error and the loop time it arrived. */
function consume<R>(loop: Loop, it: AsyncIterable<R>) {
  const out = { got: [] as R[], error: undefined as unknown, errorAt: -1 };
  const done = (async () => {
    try {
      for await (const r of it) out.got.push(r);
    } catch (e) {
      out.error = e;
      out.errorAt = loop.now;
    }
  })();
  return { out, done };
}

Deno.test("pooledMap: the first failure in input order rejects once calls in flight settle", async () => {
  const { loop } = virtualLoop();
  const calls: number[] = [];
  let closed = false;
  function* source() {
    try {
      yield* [30, -10, 50, 20, 40];
    } finally {
      closed = true;
    }
  }
  const { out, done } = consume(
    loop,
    pooledMap(loop, 3, source(), async (ms) => {
      calls.push(ms);
      await delay(loop, Math.abs(ms));
      if (ms < 0) throw new Error(`fail ${ms}`);
      return ms;
    }),
  );
  await loop.run();
  await done;
  assert.deepEqual(out.got, [30]); // results before the failure still come
  assert.equal((out.error as Error).message, "fail -10");
  assert.equal(out.errorAt, 50); // after the call for 50 settled
  assert.deepEqual(calls, [30, -10, 50]); // no call started after the failure
  assert.equal(closed, true);
  assert.equal(loop.metrics().pendingTimers, 0);
});

Deno.test("pooledMap reports the earliest failing input, not the earliest failure in time", async () => {
  const { loop } = virtualLoop();
  const it = pooledMap(loop, 2, [30, 10], async (ms) => {
    await delay(loop, ms);
    throw new Error(`fail ${ms}`);
  });
  const { out, done } = consume(loop, it);
  await loop.run();
  await done;
  assert.equal((out.error as Error).message, "fail 30");
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});

Deno.test("pooledMap surfaces a throwing fn, a source error and a rejection with undefined", async () => {
  const { loop } = virtualLoop();
  const syncThrow = consume(
    loop,
    pooledMap(loop, 2, [1, 2, 3], (x) => {
      if (x === 2) throw new Error("sync");
      return x;
    }),
  );
  function* failing() {
    yield 1;
    yield 2;
    throw new Error("source");
  }
  const sourceError = consume(loop, pooledMap(loop, 2, failing(), (x) => x));
  const undef = consume(
    loop,
    pooledMap(loop, 1, [1, 2], (x) => x === 2 ? Promise.reject() : x),
  );
  await loop.run();
  await Promise.all([syncThrow.done, sourceError.done, undef.done]);
  assert.deepEqual(syncThrow.out.got, [1]);
  assert.equal((syncThrow.out.error as Error).message, "sync");
  assert.deepEqual(sourceError.out.got, [1, 2]);
  assert.equal((sourceError.out.error as Error).message, "source");
  assert.deepEqual(undef.out.got, [1]);
  assert.equal(undef.out.error, undefined);
  assert.equal(undef.out.errorAt, loop.now); // it did reject
});

Deno.test("breaking out of pooledMap stops new calls and waits for calls in flight", async () => {
  const { loop } = virtualLoop();
  let started = 0;
  let inFlight = 0;
  let closed = false;
  function* source() {
    try {
      for (let i = 0; i < 100; i++) yield i;
    } finally {
      closed = true;
    }
  }
  const pool = pooledMap(loop, 3, source(), async (i) => {
    started++;
    inFlight++;
    await delay(loop, 10 * (i + 1));
    inFlight--;
    return i;
  });
  let inFlightAfterBreak = -1;
  const done = (async () => {
    for await (const i of pool) if (i === 0) break;
    inFlightAfterBreak = inFlight;
  })();
  await loop.run();
  await done;
  assert.equal(inFlightAfterBreak, 0);
  // The pool does not wait for its consumer: the task that settled item 0
  // started item 3 before the consumer saw item 0 and broke out.
  assert.equal(started, 4);
  assert.equal(closed, true);
  assert.deepEqual(await pool.next(), { done: true, value: undefined });
});

Deno.test("pooledMap answers concurrent next() calls in order", async () => {
  const { loop } = virtualLoop();
  const pool = pooledMap(loop, 2, [20, 10, 30], async (ms) => {
    await delay(loop, ms);
    return ms;
  });
  const all = Promise.all([pool.next(), pool.next(), pool.next(), pool.next()]);
  await loop.run();
  assert.deepEqual((await all).map((r) => r.done ? "done" : r.value), [
    20,
    10,
    30,
    "done",
  ]);
});

Deno.test("pooledMap validates at the call", () => {
  const { loop } = virtualLoop();
  const id = (x: number) => x;
  for (const limit of [0, -1]) {
    assert.throws(() => pooledMap(loop, limit, [1], id), RangeError);
  }
  for (const limit of [1.5, NaN, Infinity, "2"]) {
    assert.throws(
      () => pooledMap(loop, limit as number, [1], id),
      TypeError,
    );
  }
  assert.throws(
    () => pooledMap(loop, 0, [1], id),
    { message: "Cannot start pooled map: limit must be >= 1, got 0" },
  );
  assert.throws(
    () => pooledMap(loop, 1, 5 as unknown as number[], id),
    TypeError,
  );
  assert.throws(
    () => pooledMap(loop, 1, [1], "id" as unknown as typeof id),
    TypeError,
  );
  assert.throws(() => pooledMap({} as Loop, 1, [1], id), TypeError);
  assert.equal(loop.alive(), false); // nothing was started
});

// ---- loop.ts interplay: the async drive settles reactions before a jump ---
//
// Under a VirtualClock the async drive lets pending promise reactions run (a
// macrotask turn) before it jumps to the next deadline, and before it decides
// nothing is left. These cases failed when it jumped in the same pass.

Deno.test({
  name:
    "a delay started in a fired delay's continuation counts from the fire time",
  fn: async () => {
    const { loop, clock } = virtualLoop();
    delay(loop, 15); // an unrelated later timer
    let at = -1;
    (async () => {
      await delay(loop, 10);
      await delay(loop, 10);
      at = clock.now();
    })();
    await loop.run();
    assert.equal(at, 20); // got 25: the second delay started at 15
  },
});

Deno.test({
  name:
    "a promise that settles through a then-chain before the deadline beats it",
  fn: async () => {
    const { loop } = virtualLoop();
    const r = settle(deadline(loop, delay(loop, 10).then(() => "v"), 50));
    await loop.run();
    assert.deepEqual(await r, { ok: true, value: "v" }); // got DeadlineError
  },
});

Deno.test({
  name:
    "pooledMap starts the next call when a call settles, not at the next timer",
  fn: async () => {
    const { loop } = virtualLoop();
    const log: string[] = [];
    const results = Array.fromAsync(
      pooledMap(loop, 2, [50, 10, 10, 10], async (ms) => {
        log.push(`start ${ms}@${loop.now}`);
        await delay(loop, ms);
        return ms;
      }),
    );
    await loop.run();
    await results;
    assert.deepEqual(log, [
      "start 50@0",
      "start 10@0",
      "start 10@10",
      "start 10@20",
    ]); // got "start 10@50" twice: the clock had jumped to 50
  },
});
