/**
 * Bench section: end-to-end message rate from worker threads into a twloop
 * {@linkcode Loop} on the main thread, against `Worker.postMessage` into the
 * main thread's `onmessage`, for four payloads (see `payload_items.ts`) and
 * 1, 2 and 4 producer workers.
 *
 * - **twloop**: one `Loop` with its default options and capacity; its
 *   producers are started with `spawnWorker(loop, ...)` and post with
 *   `port.post(value)` on the port from `workerPort()`; the main thread
 *   receives each message in `loop.onMessage` and drives the loop with the
 *   async `await loop.run()`, the drive a main thread that also serves host
 *   I/O would use. The goals are judged on this transport.
 * - **twloop runSync** (reference): the same with a second `Loop` and its
 *   own workers, driven by the blocking `loop.runSync()`: the drive of a
 *   thread dedicated to consuming (it starves host I/O meanwhile).
 * - **postMessage**: plain module workers calling `self.postMessage(value)`;
 *   each worker's `onmessage` on the main thread takes the message.
 *
 * Both sides hand each message to the same consumer, which checks its
 * producer's sequence number (per-producer FIFO) and adds up one field
 * (the int, `bytes[0]`, `obj.qty`); a run fails unless every message arrived
 * once, in order, with the expected total. A run starts when the main thread
 * releases the waiting producers (`protocol.ts`) and ends when the last
 * message is taken; msg/s is all producers' messages over that time.
 *
 * Per cell (payload × producer count) each transport first runs a short
 * probe, which sets its message count so that a run lasts about
 * {@linkcode SectionModeConfig.targetMs}; then one warm-up run and `reps`
 * measured runs, the transports interleaved (the order turns each round).
 * Producer workers live for the whole section, so their code stays compiled
 * across cells.
 *
 * Run it alone with `bench/run_sections.ts --only=payloads`.
 *
 * @module
 */

import {
  Loop,
  type SpawnedWorker,
  spawnWorker as spawnLoopWorker,
} from "../mod.ts";
import { Encoder } from "../runtime/codec.ts";
import { readLayout } from "../runtime/queue_layout.ts";
import {
  BYTE_LENGTHS,
  type CloseJob,
  expectedSum,
  itemMaker,
  PAYLOAD_KINDS,
  PAYLOAD_LABELS,
  type PayloadJob,
  type PayloadKind,
  type Trade,
} from "./payload_items.ts";
import { CONTROL_BYTES, type ProducerReport, startRun } from "./protocol.ts";
import type { SectionRunner, SectionSettings } from "./section.ts";
import { fixed, mega, summarize, type Summary } from "./stats.ts";
import { rotate } from "./timers.ts";
import {
  awaitReport,
  isReport,
  prepareWorker,
  spawnWorker,
} from "./worker_control.ts";

/** Producer worker counts, in table order. */
export const PRODUCER_COUNTS = [1, 2, 4] as const;

/** The issue's goals: twloop msg/s over postMessage msg/s, per payload. */
export const GOALS: Readonly<Record<PayloadKind, number>> = {
  int32: 50,
  bytes64: 20,
  bytes4k: 5,
  object: 3,
};

/** Run lengths of one benchmark mode. */
export interface SectionModeConfig {
  /** Wall time one measured run aims at, ms. */
  targetMs: number;
  /** Messages (all producers together) in the probe run of each cell. */
  probeMessages: number;
}

/**
 * Quick: ~45 ms runs (12 cells × 3 transports × 6 runs ≈ 10 s, ~20 s with
 * probes and hand-offs). Normal: ~330 ms runs (≈ 70 s in all).
 */
export const SECTION_MODES: Readonly<
  Record<"quick" | "normal", SectionModeConfig>
> = {
  quick: { targetMs: 45, probeMessages: 4_000 },
  normal: { targetMs: 330, probeMessages: 20_000 },
};

/** A run that has not finished after this long is reported as stuck. */
const STALL_MS = 30_000;

const POST_SCRIPT = "./workers/payload_post.ts";
const PORT_SCRIPT = new URL("./workers/payload_port.ts", import.meta.url);

