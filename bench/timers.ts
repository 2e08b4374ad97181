/**
 * Bench section: timers. 10^6 timers scheduled then fired, and 10^6 pending
 * timers cancelled, with twloop's `Loop.setTimer` and with Deno's
 * `setTimeout` doing the same work in the same process.
 *
 * What is measured, per run, on one thread:
 *
 * - insert: the synchronous loop that schedules every timer;
 * - fire: from the end of that loop to the return of the last callback
 *   (`Loop.runSync()` for twloop; the host event loop for `setTimeout`);
 * - cancel: a loop that cancels every pending timer (`Timer.cancel()`,
 *   `clearTimeout`); afterwards the run checks that none fires.
 *
 * Delays are whole milliseconds, as `setTimeout` takes them: random in
 * `0..SPAN_MS` from a seeded PRNG (many deadlines, spread over the span), or
 * all equal. Because the span is short, every deadline has passed, or is at
 * most `SPAN_MS` away, when firing begins, so a real-clock fire phase holds
 * at most that much waiting; twloop reports the time it actually slept
 * (`idle`). twloop runs twice: with its `RealClock` (the same clock reads
 * and waiting as `setTimeout`) and with a `VirtualClock` advanced past the
 * last deadline before the run (pure CPU cost: no clock reads, no waiting).
 *
 * Implementations alternate within each round so drift hits them alike.
 * Every run counts its callbacks and fails on a miss or an extra.
 *
 * @module
 */

import { Loop, RealClock, type Timer, VirtualClock } from "../mod.ts";
import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";
import { fixed, summarize, type Summary } from "./stats.ts";

/** Random delays are whole milliseconds from 0 to this. */
export const SPAN_MS = 10;
/** The delay of the equal-delay scenario, ms. */
export const EQUAL_DELAY_MS = 1;
/** Seed of the delay generator. */
export const SEED = 0x7431;
/** The goal: twloop's total at least this many times faster. */
export const GOAL_SPEEDUP = 20;

/** Timers per run and rounds per mode. */
interface Sizes {
  timers: number;
  warmupTimers: number;
  rounds: number;
}

function sizesFor(s: SectionSettings): Sizes {
  // One round at 10^6 (setTimeout fires twice and cancels once, twloop
  // fires four times and cancels once) takes ~20 s here, so normal mode
  // spends ~2 minutes on its 5 rounds; quick mode keeps 20,000 timers, too
  // few to judge the 10^6 goal (the verdict says so).
  return s.quick
    ? { timers: 20_000, warmupTimers: 20_000, rounds: s.reps }
    : { timers: 1_000_000, warmupTimers: 20_000, rounds: s.reps };
}

/** One run: phase times in ms. */
interface Sample {
  insertMs: number;
  /** Fire or cancel phase. */
  phaseMs: number;
  /** Time twloop slept in the fire phase (NaN where unknown). */
  idleMs: number;
}

interface Impl {
  id: string;
  label: string;
  run: (delays: Int32Array) => Promise<Sample>;
}

