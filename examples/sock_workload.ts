/**
 * Workload: the seed's scenario (`sock_test.ts`) under the runner, and its
 * default. A TCP receiver on 127.0.0.1 built on an I/O worker (multishot
 * receives into a provided buffer ring, one completion per receive through
 * the loop's queue), fed by the load generator `sock_load.ts` in a separate
 * process (plain Deno TCP), whose `--clients` connections stream 16 KiB
 * writes for the run's duration (`--duration`, default 3 s). The handler
 * reads each buffer in place and gives it back.
 *
 * The result has Gb/s and completions per second over the streaming
 * window (from the generator's "ready" to the last connection's end), the
 * ring's backpressure pauses, and the share of wall time the I/O worker
 * spent adding completions to the queue (the seed's task_work add). It
 * fails if the bytes received differ from what the generator says it sent.
 *
 * I/O completions carry no enqueue time, so the report's latency for this
 * workload is the runner's `queue()` probes, which wait in the same FIFO
 * behind the completions.
 *
 * Needs `--allow-net=127.0.0.1` and `--allow-run=deno` (the `start` task
 * grants both); `deno` must be on the PATH (`npx deno` puts it there).
 * Run: `deno task start examples/sock_workload.ts -- --clients 8`. For the
 * seed's comparison tables (8 and 1024 clients, the Treiber baseline) use
 * `sock_test.ts` itself.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { IoWorker } from "../runtime/io/io_worker.ts";
import { denoIo } from "../runtime/host/deno_io.ts";
import type { WorkloadContext, WorkloadResult } from "../cli/workload.ts";
import { CHUNK, startLoadGenerator } from "./sock_generator.ts";

/** Streaming time without `--duration`, ms. */
const DEFAULT_MS = 3000;

/** The generator's stdout, line by line. */
async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    rest += text;
    for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
}

/**
 * Runs the receiver and the generator.
 *
 * @param ctx The runner's context.
 * @returns Bytes sent and received, rates and ring figures.
 */
export default function sockWorkload(
  ctx: WorkloadContext,
): Promise<WorkloadResult> {
  const { values } = parseArgs({
    args: [...ctx.args],
    options: { clients: { type: "string", default: "8" } },
  });
  const clients = Number(values.clients);
  if (!Number.isInteger(clients) || clients < 1 || clients > 4096) {
    throw new RangeError(
      `Bad value for sock_workload --clients: expected 1 to 4096, got "${values.clients}"`,
    );
  }
  // The generator streams for the run's duration; the runner's --duration
  // abort then arrives while the last bytes drain, within its grace period.
  const seconds = (ctx.duration ?? DEFAULT_MS) / 1000;
  const { loop } = ctx;
  const io = IoWorker.start(loop, denoIo, {
    buffers: Math.min(65536, clients * 2 + 64),
    bufferSize: CHUNK,
    perConnection: 4,
  });
  let bytes = 0;
  let completions = 0;
  let touched = 0;
  let ended = 0;
  let sent = -1;
  let readyAt = -1;
  let endAt = -1;
  let child: Deno.ChildProcess | undefined;

  io.onData = (_conn, data) => {
    bytes += data.length;
    touched ^= data[0] ^ data[data.length - 1]; // read in place
    completions++;
  };

  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error?: Error, interrupted = false) => {
      if (done) return;
      done = true;
      io.stop(() => {
        if (error) return reject(error);
        const s = io.stats();
        const wallMs = Math.max(
          1,
          (interrupted ? performance.now() : endAt) - readyAt,
        );
        if (!interrupted && sent !== bytes) {
          return reject(
            new Error(`Bytes lost: generator sent ${sent}, received ${bytes}`),
          );
        }
        resolve({
          clients,
          // Ctrl-C ends the generator too, before it reports its count.
          sentBytes: interrupted ? "unknown (interrupted)" : sent,
          receivedBytes: bytes,
          completions,
          gbitPerSec: Math.round((bytes * 8) / (wallMs / 1000) / 1e7) / 100,
          completionsPerSec: Math.round(completions / (wallMs / 1000)),
          ringPauses: s.pauses,
          workerAddShare: Math.round((s.addMs / wallMs) * 1000) / 1000,
        });
        if (touched < 0) ctx.log(String(touched)); // keeps the reads observable
      });
    };
    const check = () => {
      if (ended === clients && sent >= 0) finish();
    };
    io.onEnd = (conn, error) => {
      if (error !== undefined) return finish(error);
      ended++;
      endAt = performance.now();
      io.close(conn);
      check();
    };
    // A listener that stops by itself (EMFILE: the open-file limit is too
    // low for --clients, the error says what to raise) fails the run.
    io.onListenerEnd = (_listener, error) => finish(error);
    ctx.signal.addEventListener("abort", () => {
      if (ctx.signal.reason !== "interrupted") return; // see `seconds`
      // Ctrl-C reaches the generator too: it ends without a count.
      try {
        child?.kill();
      } catch { /* already gone */ }
      finish(undefined, true); // report what was received
    });

    io.listen({ hostname: "127.0.0.1", port: 0 }, (r) => {
      if (!r.ok) return finish(r.error);
      child = startLoadGenerator(r.value.port, clients, seconds);
      const proc = child;
      const report = (async () => {
        for await (const line of lines(proc.stdout)) {
          if (line === "ready") {
            readyAt = performance.now();
            ctx.log(`${clients} clients connected, streaming for ${seconds} s`);
          } else if (line.startsWith("{")) {
            return (JSON.parse(line) as { sent: number[] }).sent;
          }
        }
        throw new Error("Load generator ended without a report");
      })();
      loop.track(report, (s) => {
        if (s.status === "rejected") return finish(s.reason as Error);
        sent = s.value.reduce((a, b) => a + b, 0);
        check();
      });
      loop.track(proc.status, (s) => {
        if (s.status === "fulfilled" && !s.value.success) {
          finish(new Error(`Load generator failed: exit ${s.value.code}`));
        }
      });
    }, { arm: true });
  });
}
