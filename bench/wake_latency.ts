/**
 * Bench section: wake latency, from a worker's wake to the main thread
 * running, for the primitives a sleeping loop can use:
 *
 * - `Atomics.wait` woken by `Atomics.notify` (the bare primitive);
 * - `loop.runSync()`: the loop's blocking drive asleep in `Atomics.wait`,
 *   woken by a raw `pushFloat` and an eager `wake` (the item runs as an
 *   `onEntry` task);
 * - `await loop.run()`: the async drive asleep in `Atomics.waitAsync`, same
 *   wake;
 * - `Worker.postMessage` one way, and a `MessageChannel` port one way, to a
 *   main thread idle in its event loop.
 *
 * Method: a worker (`workers/wake_source.ts`) waits for the main thread to
 * ask for round r, spins a random 150-350 µs so the main thread is surely
 * asleep, reads its clock and fires. The main thread reads its clock first
 * thing when it runs. Worker readings are moved onto the main thread's clock
 * by an offset measured before each run: ping-pong on a shared word, keeping
 * the round trip with the smallest time (its midpoint error is under half of
 * it, printed). Loops run with `spinMicros: 0`, so they sleep at once.
 * Per run: p50, p90, p99 and max; reported: median (min–max) over runs.
 *
 * | word (index)     | name                 | written by       | read by |
 * | ---------------- | -------------------- | ---------------- | ------- |
 * | `W_PING` (0)     | calibration ping     | both, in turn    | both    |
 * | `W_ROUND` (32)   | round to fire / stop | main thread      | worker  |
 * | `W_FIRE` (64)    | round fired (`wait`) | worker           | main    |
 * | `F_WTIME` (f64 48)| worker clock at ping| worker           | main    |
 * | `F_STAMP` (f64 64)| worker clock at fire| worker (`wait`)  | main    |
 *
 * Each group sits on its own 128-byte line.
 *
 * @module
 */

import { Loop, type PortHandle } from "../mod.ts";
import { READY } from "./protocol.ts";
import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";
import { fixed, summarize, type Summary } from "./stats.ts";
import { lineChartSvg, writeChart } from "./svg.ts";
import { spawnWorker } from "./worker_control.ts";

/** Control word: calibration ping. */
export const W_PING = 0;
/** Control word: round the worker should fire, or {@linkcode W_STOP}. */
export const W_ROUND = 32;
/** Control word: last round fired (`wait` mode). */
export const W_FIRE = 64;
/** `W_ROUND` value: the worker returns. */
export const W_STOP = -1;
/** `W_PING` value: calibration is over. */
export const W_CAL_DONE = -1;
/** Float64 index: worker clock at the last calibration ping. */
export const F_WTIME = 48;
/** Float64 index: worker clock at the last fire (`wait` mode). */
export const F_STAMP = 64;
/** Bytes of the control buffer. */
const CONTROL_BYTES = 5 * 128;

/** How the main thread sleeps and the worker wakes it. */
export type WakeMode = "wait" | "runSync" | "run" | "postMessage" | "channel";

const MODES: readonly WakeMode[] = [
  "wait",
  "runSync",
  "run",
  "postMessage",
  "channel",
];

const LABELS: Record<WakeMode, string> = {
  wait: "Atomics.wait ← notify",
  runSync: "loop.runSync() ← push + wake",
  run: "await loop.run() ← push + wake",
  postMessage: "Worker postMessage, one way",
  channel: "MessageChannel, one way",
};

/** Job for `workers/wake_source.ts`. */
export interface WakeJob {
  /** Mode. */
  mode: WakeMode;
  /** The control buffer (table above). */
  control: SharedArrayBuffer;
  /** Seed of the delay sequence. */
  seed: number;
  /** Shortest delay before a fire, ms. */
  minDelayMs: number;
  /** Longest delay before a fire, ms. */
  maxDelayMs: number;
  /** The loop's port handle (`runSync`, `run`). */
  handle?: PortHandle;
  /** Port to post on (`channel`). */
  port?: MessagePort;
}

const MIN_DELAY_MS = 0.15;
const MAX_DELAY_MS = 0.35;
const PINGS = 400;
/** A calibration whose best round trip is longer is not trusted, ms. */
const GOOD_RTT_MS = 0.005;
/** Runs redone at most this often when calibration was not trusted. */
const RETRIES = 3;
const TIMEOUT_MS = 10_000;
/** Percentiles reported per run. */
const PCTS = [0.5, 0.9, 0.99] as const;
/** Percentiles drawn in the chart. */
const CHART_PCTS = [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];

/** One run: latencies in µs, and the calibration's best round trip. */
interface WakeRun {
  us: Float64Array;
  rttNs: number;
}

