/**
 * The module an I/O worker runs on Node (`nodeIo.ioWorkerUrl`): serves the
 * worker side of `runtime/io/io_worker_thread.ts` with Node's I/O.
 *
 * @module
 */

import { serveIoWorker } from "../io/io_worker_thread.ts";
import { nodeIo } from "./node_io.ts";

serveIoWorker(nodeIo);
