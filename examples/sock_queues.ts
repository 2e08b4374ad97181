/**
 * The queues `sock_test.ts` compares, as completion sinks for an I/O worker
 * (`runtime/io/io_worker_thread.ts`) and their loop-side halves. Everything
 * else (sockets, ring, loop, handler) is the same in every run.
 *
 * | kind       | worker side (the "add")                    | loop side (the "run")                          |
 * | ---------- | ------------------------------------------ | ---------------------------------------------- |
 * | `twloop`   | the loop's queue: one `pushBatch` per turn | the loop pops each completion as an item       |
 * | `twloop-1` | the loop's queue: one `push` per completion| the same                                       |
 * | `treiber`  | `bench/baselines/treiber_stack.ts`: one    | a "kick" item on the loop's queue drains the   |
 * |            | compare-and-swap push per completion, plus | stack (detach, reverse, run at most            |
 * |            | a kick on the loop's queue when the stack  | `MAX_EVENTS`, retry list for the rest) and     |
 * |            | was empty                                  | queues itself again while anything is left     |
 *
 * Every kind wakes the loop once per worker turn, lazily, on the loop's own
 * wake word. The Treiber stack has no batch push (the kernel's old llist
 * added one request at a time too), so `twloop-1` is the like-for-like
 * twloop row and `twloop` the runtime as shipped.
 *
 * ## Why the Treiber kick cannot be lost
 *
 * The worker pushes a kick exactly when its push found the stack empty
 * (`PUSH_WAS_EMPTY`). The loop's drain, after running, queues itself again
 * unless the stack is empty (retry list and head both), so whenever the
 * stack holds an item some kick is queued or running. If the loop's queue
 * slot is full the kick is owed and pushed on the worker's next turn, and
 * a 20 ms fallback timer on the loop drains a non-empty stack anyway.
 *
 * @module
 */

import {
  FIRST_USER_TAG,
  type Loop,
  PUSH_FULL,
  PUSH_WAS_EMPTY,
} from "../mod.ts";
import type {
  CompletionSink,
  SinkContext,
} from "../runtime/io/completion_sink.ts";
import type { IoWorker } from "../runtime/io/io_worker.ts";
import { wake } from "../runtime/wake.ts";
import {
  type TreiberEntry,
  TreiberProducer,
  TreiberStack,
} from "../bench/baselines/treiber_stack.ts";

/** The queues compared. */
export const QUEUE_KINDS = ["twloop", "twloop-1", "treiber"] as const;
/** One of {@linkcode QUEUE_KINDS}. */
export type QueueKind = typeof QUEUE_KINDS[number];

/** Items run per drain of the Treiber stack: the loop's `maxEvents`. */
export const MAX_EVENTS = 20;
/** Tag of the Treiber kick (after the I/O worker's own tags). */
const KICK = FIRST_USER_TAG + 32;
/** Nodes of the Treiber stack: as many as the loop's queue gives a slot. */
const TREIBER_NODES = 4096;

/** What the worker's sink factory receives through `sinkData`. */
interface SinkData {
  kind: QueueKind;
  /** The Treiber stack's buffer (`treiber` only). */
  stack?: SharedArrayBuffer;
  /** {@linkcode SinkTimes} words. */
  times: SharedArrayBuffer;
}

/**
 * Sink timing words (`Int32Array`, microseconds, wrapping at 2^32): the
 * worker adds to its own totals and stores them with `Atomics.store` after
 * each call; the loop reads them with `Atomics.load` (snapshots).
 */
const T_PUSH_US = 0;
/** Microseconds spent in `wake` calls. */
const T_WAKE_US = 1;
/** Words in the timing buffer. */
const T_WORDS = 2;

/** Publishes items to one queue; returns how many went in. */
type Publish = (
  tags: readonly number[],
  as: readonly number[],
  bs: readonly number[],
  n: number,
) => number;

