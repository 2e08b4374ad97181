/**
 * The seed's scenario on real sockets: a TCP receiver on 127.0.0.1 built on
 * an I/O worker (multishot receives into a provided buffer ring, one
 * completion per receive through the loop's queue), fed by a load generator
 * in a separate process (`sock_load.ts`, plain Deno TCP, no twloop) whose N
 * clients stream 16 KiB writes for a few seconds. Each N runs once per
 * queue, in the same process run (`sock_queues.ts`): twloop's queue as
 * shipped (`twloop`, one batch push per worker turn), twloop's queue with
 * one push per completion (`twloop-1`), and the Treiber stack with reversal
 * from `bench/baselines/` (`treiber`, the kernel's old llist).
 *
 * Run (from the repository root; the numbers quoted for issue 6 come from
 * `--rounds 3`, the defaults otherwise):
 *
 * ```sh
 * deno run --no-prompt --allow-net=127.0.0.1 --allow-run=deno,sh \
 *   --allow-read=mod.ts,runtime,examples,bench \
 *   examples/sock_test.ts [--clients 8,1024] [--seconds 3] [--rounds 1] \
 *   [--queues twloop,twloop-1,treiber] [--drive sync|async] [--debug]
 * ```
 *
 * `--allow-run=deno` starts the generator (`deno` on the PATH); `sh` runs
 * `ulimit -Hn` to check the file-descriptor limit up front (optional:
 * reading `/proc/self/limits` would need `--allow-all` in Deno 2). Rows come
 * in the order N, round, queue, so the queues of one round run back to back.

 * ## 1024 clients: the open-file limit
 *
 * Each client is a socket in the generator and one in the receiver, so each
 * process needs N descriptors plus Deno's own (about 20 at rest, plus the
 * worker's). Deno raises its soft `RLIMIT_NOFILE` to the hard limit at
 * startup, so only the hard limit counts: `ulimit -Hn` must be at least
 * N + 64. Where it is lower (1024 on some systems), raise it in the shell
 * that runs this (`ulimit -Hn 4096` as root, or `nofile` in
 * `/etc/security/limits.conf`); this example stops with a message saying
 * so, and an `EMFILE` during the run (from either process) fails it with
 * the same advice. The generator opens connections 128 at a time so the
 * listener's backlog never overflows.
 *
 * ## What the table reports
 *
 * The window runs from the first completion to the last connection's end.
 * The loop is driven three times per run so its metrics are exact at the
 * window's edges (they are complete between run calls): until the first
 * completion, the window, then until the generator's count is in. In the
 * window the loop uses the blocking drive (`runSync`, the default
 * `--drive sync`): completions come through the queue, not host promises,
 * so nothing needs the thread's host event loop; `--drive async` uses
 * `run()` instead (`Atomics.waitAsync`; measured here at about half the
 * throughput, the wake being slower to reach the loop).
 *
 * Shares are of the window's wall time, one core's worth:
 *
 * - Gb/s received and completions per second.
 * - add, split in two: push, the worker's time publishing completions (the
 *   queue operation itself), and wake, its time in `wake()` (the lazy-wake
 *   protocol and any notify). Together, the seed's `io_req_local_work_add`.
 *   Wake is wall time on an oversubscribed machine: a notify makes the
 *   kernel run the woken loop thread, and the worker's clock keeps running
 *   while it waits for a core again. Push is rarely interrupted.
 * - run: the loop thread's busy time (window minus its sleep) minus the
 *   time inside the completion handler (`IoWorker.deliver`: ring
 *   bookkeeping, the bytes read in place, the buffer given back). That is
 *   popping, reversing, dispatch and the pass machinery (the seed's
 *   `__io_run_local_work*` and `llist_reverse_order`). Every handler call
 *   is timed; the two clock reads it adds (one inside the interval, one
 *   outside, cost measured at start) are subtracted from both.
 * - push+run: the queue's own share, beside the seed's add+run figure.
 * - wakes/s: notifies the loop received; receiver CPU: cores the receiver
 *   process used in the window (`process.cpuUsage()`, all threads).
 * - Whether the bytes received equal what the generator says it sent.
 *
 * A second table (both are printed by `sock_report.ts`) gives, per N and
 * queue, the medians over the rounds beside the seed's figures (twloop
 * rows beside its mpscq, Treiber beside its llist). The seed's shares are perf samples of a whole machine at
 * 24-53 Gb/s; ours are wall time of one core at a few Gb/s: compare the
 * direction between queues, not the values.
 *
 * The loop runs with `spinMicros: 0`, so time it would spend polling before
 * a sleep is not counted as task work. On a 2-core machine the generator,
 * the worker and the loop share the cores and the generator (one JS thread
 * writing to N sockets) is often the bottleneck: absolute rates are far
 * below the seed's and move by tens of percent between runs, so compare
 * queues within a round and over several rounds, never single rows.
 *
 * @module
 */