interface Scenario {
  id: string;
  label: string;
  kind: "fire" | "cancel";
  delays: (n: number) => Int32Array;
  impls: readonly Impl[];
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomDelays(n: number): Int32Array {
  const next = prng(SEED);
  const d = new Int32Array(n);
  for (let i = 0; i < n; i++) d[i] = Math.floor(next() * (SPAN_MS + 1));
  return d;
}

function equalDelays(n: number): Int32Array {
  return new Int32Array(n).fill(EQUAL_DELAY_MS);
}

function maxOf(delays: Int32Array): number {
  let m = 0;
  for (let i = 0; i < delays.length; i++) if (delays[i] > m) m = delays[i];
  return m;
}

function fail(what: string, got: number, want: number): never {
  throw new Error(
    `Cannot measure timers: ${what} ${got} callbacks, want ${want}`,
  );
}

function setTimeoutFire(delays: Int32Array): Promise<Sample> {
  const n = delays.length;
  return new Promise((resolve) => {
    let fired = 0;
    let t1 = 0;
    const t0 = performance.now();
    const cb = () => {
      if (++fired === n) {
        resolve({
          insertMs: t1 - t0,
          phaseMs: performance.now() - t1,
          idleMs: NaN,
        });
      }
    };
    for (let i = 0; i < n; i++) setTimeout(cb, delays[i]);
    t1 = performance.now();
  });
}

/**
 * The loops of the twloop runs, one per clock, each kept for every run (a
 * program keeps its loop, as the host keeps its timer structures between
 * the `setTimeout` runs). The warm-up round is smaller than the measured
 * ones, so each loop's first measured run grows its timer store to the
 * run's size (for `setTimeout` too: the first run at that size) and shows
 * in the min–max; later runs reuse it. Closed at the end of the section.
 */
const loops = new Map<string, Loop>();

function benchLoop(kind: "real" | "virtual" | "cancel"): Loop {
  let loop = loops.get(kind);
  if (loop === undefined) {
    const clock = kind === "virtual" ? new VirtualClock() : new RealClock();
    loop = new Loop({ clock });
    loops.set(kind, loop);
  }
  return loop;
}

function closeBenchLoops(): void {
  for (const loop of loops.values()) loop.close();
  loops.clear();
}

function twloopFire(delays: Int32Array, virtual: boolean): Sample {
  const n = delays.length;
  const loop = benchLoop(virtual ? "virtual" : "real");
  const clock = loop.clock;
  const before = loop.metrics();
  let fired = 0;
  const cb = () => {
    fired++;
  };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) loop.setTimer(cb, delays[i]);
  const t1 = performance.now();
  // Every deadline passed before the first pass: the same start as a real
  // clock whose insert phase outlasted the span, minus the clock reads.
  if (clock instanceof VirtualClock) clock.advance(maxOf(delays));
  loop.runSync();
  const t2 = performance.now();
  const m = loop.metrics();
  const timersFired = m.timersFired - before.timersFired;
  if (fired !== n || timersFired !== n) fail("fired", fired, n);
  return {
    insertMs: t1 - t0,
    phaseMs: t2 - t1,
    idleMs: m.idleMs - before.idleMs,
  };
}

async function clearTimeoutCancel(delays: Int32Array): Promise<Sample> {
  const n = delays.length;
  const ids: ReturnType<typeof setTimeout>[] = new Array(n);
  let fired = 0;
  const cb = () => {
    fired++;
  };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) ids[i] = setTimeout(cb, delays[i]);
  const t1 = performance.now();
  for (let i = 0; i < n; i++) clearTimeout(ids[i]);
  const t2 = performance.now();
  // Past every deadline: a cancelled timer that still fired would show.
  await new Promise((r) => setTimeout(r, maxOf(delays) + 5));
  if (fired !== 0) fail("cancelled timers fired", fired, 0);
  return { insertMs: t1 - t0, phaseMs: t2 - t1, idleMs: NaN };
}

function twloopCancel(delays: Int32Array): Sample {
  const n = delays.length;
  const loop = benchLoop("cancel");
  const timers: Timer[] = new Array(n);
  let fired = 0;
  const cb = () => {
    fired++;
  };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) timers[i] = loop.setTimer(cb, delays[i]);
  const t1 = performance.now();
  for (let i = 0; i < n; i++) timers[i].cancel();
  const t2 = performance.now();
  const pending = loop.metrics().pendingTimers;
  loop.runSync(); // nothing keeps it alive: returns without a pass
  if (pending !== 0) fail("still pending", pending, 0);
  if (fired !== 0) fail("cancelled timers fired", fired, 0);
  return { insertMs: t1 - t0, phaseMs: t2 - t1, idleMs: NaN };
}

const FIRE_IMPLS: readonly Impl[] = [
  { id: "setTimeout", label: "setTimeout", run: setTimeoutFire },
  {
    id: "twloopReal",
    label: "twloop, RealClock",
    run: (d) => Promise.resolve(twloopFire(d, false)),
  },
  {
    id: "twloopVirtual",
    label: "twloop, VirtualClock",
    run: (d) => Promise.resolve(twloopFire(d, true)),
  },
];

