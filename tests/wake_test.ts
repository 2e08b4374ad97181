/**
 * The lazy, counted wake protocol (`runtime/wake.ts`) against a real queue.
 *
 * Single-thread cases drive the arming deterministically with
 * `Waiter.sleepAsync`: it arms synchronously (W1-W3) before its first await,
 * so the test can push and call `wake()` while the waiter is armed and then
 * see how the sleep ended. Cases with the blocking `Waiter.sleep` use a
 * producer worker (`workers/wake_producer.ts`), including the no-lost-wake-up
 * rounds, where the worker pushes exactly while the main thread arms.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  EMPTY,
  MpscQueue,
  Producer,
  PUSH_FULL,
} from "../runtime/mpsc_queue.ts";
import { ADDED, WAIT_NR, WAKE_IDLE } from "../runtime/queue_layout.ts";
import { type SleepResult, Waiter, wake } from "../runtime/wake.ts";
import { TestWorker } from "./worker_harness.ts";
import {
  type ProducerReport,
  R_MODE,
  R_PUSHED,
  R_ROUND,
  R_WORDS,
  type RoundsTask,
  type WhenArmedTask,
} from "./workers/wake_producer.ts";

// ---------------------------------------------------------------------------
// Helpers

function setup(nodesPerProducer = 64) {
  const q = MpscQueue.create({
    producers: 2,
    nodesPerProducer,
    bytesPerProducer: 0,
  });
  const w = new Int32Array(q.buffer);
  return { q, w, waiter: new Waiter(q.buffer) };
}

function push(p: Producer, a: number): void {
  assert.notEqual(p.push(1, a, 0), PUSH_FULL, "test queue is never full");
}

function drainAll(q: MpscQueue): number {
  const n = q.drain(Infinity, () => {});
  assert.equal(q.lastState, "empty");
  return n;
}

/** Resolves after `ms`, or with the promise's value if that comes first. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | "still pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<"still pending">((resolve) => {
        timer = setTimeout(() => resolve("still pending"), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Fails loudly unless the promise settles within `ms`. */
async function deadline<T>(promise: Promise<T>, ms: number, what: string) {
  const r = await within(promise, ms);
  if (r === "still pending") {
    throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
  }
  return r;
}

