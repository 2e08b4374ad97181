/**
 * `deno task bench`: twloop's queue against `Worker.postMessage`.
 *
 * 1. Log the machine: Deno version, CPUs, core-to-core transfer time.
 * 2. Stream integers from one producer worker to the main thread through
 *    each transport: `postMessage`, queue `push`, queue `pushBatch` of 16
 *    and of 64. One warm-up run each, then the measured runs, interleaved
 *    so drift hits every transport alike. Every run verifies delivery.
 * 3. Measure same-thread per-item costs (drain of a 1024 backlog, push).
 * 4. Print a table; write `bench/results/latest.json` and `latest.md`.
 *
 * Options: `--quick` (fewer items and 3 repetitions instead of 5: a smoke run,
 * ~40 s on a 2-vCPU VM), `--items=N`, `--reps=N`.
 *
 * @module
 */

import { SPIN_BUDGET_MS } from "./backoff.ts";
import { measureCoreToCore } from "./core_to_core.ts";
import { isolated } from "./isolated.ts";
import { measureItemCosts } from "./item_costs.ts";
import { POST_PRODUCER, runPostStream } from "./post_ints.ts";
import {
  DRAIN_LIMIT,
  MIN_WAIT_MS,
  QUEUE_PRODUCER,
  runQueueStream,
  STREAM_QUEUE,
  type StreamSample,
  WAKE_ITEMS,
} from "./queue_ints.ts";
import {
  type BenchResults,
  renderMarkdown,
  renderText,
  type TransportResult,
} from "./report.ts";
import type { BenchSection, SectionRunner } from "./section.ts";
import { alignTable, markdownTable, summarize } from "./stats.ts";
import { spawnWorker } from "./worker_control.ts";

interface Settings {
  mode: "normal" | "quick";
  items: number;
  reps: number;
  costRounds: number;
  pingSamples: number;
}

const MODES: Record<Settings["mode"], Settings> = {
  normal: {
    mode: "normal",
    items: 2_000_000,
    reps: 5,
    costRounds: 2000,
    pingSamples: 200,
  },
  quick: {
    mode: "quick",
    items: 200_000,
    reps: 3,
    costRounds: 300,
    pingSamples: 50,
  },
};

interface Transport {
  id: string;
  label: string;
  script: string;
  run: (worker: Worker, items: number) => Promise<StreamSample>;
}

const TRANSPORTS: readonly Transport[] = [
  {
    id: "postMessage",
    label: "postMessage",
    script: POST_PRODUCER,
    run: runPostStream,
  },
  {
    id: "push",
    label: "twloop push",
    script: QUEUE_PRODUCER,
    run: (w, n) => runQueueStream(w, n, 1),
  },
  {
    id: "pushBatch16",
    label: "twloop pushBatch 16",
    script: QUEUE_PRODUCER,
    run: (w, n) => runQueueStream(w, n, 16),
  },
  {
    id: "pushBatch64",
    label: "twloop pushBatch 64",
    script: QUEUE_PRODUCER,
    run: (w, n) => runQueueStream(w, n, 64),
  },
];

/**
 * Further scenarios, each against its own baseline in this run. Add a
 * section by exporting a {@linkcode SectionRunner} and listing it here.
 */
const SECTIONS: readonly SectionRunner[] = [
  // Each in a fresh worker (see isolated.ts): V8 keeps type feedback per
  // call site for the whole isolate, so a section run after others would
  // measure call sites they made polymorphic (drain callbacks; the
  // WebAssembly instances of their queues, see runtime/wasm_atomics.ts).
  isolated("./bursty.ts", "runBursty"),
  isolated("./drain_gap.ts", "runDrainGap"),
  isolated("./throughput.ts", "runThroughput"),
  isolated("./push_latency.ts", "runPushLatency"),
  isolated("./wake_latency.ts", "runWakeLatency"),
  isolated("./lazy_wake.ts", "runLazyWake"),
  isolated("./timers.ts", "runTimers"),
  isolated("./dispatch.ts", "runDispatch"),
  isolated("./payloads.ts", "runPayloadSection"),
];

function renderSection(b: BenchSection, markdown: boolean): string {
  const table = [b.columns, ...b.rows];
  const lines = markdown
    ? [`## ${b.title}`, "", ...b.notes, "", ...markdownTable(table)]
    : [b.title, ...b.notes, "", ...alignTable(table)];
  return lines.join("\n") + "\n";
}

const RESULTS_DIR = new URL("./results/", import.meta.url);

