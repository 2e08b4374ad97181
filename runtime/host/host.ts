/**
 * The host adapter: the little twloop needs from the runtime it runs on that
 * web-standard globals do not give everywhere. The core (every file of
 * `runtime/` outside this folder) never names `Deno`, `node:*` or `process`:
 * it asks {@linkcode currentHost} instead.
 *
 * | need                                | Deno (and web hosts)       | Node                                  |
 * | ----------------------------------- | -------------------------- | ------------------------------------- |
 * | start a module worker from a URL    | global `Worker`            | `node:worker_threads`, behind a web-style facade (`node.ts`) |
 * | in a worker: the parent's messages  | `message` events on `self` | `parentPort`                          |
 * | a worker's thread ended by itself   | not reported               | its `exit` event                      |
 * | `terminate()` a worker              | ends it at its next event-loop turn | the same, over a private channel; hard after a grace period (`node.ts`) |
 * | files and TCP (`runtime/io/host.ts`) | `denoIo` (`deno_io.ts`)   | `nodeIo` (`node_io.ts`), I/O workers included (`node_worker_io.ts`) |
 *
 * Keeping the process alive while a loop waits needs nothing host-specific:
 * a referenced `setInterval` does it in both hosts (`loop.ts`, `wake.ts`).
 *
 * The host is chosen once, by feature detection, on first use: Node when
 * `process.getBuiltinModule` exists and the runtime is not Deno (Deno
 * emulates `process` too; it is told by `Deno.version.deno`), else the web
 * host.
 *
 * @module
 */

import { denoHost } from "./deno.ts";
import { nodeHost } from "./node.ts";

/** How {@linkcode Host.startWorker} starts a worker. */
export interface WorkerStart {
  /** Worker name, for debugging. */
  name?: string;
  /**
   * Runs once if the worker's thread ends by itself (it called `close()`,
   * or it failed: then after the `error` event), never after `terminate()`.
   * Hosts that cannot tell (web workers) never call it.
   */
  onExit?: (code: number) => void;
}

/** What differs between hosts. */
export interface Host {
  /** `"deno"` (any host with web workers) or `"node"`. */
  readonly name: "deno" | "node";
  /**
   * Starts a module worker. Its error events are cancelable: a listener
   * that calls `preventDefault()` keeps the error from reaching the host.
   *
   * @param url The worker module.
   * @param options Name and exit callback.
   * @returns The worker, with the web `Worker` members `postMessage`,
   *   `terminate`, `onmessage`, `onmessageerror`, `onerror` and the
   *   `EventTarget` methods.
   */
  startWorker(url: string | URL, options: WorkerStart): Worker;
  /**
   * In a worker: calls `listener` with each message from the parent.
   *
   * @param listener Receives each message's data.
   * @returns Stops listening.
   * @throws {TypeError} Not in a worker (Node only; a web host just never
   *   delivers a message).
   */
  onParentMessage(listener: (data: unknown) => void): () => void;
}

let current: Host | undefined;

/**
 * The host this code runs on (chosen on the first call).
 *
 * @returns The adapter.
 */
export function currentHost(): Host {
  current ??= nodeHost.detected() ? nodeHost : denoHost;
  return current;
}
