/**
 * The benchmark's results as one object, and the two renderings of it: the
 * aligned text table for stdout and `bench/results/latest.md`.
 * `bench/results/latest.json` is the object itself.
 *
 * @module
 */

import type { BenchSection } from "./section.ts";
import type { ItemCosts } from "./item_costs.ts";
import {
  alignTable,
  fixed,
  markdownTable,
  mega,
  type Summary,
} from "./stats.ts";

/** One transport's stream results. */
export interface TransportResult {
  /** Row label. */
  label: string;
  /** Messages per second over the repetitions. */
  perSecond: Summary;
  /** Milliseconds per run over the repetitions. */
  ms: Summary;
  /** Median of this transport's msg/s over the postMessage median. */
  ratioVsPostMessage: number;
  /** Medians of the per-run counters (consumer sleeps, producer wakes...). */
  counters: Record<string, number>;
  /** Every repetition's msg/s, in run order. */
  samples: number[];
}

/** Everything one benchmark run measured. */
export interface BenchResults {
  /** `Deno.version`. */
  deno: { deno: string; v8: string; typescript: string };
  /** ISO time the run started. */
  date: string;
  /** "normal" or "quick". */
  mode: string;
  /** `navigator.hardwareConcurrency`. */
  cpus: number;
  /** Integers streamed per run. */
  items: number;
  /** Measured runs per transport, after `warmups`. */
  repetitions: number;
  /** Unmeasured runs per transport before them. */
  warmups: number;
  /** Queue sizes and consumer settings of the stream. */
  config: Record<string, number>;
  /** One-way core-to-core cache-line transfer, ns. */
  coreToCoreNs: Summary;
  /** Stream results by transport id. */
  stream: Record<string, TransportResult>;
  /** Median msg/s of each queue transport over the postMessage median. */
  ratiosVsPostMessage: Record<string, number>;
  /** Same-thread nanoseconds per item (see `item_costs.ts`). */
  itemCostsNs: ItemCosts;
  /** Further scenarios by id (see `section.ts`). */
  sections: Record<string, BenchSection>;
  /** Wall time of the whole benchmark, seconds. */
  totalSeconds: number;
}

const COST_LABELS: Record<keyof ItemCosts, string> = {
  drain: "drain, 1024 queued (consumer)",
  push: "push",
  pushWake: "push + lazy wake, nobody waiting (producer)",
  pushBatch64: "pushBatch of 64",
  pushDrainOne: "push + drain(1), consumer at the tail",
};

function range(s: Summary, f: (x: number) => string): string {
  return `${f(s.min)} – ${f(s.max)}`;
}

function ns(x: number): string {
  return Number.isFinite(x) ? fixed(x, 0) : "-";
}

function streamRows(r: BenchResults): string[][] {
  const rows = [[
    "transport",
    "median msg/s",
    "min – max msg/s",
    "vs postMessage",
    "median ms",
    "prod ns/item",
    "cons ns/item",
    "sleeps/wakes",
    "full",
    "busy",
  ]];
  for (const t of Object.values(r.stream)) {
    const c = t.counters;
    rows.push([
      t.label,
      mega(t.perSecond.median),
      range(t.perSecond, mega),
      `${fixed(t.ratioVsPostMessage, 2)}x`,
      fixed(t.ms.median, 1),
      ns(c.producerNs),
      ns(c.consumerNs),
      `${c.sleeps}/${c.wakes}`,
      String(c.fullStalls),
      String(c.busy),
    ]);
  }
  return rows;
}

function costRows(r: BenchResults): string[][] {
  const rows = [["same thread, per item", "median ns", "min – max ns"]];
  for (const [k, label] of Object.entries(COST_LABELS)) {
    const s = r.itemCostsNs[k as keyof ItemCosts];
    rows.push([label, fixed(s.median, 1), range(s, (x) => fixed(x, 1))]);
  }
  return rows;
}

function header(r: BenchResults): string[] {
  const c = r.coreToCoreNs;
  return [
    `Deno ${r.deno.deno} (V8 ${r.deno.v8}, TypeScript ${r.deno.typescript})` +
    `, ${r.cpus} CPUs, ${r.date}, mode ${r.mode}`,
    `core-to-core one way (SAB ping-pong): median ${fixed(c.median, 0)} ns` +
    ` (${range(c, (x) => fixed(x, 0))})`,
    `stream: ${r.items.toLocaleString("en-US")} ints, 1 producer worker -> ` +
    `main thread, ${r.warmups} warm-up + ${r.repetitions} runs each, ` +
    `interleaved; queue ${r.config.nodesPerProducer} nodes, drain limit ` +
    `${r.config.drainLimit}, wake after ${r.config.wakeItems} items`,
  ];
}

const NOTE = [
  "Per-run medians: prod ns/item = producer's time pushing (posting), full-slot",
  "pauses excluded; cons ns/item = consumer's time outside Waiter.sleep;",
  "sleeps/wakes = consumer sleeps / producer notifies; full = producer",
  "PUSH_FULL pauses; busy = consumer pauses on a push caught mid-window.",
].join("\n");

/**
 * Renders the results for a terminal.
 *
 * @param r The results.
 * @returns The text, ending in a newline.
 */
export function renderText(r: BenchResults): string {
  return [
    ...header(r),
    "",
    ...alignTable(streamRows(r)),
    NOTE,
    "",
    ...alignTable(costRows(r)),
    "",
    `total ${fixed(r.totalSeconds, 1)} s`,
    "",
  ].join("\n");
}

/**
 * Renders the results as Markdown.
 *
 * @param r The results.
 * @returns The document, ending in a newline.
 */
export function renderMarkdown(r: BenchResults): string {
  return [
    "# twloop benchmark: latest run",
    "",
    "Written by `deno task bench`; do not edit by hand.",
    "",
    ...header(r).map((l) => `- ${l}`),
    "",
    "## Integer stream, worker to main thread",
    "",
    ...markdownTable(streamRows(r)),
    "",
    NOTE,
    "",
    "## Per-item cost on one thread (no cache-line traffic)",
    "",
    ...markdownTable(costRows(r)),
    "",
  ].join("\n");
}