/**
 * Worker clock minus main clock, from the ping with the smallest round trip:
 * at least {@linkcode PINGS} pings, more (up to 20 times as many) until one
 * round trip is under {@linkcode GOOD_RTT_MS}; on a loaded machine either
 * thread may be descheduled for a whole batch of pings.
 */
function calibrate(
  w: Int32Array,
  f: Float64Array,
): { offset: number; rttNs: number } {
  let best = Infinity;
  let offset = 0;
  for (let i = 1; i <= 20 * PINGS; i++) {
    const t0 = performance.now();
    Atomics.store(w, W_PING, 2 * i - 1);
    let spins = 0;
    // Pairs with the worker's Atomics.store of the answer.
    while (Atomics.load(w, W_PING) !== 2 * i) {
      if (++spins === 1e8) throw new Error("Cannot calibrate: no answer");
    }
    const t1 = performance.now();
    if (t1 - t0 < best) {
      best = t1 - t0;
      offset = f[F_WTIME] - (t0 + t1) / 2;
    }
    if (i >= PINGS && best < GOOD_RTT_MS) break;
  }
  Atomics.store(w, W_PING, W_CAL_DONE);
  return { offset, rttNs: best * 1e6 };
}

function ready(worker: Worker, job: WakeJob, transfer: Transferable[]) {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("Cannot start wake run: worker not ready")),
      TIMEOUT_MS,
    );
    worker.onerror = (ev) => {
      ev.preventDefault();
      clearTimeout(timer);
      reject(new Error(`Cannot run wake latency: ${ev.message}`));
    };
    worker.onmessage = (ev) => {
      if (ev.data !== READY) return;
      clearTimeout(timer);
      resolve();
    };
    worker.postMessage(job, transfer);
  });
}

async function runMode(
  worker: Worker,
  mode: WakeMode,
  samples: number,
  seed: number,
): Promise<WakeRun> {
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const w = new Int32Array(control);
  const f = new Float64Array(control);
  const job: WakeJob = {
    mode,
    control,
    seed,
    minDelayMs: MIN_DELAY_MS,
    maxDelayMs: MAX_DELAY_MS,
  };
  const loop = mode === "runSync" || mode === "run"
    ? new Loop({ spinMicros: 0 })
    : undefined;
  if (loop) job.handle = loop.port();
  const ch = mode === "channel" ? new MessageChannel() : undefined;
  if (ch) job.port = ch.port2;
  const us = new Float64Array(samples);
  let k = 0;
  const ask = (round: number) => {
    Atomics.store(w, W_ROUND, round);
    Atomics.notify(w, W_ROUND);
  };
  try {
    await ready(worker, job, ch ? [ch.port2] : []);
    const cal = calibrate(w, f);
    const record = (now: number, stamp: number) => {
      us[k++] = (now - (stamp - cal.offset)) * 1000;
    };
    if (mode === "wait") {
      for (let r = 1; r <= samples; r++) {
        ask(r);
        while (Atomics.load(w, W_FIRE) !== r) {
          if (Atomics.wait(w, W_FIRE, r - 1, TIMEOUT_MS) === "timed-out") {
            throw new Error("Cannot measure Atomics.wait: no notify");
          }
        }
        record(performance.now(), f[F_STAMP]);
      }
    } else if (loop) {
      loop.onEntry = (e) => {
        record(performance.now(), e.float());
        if (k < samples) ask(k + 1);
        else loop.stop();
      };
      ask(1);
      if (mode === "runSync") loop.runSync();
      else await loop.run();
    } else {
      const done = Promise.withResolvers<void>();
      const timer = setTimeout(
        () => done.reject(new Error(`Cannot measure ${mode}: stalled`)),
        TIMEOUT_MS * 3,
      );
      const onStamp = (ev: MessageEvent) => {
        if (typeof ev.data !== "number") return;
        record(performance.now(), ev.data);
        if (k < samples) ask(k + 1);
        else done.resolve();
      };
      if (ch) ch.port1.onmessage = onStamp;
      else worker.onmessage = onStamp;
      ask(1);
      try {
        await done.promise;
      } finally {
        clearTimeout(timer);
      }
    }
    if (k !== samples) {
      throw new Error(`Cannot trust ${mode} run: ${k} of ${samples} wakes`);
    }
    return { us, rttNs: cal.rttNs };
  } finally {
    ask(W_STOP);
    loop?.close();
    ch?.port1.close();
  }
}

