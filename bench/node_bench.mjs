// The scenarios of the Node bench column (`deno task bench:node`, see
// bench/node_column.ts): the same file runs under `deno run` and under
// plain `node`, against the built package (npm/mod.js), and prints one JSON
// line of results. Plain JavaScript, so Node 20 runs it as it is.
//
// - Integer stream: one worker sends N integers to the main thread, through
//   a twloop port (spawnWorker + workerPort) and through the host's own
//   postMessage (web Worker on Deno, node:worker_threads on Node). Timed
//   from the start signal to the last integer received; the worker has
//   started and connected before the signal, so start-up is not counted.
// - Timers: N timers with whole-millisecond delays 0..10 from a seeded PRNG
//   (as bench/timers.ts), twloop `Loop.setTimer` + `runSync()` against the
//   host's `setTimeout`: total from the first insert to the last callback.
//
// Each figure is the median of REPS runs after one warm-up run.
// Usage: node bench/node_bench.mjs [--quick]

// Loaded by URL at run time: npm/ exists only after `deno task build:npm`,
// and `deno check` of a fresh clone must not need it.
const { Loop, spawnWorker } = await import(
  new URL("../npm/mod.js", import.meta.url).href
);

const QUICK = (globalThis.Deno?.args ?? globalThis.process.argv).includes(
  "--quick",
);
const MESSAGES = QUICK ? 200_000 : 1_000_000;
const TIMERS = QUICK ? 100_000 : 1_000_000;
const REPS = 3;
const SPAN_MS = 10;
const SEED = 0x7431;
const IS_DENO = "Deno" in globalThis;

const PORT_WORKER = new URL("./node_bench_worker.mjs", import.meta.url);
const POST_WORKER = new URL("./node_bench_post_worker.mjs", import.meta.url);

/** Waits (polling on timers, so the host and the loop keep running). */
async function until(ready) {
  while (!ready()) await new Promise((r) => setTimeout(r, 1));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

// --- integer stream -------------------------------------------------------

/** Control words: 0 start signal, 1 the worker is ready. */
function control() {
  return new Int32Array(new SharedArrayBuffer(8));
}

function start(ctrl) {
  const t0 = performance.now();
  Atomics.store(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
  return t0;
}

async function streamTwloop(n) {
  const ctrl = control();
  const loop = new Loop();
  let received = 0;
  let sum = 0;
  let t1 = 0;
  loop.onMessage = (v) => {
    sum += v;
    if (++received === n) t1 = performance.now();
  };
  spawnWorker(loop, PORT_WORKER, { data: { n, ctrl: ctrl.buffer } });
  const running = loop.run(); // returns when the worker closes its port
  await until(() => Atomics.load(ctrl, 1) === 1);
  const t0 = start(ctrl);
  await running;
  loop.close();
  check("twloop port", received, sum, n);
  return n / ((t1 - t0) / 1000);
}

function hostWorker(url, data) {
  if (IS_DENO) {
    const w = new Worker(url, { type: "module" });
    w.postMessage(data);
    return {
      onMessage: (fn) => (w.onmessage = (ev) => fn(ev.data)),
      stop: () => w.terminate(),
    };
  }
  const wt = globalThis.process.getBuiltinModule("node:worker_threads");
  const w = new wt.Worker(url, { workerData: data });
  return {
    onMessage: (fn) => w.on("message", fn),
    stop: () => w.terminate(),
  };
}

async function streamPost(n) {
  const ctrl = control();
  let received = 0;
  let sum = 0;
  let t1 = 0;
  const w = hostWorker(POST_WORKER, { n, ctrl: ctrl.buffer });
  const done = new Promise((resolve) => {
    w.onMessage((v) => {
      sum += v;
      if (++received === n) {
        t1 = performance.now();
        resolve();
      }
    });
  });
  await until(() => Atomics.load(ctrl, 1) === 1);
  const t0 = start(ctrl);
  await done;
  w.stop();
  check("postMessage", received, sum, n);
  return n / ((t1 - t0) / 1000);
}

function check(what, received, sum, n) {
  if (received !== n || sum !== (n * (n - 1)) / 2) {
    throw new Error(`Cannot measure ${what}: ${received} of ${n} received`);
  }
}

// --- timers ---------------------------------------------------------------

/** mulberry32, as bench/timers.ts: delays 0..SPAN_MS. */
function delays(n) {
  let s = SEED >>> 0;
  const d = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    d[i] = Math.floor(u * (SPAN_MS + 1));
  }
  return d;
}

function timersTwloop(d) {
  const loop = new Loop();
  let fired = 0;
  const cb = () => fired++;
  const t0 = performance.now();
  for (let i = 0; i < d.length; i++) loop.setTimer(cb, d[i]);
  loop.runSync();
  const ms = performance.now() - t0;
  loop.close();
  if (fired !== d.length) throw new Error(`twloop fired ${fired}`);
  return ms;
}

function timersHost(d) {
  return new Promise((resolve) => {
    let fired = 0;
    const n = d.length;
    const t0 = performance.now();
    const cb = () => {
      if (++fired === n) resolve(performance.now() - t0);
    };
    for (let i = 0; i < n; i++) setTimeout(cb, d[i]);
  });
}

// --- main -----------------------------------------------------------------

async function measure(fn) {
  await fn(); // warm-up
  const xs = [];
  for (let i = 0; i < REPS; i++) xs.push(await fn());
  return median(xs);
}

const d = delays(TIMERS);
const results = {
  runtime: IS_DENO
    ? `Deno ${globalThis.Deno.version.deno}`
    : `Node ${globalThis.process.version}`,
  messages: MESSAGES,
  timers: TIMERS,
  reps: REPS,
  portPerSecond: await measure(() => streamTwloop(MESSAGES)),
  postPerSecond: await measure(() => streamPost(MESSAGES)),
  setTimerMs: await measure(() => timersTwloop(d)),
  setTimeoutMs: await measure(() => timersHost(d)),
};
console.log(JSON.stringify(results));
if (!IS_DENO) globalThis.process.exit(0);