import process from "node:process";
import { Loop } from "../mod.ts";
import { IoWorker } from "../runtime/io/io_worker.ts";
import { denoIo } from "../runtime/host/deno_io.ts";
import { loopSide, QUEUE_KINDS, type QueueKind } from "./sock_queues.ts";
import {
  printHeader,
  printRow,
  type RunResult,
  Summary,
} from "./sock_report.ts";
import { CHUNK, startLoadGenerator } from "./sock_generator.ts";

/** Descriptors each process needs beyond one per client. */
const FD_MARGIN = 64;
/** A run that takes this long past its streaming time has hung. */
const HANG_MS = 30_000;
const drive = arg("drive", "sync");

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

/** The hard open-file limit (Deno's soft limit starts there), if known. */
function fdLimit(): number | undefined {
  // /proc/self/limits needs --allow-all in Deno 2: ask a shell instead.
  if (
    Deno.permissions.querySync({ name: "run", command: "sh" }).state !==
      "granted"
  ) {
    return undefined;
  }
  const out = new Deno.Command("sh", { args: ["-c", "ulimit -Hn"] })
    .outputSync();
  const text = new TextDecoder().decode(out.stdout).trim();
  return text === "unlimited" ? Infinity : Number(text) || undefined;
}

/** This process's CPU time so far (all threads), ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Cost of one `performance.now()`, ms: the least of a few warm batches. */
function clockCost(): number {
  const n = 50_000;
  let best = Infinity;
  let x = 0;
  for (let round = 0; round < 6; round++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) x += performance.now();
    const ms = (performance.now() - t0) / n;
    if (round > 0 && ms < best) best = ms; // round 0 warms up
  }
  return x > 0 ? best : 0;
}

/** Reads the generator's stdout line by line. */
async function* lines(stream: ReadableStream<Uint8Array>) {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    rest += text;
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
}

async function run(
  clients: number,
  seconds: number,
  queue: QueueKind,
): Promise<RunResult> {
  const loop = new Loop({ spinMicros: 0 });
  const side = loopSide(queue);
  const io = IoWorker.start(loop, denoIo, {
    // One buffer per socket waiting in a receive, plus room to stream.
    buffers: Math.min(65536, clients * 2 + 64),
    bufferSize: CHUNK,
    perConnection: 4,
    workerUrl: new URL("./sock_queue_worker.ts", import.meta.url),
    sinkData: side.sinkData,
  });
  let bytes = 0;
  let completions = 0;
  let handlerMs = 0;
  let calls = 0;
  let touched = 0;
  let ended = 0;
  let errors = 0;
  let sent = -1;
  let failure: Error | undefined;

  const fail = (e: Error) => {
    failure ??= e;
    loop.stop();
  };
  io.onData = (_conn, data) => {
    if (completions === 0) loop.stop(); // phase 1 ends after this task
    bytes += data.length;
    touched ^= data[0] ^ data[data.length - 1]; // read in place
    completions++;
  };
  side.install(loop, io, (e) => {
    const h0 = performance.now();
    io.deliver(e);
    handlerMs += performance.now() - h0;
    calls++;
  });
  const done = () => {
    if (ended === clients && sent >= 0) io.stop(() => loop.unref());
  };
  io.onEnd = (conn, error) => {
    if (++ended === clients) loop.stop(); // phase 2 ends after this task
    if (error !== undefined) errors++;
    io.close(conn);
    done();
  };
  io.onListenerEnd = (_listener, error) => {
    fail(error); // EMFILE says what to raise
  };

  loop.ref(); // until the generator's count is in
  io.listen({ hostname: "127.0.0.1", port: 0 }, (r) => {
    if (!r.ok) return fail(r.error);
    const child = startLoadGenerator(r.value.port, clients, seconds);
    // Not `loop.track`: a tracked operation in flight makes every pass
    // yield a macrotask turn, which would be charged to the loop's run time.
    (async () => {
      for await (const line of lines(child.stdout)) {
        if (line.startsWith("{")) {
          return (JSON.parse(line) as { sent: number[] }).sent;
        }
      }
      const status = await child.status;
      throw new Error(
        `Cannot count bytes sent: the load generator exited with code ${status.code}`,
      );
    })().then(
      (counts) =>
        loop.queue(() => {
          sent = counts.reduce((a, b) => a + b, 0);
          done();
        }),
      (e) => loop.queue(() => fail(e)),
    );
  }, { arm: true });

  // Three drives, so the loop's metrics are exact at the window's edges
  // (they are complete between run calls): 1. until the first completion;
  // 2. until the last connection ends (the window); 3. until the
  // generator's count is in and the worker has stopped.
  // A loop timer, so it also fires inside the blocking drive.
  const hang = loop.setTimer(() => {
    fail(
      new Error(
        `Cannot finish run: hung ${HANG_MS} ms after streaming ended ` +
          `(${completions} completions, ${ended} of ${clients} connections ended, sent ${sent})`,
      ),
    );
  }, seconds * 1000 + HANG_MS).unref();
  try {
    await loop.run();
    const m0 = loop.metrics();
    const s0 = io.stats();
    const c0 = cpuMs();
    const k0 = side.times();
    const t0 = performance.now();
    const h0 = handlerMs;
    const n0 = calls;
    if (failure === undefined) {
      if (drive === "sync") loop.runSync();
      else await loop.run();
    }
    const wallMs = performance.now() - t0;
    const m1 = loop.metrics();
    const s1 = io.stats();
    const c1 = cpuMs();
    const k1 = side.times();
    const h1 = handlerMs;
    const n1 = calls;
    const b1 = bytes;
    const r1 = completions;
    if (failure === undefined) await loop.run();
    if (failure !== undefined) {
      io.stop(() => loop.unref());
      await loop.run();
      throw failure;
    }
    loop.close();
    if (touched < 0) console.log(touched); // keeps the reads observable
    const idleMs = m1.idleMs - m0.idleMs;
    if (Deno.args.includes("--debug")) {
      console.error(JSON.stringify({
        passes: m1.passes - m0.passes,
        sleeps: m1.sleeps - m0.sleeps,
        notifies: m1.notifies - m0.notifies,
        entries: m1.tasks.entry - m0.tasks.entry,
        tasks: m1.tasks.task - m0.tasks.task,
        batches: s1.batches - s0.batches,
        posted: s1.posted - s0.posted,
        pauses: s1.pauses - s0.pauses,
        detaches: side.detaches,
      }));
    }
    return {
      clients,
      queue,
      wallMs,
      bytes: b1,
      completions: r1,
      timed: n1 - n0,
      total: bytes,
      sent,
      pushMs: k1.pushMs - k0.pushMs,
      wakeMs: k1.wakeMs - k0.wakeMs,
      notifies: m1.notifies - m0.notifies,
      handlerMs: h1 - h0,
      busyMs: wallMs - idleMs,
      idleMs,
      cpuMs: c1 - c0,
      errors,
    };
  } finally {
    hang.cancel();
  }
}

