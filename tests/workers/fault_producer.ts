/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for `tests/fault_test.ts`, started with `spawnWorker`. It
 * posts `faultValue(id, 0)`, `faultValue(id, 1)`, ... through its port and,
 * after each post returns, stores the count of returned posts in
 * `record[2 * id]`: whatever the test reads there certainly completed (one
 * more may have completed without being recorded, never two).
 *
 * It posts in bursts of 1 to `burst` posts and yields to its event loop
 * (a host timer turn) between bursts. Deno's `Worker.terminate()` takes
 * effect only when the worker next turns its event loop (measured on Deno
 * 2.9.6: a worker in a synchronous loop ran on for seconds after
 * `terminate()`), so a termination lets the current burst finish: those
 * late posts reach the loop after it was told the producer died, until
 * the port refuses (the loop revoked the slot): then the worker sets
 * `record[2 * id + 1]` to `REFUSED` and stops posting. With `burst` 0 it
 * never yields, and only that refusal stops it.
 *
 * Modes, at post number `stopAt`:
 * - `stream`: none; it posts until terminated (or {@linkcode MAX_SEQ}).
 * - `throw`: throws an uncaught error.
 * - `self-close`: calls `self.close()`.
 * - `half-push`: pushes `faultValue(id, stopAt)` (an int) by hand exactly
 *   as `Producer` does, but stops after the exchange, before storing the
 *   link: "published but not linked". It sets `record[2 * id + 1]` to 1
 *   and blocks until terminated. A terminated worker stops only at its
 *   event loop, never between the exchange and the link store, so this
 *   window cannot be reached by terminating a real push: it is reproduced
 *   here instead.
 *
 * @module
 */
import { workerPort } from "../../runtime/spawn.ts";
import { LoopClosedError } from "../../runtime/port.ts";
import { MSG_INT } from "../../runtime/messages.ts";
import {
  C_RELEASED_NODES,
  FIRST_PRODUCER_NODE,
  N_A,
  N_B,
  N_META,
  N_NEXT,
  NIL,
  NODE_WORDS,
  P_ALLOC_NODES,
  P_PUSH_NODE,
  P_PUSH_PREV,
  readLayout,
  slotWord,
  TAIL,
} from "../../runtime/queue_layout.ts";
import {
  type FaultTask,
  faultValue,
  HALF_PUSHED,
  MAX_SEQ,
  REFUSED,
  thrownMessage,
} from "./fault_values.ts";

/** Publishes an int message without linking it, as a push cut short. */
function halfPush(buffer: SharedArrayBuffer, slot: number, value: number) {
  const layout = readLayout(buffer, "half push");
  const w = new Int32Array(buffer);
  const at = slotWord(slot);
  const size = layout.nodesPerProducer;
  const alloc = w[at + P_ALLOC_NODES]; // this thread wrote it on its last push
  if (alloc - Atomics.load(w, at + C_RELEASED_NODES) >= size) {
    throw new Error("Half push: no free node");
  }
  const node = FIRST_PRODUCER_NODE + slot * size + (alloc & (size - 1));
  const n = layout.nodeBase + node * NODE_WORDS;
  w[n + N_META] = MSG_INT * 2;
  w[n + N_A] = value;
  w[n + N_B] = 0;
  w[n + N_NEXT] = NIL;
  w[at + P_ALLOC_NODES] = alloc + 1;
  w[at + P_PUSH_PREV] = NIL;
  w[at + P_PUSH_NODE] = node;
  const prev = Atomics.exchange(w, TAIL, node);
  w[at + P_PUSH_PREV] = prev;
  // A live producer would now store `node` into `prev`'s link.
}

const { port, data } = await workerPort();
const task = data as FaultTask;
const record = new Int32Array(task.record);
const { id, mode, stopAt, burst } = task;
let state = (id * 0x9e3779b1 + 1) >>> 0;
/** Seeded burst lengths, 1 to `burst`. */
const burstLength = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return 1 + (state >>> 8) % burst;
};
let left = burst > 0 ? burstLength() : Infinity;
for (let seq = 0; seq <= MAX_SEQ; seq++) {
  if (seq === stopAt) {
    if (mode === "throw") throw new Error(thrownMessage(id, seq));
    if (mode === "self-close") self.close();
    if (mode === "half-push") {
      halfPush(task.buffer, port.slot, faultValue(id, seq) as number);
      Atomics.store(record, 2 * id + 1, HALF_PUSHED);
      // Idle in the event loop, where terminate() ends the worker at once.
      await new Promise(() => setTimeout(() => {}, 60_000));
    }
  }
  if (left-- === 0) {
    await new Promise((r) => setTimeout(r, 0)); // terminate() lands here
    left = burstLength() - 1;
  }
  const wake = seq % task.eagerEvery === 0 ? "eager" : "lazy";
  try {
    port.post(faultValue(id, seq), { wake, timeout: 30_000 });
  } catch (e) {
    if (!(e instanceof LoopClosedError)) throw e;
    // Reported dead while still running: the port refuses; stop here.
    Atomics.store(record, 2 * id + 1, REFUSED);
    break;
  }
  Atomics.store(record, 2 * id, seq + 1);
}
