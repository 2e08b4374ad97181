/**
 * An I/O worker module for `io_worker_test.ts`: Deno's I/O with a custom
 * completion sink that takes at most one item per call (so the worker's
 * outbox must keep and retry the rest) and counts its calls that published
 * something in word 0 of `sinkData`.
 *
 * @module
 */

import { serveIoWorker } from "../runtime/io/io_worker_thread.ts";
import { queueSink } from "../runtime/io/completion_sink.ts";
import { denoIo } from "../runtime/host/deno_io.ts";

serveIoWorker(denoIo, {
  sink(context) {
    const inner = queueSink(context);
    const calls = new Int32Array(context.data as SharedArrayBuffer);
    return {
      push(tags, as, bs, n) {
        const k = inner.push(tags, as, bs, Math.min(n, 1));
        if (k > 0) Atomics.add(calls, 0, 1); // read by the test after stop
        return k;
      },
    };
  },
});
