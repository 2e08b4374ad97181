/**
 * Multi-worker stress of the SAB queue and the wake protocol: 1, 2, 4 and 8
 * producer workers (`workers/stress_producer.ts`) push 10^6 items in all per
 * configuration through 64-node slots, so backpressure and wraparound happen
 * constantly. Each item carries its producer id (`a`), sequence number (`b`)
 * and a tag derived from both; the consumer (this thread) drains with a
 * limit of 20, sleeps through `Waiter` when the queue is empty and backs off
 * boundedly on `busy`. It checks per-producer order, that nothing is lost
 * and nothing is delivered twice.
 *
 * The consumer blocks this thread while it runs, so it enforces its own
 * deadline; workers report failures through a shared word and an eager wake.
 *
 * @module
 */
import assert from "node:assert/strict";
import { MpscQueue, type QueueEntry } from "../runtime/mpsc_queue.ts";
import { type SleepResult, Waiter } from "../runtime/wake.ts";
import { TestWorker } from "./worker_harness.ts";
import {
  S_FAILED,
  S_PROGRESS,
  S_START,
  S_WORDS,
  type StressReport,
  stressTag,
  type StressTask,
} from "./workers/stress_producer.ts";

const MESSAGES = 1_000_000;
const SEED = 0x5e5e_d00d;
const NODES_PER_PRODUCER = 64;
const DRAIN_LIMIT = 20;
/** Lazy wake threshold; at most a quarter of one producer's slot. */
const WAIT_NR = 16;
/** Re-arm with 1 after this long, so a tail of fewer than 16 items wakes. */
const MIN_WAIT_MS = 0.5;
/** A sleep this long with items outstanding fails the run. */
const SLEEP_TIMEOUT_MS = 2000;
/** The whole consume phase of one configuration. */
const DEADLINE_MS = 30_000;
/** Busy answers in a row before the consumer starts sleeping between tries. */
const BUSY_SPINS = 16;
const BUSY_BACKOFF_MS = 0.02;

type WorkerMessage = StressReport | { kind: "ready" };

/** A stress producer worker, started on `task`. */
function stressWorker(task: StressTask): TestWorker<WorkerMessage> {
  return new TestWorker(
    new URL("./workers/stress_producer.ts", import.meta.url),
    task,
  );
}

interface ConsumeStats {
  ms: number;
  drains: number;
  busy: number;
  busySleeps: number;
  maxBusyStreak: number;
  sleeps: Record<SleepResult, number>;
  slotOf: Int32Array;
}

/**
 * The consumer loop. Blocks this thread until every item arrived; throws on
 * any order, loss or duplication, a worker failure, a sleep that timed out
 * with items outstanding, or the deadline.
 */
function consume(
  q: MpscQueue,
  ctrl: Int32Array,
  producers: number,
  perProducer: number,
): ConsumeStats {
  const waiter = new Waiter(q.buffer);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const next = new Int32Array(producers);
  const slotOf = new Int32Array(producers).fill(-1);
  const total = producers * perProducer;
  let received = 0;
  const onEntry = (e: QueueEntry) => {
    const id = e.a;
    const seq = e.b;
    if (!(id >= 0 && id < producers)) {
      throw new Error(`Item from unknown producer ${id} (b ${seq})`);
    }
    if (seq !== next[id]) {
      throw new Error(
        `Producer ${id}: expected item ${next[id]}, got ${seq} (` +
          (seq < next[id] ? "duplicate or reordered" : "items lost") + ")",
      );
    }
    if (e.tag !== stressTag(id, seq)) {
      throw new Error(`Producer ${id} item ${seq}: corrupt tag ${e.tag}`);
    }
    if (slotOf[id] !== e.producer) {
      if (slotOf[id] !== -1) {
        throw new Error(`Producer ${id} moved from slot ${slotOf[id]}`);
      }
      slotOf[id] = e.producer;
    }
    next[id] = seq + 1;
    received++;
  };
  const progress = () =>
    `received ${received}/${total}; pushed per producer ` +
    Array.from({ length: producers }, (_, i) => ctrl[S_PROGRESS + i]).join();
  const stats: ConsumeStats = {
    ms: 0,
    drains: 0,
    busy: 0,
    busySleeps: 0,
    maxBusyStreak: 0,
    sleeps: { work: 0, woken: 0, "timed-out": 0 },
    slotOf,
  };
  const start = performance.now();
  Atomics.store(ctrl, S_START, 1);
  Atomics.notify(ctrl, S_START);
  let busyStreak = 0;
  let passes = 0;
  while (received < total) {
    q.drain(DRAIN_LIMIT, onEntry);
    stats.drains++;
    const state = q.lastState;
    if (state === "busy") {
      stats.busy++;
      busyStreak++;
      if (busyStreak > stats.maxBusyStreak) stats.maxBusyStreak = busyStreak;
      if (busyStreak > BUSY_SPINS) {
        stats.busySleeps++;
        Atomics.wait(pause, 0, 0, BUSY_BACKOFF_MS);
      }
    } else {
      busyStreak = 0;
    }
    if (state === "empty" && received < total) {
      const r = waiter.sleep(WAIT_NR, SLEEP_TIMEOUT_MS, MIN_WAIT_MS);
      stats.sleeps[r]++;
      if (r === "timed-out") {
        throw new Error(
          `Consumer slept ${SLEEP_TIMEOUT_MS} ms with items outstanding ` +
            `(lost wake-up or stalled producers): ${progress()}`,
        );
      }
    }
    if ((++passes & 255) === 0 || state === "empty") {
      const failed = Atomics.load(ctrl, S_FAILED);
      if (failed !== 0) {
        throw new Error(`Worker ${failed - 1} failed: ${progress()}`);
      }
      if (performance.now() - start > DEADLINE_MS) {
        throw new Error(`Deadline of ${DEADLINE_MS} ms passed: ${progress()}`);
      }
    }
  }
  stats.ms = performance.now() - start;
  assert.equal(q.drain(DRAIN_LIMIT, onEntry), 0, "items beyond the total");
  assert.equal(q.lastState, "empty");
  for (let id = 0; id < producers; id++) {
    assert.equal(next[id], perProducer, `items from producer ${id}`);
  }
  return stats;
}