/** Polls (on timers) until `ready()` holds; fails after `ms`. */
async function until(ready: () => boolean, ms: number, what: string) {
  const end = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > end) {
      throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

type WorkerMessage = ProducerReport | { kind: "ready" };

/** The wake producer worker; its messages are buffered from the start. */
class ProducerWorker extends TestWorker<WorkerMessage> {
  constructor() {
    super(new URL("./workers/wake_producer.ts", import.meta.url));
  }

  post(task: WhenArmedTask | RoundsTask): void {
    this.worker.postMessage(task);
  }

  async report(ms: number): Promise<ProducerReport> {
    const m = await this.next(ms, "the producer's report");
    assert.equal(m.kind, "done");
    return m as ProducerReport;
  }
}

/** Runs `body` with a worker that already attached and said ready. */
async function withWorker(
  task: WhenArmedTask | RoundsTask,
  body: (worker: ProducerWorker) => Promise<void> | void,
): Promise<void> {
  const worker = new ProducerWorker();
  try {
    worker.post(task);
    const m = await worker.next(10_000, "the producer to attach");
    assert.equal(m.kind, "ready");
    await body(worker);
  } finally {
    worker.terminate();
  }
}

// ---------------------------------------------------------------------------
// Deterministic, single thread

Deno.test("wake with no waiter armed returns false, counts nothing, notifies nobody", () => {
  const { q, w, waiter } = setup();
  const p = Producer.attach(q.buffer);
  push(p, 0);
  assert.equal(wake(w, true), false);
  assert.equal(wake(w, false), false);
  assert.equal(Atomics.load(w, ADDED), 0);
  assert.equal(waiter.notifies(), 0);
});

Deno.test("arming on a non-empty queue returns work without sleeping and disarms", async () => {
  const { q, w, waiter } = setup();
  const p = Producer.attach(q.buffer);
  push(p, 0);
  assert.equal(waiter.sleep(4, 60_000), "work");
  assert.equal(Atomics.load(w, WAIT_NR), WAKE_IDLE);
  assert.equal(await waiter.sleepAsync(4, 60_000), "work");
  assert.equal(Atomics.load(w, WAIT_NR), WAKE_IDLE);
  assert.equal(waiter.sleeps, 0);
  assert.equal(wake(w, false), false, "nothing left to claim");
});

Deno.test("a sleep with nothing pushed ends timed-out and disarmed", async () => {
  const { w, waiter } = setup();
  assert.equal(waiter.sleep(4, 5), "timed-out");
  assert.equal(Atomics.load(w, WAIT_NR), WAKE_IDLE);
  assert.equal(await waiter.sleepAsync(4, 5), "timed-out");
  assert.equal(Atomics.load(w, WAIT_NR), WAKE_IDLE);
});

Deno.test("lazy adds notify at the k-th add of an arming and at most once per arming", async () => {
  for (const k of [1, 2, 3, 5, 8]) {
    const { q, w, waiter } = setup(256);
    const p = Producer.attach(q.buffer);
    let lazyAdds = 0;
    let claims = 0;
    let armings = 0;
    let sinceArming = 0;
    let sleeping = waiter.sleepAsync(k, 60_000);
    armings++;
    assert.equal(Atomics.load(w, WAIT_NR), k, "armed before the first await");
    for (let i = 0; i < 300; i++) {
      push(p, i);
      lazyAdds++;
      sinceArming++;
      const claimed = wake(w, true);
      assert.equal(
        claimed,
        sinceArming === k,
        `k = ${k}, add ${sinceArming} of arming ${armings}`,
      );
      if (!claimed) continue;
      claims++;
      // Adds between the claim and the waiter's next arming find no one to
      // wake, lazy or eager.
      for (let extra = 0; extra < i % 3; extra++) {
        push(p, -1);
        lazyAdds++;
        assert.equal(wake(w, extra % 2 === 0), false, "second notify");
      }
      assert.equal(await deadline(sleeping, 5000, "the wake"), "woken");
      drainAll(q);
      sleeping = waiter.sleepAsync(k, 60_000);
      armings++;
      sinceArming = 0;
    }
    assert.ok(claims <= Math.ceil(lazyAdds / k), `k = ${k}`);
    assert.equal(claims, Math.floor(300 / k));
    assert.equal(waiter.notifies(), claims);
    assert.equal(waiter.armings, armings);
    // Lazy adds short of the threshold leave the waiter asleep.
    assert.equal(await within(sleeping, 20), "still pending");
    // An eager add ends the last arming.
    push(p, -2);
    assert.equal(wake(w, false), true);
    assert.equal(await deadline(sleeping, 5000, "the eager wake"), "woken");
    assert.equal(waiter.notifies(), claims + 1);
  }
});

Deno.test("an eager add wakes an armed waiter at once, whatever its threshold", async () => {
  const { q, w, waiter } = setup();
  const p = Producer.attach(q.buffer);
  for (const k of [1, 7, 1000]) {
    const sleeping = waiter.sleepAsync(k, 60_000);
    push(p, k);
    assert.equal(wake(w, false), true);
    assert.equal(wake(w, false), false, "one notify per arming");
    assert.equal(wake(w, true), false, "one notify per arming");
    assert.equal(await deadline(sleeping, 5000, "the wake"), "woken");
    drainAll(q);
  }
  assert.equal(waiter.notifies(), 3);
});

Deno.test("after min-wait the waiter re-arms with 1, so one lazy add wakes it", async () => {
  const { q, w, waiter } = setup();
  const p = Producer.attach(q.buffer);
  const sleeping = waiter.sleepAsync(4, 60_000, 20);
  assert.equal(Atomics.load(w, WAIT_NR), 4);
  await until(() => Atomics.load(w, WAIT_NR) === 1, 5000, "the re-arm");
  push(p, 0);
  assert.equal(wake(w, true), true);
  assert.equal(await deadline(sleeping, 5000, "the wake"), "woken");
  assert.equal(waiter.armings, 2);
});

Deno.test("lazy adds below the threshold end the sleep at min-wait with work", async () => {
  const { q, w, waiter } = setup();
  const p = Producer.attach(q.buffer);
  const sleeping = waiter.sleepAsync(4, 60_000, 20);
  for (let i = 0; i < 3; i++) {
    push(p, i);
    assert.equal(wake(w, true), false, `lazy add ${i + 1} of 4`);
  }
  assert.equal(await deadline(sleeping, 5000, "the min-wait"), "work");
  assert.equal(Atomics.load(w, WAIT_NR), WAKE_IDLE);
  assert.equal(waiter.notifies(), 0);
  assert.equal(drainAll(q), 3);
});

Deno.test("with min-wait and no adds, the sleep still ends timed-out", async () => {
  const { w, waiter } = setup();
  assert.equal(await waiter.sleepAsync(4, 60, 20), "timed-out");
  assert.equal(Atomics.load(w, WAIT_NR), WAKE_IDLE);
  assert.equal(waiter.sleep(4, 60, 20), "timed-out");
  assert.equal(Atomics.load(w, WAIT_NR), WAKE_IDLE);
});

Deno.test("a min-wait shorter than the timeout does not cut a k = 1 sleep short", async () => {
  const { q, w, waiter } = setup();
  const p = Producer.attach(q.buffer);
  const sleeping = waiter.sleepAsync(1, 60_000, 10);
  // The timeout is 60 s; after 300 ms the waiter must still be asleep.
  const early = await within(sleeping, 300);
  push(p, 0);
  const claimed = wake(w, false);
  const result = early === "still pending"
    ? await deadline(sleeping, 5000, "the wake")
    : early;
  assert.equal(early, "still pending", `sleep(1, 60000, 10) ended ${result}`);
  assert.equal(claimed, true);
  assert.equal(result, "woken");
});

// ---------------------------------------------------------------------------
// Blocking sleep, producer worker

const worker = (lazy: boolean[], armed: number, delayMs = 0) =>
(
  q: MpscQueue,
): WhenArmedTask => ({
  kind: "when-armed",
  buffer: q.buffer,
  armed,
  delayMs,
  lazy,
});

Deno.test("blocking sleep: an eager add from a worker wakes it", async () => {
  const { q, waiter } = setup();
  await withWorker(worker([false], 64)(q), async (producer) => {
    const r = waiter.sleep(64, 10_000);
    const report = await producer.report(10_000);
    // "work" when the push landed between arming and the re-check.
    assert.ok(r === "woken" || r === "work", r);
    if (r === "woken") assert.deepEqual(report.claims, [true]);
    assert.equal(drainAll(q), 1);
  });
});

Deno.test("blocking sleep: the third lazy add from a worker wakes k = 3", async () => {
  const { q, waiter } = setup();
  await withWorker(worker([true, true, true], 3, 20)(q), async (producer) => {
    const r = waiter.sleep(3, 10_000);
    const report = await producer.report(10_000);
    assert.ok(r === "woken" || r === "work", r);
    assert.deepEqual(
      report.claims,
      r === "woken" ? [false, false, true] : [false, false, false],
    );
    assert.equal(drainAll(q), 3);
  });
});

Deno.test("blocking sleep: after min-wait one lazy add from a worker wakes it", async () => {
  const { q, waiter } = setup();
  await withWorker(worker([true], 1)(q), async (producer) => {
    const r = waiter.sleep(4, 10_000, 20);
    const report = await producer.report(10_000);
    assert.ok(r === "woken" || r === "work", r);
    if (r === "woken") assert.deepEqual(report.claims, [true]);
    assert.equal(drainAll(q), 1);
  });
});

Deno.test("blocking sleep: a min-wait does not cut a k = 1 sleep short", async () => {
  const { q, waiter } = setup();
  await withWorker(worker([false], 1, 300)(q), async (producer) => {
    const r: SleepResult = waiter.sleep(1, 10_000, 10);
    await producer.report(10_000);
    assert.equal(r, "woken", "the eager add came 300 ms into a 10 s sleep");
    assert.equal(drainAll(q), 1);
  });
});

// ---------------------------------------------------------------------------
// No lost wake-up

/**
 * Rounds per run (the issue asks for at least 10^5). Each costs two
 * cross-thread handoffs, ~0.05 ms alone but several times more when other
 * processes share the 2 cores, hence the whole run's bound of
 * {@linkcode ROUNDS_BOUND_MS}: generous, and only there to turn a hang into a
 * failure.
 */
const ROUNDS = 100_000;
const ROUNDS_BOUND_MS = 240_000;
const ROUNDS_SEED = 0x1a2b3c4d;
/** Bound of the producer's seeded random spin before each push. */
const SPIN_MAX = 256;
/**
 * The waiter spins before arming: a center that tracks the point where the
 * producer's push and the arming cross (up after a round that slept, down
 * after a round that found work), plus seeded jitter of this size on either
 * side. Pushes thus cluster around the arming, landing before it, between
 * arming and re-check, between re-check and wait, and after the wait began,
 * whatever the machine's speed.
 */
const WAITER_JITTER = 512;

Deno.test(`no lost wake-up: ${ROUNDS} rounds of a worker pushing while the waiter arms`, async () => {
  const { q, waiter } = setup(4);
  const ctrl = new Int32Array(new SharedArrayBuffer(R_WORDS * 4));
  const task: RoundsTask = {
    kind: "rounds",
    buffer: q.buffer,
    ctrl: ctrl.buffer as SharedArrayBuffer,
    seed: ROUNDS_SEED,
    spinMax: SPIN_MAX,
  };
  await withWorker(task, async (producer) => {
    const stats = runRounds(q, waiter, ctrl);
    Atomics.store(ctrl, R_ROUND, -1);
    Atomics.notify(ctrl, R_ROUND);
    const report = await producer.report(10_000);
    assert.equal(report.pushed, ROUNDS);
    assert.ok(
      report.claimed <= waiter.armings,
      `${report.claimed} notifies for ${waiter.armings} armings`,
    );
    assert.equal(q.tryPop(), EMPTY);
    console.log(
      `${ROUNDS} rounds in ${stats.ms.toFixed(0)} ms: ` +
        `work ${stats.work}, woken ${stats.woken}, ` +
        `woken with nothing to take ${stats.stale}, busy ${stats.busy}; ` +
        `armings ${waiter.armings}, notifies ${report.claimed}; ` +
        `waiter spin center ${stats.center}`,
    );
  });
});

const backoff = new Int32Array(new SharedArrayBuffer(4));

/** Spins `n` iterations of cheap work the compiler cannot drop. */
let sink = 0;
function spin(n: number): void {
  let x = sink;
  for (let i = 0; i < n; i++) x = (Math.imul(x, 31) + i) | 0;
  sink = x;
}

/** The consumer's side of the rounds; throws on a lost wake-up. */
function runRounds(q: MpscQueue, waiter: Waiter, ctrl: Int32Array) {
  const stats = { work: 0, woken: 0, stale: 0, busy: 0, ms: 0, center: 0 };
  const start = performance.now();
  let rng = ROUNDS_SEED;
  let center = 1000;
  let taken = 0;
  const take = (e: { a: number }) => {
    taken = e.a;
  };
  for (let round = 1; round <= ROUNDS; round++) {
    rng = (Math.imul(rng, 1103515245) + 12345) | 0;
    // Mostly k = 1; sometimes a higher threshold with an eager producer.
    const k = (rng >>> 16) % 4 === 0 ? 3 : 1;
    Atomics.store(ctrl, R_MODE, k);
    Atomics.store(ctrl, R_ROUND, round);
    Atomics.notify(ctrl, R_ROUND);
    const jitter = ((rng >>> 3) & 0xffff) % (2 * WAITER_JITTER + 1);
    spin(Math.max(0, center - WAITER_JITTER + jitter));
    for (;;) {
      const r = waiter.sleep(k, 2000);
      if (r === "timed-out") {
        const pushed = Atomics.load(ctrl, R_PUSHED);
        throw new Error(
          pushed >= round
            ? `Lost wake-up in round ${round}: the item was pushed but the waiter timed out after 2000 ms (seed 0x${
              ROUNDS_SEED.toString(16)
            }, k = ${k})`
            : `Producer stalled in round ${round} (last pushed ${pushed})`,
        );
      }
      stats[r]++;
      center = Math.max(0, center + (r === "work" ? -16 : 16));
      // Take the round's item; a push seen as "work" may still be mid-push.
      for (let tries = 0;; tries++) {
        q.drain(Infinity, take);
        if (q.lastState !== "busy") break;
        stats.busy++;
        if (tries > 20_000) throw new Error(`Busy for 1 s in round ${round}`);
        if (tries > 16) Atomics.wait(backoff, 0, 0, 0.05);
      }
      if (taken === round) break;
      // Woken by the previous round's late wake: nothing to take yet.
      stats.stale++;
    }
    if ((round & 1023) === 0 && performance.now() - start > ROUNDS_BOUND_MS) {
      throw new Error(
        `No-lost-wake-up rounds exceeded ${ROUNDS_BOUND_MS} ms at round ${round}`,
      );
    }
  }
  stats.ms = performance.now() - start;
  stats.center = center;
  return stats;
}
