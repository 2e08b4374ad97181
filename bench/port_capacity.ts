/**
 * `deno run --allow-read=mod.ts,runtime,bench bench/port_capacity.ts`: how
 * the payload bytes of one port bound the byte-array message rate. One
 * producer worker (the message-rate section's `workers/payload_port.ts`)
 * posts 64-byte or 4 KiB `Uint8Array`s with `port.post` into a `Loop`
 * driven by `await loop.run()` on the main thread, the section's twloop
 * setup, with `capacity.bytesPerProducer` of 64 KiB (the default: room for
 * 16 messages of 4 KiB, or 1024 of 64 B while the port has 4096 nodes),
 * 256 KiB and 1 MiB; everything else default.
 *
 * Each capacity gets its own loop and worker; one warm-up run, then `reps`
 * measured runs, the capacities interleaved (the order turns each round).
 * Reported: msg/s median (min–max), the producer's own time per post
 * (start signal to its last post returning, blocked time on a full port
 * included), and loop sleeps per 1000 messages. Every run checks count,
 * order and the first and last byte of each message.
 *
 * Options: `--reps=N` (default 5), `--messages=N` per run (default 20000).
 *
 * @module
 */

import { Loop, type SpawnedWorker, spawnWorker } from "../mod.ts";
import {
  BYTE_LENGTHS,
  PAYLOAD_LABELS,
  type PayloadJob,
} from "./payload_items.ts";
import { CONTROL_BYTES, startRun } from "./protocol.ts";
import { alignTable, fixed, mega, summarize } from "./stats.ts";
import { rotate } from "./timers.ts";
import { awaitReport, prepareWorker } from "./worker_control.ts";

/** Port payload capacities compared, bytes. */
export const CAPACITIES = [65_536, 262_144, 1_048_576] as const;
/** Payload kinds compared. */
export const KINDS = ["bytes64", "bytes4k"] as const;
type Kind = typeof KINDS[number];

const SCRIPT = new URL("./workers/payload_port.ts", import.meta.url);
const STALL_MS = 30_000;

interface Sample {
  perSecond: number;
  producerNs: number;
  sleepsPerK: number;
}

class Rig {
  readonly loop: Loop;
  readonly worker: SpawnedWorker;

  constructor(readonly bytes: number) {
    this.loop = new Loop({
      capacity: {
        producers: 2,
        nodesPerProducer: 4096,
        bytesPerProducer: bytes,
      },
    });
    this.worker = spawnWorker(this.loop, SCRIPT);
  }

  async run(kind: Kind, count: number): Promise<Sample> {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const job: PayloadJob = { control, kind, count };
    const last = BYTE_LENGTHS[kind] - 1;
    const w = this.worker.worker;
    await prepareWorker(w, job);
    const report = awaitReport(w, STALL_MS);
    const loop = this.loop;
    let got = 0;
    let wrong = 0;
    let t1 = 0;
    loop.onMessage = (data) => {
      const b = data as Uint8Array;
      if (b[0] !== (got & 255) || b[last] !== ((got >> 8) & 255)) wrong++;
      if (++got === count) {
        t1 = performance.now();
        loop.stop();
      }
    };
    const guard = loop.setTimer(() => loop.stop(), STALL_MS);
    const m0 = loop.metrics();
    const t0 = performance.now();
    startRun(control);
    await loop.run();
    guard.cancel();
    const m1 = loop.metrics();
    const r = await report;
    if (got !== count || wrong !== 0) {
      throw new Error(
        `Cannot trust run: got ${got} of ${count}, ${wrong} out of order`,
      );
    }
    return {
      perSecond: count / ((t1 - t0) / 1000),
      producerNs: r.pushMs * 1e6 / count,
      sleepsPerK: (m1.sleeps - m0.sleeps) * 1000 / count,
    };
  }

  async close(): Promise<void> {
    this.worker.worker.postMessage({ close: true });
    const guard = this.loop.setTimer(() => this.loop.stop(), 5000).unref();
    this.loop.onMessage = undefined;
    await this.loop.run();
    guard.cancel();
    this.loop.close();
    this.worker.worker.terminate();
  }
}

function parse(args: readonly string[]): { reps: number; messages: number } {
  const o = { reps: 5, messages: 20_000 };
  for (const a of args) {
    const [k, v] = a.split("=");
    const n = Number(v);
    if (
      (k !== "--reps" && k !== "--messages") || !Number.isInteger(n) || n < 1
    ) {
      throw new TypeError(
        `Cannot parse ${a}: options are --reps=N, --messages=N`,
      );
    }
    o[k === "--reps" ? "reps" : "messages"] = n;
  }
  return o;
}

async function main(): Promise<void> {
  const o = parse(Deno.args);
  const rigs = CAPACITIES.map((b) => new Rig(b));
  const cells = KINDS.flatMap((kind) => rigs.map((rig) => ({ kind, rig })));
  const samples = cells.map(() => [] as Sample[]);
  try {
    for (const kind of KINDS) {
      const mine = cells.flatMap((c, i) => c.kind === kind ? [i] : []);
      for (let rep = -1; rep < o.reps; rep++) {
        for (const i of rotate(mine, rep)) {
          const s = await cells[i].rig.run(kind, o.messages);
          if (rep >= 0) samples[i].push(s);
        }
      }
    }
  } finally {
    for (const r of rigs) await r.close();
  }
  console.log(
    `Byte arrays, 1 producer worker -> main thread (await loop.run()), ` +
      `${o.messages} per run, 1 warm-up + ${o.reps} runs per cell (Deno ` +
      `${Deno.version.deno})\n`,
  );
  const rows = cells.map(({ kind, rig }, i) => {
    const rate = summarize(samples[i].map((s) => s.perSecond));
    const med = (f: (s: Sample) => number) =>
      summarize(samples[i].map(f)).median;
    return [
      PAYLOAD_LABELS[kind],
      `${rig.bytes / 1024} KiB`,
      mega(rate.median),
      `${mega(rate.min)} – ${mega(rate.max)}`,
      fixed(med((s) => s.producerNs), 0),
      fixed(med((s) => s.sleepsPerK), 1),
    ];
  });
  console.log(
    alignTable([
      [
        "payload",
        "bytesPerProducer",
        "msg/s",
        "min – max",
        "prod ns/post",
        "sleeps/1000 msgs",
      ],
      ...rows,
    ]).join("\n"),
  );
}

if (import.meta.main) await main();
