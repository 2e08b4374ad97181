/**
 * Seeded fault injection (worker deaths and throws are in `fault_test.ts`,
 * `close()` racing posts in `close_test.ts`): each test prints its seed in
 * its name, and the same seed replays the same faults.
 *
 * - A producer pauses inside its publish window (between the tail exchange
 *   and the link store: `workers/window_pauser.ts`) while other workers
 *   stream: nothing lost or repeated, each producer's order kept, and the
 *   watchdog names the paused producer's slot.
 * - The consumer is stopped at seeded points and restarted with a seeded
 *   run method while workers keep posting: `stop()` ends the pass after the
 *   running task, and nothing is lost or repeated across restarts.
 * - Timer callbacks cancel seeded other timers (pending, due in the same
 *   pass, already fired) and set new ones: the timers that fire, and their
 *   order, match a reference model.
 *
 * Worker tests wait with bounds that only turn a hang into a loud failure;
 * nothing asserts on wall-clock time.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Loop,
  type LoopWarning,
  spawnWorker,
  type Timer,
  VirtualClock,
} from "../mod.ts";
import type { QueueEntry } from "../runtime/mpsc_queue.ts";
import { rng } from "./rng.ts";
import { check } from "./soak/payloads.ts";
import type { SoakJob } from "./soak/soak_worker.ts";
import {
  PAUSER_DONE,
  PAUSER_ITEM,
  type PauserJob,
} from "./workers/window_pauser.ts";

const SOAK_WORKER = new URL("./soak/soak_worker.ts", import.meta.url);
const PAUSER = new URL("./workers/window_pauser.ts", import.meta.url);
const BOUND_MS = 60_000;

/** Per-producer order check for the soak workers' messages. */
class Streams {
  readonly next: number[];
  readonly done: boolean[];
  readonly #ids = new Map<number, number>();
  failure: string | undefined;

  constructor(workers: number) {
    this.next = new Array(workers).fill(0);
    this.done = new Array(workers).fill(false);
  }

  assign(slot: number, id: number): void {
    this.#ids.set(slot, id);
  }

  /** Checks one message: content, producer, sequence. */
  receive(data: unknown, slot: number): void {
    const id = this.#ids.get(slot);
    if (id === undefined) {
      this.failure ??= `message from unknown slot ${slot}`;
      return;
    }
    const end = data as { done?: number };
    if (typeof data === "object" && data !== null && "done" in end) {
      if (end.done !== id) {
        this.failure ??= `worker ${id} sent done ${end.done}`;
      }
      this.done[id] = true;
      return;
    }
    let seq: number;
    try {
      seq = check(data);
    } catch (e) {
      this.failure ??= String(e);
      return;
    }
    if (seq !== this.next[id]) {
      this.failure ??= `worker ${id}: got seq ${seq}, expected ${
        this.next[id]
      }`;
    }
    this.next[id] = seq + 1;
  }
}

/** Runs `loop` with the async drive; fails loudly if it outlives the bound. */
async function runBounded(loop: Loop, what: string): Promise<void> {
  let timedOut = false;
  const guard = setTimeout(() => {
    timedOut = true;
    loop.stop();
  }, BOUND_MS);
  try {
    await loop.run();
  } finally {
    clearTimeout(guard);
  }
  if (timedOut) throw new Error(`Timed out after ${BOUND_MS} ms: ${what}`);
}

const PAUSE_SEED = 0x9a05e;
const PAUSE_WORKERS = 3;
const PAUSE_MESSAGES = 20_000;
const PAUSER_ITEMS = 2_000;
const STALL_MS = 10;