function positiveInt(arg: string, name: string): number {
  const n = Number(arg.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot parse ${arg}: expected a positive integer`);
  }
  return n;
}

function parseArgs(args: readonly string[]): Settings {
  const settings = { ...MODES[args.includes("--quick") ? "quick" : "normal"] };
  for (const arg of args) {
    if (arg === "--quick") continue;
    if (arg.startsWith("--items=")) {
      settings.items = positiveInt(arg, "items");
    } else if (arg.startsWith("--reps=")) {
      settings.reps = positiveInt(arg, "reps");
    } else {
      throw new TypeError(
        `Cannot parse ${arg}: options are --quick, --items=N, --reps=N`,
      );
    }
  }
  return settings;
}

function progress(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}

function median(samples: StreamSample[], f: (s: StreamSample) => number) {
  return summarize(samples.map(f)).median;
}

/**
 * Runs every transport `1 + reps` times, interleaved. Each transport keeps
 * one worker for all its runs, so the warm-up run also warms the worker.
 */
async function runStreams(s: Settings): Promise<Map<string, StreamSample[]>> {
  const runs = new Map(TRANSPORTS.map((t) => [t.id, [] as StreamSample[]]));
  const workers = TRANSPORTS.map((t) => spawnWorker(t.script));
  try {
    for (let rep = -1; rep < s.reps; rep++) {
      progress(rep < 0 ? "stream warm-up" : ` ${rep + 1}`);
      for (const [i, t] of TRANSPORTS.entries()) {
        const sample = await t.run(workers[i], s.items);
        if (rep >= 0) runs.get(t.id)!.push(sample);
      }
    }
  } finally {
    for (const w of workers) w.terminate();
  }
  progress("\n");
  return runs;
}

function summarizeStreams(
  runs: Map<string, StreamSample[]>,
  items: number,
): Record<string, TransportResult> {
  const nsPerItem = 1e6 / items;
  const base = summarize(runs.get("postMessage")!.map((r) => r.perSecond));
  return Object.fromEntries(TRANSPORTS.map((t) => {
    const samples = runs.get(t.id)!;
    const perSecond = summarize(samples.map((r) => r.perSecond));
    const result: TransportResult = {
      label: t.label,
      perSecond,
      ms: summarize(samples.map((r) => r.ms)),
      ratioVsPostMessage: perSecond.median / base.median,
      counters: {
        sleeps: median(samples, (r) => r.sleeps),
        wakes: median(samples, (r) => r.wakes),
        busy: median(samples, (r) => r.busy),
        fullStalls: median(samples, (r) => r.fullStalls),
        producerNs: median(samples, (r) => (r.pushMs - r.fullMs) * nsPerItem),
        consumerNs: t.id === "postMessage"
          ? NaN
          : median(samples, (r) => (r.ms - r.sleepMs) * nsPerItem),
      },
      samples: samples.map((r) => r.perSecond),
    };
    return [t.id, result];
  }));
}

async function main(): Promise<void> {
  const s = parseArgs(Deno.args);
  const started = performance.now();
  const date = new Date().toISOString();
  console.log(
    `twloop bench: Deno ${Deno.version.deno} (V8 ${Deno.version.v8})\n`,
  );
  progress("core-to-core ping-pong\n");
  const coreToCoreNs = await measureCoreToCore(s.pingSamples);
  const runs = await runStreams(s);
  progress("same-thread item costs\n");
  const itemCostsNs = measureItemCosts(s.costRounds);
  const stream = summarizeStreams(runs, s.items);
  const sections: BenchSection[] = [];
  for (const run of SECTIONS) {
    sections.push(
      await run({ quick: s.mode === "quick", reps: s.reps, progress }),
    );
  }

  const results: BenchResults = {
    deno: { ...Deno.version },
    date,
    mode: s.mode,
    cpus: navigator.hardwareConcurrency,
    items: s.items,
    repetitions: s.reps,
    warmups: 1,
    config: {
      nodesPerProducer: STREAM_QUEUE.nodesPerProducer,
      drainLimit: DRAIN_LIMIT,
      wakeItems: WAKE_ITEMS,
      minWaitMs: MIN_WAIT_MS,
      spinBudgetMs: SPIN_BUDGET_MS,
    },
    coreToCoreNs,
    stream,
    ratiosVsPostMessage: Object.fromEntries(
      Object.entries(stream)
        .filter(([id]) => id !== "postMessage")
        .map(([id, t]) => [id, t.ratioVsPostMessage]),
    ),
    itemCostsNs,
    sections: Object.fromEntries(sections.map((b) => [b.id, b])),
    totalSeconds: (performance.now() - started) / 1000,
  };
  console.log(renderText(results));
  for (const b of sections) console.log(renderSection(b, false));
  await Deno.mkdir(RESULTS_DIR, { recursive: true });
  await Deno.writeTextFile(
    new URL("latest.json", RESULTS_DIR),
    JSON.stringify(results, null, 2) + "\n",
  );
  await Deno.writeTextFile(
    new URL("latest.md", RESULTS_DIR),
    renderMarkdown(results) +
      sections.map((b) => "\n" + renderSection(b, true)).join(""),
  );
  console.log("wrote bench/results/latest.json and bench/results/latest.md");
}

if (import.meta.main) await main();
