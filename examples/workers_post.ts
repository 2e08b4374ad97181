/**
 * Workers posting into a loop: each worker attaches a producer to the
 * loop's queue buffer and pushes numbered items; the loop thread receives
 * them in FIFO order with its own timer ticking alongside, checks every
 * worker's sequence, and prints what it saw.
 *
 * Run: `deno run --allow-read=mod.ts,runtime,examples examples/workers_post.ts`
 *
 * @module
 */

import { FIRST_USER_TAG, Loop, type QueueEntry } from "../mod.ts";

/** Items each worker posts. */
const PER_WORKER = 500_000;
/** Worker count. */
const WORKERS = 2;
/** Tag of a numbered item; the worker id is added to it. */
const TAG_ITEM = FIRST_USER_TAG;
/** Tag a worker sends last. */
const TAG_DONE = FIRST_USER_TAG + 100;

const loop = new Loop();
const expected = new Array<number>(WORKERS).fill(0);
let received = 0;
let ticks = 0;
const started = performance.now();

loop.onEntry = (e: QueueEntry) => {
  if (e.tag === TAG_DONE) {
    loop.unref(); // this worker holds the loop open no longer
    return;
  }
  const id = e.tag - TAG_ITEM;
  if (e.a !== expected[id]) {
    throw new Error(`worker ${id}: expected item ${expected[id]}, got ${e.a}`);
  }
  expected[id]++;
  received++;
};

const tick = loop.setTimer(() => ticks++, 10, 10).unref();

const workers: Worker[] = [];
for (let id = 0; id < WORKERS; id++) {
  const w = new Worker(new URL("./workers_post_worker.ts", import.meta.url), {
    type: "module",
  });
  loop.ref();
  w.postMessage({
    buffer: loop.buffer,
    id,
    count: PER_WORKER,
    tag: TAG_ITEM + id,
    doneTag: TAG_DONE,
  });
  workers.push(w);
}

loop.runSync();
tick.cancel();
for (const w of workers) w.terminate();

const ms = performance.now() - started;
const m = loop.metrics();
console.log(
  `received ${received} items from ${WORKERS} workers in ${ms.toFixed(0)} ms`,
);
console.log(
  `  ${
    (received / ms / 1000).toFixed(2)
  } M items/s, every worker's order intact`,
);
console.log(`  timer ticks alongside: ${ticks}`);
console.log(
  `  passes ${m.passes}, sleeps ${m.sleeps}, wakes ${m.wakes}, notifies ${m.notifies}, ` +
    `busy ${m.busy}, peak depth ${m.peakDepth}, utilization ${
      (m.utilization * 100).toFixed(0)
    }%`,
);
if (received !== WORKERS * PER_WORKER) {
  throw new Error(`lost items: ${WORKERS * PER_WORKER - received}`);
}