Deno.test(
  `fault injection: a producer pausing inside its publish window while ${PAUSE_WORKERS} workers stream loses, repeats and reorders nothing, and the watchdog names its slot [seed 0x${
    PAUSE_SEED.toString(16)
  }]`,
  async () => {
    const warnings: LoopWarning[] = [];
    const loop = new Loop({
      stallMs: STALL_MS,
      onWarning: (w) => warnings.push(w),
    });
    const streams = new Streams(PAUSE_WORKERS);
    loop.onMessage = (data, slot) => streams.receive(data, slot);
    let pauserNext = 0;
    let pauses = -1;
    let pauserFailure: string | undefined;
    const handle = loop.port();
    loop.onEntry = (e: QueueEntry) => {
      if (e.producer !== handle.slot) {
        pauserFailure ??= `raw item from slot ${e.producer}`;
      } else if (e.tag === PAUSER_ITEM) {
        if (e.a !== pauserNext) {
          pauserFailure ??= `pauser: got ${e.a}, expected ${pauserNext}`;
        }
        pauserNext = e.a + 1;
      } else if (e.tag === PAUSER_DONE) {
        pauses = e.a;
        loop.producerDied(handle.slot); // not a port: it never closes
      }
    };
    const pauser = new Worker(PAUSER, { type: "module" });
    const workers = [];
    try {
      const job: PauserJob = {
        buffer: handle.buffer,
        slot: handle.slot,
        count: PAUSER_ITEMS,
        seed: PAUSE_SEED,
        pauseChance: 0.02,
        maxPauseMs: 4 * STALL_MS,
      };
      pauser.postMessage(job);
      for (let id = 0; id < PAUSE_WORKERS; id++) {
        const data: SoakJob = {
          id,
          count: PAUSE_MESSAGES,
          seed: PAUSE_SEED,
        };
        const w = spawnWorker(loop, SOAK_WORKER, { data });
        streams.assign(w.slot, id);
        workers.push(w);
      }
      await runBounded(loop, "the streams to end");
    } finally {
      pauser.terminate();
      for (const w of workers) w.terminate();
    }
    assert.equal(streams.failure, undefined);
    assert.equal(pauserFailure, undefined);
    assert.deepEqual(
      streams.next,
      new Array(PAUSE_WORKERS).fill(PAUSE_MESSAGES),
    );
    assert.deepEqual(streams.done, new Array(PAUSE_WORKERS).fill(true));
    assert.equal(pauserNext, PAUSER_ITEMS);
    assert.ok(pauses > 0, "the seed made no pause");
    // -1: a producer preempted right after its exchange, before it
    // recorded its push (plain writes; see MpscQueue.stuckSlot).
    const slots = new Set([-1, handle.slot, ...workers.map((w) => w.slot)]);
    for (const w of warnings) {
      assert.ok(w.stalledMs >= STALL_MS, w.message);
      if (w.kind === "stuck-producer") assert.ok(slots.has(w.slot), w.message);
    }
    assert.ok(
      warnings.some((w) =>
        w.kind === "stuck-producer" && w.slot === handle.slot
      ),
      `no stuck-producer warning named the pauser's slot ${handle.slot} (${pauses} pauses, ${warnings.length} warnings)`,
    );
  },
);

const RESTART_SEED = 0x5709;
const RESTART_WORKERS = 3;
const RESTART_MESSAGES = 10_000;
const STOPS = 40;

