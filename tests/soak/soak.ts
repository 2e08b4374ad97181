/**
 * `deno task soak`: producer workers post a long stream of mixed payloads
 * into one loop, under backpressure, with timers set and cancelled alongside;
 * every message is checked for exactly-once, per-producer FIFO delivery and
 * intact content, and memory is sampled throughout.
 *
 * Run: `deno task soak` (10^8 messages from 8 workers), or
 * `deno task soak --messages N --workers W --seed S`. `tests/soak_test.ts`
 * runs a short variant.
 *
 * The task bounds every isolate's V8 heap (`--max-old-space-size=32`,
 * `--max-semi-space-size=2`, in MB): with V8's defaults each of the 9
 * isolates grows its young and old generations for minutes, so RSS rose
 * from ~490 to ~800 MiB over 10^8 messages even though no heap leaked
 * (the same run with these bounds stays at 230-270 MiB). With the bounds, a
 * leak cannot hide in heap growth: it fails the run with an out-of-memory
 * error, and flat RSS means flat memory.
 *
 * @module
 */

import { Loop, spawnWorker, type Timer } from "../../mod.ts";
import { rng } from "../rng.ts";
import { check } from "./payloads.ts";
import type { SoakJob } from "./soak_worker.ts";

/** Soak settings. */
export interface SoakOptions {
  /** Messages in total, split evenly over the workers. */
  messages: number;
  /** Producer workers. */
  workers: number;
  /** Seed of every random choice; printed so a run can be replayed. */
  seed: number;
  /** Milliseconds between progress samples (default 1000). */
  sampleMs?: number;
  /** Receives one line per sample (default: none). */
  log?: (line: string) => void;
}

/** One memory sample. */
export interface SoakSample {
  /** Messages delivered so far. */
  delivered: number;
  /** Milliseconds since the start. */
  ms: number;
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heapUsed: number;
}

/** What a soak run saw. */
export interface SoakResult {
  delivered: number;
  ms: number;
  /** Times a worker's `tryPost` found its port full (then waited). */
  refused: number;
  timersSet: number;
  timersFired: number;
  timersCancelled: number;
  samples: SoakSample[];
  /** Memory after warm-up (the first sample past 20% of the messages). */
  warm: SoakSample;
  /** Memory at the end. */
  end: SoakSample;
}

/** Messages between timer operations in the loop. */
const TIMER_EVERY = 4096;

function sample(delivered: number, started: number): SoakSample {
  const m = Deno.memoryUsage();
  return {
    delivered,
    ms: performance.now() - started,
    rss: m.rss,
    heapUsed: m.heapUsed,
  };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * Runs a soak.
 *
 * @param o Settings.
 * @returns What it saw.
 * @throws {Error} A message was lost, duplicated, reordered or corrupt, or a
 *   timer both fired and was cancelled.
 */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const per = Math.ceil(o.messages / o.workers);
  const random = rng(o.seed);
  const loop = new Loop({
    maxEvents: 256,
    capacity: { producers: o.workers + 1, nodesPerProducer: 1024 },
  });
  const next = new Map<number, number>(); // slot -> expected sequence
  const ids = new Map<number, number>(); // slot -> worker id
  let delivered = 0;
  let refused = 0;
  let done = 0;
  const timers: { timer: Timer; fired: boolean; cancelled: boolean }[] = [];
  let timersFired = 0;
  let timersCancelled = 0;

  loop.onMessage = (data, slot) => {
    if (typeof data === "object" && data !== null && "done" in data) {
      const d = data as { done: number; refused: number };
      if (next.get(slot) !== per || d.done !== ids.get(slot)) {
        throw new Error(
          `Worker ${ids.get(slot)} ended after ${
            next.get(slot)
          } of ${per} messages`,
        );
      }
      refused += d.refused;
      done++;
      return;
    }
    const seq = check(data);
    const want = next.get(slot)!;
    if (seq !== want) {
      throw new Error(
        `Worker ${
          ids.get(slot)
        }: expected message ${want}, got ${seq} (seed ${o.seed})`,
      );
    }
    next.set(slot, want + 1);
    if (++delivered % TIMER_EVERY === 0) timerStep();
  };

  // Every TIMER_EVERY messages a one-shot timer is set; every other time the
  // oldest timer still pending is cancelled from this callback instead.
  function timerStep(): void {
    const entry = { fired: false, cancelled: false } as {
      timer: Timer;
      fired: boolean;
      cancelled: boolean;
    };
    entry.timer = loop.setTimer(() => {
      if (entry.cancelled) throw new Error("A cancelled timer fired");
      entry.fired = true;
      timersFired++;
    }, random() * 3);
    timers.push(entry);
    if (timers.length % 2 === 0) {
      const victim = timers.find((t) => !t.fired && !t.cancelled);
      if (victim) {
        victim.timer.cancel();
        victim.cancelled = true;
        timersCancelled++;
      }
    }
  }

  const started = performance.now();
  const samples: SoakSample[] = [sample(0, started)];
  const ticker = loop.setTimer(
    () => {
      const s = sample(delivered, started);
      samples.push(s);
      o.log?.(
        `${(s.ms / 1000).toFixed(1)} s  ${
          delivered.toLocaleString("en")
        } msgs  ` +
          `${(delivered / s.ms / 1000).toFixed(2)} M/s  rss ${
            mib(s.rss)
          }  heap ${mib(s.heapUsed)}`,
      );
    },
    o.sampleMs ?? 1000,
    o.sampleMs ?? 1000,
  ).unref();

  const workers = [];
  for (let id = 0; id < o.workers; id++) {
    const job: SoakJob = { id, count: per, seed: o.seed };
    const w = spawnWorker(loop, new URL("./soak_worker.ts", import.meta.url), {
      data: job,
      name: `soak-${id}`,
    });
    next.set(w.slot, 0);
    ids.set(w.slot, id);
    workers.push(w);
  }
  try {
    await loop.run(); // ends when every port has closed and every timer ran
  } finally {
    ticker.cancel();
    for (const w of workers) w.terminate();
    loop.close();
  }
  const end = sample(delivered, started);
  samples.push(end);
  if (done !== o.workers || delivered !== per * o.workers) {
    throw new Error(
      `Soak ended with ${done} of ${o.workers} workers done and ${delivered} of ${
        per * o.workers
      } messages delivered`,
    );
  }
  if (timers.some((t) => t.fired === t.cancelled)) {
    throw new Error("A timer neither fired nor was cancelled, or both");
  }
  const warm = samples.find((s) => s.delivered >= 0.2 * delivered) ?? end;
  return {
    delivered,
    ms: end.ms,
    refused,
    timersSet: timers.length,
    timersFired,
    timersCancelled,
    samples,
    warm,
    end,
  };
}

