/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Answer side of the core-to-core ping-pong: for each round the main thread
 * stores an odd number in word 0 and this worker answers with the next even
 * one. Each round trip moves the line between the two cores twice.
 *
 * @module
 */

import { type PingJob, READY } from "../protocol.ts";

/** Give up on a round after this many loads (~1 s of spinning). */
const MAX_SPINS = 1e8;

self.onmessage = (ev: MessageEvent<PingJob>) => {
  const { line, rounds } = ev.data;
  const w = new Int32Array(line);
  self.postMessage(READY);
  for (let i = 1; i <= rounds; i++) {
    const ping = 2 * i - 1;
    let spins = 0;
    // Pairs with the main thread's Atomics.store of the ping.
    while (Atomics.load(w, 0) !== ping) {
      if (++spins === MAX_SPINS) return;
    }
    Atomics.store(w, 0, ping + 1);
  }
};
