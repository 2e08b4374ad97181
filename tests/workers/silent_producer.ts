/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * A producer that loses a wake-up on purpose: it waits until the loop is
 * armed asleep, pushes one item into its reserved slot, and never calls
 * `wake`. Reports "pushed" (or an error) to the parent.
 *
 * @module
 */

import { FIRST_USER_TAG, Producer } from "../../mod.ts";
import { WAIT_NR } from "../../runtime/queue_layout.ts";

self.onmessage = (e: MessageEvent) => {
  const { buffer, slot } = e.data as {
    buffer: SharedArrayBuffer;
    slot: number;
  };
  const w = new Int32Array(buffer);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; Atomics.load(w, WAIT_NR) < 1; i++) {
    if (i > 10_000) {
      self.postMessage("the loop never armed a sleep within 10 s");
      return;
    }
    Atomics.wait(pause, 0, 0, 1);
  }
  Producer.attach(buffer, slot).push(FIRST_USER_TAG, 42, 0); // no wake()
  self.postMessage("pushed");
};
