/**
 * The loop's side of ports: which producer slots it handed out, delivering
 * their items, and what happens when a port closes or its thread dies.
 *
 * ## Fault protocol (a producer thread dies)
 *
 * 1. The host tells the loop (`Loop.producerDied(slot)`; `spawnWorker` does
 *    it on the worker's `error` event and on `terminate()`). The port stops
 *    holding the loop alive, and the loop counts the death in the slot's
 *    fence (`P_FENCE`): the thread may still be running (Deno's
 *    `terminate()` stops a worker only when it next turns its event loop,
 *    so one busy in a loop of posts runs on). Its port raises the fence's
 *    writing bit and reads the deaths in one atomic step before each write
 *    to the slot, lowers the bit after, and refuses once the deaths differ
 *    from those it connected under. Atomics being sequentially consistent,
 *    either the port sees the death, or the loop sees the bit of the write
 *    under way and waits for it to end before step 5.
 * 2. Messages whose push completed are already linked: they are delivered,
 *    exactly once, like any others.
 * 3. A message caught before its exchange was never published: it is not
 *    delivered (its `post()` never returned).
 * 4. A message caught between its exchange and its link store leaves the
 *    queue "busy" at its predecessor. The producer recorded the pushed node
 *    and, right after the exchange, its predecessor, in its slot line; the
 *    loop stores the missing link itself (`MpscQueue.repair`), which is the
 *    very value the producer would have stored. It does so only while the
 *    fence shows no write under way: a port still running stores its link
 *    itself (repairing then could let the predecessor be reused before that
 *    late store lands on it). The message, fully written before the
 *    exchange, is delivered whole.
 * 5. Once the queue has drained past everything the dead slot published,
 *    and no write of its port is under way, the slot is reclaimed for new
 *    ports (`MpscQueue.reclaim`).
 *
 * @module
 */

import type { MpscQueue, QueueEntry } from "./mpsc_queue.ts";
import {
  isMessage,
  MSG_CLOSE_REQUEST,
  MSG_PORT_CLOSED,
  readMessage,
} from "./messages.ts";
import type { PortHandle } from "./port.ts";
import {
  FENCE_DEATH,
  FENCE_WRITING,
  P_CLAIM,
  P_FENCE,
  P_GENERATION,
  SLOT_CLAIMED,
  SLOT_FREE,
  SLOT_RESERVED,
  slotWord,
} from "./queue_layout.ts";

/** Receives each message in FIFO order with the port slot it came from. */
export type MessageHandler = (data: unknown, slot: number) => void;

/** Per-slot state the loop keeps. */
const FREE = 0;
const OPEN = 1;
const DEAD = 2;

/** Delivery and bookkeeping for the loop's ports. */
export class Inbox {
  readonly #q: MpscQueue;
  readonly #claims: Int32Array;
  readonly #state: Uint8Array;
  #open = 0;
  #dead = 0;
  /** Copy byte payloads out of shared memory before handing them over. */
  copyBytes = false;
  /** Message handler. */
  onMessage: MessageHandler | undefined;
  /** Raw handler for items with tags >= 16 pushed by other threads. */
  onEntry: ((entry: QueueEntry) => void) | undefined;
  /** Called when a port asks the loop to close. */
  onCloseRequest: () => void = () => {};
  /** Called once per slot when its port closes or its producer dies. */
  readonly closers: Map<number, () => void> = new Map();

  /**
   * Binds the inbox to the loop's queue.
   *
   * @param q The loop's queue.
   */
  constructor(q: MpscQueue) {
    this.#q = q;
    this.#claims = new Int32Array(q.buffer);
    this.#state = new Uint8Array(q.config.producers);
  }

  /** @returns Ports handed out and not yet closed or dead. */
  get openPorts(): number {
    return this.#open;
  }

