/**
 * Saturated many-producer runs, shared by the throughput and push-latency
 * sections: P producer workers push as fast as they can into one queue while
 * the main thread consumes, for five transports:
 *
 * - `twloop`: `MpscQueue`, one producer slot per worker;
 * - `treiber`: the kernel's old Treiber stack with reversal, on the same
 *   buffer layout (`bench/baselines/treiber_stack.ts`);
 * - `lockRing`: a futex-mutex-guarded ring (`bench/baselines/lock_ring.ts`);
 * - `postMessage`: each worker posts to the main thread;
 * - `channel`: each worker posts on a `MessageChannel` port.
 *
 * Every item carries its producer and sequence number; the consumer checks
 * each producer's order and the count. The consumer of the three queues
 * drains {@linkcode SAT_DRAIN_LIMIT} items per call and, when it finds
 * nothing, pauses with the bounded spin-then-sleep {@linkcode Backoff}; a
 * producer whose slot (or the ring) is full does the same. On a 2-vCPU
 * machine with 4 or 8 producers the threads are oversubscribed, which is the
 * point: a lock holder that is preempted stalls every other producer.
 *
 * A run starts with one `GO` notify to all workers (`protocol.ts`) and ends
 * when the consumer has the last item. With `timed`, each worker also times
 * every push call that queued its item (one `performance.now()` before and
 * after; a refused push is not counted, its retry is) and sends the times
 * back.
 *
 * @module
 */

import { MpscQueue, type QueueEntry } from "../mod.ts";
import { Backoff } from "./backoff.ts";
import { LockRing, type RingEntry } from "./baselines/lock_ring.ts";
import { type TreiberEntry, TreiberStack } from "./baselines/treiber_stack.ts";
import { CONTROL_BYTES, READY, startRun } from "./protocol.ts";
import { spawnWorker } from "./worker_control.ts";

/** Which transport. */
export type SatKind =
  | "twloop"
  | "treiber"
  | "treiberWasm"
  | "lockRing"
  | "postMessage"
  | "channel";

/** Every transport, in report order. */
export const SAT_KINDS: readonly SatKind[] = [
  "twloop",
  "treiber",
  "treiberWasm",
  "lockRing",
  "postMessage",
  "channel",
];

/** Row labels. */
export const SAT_LABELS: Record<SatKind, string> = {
  twloop: "twloop MpscQueue",
  treiber: "Treiber + reversal",
  treiberWasm: "Treiber, WebAssembly atomics",
  lockRing: "lock + ring",
  postMessage: "Worker postMessage",
  channel: "MessageChannel",
};

/**
 * Nodes per producer slot (twloop, Treiber); the ring holds this many per
 * producer, so every queue holds the same items in all. Large enough that a
 * consumer pause (a yield lasts ~110 µs, `backoff.ts`) does not fill it.
 */
export const SAT_NODES = 16384;
/** Most producers a run uses. */
export const SAT_MAX_PRODUCERS = 8;
/** Items per `drain` call. */
export const SAT_DRAIN_LIMIT = 256;
/** Spin budget of both sides' backoff, ms. */
export const SAT_SPIN_MS = 0.2;
/** A run taking longer than this is stuck. */
const STALL_MS = 60_000;
/** Producer ids fit in the low 4 bits of a posted number. */
const ID_BITS = 4;

/** Job for `workers/sat_producer.ts`. */
export interface SatJob {
  /** Which transport. */
  kind: SatKind;
  /** This producer's id, 0 to P-1. */
  id: number;
  /** Items to push: sequence numbers 0 to count-1. */
  count: number;
  /** Time every push call. */
  timed: boolean;
  /** The queue buffer (queue kinds), or twloop's shared memory. */
  queue?: SharedArrayBuffer | WebAssembly.Memory;
  /** The port to post on (`channel`). */
  port?: MessagePort;
  /** The start word (`protocol.ts`). */
  control: SharedArrayBuffer;
  /** Backoff spin budget, ms. */
  spinBudgetMs: number;
}

/** What a producer sends back after its last item. */
export interface SatReport {
  /** Marks the report. */
  done: true;
  /** The producer's id. */
  id: number;
  /** Pushes refused because the slot or ring was full. */
  fullStalls: number;
  /** Treiber: compare-and-swaps lost; lock ring: contended acquisitions. */
  contended: number;
  /** Lock ring: sleeps on the lock. */
  lockSleeps: number;
  /** With `timed`: each queued push's duration, ms (clock cost included). */
  pushMs?: Float64Array;
}

