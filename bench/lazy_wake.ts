/**
 * Bench section: lazy, counted waking (the seed's `cq_wait_nr`). One producer
 * worker pushes integers, each push followed by a lazy `wake`; the main
 * thread drains and, when the queue is empty, sleeps with
 * `Waiter.sleep(k = waitNr)`, so a producer notifies only on the waitNr-th
 * lazy add since the consumer armed (or on any add after the 1 ms min-wait).
 * Measured for waitNr = 1, 8, 32, 128: notifies per 10^6 posts, consumer
 * sleeps per 10^6 posts, and messages per second.
 *
 * Two producer paces:
 *
 * - flat out: the producer pushes as fast as it can, so the consumer only
 *   sleeps when it has caught up;
 * - paced: the producer does {@linkcode PACED_GAP_US} µs of busy work between
 *   posts, a producer with work of its own, so the consumer keeps catching
 *   up and sleeping and the threshold decides how often it is woken.
 *
 * Every run checks delivery (each value in order, count, sum), that the
 * notifies counted in the queue equal those the producer reports, and that no
 * arming got more than one notify in total (notifies ≤ armings).
 *
 * @module
 */

import { MpscQueue, type QueueEntry, Waiter } from "../mod.ts";
import { Backoff, SPIN_BUDGET_MS } from "./backoff.ts";
import {
  CONTROL_BYTES,
  ITEM_TAG,
  type ProducerReport,
  startRun,
} from "./protocol.ts";
import {
  DRAIN_LIMIT,
  MIN_WAIT_MS,
  STREAM_QUEUE,
  verifyStream,
} from "./queue_ints.ts";
import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";
import { fixed, mega, summarize, type Summary } from "./stats.ts";
import { barChartSvg, lineChartSvg, writeChart } from "./svg.ts";
import { awaitReport, prepareWorker, spawnWorker } from "./worker_control.ts";

/** Thresholds measured. */
export const WAIT_NRS: readonly number[] = [1, 8, 32, 128];
/** Busy work between posts of the paced producer, µs. */
export const PACED_GAP_US = 2;
/** A sleep longer than this with nothing arriving means the run is stuck. */
const STALL_MS = 20_000;

/** Job for `workers/lazy_producer.ts`. */
export interface LazyJob {
  /** The queue buffer to attach a producer to. */
  queue: SharedArrayBuffer;
  /** The control buffer (`protocol.ts`). */
  control: SharedArrayBuffer;
  /** Items to push: the integers 0 to count-1. */
  count: number;
  /** Busy work after each post, ms (0: flat out). */
  gapMs: number;
  /** The producer's backoff spin budget on a full slot, ms. */
  spinBudgetMs: number;
}

/** Producer pace: flat out, or with busy work between posts. */
export type PaceId = "flat" | "paced";

interface Pace {
  id: PaceId;
  label: string;
  gapMs: number;
  items: { quick: number; normal: number };
}

const PACES: readonly Pace[] = [
  {
    id: "flat",
    label: "flat out",
    gapMs: 0,
    items: { quick: 100_000, normal: 1_000_000 },
  },
  {
    id: "paced",
    label: `paced, ${PACED_GAP_US} µs between posts`,
    gapMs: PACED_GAP_US / 1000,
    items: { quick: 20_000, normal: 200_000 },
  },
];

/** One run, as the consumer saw it. */
export interface LazySample {
  /** From the start signal to the last item received, ms. */
  ms: number;
  /** Items per second over `ms`. */
  perSecond: number;
  /** Notifies sent (the queue's `NOTIFIES` count). */
  notifies: number;
  /** Times the consumer armed the wake word. */
  armings: number;
  /** Armings that blocked in `Atomics.wait`. */
  sleeps: number;
  /** Consumer pauses on a push caught mid-window. */
  busy: number;
  /** Producer pauses on a full slot. */
  fullStalls: number;
}

