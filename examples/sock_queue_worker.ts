/**
 * The I/O worker module of `sock_test.ts`: Deno's I/O, with completions
 * going to the queue `sock_test.ts` picked (`sock_queues.ts`).
 *
 * @module
 */

import { serveIoWorker } from "../runtime/io/io_worker_thread.ts";
import { denoIo } from "../runtime/host/deno_io.ts";
import { sockSink } from "./sock_queues.ts";

serveIoWorker(denoIo, { sink: sockSink });
