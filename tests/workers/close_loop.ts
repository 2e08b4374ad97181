/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Loop-hosting worker for `tests/close_test.ts`: makes a loop on a real
 * clock, posts `{ kind: "port", handle }` for the test thread, then blocks
 * in `runSync()` (asleep in `Atomics.wait` whenever idle) until the loop
 * closes. Posts a {@linkcode LoopHostReport}, or `{ kind: "error", message }`.
 *
 * @module
 */
import { Loop } from "../../mod.ts";

/** What the loop worker reports once `runSync()` returns. */
export interface LoopHostReport {
  kind: "done";
  /** Messages delivered, in order. */
  got: unknown[];
  /** `loop.closed` after `runSync()` returned. */
  closed: boolean;
  /** What `runSync()` returned. */
  left: number;
  /** Sleeps that blocked in `Atomics.wait`. */
  sleeps: number;
  /** Sleeps ended by a wake rather than a timeout. */
  wakes: number;
}

self.onmessage = () => {
  try {
    const got: unknown[] = [];
    const loop = new Loop({ onMessage: (d) => got.push(d), spinMicros: 0 });
    self.postMessage({ kind: "port", handle: loop.port() });
    const left = loop.runSync();
    const m = loop.metrics();
    const report: LoopHostReport = {
      kind: "done",
      got,
      closed: loop.closed,
      left,
      sleeps: m.sleeps,
      wakes: m.wakes,
    };
    self.postMessage(report);
  } catch (e) {
    self.postMessage({
      kind: "error",
      message: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  }
};
