// Node example for the npm package: two workers post numbers to one loop.
// `npm install @twloop/twloop`, then `node sum.mjs` (scripts/pack_check.ts
// runs it from a tarball installed in an empty folder).
import { Loop, spawnWorker } from "@twloop/twloop";

const WORKERS = 2;
const PER_WORKER = 50_000;

const loop = new Loop();
let count = 0;
let total = 0;
let inOrder = true;
const last = new Map(); // port slot -> last number seen
loop.onMessage = (n, slot) => {
  if (n <= (last.get(slot) ?? 0)) inOrder = false;
  last.set(slot, n);
  count++;
  total += n;
};
const url = new URL("./sum_worker.mjs", import.meta.url);
for (let w = 0; w < WORKERS; w++) {
  const from = w * PER_WORKER + 1;
  spawnWorker(loop, url, { data: { from, to: from + PER_WORKER - 1 } });
}
await loop.run(); // returns once both workers have closed their ports
console.log(`${count} messages from ${WORKERS} workers, sum ${total}`);
console.log(inOrder ? "each worker's messages in order" : "OUT OF ORDER");
