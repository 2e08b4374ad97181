/**
 * Bench section: task dispatch on one thread. twloop's `Loop.queue` against
 * the host's ways of running a callback "soon", in the same process.
 *
 * - chain: each task schedules the next, so exactly one is pending at any
 *   time; the time per hop is the round trip through the scheduler.
 * - fan-out: N tasks are scheduled at once, then run; reported as the
 *   scheduling loop, the run, and the two together.
 *
 * Implementations: `Loop.queue` under `runSync()` and under the async drive
 * (`await run()`, which yields a microtask turn between passes of 20 tasks
 * and a macrotask turn every 10 ms); `setImmediate` (Deno 2.9 has it as a
 * typed global, the same function `node:timers` exports, no permission
 * needed; importing `node:timers` instead would retype the global
 * `setTimeout` for the whole `deno check .` program); a
 * `MessageChannel` ping (one message in flight; fan-out: N posts, then
 * receive); `queueMicrotask` (reference only: no macrotask turn, host I/O
 * starves while it runs); `setTimeout(0)` with fewer tasks (Deno clamps a
 * nested 0 ms timeout, ~2 ms per hop measured here, so a full-size chain
 * would take hours).
 *
 * Every run counts the tasks that ran and fails on a miss or an extra.
 * Implementations alternate within each round so drift hits them alike.
 *
 * @module
 */

import { Loop } from "../mod.ts";
import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";
import { fixed, summarize, type Summary } from "./stats.ts";
import { rotate } from "./timers.ts";

/** The goal: twloop chains at least this many times faster. */
export const GOAL_SPEEDUP = 10;

interface Sizes {
  tasks: number;
  /** `setTimeout(0)` chain hops. */
  timeoutChain: number;
  /** `setTimeout(0)` fan-out tasks. */
  timeoutFanOut: number;
  rounds: number;
}

function sizesFor(s: SectionSettings): Sizes {
  // A setImmediate or MessageChannel hop costs ~1-3 µs here: 100,000
  // keeps the section near 6 s in normal mode. A setTimeout(0) chain hop
  // costs ~2 ms; its fan-out ~3-5 µs per timer.
  return s.quick
    ? { tasks: 20_000, timeoutChain: 10, timeoutFanOut: 2_000, rounds: s.reps }
    : {
      tasks: 100_000,
      timeoutChain: 100,
      timeoutFanOut: 20_000,
      rounds: s.reps,
    };
}

/** One run, ms. */
interface Sample {
  /** Fan-out: the scheduling loop; chain: 0. */
  queueMs: number;
  /** From the end of scheduling to the last task's return. */
  runMs: number;
}

type Pattern = "chain" | "fanOut";

interface Impl {
  id: string;
  label: string;
  /** Uses the `setTimeout(0)` sizes instead of `tasks`. */
  slow?: boolean;
  chain: (n: number) => Promise<Sample>;
  fanOut: (n: number) => Promise<Sample>;
}

function check(ran: number, n: number): void {
  if (ran !== n) {
    throw new Error(`Cannot measure dispatch: ${ran} tasks ran, want ${n}`);
  }
}

/** Schedules each hop with `hop`; resolves after `n` tasks ran. */
function hostChain(
  n: number,
  hop: (task: () => void) => void,
): Promise<Sample> {
  return new Promise((resolve) => {
    let ran = 0;
    const t0 = performance.now();
    const task = () => {
      if (++ran < n) return hop(task);
      resolve({ queueMs: 0, runMs: performance.now() - t0 });
    };
    hop(task);
  });
}

/** Schedules `n` tasks with `hop`, then resolves when all ran. */
function hostFanOut(
  n: number,
  hop: (task: () => void) => void,
): Promise<Sample> {
  return new Promise((resolve) => {
    let ran = 0;
    let t1 = 0;
    const task = () => {
      if (++ran === n) {
        resolve({ queueMs: t1 - t0, runMs: performance.now() - t1 });
      }
    };
    const t0 = performance.now();
    for (let i = 0; i < n; i++) hop(task);
    t1 = performance.now();
  });
}

/** A MessageChannel whose every message runs the task given last. */
async function withChannel(
  n: number,
  body: (n: number, hop: (task: () => void) => void) => Promise<Sample>,
): Promise<Sample> {
  const ch = new MessageChannel();
  let next: () => void = () => {};
  ch.port1.onmessage = () => next();
  try {
    return await body(n, (task) => {
      next = task;
      ch.port2.postMessage(null);
    });
  } finally {
    ch.port1.close();
    ch.port2.close();
  }
}

function pow2AtLeast(n: number): number {
  let p = 2;
  while (p < n) p *= 2;
  return p;
}

