/**
 * Bench section: producer push latency with 4 producer workers on 2 vCPUs.
 * Each worker times every push call that queued its item (a
 * `performance.now()` before and after; the clock's own cost, measured once
 * per section run, is subtracted) while all four push flat out and the main
 * thread consumes (`saturation.ts`). A twloop push is wait-free (2 atomics),
 * a Treiber push retries its compare-and-swap when another producer gets in
 * between, a lock-ring push waits for the lock, and sleeps on it when the
 * holder was preempted. Per repetition: p50, p99, p99.9 and max over all
 * pushes of all producers; reported: median (min–max) over repetitions.
 *
 * @module
 */

import { profileClock } from "./burst_rounds.ts";
import {
  SAT_KINDS,
  SAT_LABELS,
  type SatKind,
  SatPool,
  type SatSample,
} from "./saturation.ts";
import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";
import { fixed, summarize, type Summary } from "./stats.ts";
import { barChartSvg, writeChart } from "./svg.ts";

/** Producer workers pushing at once. */
export const LATENCY_PRODUCERS = 4;
/** Percentiles reported (fractions). */
const PERCENTILES = [0.5, 0.99, 0.999] as const;

const ITEMS = {
  quick: { queue: 100_000, host: 20_000 },
  normal: { queue: 400_000, host: 100_000 },
};

/** Percentiles of one run, ns. */
interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** One transport's results, as saved in `latest.json`. */
export interface LatencyCell {
  /** Transport. */
  kind: SatKind;
  /** Pushes timed per run. */
  pushes: number;
  /** Median push, ns, over repetitions. */
  p50: Summary;
  /** 99th percentile, ns. */
  p99: Summary;
  /** 99.9th percentile, ns. */
  p999: Summary;
  /** Slowest push, ns. */
  max: Summary;
  /** Throughput while timed, messages per second. */
  perSecond: Summary;
}

/**
 * Percentiles of every producer's push times.
 *
 * @param s A timed run.
 * @param clockMs Clock cost to subtract, ms.
 * @returns Percentiles, ns.
 */
function percentiles(s: SatSample, clockMs: number): Percentiles {
  const n = s.reports.reduce((a, r) => a + (r.pushMs?.length ?? 0), 0);
  const all = new Float64Array(n);
  let at = 0;
  for (const r of s.reports) {
    all.set(r.pushMs!, at);
    at += r.pushMs!.length;
  }
  all.sort();
  const ns = (ms: number) => Math.max(0, (ms - clockMs) * 1e6);
  const pick = (q: number) => ns(all[Math.min(n - 1, Math.floor(q * n))]);
  return {
    p50: pick(PERCENTILES[0]),
    p99: pick(PERCENTILES[1]),
    p999: pick(PERCENTILES[2]),
    max: ns(all[n - 1]),
  };
}

async function runCells(
  s: SectionSettings,
  clockMs: number,
): Promise<LatencyCell[]> {
  const items = ITEMS[s.quick ? "quick" : "normal"];
  const per = SAT_KINDS.map(() => [] as Percentiles[]);
  const rates = SAT_KINDS.map(() => [] as number[]);
  const pool = new SatPool();
  try {
    for (let rep = -1; rep < s.reps; rep++) {
      s.progress(rep < 0 ? "push latency warm-up" : ` ${rep + 1}`);
      for (const [i, kind] of SAT_KINDS.entries()) {
        const host = kind === "postMessage" || kind === "channel";
        const sample = await pool.run(
          kind,
          LATENCY_PRODUCERS,
          host ? items.host : items.queue,
          true,
        );
        if (rep >= 0) {
          per[i].push(percentiles(sample, clockMs));
          rates[i].push(sample.perSecond);
        }
      }
    }
  } finally {
    pool.close();
  }
  s.progress("\n");
  return SAT_KINDS.map((kind, i) => {
    const host = kind === "postMessage" || kind === "channel";
    const p = per[i];
    return {
      kind,
      pushes: host ? items.host : items.queue,
      p50: summarize(p.map((x) => x.p50)),
      p99: summarize(p.map((x) => x.p99)),
      p999: summarize(p.map((x) => x.p999)),
      max: summarize(p.map((x) => x.max)),
      perSecond: summarize(rates[i]),
    };
  });
}

function ns(v: number, stepNs: number): string {
  if (v < stepNs) return `<${fixed(stepNs, 0)}`;
  if (v >= 1e6) return `${fixed(v / 1e6, 1)} ms`;
  if (v >= 1e4) return `${fixed(v / 1e3, 1)} µs`;
  return fixed(v, 0);
}

function cell(x: Summary, stepNs: number): string {
  return `${ns(x.median, stepNs)} (${ns(x.min, stepNs)}–${ns(x.max, stepNs)})`;
}

async function writeCharts(cells: LatencyCell[]): Promise<string[]> {
  const names = ["p50", "p99", "p99.9"];
  const svg = barChartSvg({
    title: `Push latency, ${LATENCY_PRODUCERS} producer workers on 2 vCPUs`,
    subtitle: "ns per push call, median and min–max over repetitions",
    xLabel: "percentile over all pushes of a run",
    yLabel: "ns per push",
    yLog: true,
    categories: names,
    series: cells.map((c) => ({
      name: SAT_LABELS[c.kind],
      values: [c.p50.median, c.p99.median, c.p999.median].map((v) =>
        Math.max(v, 1)
      ),
      lo: [c.p50.min, c.p99.min, c.p999.min].map((v) => Math.max(v, 1)),
      hi: [c.p50.max, c.p99.max, c.p999.max],
    })),
  });
  return [await writeChart("push_latency.svg", svg)];
}

/** Runs the push-latency section. */
export const runPushLatency: SectionRunner = async (
  s: SectionSettings,
): Promise<BenchSection> => {
  const clock = profileClock();
  const cells = await runCells(s, clock.costMs);
  const files = await writeCharts(cells);
  const step = clock.stepNs;
  return {
    id: "pushLatency",
    title:
      `Producer push latency, ${LATENCY_PRODUCERS} producers on 2 vCPUs (ns)`,
    notes: [
      `${LATENCY_PRODUCERS} producer workers push flat out, each timing every ` +
      "push call that queued its item; the main thread consumes. Percentiles " +
      "over all pushes of a run; cells: median (min–max) over repetitions.",
      `Clock: ${fixed(clock.costMs * 1e6, 0)} ns per reading, subtracted; ` +
      `resolution ~${fixed(step, 0)} ns. A refused push (full) is not timed, ` +
      "its retry is; postMessage and MessageChannel time the post call.",
      `Pushes per run: ${
        cells.map((c) => `${c.kind} ${c.pushes}`).join(", ")
      }. ` +
      `Chart: ${files.join(", ")}.`,
    ],
    columns: ["transport", "p50", "p99", "p99.9", "max", "M msg/s"],
    rows: cells.map((c) => [
      SAT_LABELS[c.kind],
      cell(c.p50, step),
      cell(c.p99, step),
      cell(c.p999, step),
      ns(c.max.median, step),
      fixed(c.perSecond.median / 1e6, 2),
    ]),
    data: {
      producers: LATENCY_PRODUCERS,
      clockCostNs: clock.costMs * 1e6,
      clockStepNs: step,
      cells,
    },
  };
};