  /**
   * Reserves a slot and describes it as a handle.
   *
   * @returns The handle.
   * @throws {RangeError} Every slot is taken.
   */
  port(): PortHandle {
    const slot = this.#q.reserveSlot();
    this.#state[slot] = OPEN;
    this.#open++;
    const at = slotWord(slot);
    const fence = Atomics.load(this.#claims, at + P_FENCE);
    return Object.freeze({
      kind: "twloop.port",
      buffer: this.#q.buffer,
      ...(this.#q.memory !== undefined ? { memory: this.#q.memory } : {}),
      slot,
      epoch: fence & ~FENCE_WRITING,
      // Counted by reserveSlot before the slot showed as reserved.
      generation: Atomics.load(this.#claims, at + P_GENERATION),
    });
  }

  /**
   * Moves a slot out of OPEN and takes its close callback, for the caller to
   * run once its own bookkeeping is done: a callback that throws must not
   * leave the slot half-dropped (never freed, its death never recorded).
   */
  #drop(slot: number, to: number): (() => void) | undefined {
    if (this.#state[slot] === OPEN) this.#open--;
    this.#state[slot] = to;
    const fn = this.closers.get(slot);
    if (fn !== undefined) this.closers.delete(slot);
    return fn;
  }

  /**
   * Marks a slot's producer dead (fault protocol step 1) and repairs a push
   * it left unlinked. The slot's close callback runs last, after all of
   * that: if it throws, the death is recorded all the same.
   *
   * @param slot The slot.
   * @throws What the slot's close callback throws.
   */
  died(slot: number): void {
    if (this.#state[slot] === DEAD) return;
    const closer = this.#drop(slot, DEAD);
    this.#dead++;
    // Step 1. A handle not yet connected can no longer be: the loop takes
    // the claim itself. Then the death: a port still running reads it
    // before its next write and refuses (`Port`), whoever holds the slot by
    // then. This order makes a port that connects meanwhile either fail to
    // attach or read the old death count.
    const at = slotWord(slot);
    const w = this.#claims;
    Atomics.compareExchange(w, at + P_CLAIM, SLOT_RESERVED, SLOT_CLAIMED);
    const fence = Atomics.add(w, at + P_FENCE, FENCE_DEATH);
    if ((fence & FENCE_WRITING) === 0) this.#q.repair(slot);
    closer?.();
  }

  /**
   * Fault protocol steps 4-5, run when the queue is busy or idle.
   *
   * @returns True when a missing link was repaired.
   */
  repairDead(): boolean {
    if (this.#dead === 0) return false;
    let fixed = false;
    for (let s = 0; s < this.#state.length; s++) {
      if (this.#state[s] !== DEAD) continue;
      // A write the port began before it could see the death (step 1) may
      // still be under way: it stores its own link, and the slot is reused
      // only once it ended.
      const fence = Atomics.load(this.#claims, slotWord(s) + P_FENCE);
      if ((fence & FENCE_WRITING) !== 0) continue;
      if (this.#q.repair(s)) fixed = true;
      if (this.#q.reclaim(s)) {
        this.#state[s] = FREE;
        this.#dead--;
      }
    }
    return fixed;
  }

  /**
   * Delivers one item from another thread.
   *
   * @param e The entry (valid during the call).
   * @returns Task source index for metrics.
   */
  deliver(e: QueueEntry): void {
    const tag = e.tag;
    if (isMessage(tag)) {
      const fn = this.onMessage;
      if (fn !== undefined) fn(readMessage(e, this.copyBytes), e.producer);
    } else if (tag === MSG_PORT_CLOSED) {
      const slot = e.producer;
      if (this.#state[slot] === DEAD) this.#dead--; // it closed, then died
      const closer = this.#drop(slot, FREE);
      // The port left the slot claimed (`Port.close`); its last item is read,
      // so a new port may have it now. The port's counters (plain writes
      // before the push of this item) reach the next attacher through this
      // store and its compareExchange.
      Atomics.store(this.#claims, slotWord(slot) + P_CLAIM, SLOT_FREE);
      closer?.(); // last: a throw reaches the loop's error path, slot freed
    } else if (tag === MSG_CLOSE_REQUEST) {
      this.onCloseRequest();
    } else {
      this.onEntry?.(e);
    }
  }
}
