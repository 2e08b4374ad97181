/**
 * `deno run --allow-read=mod.ts,runtime,bench bench/post_cost.ts`: what one
 * integer post costs the posting thread, `Port.post` against the raw
 * `Producer.push` it wraps, measured in the same run on one thread (no cache
 * line moves between cores: instruction cost only).
 *
 * Variants, each timed as a block of {@linkcode BLOCK} calls with the
 * integers 0, 1, 2, ..., the storage drained (untimed) after each block:
 *
 * | variant          | what one call does                                      |
 * | ---------------- | ------------------------------------------------------- |
 * | `Producer.push`  | `push(MSG_INT, s, 0)`: node alloc + fill, 2 atomics      |
 * | `writer.write`   | `MessageWriter.write(s)`: type dispatch, then the push   |
 * | `Port.tryPost`   | fence (2 atomics) + write + wake-word read (1 atomic)    |
 * | `Port.post`      | `tryPost`, returning on success (the default post)       |
 * | emulated, fenced | `write` + the fence + the wake-word read, inline         |
 * | emulated, no fence | `write` + the wake-word read: a post without the fence |
 * | fence pair alone | `Atomics.or` + `Atomics.and` on one word: the fence only |
 * | `Atomics.load`   | one atomic read, for scale                               |
 *
 * The two emulated variants repeat `Port.post`'s atomic steps inline on
 * the `write` queue's buffer (its fence word and `WAIT_NR`, which reads
 * idle), so their difference is what the fence costs inside the real
 * sequence. The queue behind `push`/`write` is a bare `MpscQueue`; the port is
 * `connect(loop.port())` of a `Loop` on this thread, drained with
 * `runNoWait` (nobody sleeps, so the wake word reads idle). Variants
 * alternate within each round (the order turns every round); one warm-up
 * pass of as many rounds, then the measured ones. Reported per variant: the
 * median ns/call over the rounds, min–max and the 10th–90th percentiles.
 *
 * Options: `--rounds=N` (default 2000), `--quick` (300 rounds).
 *
 * @module
 */

import { connect, Loop, MpscQueue, Producer } from "../mod.ts";
import { MessageWriter, MSG_INT } from "../runtime/messages.ts";
import { PUSH_FULL } from "../runtime/mpsc_queue.ts";
import {
  FENCE_WRITING,
  P_FENCE,
  slotWord,
  WAIT_NR,
  WAKE_CLOSING,
} from "../runtime/queue_layout.ts";
import { wakeArmed } from "../runtime/wake.ts";
import { alignTable, fixed, summarize } from "./stats.ts";
import { rotate } from "./timers.ts";

/** Calls per timed block; fits the default 4096 nodes of a port. */
export const BLOCK = 1000;

interface Variant {
  id: string;
  label: string;
  /** Runs `BLOCK` calls; returns a value so the work stays observable. */
  block: () => number;
  /** Frees the storage the block used (untimed). */
  reset: () => void;
}

function fail(what: string): never {
  throw new Error(`Cannot measure post cost: ${what}`);
}

function makeVariants(): { variants: Variant[]; close: () => void } {
  const q1 = MpscQueue.create({ nodesPerProducer: 4096 });
  const raw = Producer.attach(q1.buffer);
  const q2 = MpscQueue.create({ nodesPerProducer: 4096 });
  const p2 = Producer.attach(q2.buffer);
  const writer = new MessageWriter(p2);
  const w2 = new Int32Array(q2.buffer);
  const fence2 = slotWord(p2.slot) + P_FENCE;
  /** `Port.post`'s steps after the write: the wake-word read. */
  const settle = () => {
    const nr = Atomics.load(w2, WAIT_NR);
    if (nr > WAKE_CLOSING) wakeArmed(w2, nr, true);
  };
  const loop = new Loop();
  const port = connect(loop.port());
  let got = 0;
  loop.onMessage = () => void got++;
  const drainLoop = () => {
    got = 0;
    while (loop.pending() > 0) loop.runNoWait();
    if (got !== BLOCK) fail(`loop got ${got} messages, want ${BLOCK}`);
  };
  const drainQueue = (q: MpscQueue) => () => {
    const n = q.drain(BLOCK + 1, () => {});
    if (n !== BLOCK) fail(`drained ${n} items, want ${BLOCK}`);
  };
  const scratch = new Int32Array(new SharedArrayBuffer(256));
  const FENCE = 5;
  const WRITING = FENCE_WRITING;
  const none = () => {};
  const variants: Variant[] = [
    {
      id: "push",
      label: "Producer.push(MSG_INT, s, 0)",
      block: () => {
        let full = 0;
        for (let s = 0; s < BLOCK; s++) {
          if (raw.push(MSG_INT, s, 0) === PUSH_FULL) full++;
        }
        return full;
      },
      reset: drainQueue(q1),
    },
    {
      id: "write",
      label: "MessageWriter.write(s)",
      block: () => {
        let full = 0;
        for (let s = 0; s < BLOCK; s++) {
          if (writer.write(s) === PUSH_FULL) full++;
        }
        return full;
      },
      reset: drainQueue(q2),
    },
    {
      id: "tryPost",
      label: "Port.tryPost(s)",
      block: () => {
        let full = 0;
        for (let s = 0; s < BLOCK; s++) if (!port.tryPost(s)) full++;
        return full;
      },
      reset: drainLoop,
    },
    {
      id: "post",
      label: "Port.post(s)",
      block: () => {
        for (let s = 0; s < BLOCK; s++) port.post(s);
        return 0;
      },
      reset: drainLoop,
    },
    {
      id: "fenced",
      label: "emulated: fence + write + wake read",
      block: () => {
        let full = 0;
        for (let s = 0; s < BLOCK; s++) {
          const f = Atomics.or(w2, fence2, FENCE_WRITING);
          if ((f & ~FENCE_WRITING) !== 0) fail("fence reports a death");
          let r;
          try {
            r = writer.write(s);
          } finally {
            Atomics.and(w2, fence2, ~FENCE_WRITING);
          }
          if (r === PUSH_FULL) full++;
          else settle();
        }
        return full;
      },
      reset: drainQueue(q2),
    },
    {
      id: "unfenced",
      label: "emulated: write + wake read (no fence)",
      block: () => {
        let full = 0;
        for (let s = 0; s < BLOCK; s++) {
          if (writer.write(s) === PUSH_FULL) full++;
          else settle();
        }
        return full;
      },
      reset: drainQueue(q2),
    },
    {
      id: "fence",
      label: "Atomics.or + Atomics.and (fence alone)",
      block: () => {
        let f = 0;
        for (let s = 0; s < BLOCK; s++) {
          f |= Atomics.or(scratch, FENCE, WRITING);
          Atomics.and(scratch, FENCE, ~WRITING);
        }
        return f;
      },
      reset: none,
    },
    {
      id: "load",
      label: "Atomics.load (one, for scale)",
      block: () => {
        let f = 0;
        for (let s = 0; s < BLOCK; s++) f += Atomics.load(scratch, s & 31);
        return f;
      },
      reset: none,
    },
  ];
  return {
    variants,
    close: () => {
      port.close();
      loop.runNoWait();
      loop.close();
    },
  };
}

