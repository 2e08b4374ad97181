/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * A producer that pauses inside the publish window: it pushes `count`
 * numbered items into its reserved slot doing each push's steps by hand, as
 * `Producer` does them, and on seeded random pushes sleeps between the
 * `TAIL` exchange and the link store, so the loop finds the queue "busy"
 * while other producers keep pushing behind it. Ends with a `DONE` item.
 *
 * Every step mirrors `runtime/producer.ts`; the pause is the only addition.
 * It lives here, not behind a hook in `Producer`, so the hot path carries
 * no test branch.
 *
 * @module
 */

import { FIRST_USER_TAG, wake } from "../../mod.ts";
import {
  C_RELEASED_NODES,
  FIRST_PRODUCER_NODE,
  N_A,
  N_B,
  N_META,
  N_NEXT,
  NIL,
  nodeWord,
  P_ALLOC_NODES,
  P_CLAIM,
  P_PUSH_NODE,
  P_PUSH_PREV,
  readLayout,
  SLOT_CLAIMED,
  SLOT_RESERVED,
  slotWord,
  TAIL,
} from "../../runtime/queue_layout.ts";
import { rng } from "../rng.ts";

/** Tag of a numbered item. */
export const PAUSER_ITEM = FIRST_USER_TAG + 1;
/** Tag of the last item. */
export const PAUSER_DONE = FIRST_USER_TAG + 2;

/** What the test hands the worker. */
export interface PauserJob {
  buffer: SharedArrayBuffer;
  slot: number;
  count: number;
  seed: number;
  /** Chance that a push pauses in its window. */
  pauseChance: number;
  /** Longest pause, ms. */
  maxPauseMs: number;
}

self.onmessage = (e: MessageEvent) => {
  const job = e.data as PauserJob;
  const w = new Int32Array(job.buffer);
  const layout = readLayout(job.buffer, "attach pauser");
  const sw = slotWord(job.slot);
  if (
    Atomics.compareExchange(w, sw + P_CLAIM, SLOT_RESERVED, SLOT_CLAIMED) !==
      SLOT_RESERVED
  ) {
    self.postMessage("slot was not reserved");
    return;
  }
  const random = rng(job.seed);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const first = FIRST_PRODUCER_NODE + job.slot * layout.nodesPerProducer;
  let alloc = w[sw + P_ALLOC_NODES];
  let pauses = 0;
  const push = (tag: number, a: number) => {
    for (
      let i = 0;
      (alloc - Atomics.load(w, sw + C_RELEASED_NODES)) >=
        layout.nodesPerProducer;
      i++
    ) {
      if (i > 100_000) throw new Error("slot stayed full for ~10 s");
      wake(w, false);
      Atomics.wait(sleeper, 0, 0, 0.1);
    }
    const node = first + (alloc & (layout.nodesPerProducer - 1));
    const at = nodeWord(layout, node);
    w[at + N_NEXT] = NIL;
    w[at + N_META] = tag * 2;
    w[at + N_A] = a;
    w[at + N_B] = 0;
    alloc = (alloc + 1) | 0;
    w[sw + P_ALLOC_NODES] = alloc;
    w[sw + P_PUSH_PREV] = NIL;
    w[sw + P_PUSH_NODE] = node;
    const prev = Atomics.exchange(w, TAIL, node);
    w[sw + P_PUSH_PREV] = prev;
    if (random() < job.pauseChance) {
      pauses++; // inside the window: the loop sees "busy" until the store
      Atomics.wait(sleeper, 0, 0, random() * job.maxPauseMs);
    }
    Atomics.store(w, nodeWord(layout, prev) + N_NEXT, node);
    w[sw + P_PUSH_NODE] = NIL;
    wake(w, true);
  };
  for (let seq = 0; seq < job.count; seq++) push(PAUSER_ITEM, seq);
  push(PAUSER_DONE, pauses);
  self.postMessage("done");
};
