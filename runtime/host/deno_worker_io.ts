/**
 * The module an I/O worker runs on Deno (`denoIo.ioWorkerUrl`): serves the
 * worker side of `runtime/io/io_worker_thread.ts` with Deno's I/O.
 *
 * @module
 */

import { serveIoWorker } from "../io/io_worker_thread.ts";
import { denoIo } from "./deno_io.ts";

serveIoWorker(denoIo);