async function runLazy(
  worker: Worker,
  count: number,
  waitNr: number,
  gapMs: number,
): Promise<LazySample> {
  const q = MpscQueue.create(STREAM_QUEUE);
  const waiter = new Waiter(q.buffer);
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const job: LazyJob = {
    queue: q.buffer,
    control,
    count,
    gapMs,
    spinBudgetMs: SPIN_BUDGET_MS,
  };
  await prepareWorker(worker, job);
  let received = 0;
  let wrong = 0;
  let sum = 0;
  const onItem = (e: QueueEntry) => {
    if (e.a !== received || e.tag !== ITEM_TAG) wrong++;
    received++;
    sum += e.a;
  };
  const backoff = new Backoff(SPIN_BUDGET_MS);
  const t0 = performance.now();
  startRun(control);
  while (received < count) {
    if (q.drain(DRAIN_LIMIT, onItem) > 0) backoff.reset();
    if (received >= count) break;
    if (q.lastState === "busy") {
      // A push is between its exchange and its link: never sleep on it.
      backoff.pause();
      if (backoff.stalledMs() > STALL_MS) break;
    } else if (q.lastState === "empty") {
      backoff.reset();
      if (waiter.sleep(waitNr, STALL_MS, MIN_WAIT_MS) === "timed-out") break;
    }
  }
  const ms = performance.now() - t0;
  const report: ProducerReport = await awaitReport(worker, STALL_MS);
  q.drain(Infinity, onItem); // anything left now is a duplicate
  verifyStream(`lazy wake (waitNr ${waitNr})`, count, received, wrong, sum);
  // Read after the report, which the producer posted after its last notify.
  const notifies = waiter.notifies();
  if (notifies !== report.wakes || notifies > waiter.armings) {
    throw new Error(
      `Cannot trust lazy wake run (waitNr ${waitNr}): ${notifies} notifies ` +
        `counted, ${report.wakes} reported by the producer, ${waiter.armings} armings`,
    );
  }
  return {
    ms,
    perSecond: count / (ms / 1000),
    notifies,
    armings: waiter.armings,
    sleeps: waiter.sleeps,
    busy: backoff.pauses,
    fullStalls: report.fullStalls,
  };
}

/** A cell's results, as saved in `latest.json`. */
export interface LazyCell {
  /** Producer pace. */
  pace: PaceId;
  /** The consumer's threshold. */
  waitNr: number;
  /** Items per run. */
  items: number;
  /** Messages per second. */
  perSecond: Summary;
  /** Notifies per 10^6 posts. */
  notifiesPerMillion: Summary;
  /** Consumer sleeps (blocking waits) per 10^6 posts. */
  sleepsPerMillion: Summary;
  /** Armings per run. */
  armings: Summary;
  /** Notifies ÷ armings per run (at most 1 by the protocol). */
  notifiesPerArming: Summary;
  /** Consumer pauses on a push caught mid-window, per run. */
  busy: Summary;
  /** Producer pauses on a full slot, per run. */
  fullStalls: Summary;
  /** Every run, in run order. */
  samples: LazySample[];
}

function perMillion(x: number, items: number): number {
  return (x / items) * 1e6;
}

async function runCells(s: SectionSettings): Promise<LazyCell[]> {
  const mode = s.quick ? "quick" : "normal";
  const worker = spawnWorker("./workers/lazy_producer.ts");
  const keys = PACES.flatMap((pace) =>
    WAIT_NRS.map((waitNr) => ({ pace, waitNr }))
  );
  const runs = keys.map(() => [] as LazySample[]);
  try {
    for (let rep = -1; rep < s.reps; rep++) {
      s.progress(rep < 0 ? "lazy wake warm-up" : ` ${rep + 1}`);
      for (const [i, k] of keys.entries()) {
        const sample = await runLazy(
          worker,
          k.pace.items[mode],
          k.waitNr,
          k.pace.gapMs,
        );
        if (rep >= 0) runs[i].push(sample);
      }
    }
  } finally {
    worker.terminate();
  }
  s.progress("\n");
  return keys.map((k, i) => {
    const items = k.pace.items[mode];
    const r = runs[i];
    const sum = (f: (x: LazySample) => number) => summarize(r.map(f));
    return {
      pace: k.pace.id,
      waitNr: k.waitNr,
      items,
      perSecond: sum((x) => x.perSecond),
      notifiesPerMillion: sum((x) => perMillion(x.notifies, items)),
      sleepsPerMillion: sum((x) => perMillion(x.sleeps, items)),
      armings: sum((x) => x.armings),
      notifiesPerArming: sum((x) => (x.armings ? x.notifies / x.armings : 0)),
      busy: sum((x) => x.busy),
      fullStalls: sum((x) => x.fullStalls),
      samples: r,
    };
  });
}

