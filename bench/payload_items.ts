/**
 * The payloads of the message-rate section (`payloads.ts`), shared by its
 * producer workers and its consumer: what producer `i`'s message number `s`
 * is, for each payload kind, and what the consumer adds up from it.
 *
 * | kind      | message                                       | touched value |
 * | --------- | --------------------------------------------- | ------------- |
 * | `int32`   | the number `s`                                | `s`           |
 * | `bytes64` | a 64-byte `Uint8Array`, `[0]` = `s & 255`, last byte = `(s >> 8) & 255` | `[0]` |
 * | `bytes4k` | the same, 4096 bytes                          | `[0]`         |
 * | `object`  | `{ id: s, ts, kind: "trade", sym: "ABCD", px: 101.25, qty, tags: ["a", "b"] }` | `qty` |
 *
 * A byte-array producer reuses one array and rewrites its first and last
 * byte per message: both transports copy it when posting (`Port.post` into
 * shared memory, `postMessage` by structured clone), so a reused array is
 * what a careful user would post. An object producer builds a fresh object
 * per message, as an application would.
 *
 * @module
 */

/** The payload kinds, in table order. */
export const PAYLOAD_KINDS = ["int32", "bytes64", "bytes4k", "object"] as const;

/** One payload kind. */
export type PayloadKind = typeof PAYLOAD_KINDS[number];

/** Row labels of the payload kinds. */
export const PAYLOAD_LABELS: Readonly<Record<PayloadKind, string>> = {
  int32: "int32",
  bytes64: "64 B Uint8Array",
  bytes4k: "4 KiB Uint8Array",
  object: "~100 B object",
};

/** Length of each byte-array kind. */
export const BYTE_LENGTHS: Readonly<Record<"bytes64" | "bytes4k", number>> = {
  bytes64: 64,
  bytes4k: 4096,
};

/** `ts` of message 0 of an object stream: a millisecond time, a float64. */
const TS_BASE = 1_764_800_000_000.5;

/** The shape of an `object` message. */
export interface Trade {
  /** The message's sequence number in its producer's stream. */
  id: number;
  /** A float64 time stamp. */
  ts: number;
  /** Always "trade". */
  kind: string;
  /** Always "ABCD". */
  sym: string;
  /** Always 101.25. */
  px: number;
  /** 300 to 363, from the sequence number: what the consumer sums. */
  qty: number;
  /** Always ["a", "b"]. */
  tags: string[];
}

function qty(s: number): number {
  return 300 + (s & 63);
}

/**
 * Makes the message factory of one producer.
 *
 * @param kind The payload kind.
 * @returns `make(s)`: message number `s` (byte kinds return the same,
 *   rewritten array each call).
 */
export function itemMaker(kind: PayloadKind): (s: number) => unknown {
  switch (kind) {
    case "int32":
      return (s) => s;
    case "bytes64":
    case "bytes4k": {
      const b = new Uint8Array(BYTE_LENGTHS[kind]);
      const last = b.length - 1;
      return (s) => {
        b[0] = s;
        b[last] = s >> 8;
        return b;
      };
    }
    case "object":
      return (s): Trade => ({
        id: s,
        ts: TS_BASE + s,
        kind: "trade",
        sym: "ABCD",
        px: 101.25,
        qty: qty(s),
        tags: ["a", "b"],
      });
  }
}

/**
 * What the consumer must add up over one producer's `count` messages.
 *
 * @param kind The payload kind.
 * @param count Messages the producer sends (sequence numbers 0 to count-1).
 * @returns The sum of the touched values (see the module table).
 */
export function expectedSum(kind: PayloadKind, count: number): number {
  let sum = 0;
  for (let s = 0; s < count; s++) {
    sum += kind === "int32" ? s : kind === "object" ? qty(s) : s & 255;
  }
  return sum;
}

/** Job for `workers/payload_post.ts` and `workers/payload_port.ts`. */
export interface PayloadJob {
  /** The control buffer (see `protocol.ts`). */
  control: SharedArrayBuffer;
  /** What to send. */
  kind: PayloadKind;
  /** Messages to send: sequence numbers 0 to count-1. */
  count: number;
}

/** Tells a port worker to close its port and end. */
export interface CloseJob {
  /** Always true. */
  close: true;
}
