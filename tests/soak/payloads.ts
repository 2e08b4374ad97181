/**
 * The soak's messages: every kind of payload a port carries, each holding
 * the producer's sequence number so the loop can check exactly-once, in-order
 * delivery, and each with content derived from that number so corruption is
 * caught, not just loss.
 *
 * @module
 */

/** Payload kinds, in the order `pick` weighs them. */
export const KINDS = ["int", "float", "string", "bytes", "object"] as const;

/** One payload kind. */
export type Kind = typeof KINDS[number];

const FILLERS = [
  "",
  "a",
  "plain ascii text",
  "é€😀 multi-byte",
  "x".repeat(200),
] as const;

/**
 * Picks a kind: mostly the fast paths, as real traffic is.
 *
 * @param r A uniform float in [0, 1).
 * @returns The kind.
 */
export function pick(r: number): Kind {
  if (r < 0.4) return "int";
  if (r < 0.55) return "float";
  if (r < 0.7) return "string";
  if (r < 0.85) return "bytes";
  return "object";
}

/** Bytes payload length for a sequence number: 4 to 1027. */
function bytesLength(seq: number): number {
  return 4 + (Math.imul(seq, 2654435761) >>> 22);
}

/**
 * Builds the payload of one kind for one sequence number.
 *
 * @param kind The kind.
 * @param seq The producer's sequence number (0 to 2^31-1).
 * @returns The value to post.
 */
export function make(kind: Kind, seq: number): unknown {
  switch (kind) {
    case "int":
      return seq;
    case "float":
      return seq + 0.5;
    case "string":
      return `${seq}:${FILLERS[seq % FILLERS.length]}`;
    case "bytes": {
      const b = new Uint8Array(bytesLength(seq));
      new DataView(b.buffer).setUint32(0, seq, true);
      for (let i = 4; i < b.length; i++) b[i] = (seq + i) & 255;
      return b;
    }
    case "object":
      return {
        seq,
        tags: ["soak", seq % 7],
        at: new Date(seq),
        seen: new Map([[seq, FILLERS[seq % FILLERS.length]]]),
      };
  }
}

/**
 * Reads the sequence number back and checks the content derived from it.
 *
 * @param data A delivered message.
 * @returns The sequence number.
 * @throws {Error} The message is not one `make` builds, or is corrupt.
 */
export function check(data: unknown): number {
  if (typeof data === "number") return Math.floor(data);
  if (typeof data === "string") {
    const at = data.indexOf(":");
    const seq = Number(data.slice(0, at));
    if (data.slice(at + 1) !== FILLERS[seq % FILLERS.length]) {
      throw new Error(`Corrupt string payload: ${JSON.stringify(data)}`);
    }
    return seq;
  }
  if (data instanceof Uint8Array) {
    const seq = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
    let ok = data.length === bytesLength(seq);
    for (let i = 4; ok && i < data.length; i++) {
      ok = data[i] === ((seq + i) & 255);
    }
    if (!ok) throw new Error(`Corrupt bytes payload for seq ${seq}`);
    return seq;
  }
  const o = data as {
    seq: number;
    tags: unknown[];
    at: Date;
    seen: Map<number, string>;
  };
  if (
    o?.tags?.[1] !== o.seq % 7 || !(o.at instanceof Date) ||
    o.at.getTime() !== o.seq ||
    o.seen.get(o.seq) !== FILLERS[o.seq % FILLERS.length]
  ) {
    throw new Error(`Corrupt object payload: ${String(data)}`);
  }
  return o.seq;
}