const SCENARIOS: readonly Scenario[] = [
  {
    id: "random",
    label: `random 0..${SPAN_MS} ms`,
    kind: "fire",
    delays: randomDelays,
    impls: FIRE_IMPLS,
  },
  {
    id: "equal",
    label: `all ${EQUAL_DELAY_MS} ms`,
    kind: "fire",
    delays: equalDelays,
    impls: FIRE_IMPLS,
  },
  {
    id: "cancel",
    label: `cancel, random 0..${SPAN_MS} ms`,
    kind: "cancel",
    delays: randomDelays,
    impls: [
      { id: "clearTimeout", label: "clearTimeout", run: clearTimeoutCancel },
      {
        id: "twloopCancel",
        label: "twloop Timer.cancel",
        run: (d) => Promise.resolve(twloopCancel(d)),
      },
    ],
  },
];

/** Summaries of one implementation in one scenario. */
interface Cell {
  scenario: string;
  impl: string;
  timers: number;
  insertNs: Summary;
  phaseNs: Summary;
  totalMs: Summary;
  idleMs: number;
  samples: Sample[];
}

/**
 * The list turned left by `by`: each round starts with a different
 * implementation, so none always runs right after another's garbage.
 */
export function rotate<T>(list: readonly T[], by: number): T[] {
  const k = ((by % list.length) + list.length) % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

async function measure(s: SectionSettings, z: Sizes): Promise<Cell[]> {
  const runs = new Map<string, Sample[]>();
  const key = (sc: Scenario, im: Impl) => `${sc.id}/${im.id}`;
  const delays = new Map<string, Int32Array>();
  for (let round = -1; round < z.rounds; round++) {
    s.progress(round < 0 ? "timers warm-up" : ` ${round + 1}`);
    const n = round < 0 ? z.warmupTimers : z.timers;
    for (const sc of SCENARIOS) {
      const id = `${sc.id}/${n}`;
      if (!delays.has(id)) delays.set(id, sc.delays(n));
      for (const im of rotate(sc.impls, round)) {
        const sample = await im.run(delays.get(id)!);
        if (round < 0) continue;
        const list = runs.get(key(sc, im)) ?? [];
        list.push(sample);
        runs.set(key(sc, im), list);
      }
    }
  }
  s.progress("\n");
  const perNs = 1e6 / z.timers;
  return SCENARIOS.flatMap((sc) =>
    sc.impls.map((im) => {
      const samples = runs.get(key(sc, im))!;
      const idle = samples.map((r) => r.idleMs).filter((v) => !isNaN(v));
      return {
        scenario: sc.id,
        impl: im.id,
        timers: z.timers,
        insertNs: summarize(samples.map((r) => r.insertMs * perNs)),
        phaseNs: summarize(samples.map((r) => r.phaseMs * perNs)),
        totalMs: summarize(samples.map((r) => r.insertMs + r.phaseMs)),
        idleMs: idle.length > 0 ? summarize(idle).median : NaN,
        samples,
      };
    })
  );
}

function ns(x: Summary): string {
  return `${x.median.toFixed(0)} (${x.min.toFixed(0)}–${x.max.toFixed(0)})`;
}

function times(base: number, x: number): string {
  return `${fixed(base / x, 1)}x`;
}

/** Speed-ups of a cell over its scenario's host baseline (medians). */
function speedups(cell: Cell, base: Cell) {
  return {
    insert: base.insertNs.median / cell.insertNs.median,
    phase: base.phaseNs.median / cell.phaseNs.median,
    total: base.totalMs.median / cell.totalMs.median,
  };
}

function render(cells: Cell[], z: Sizes): BenchSection {
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  for (const sc of SCENARIOS) {
    const mine = cells.filter((c) => c.scenario === sc.id);
    const base = mine[0];
    for (const [i, c] of mine.entries()) {
      const up = speedups(c, base);
      const label = sc.impls[i].label;
      rows.push([
        sc.label,
        label,
        ns(c.insertNs),
        sc.kind === "fire" ? ns(c.phaseNs) : "-",
        sc.kind === "cancel" ? ns(c.phaseNs) : "-",
        fixed(c.totalMs.median, 1),
        `${fixed(c.totalMs.min, 1)}–${fixed(c.totalMs.max, 1)}`,
        isNaN(c.idleMs) ? "-" : fixed(c.idleMs, 1),
        i === 0
          ? "1.0x"
          : `${times(base.insertNs.median, c.insertNs.median)} / ${
            times(base.phaseNs.median, c.phaseNs.median)
          } / ${times(base.totalMs.median, c.totalMs.median)}`,
      ]);
      data[`${sc.id}/${c.impl}`] = { ...c, speedupVsHost: up };
    }
  }
  const verdict = (scenario: string, impl: string) => {
    const mine = cells.filter((c) => c.scenario === scenario);
    const up = speedups(mine.find((c) => c.impl === impl)!, mine[0]).total;
    return `${fixed(up, 1)}x (${up >= GOAL_SPEEDUP ? "met" : "NOT met"})`;
  };
  const atGoalSize = z.timers >= 1_000_000
    ? ""
    : ` (quick mode: ${z.timers.toLocaleString("en-US")} timers, not the ` +
      "goal's 10^6: indicative only)";
  return {
    id: "timers",
    title: "Timers: schedule and fire, cancel (one thread)",
    notes: [
      `${z.timers.toLocaleString("en-US")} timers per run, one shared ` +
      `callback; delays whole ms, random 0..${SPAN_MS} (mulberry32, seed ` +
      `${SEED}) or all ${EQUAL_DELAY_MS}. One warm-up round of ` +
      `${z.warmupTimers.toLocaleString("en-US")}, then ${z.rounds} rounds, ` +
      "implementations interleaved (the order turns each round); every run " +
      "counts its callbacks. twloop keeps one loop per clock for every " +
      "run, as a program keeps its loop (and the host its timer " +
      "structures): the first measured run grows the timer store to the " +
      "run's size (it shows in min–max), later runs reuse it.",
      "insert = the scheduling loop; fire = end of that loop to the last " +
      "callback (runSync for twloop, the host event loop for setTimeout); " +
      "cancel = cancelling every pending timer. ns per timer: median " +
      "(min–max); total = insert + fire (or cancel), ms.",
      `Real-clock fire phases include waiting for deadlines at most ${SPAN_MS} ` +
      "ms past the insert loop; idle = what twloop actually slept. " +
      "VirtualClock: the clock is advanced past the last deadline before " +
      "runSync, so no clock reads and no waiting (pure CPU cost).",
      "speed-up = setTimeout (clearTimeout) median / this median, for " +
      "insert / fire-or-cancel / total.",
      `Goal: total >= ${GOAL_SPEEDUP}x setTimeout, judged on RealClock (the ` +
      "same clock reads and waiting as setTimeout): random delays " +
      `${verdict("random", "twloopReal")}, equal delays ` +
      `${verdict("equal", "twloopReal")}${atGoalSize}. VirtualClock, ` +
      `reference only: random ${verdict("random", "twloopVirtual")}, equal ` +
      `${verdict("equal", "twloopVirtual")}.`,
    ],
    columns: [
      "delays",
      "implementation",
      "insert ns/timer",
      "fire ns/timer",
      "cancel ns/timer",
      "total ms",
      "min–max ms",
      "idle ms",
      "speed-up ins / phase / total",
    ],
    rows,
    data: {
      timers: z.timers,
      warmupTimers: z.warmupTimers,
      rounds: z.rounds,
      spanMs: SPAN_MS,
      equalDelayMs: EQUAL_DELAY_MS,
      seed: SEED,
      cells: data,
    },
  };
}

/**
 * Runs the timer section.
 *
 * @param s Section settings.
 * @returns The table.
 * @throws {Error} A run fired too few or too many callbacks.
 */
export const runTimers: SectionRunner = async (s) => {
  const z = sizesFor(s);
  let cells;
  try {
    cells = await measure(s, z);
  } finally {
    closeBenchLoops();
  }
  return render(cells, z);
};