/** Per variant: median, min, max, p10, p90 of ns per call. */
export interface CostRow {
  id: string;
  label: string;
  median: number;
  min: number;
  max: number;
  p10: number;
  p90: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * Measures every variant.
 *
 * @param rounds Measured rounds (after as many warm-up rounds).
 * @returns One row per variant.
 * @throws {Error} A block found storage full or the loop lost a message.
 */
export function measurePostCost(rounds: number): CostRow[] {
  const { variants, close } = makeVariants();
  const ns = variants.map(() => [] as number[]);
  let sink = 0;
  try {
    for (let r = -rounds; r < rounds; r++) {
      for (const v of rotate(variants, r)) {
        const t0 = performance.now();
        const full = v.block();
        const t1 = performance.now();
        v.reset();
        if (v.id !== "fence" && v.id !== "load" && full !== 0) {
          fail(`${v.label} found the storage full`);
        }
        sink += full;
        if (r >= 0) ns[variants.indexOf(v)].push((t1 - t0) * 1e6 / BLOCK);
      }
    }
  } finally {
    close();
  }
  if (sink === 0.5) console.log(""); // keeps the work observable
  return variants.map((v, i) => {
    const s = summarize(ns[i]);
    const sorted = [...ns[i]].sort((a, b) => a - b);
    return {
      id: v.id,
      label: v.label,
      median: s.median,
      min: s.min,
      max: s.max,
      p10: percentile(sorted, 0.1),
      p90: percentile(sorted, 0.9),
    };
  });
}

function parseRounds(args: readonly string[]): number {
  let rounds = 2000;
  for (const a of args) {
    if (a === "--quick") {
      rounds = 300;
      continue;
    }
    const n = Number(a.slice("--rounds=".length));
    if (!a.startsWith("--rounds=") || !Number.isInteger(n) || n < 1) {
      throw new TypeError(
        `Cannot parse ${a}: options are --rounds=N, --quick`,
      );
    }
    rounds = n;
  }
  return rounds;
}

function main(): void {
  const rounds = parseRounds(Deno.args);
  const rows = measurePostCost(rounds);
  const by = (id: string) => rows.find((r) => r.id === id)!.median;
  console.log(
    `Integer post cost on the posting thread, ns per call: median over ` +
      `${rounds} rounds of ${BLOCK} calls (Deno ${Deno.version.deno})\n`,
  );
  console.log(
    alignTable([
      ["variant", "median ns", "p10–p90", "min–max", "vs push"],
      ...rows.map((r) => [
        r.label,
        fixed(r.median, 1),
        `${fixed(r.p10, 1)}–${fixed(r.p90, 1)}`,
        `${fixed(r.min, 1)}–${fixed(r.max, 1)}`,
        `${fixed(r.median / by("push"), 2)}x`,
      ]),
    ]).join("\n"),
  );
  const portOver = by("post") - by("write");
  const fenceIn = by("fenced") - by("unfenced");
  console.log(
    `\nPort.post - MessageWriter.write = ${fixed(portOver, 1)} ns ` +
      `(fence pair alone ${fixed(by("fence"), 1)} ns, one Atomics.load ` +
      `${fixed(by("load"), 1)} ns); Port.post - Producer.push = ` +
      `${fixed(by("post") - by("push"), 1)} ns.\n` +
      `The fence inside the emulated post: ${fixed(fenceIn, 1)} ns of ` +
      `${fixed(by("fenced"), 1)} (${fixed(100 * fenceIn / by("fenced"), 0)}` +
      `%); Port.post without it would be ~${
        fixed(by("post") - fenceIn, 1)
      } ns.`,
  );
}

if (import.meta.main) main();