/** One run, as the consumer saw it. */
export interface RateSample {
  /** Messages, all producers together. */
  count: number;
  /** From the start signal to the last message taken, ms. */
  ms: number;
  /** `count` over `ms`. */
  perSecond: number;
  /** The slowest producer's own time from `GO` to its last post, ms. */
  producerMs: number;
  /** twloop only: loop passes during the run. */
  passes: number;
  /** twloop only: times the loop slept. */
  sleeps: number;
  /** twloop only: notifies producers sent. */
  notifies: number;
}

/** What the consumer tallies during one run. */
class Tally {
  received = 0;
  wrong = 0;
  sum = 0;
  t1 = NaN;
  /** Next expected sequence number per producer. */
  readonly next: Float64Array;
  readonly total: number;
  readonly #last: () => void;

  constructor(total: number, producers: number, last: () => void) {
    this.total = total;
    this.next = new Float64Array(producers);
    this.#last = last;
  }

  /** Counts one message; the last one stops the clock. */
  count(): void {
    if (++this.received === this.total) {
      this.t1 = performance.now();
      this.#last();
    }
  }
}

/** Takes one message from producer `p`. */
type Take = (data: unknown, p: number) => void;

/**
 * The consumer of one payload kind: checks the sequence number, adds up the
 * touched value, counts. Both transports call the same function.
 */
function taker(kind: PayloadKind, t: Tally): Take {
  const next = t.next;
  switch (kind) {
    case "int32":
      return (data, p) => {
        const v = data as number;
        if (v !== next[p]++) t.wrong++;
        t.sum += v;
        t.count();
      };
    case "bytes64":
    case "bytes4k": {
      const len = BYTE_LENGTHS[kind];
      return (data, p) => {
        const b = data as Uint8Array;
        const s = next[p]++;
        if (
          b.length !== len || b[0] !== (s & 255) ||
          b[len - 1] !== ((s >> 8) & 255)
        ) {
          t.wrong++;
        }
        t.sum += b[0];
        t.count();
      };
    }
    case "object":
      return (data, p) => {
        const o = data as Trade;
        if (o.id !== next[p]++) t.wrong++;
        t.sum += o.qty;
        t.count();
      };
  }
}

/**
 * Checks a finished run; throws on any loss, duplicate or reordering.
 *
 * @throws {Error} Delivery was not exactly what the producers sent.
 */
function verify(
  what: string,
  t: Tally,
  kind: PayloadKind,
  perProducer: number,
): void {
  const producers = t.next.length;
  const expected = producers * expectedSum(kind, perProducer);
  const counts = [...t.next];
  if (
    t.received !== t.total || t.wrong !== 0 || t.sum !== expected ||
    counts.some((c) => c !== perProducer)
  ) {
    throw new Error(
      `Cannot trust ${what} ${kind} run: received ${t.received} of ${t.total} ` +
        `(per producer ${counts.join("/")}), ${t.wrong} out of order or ` +
        `corrupt, sum ${t.sum} (expected ${expected})`,
    );
  }
}

/** A transport under test, holding its producer workers. */
interface Transport {
  /** Column label. */
  readonly label: string;
  /** One run: `perProducer` messages from each of the first `n` workers. */
  run(kind: PayloadKind, n: number, perProducer: number): Promise<RateSample>;
  /** Ends the workers. */
  close(): Promise<void>;
}

/** `Worker.postMessage` into the main thread's `onmessage`. */
class PostMessageTransport implements Transport {
  readonly label = "postMessage";
  readonly #workers: Worker[];

  constructor(n: number) {
    this.#workers = Array.from({ length: n }, () => spawnWorker(POST_SCRIPT));
  }