/** One mode's results, as saved in `latest.json`. */
export interface WakeCell {
  /** Mode. */
  mode: WakeMode;
  /** Wakes per run. */
  samples: number;
  /** Per-run p50, µs, over runs. */
  p50: Summary;
  /** Per-run p90, µs. */
  p90: Summary;
  /** Per-run p99, µs. */
  p99: Summary;
  /** Per-run maximum, µs. */
  max: Summary;
  /** Percentiles of all runs pooled, µs, at {@linkcode CHART_PCTS}. */
  pooled: number[];
  /** Calibration round trip, ns (the clock offset error is below half). */
  rttNs: Summary;
}

function pct(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function runCells(
  s: SectionSettings,
): Promise<{ cells: WakeCell[]; redone: number }> {
  const samples = s.quick ? 150 : 1000;
  const runs = MODES.map(() => [] as WakeRun[]);
  let redone = 0;
  const worker = spawnWorker("./workers/wake_source.ts");
  try {
    for (let rep = -1; rep < s.reps; rep++) {
      s.progress(rep < 0 ? "wake latency warm-up" : ` ${rep + 1}`);
      for (const [i, mode] of MODES.entries()) {
        let run = await runMode(worker, mode, samples, 0x9e3779b9 + rep);
        for (let t = 0; t < RETRIES && run.rttNs > GOOD_RTT_MS * 1e6; t++) {
          redone++;
          run = await runMode(worker, mode, samples, 0x9e3779b9 + rep);
        }
        if (rep >= 0) runs[i].push(run);
      }
    }
  } finally {
    worker.terminate();
  }
  s.progress("\n");
  const cells = MODES.map((mode, i) => {
    const sorted = runs[i].map((r) => r.us.slice().sort());
    const all = new Float64Array(sorted.reduce((a, x) => a + x.length, 0));
    let at = 0;
    for (const x of sorted) {
      all.set(x, at);
      at += x.length;
    }
    all.sort();
    return {
      mode,
      samples,
      p50: summarize(sorted.map((x) => pct(x, PCTS[0]))),
      p90: summarize(sorted.map((x) => pct(x, PCTS[1]))),
      p99: summarize(sorted.map((x) => pct(x, PCTS[2]))),
      max: summarize(sorted.map((x) => x[x.length - 1])),
      pooled: CHART_PCTS.map((q) => pct(all, q)),
      rttNs: summarize(runs[i].map((r) => r.rttNs)),
    };
  });
  return { cells, redone };
}

function us(v: number): string {
  return fixed(v, v < 10 ? 1 : 0);
}

function cell(x: Summary): string {
  return `${us(x.median)} (${us(x.min)}–${us(x.max)})`;
}

async function writeCharts(cells: WakeCell[]): Promise<string[]> {
  const svg = lineChartSvg({
    title: "Wake latency distribution: worker wakes → main thread runs",
    subtitle: "all runs pooled; x: percentile of wakes, y: µs (log)",
    xLabel: "percentile",
    yLabel: "µs from wake to running",
    yLog: true,
    series: cells.map((c) => ({
      name: LABELS[c.mode],
      dashed: c.mode === "postMessage" || c.mode === "channel",
      points: CHART_PCTS.map((q, j) => ({ x: q * 100, y: c.pooled[j] })),
    })),
  });
  return [await writeChart("wake_latency.svg", svg)];
}

/** Runs the wake-latency section. */
export const runWakeLatency: SectionRunner = async (
  s: SectionSettings,
): Promise<BenchSection> => {
  const { cells, redone } = await runCells(s);
  const files = await writeCharts(cells);
  const rtt = summarize(cells.flatMap((c) => [c.rttNs.min, c.rttNs.max]));
  return {
    id: "wakeLatency",
    title: "Wake latency: worker wakes → main thread running (µs)",
    notes: [
      `${cells[0].samples} wakes per run, each after a random ` +
      `${MIN_DELAY_MS * 1000}–${
        MAX_DELAY_MS * 1000
      } µs so the main thread is ` +
      "asleep; cells: median (min–max) over runs of each run's percentile.",
      "Worker clock readings mapped to the main thread's by a ping-pong " +
      `offset per run (best round trip ${fixed(rtt.min, 0)}–${
        fixed(rtt.max, 0)
      } ns, ` +
      "so the offset is good to half of that). Loops use spinMicros: 0.",
      `Runs redone because no calibration round trip was under ${
        GOOD_RTT_MS * 1000
      } µs (a thread descheduled throughout): ${redone}.`,
      `Chart: ${files.join(", ")}.`,
    ],
    columns: ["sleeper ← waker", "p50", "p90", "p99", "max"],
    rows: cells.map((c) => [
      LABELS[c.mode],
      cell(c.p50),
      cell(c.p90),
      cell(c.p99),
      us(c.max.median),
    ]),
    data: {
      minDelayMs: MIN_DELAY_MS,
      maxDelayMs: MAX_DELAY_MS,
      chartPercentiles: CHART_PCTS,
      cells,
    },
  };
};
