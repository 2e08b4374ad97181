/**
 * `deno run --allow-read=mod.ts,runtime,bench bench/payload_costs.ts`:
 * where one message's time goes on each side of a port, per payload kind of
 * the message-rate section (`payloads.ts`), measured on one thread so that
 * no cache line moves between cores: the instruction cost alone. The
 * cross-thread rate in the section is slower than these parts add up to;
 * the difference is coordination (lines moving between cores, full ports,
 * sleeps and wakes, preemption).
 *
 * Each round posts a batch that fits the default port storage, then consumes
 * it; every stage is timed on its own, and a stage's cost is its median
 * nanoseconds per message over the rounds minus the stage before it:
 *
 * - producer: `make` (build the value), `encode` (codec, objects only),
 *   `push` (`MessageWriter.write` minus the two before: copy into shared
 *   memory, node fill, 2 atomics), `port` (`Port.post` minus `write`:
 *   open/revoked checks, wake-word read);
 * - consumer: `pop` (`MpscQueue.drain` reading the node words: 1 atomic,
 *   release bookkeeping), `decode` (`readMessage`: int as is, a view over the
 *   bytes, codec decode), `handler` (the section's consumer: order check,
 *   sum), `dispatch` (`Loop.runNoWait` passes minus the three before: the
 *   loop's per-item dispatch and its per-pass phases, 20 items a pass),
 *   `async` (the async drive's turn between passes, per item: a chain of
 *   self-queueing tasks under `await loop.run()` minus under `runSync`).
 *
 * Options: `--rounds=N` (default 300).
 *
 * @module
 */

import { connect, Loop, MpscQueue, Producer } from "../mod.ts";
import { Encoder } from "../runtime/codec.ts";
import { MessageWriter, readMessage } from "../runtime/messages.ts";
import {
  itemMaker,
  PAYLOAD_KINDS,
  PAYLOAD_LABELS,
  type PayloadKind,
  type Trade,
} from "./payload_items.ts";
import { alignTable, fixed, summarize } from "./stats.ts";

/** Messages per round: what one port's default storage holds, or fewer. */
const BATCH: Readonly<Record<PayloadKind, number>> = {
  int32: 1000,
  bytes64: 500,
  bytes4k: 15,
  object: 500,
};

/** Stage names, producer side then consumer side. */
export const STAGES = [
  "make",
  "encode",
  "push",
  "port",
  "pop",
  "decode",
  "handler",
  "dispatch",
  "async",
] as const;

/** Nanoseconds per message of each stage. */
export type StageCosts = Record<typeof STAGES[number], number>;

let sink = 0;

/** The section's consumer work for one decoded message. */
function touch(kind: PayloadKind, data: unknown): number {
  switch (kind) {
    case "int32":
      return data as number;
    case "object":
      return (data as Trade).qty;
    default:
      return (data as Uint8Array)[0];
  }
}

function median(xs: number[]): number {
  return summarize(xs).median;
}

/**
 * Measures the stages of one payload kind.
 *
 * @param kind The payload kind.
 * @param rounds Measured rounds (after as many warm-up rounds).
 * @returns Nanoseconds per message of each stage.
 */