/**
 * Encodes a posted item as one number.
 *
 * @param id Producer id.
 * @param seq Sequence number.
 * @returns The number.
 */
export function encodeItem(id: number, seq: number): number {
  return seq * (1 << ID_BITS) + id;
}

/** One run's results. */
export interface SatSample {
  /** Items per second, from `GO` to the last item. */
  perSecond: number;
  /** Elapsed ms. */
  ms: number;
  /** Reports of all producers. */
  reports: SatReport[];
  /** Consumer pauses on an empty or busy queue. */
  consumerPauses: number;
}

/** Items a run expects per producer, and the per-producer order check. */
class Tally {
  readonly next: Int32Array;
  received = 0;
  wrong = 0;
  lastAt = 0;
  constructor(producers: number) {
    this.next = new Int32Array(producers);
  }
  /** Records item (id, seq); returns nothing, counts disorder. */
  take(id: number, seq: number): void {
    if (id < 0 || id >= this.next.length || this.next[id] !== seq) {
      this.wrong++;
    } else {
      this.next[id]++;
    }
    this.received++;
  }
}

/**
 * Eight producer workers, spawned once and reused by every run, so their
 * push loops are compiled by the warm-up and stay optimized; and one twloop
 * queue with a slot for each, reused by every twloop run (each run leaves it
 * empty, its producers detached), as a program keeps its loop's queue: a
 * new queue per run would be a new WebAssembly instance at the same call
 * sites each time, which V8 stops inlining (see `runtime/wasm_atomics.ts`).
 */
