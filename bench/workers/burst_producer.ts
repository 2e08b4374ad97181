/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for the bursty section: attaches a producer of the job's
 * queue kind, posts `READY`, then answers burst rounds (see the handshake in
 * `burst_queues.ts`) until told to stop. Values continue from one round to
 * the next (0, 1, 2, ...), so the consumer checks order across rounds. The
 * consumer empties the queue before asking for the next round, so a full
 * queue is an error, not backpressure.
 *
 * @module
 */

import { PUSH_FULL } from "../../mod.ts";
import {
  attachBurstProducer,
  awaitWord,
  B_DONE,
  B_ITEMS,
  B_ROUND,
  B_STOP,
  type BurstJob,
} from "../burst_queues.ts";
import { READY } from "../protocol.ts";

/** A round not requested within this long means the main thread is gone. */
const IDLE_MS = 60_000;

self.onmessage = (ev: MessageEvent<BurstJob>) => {
  const { kind, queue, control } = ev.data;
  const p = attachBurstProducer(kind, queue);
  const c = new Int32Array(control);
  self.postMessage(READY);
  let value = 0;
  for (let round = 1;; round++) {
    if (awaitWord(c, B_ROUND, round, IDLE_MS) === B_STOP) return;
    // Written before the B_ROUND store that awaitWord observed.
    const items = c[B_ITEMS];
    for (let i = 0; i < items; i++) {
      if (p.push(value) === PUSH_FULL) {
        throw new Error(`Cannot push burst: ${kind} queue full at ${i}`);
      }
      value = (value + 1) | 0;
    }
    // Pairs with awaitWord on B_DONE in the bursty section.
    Atomics.store(c, B_DONE, round);
    Atomics.notify(c, B_DONE);
  }
};
