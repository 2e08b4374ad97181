/**
 * Bench section: saturated throughput against producer count. 1, 2, 4 and 8
 * producer workers push as fast as they can into one consumer on the main
 * thread, through twloop's `MpscQueue`, the kernel's old Treiber stack with
 * reversal, a lock-guarded ring, `Worker.postMessage` and `MessageChannel`
 * (method in `saturation.ts`). One warm-up repetition, then `reps`; every
 * cell interleaved within a repetition, so drift hits all alike. Reported:
 * million messages per second, median (min–max) over repetitions, and the
 * ratios of twloop's median to each baseline's.
 *
 * @module
 */

import {
  SAT_DRAIN_LIMIT,
  SAT_KINDS,
  SAT_LABELS,
  SAT_NODES,
  SAT_SPIN_MS,
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
import { lineChartSvg, writeChart } from "./svg.ts";

/** Producer counts measured. */
export const PRODUCER_COUNTS: readonly number[] = [1, 2, 4, 8];

/** Items per run in all, by mode: queues, and the two host transports. */
const ITEMS = {
  quick: { queue: 100_000, host: 20_000 },
  normal: { queue: 1_000_000, host: 100_000 },
};

function isHost(kind: SatKind): boolean {
  return kind === "postMessage" || kind === "channel";
}

/** One cell's results, as saved in `latest.json`. */
export interface ThroughputCell {
  /** Transport. */
  kind: SatKind;
  /** Producer workers. */
  producers: number;
  /** Items per run. */
  items: number;
  /** Messages per second over repetitions. */
  perSecond: Summary;
  /** Producer pauses on a full slot or ring, per run (sum over producers). */
  fullStalls: Summary;
  /** Treiber CAS retries or lock contended acquisitions, per run. */
  contended: Summary;
  /** Lock sleeps per run (lock ring). */
  lockSleeps: Summary;
  /** Consumer pauses on an empty queue, per run. */
  consumerPauses: Summary;
}

function sumOf(s: SatSample, f: (r: SatSample["reports"][0]) => number) {
  return s.reports.reduce((a, r) => a + f(r), 0);
}

async function runCells(s: SectionSettings): Promise<ThroughputCell[]> {
  const items = ITEMS[s.quick ? "quick" : "normal"];
  const keys = SAT_KINDS.flatMap((kind) =>
    PRODUCER_COUNTS.map((producers) => ({
      kind,
      producers,
      items: isHost(kind) ? items.host : items.queue,
    }))
  );
  const runs = keys.map(() => [] as SatSample[]);
  const pool = new SatPool();
  try {
    for (let rep = -1; rep < s.reps; rep++) {
      s.progress(rep < 0 ? "throughput warm-up" : ` ${rep + 1}`);
      for (const [i, k] of keys.entries()) {
        const sample = await pool.run(k.kind, k.producers, k.items, false);
        if (rep >= 0) runs[i].push(sample);
      }
    }
  } finally {
    pool.close();
  }
  s.progress("\n");
  return keys.map((k, i) => {
    const r = runs[i];
    return {
      ...k,
      perSecond: summarize(r.map((x) => x.perSecond)),
      fullStalls: summarize(r.map((x) => sumOf(x, (y) => y.fullStalls))),
      contended: summarize(r.map((x) => sumOf(x, (y) => y.contended))),
      lockSleeps: summarize(r.map((x) => sumOf(x, (y) => y.lockSleeps))),
      consumerPauses: summarize(r.map((x) => x.consumerPauses)),
    };
  });
}

function mps(v: number): string {
  return fixed(v / 1e6, v < 1e6 ? 3 : 2);
}

function ratio(a: number, b: number): string {
  const r = a / b;
  return Number.isFinite(r) && r > 0 ? `${fixed(r, r < 10 ? 2 : 0)}x` : "-";
}

function rowsOf(cells: ThroughputCell[]): string[][] {
  const find = (kind: SatKind, p: number) =>
    cells.find((c) => c.kind === kind && c.producers === p)!;
  const rows = SAT_KINDS.map((kind) => [
    SAT_LABELS[kind],
    ...PRODUCER_COUNTS.map((p) => {
      const x = find(kind, p).perSecond;
      return `${mps(x.median)} (${mps(x.min)}–${mps(x.max)})`;
    }),
  ]);
  for (
    const base of ["treiber", "treiberWasm", "lockRing", "postMessage"] as const
  ) {
    rows.push([
      `twloop ÷ ${SAT_LABELS[base]}`,
      ...PRODUCER_COUNTS.map((p) =>
        ratio(
          find("twloop", p).perSecond.median,
          find(base, p).perSecond.median,
        )
      ),
    ]);
  }
  return rows;
}

const COLORS: Record<SatKind, string> = {
  twloop: "#1f77b4",
  treiber: "#d62728",
  treiberWasm: "#ff9896",
  lockRing: "#2ca02c",
  postMessage: "#ff7f0e",
  channel: "#9467bd",
};

async function writeCharts(cells: ThroughputCell[]): Promise<string[]> {
  const svg = lineChartSvg({
    title: "Saturated throughput against producer count",
    subtitle:
      "producer workers → main-thread consumer, 2 vCPUs; median and min–max over repetitions",
    xLabel: "producer workers",
    yLabel: "messages per second",
    xLog: true,
    yLog: true,
    series: SAT_KINDS.map((kind) => ({
      name: SAT_LABELS[kind],
      color: COLORS[kind],
      dashed: isHost(kind),
      points: cells.filter((c) => c.kind === kind).map((c) => ({
        x: c.producers,
        y: c.perSecond.median,
        lo: c.perSecond.min,
        hi: c.perSecond.max,
      })),
    })),
  });
  return [await writeChart("throughput_producers.svg", svg)];
}

/** Runs the throughput section. */
export const runThroughput: SectionRunner = async (
  s: SectionSettings,
): Promise<BenchSection> => {
  const cells = await runCells(s);
  const files = await writeCharts(cells);
  const items = ITEMS[s.quick ? "quick" : "normal"];
  const stalls = (kind: SatKind) =>
    PRODUCER_COUNTS.map((p) => {
      const c = cells.find((x) => x.kind === kind && x.producers === p)!;
      return `P=${p}: ${fixed(c.fullStalls.median, 0)} full, ` +
        `${fixed(c.contended.median, 0)} contended, ${
          fixed(c.lockSleeps.median, 0)
        } lock sleeps`;
    }).join("; ");
  return {
    id: "throughput",
    title: "Saturated throughput against producer count (M msg/s)",
    notes: [
      "P producer workers push (id, seq) pairs flat out; the main thread " +
      `consumes (${SAT_DRAIN_LIMIT} per drain call; bounded spin-then-sleep ` +
      `backoff of ${SAT_SPIN_MS} ms on an empty queue, and on a full one on ` +
      "the producer side). 2 vCPUs: from P=2 on, threads outnumber cores.",
      `Queues: ${SAT_NODES} nodes per producer slot (twloop, Treiber), ` +
      `${SAT_NODES} × P slots for the lock ring (the same total). Items per run: ` +
      `${items.queue} (queues), ${items.host} (postMessage, MessageChannel).`,
      "Cells: median (min–max) over repetitions, from the start signal to the " +
      "last item. Every item checked: per-producer order and count.",
      `Per run, medians: Treiber ${stalls("treiber")}.`,
      `Lock ring ${stalls("lockRing")}. twloop ${stalls("twloop")}.`,
      `Chart: ${files.join(", ")}.`,
    ],
    columns: [
      "transport",
      ...PRODUCER_COUNTS.map((p) => `P=${p}`),
    ],
    rows: rowsOf(cells),
    data: {
      producerCounts: PRODUCER_COUNTS,
      items,
      nodesPerProducer: SAT_NODES,
      cells,
    },
  };
};
