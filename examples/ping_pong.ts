/**
 * Request/response between two loops on two threads: the main loop spawns
 * a worker that runs its own loop and hands back a port to it, so each side
 * posts into the other's queue. Measures round trips against
 * `Worker.postMessage` doing the same.
 *
 * Run: `deno run --allow-read=mod.ts,runtime,examples examples/ping_pong.ts`
 *
 * @module
 */

import { connect, Loop, type PortHandle, spawnWorker } from "../mod.ts";

const ROUNDS = 20_000;

async function twloopRoundTrips(): Promise<number> {
  const loop = new Loop();
  const child = spawnWorker(
    loop,
    new URL("./ping_pong_worker.ts", import.meta.url),
  );
  // The worker's own loop port can only travel by postMessage: it carries
  // a SharedArrayBuffer, which cannot be written into shared memory.
  const back = await new Promise<PortHandle>((resolve) => {
    child.worker.onmessage = (ev) => resolve(ev.data as PortHandle);
  });
  const toWorker = connect(back);
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

const a = await twloopRoundTrips();
const b = await postMessageRoundTrips();
console.log(`${ROUNDS} round trips between two threads`);
console.log(`  twloop ports:        ${a.toFixed(2)} µs per round trip`);
console.log(`  Worker.postMessage:  ${b.toFixed(2)} µs per round trip`);
console.log(`  ratio:               ${(b / a).toFixed(1)}x`);
