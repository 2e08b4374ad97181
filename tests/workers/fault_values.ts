/**
 * The messages fault workers post (`fault_producer.ts`) and how the test
 * reads them back. Every value names its worker and sequence number, and
 * its whole content follows from those two, so a message delivered torn or
 * corrupt is caught: the test rebuilds the expected value and compares.
 *
 * Four kinds, chosen by a hash of (id, seq), so every encoding path (int,
 * UTF-8 string with multi-byte characters, structured value, bytes) meets a
 * termination: ints carry no payload, the others are written into the
 * port's byte ring before the push is published.
 *
 * @module
 */

/** Largest worker id a value can carry. */
export const MAX_ID = 0x7fff;
/** Largest sequence number a value can carry. */
export const MAX_SEQ = 0xffff;

/** What the test hands each fault worker (as `spawnWorker`'s `data`). */
export interface FaultTask {
  id: number;
  mode: "stream" | "throw" | "self-close" | "half-push";
  /** Post number at which the mode's fault happens. */
  stopAt: number;
  /** Every `eagerEvery`-th post wakes eagerly, the rest lazily. */
  eagerEvery: number;
  /**
   * Most posts per macrotask: between bursts of 1 to `burst` posts (seeded
   * by the id) the worker yields to its event loop; 0 never yields.
   */
  burst: number;
  /** `Int32Array` words: returned posts at `2 * id`, phase at `2 * id + 1`. */
  record: SharedArrayBuffer;
  /** The loop's queue buffer (for `half-push`). */
  buffer: SharedArrayBuffer;
}

/** Phase word value: a `half-push` worker left its push half-linked. */
export const HALF_PUSHED = 1;
/** Phase word value: the port refused a post (the slot was revoked). */
export const REFUSED = 2;

/**
 * The error message a `throw` worker dies with.
 *
 * @param id Worker id.
 * @param posts Posts it made first.
 * @returns The message.
 */
export function thrownMessage(id: number, posts: number): string {
  return `fault worker ${id} throws after ${posts} posts`;
}

const ALPHABET = Array.from("aZ9 é€😀-");

function mix(id: number, seq: number): number {
  let h = Math.imul(id + 1, 0x9e3779b1) ^ Math.imul(seq + 1, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 13)) >>> 0;
}

function filler(h: number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[(h + i * 7) % ALPHABET.length];
  return s;
}

/**
 * The `seq`-th message of worker `id`.
 *
 * @param id Worker id, 0 to {@linkcode MAX_ID}.
 * @param seq Sequence number, 0 to {@linkcode MAX_SEQ}.
 * @returns An int, a string, an object or a `Uint8Array`.
 */
export function faultValue(id: number, seq: number): unknown {
  const h = mix(id, seq);
  const n = (h >>> 8) % 160;
  switch (h & 3) {
    case 0:
      return id * 0x10000 + seq;
    case 1:
      return `${id}.${seq}.${filler(h, n)}`;
    case 2:
      return {
        id,
        seq,
        text: filler(h, n),
        list: [seq, -id, seq + 0.5],
        nested: { ok: true, none: null },
      };
    default: {
      const bytes = new Uint8Array(8 + ((h >>> 8) % 300));
      const view = new DataView(bytes.buffer);
      view.setUint16(0, id, true);
      view.setUint16(2, seq, true);
      for (let i = 4; i < bytes.length; i++) {
        bytes[i] = (id * 31 + seq * 7 + i) & 255;
      }
      return bytes;
    }
  }
}

/**
 * Reads `[id, seq]` from a delivered message and checks that the whole
 * message is exactly `faultValue(id, seq)`.
 *
 * @param v The delivered message (a byte view is read during the call).
 * @returns Worker id and sequence number.
 * @throws {Error} The message is not a fault value or is corrupt.
 */
export function faultOrigin(v: unknown): [number, number] {
  let id: number;
  let seq: number;
  if (typeof v === "number") {
    id = Math.floor(v / 0x10000);
    seq = v % 0x10000;
  } else if (typeof v === "string") {
    [id, seq] = v.split(".", 2).map(Number);
  } else if (v instanceof Uint8Array && v.length >= 4) {
    const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    id = view.getUint16(0, true);
    seq = view.getUint16(2, true);
  } else if (typeof v === "object" && v !== null && "id" in v && "seq" in v) {
    id = Number(v.id);
    seq = Number(v.seq);
  } else {
    throw new Error(`Corrupt message: ${describeValue(v)}`);
  }
  if (!sameValue(v, faultValue(id, seq))) {
    throw new Error(
      `Corrupt message from worker ${id} seq ${seq}: ${describeValue(v)}`,
    );
  }
  return [id, seq];
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (typeof a === "object" && a !== null) {
    return JSON.stringify(a) === JSON.stringify(b);
  }
  return a === b;
}

function describeValue(v: unknown): string {
  const s = v instanceof Uint8Array
    ? `Uint8Array(${v.length}) [${v.subarray(0, 16).join()}...]`
    : JSON.stringify(v) ?? String(v);
  return s.length > 200 ? s.slice(0, 200) + "..." : s;
}