export async function measureStages(
  kind: PayloadKind,
  rounds: number,
): Promise<StageCosts> {
  const make = itemMaker(kind);
  const n = BATCH[kind];
  const encoder = new Encoder();
  const q = MpscQueue.create({ nodesPerProducer: 4096 });
  const writer = new MessageWriter(Producer.attach(q.buffer));
  const loop = new Loop();
  const port = connect(loop.port());
  const values: unknown[] = [];
  let left = 0;
  loop.onMessage = (data) => {
    sink += touch(kind, data);
    if (--left === 0) loop.stop();
  };
  const t: Record<string, number[]> = {};
  const time = (name: string, fn: () => void) => {
    const t0 = performance.now();
    fn();
    (t[name] ??= []).push((performance.now() - t0) * 1e6 / n);
  };
  for (let r = 0; r < 2 * rounds; r++) {
    if (r === rounds) {
      // End of the warm-up rounds: keep only the measured ones.
      for (const k in t) t[k].length = 0;
    }
    time("make", () => {
      for (let s = 0; s < n; s++) values[s] = make(s);
    });
    time("encode", () => {
      if (kind === "object") {
        for (let s = 0; s < n; s++) sink += encoder.encode(make(s));
      }
    });
    time("write", () => {
      for (let s = 0; s < n; s++) writer.write(make(s));
    });
    time("pop", () => q.drain(n, (e) => void (sink += e.a)));
    for (let s = 0; s < n; s++) writer.write(make(s));
    time("decode", () =>
      q.drain(n, (e) => {
        values[e.a & 0] = readMessage(e, false);
      }));
    for (let s = 0; s < n; s++) values[s] = make(s);
    time("handler", () => {
      for (let s = 0; s < n; s++) sink += touch(kind, values[s]);
    });
    time("post", () => {
      for (let s = 0; s < n; s++) port.post(make(s));
    });
    left = n;
    time("noWait", () => {
      while (left > 0) loop.runNoWait();
    });
  }
  port.close();
  loop.close();
  const async = await asyncPassCost(rounds);
  const m = Object.fromEntries(
    Object.entries(t).map(([k, v]) => [k, median(v)]),
  );
  return {
    make: m.make,
    encode: kind === "object" ? m.encode - m.make : 0,
    push: m.write - (kind === "object" ? m.encode : m.make),
    port: m.post - m.write,
    pop: m.pop,
    decode: m.decode - m.pop,
    handler: m.handler,
    dispatch: m.noWait - m.decode - m.handler,
    async,
  };
}

/**
 * The async drive's cost per item over the blocking drive's: a chain of
 * tasks, each queueing the next, run by `runSync` and by `await run()`;
 * both run 20 a pass (the default `maxEvents`), so the difference is the
 * turn the async drive yields between passes, shared by the pass's items.
 */
async function asyncPassCost(rounds: number): Promise<number> {
  const CHAIN = 20_000;
  const loop = new Loop();
  let left = 0;
  const step = () => {
    if (--left > 0) loop.queue(step);
  };
  const sync: number[] = [];
  const drive: number[] = [];
  for (let r = 0; r < Math.max(10, rounds / 10); r++) {
    left = CHAIN;
    loop.queue(step);
    let t0 = performance.now();
    loop.runSync();
    sync.push((performance.now() - t0) * 1e6 / CHAIN);
    left = CHAIN;
    loop.queue(step);
    t0 = performance.now();
    await loop.run();
    drive.push((performance.now() - t0) * 1e6 / CHAIN);
  }
  loop.close();
  return median(drive) - median(sync);
}

function parseRounds(args: readonly string[]): number {
  let rounds = 300;
  for (const a of args) {
    const n = Number(a.slice("--rounds=".length));
    if (!a.startsWith("--rounds=") || !Number.isInteger(n) || n < 1) {
      throw new TypeError(`Cannot parse ${a}: the option is --rounds=N`);
    }
    rounds = n;
  }
  return rounds;
}

async function main(): Promise<void> {
  const rounds = parseRounds(Deno.args);
  const rows: string[][] = [[
    "ns per message",
    ...STAGES,
    "producer",
    "consumer",
  ]];
  for (const kind of PAYLOAD_KINDS) {
    const c = await measureStages(kind, rounds);
    const producer = c.make + c.encode + c.push + c.port;
    const consumer = c.pop + c.decode + c.handler + c.dispatch + c.async;
    rows.push([
      PAYLOAD_LABELS[kind],
      ...STAGES.map((s) => fixed(c[s], 0)),
      fixed(producer, 0),
      fixed(consumer, 0),
    ]);
  }
  console.log(
    `Per-message cost by stage, one thread, median of ${rounds} rounds ` +
      `(Deno ${Deno.version.deno})\n`,
  );
  console.log(alignTable(rows).join("\n"));
  if (sink === 0.5) console.log(""); // keeps the work observable
}

if (import.meta.main) await main();
