// Worker of bench/node_bench.mjs, twloop side: connects its port, waits for
// the start signal, posts the integers 0..n-1 (post waits when the port is
// full), then closes the port.
// By URL at run time: npm/ exists only after `deno task build:npm`.
const { workerPort } = await import(
  new URL("../npm/mod.js", import.meta.url).href
);

const { port, data } = await workerPort();
const ctrl = new Int32Array(data.ctrl);
Atomics.store(ctrl, 1, 1); // ready
Atomics.wait(ctrl, 0, 0);
for (let i = 0; i < data.n; i++) port.post(i);
port.close();