export class SatPool {
  readonly #workers: Worker[] = [];
  readonly #twloop = MpscQueue.create({
    producers: SAT_MAX_PRODUCERS,
    nodesPerProducer: SAT_NODES,
    bytesPerProducer: 0,
  });
  /** The same for the Treiber stack on WebAssembly atomics. */
  readonly #treiberWasm = TreiberStack.create({
    producers: SAT_MAX_PRODUCERS,
    nodesPerProducer: SAT_NODES,
    wasm: true,
  });

  /** Spawns the workers. */
  constructor() {
    for (let i = 0; i < SAT_MAX_PRODUCERS; i++) {
      this.#workers.push(spawnWorker("./workers/sat_producer.ts"));
    }
  }

  /** Terminates the workers. */
  close(): void {
    for (const w of this.#workers) w.terminate();
  }

  /**
   * Runs one saturated run.
   *
   * @param kind Transport.
   * @param producers Workers pushing (1 to 8).
   * @param total Items in all (split evenly).
   * @param timed Time every push.
   * @returns The sample.
   * @throws {Error} An item was lost, repeated or out of order, or a
   *   worker failed or stalled.
   */
  async run(
    kind: SatKind,
    producers: number,
    total: number,
    timed: boolean,
  ): Promise<SatSample> {
    const each = Math.floor(total / producers);
    total = each * producers;
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const tally = new Tally(producers);
    const workers = this.#workers.slice(0, producers);
    const reports: SatReport[] = [];
    const allReports = Promise.withResolvers<void>();
    const allItems = Promise.withResolvers<void>();
    let ready = 0;
    const allReady = Promise.withResolvers<void>();
    const onItem = (v: number) => {
      tally.take(v & ((1 << ID_BITS) - 1), Math.floor(v / (1 << ID_BITS)));
      if (tally.received === total) {
        tally.lastAt = performance.now();
        allItems.resolve();
      }
    };
    const queue = createQueue(kind, producers, this.#twloop, this.#treiberWasm);
    const channels: MessageChannel[] = [];
    const stall = setTimeout(() => {
      const e = new Error(`Cannot finish ${kind} run: stalled`);
      allReady.reject(e);
      allItems.reject(e);
      allReports.reject(e);
    }, STALL_MS);
    try {
      workers.forEach((w, id) => {
        w.onerror = (ev) => {
          ev.preventDefault();
          const e = new Error(
            `Cannot run ${kind}: worker failed: ${ev.message}`,
          );
          allReady.reject(e);
          allItems.reject(e);
          allReports.reject(e);
        };
        w.onmessage = (ev: MessageEvent<number | string | SatReport>) => {
          const d = ev.data;
          if (typeof d === "number") onItem(d);
          else if (d === READY) {
            if (++ready === producers) allReady.resolve();
          } else if (typeof d === "object" && d !== null && d.done) {
            reports.push(d);
            if (reports.length === producers) allReports.resolve();
          }
        };
        const job: SatJob = {
          kind,
          id,
          count: each,
          timed,
          control,
          spinBudgetMs: SAT_SPIN_MS,
        };
        if (queue) {
          // twloop's producers attach to the memory, to push with
          // WebAssembly atomics; the baselines take the buffer.
          job.queue = queue.kind === "twloop" || queue.kind === "treiberWasm"
            ? queue.q.memory ?? queue.buffer
            : queue.buffer;
        }
        if (kind === "channel") {
          const ch = new MessageChannel();
          channels.push(ch);
          ch.port1.onmessage = (ev: MessageEvent<number>) => onItem(ev.data);
          job.port = ch.port2;
          w.postMessage(job, [ch.port2]);
        } else {
          w.postMessage(job);
        }
      });
      await allReady.promise;
      let pauses = 0;
      const t0 = performance.now();
      startRun(control);
      if (queue) {
        pauses = consume(queue, tally, total);
        tally.lastAt = performance.now();
      } else {
        await allItems.promise;
      }
      const ms = tally.lastAt - t0;
      await allReports.promise;
      if (queue) {
        // Anything still queued after every producer reported is an extra.
        consume(queue, tally, 0);
      }
      if (tally.received !== total || tally.wrong !== 0) {
        throw new Error(
          `Cannot trust ${kind} run with ${producers} producers: received ` +
            `${tally.received} of ${total}, ${tally.wrong} out of order`,
        );
      }
      return {
        perSecond: total / (ms / 1000),
        ms,
        reports,
        consumerPauses: pauses,
      };
    } finally {
      clearTimeout(stall);
      for (const ch of channels) ch.port1.close();
      for (const w of workers) {
        w.onmessage = null;
        w.onerror = null;
      }
    }
  }
}

/** A consumer of one of the three queue kinds. */
type SatQueue =
  | { kind: "twloop"; buffer: SharedArrayBuffer; q: MpscQueue }
  | { kind: "treiber"; buffer: SharedArrayBuffer; q: TreiberStack }
  | { kind: "treiberWasm"; buffer: SharedArrayBuffer; q: TreiberStack }
  | { kind: "lockRing"; buffer: SharedArrayBuffer; q: LockRing };

function createQueue(
  kind: SatKind,
  producers: number,
  twloop: MpscQueue,
  treiberWasm: TreiberStack,
): SatQueue | undefined {
  if (kind === "twloop") return { kind, buffer: twloop.buffer, q: twloop };
  if (kind === "treiberWasm") {
    return { kind, buffer: treiberWasm.buffer, q: treiberWasm };
  }
  if (kind === "treiber") {
    const q = TreiberStack.create({ producers, nodesPerProducer: SAT_NODES });
    return { kind, buffer: q.buffer, q };
  }
  if (kind === "lockRing") {
    const q = LockRing.create(SAT_NODES * producers);
    return { kind, buffer: q.buffer, q };
  }
  return undefined;
}

/**
 * Drains until `total` items arrived (0: one sweep until nothing is left).
 * One loop per queue class, so each call site sees one entry class.
 */
function consume(sq: SatQueue, t: Tally, total: number): number {
  const backoff = new Backoff(SAT_SPIN_MS);
  const sweep = total === 0;
  const stalled = () => {
    if (backoff.stalledMs() > STALL_MS) {
      throw new Error(`Cannot finish ${sq.kind} run: consumer stalled`);
    }
  };
  if (sq.kind === "twloop") {
    const q = sq.q;
    const fn = (e: QueueEntry) => t.take(e.a, e.b);
    for (;;) {
      const n = q.drain(SAT_DRAIN_LIMIT, fn);
      if (sweep ? n === 0 && q.lastState !== "busy" : t.received >= total) {
        break;
      }
      if (n > 0) backoff.reset();
      else {
        backoff.pause();
        stalled();
      }
    }
  } else if (sq.kind === "treiber" || sq.kind === "treiberWasm") {
    const q = sq.q;
    const fn = (e: TreiberEntry) => t.take(e.a, e.b);
    for (;;) {
      const n = q.drain(SAT_DRAIN_LIMIT, fn);
      if (sweep ? n === 0 : t.received >= total) break;
      if (n > 0) backoff.reset();
      else {
        backoff.pause();
        stalled();
      }
    }
  } else {
    const q = sq.q;
    const fn = (e: RingEntry) => t.take(e.a, e.b);
    for (;;) {
      const n = q.drain(SAT_DRAIN_LIMIT, fn);
      if (sweep ? n === 0 : t.received >= total) break;
      if (n > 0) backoff.reset();
      else {
        backoff.pause();
        stalled();
      }
    }
  }
  return backoff.pauses;
}
