/**
 * Starting workers already connected to a loop.
 *
 * The parent side, {@linkcode spawnWorker}, reserves a port and sends its
 * handle as the worker's first message; the worker side,
 * {@linkcode workerPort}, waits for that message and connects. A spawned
 * worker lives until its port closes (then the loop terminates it: a Deno
 * or Node worker otherwise keeps the process alive), it fails, or you call
 * `terminate()`. Worker
 * faults reach the loop: an uncaught error in the worker, a Node worker
 * thread that ends with its port open, or `terminate()`
 * through the returned handle, reports the port's producer dead (see the
 * fault protocol in `loop_inbox.ts`), and the worker's error is queued as a
 * task that throws it, so it reaches `onError` (or the run method) in FIFO
 * order. Error events arrive through the host's event loop: drive the loop
 * with the async `run()` to see them while it runs.
 *
 * @module
 */

import type { Loop } from "./loop.ts";
import { connect, type Port, type PortHandle } from "./port.ts";
import { currentHost } from "./host/host.ts";

/** Options for {@linkcode spawnWorker}. */
export interface SpawnOptions {
  /** Any structured-cloneable value handed to the worker with its port. */
  data?: unknown;
  /** Worker name, for debugging. */
  name?: string;
}

/** A worker started by {@linkcode spawnWorker}. */
export interface SpawnedWorker {
  /**
   * The host worker: on Node, a `node:worker_threads` worker behind the web
   * `Worker` members (`postMessage`, `terminate`, `onmessage`, `onerror`,
   * events).
   */
  readonly worker: Worker;
  /** The slot of its port, as `onMessage` reports it. */
  readonly slot: number;
  /** Terminates the worker and reports its producer dead to the loop. */
  terminate(): void;
}

/** The first message a spawned worker receives. */
interface Hello {
  twloop: PortHandle;
  data: unknown;
}

/**
 * Starts a module worker whose port is connected to `loop`.
 *
 * @param loop The loop the worker posts to.
 * @param url The worker module.
 * @param options Data for the worker, and its name.
 * @returns The worker and its port slot.
 * @throws {RangeError} The loop has no free producer slot.
 * @throws {LoopClosedError} The loop is closed.
 */
export function spawnWorker(
  loop: Loop,
  url: string | URL,
  options: SpawnOptions = {},
): SpawnedWorker {
  const handle = loop.port();
  let dead = false;
  const died = (error?: unknown) => {
    if (dead) return;
    dead = true;
    loop.producerDied(handle.slot);
    if (error !== undefined && !loop.closed) {
      loop.queue(() => {
        throw error;
      });
    }
  };
  // The thread ended by itself. If it closed its port first, the close is
  // already queued: a task queued now runs after it (FIFO), and finds the
  // port closed cleanly; otherwise the thread died with the port open.
  const onExit = () => {
    if (dead) return;
    if (loop.closed || !loop.tryQueue(() => died())) died();
  };
  let worker: Worker;
  try {
    worker = currentHost().startWorker(url, {
      name: options.name,
      onExit, // Node only
    });
  } catch (error) {
    died(); // gives the reserved slot back
    throw error;
  }
  worker.addEventListener("error", (ev: ErrorEvent) => {
    ev.preventDefault();
    died(ev.error ?? new Error(`Cannot run worker: ${ev.message}`));
  });
  loop.onPortClosed(handle.slot, () => {
    dead = true; // closed cleanly: nothing to repair
    worker.terminate();
  });
  const hello: Hello = { twloop: handle, data: options.data };
  worker.postMessage(hello);
  return {
    worker,
    slot: handle.slot,
    terminate() {
      worker.terminate();
      died();
    },
  };
}

/**
 * In a worker started by {@linkcode spawnWorker}: waits for the port handle
 * and connects it. A web worker that later ends itself with `close()`
 * closes the port first: no web host tells the parent that a worker ended
 * by itself, so the loop would otherwise keep the port, and its slot, open.
 *
 * @returns The connected port and the `data` the parent passed.
 */
export function workerPort(): Promise<{ port: Port; data: unknown }> {
  return new Promise((resolve) => {
    const stop = currentHost().onParentMessage((data) => {
      const hello = data as Hello | undefined;
      if (hello?.twloop?.kind !== "twloop.port") return;
      stop();
      const port = connect(hello.twloop);
      closePortOnSelfClose(port);
      resolve({ port, data: hello.data });
    });
  });
}

/** Makes the worker scope's `close()` (web workers) close `port` first. */
function closePortOnSelfClose(port: Port): void {
  const scope = globalThis as { close?: () => void };
  const close = scope.close;
  if (typeof close !== "function") return; // Node: its exit is reported
  scope.close = () => {
    port.close();
    close.call(globalThis);
  };
}
