/**
 * Bench section: the seed's bursty case. B items are queued while the
 * consumer is not running, then the consumer drains them; measured are the
 * time from the start of the consumer's first pass to the first item
 * running, and the drain cost per item, for B = 8, 64, 1024, 65536, with
 * passes capped at {@linkcode MAX_EVENTS} items and uncapped, for three
 * queues: twloop's `MpscQueue`, the kernel's old Treiber stack with reversal
 * and retry list, and a lock-guarded ring (`bench/baselines/`).
 *
 * Method, per cell (producer side × B × capped or not × queue):
 *
 * 1. Producer on the same thread: the main thread pushes B items, untimed.
 *    Producer worker: the main thread asks a worker for B items and sleeps
 *    until the worker says they are all pushed (`burst_queues.ts`), so the
 *    nodes arrive from another core's cache, as they do in a loop.
 * 2. Timed: `t0`, then drain passes (`drain(limit, fn)`) until all B items
 *    ran; the callback reads the clock once, on the first item. First item =
 *    that reading − `t0`; drain cost = (end − `t0`) / B. Each interval has
 *    the cost of one clock reading subtracted (median of back-to-back
 *    `performance.now()` pairs, measured once per section run and printed).
 * 3. Every item's value is checked against the expected sequence, the
 *    count per round, and an untimed extra pass must find the queue empty.
 * 4. A repetition is many rounds (fewer for large B); its first-item value is
 *    the median over its rounds, its drain cost the total over all items. One
 *    warm-up repetition, then `reps`; all cells interleaved within a
 *    repetition. Reported: median and min–max over repetitions.
 *
 * Every queue holds 65,536 items from its one producer, so the node and
 * ring footprints are the same whatever B is. At the largest backlog the
 * fill itself writes a megabyte of nodes, which pushes the consumer's own
 * working set out of the nearer caches: even an O(1) first item then pays
 * a few cache misses, on every queue alike.
 *
 * @module
 */

import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";
import { BURST_KINDS, BURST_LABELS, type BurstKind } from "./burst_queues.ts";
import {
  type Harness,
  localHarness,
  measureRounds,
  profileClock,
  type Sample,
  type Side,
  workerHarness,
} from "./burst_rounds.ts";
import { fixed, summarize, type Summary } from "./stats.ts";
import { lineChartSvg, type LineSeries, writeChart } from "./svg.ts";

/** Backlogs measured, from the seed's bursty scenario. */
export const BACKLOGS: readonly number[] = [8, 64, 1024, 65536];
/** Items per capped pass: the kernel's default `max_events` for task_work. */
export const MAX_EVENTS = 20;
/** First-item ratios need both medians at least this many clock steps. */
const FIRST_RATIO_STEPS = 3;
/** Items each queue holds (the largest backlog). */
const CAPACITY = 65536;

const SIDES: readonly Side[] = ["thread", "worker"];
const SIDE_LABELS: Record<Side, string> = {
  thread: "same thread",
  worker: "worker",
};

interface Plan {
  /** Items per repetition per cell (rounds = this / B, within the limits). */
  items: number;
  /** Most rounds per repetition with the producer on the same thread. */
  threadRounds: number;
  /** Most rounds with a worker producer (each costs a handshake). */
  workerRounds: number;
}

const PLANS: Record<"quick" | "normal", Plan> = {
  quick: { items: 1 << 15, threadRounds: 2048, workerRounds: 192 },
  normal: { items: 1 << 18, threadRounds: 16384, workerRounds: 1536 },
};

function roundsFor(plan: Plan, side: Side, backlog: number): number {
  const most = side === "thread" ? plan.threadRounds : plan.workerRounds;
  return Math.max(1, Math.min(most, Math.ceil(plan.items / backlog)));
}

/** A cell's place in the table. */
interface CellKey {
  side: Side;
  backlog: number;
  capped: boolean;
  kind: BurstKind;
}

function keyOf(k: CellKey): string {
  return `${k.side}/${k.backlog}/${k.capped ? "capped" : "uncapped"}/${k.kind}`;
}

/** A cell's results, as saved in `latest.json`. */
export interface BurstyCell extends CellKey {
  /** Rounds per repetition. */
  rounds: number;
  /** First-item time, ns, over repetitions. */
  firstNs: Summary;
  /** Drain cost per item, ns, over repetitions. */
  drainNsPerItem: Summary;
  /** Every repetition's figures, in run order. */
  samples: Sample[];
}