function publisher(context: SinkContext, data: SinkData): Publish {
  const p = context.producer;
  if (data.kind === "twloop") {
    return (tags, as, bs, n) => {
      const k = Math.min(n, p.freeNodes());
      return k > 0 && p.pushBatch(tags, as, bs, k) !== PUSH_FULL ? k : 0;
    };
  }
  if (data.kind === "twloop-1") {
    return (tags, as, bs, n) => {
      let k = 0;
      while (k < n && p.push(tags[k], as[k], bs[k]) !== PUSH_FULL) k++;
      return k;
    };
  }
  const tp = TreiberProducer.attach(data.stack!);
  let owed = false;
  return (tags, as, bs, n) => {
    let k = 0;
    for (; k < n; k++) {
      const r = tp.push(tags[k], as[k], bs[k]);
      if (r === PUSH_FULL) break;
      if (r === PUSH_WAS_EMPTY) owed = true;
    }
    if (owed && p.push(KICK, 0, 0) !== PUSH_FULL) owed = false;
    return k;
  };
}

/**
 * The worker side: the sink for `context.data.kind`, timing its pushes and
 * its wakes apart. Used by `sock_queue_worker.ts`.
 *
 * @param context The worker's producer and the loop's queue words.
 * @returns The sink.
 */
export function sockSink(context: SinkContext): CompletionSink {
  const data = context.data as SinkData;
  const publish = publisher(context, data);
  const w = context.queueWords;
  const times = new Int32Array(data.times);
  let pushMs = 0;
  let wakeMs = 0;
  return {
    push(tags, as, bs, n) {
      const t0 = performance.now();
      const k = publish(tags, as, bs, n);
      const t1 = performance.now();
      if (k > 0) wake(w, true); // one lazy wake per worker turn
      const t2 = performance.now();
      pushMs += t1 - t0;
      wakeMs += t2 - t1;
      // Pair with the Atomics.load calls in LoopSide.times().
      Atomics.store(times, T_PUSH_US, Math.round(pushMs * 1000));
      Atomics.store(times, T_WAKE_US, Math.round(wakeMs * 1000));
      return k;
    },
  };
}

/** The worker's time in the sink so far, ms. */
export interface SinkTimes {
  /** Publishing completions (the queue's add). */
  readonly pushMs: number;
  /** Waking the loop (`wake`, including any notify). */
  readonly wakeMs: number;
}

/** The loop side of one kind. */
export interface LoopSide {
  /** For `IoWorkerOptions.sinkData`. */
  readonly sinkData: unknown;
  /**
   * Routes the worker's completions to `deliver` (called with each one, on
   * the loop thread).
   *
   * @param loop The loop.
   * @param io The worker, started with {@linkcode LoopSide.sinkData}.
   * @param deliver Runs one completion (usually `io.deliver`, timed).
   */
  install(
    loop: Loop,
    io: IoWorker,
    deliver: (e: { tag: number; a: number; b: number }) => void,
  ): void;
  /** Drains the Treiber stack made so far (0 for the twloop kinds). */
  readonly detaches: number;
  /**
   * The worker's sink timings.
   *
   * @returns A snapshot.
   */
  times(): SinkTimes;
}

/**
 * The loop side of `kind`.
 *
 * @param kind The queue.
 * @returns Its sink data and router.
 */
export function loopSide(kind: QueueKind): LoopSide {
  const timesBuffer = new SharedArrayBuffer(T_WORDS * 4);
  const t = new Int32Array(timesBuffer);
  const times = (): SinkTimes => ({
    pushMs: (Atomics.load(t, T_PUSH_US) >>> 0) / 1000,
    wakeMs: (Atomics.load(t, T_WAKE_US) >>> 0) / 1000,
  });
  if (kind !== "treiber") {
    return {
      sinkData: { kind, times: timesBuffer } satisfies SinkData,
      install(loop, io, deliver) {
        loop.routeEntries(io.slot, deliver);
      },
      detaches: 0,
      times,
    };
  }
  const stack = TreiberStack.create({
    producers: 1,
    nodesPerProducer: TREIBER_NODES,
  });
  return {
    sinkData: {
      kind,
      stack: stack.buffer,
      times: timesBuffer,
    } satisfies SinkData,
    install(loop, io, deliver) {
      const run = (e: TreiberEntry) => deliver(e);
      const kick = () => {
        stack.drain(MAX_EVENTS, run);
        if (!stack.isEmpty()) loop.queue(kick);
      };
      loop.routeEntries(io.slot, (e) => e.tag === KICK ? kick() : deliver(e));
      const fallback = loop.setTimer(
        () => {
          if (io.stopped) return fallback.cancel();
          if (!stack.isEmpty()) kick();
        },
        20,
        20,
      ).unref();
    },
    get detaches() {
      return stack.detaches;
    },
    times,
  };
}