  async run(
    kind: PayloadKind,
    n: number,
    perProducer: number,
  ): Promise<RateSample> {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const job: PayloadJob = { control, kind, count: perProducer };
    const ws = this.#workers.slice(0, n);
    await Promise.all(ws.map((w) => prepareWorker(w, job)));

    const t = new Tally(n * perProducer, n, () => {});
    const take = taker(kind, t);
    const done = Promise.withResolvers<void>();
    let reports = 0;
    let producerMs = 0;
    // Each worker's report follows its last message on the same port.
    ws.forEach((w, p) => {
      w.onmessage = (ev: MessageEvent) => {
        const d = ev.data;
        if (isReport(d)) {
          producerMs = Math.max(producerMs, d.pushMs);
          if (++reports === n) done.resolve();
        } else {
          take(d, p);
        }
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        done.reject(new Error(`Cannot finish postMessage run: ${ev.message}`));
      };
    });
    const stall = setTimeout(
      () => done.reject(new Error(`Cannot finish postMessage run: stalled`)),
      STALL_MS,
    );

    const t0 = performance.now();
    startRun(control);
    try {
      await done.promise;
    } finally {
      clearTimeout(stall);
    }
    verify("postMessage", t, kind, perProducer);
    const ms = t.t1 - t0;
    return {
      count: t.total,
      ms,
      perSecond: t.total / (ms / 1000),
      producerMs,
      passes: NaN,
      sleeps: NaN,
      notifies: NaN,
    };
  }

  close(): Promise<void> {
    for (const w of this.#workers) w.terminate();
    return Promise.resolve();
  }
}

/** How the main thread drives the loop during a run. */
type Drive = "async" | "sync";

/** Ports from `spawnWorker` into one `Loop` on the main thread. */
class TwloopTransport implements Transport {
  readonly label: string;
  readonly loop = new Loop();
  readonly #drive: Drive;
  readonly #workers: SpawnedWorker[];
  /** Producer index by port slot. */
  readonly #index: Int32Array;