function cellsOf(): CellKey[] {
  const keys: CellKey[] = [];
  for (const side of SIDES) {
    for (const backlog of BACKLOGS) {
      for (const capped of [false, true]) {
        for (const kind of BURST_KINDS) {
          keys.push({ side, backlog, capped, kind });
        }
      }
    }
  }
  return keys;
}

async function runCells(
  s: SectionSettings,
  plan: Plan,
  clockMs: number,
): Promise<BurstyCell[]> {
  const harnesses = new Map<string, Harness>();
  try {
    for (const kind of BURST_KINDS) {
      harnesses.set(`thread/${kind}`, localHarness(kind, CAPACITY));
      harnesses.set(`worker/${kind}`, await workerHarness(kind, CAPACITY));
    }
    const keys = cellsOf();
    const samples = new Map(keys.map((k) => [keyOf(k), [] as Sample[]]));
    for (let rep = -1; rep < s.reps; rep++) {
      s.progress(rep < 0 ? "bursty warm-up" : ` ${rep + 1}`);
      for (const k of keys) {
        const h = harnesses.get(`${k.side}/${k.kind}`)!;
        const rounds = roundsFor(plan, k.side, k.backlog);
        const limit = k.capped ? MAX_EVENTS : Infinity;
        const sample = measureRounds(h, k.backlog, rounds, limit, clockMs);
        if (rep >= 0) samples.get(keyOf(k))!.push(sample);
      }
    }
    s.progress("\n");
    return keys.map((k) => {
      const got = samples.get(keyOf(k))!;
      return {
        ...k,
        rounds: roundsFor(plan, k.side, k.backlog),
        firstNs: summarize(got.map((x) => x.firstNs)),
        drainNsPerItem: summarize(got.map((x) => x.drainNs)),
        samples: got,
      };
    });
  } finally {
    for (const h of harnesses.values()) h.close();
  }
}

function ns(x: number): string {
  return fixed(x, Math.abs(x) < 9.95 ? 1 : 0);
}

function cell(x: Summary): string {
  return `${ns(x.median)} (${ns(x.min)}–${ns(x.max)})`;
}

/**
 * A single interval shorter than one clock step is below what the clock can
 * tell apart (after the clock cost is subtracted it can even be negative):
 * shown as "<step".
 */
function firstCell(x: Summary, stepNs: number): string {
  const f = (v: number) => v < stepNs ? `<${fixed(stepNs, 0)}` : ns(v);
  return `${f(x.median)} (${f(x.min)}–${f(x.max)})`;
}

function ratio(base: number, x: number, floor = 0): string {
  const r = base / x;
  if (!Number.isFinite(r) || r <= 0 || base < floor || x < floor) return "-";
  return `${fixed(r, r < 10 ? 2 : 0)}x`;
}

function rowsOf(cells: BurstyCell[], stepNs: number): string[][] {
  const find = (
    side: Side,
    backlog: number,
    capped: boolean,
    kind: BurstKind,
  ) =>
    cells.find((c) =>
      c.side === side && c.backlog === backlog && c.capped === capped &&
      c.kind === kind
    )!;
  const rows: string[][] = [];
  for (const side of SIDES) {
    for (const backlog of BACKLOGS) {
      const base = find(side, backlog, false, "treiber");
      for (const kind of BURST_KINDS) {
        const u = find(side, backlog, false, kind);
        const c = find(side, backlog, true, kind);
        rows.push([
          SIDE_LABELS[side],
          String(backlog),
          BURST_LABELS[kind],
          firstCell(u.firstNs, stepNs),
          firstCell(c.firstNs, stepNs),
          cell(u.drainNsPerItem),
          cell(c.drainNsPerItem),
          ratio(
            base.firstNs.median,
            u.firstNs.median,
            FIRST_RATIO_STEPS * stepNs,
          ),
          ratio(base.drainNsPerItem.median, u.drainNsPerItem.median),
        ]);
      }
    }
  }
  return rows;
}

const COLORS: Record<BurstKind, string> = {
  twloop: "#1f77b4",
  twloopAtomic: "#9467bd",
  treiber: "#d62728",
  lockRing: "#2ca02c",
};