/**
 * The loop the twloop runs of one pattern use: one per pattern, as a program
 * keeps one loop (a loop per run would put a new WebAssembly instance, its
 * queue memory's, behind the same call sites each run, which V8 stops
 * inlining; see `runtime/wasm_atomics.ts`). Chains use the default size;
 * the fan-out a slot sized for its whole backlog plus the close marker.
 * Every chain round runs before the first fan-out, so the chains see one
 * instance.
 */
let shared: { loop: Loop; nodes: number } | undefined;

function benchLoop(nodes: number): Loop {
  if (shared !== undefined && shared.nodes !== nodes) closeBenchLoop();
  shared ??= {
    loop: new Loop({
      capacity: { producers: 1, nodesPerProducer: nodes, bytesPerProducer: 0 },
    }),
    nodes,
  };
  return shared.loop;
}

/** Closes the pattern's loop. */
function closeBenchLoop(): void {
  shared?.loop.close();
  shared = undefined;
}

/** The default loop's slot size (`LoopOptions.capacity`). */
const DEFAULT_NODES = 4096;

async function loopChain(n: number, async: boolean): Promise<Sample> {
  const loop = benchLoop(DEFAULT_NODES);
  const before = loop.metrics().tasks.task;
  let ran = 0;
  const task = () => {
    if (++ran < n) loop.queue(task);
  };
  const t0 = performance.now();
  loop.queue(task);
  if (async) await loop.run();
  else loop.runSync();
  const ms = performance.now() - t0;
  check(ran, n);
  check(loop.metrics().tasks.task - before, n);
  return { queueMs: 0, runMs: ms };
}

async function loopFanOut(n: number, async: boolean): Promise<Sample> {
  const loop = benchLoop(pow2AtLeast(n + 2));
  const before = loop.metrics().tasks.task;
  let ran = 0;
  const task = () => {
    ran++;
  };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) loop.queue(task);
  const t1 = performance.now();
  if (async) await loop.run();
  else loop.runSync();
  const t2 = performance.now();
  check(ran, n);
  check(loop.metrics().tasks.task - before, n);
  return { queueMs: t1 - t0, runMs: t2 - t1 };
}

const IMPLS: readonly Impl[] = [
  {
    id: "setImmediate",
    label: "setImmediate",
    chain: (n) => hostChain(n, (f) => setImmediate(f)),
    fanOut: (n) => hostFanOut(n, (f) => setImmediate(f)),
  },
  {
    id: "messageChannel",
    label: "MessageChannel",
    chain: (n) => withChannel(n, hostChain),
    fanOut: (n) => withChannel(n, hostFanOut),
  },
  {
    id: "twloopSync",
    label: "twloop queue, runSync",
    chain: (n) => loopChain(n, false),
    fanOut: (n) => loopFanOut(n, false),
  },
  {
    id: "twloopAsync",
    label: "twloop queue, await run",
    chain: (n) => loopChain(n, true),
    fanOut: (n) => loopFanOut(n, true),
  },
  {
    id: "queueMicrotask",
    label: "queueMicrotask (reference)",
    chain: (n) => hostChain(n, queueMicrotask),
    fanOut: (n) => hostFanOut(n, queueMicrotask),
  },
  {
    id: "setTimeout0",
    label: "setTimeout(0)",
    slow: true,
    chain: (n) => hostChain(n, (f) => setTimeout(f, 0)),
    fanOut: (n) => hostFanOut(n, (f) => setTimeout(f, 0)),
  },
];

const PATTERNS: readonly Pattern[] = ["chain", "fanOut"];

interface Cell {
  pattern: Pattern;
  impl: string;
  tasks: number;
  queueNs: Summary;
  runNs: Summary;
  totalNs: Summary;
  totalMs: Summary;
  samples: Sample[];
}

async function measure(s: SectionSettings, z: Sizes): Promise<Cell[]> {
  const runs = new Map<string, Sample[]>();
  for (const p of PATTERNS) {
    for (let round = -1; round < z.rounds; round++) {
      const first = p === PATTERNS[0] ? "" : "\n"; // each pattern its line
      s.progress(round < 0 ? `${first}dispatch ${p} warm-up` : ` ${round + 1}`);
      for (const im of rotate(IMPLS, round)) {
        const sample = await im[p](tasksFor(z, im, p));
        if (round < 0) continue;
        const k = `${p}/${im.id}`;
        runs.set(k, [...(runs.get(k) ?? []), sample]);
      }
    }
  }
  s.progress("\n");
  return PATTERNS.flatMap((p) =>
    IMPLS.map((im) => {
      const samples = runs.get(`${p}/${im.id}`)!;
      const n = tasksFor(z, im, p);
      const per = (f: (r: Sample) => number) =>
        summarize(samples.map((r) => (f(r) * 1e6) / n));
      return {
        pattern: p,
        impl: im.id,
        tasks: n,
        queueNs: per((r) => r.queueMs),
        runNs: per((r) => r.runMs),
        totalNs: per((r) => r.queueMs + r.runMs),
        totalMs: summarize(samples.map((r) => r.queueMs + r.runMs)),
        samples,
      };
    })
  );
}