async function stress(producers: number): Promise<void> {
  const perProducer = Math.ceil(MESSAGES / producers);
  const q = MpscQueue.create({
    producers,
    nodesPerProducer: NODES_PER_PRODUCER,
    bytesPerProducer: 0,
  });
  const ctrl = new Int32Array(new SharedArrayBuffer(S_WORDS * 4));
  const workers: TestWorker<WorkerMessage>[] = [];
  try {
    for (let id = 0; id < producers; id++) {
      workers.push(
        stressWorker({
          buffer: q.buffer,
          ctrl: ctrl.buffer as SharedArrayBuffer,
          id,
          count: perProducer,
          seed: (SEED + id * 0x9e37) | 0,
          lazy: id % 4 !== 3,
        }),
      );
    }
    for (const w of workers) {
      assert.equal((await w.next(10_000, "a worker to attach")).kind, "ready");
    }
    const stats = consume(q, ctrl, producers, perProducer);
    const reports: StressReport[] = [];
    for (const w of workers) {
      const m = await w.next(10_000, "a worker's report");
      assert.equal(m.kind, "done");
      reports.push(m as StressReport);
    }
    for (const r of reports) {
      assert.equal(r.pushed, perProducer, `worker ${r.id} pushed`);
      assert.equal(r.slot, stats.slotOf[r.id], `worker ${r.id} slot`);
    }
    const sum = (f: (r: StressReport) => number) =>
      reports.reduce((n, r) => n + f(r), 0);
    const total = producers * perProducer;
    console.log(
      `${producers} producer(s), ${total} items in ${stats.ms.toFixed(0)} ms ` +
        `(${
          (total / stats.ms / 1000).toFixed(2)
        } M/s); drains ${stats.drains}, ` +
        `busy ${stats.busy} (longest run ${stats.maxBusyStreak}, ` +
        `backoff sleeps ${stats.busySleeps}); consumer sleeps: ` +
        `woken ${stats.sleeps.woken}, work ${stats.sleeps.work}; ` +
        `notifies ${sum((r) => r.notified)}; producers: full ${
          sum((r) => r.full)
        }, backoff sleeps ${sum((r) => r.sleeps)}, batched ${
          sum((r) => r.batched)
        }`,
    );
  } catch (e) {
    if (e instanceof Error) e.message += ` [seed 0x${SEED.toString(16)}]`;
    throw e;
  } finally {
    Atomics.store(ctrl, S_FAILED, -1);
    for (const w of workers) w.terminate();
  }
}

for (const producers of [1, 2, 4, 8]) {
  Deno.test(
    `stress: ${producers} producer worker(s) send ${MESSAGES} items through ${NODES_PER_PRODUCER}-node slots in per-producer order, none lost or repeated`,
    () => stress(producers),
  );
}
