/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker of `tests/node/node_host_test.ts`: counts in a shared word, either
 * spinning without ever yielding (`"spin"`) or once per macrotask
 * (`"yield"`), so the parent can see when the thread stops.
 *
 * @module
 */

/** What the parent sends. */
export interface CounterTask {
  /** One Int32 word the worker increments. */
  word: SharedArrayBuffer;
  /** Spin without yielding, or count once per macrotask. */
  mode: "spin" | "yield";
}

self.onmessage = (ev: MessageEvent<CounterTask>) => {
  const w = new Int32Array(ev.data.word);
  if (ev.data.mode === "spin") {
    for (;;) Atomics.add(w, 0, 1);
  }
  const tick = () => {
    Atomics.add(w, 0, 1);
    setTimeout(tick, 0);
  };
  tick();
};
