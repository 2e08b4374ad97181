// Worker of bench/node_bench.mjs, postMessage side: waits for the start
// signal, then posts the integers 0..n-1 with the host's own postMessage
// (self on Deno, parentPort on Node).
const wt = "Deno" in globalThis
  ? undefined
  : globalThis.process.getBuiltinModule("node:worker_threads");

function run(data, post) {
  const ctrl = new Int32Array(data.ctrl);
  Atomics.store(ctrl, 1, 1); // ready
  Atomics.wait(ctrl, 0, 0);
  for (let i = 0; i < data.n; i++) post(i);
}

if (wt === undefined) {
  self.onmessage = (ev) => {
    run(ev.data, (v) => self.postMessage(v));
    self.close();
  };
} else {
  run(wt.workerData, (v) => wt.parentPort.postMessage(v));
}
