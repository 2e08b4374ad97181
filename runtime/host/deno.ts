/**
 * The host adapter for Deno, and for any host with web workers: the global
 * `Worker` and the worker's own `message` events.
 *
 * @module
 */

import type { Host, WorkerStart } from "./host.ts";

/** Deno's (the web's) way: see `host.ts`. */
export const denoHost: Host = {
  name: "deno",

  startWorker(url: string | URL, options: WorkerStart): Worker {
    // A web worker reports no exit of its own: options.onExit never runs.
    return new Worker(url, { type: "module", name: options.name });
  },

  onParentMessage(listener: (data: unknown) => void): () => void {
    const onMessage = (ev: Event) => listener((ev as MessageEvent).data);
    globalThis.addEventListener("message", onMessage);
    return () => globalThis.removeEventListener("message", onMessage);
  },
};