Deno.test(
  `fault injection: the consumer stopped at ${STOPS} seeded points and restarted with seeded run methods while ${RESTART_WORKERS} workers post: each stop ends the pass after its task, nothing lost or repeated [seed 0x${
    RESTART_SEED.toString(16)
  }]`,
  async () => {
    const random = rng(RESTART_SEED);
    const total = RESTART_WORKERS * RESTART_MESSAGES;
    const stopAt = new Set<number>();
    while (stopAt.size < STOPS) stopAt.add(1 + Math.floor(random() * total));
    const loop = new Loop({ maxEvents: 16 });
    const streams = new Streams(RESTART_WORKERS);
    let delivered = 0;
    loop.onMessage = (data, slot) => {
      streams.receive(data, slot);
      if (stopAt.has(++delivered)) loop.stop();
    };
    const workers = [];
    const returnedAt: number[] = [];
    const deadline = performance.now() + BOUND_MS;
    try {
      for (let id = 0; id < RESTART_WORKERS; id++) {
        const data: SoakJob = {
          id,
          count: RESTART_MESSAGES,
          seed: RESTART_SEED,
        };
        const w = spawnWorker(loop, SOAK_WORKER, { data });
        streams.assign(w.slot, id);
        workers.push(w);
      }
      while (loop.alive()) {
        if (performance.now() > deadline) {
          throw new Error(`Timed out after ${BOUND_MS} ms, ${delivered} in`);
        }
        const how = random();
        const before = delivered;
        if (how < 0.4) await loop.run();
        else if (how < 0.7) loop.runSync();
        else {
          // Polling passes that never sleep, then a host turn.
          for (let i = 0; i < 64 && loop.runNoWait() > 0;) i++;
        }
        if (stopAt.has(delivered) && delivered !== before) {
          returnedAt.push(delivered);
        }
        // The consumer stays away a while: producers fill their ports.
        await new Promise((r) => setTimeout(r, Math.floor(random() * 3)));
      }
    } finally {
      for (const w of workers) w.terminate();
    }
    assert.equal(streams.failure, undefined);
    assert.deepEqual(
      streams.next,
      new Array(RESTART_WORKERS).fill(RESTART_MESSAGES),
    );
    assert.deepEqual(streams.done, new Array(RESTART_WORKERS).fill(true));
    // Every stop was honoured right after its task: the drive returned with
    // the count at the stop point. (A runNoWait batch may pass a stop point
    // without returning there: it is not a drive that stop() ends.)
    for (const n of returnedAt) assert.ok(stopAt.has(n));
    assert.ok(
      returnedAt.length >= STOPS / 2,
      `only ${returnedAt.length} of ${STOPS} stops ended a drive`,
    );
  },
);

const TIMER_SEED = 0x71e5;
const TIMERS = 3_000;
const SPAN = 40;

/** What timer `id`'s callback does, from its own seeded stream. */
function actions(id: number, created: number): {
  cancel: number[];
  add: number[];
} {
  const r = rng(TIMER_SEED * 7919 + id);
  const cancel: number[] = [];
  const add: number[] = [];
  const n = r() < 0.5 ? Math.floor(r() * 4) : 0;
  for (let k = 0; k < n; k++) cancel.push(Math.floor(r() * created));
  if (r() < 0.3 && created < 2 * TIMERS) add.push(Math.floor(r() * SPAN));
  return { cancel, add };
}

/** The reference: fires in (deadline, creation) order, skips cancelled. */
function modelOrder(delays: number[]): number[] {
  const deadline: number[] = [...delays];
  const cancelled = new Set<number>();
  const fired: number[] = [];
  const live = new Set(deadline.keys());
  while (live.size > 0) {
    let best = -1;
    for (const id of live) {
      if (best < 0 || deadline[id] < deadline[best]) best = id;
    }
    live.delete(best);
    if (cancelled.has(best)) continue;
    fired.push(best);
    const now = deadline[best];
    const { cancel, add } = actions(best, deadline.length);
    for (const c of cancel) cancelled.add(c);
    for (const d of add) {
      live.add(deadline.length);
      deadline.push(now + d);
    }
  }
  return fired;
}

Deno.test(
  `fault injection: ${TIMERS} timers whose callbacks cancel seeded other timers and set new ones fire exactly as the reference model says [seed 0x${
    TIMER_SEED.toString(16)
  }]`,
  () => {
    const random = rng(TIMER_SEED);
    const delays = Array.from(
      { length: TIMERS },
      () => Math.floor(random() * SPAN),
    );
    const loop = new Loop({ clock: new VirtualClock(), maxEvents: 7 });
    const timers: Timer[] = [];
    const fired: number[] = [];
    const set = (id: number, delay: number) => {
      timers[id] = loop.setTimer(() => {
        fired.push(id);
        const { cancel, add } = actions(id, timers.length);
        for (const c of cancel) timers[c].cancel();
        for (const d of add) set(timers.length, d);
      }, delay);
    };
    for (const d of delays) set(timers.length, d);
    loop.runSync();
    const expected = modelOrder(delays);
    assert.ok(
      expected.length < timers.length,
      "the seed cancelled no timer",
    );
    assert.ok(timers.length > TIMERS, "the seed added no timer");
    assert.deepEqual(fired, expected);
    assert.equal(loop.alive(), false);
  },
);
