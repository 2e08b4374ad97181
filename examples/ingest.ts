/**
 * Workload: an ingest pipeline. Worker threads play sensors: each posts
 * events `{ sensor, value, t }` into the loop through its port as fast as
 * backpressure allows. The loop aggregates them per time window: a
 * repeating loop timer closes the current window (count, mean, min, max
 * per sensor) every `--window` ms, in FIFO order with the events.
 *
 * Workers start streaming together, once all of them are up. Every event
 * carries `t = stamp()`, taken right before `post()`, so the
 * report's latency is enqueue -> run. At the end each worker says how many
 * it sent; the workload fails if the loop received a different number.
 *
 * Run: `deno task start examples/ingest.ts -- --workers 2 --events 250000`
 *
 * Arguments: `--workers N` (default 2), `--events N` per worker (default
 * 250000), `--sensors N` (default 16), `--window MS` (default 100), `--rate N`
 * events per second per worker (default 0: as fast as backpressure
 * allows, so the queue stays full and latency is mostly queueing). With
 * `--duration`, workers stop early and the counts still have to match.
 * Under `--virtual-time` the loop clock stands still while events keep it
 * busy, so most events fall in the first window.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { WorkloadContext, WorkloadResult } from "../cli/workload.ts";

/** What the parent gives each worker. */
export interface IngestTask {
  /** Worker number. */
  readonly id: number;
  /** Events to send (fewer if `stop` is set first). */
  readonly events: number;
  /** Sensor ids are 0 .. sensors - 1. */
  readonly sensors: number;
  /** Events per second, or 0 for as fast as backpressure allows. */
  readonly rate: number;
  /** Seed of the worker's values. */
  readonly seed: number;
  /** Word 0 becomes 1 when the run is stopping. */
  readonly stop: Int32Array;
  /** Word 0 becomes 1 once every worker is ready: the start line. */
  readonly go: Int32Array;
}

/** One event. */
export interface IngestEvent {
  /** Sensor id. */
  readonly sensor: number;
  /** Reading. */
  readonly value: number;
  /** `stamp()` when posted. */
  readonly t: number;
}

/** A worker's first message: it is running and waits for `go`. */
export interface IngestReady {
  /** Always true. */
  readonly ready: true;
}

/** A worker's last message. */
export interface IngestDone {
  /** Events the worker posted. */
  readonly done: number;
}

interface Agg {
  n: number;
  sum: number;
  min: number;
  max: number;
}

/**
 * Runs the pipeline.
 *
 * @param ctx The runner's context.
 * @returns Sent and received counts and window figures.
 */
export default function ingest(
  ctx: WorkloadContext,
): Promise<WorkloadResult> {
  const { values } = parseArgs({
    args: [...ctx.args],
    options: {
      workers: { type: "string", default: "2" },
      events: { type: "string", default: "250000" },
      sensors: { type: "string", default: "16" },
      window: { type: "string", default: "100" },
      rate: { type: "string", default: "0" },
    },
  });
  const workers = whole("--workers", values.workers, 1, 64);
  const events = whole("--events", values.events, 1, 1e9);
  const sensors = whole("--sensors", values.sensors, 1, 1e6);
  const windowMs = whole("--window", values.window, 1, 3_600_000);
  const rate = whole("--rate", values.rate, 0, 1e9);
  const { loop } = ctx;

  const stop = new Int32Array(new SharedArrayBuffer(4));
  const go = new Int32Array(new SharedArrayBuffer(4));
  const start = () => {
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
  };
  ctx.signal.addEventListener("abort", () => {
    Atomics.store(stop, 0, 1);
    start(); // workers still waiting at the start line see stop and finish
  });

  let window = new Map<number, Agg>();
  let windowEvents = 0;
  let windows = 0;
  let busiest = 0;
  let received = 0;
  let sent = 0;
  let finished = 0;
  let ready = 0;
  let lastLog = 0;

  const closeWindow = () => {
    windows++;
    busiest = Math.max(busiest, windowEvents);
    if (windowEvents > 0 && loop.now - lastLog >= 1000) {
      lastLog = loop.now;
      let mean = 0;
      for (const a of window.values()) mean += a.sum / a.n / window.size;
      ctx.log(
        `window ${windows}: ${windowEvents} events from ${window.size} sensors, mean reading ${
          mean.toFixed(2)
        }`,
      );
    }
    window = new Map();
    windowEvents = 0;
  };
  // Unreferenced: the open ports keep the loop alive, not the window.
  const ticker = loop.setTimer(closeWindow, windowMs, windowMs).unref();

  return new Promise((resolve, reject) => {
    loop.onMessage = (msg) => {
      if ((msg as IngestReady).ready === true) {
        // Spawning a Deno worker blocks this thread for ~60 ms: start the
        // streams together once all are up, so latency is not startup noise.
        if (++ready === workers) start();
        return;
      }
      const done = (msg as IngestDone).done;
      if (done !== undefined) {
        sent += done;
        if (++finished < workers) return;
        ticker.cancel();
        closeWindow(); // the last, partial window
        if (received !== sent) {
          reject(new Error(`Lost events: sent ${sent}, received ${received}`));
          return;
        }
        resolve({ workers, sent, received, windows, busiestWindow: busiest });
        return;
      }
      const e = msg as IngestEvent;
      ctx.record(e.t);
      received++;
      windowEvents++;
      const a = window.get(e.sensor);
      if (a === undefined) {
        window.set(e.sensor, {
          n: 1,
          sum: e.value,
          min: e.value,
          max: e.value,
        });
      } else {
        a.n++;
        a.sum += e.value;
        if (e.value < a.min) a.min = e.value;
        if (e.value > a.max) a.max = e.value;
      }
    };
    for (let id = 0; id < workers; id++) {
      const task: IngestTask = {
        id,
        events,
        sensors,
        rate,
        seed: Math.floor(ctx.random() * 2 ** 32),
        stop,
        go,
      };
      ctx.spawn(new URL("./ingest_worker.ts", import.meta.url), task);
    }
  });
}

function whole(flag: string, s: string, min: number, max: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(
      `Bad value for ingest ${flag}: expected a whole number from ${min} to ${max}, got "${s}"`,
    );
  }
  return n;
}