async function writeCharts(
  cells: BurstyCell[],
  stepNs: number,
): Promise<string[]> {
  const series = (
    pick: (c: BurstyCell) => Summary,
    filter: (c: BurstyCell) => boolean,
    name: (c: BurstyCell) => string,
    dashed: (c: BurstyCell) => boolean,
  ): LineSeries[] => {
    const groups = new Map<string, BurstyCell[]>();
    for (const c of cells.filter(filter)) {
      const n = name(c);
      groups.set(n, [...(groups.get(n) ?? []), c]);
    }
    return [...groups].map(([n, cs]) => ({
      name: n,
      color: COLORS[cs[0].kind],
      dashed: dashed(cs[0]),
      points: cs.map((c) => ({
        x: c.backlog,
        y: pick(c).median,
        lo: pick(c).min,
        hi: pick(c).max,
      })),
    }));
  };
  const first = lineChartSvg({
    title: "Time to the first item against backlog (uncapped pass)",
    subtitle: "median, min–max over repetitions; dashed: producer on the " +
      `same thread; open: under the clock's ~${fixed(stepNs, 0)} ns resolution`,
    xLabel: "items queued before the pass (B)",
    yLabel: "ns to first item",
    xLog: true,
    yLog: true,
    yFloor: stepNs,
    series: series(
      (c) => c.firstNs,
      (c) => !c.capped,
      (c) => `${BURST_LABELS[c.kind]}, ${SIDE_LABELS[c.side]}`,
      (c) => c.side === "thread",
    ),
  });
  const drain = lineChartSvg({
    title: "Drain cost per item against backlog (worker producer)",
    subtitle:
      `median and min–max over repetitions; dashed: passes capped at ${MAX_EVENTS}`,
    xLabel: "items queued before the pass (B)",
    yLabel: "ns per item",
    xLog: true,
    yLog: true,
    series: series(
      (c) => c.drainNsPerItem,
      (c) => c.side === "worker",
      (c) => `${BURST_LABELS[c.kind]}${c.capped ? `, cap ${MAX_EVENTS}` : ""}`,
      (c) => c.capped,
    ),
  });
  return [
    await writeChart("bursty_first_item.svg", first),
    await writeChart("bursty_drain.svg", drain),
  ];
}

/** Runs the bursty section. */
export const runBursty: SectionRunner = async (
  s: SectionSettings,
): Promise<BenchSection> => {
  const plan = PLANS[s.quick ? "quick" : "normal"];
  const clock = profileClock();
  const clockMs = clock.costMs;
  const cells = await runCells(s, plan, clockMs);
  const files = await writeCharts(cells, clock.stepNs);
  const roundsText = SIDES.map((side) =>
    `${SIDE_LABELS[side]} ` +
    BACKLOGS.map((b) => `B=${b}: ${roundsFor(plan, side, b)}`).join(", ")
  ).join("; ");
  return {
    id: "bursty",
    title: "Bursty backlog: first item and drain cost (ns)",
    notes: [
      "B items queued by one producer while the consumer is not running, then " +
      `drained; capped = passes of at most ${MAX_EVENTS} items (kernel max_events), ` +
      "uncapped = one pass. Cells: median (min–max) over repetitions.",
      "First item: start of the first pass to the first callback (median over " +
      "a repetition's rounds). Drain: all passes, per item (callback included).",
      `Clock: ${
        fixed(clockMs * 1e6, 0)
      } ns per reading, subtracted from each ` +
      `interval; resolution ~${fixed(clock.stepNs, 0)} ns, so first-item ` +
      'values of a few steps only say "O(1)", and ratios between them are noise.',
      `Rounds per repetition: ${roundsText}.`,
      "vs Treiber: Treiber's median ÷ this queue's median (uncapped); above 1 " +
      `is faster; "-" where a first-item median is under ${FIRST_RATIO_STEPS} clock steps.`,
      `Every item checked for order, count and no leftovers. Charts: ${
        files.join(", ")
      }.`,
    ],
    columns: [
      "producer",
      "B",
      "queue",
      "first item",
      `first, cap ${MAX_EVENTS}`,
      "drain/item",
      `drain/item, cap ${MAX_EVENTS}`,
      "first vs Treiber",
      "drain vs Treiber",
    ],
    rows: rowsOf(cells, clock.stepNs),
    data: {
      capacity: CAPACITY,
      maxEvents: MAX_EVENTS,
      backlogs: BACKLOGS,
      clockCostNs: clockMs * 1e6,
      clockStepNs: clock.stepNs,
      plan,
      cells,
    },
  };
};