function tasksFor(z: Sizes, im: Impl, p: Pattern): number {
  if (!im.slow) return z.tasks;
  return p === "chain" ? z.timeoutChain : z.timeoutFanOut;
}

/** A ratio with two significant digits below 1, else two decimals. */
function ratio(x: number): string {
  return `${x < 1 ? x.toPrecision(2) : fixed(x, 2)}x`;
}

function speedup(cells: Cell[], c: Cell, base: string): number {
  const b = cells.find((x) => x.pattern === c.pattern && x.impl === base)!;
  return b.totalNs.median / c.totalNs.median;
}

function render(cells: Cell[], z: Sizes): BenchSection {
  const rows = cells.map((c) => {
    const im = IMPLS.find((i) => i.id === c.impl)!;
    const fan = c.pattern === "fanOut";
    return [
      fan ? "fan-out" : "chain",
      im.label,
      c.tasks.toLocaleString("en-US"),
      fixed(c.totalNs.median, 0),
      `${fixed(c.totalNs.min, 0)}–${fixed(c.totalNs.max, 0)}`,
      fan ? fixed(c.queueNs.median, 0) : "-",
      fan ? fixed(c.runNs.median, 0) : "-",
      fixed(c.totalMs.median, 1),
      ratio(speedup(cells, c, "setImmediate")),
      ratio(speedup(cells, c, "messageChannel")),
    ];
  });
  const verdict = (pattern: Pattern) =>
    ["twloopSync", "twloopAsync"].map((id) => {
      const c = cells.find((x) => x.pattern === pattern && x.impl === id)!;
      const a = speedup(cells, c, "setImmediate");
      const b = speedup(cells, c, "messageChannel");
      const met = (x: number) => x >= GOAL_SPEEDUP ? "met" : "NOT met";
      return `${id === "twloopSync" ? "runSync" : "run"} ${fixed(a, 1)}x (${
        met(a)
      }) / ${fixed(b, 1)}x (${met(b)})`;
    }).join(", ");
  const data = Object.fromEntries(cells.map((c) => [
    `${c.pattern}/${c.impl}`,
    {
      ...c,
      vsSetImmediate: speedup(cells, c, "setImmediate"),
      vsMessageChannel: speedup(cells, c, "messageChannel"),
    },
  ]));
  return {
    id: "dispatch",
    title: "Task dispatch on one thread: chains and fan-out",
    notes: [
      `${z.tasks.toLocaleString("en-US")} tasks per run (setTimeout(0): ` +
      `chain ${z.timeoutChain}, fan-out ${z.timeoutFanOut}); one warm-up ` +
      "round, then " +
      `${z.rounds} rounds, implementations interleaved (the order turns ` +
      "each round); every run counts the tasks that ran.",
      "chain: each task schedules the next; ns/task = whole chain / tasks. " +
      "fan-out: schedule all, then run; queue and run ns/task are the two " +
      "phases, ns/task their sum. speed-up = that implementation's median " +
      "ns/task / this one's.",
      "twloop runs of a pattern share one loop, as a program keeps one " +
      "(a loop per run would be a new WebAssembly instance behind the same " +
      "call sites each time): chains the default size, the fan-out one " +
      "sized for its whole backlog (capacity.nodesPerProducer >= tasks + " +
      "2). All chain rounds run before the fan-out rounds.",
      `Goal: twloop chain >= ${GOAL_SPEEDUP}x setImmediate and ` +
      `MessageChannel (vs setImmediate / vs MessageChannel): ${
        verdict("chain")
      }. Fan-out against the same bar, for reference: ${verdict("fanOut")}.`,
    ],
    columns: [
      "pattern",
      "implementation",
      "tasks",
      "ns/task",
      "min–max ns/task",
      "queue ns/task",
      "run ns/task",
      "total ms",
      "vs setImmediate",
      "vs MessageChannel",
    ],
    rows,
    data: {
      tasks: z.tasks,
      timeoutChain: z.timeoutChain,
      timeoutFanOut: z.timeoutFanOut,
      rounds: z.rounds,
      cells: data,
    },
  };
}

/**
 * Runs the dispatch section.
 *
 * @param s Section settings.
 * @returns The table.
 * @throws {Error} A run ran too few or too many tasks.
 */
export const runDispatch: SectionRunner = async (s) => {
  const z = sizesFor(s);
  try {
    return render(await measure(s, z), z);
  } finally {
    closeBenchLoop();
  }
};
