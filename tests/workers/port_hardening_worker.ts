/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker of `port_hardening_test.ts`. On each message, by `mode`:
 *
 * - `"post-one"`: connects `handle`, says "posting", posts 42 with
 *   `options` and reports whether the post returned or what it threw.
 * - `"fill-and-close"`: with a `handle`, connects it and fills the port with
 *   `tryPost` (reports "full" and the count); then, with or without a
 *   handle, calls `close({ timeout })` and reports the outcome.
 *
 * @module
 */

import {
  connect,
  type Port,
  type PortHandle,
  type PostOptions,
} from "../../mod.ts";

interface Job {
  mode: "post-one" | "fill-and-close";
  handle?: PortHandle;
  options?: PostOptions;
  timeout?: number;
}

let port: Port | undefined;

function failure(err: unknown): Record<string, unknown> {
  const e = err as { name?: string; message?: string; data?: unknown };
  return { outcome: e.name, message: e.message, data: e.data };
}

self.onmessage = (e: MessageEvent<Job>) => {
  const job = e.data;
  try {
    if (job.mode === "post-one") {
      const p = connect(job.handle!);
      self.postMessage({ kind: "posting" });
      try {
        p.post(42, job.options);
        self.postMessage({ kind: "done", outcome: "returned" });
      } catch (err) {
        self.postMessage({ kind: "done", ...failure(err) });
      }
      return;
    }
    if (job.handle) {
      port = connect(job.handle);
      let n = 0;
      while (port.tryPost(n)) n++;
      self.postMessage({ kind: "full", n });
    }
    try {
      port!.close({ timeout: job.timeout });
      self.postMessage({ kind: "close", outcome: "closed" });
    } catch (err) {
      self.postMessage({ kind: "close", ...failure(err) });
    }
  } catch (err) {
    self.postMessage({
      kind: "error",
      message: String((err as Error)?.stack ?? err),
    });
  }
};