  constructor(n: number, drive: Drive) {
    this.#drive = drive;
    this.label = drive === "async" ? "twloop" : "twloop runSync";
    this.#workers = Array.from(
      { length: n },
      () => spawnLoopWorker(this.loop, PORT_SCRIPT),
    );
    this.#index = new Int32Array(
      readLayout(this.loop.buffer, "bench").producers,
    );
    this.#workers.forEach((w, p) => this.#index[w.slot] = p);
  }

  async run(
    kind: PayloadKind,
    n: number,
    perProducer: number,
  ): Promise<RateSample> {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const job: PayloadJob = { control, kind, count: perProducer };
    const ws = this.#workers.slice(0, n).map((w) => w.worker);
    await Promise.all(ws.map((w) => prepareWorker(w, job)));
    // Set before the run: the async drive lets host messages in.
    const reports = Promise.all(ws.map((w) => awaitReport(w, STALL_MS)));

    const loop = this.loop;
    const t = new Tally(n * perProducer, n, () => loop.stop());
    const take = taker(kind, t);
    const index = this.#index;
    loop.onMessage = (data, slot) => take(data, index[slot]);
    let stalled = false;
    const guard = loop.setTimer(() => {
      stalled = true;
      loop.stop();
    }, STALL_MS);
    const m0 = loop.metrics();

    const t0 = performance.now();
    startRun(control);
    if (this.#drive === "async") await loop.run();
    else loop.runSync();
    guard.cancel();
    const m1 = loop.metrics();
    if (stalled) {
      throw new Error(`Cannot finish ${this.label} ${kind} run: stalled`);
    }
    const rs: ProducerReport[] = await reports;
    // Every post has returned: anything still queued would be an extra.
    if (loop.pending() > 0) loop.runNoWait();
    verify(this.label, t, kind, perProducer);
    const ms = t.t1 - t0;
    return {
      count: t.total,
      ms,
      perSecond: t.total / (ms / 1000),
      producerMs: Math.max(...rs.map((r) => r.pushMs)),
      passes: m1.passes - m0.passes,
      sleeps: m1.sleeps - m0.sleeps,
      notifies: m1.notifies - m0.notifies,
    };
  }

  /** Closes every port from its worker; the loop then ends the workers. */
  async close(): Promise<void> {
    const job: CloseJob = { close: true };
    for (const w of this.#workers) w.worker.postMessage(job);
    // Unreferenced: the run ends when the last port closes.
    const guard = this.loop.setTimer(() => this.loop.stop(), STALL_MS).unref();
    this.loop.onMessage = undefined;
    await this.loop.run(); // returns once every port has closed
    guard.cancel();
    this.loop.close();
    for (const w of this.#workers) w.terminate(); // no-op unless stuck
  }
}

/** One cell's results: every transport, same payload and producer count. */
export interface CellResult {
  /** Payload kind. */
  kind: PayloadKind;
  /** Producer workers. */
  producers: number;
  /** Messages per measured run, by transport. */
  messages: Record<string, number>;
  /** msg/s over the measured runs, by transport. */
  perSecond: Record<string, Summary>;
  /** Medians of the twloop counters per run. */
  twloopCounters: {
    passes: number;
    sleeps: number;
    notifies: number;
    /** Slowest producer's GO-to-last-post time per message it sent, ns. */
    producerNs: number;
  };
  /** Median twloop (async drive) msg/s over median postMessage msg/s. */
  ratio: number;
  /** The same for the runSync reference transport. */
  ratioSync: number;
  /** The issue's goal for this payload. */
  goal: number;
  /** Every measured run, by transport, in run order. */
  samples: Record<string, RateSample[]>;
}

function messagesFor(
  probe: RateSample,
  n: number,
  mode: SectionModeConfig,
): number {
  const want = Math.max(
    mode.probeMessages,
    Math.round(probe.perSecond * mode.targetMs / 1000),
  );
  return Math.ceil(want / n);
}

async function runCell(
  transports: readonly Transport[],
  kind: PayloadKind,
  n: number,
  s: SectionSettings,
  mode: SectionModeConfig,
): Promise<CellResult> {
  s.progress(`  ${kind} x${n}:`);
  const perProducer: number[] = [];
  for (const tr of transports) {
    const probe = await tr.run(kind, n, Math.ceil(mode.probeMessages / n));
    perProducer.push(messagesFor(probe, n, mode));
  }
  const samples = transports.map(() => [] as RateSample[]);
  const order = transports.map((_, i) => i);
  for (let rep = -1; rep < s.reps; rep++) {
    s.progress(rep < 0 ? " warm-up" : ` ${rep + 1}`);
    // The order turns each round, so no transport always runs first.
    for (const i of rotate(order, rep)) {
      const tr = transports[i];
      const r = await tr.run(kind, n, perProducer[i]);
      if (rep >= 0) samples[i].push(r);
      else perProducer[i] = messagesFor(r, n, mode);
    }
  }
  s.progress("\n");
  const perSecond = Object.fromEntries(
    transports.map((tr, i) => [
      tr.label,
      summarize(samples[i].map((r) => r.perSecond)),
    ]),
  );
  const tw = samples[transports.findIndex((tr) => tr.label === "twloop")];
  const med = (f: (r: RateSample) => number) => summarize(tw.map(f)).median;
  return {
    kind,
    producers: n,
    messages: Object.fromEntries(
      transports.map((tr, i) => [tr.label, perProducer[i] * n]),
    ),
    perSecond,
    twloopCounters: {
      passes: med((r) => r.passes),
      sleeps: med((r) => r.sleeps),
      notifies: med((r) => r.notifies),
      producerNs: med((r) => r.producerMs * 1e6 / (r.count / n)),
    },
    ratio: perSecond.twloop.median / perSecond.postMessage.median,
    ratioSync: perSecond["twloop runSync"].median /
      perSecond.postMessage.median,
    goal: GOALS[kind],
    samples: Object.fromEntries(
      transports.map((tr, i) => [tr.label, samples[i]]),
    ),
  };
}

function range(x: Summary): string {
  return `${mega(x.min)} – ${mega(x.max)}`;
}

function row(c: CellResult): string[] {
  const pm = c.perSecond.postMessage;
  const tw = c.perSecond.twloop;
  const ts = c.perSecond["twloop runSync"];
  return [
    PAYLOAD_LABELS[c.kind],
    String(c.producers),
    mega(pm.median),
    range(pm),
    mega(tw.median),
    range(tw),
    fixed(1e9 / tw.median, 0),
    `${fixed(c.ratio, 1)}x`,
    `≥${c.goal}x ${c.ratio >= c.goal ? "met" : "MISSED"}`,
    fixed(c.twloopCounters.producerNs, 0),
    `${c.twloopCounters.sleeps}/${c.twloopCounters.notifies}`,
    mega(ts.median),
    range(ts),
    `${fixed(c.ratioSync, 1)}x`,
  ];
}

function verdict(cells: readonly CellResult[]): string {
  const missed = cells.filter((c) => c.ratio < c.goal);
  return missed.length === 0
    ? `all ${cells.length} cells met (await run)`
    : `${cells.length - missed.length} of ${cells.length} cells met ` +
      `(await run); missed: ${
        missed.map((c) =>
          `${PAYLOAD_LABELS[c.kind]} x${c.producers} ${fixed(c.ratio, 1)}x ` +
          `< ${c.goal}x`
        ).join(", ")
      }`;
}

/**
 * Runs the section: every payload with 1, 2 and 4 producers, twloop against
 * postMessage.
 *
 * @param s Mode, repetitions, progress output.
 * @returns The section's table and data.
 * @throws {Error} A run lost, duplicated or reordered a message, or stalled.
 */
export const runPayloadSection: SectionRunner = async (s) => {
  const mode = SECTION_MODES[s.quick ? "quick" : "normal"];
  const maxProducers = Math.max(...PRODUCER_COUNTS);
  s.progress("message rate by payload, worker threads -> main thread\n");
  const twloop = new TwloopTransport(maxProducers, "async");
  const transports: Transport[] = [
    new PostMessageTransport(maxProducers),
    twloop,
    new TwloopTransport(maxProducers, "sync"),
  ];
  const layout = readLayout(twloop.loop.buffer, "bench");
  const cells: CellResult[] = [];
  const started = performance.now();
  try {
    for (const n of PRODUCER_COUNTS) {
      for (const kind of PAYLOAD_KINDS) {
        cells.push(await runCell(transports, kind, n, s, mode));
      }
    }
  } finally {
    for (const tr of transports) await tr.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const objectBytes = new Encoder().encode(itemMaker("object")(0));
  return {
    id: "payloads",
    title: "Message rate by payload, worker threads -> main thread",
    notes: [
      "Both sides send one message per call, no batching, the same values " +
      "(payload_items.ts): each producer worker waits for a start signal, " +
      "then posts messages 0..count-1 back to back.",
      "postMessage: the worker calls self.postMessage(value) (structured " +
      "clone; byte arrays are copied, not transferred); the main thread's " +
      "worker.onmessage takes each message.",
      "twloop: workers from spawnWorker(loop) call port.post(value) (default " +
      "options: lazy wake, blocking while the port is full); the main " +
      "thread takes each message in loop.onMessage, driving the loop with " +
      "`await loop.run()` (goals judged on this). twloop runSync: a second " +
      "Loop with its own workers driven by the blocking loop.runSync(), as " +
      "a thread dedicated to consuming would (reference only).",
      "Every consumer checks per-producer order and sums one field (int / " +
      "bytes[0] / obj.qty); each run is verified exactly (count, order, " +
      "sum). msg/s = all producers' messages / (start signal to the last " +
      "message taken).",
      `Loop capacity (default): ${layout.producers} ports, ` +
      `${layout.nodesPerProducer} nodes and ${layout.bytesPerProducer} ` +
      "payload bytes per port. The object encodes to " +
      `${objectBytes} bytes (twloop codec).`,
      `Per cell and transport: a probe sets the run length (~${mode.targetMs}` +
      ` ms), then 1 warm-up + ${s.reps} measured runs, transports ` +
      "interleaved (the order turns each round); msg/s median (min – max). " +
      `Section time ${fixed(seconds, 1)} s.`,
      "ns/msg = 1e9 / median twloop msg/s (wall time per message, all " +
      "producers together); prod ns/post = the slowest twloop producer's " +
      "own time from the start signal to its last post returning, per " +
      "post (blocked time on a full port included); sleeps/notifies = " +
      "median loop sleeps and " +
      "producer notifies per twloop run.",
      `Goals (twloop / postMessage): int32 ≥${GOALS.int32}x, 64 B ` +
      `≥${GOALS.bytes64}x, 4 KiB ≥${GOALS.bytes4k}x, object ` +
      `≥${GOALS.object}x: ${verdict(cells)}.`,
    ],
    columns: [
      "payload",
      "producers",
      "postMessage msg/s",
      "min – max",
      "twloop msg/s",
      "min – max",
      "ns/msg",
      "vs postMessage",
      "goal",
      "prod ns/post",
      "sleeps/notifies",
      "runSync msg/s",
      "min – max",
      "runSync vs pM",
    ],
    rows: cells.map(row),
    data: { mode, config: layout, objectBytes, seconds, cells },
  };
};
