/**
 * Request/response between two loops on two threads: the main loop spawns
 * a worker that runs its own loop and hands back a port to it, so each side
 * posts into the other's queue. Only one request is in flight at a time.
 *
 * As a workload (`deno task start examples/ping_pong.ts -- --rounds
 * 20000`): the worker stamps each reply as it posts it, so the recorded
 * latency is one leg, the reply's enqueue -> run on the main loop; the
 * result adds the mean round trip and checks that every request got its
 * reply.
 *
 * Run directly, it compares round trips against `Worker.postMessage` doing
 * the same: `deno run --allow-read=mod.ts,runtime,examples
 * examples/ping_pong.ts`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { connect, Loop, type PortHandle, spawnWorker } from "../mod.ts";
import type { WorkloadContext, WorkloadResult } from "../cli/workload.ts";

const ROUNDS = 20_000;

/** The worker's port handle, which it sends back by `postMessage`. */
function portBack(worker: Worker): Promise<PortHandle> {
  // The worker's own loop port can only travel by postMessage: it carries
  // a SharedArrayBuffer, which cannot be written into shared memory.
  return new Promise<PortHandle>((resolve) => {
    worker.onmessage = (ev) => resolve(ev.data as PortHandle);
  });
}

/**
 * The workload: `--rounds N` request/response round trips (default
 * 20000), fewer if the run is stopped.
 *
 * @param ctx The runner's context.
 * @returns Requests, replies and the mean round trip in µs.
 */
export default async function pingPong(
  ctx: WorkloadContext,
): Promise<WorkloadResult> {
  const { values } = parseArgs({
    args: [...ctx.args],
    options: { rounds: { type: "string", default: String(ROUNDS) } },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(
      `Bad value for ping_pong --rounds: expected a whole number >= 1, got "${values.rounds}"`,
    );
  }
  const { loop } = ctx;
  const child = ctx.spawn(
    new URL("./ping_pong_worker.ts", import.meta.url),
    { stamped: true },
  );
  const toWorker = connect(await portBack(child.worker));
  let requests = 0;
  let replies = 0;
  let sentAt = 0;
  let rttSum = 0;
  return new Promise((resolve, reject) => {
    loop.onMessage = (stamp) => {
      rttSum += performance.now() - sentAt;
      ctx.record(stamp as number); // the reply's enqueue -> run
      replies++;
      if (replies < rounds && !ctx.signal.aborted) {
        sentAt = performance.now();
        toWorker.post(requests++);
        return;
      }
      toWorker.post(-1); // the worker closes its port and its loop
      toWorker.close();
      if (replies !== requests) {
        reject(new Error(`Lost replies: ${requests} sent, ${replies} back`));
      }
      resolve({
        requests,
        replies,
        meanRoundTripUs: Math.round((rttSum / replies) * 1000 * 10) / 10,
      });
    };
    sentAt = performance.now();
    toWorker.post(requests++);
  });
}

async function twloopRoundTrips(): Promise<number> {
  const loop = new Loop();
  const child = spawnWorker(
    loop,
    new URL("./ping_pong_worker.ts", import.meta.url),
  );
  const toWorker = connect(await portBack(child.worker));
  let seen = 0;
  const t0 = performance.now();
  loop.onMessage = (n) => {
    if (n !== seen) throw new Error(`expected reply ${seen}, got ${n}`);
    seen++;
    if (seen < ROUNDS) toWorker.post(seen);
    else toWorker.post(-1); // ask the worker to finish
  };
  toWorker.post(0);
  await loop.run(); // ends when the worker closes its port
  const us = ((performance.now() - t0) * 1000) / ROUNDS;
  toWorker.close();
  child.worker.terminate();
  return us;
}

async function postMessageRoundTrips(): Promise<number> {
  const url = new URL("./ping_pong_native_worker.ts", import.meta.url);
  const w = new Worker(url, { type: "module" });
  let seen = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    w.onmessage = (ev) => {
      if (ev.data !== seen) throw new Error("out of order");
      if (++seen < ROUNDS) w.postMessage(seen);
      else resolve();
    };
    w.postMessage(0);
  });
  w.terminate();
  return ((performance.now() - t0) * 1000) / ROUNDS;
}

if (import.meta.main) {
  const a = await twloopRoundTrips();
  const b = await postMessageRoundTrips();
  console.log(`${ROUNDS} round trips between two threads`);
  console.log(`  twloop ports:        ${a.toFixed(2)} µs per round trip`);
  console.log(`  Worker.postMessage:  ${b.toFixed(2)} µs per round trip`);
  console.log(`  ratio:               ${(b / a).toFixed(1)}x`);
}