function range(x: Summary, f: (v: number) => string): string {
  return `${f(x.min)}–${f(x.max)}`;
}

function count(v: number): string {
  return fixed(v, v < 10 ? 1 : 0);
}

function rowsOf(cells: LazyCell[]): string[][] {
  return cells.map((c) => [
    PACES.find((p) => p.id === c.pace)!.label,
    String(c.waitNr),
    mega(c.perSecond.median),
    range(c.perSecond, mega),
    count(c.notifiesPerMillion.median),
    range(c.notifiesPerMillion, count),
    count(c.sleepsPerMillion.median),
    fixed(c.notifiesPerArming.max, 3),
    count(c.busy.median),
    count(c.fullStalls.median),
  ]);
}

async function writeCharts(cells: LazyCell[]): Promise<string[]> {
  const colors = { flat: "#1f77b4", paced: "#ff7f0e" };
  const notifies = lineChartSvg({
    title: "Notifies per 10⁶ posts against waitNr",
    subtitle:
      "one producer worker, main-thread consumer; median and min–max over repetitions",
    xLabel: "waitNr (lazy adds the sleeping consumer waits for)",
    yLabel: "notifies per 10⁶ posts",
    xLog: true,
    yLog: true,
    series: PACES.map((p) => ({
      name: p.label,
      color: colors[p.id],
      points: cells.filter((c) => c.pace === p.id).map((c) => ({
        x: c.waitNr,
        y: c.notifiesPerMillion.median,
        lo: c.notifiesPerMillion.min,
        hi: c.notifiesPerMillion.max,
      })),
    })),
  });
  const throughput = barChartSvg({
    title: "Throughput against waitNr",
    subtitle: "messages per second, median and min–max over repetitions",
    xLabel: "waitNr",
    yLabel: "messages per second",
    yLog: true,
    categories: WAIT_NRS.map(String),
    series: PACES.map((p) => {
      const cs = cells.filter((c) => c.pace === p.id);
      return {
        name: p.label,
        color: colors[p.id],
        values: cs.map((c) => c.perSecond.median),
        lo: cs.map((c) => c.perSecond.min),
        hi: cs.map((c) => c.perSecond.max),
      };
    }),
  });
  return [
    await writeChart("lazy_wake_notifies.svg", notifies),
    await writeChart("lazy_wake_throughput.svg", throughput),
  ];
}

/** Runs the lazy-wake section. */
export const runLazyWake: SectionRunner = async (
  s: SectionSettings,
): Promise<BenchSection> => {
  const cells = await runCells(s);
  const files = await writeCharts(cells);
  return {
    id: "lazyWake",
    title: "Lazy wake: notifies and throughput against waitNr",
    notes: [
      "One producer worker, lazy wake after every push (eager on a full slot " +
      "and after the last); main-thread consumer drains " +
      `${DRAIN_LIMIT} per pass and sleeps with Waiter.sleep(waitNr), min-wait ${MIN_WAIT_MS} ms.`,
      `Queue: ${STREAM_QUEUE.nodesPerProducer} nodes. Items per run: ` +
      PACES.map((p) =>
        `${p.label} ${cells.find((c) => c.pace === p.id)!.items}`
      )
        .join(", ") +
      ". Median and min–max over repetitions.",
      "notif/arming = largest notifies ÷ armings of any run (the protocol allows at " +
      "most 1); busy = consumer pauses on a push mid-window; full = producer pauses.",
      `Every run checked: order, count, sum, notifies counted = notifies sent. Charts: ${
        files.join(", ")
      }.`,
    ],
    columns: [
      "producer",
      "waitNr",
      "msg/s",
      "min–max msg/s",
      "notifies /1e6",
      "min–max",
      "sleeps /1e6",
      "notif/arming",
      "busy",
      "full",
    ],
    rows: rowsOf(cells),
    data: {
      waitNrs: WAIT_NRS,
      pacedGapUs: PACED_GAP_US,
      minWaitMs: MIN_WAIT_MS,
      cells,
    },
  };
};
