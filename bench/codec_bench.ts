/**
 * `deno run bench/codec_bench.ts`: nanoseconds per encode and per decode of
 * twloop's codec (`runtime/codec.ts`), against two references:
 *
 * - JSON: `JSON.stringify` + `TextEncoder.encodeInto` into a reused buffer,
 *   and `TextDecoder.decode` + `JSON.parse` (lossy: see the module docs of
 *   the codec);
 * - `structuredClone`: one whole round trip (V8's serializer, no bytes out).
 *
 * Decodes read from a view at offset 8 inside a SharedArrayBuffer, as the
 * loop does. Each cell is the median over {@linkcode ROUNDS} timed batches of
 * at least {@linkcode BATCH_MS} ms each (after a warm-up batch); the machine
 * is shared, so compare columns of one run rather than runs.
 *
 * Options: `--rounds=N`.
 *
 * @module
 */

import { decode, Encoder } from "../runtime/codec.ts";
import { alignTable, summarize } from "./stats.ts";

/** Timed batches per cell. */
export const ROUNDS = 7;
/** Minimum duration of one timed batch. */
export const BATCH_MS = 20;

/** One workload of the table. */
export interface Case {
  /** Row label. */
  name: string;
  /** The value posted. */
  value: unknown;
}

/** The workloads, in table order. */
export const CASES: readonly Case[] = [
  { name: "small int", value: 42 },
  { name: "short string", value: "hello, world" },
  {
    name: "~100-byte object",
    value: {
      id: 123,
      name: "sensor-7",
      ts: 1712345678901,
      values: [1.5, 2.5, 3.5],
      ok: true,
    },
  },
  {
    name: "4 KiB Uint8Array",
    value: new Uint8Array(4096).map((_, i) => i * 7),
  },
  {
    name: "1000 small objects",
    value: Array.from({ length: 1000 }, (_, i) => ({
      id: i,
      name: `item-${i}`,
      score: i * 1.25,
      ok: i % 3 === 0,
    })),
  },
];

/** Nanoseconds per operation for one {@linkcode Case}. */
export interface Row {
  /** Row label. */
  name: string;
  /** Size of the codec's message. */
  bytes: number;
  /** Size of the JSON text in UTF-8. */
  jsonBytes: number;
  /** `Encoder.encode`. */
  encode: number;
  /** `decode` from a SharedArrayBuffer view. */
  decode: number;
  /** `JSON.stringify` + `encodeInto`. */
  jsonEncode: number;
  /** `TextDecoder.decode` + `JSON.parse`. */
  jsonDecode: number;
  /** `structuredClone`, round trip. */
  structuredClone: number;
}

let sink: unknown;

/**
 * Times `fn` in batches and returns the median nanoseconds per call.
 *
 * @param fn The operation; its result is kept so it cannot be elided.
 * @param rounds Timed batches.
 * @returns Median ns per call.
 */
export function nsPerOp(fn: () => unknown, rounds: number = ROUNDS): number {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink = fn();
    if (performance.now() - t0 >= BATCH_MS) break;
    n *= 2;
  }
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink = fn();
    samples.push((performance.now() - t0) * 1e6 / n);
  }
  return summarize(samples).median;
}

/**
 * Measures one workload.
 *
 * @param c The workload.
 * @param rounds Timed batches per cell.
 * @returns Its row.
 */
export function measure(c: Case, rounds: number = ROUNDS): Row {
  const encoder = new Encoder();
  const bytes = encoder.encode(c.value);
  const shared = new Uint8Array(new SharedArrayBuffer(bytes + 8), 8, bytes);
  shared.set(encoder.bytes.subarray(0, bytes));

  const text = new TextEncoder();
  const textDecoder = new TextDecoder();
  let scratch = new Uint8Array(1 << 16);
  const jsonEncode = (): number => {
    const json = JSON.stringify(c.value);
    if (json.length * 3 > scratch.length) {
      scratch = new Uint8Array(json.length * 3);
    }
    return text.encodeInto(json, scratch).written;
  };
  const jsonBytes = jsonEncode();
  const jsonShared = new Uint8Array(
    new SharedArrayBuffer(jsonBytes + 8),
    8,
    jsonBytes,
  );
  jsonShared.set(scratch.subarray(0, jsonBytes));
  // Copy out first: Deno's TextDecoder accepts a shared view but is ~2x
  // slower on one than slice + decode (browsers refuse shared views).
  const jsonDecode = (): unknown =>
    JSON.parse(textDecoder.decode(jsonShared.slice()));

  return {
    name: c.name,
    bytes,
    jsonBytes,
    encode: nsPerOp(() => encoder.encode(c.value), rounds),
    decode: nsPerOp(() => decode(shared), rounds),
    jsonEncode: nsPerOp(jsonEncode, rounds),
    jsonDecode: nsPerOp(jsonDecode, rounds),
    structuredClone: nsPerOp(() => structuredClone(c.value), rounds),
  };
}

/**
 * Renders rows as an aligned text table.
 *
 * @param rows Measured rows.
 * @returns The table lines.
 */
export function renderTable(rows: readonly Row[]): string[] {
  const ns = (v: number): string => v < 100 ? v.toFixed(1) : v.toFixed(0);
  return alignTable([
    [
      "ns per op",
      "bytes",
      "encode",
      "decode",
      "enc+dec",
      "JSON bytes",
      "JSON enc",
      "JSON dec",
      "JSON e+d",
      "structuredClone",
    ],
    ...rows.map((r) => [
      r.name,
      String(r.bytes),
      ns(r.encode),
      ns(r.decode),
      ns(r.encode + r.decode),
      String(r.jsonBytes),
      ns(r.jsonEncode),
      ns(r.jsonDecode),
      ns(r.jsonEncode + r.jsonDecode),
      ns(r.structuredClone),
    ]),
  ]);
}

function parseRounds(args: readonly string[]): number {
  let rounds = ROUNDS;
  for (const arg of args) {
    const n = Number(arg.slice("--rounds=".length));
    if (!arg.startsWith("--rounds=") || !Number.isInteger(n) || n < 1) {
      throw new TypeError(`Cannot parse ${arg}: the option is --rounds=N`);
    }
    rounds = n;
  }
  return rounds;
}

if (import.meta.main) {
  const rounds = parseRounds(Deno.args);
  console.log(
    `twloop codec bench: Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ` +
      `${navigator.hardwareConcurrency} CPUs, median of ${rounds} batches`,
  );
  const rows = CASES.map((c) => measure(c, rounds));
  for (const line of renderTable(rows)) console.log(line);
  if (sink === Symbol.for("never")) console.log(sink);
}