function parse(args: readonly string[]): SoakOptions {
  const o: SoakOptions = {
    messages: 1e8,
    workers: 8,
    seed: Date.now() % 1e6,
  };
  const usage = "options are --messages N, --workers N, --seed N";
  const rest = args[0] === "--" ? args.slice(1) : args;
  for (let i = 0; i < rest.length; i++) {
    const m = /^--(messages|workers|seed)(?:=(.*))?$/.exec(rest[i]);
    if (!m) throw new RangeError(`Cannot parse ${rest[i]}: ${usage}`);
    const text = m[2] ?? rest[++i];
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < (m[1] === "seed" ? 0 : 1)) {
      throw new RangeError(
        `Cannot parse --${m[1]}: expected a whole number, got ${
          JSON.stringify(text)
        }`,
      );
    }
    o[m[1] as "messages" | "workers" | "seed"] = n;
  }
  return o;
}

if (import.meta.main) {
  let o: SoakOptions;
  try {
    o = parse(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
  console.log(
    `soak: ${
      o.messages.toLocaleString("en")
    } messages from ${o.workers} workers, seed ${o.seed}`,
  );
  const r = await runSoak({ ...o, log: console.log });
  const growth = r.end.heapUsed - r.warm.heapUsed;
  const rssGrowth = r.end.rss - r.warm.rss;
  console.log(
    `delivered ${r.delivered.toLocaleString("en")} messages in ${
      (r.ms / 1000).toFixed(1)
    } s ` +
      `(${
        (r.delivered / r.ms / 1000).toFixed(2)
      } M/s), each exactly once, in order, intact`,
  );
  console.log(
    `backpressure: tryPost refused ${r.refused} times; timers set ${r.timersSet}, ` +
      `fired ${r.timersFired}, cancelled ${r.timersCancelled}`,
  );
  console.log(
    `memory: start rss ${mib(r.samples[0].rss)} heap ${
      mib(r.samples[0].heapUsed)
    }; ` +
      `after warm-up rss ${mib(r.warm.rss)} heap ${mib(r.warm.heapUsed)}; ` +
      `end rss ${mib(r.end.rss)} heap ${mib(r.end.heapUsed)}`,
  );
  // Flat: the heap may breathe with GC but not climb with the message count.
  const flat = growth < 32 * 2 ** 20 && rssGrowth < 64 * 2 ** 20;
  console.log(
    `memory after warm-up: heap ${growth >= 0 ? "+" : ""}${mib(growth)}, rss ${
      rssGrowth >= 0 ? "+" : ""
    }${mib(rssGrowth)}: ${flat ? "flat" : "GROWING"}`,
  );
  if (!flat) Deno.exit(1);
}
