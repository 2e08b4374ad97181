/**
 * The Node host adapter's own contract (`runtime/host/node.ts`), checked
 * only under Node (`deno task test:node`; on Deno these tests are ignored):
 * how `NodeWorker.terminate()` stops a thread.
 *
 * Each wait is bounded; the bounds are far above what the behaviour needs
 * (milliseconds), so a loaded machine does not fail them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { NodeWorker, TERMINATE_GRACE_MS } from "../../runtime/host/node.ts";
import type { CounterTask } from "./workers/counter.ts";

/** Under Node (the runner's `Deno` is a shim without `version`). */
const onNode =
  typeof (globalThis as { Deno?: { version?: unknown } }).Deno?.version ===
    "undefined" &&
  typeof (globalThis as { process?: { getBuiltinModule?: unknown } })
      .process?.getBuiltinModule === "function";

const WORKER = new URL("./workers/counter.ts", import.meta.url);

/** Starts a counting worker; resolves once it has counted. */
async function counting(
  mode: CounterTask["mode"],
): Promise<{ worker: NodeWorker; word: Int32Array }> {
  const word = new Int32Array(new SharedArrayBuffer(4));
  const worker = new NodeWorker(WORKER, { name: `counter ${mode}` });
  const task: CounterTask = { word: word.buffer as SharedArrayBuffer, mode };
  worker.postMessage(task);
  await until(() => Atomics.load(word, 0) > 0, 10_000, "the worker to count");
  return { worker, word };
}

async function until(
  ready: () => boolean,
  ms: number,
  what: string,
): Promise<void> {
  const end = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > end) {
      throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves once `word` has not changed for `quietMs`; returns when. */
async function stopped(word: Int32Array, quietMs: number): Promise<number> {
  let last = Atomics.load(word, 0);
  let since = performance.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 10));
    const now = Atomics.load(word, 0);
    if (now !== last) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return since;
    }
  }
}

Deno.test({
  name:
    "Node: terminate() ends a worker that yields at its next event-loop turn, well before the hard stop",
  ignore: !onNode,
  async fn() {
    const { worker, word } = await counting("yield");
    let events = 0;
    worker.addEventListener("message", () => events++);
    worker.addEventListener("error", () => events++);
    const t0 = performance.now();
    worker.terminate();
    const at = await stopped(word, 200);
    assert.ok(
      at - t0 < TERMINATE_GRACE_MS,
      `it ran ${Math.round(at - t0)} ms after terminate()`,
    );
    assert.equal(events, 0, "no event after terminate()");
  },
});

Deno.test({
  name:
    "Node: terminate() stops a worker that never yields, hard, after the grace period",
  ignore: !onNode,
  async fn() {
    const { worker, word } = await counting("spin");
    const t0 = performance.now();
    worker.terminate();
    await until(
      () => performance.now() - t0 > TERMINATE_GRACE_MS / 2,
      TERMINATE_GRACE_MS,
      "half the grace period",
    );
    const mid = Atomics.load(word, 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(Atomics.load(word, 0) > mid, "it still runs within the grace");
    const at = await stopped(word, 200);
    assert.ok(at - t0 >= TERMINATE_GRACE_MS - 50, "stopped by the hard stop");
    worker.terminate(); // a second call is a no-op
  },
});
