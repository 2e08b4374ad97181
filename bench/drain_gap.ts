/**
 * Bench section: the drain-cost gap, before and after batch acquire, in one
 * run. Three consumers drain the same backlog from one producer:
 *
 * - `twloop`: `MpscQueue.drain` with batch acquire (one `Atomics.load` of
 *   `TAIL` per batch, plain link reads up to it; `runtime/mpsc_queue.ts`);
 * - `twloopAtomic`: the same buffer and producer with twloop's previous
 *   consumer, one `Atomics.load` per link (`baselines/atomic_link_consumer.ts`);
 * - `treiber`: the kernel's old Treiber stack with reversal.
 *
 * Method: the bursty section's harnesses (`burst_rounds.ts`): per round, B
 * items queued untimed, then drained in one uncapped pass, every item
 * checked; for B = 64, 1024, 65536, with the producer on the consumer's
 * thread (the instruction cost alone) and in a worker (nodes arrive from
 * another core's cache). A round's cost = pass time ÷ B, clock cost
 * subtracted; a repetition's figure is the median over its rounds, so a
 * round that was preempted (this machine is shared) does not count. One
 * warm-up repetition, then `reps`, cells interleaved; reported: median
 * (min–max) over repetitions and the ratio of Treiber's median to each.
 *
 * @module
 */

import type { BurstKind } from "./burst_queues.ts";
import {
  type Harness,
  localHarness,
  profileClock,
  type Side,
  workerHarness,
} from "./burst_rounds.ts";
import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";
import { fixed, summarize, type Summary } from "./stats.ts";

/** Backlogs measured. */
export const GAP_BACKLOGS: readonly number[] = [64, 1024, 65536];
/** Consumers compared, in report order. */
export const GAP_KINDS: readonly BurstKind[] = [
  "twloop",
  "twloopAtomic",
  "treiber",
];
const LABELS: Record<string, string> = {
  twloop: "twloop, batch acquire",
  twloopAtomic: "twloop, 1 atomic per pop (before)",
  treiber: "Treiber + reversal",
};
const SIDES: readonly Side[] = ["thread", "worker"];
const CAPACITY = 65536;

/** Items per repetition per cell, and most rounds, by mode and side. */
const PLAN = {
  quick: { items: 1 << 16, thread: 1024, worker: 64 },
  normal: { items: 1 << 20, thread: 8192, worker: 512 },
};

/** One cell, as saved in `latest.json`. */
export interface GapCell {
  /** Producer side. */
  side: Side;
  /** Backlog. */
  backlog: number;
  /** Consumer. */
  kind: BurstKind;
  /** Rounds per repetition. */
  rounds: number;
  /** Drain cost, ns per item, over repetitions. */
  drainNs: Summary;
}

/**
 * Times `rounds` rounds of B items; returns the median ns per item.
 *
 * @throws {Error} An item was lost, repeated, or out of order.
 */
function medianRound(
  h: Harness,
  backlog: number,
  rounds: number,
  clockMs: number,
): number {
  const c = h.queue.consumer;
  const t = h.tally;
  const per = new Float64Array(rounds);
  for (let r = 0; r < rounds; r++) {
    h.fill(backlog);
    t.first = 0;
    t.seen = 0;
    const t0 = performance.now();
    const got = c.drain(Infinity, h.onItem);
    per[r] = ((performance.now() - t0 - clockMs) * 1e6) / backlog;
    if (got !== backlog || t.seen !== backlog || t.wrong > 0) {
      throw new Error(
        `Cannot trust ${h.queue.kind} drain of ${backlog}: took ${got}, ` +
          `ran ${t.seen}, ${t.wrong} out of order`,
      );
    }
  }
  return summarize(Array.from(per)).median;
}

async function runCells(s: SectionSettings): Promise<GapCell[]> {
  const plan = PLAN[s.quick ? "quick" : "normal"];
  const clockMs = profileClock().costMs;
  const keys = SIDES.flatMap((side) =>
    GAP_BACKLOGS.flatMap((backlog) =>
      GAP_KINDS.map((kind) => ({
        side,
        backlog,
        kind,
        rounds: Math.max(
          1,
          Math.min(plan[side], Math.ceil(plan.items / backlog)),
        ),
      }))
    )
  );
  const harnesses = new Map<string, Harness>();
  const runs = keys.map(() => [] as number[]);
  try {
    for (const kind of GAP_KINDS) {
      harnesses.set(`thread/${kind}`, localHarness(kind, CAPACITY));
      harnesses.set(`worker/${kind}`, await workerHarness(kind, CAPACITY));
    }
    for (let rep = -1; rep < s.reps; rep++) {
      s.progress(rep < 0 ? "drain gap warm-up" : ` ${rep + 1}`);
      for (const [i, k] of keys.entries()) {
        const h = harnesses.get(`${k.side}/${k.kind}`)!;
        const ns = medianRound(h, k.backlog, k.rounds, clockMs);
        if (rep >= 0) runs[i].push(ns);
      }
    }
  } finally {
    for (const h of harnesses.values()) h.close();
  }
  s.progress("\n");
  return keys.map((k, i) => ({ ...k, drainNs: summarize(runs[i]) }));
}

function ns(v: number): string {
  return fixed(v, v < 9.95 ? 1 : 0);
}

/** Runs the drain-gap section. */
export const runDrainGap: SectionRunner = async (
  s: SectionSettings,
): Promise<BenchSection> => {
  const cells = await runCells(s);
  const find = (side: Side, backlog: number, kind: BurstKind) =>
    cells.find((c) =>
      c.side === side && c.backlog === backlog && c.kind === kind
    )!;
  const rows: string[][] = [];
  for (const side of SIDES) {
    for (const backlog of GAP_BACKLOGS) {
      const base = find(side, backlog, "treiber").drainNs.median;
      for (const kind of GAP_KINDS) {
        const c = find(side, backlog, kind);
        const r = base / c.drainNs.median;
        rows.push([
          side === "thread" ? "same thread" : "worker",
          String(backlog),
          LABELS[kind],
          `${ns(c.drainNs.median)} (${ns(c.drainNs.min)}–${ns(c.drainNs.max)})`,
          Number.isFinite(r) && r > 0 ? `${fixed(r, 2)}x` : "-",
        ]);
      }
    }
  }
  return {
    id: "drainGap",
    title: "Drain cost per item: batch acquire against the old pop (ns)",
    notes: [
      "B items queued by one producer, then drained in one uncapped pass; a " +
      "repetition's figure is the median over its rounds of pass time ÷ B; " +
      "cells: median (min–max) over repetitions. vs Treiber: " +
      "Treiber's median ÷ this one's; above 1 is cheaper than Treiber.",
      "batch acquire: one Atomics.load of TAIL, then plain link reads up to " +
      "that node (argument in runtime/mpsc_queue.ts); before: one " +
      "Atomics.load per link, as twloop's consumer did.",
      `Rounds per repetition: ${
        SIDES.map((side) =>
          `${side} ` +
          GAP_BACKLOGS.map((b) => `B=${b}: ${find(side, b, "twloop").rounds}`)
            .join(", ")
        ).join("; ")
      }.`,
    ],
    columns: ["producer", "B", "consumer", "drain/item", "vs Treiber"],
    rows,
    data: { backlogs: GAP_BACKLOGS, capacity: CAPACITY, cells },
  };
};