async function main(): Promise<void> {
  const counts = arg("clients", "8,1024").split(",").map(Number);
  const seconds = Number(arg("seconds", "3"));
  const rounds = Number(arg("rounds", "1"));
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(`Bad value for --rounds: ${arg("rounds", "")}`);
  }
  const queues = arg("queues", QUEUE_KINDS.join(",")).split(",");
  for (const q of queues) {
    if (!(QUEUE_KINDS as readonly string[]).includes(q)) {
      throw new RangeError(
        `Bad value for --queues: expected ${
          QUEUE_KINDS.join(", ")
        }, got "${q}"`,
      );
    }
  }
  if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 30000)) {
    throw new RangeError(`Bad value for --clients: ${arg("clients", "")}`);
  }
  if (!(seconds > 0)) throw new RangeError("Bad value for --seconds");
  if (drive !== "sync" && drive !== "async") {
    throw new RangeError(
      `Bad value for --drive: expected sync or async, got "${drive}"`,
    );
  }
  const limit = fdLimit();
  const need = Math.max(...counts) + FD_MARGIN;
  if (limit !== undefined && limit < need) {
    console.error(
      `Cannot run ${
        Math.max(...counts)
      } clients: the open-file limit is ${limit}, ` +
        `and each process needs ${need} (one socket per client, plus Deno's own). ` +
        `Raise the hard limit in this shell (e.g. \`ulimit -Hn 4096\` as root, ` +
        `or nofile in /etc/security/limits.conf): Deno raises its soft limit ` +
        `to the hard one by itself.`,
    );
    Deno.exit(2);
  }
  try {
    await runAll(counts, seconds, queues as QueueKind[], rounds, limit);
  } catch (e) {
    console.error(`sock_test: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}

async function runAll(
  counts: number[],
  seconds: number,
  queues: QueueKind[],
  rounds: number,
  limit: number | undefined,
): Promise<void> {
  const clockMs = clockCost();
  printHeader(
    `sock_test: ${seconds} s per run, ${CHUNK}-byte writes and buffers, ` +
      `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ` +
      `open-file limit ${limit ?? "unknown"}, ${drive} drive in the window, ` +
      `clock read ${(clockMs * 1e6).toFixed(0)} ns`,
  );
  // Warm-up (not reported): JIT, the generator's first start, page cache.
  await run(Math.min(...counts), 1, queues[0]);
  const summary = new Summary();
  for (const n of counts) {
    for (let round = 0; round < rounds; round++) {
      for (const q of queues) {
        const r = await run(n, seconds, q);
        summary.add(printRow(r, clockMs));
        if (r.sent !== r.total) Deno.exitCode = 1;
      }
    }
  }
  summary.print(counts, queues, rounds);
}

await main();
