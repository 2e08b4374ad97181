/**
 * The run-to-completion event loop over one {@linkcode MpscQueue}.
 *
 * Every source goes through the same queue, so one FIFO order covers them
 * all: tasks queued from the loop thread (`queue`), timers when they come
 * due, host completions (`track`), and messages posted through ports by
 * other threads (`port`, `onMessage`).
 *
 * ## One pass
 *
 * 1. **Update time**: the clock is read at most once a pass, at its first
 *    use (phase 2 when a timer is pending, else the first `setTimer` or
 *    `now` of a task), and not at all by a pass that needs no time. Timers
 *    set by tasks of the pass count their delay from this time (libuv's
 *    `uv_now`).
 * 2. **Due timers**: move every timer whose deadline has passed into the
 *    queue, in deadline order, ties in creation order, as one chain published
 *    with one exchange; all are collected before any runs. They fill at
 *    most half of the loop's own producer slot (the rest of it is for tasks
 *    their callbacks queue); the rest stay due for the next pass, which
 *    takes them first, still in deadline order.
 * 3. **Run**: take at most `maxEvents` items in FIFO order and run each to
 *    completion; the rest stay queued. `stop()` ends the pass after the
 *    running task. Then a port on this thread whose close found its
 *    storage full (it cannot block here) retries it, now that tasks ran,
 *    and dead producers are repaired and their drained slots reclaimed
 *    (`loop_inbox.ts`), so a run method never returns holding them.
 * 4. **Sleep**, only if the run method may wait, the loop is alive and
 *    nothing is runnable: a producer caught mid-push ("busy") gets a short
 *    bounded pause, never an open-ended sleep; otherwise the waiter arms and
 *    sleeps until woken, the next timer deadline or the min-wait deadline,
 *    and never longer than `stallMs`, after which the watchdog checks for
 *    work left without a wake (`loop_watchdog.ts`). Under a virtual clock
 *    the loop jumps the clock to the next deadline instead of sleeping.
 *
 * ## Microtasks
 *
 * Within a pass tasks run back to back, with no microtask checkpoint. The
 * async drive (`run`, `runOnce`) yields one microtask turn between passes:
 * promise reactions queued directly by a task run after its pass ends (so
 * after at most `maxEvents` tasks) and before the next pass; each further
 * `await` in a chain takes one more turn, so long chains interleave with
 * later passes. Between every pass while host operations are in flight, it
 * yields a macrotask turn, which drains them all. When work has kept it
 * busy for 20 ms (10 while tracked operations are in flight) it yields a
 * turn in which the host also polls I/O and runs its timers (in Deno that
 * takes a `setTimeout(0)`, ~1.2 ms: under a sustained flood a sixteenth to
 * a tenth of the time goes to the host). It reads the clock for that after
 * every pass while passes are slow, and after every 2nd or 4th while they
 * are quick, so when passes turn slow right after quick ones the turn may
 * come up to 3 passes late. The
 * blocking drive (`runSync`) never yields: reactions wait until it returns.
 *
 * ## Close
 *
 * `close()` is exact: the loop stores "closing" in the wake word, then
 * queues a marker behind everything already queued. Items ahead of the
 * marker (tasks, due timers' tasks excepted, messages) are delivered; then
 * the loop seals (publishes each port's delivered count, wakes posters
 * waiting for a verdict) and stops. Pending timers are cancelled and do not
 * fire; later `queue`, `setTimer`, `port` and run calls throw
 * {@linkcode LoopClosedError}; a post that lands behind the marker throws it
 * on the posting thread, carrying the message. See `port.ts` for the
 * poster's side.
 *
 * @module
 */

import { BusyTime } from "./busy_time.ts";
import { type Clock, RealClock } from "./clock.ts";
import { MpscQueue, type QueueConfig } from "./mpsc_queue.ts";
import type { Producer, QueueEntry } from "./mpsc_queue.ts";
import { checkDelay, type Timer } from "./timers.ts";
import { LoopTimers } from "./loop_timers.ts";
import { Waiter, wake } from "./wake.ts";
import {
  MAX_NODES_PER_PRODUCER,
  WAIT_NR,
  WAKE_CLOSING,
  WAKE_SEALED,
} from "./queue_layout.ts";
import { type LoopMetrics, MetricsCollector } from "./loop_metrics.ts";
import { type LoopWarning, Watchdog } from "./loop_watchdog.ts";
import { Inbox, type MessageHandler } from "./loop_inbox.ts";
import { currentHost } from "./host/host.ts";
import {
  LoopClosedError,
  markLoopThread,
  type PortHandle,
  ReentrancyError,
} from "./port.ts";

export type { LoopMetrics } from "./loop_metrics.ts";
export type { MessageHandler } from "./loop_inbox.ts";
export type { LoopWarning } from "./loop_watchdog.ts";

/** Queue tag of a task queued on the loop thread. */
export const TAG_TASK = 0;
/** Queue tag of a due timer. */
export const TAG_TIMER = 1;
/** Queue tag of a host completion. */
export const TAG_HOST = 2;
/** Queue tag of the close marker. */
export const TAG_CLOSE = 3;
/** Tags below this are the loop's own; raw producers use tags from here up. */
export const FIRST_USER_TAG = 16;

/** Options for {@linkcode Loop}. */
export interface LoopOptions {
  /** Most tasks run per pass (default 20, as the seed's `max_events`). */
  maxEvents?: number;
  /** Lazy posts that wake a sleeping loop (default 1). */
  minEvents?: number;
  /** After this many ms asleep, any post wakes the loop (default: never). */
  minWait?: number;
  /**
   * Microseconds to poll the queue before arming a sleep (default 50; 0 to
   * sleep at once). A reply that lands within it skips the sleep and the
   * wake-up (~5 µs blocking, ~12 µs async, measured on these machines).
   */
  spinMicros?: number;
  /** Queue sizes; the loop's own slot also bounds the `queue()` backlog. */
  capacity?: Partial<QueueConfig>;
  /** Time source (default: {@linkcode RealClock}). */
  clock?: Clock;
  /** Receives errors thrown by tasks; without it run methods rethrow them. */
  onError?: (error: unknown) => void;
  /**
   * Longest the loop sleeps before checking for work that waits without a
   * wake, ms (default 1000; `Infinity` turns the watchdog off). See
   * `loop_watchdog.ts`.
   */
  stallMs?: number;
  /** Receives the watchdog's stall reports. */
  onWarning?: (warning: LoopWarning) => void;
  /** Receives messages posted through ports. */
  onMessage?: MessageHandler;
  /** Receives raw items with tags >= 16 pushed by other threads. */
  onEntry?: (entry: QueueEntry) => void;
  /**
   * Hand `Uint8Array` messages over as copies (default false: a view into
   * shared memory, valid only during the `onMessage` call).
   */
  copyBytes?: boolean;
}

/** `queue()` found the loop's own producer slot full. */
export class QueueFullError extends RangeError {
  /**
   * Makes the error.
   *
   * @param queued Items queued on the loop's own slot (tasks, due timers,
   *   host completions): its node count less the two nodes kept back (close
   *   marker, due timers), less nodes still held by the pass.
   * @param nodes The slot's node count (`capacity.nodesPerProducer`).
   */
  constructor(queued: number, nodes: number) {
    super(
      `Cannot queue task: ${queued} tasks already queued on the loop (its own slot holds capacity.nodesPerProducer - 2 = ${
        nodes - 2
      })`,
    );
    this.name = "QueueFullError";
  }
}

type Local = () => void;

/** How phase 4 may sleep. */
const NO_WAIT = 0;
const WAIT_SYNC = 1;
const WAIT_ASYNC = 2;
/** Phase 4 result: do not sleep. */
const AWAKE = -1;
/** Phase 4 result for the async drive: a producer is mid-push, pause. */
const BUSY_PAUSE = -2;
/** Phase 4 result for the async drive: jump a virtual clock after a turn. */
const VIRTUAL_JUMP = -3;

/**
 * Busy time after which the async drive gives the host an I/O turn, ms: 10
 * while operations the loop tracks are in flight (each I/O step of theirs
 * needs one), else 20. An I/O turn costs ~1.2 ms in Deno (a timer's
 * granularity), so a sustained flood gives the host a tenth or a
 * sixteenth of its time.
 */
const IO_TURN_MS = 20;
const IO_TURN_TRACKED_MS = 10;

/**
 * Host turns for the async drive. `next()` is a cheap macrotask turn: every
 * pending microtask runs before it (a `MessageChannel` message, ~20 µs; on
 * Node `setImmediate`, as Node keeps delivering a channel's messages ahead
 * of everything else). `io()` is a turn in which the host also polls I/O
 * and runs its timers: `setImmediate` on Node (its check phase follows the
 * poll), `setTimeout(0)` elsewhere: in Deno neither a channel message nor
 * `setImmediate` lets sockets progress (measured), a timer does (~1.1 ms).
 */
class MacrotaskTurn {
  readonly #ch: MessageChannel | undefined;
  /** Node's `setImmediate` (not in the web's globals). */
  readonly #immediate: ((fn: () => void) => unknown) | undefined;
  #resolve: (() => void) | undefined;

  constructor() {
    if (currentHost().name === "node") {
      this.#immediate = (globalThis as {
        setImmediate?: (fn: () => void) => unknown;
      }).setImmediate;
      if (this.#immediate !== undefined) return;
    }
    this.#ch = new MessageChannel();
    this.#ch.port1.onmessage = () => this.#resolve?.();
  }

  /** @returns Resolves on the next macrotask turn. */
  next(): Promise<void> {
    const ch = this.#ch;
    if (ch === undefined) {
      return new Promise<void>((r) => this.#immediate!(r));
    }
    return new Promise<void>((r) => {
      this.#resolve = r;
      ch.port2.postMessage(0);
    });
  }

  /** @returns Resolves after a turn in which the host polled I/O. */
  io(): Promise<void> {
    const ch = this.#ch;
    if (ch === undefined) {
      return new Promise<void>((r) => this.#immediate!(r));
    }
    // The timer is set from a channel message, not from the continuation
    // of the last one: timers nested 5 deep are clamped to 4 ms.
    return new Promise<void>((r) => {
      this.#resolve = () => setTimeout(r, 0);
      ch.port2.postMessage(0);
    });
  }

  /** Releases the channel so it does not keep the process alive. */
  close(): void {
    this.#ch?.port1.close();
    this.#ch?.port2.close();
  }
}

/**
 * An event loop. See the module docs for the pass, microtasks and close.
 *
 * @example
 * ```ts
 * import { Loop, VirtualClock } from "../mod.ts";
 * const loop = new Loop({ clock: new VirtualClock() });
 * const seen: string[] = [];
 * loop.setTimer(() => seen.push("timer"), 10);
 * loop.queue(() => seen.push("task"));
 * loop.runSync();
 * if (seen.join() !== "task,timer") throw new Error("unexpected");
 * ```
 */
export class Loop {
  /** The queue's buffer (ports carry it to other threads). */
  readonly buffer: SharedArrayBuffer;
  /** The clock read once per pass. */
  readonly clock: Clock;
  /** Receives errors thrown by tasks; without it run methods rethrow. */
  onError: ((error: unknown) => void) | undefined;
  readonly #maxEvents: number;
  readonly #minEvents: number;
  readonly #minWait: number;
  readonly #spinMs: number;
  readonly #queue: MpscQueue;
  readonly #w: Int32Array;
  readonly #self: Producer;
  readonly #waiter: Waiter;
  readonly #timers: LoopTimers;
  readonly #inbox: Inbox;
  readonly #local: (Local | undefined)[];
  /** Due timers of a pass: their queue tags, ids and tickets. */
  readonly #dueTags: Int32Array;
  readonly #dueIds: Int32Array;
  readonly #dueTickets: Int32Array;
  #localNext = 0;
  /** Passes in a row that left work queued (for depth sampling). */
  #backlogPasses = 0;
  #localQueued = 0;
  /** Due-timer entries queued and not yet run (part of `#localQueued`). */
  #timersQueued = 0;
  #refs = 0;
  #hostOps = 0;
  #now = 0;
  #running = false;
  /** Phases 1-3 of a pass are under way (tasks may be running). */
  #inPass = false;
  /**
   * A task or timer callback of this loop's own is running: its queue
   * entry is not read again, so its node may be released early.
   */
  #ownEntry = false;
  #stopped = false;
  #closing = false;
  #sealed = false;
  #busySpins = 0;
  /** An async drive is awaiting `waitAsync`. */
  #asleep = false;
  readonly #pause = new Int32Array(new SharedArrayBuffer(4));
  readonly #dispatch: (e: QueueEntry) => boolean;
  readonly #m = new MetricsCollector();
  readonly #watchdog: Watchdog;
  /** `track()` completions that found the own slot full, oldest first. */
  readonly #hostBacklog: (() => void)[] = [];
  /** Pushes a port on this thread could not make yet (`markLoopThread`). */
  #retries: (() => boolean)[] = [];
  /** Raw-item handlers by producer slot (`routeEntries`), else `onEntry`. */
  readonly #slotEntry: (((entry: QueueEntry) => void) | undefined)[] = [];
  #userEntry: ((entry: QueueEntry) => void) | undefined;

  /**
   * Creates a loop with its queue and its own producer slot.
   *
   * @param options See {@linkcode LoopOptions}.
   * @throws {TypeError} An option has the wrong type.
   * @throws {RangeError} An option is out of range.
   */
  constructor(options: LoopOptions = {}) {
    for (const hook of ["onError", "onWarning", "onMessage", "onEntry"]) {
      optionalFn("create loop", hook, options[hook as keyof LoopOptions]);
    }
    const clock = options.clock;
    if (
      clock !== undefined &&
      (clock === null || typeof clock.now !== "function")
    ) {
      throw new TypeError("Cannot create loop: clock must have now()");
    }
    this.#maxEvents = positiveInt("maxEvents", options.maxEvents ?? 20);
    this.#minEvents = positiveInt("minEvents", options.minEvents ?? 1);
    this.#minWait = options.minWait === undefined
      ? Infinity
      : checkDelay("create loop", "minWait", options.minWait);
    this.#spinMs =
      checkDelay("create loop", "spinMicros", options.spinMicros ?? 50) /
      1000;
    const nodes = options.capacity?.nodesPerProducer;
    if (
      typeof nodes === "number" && Number.isInteger(nodes) &&
      (nodes < 4 || nodes > MAX_NODES_PER_PRODUCER ||
        (nodes & (nodes - 1)) !== 0)
    ) {
      // Its own slot keeps two back (the close marker, a due timer); the
      // queue's own check would allow 1 and 2 and name the queue.
      throw new RangeError(
        `Cannot create loop: capacity.nodesPerProducer must be a power of two from 4 to ${MAX_NODES_PER_PRODUCER}, got ${nodes}`,
      );
    }
    this.#queue = MpscQueue.create({
      nodesPerProducer: 4096,
      ...options.capacity,
    });
    this.buffer = this.#queue.buffer;
    markLoopThread(this.buffer, (retry) => this.#retries.push(retry));
    this.#w = new Int32Array(this.buffer);
    this.#self = this.#queue.attachLocal();
    this.#waiter = new Waiter(this.buffer);
    this.#local = new Array(this.#queue.config.nodesPerProducer);
    const half = this.#local.length >> 1;
    this.#dueTags = new Int32Array(half).fill(TAG_TIMER);
    this.#dueIds = new Int32Array(half);
    this.#dueTickets = new Int32Array(half);
    this.clock = options.clock ?? new RealClock();
    this.#timers = new LoopTimers(this.clock, () => this.#poke());
    this.#inbox = new Inbox(this.#queue);
    this.#inbox.onMessage = options.onMessage;
    this.#userEntry = options.onEntry;
    this.#inbox.onEntry = (e) =>
      (this.#slotEntry[e.producer] ?? this.#userEntry)?.(e);
    this.#inbox.copyBytes = options.copyBytes ?? false;
    this.#inbox.onCloseRequest = () => this.close();
    this.onError = options.onError;
    const stallMs = options.stallMs ?? 1000;
    this.#watchdog = new Watchdog(
      this.#queue,
      this.#waiter,
      stallMs === Infinity
        ? stallMs
        : checkDelay("create loop", "stallMs", stallMs, false),
    );
    this.#watchdog.onWarning = options.onWarning;
    this.#watchdog.onError = (error) => {
      if (this.onError === undefined) throw error;
      this.onError(error);
    };
    this.#now = this.clock.now();
    this.#dispatch = (e) => this.#run(e);
  }

  /** Receives messages posted through ports, with the port's slot. */
  get onMessage(): MessageHandler | undefined {
    return this.#inbox.onMessage;
  }
  set onMessage(fn: MessageHandler | undefined) {
    this.#inbox.onMessage = optionalFn("set handler", "onMessage", fn);
  }

  /** Receives the stall watchdog's reports (see `LoopOptions.stallMs`). */
  get onWarning(): ((warning: LoopWarning) => void) | undefined {
    return this.#watchdog.onWarning;
  }
  set onWarning(fn: ((warning: LoopWarning) => void) | undefined) {
    this.#watchdog.onWarning = optionalFn("set handler", "onWarning", fn);
  }

  /** Receives raw items with tags >= 16 pushed by other threads. */
  get onEntry(): ((entry: QueueEntry) => void) | undefined {
    return this.#userEntry;
  }
  set onEntry(fn: ((entry: QueueEntry) => void) | undefined) {
    this.#userEntry = optionalFn("set handler", "onEntry", fn);
  }

  /**
   * Sends the raw items (tags >= 16) of one producer slot to `fn` instead
   * of `onEntry`, so a component that owns a port (an I/O worker) gets its
   * own items whatever `onEntry` is set to.
   *
   * @param slot A port's slot.
   * @param fn The handler, or undefined to send the slot's items to
   *   `onEntry` again.
   */
  routeEntries(
    slot: number,
    fn: ((entry: QueueEntry) => void) | undefined,
  ): void {
    this.#slotEntry[slot] = fn;
  }

  #open(action: string): void {
    if (this.#closing) throw new LoopClosedError(undefined, action);
  }

  /**
   * Queues `fn` to run on this loop, after everything already queued.
   *
   * @param fn The task.
   * @throws {TypeError} `fn` is not a function.
   * @throws {QueueFullError} The loop's own slot is full (see `capacity`).
   * @throws {LoopClosedError} The loop is closed.
   */
  queue(fn: () => void): void {
    if (!this.tryQueue(fn)) {
      throw new QueueFullError(this.#localQueued, this.#local.length);
    }
  }

  /**
   * Queues `fn` unless the loop's own slot is full.
   *
   * @param fn The task.
   * @returns False when nothing was queued.
   * @throws {TypeError} `fn` is not a function.
   * @throws {LoopClosedError} The loop is closed.
   */
  tryQueue(fn: () => void): boolean {
    if (typeof fn !== "function") {
      throw new TypeError("Cannot queue task: expected a function");
    }
    this.#open("queue task");
    if (!this.#pushLocal(fn, TAG_TASK)) return false;
    this.#poke();
    return true;
  }

  /**
   * Wakes an async drive asleep in `waitAsync` after work was added or a
   * timer changed from outside a pass (a promise reaction, a host
   * callback), so it recomputes its sleep. One atomic load when not asleep.
   */
  #poke(): void {
    if (this.#asleep) wake(this.#w, false);
  }

  /**
   * Pushes a loop-thread item (a task or a host completion). Keeps one node
   * free for the close marker and one more for due timers: a flood of tasks
   * or completions that keeps the slot full still leaves phase 2 room to
   * queue a timer each pass.
   */
  #pushLocal(item: Local, tag: number): boolean {
    if (this.#self.freeNodes() <= 2) {
      // Tasks this pass already ran may have freed nodes that the drain has
      // not published yet (it does once, at its end), and the running task's
      // own node is not read again: release it now (which publishes them;
      // an entry released early already published them).
      if (this.#ownEntry) this.#queue.releaseCurrent();
      else this.#queue.publishReleases();
      if (this.#self.freeNodes() <= 2) return false;
    }
    const i = this.#localNext & (this.#local.length - 1);
    this.#self.push(tag, i, 0);
    this.#local[i] = item;
    this.#localNext++;
    this.#localQueued++;
    return true;
  }

  /**
   * Schedules `callback` after `delay` ms, repeating every `interval` ms if
   * given. See `timers.ts` for the meaning of each delay value.
   *
   * "Now" is the loop's time, as libuv's `uv_now`: called from a task, the
   * running pass's time ({@linkcode Loop.now}: read once, at the pass's
   * first use of it), which saves a clock read per call; called outside a
   * pass, the same for the synchronous turn (a real clock's first read in
   * it, until a microtask clears it, as Node's `setTimeout` counts from
   * libuv's cached time), or a fresh read of a virtual clock.
   * A timer set late in a long pass is so due that much earlier.
   *
   * @param callback Runs as a task when due.
   * @param delay Milliseconds from the loop's time (finite, >= 0).
   * @param interval Repeat period (finite, > 0), or omitted for one-shot.
   * @returns The timer handle.
   * @throws {TypeError} `callback` is not a function or a delay not a number.
   * @throws {RangeError} A delay is negative, NaN, infinite, or a 0 interval.
   * @throws {LoopClosedError} The loop is closed.
   */
  setTimer(callback: () => void, delay: number, interval?: number): Timer {
    this.#open("set timer");
    const t = this.#timers.set(callback, delay, interval);
    this.#poke();
    return t;
  }

  /**
   * Tracks a host promise: `callback` runs as a task, in FIFO order with
   * everything else, once it settles, with the outcome in the shape of
   * `Promise.allSettled` (so a rejection with `undefined` is still a
   * rejection). Rejections never become unhandled. Needs the async drive to
   * make progress; a completion arriving after `close()` is dropped.
   *
   * @param promise The host operation.
   * @param callback Receives `{ status: "fulfilled", value }` or
   *   `{ status: "rejected", reason }`.
   * @throws {TypeError} `promise` is not a thenable or `callback` not a
   *   function; nothing is tracked.
   * @throws {LoopClosedError} The loop is closed.
   */
  track<T>(
    promise: PromiseLike<T>,
    callback: (result: PromiseSettledResult<T>) => void,
  ): void {
    if (
      promise === null ||
      (typeof promise !== "object" && typeof promise !== "function") ||
      typeof promise.then !== "function"
    ) {
      throw new TypeError("Cannot track promise: expected a thenable");
    }
    if (typeof callback !== "function") {
      throw new TypeError("Cannot track promise: expected a callback function");
    }
    this.#open("track promise");
    const done = (fn: () => void) => {
      if (this.#closing) {
        this.#hostOps--;
        return;
      }
      // Slot full, or earlier completions still waiting: wait behind them,
      // so completions run in the order they settled.
      if (this.#hostBacklog.length !== 0 || !this.#pushLocal(fn, TAG_HOST)) {
        this.#hostBacklog.push(fn);
        return;
      }
      this.#hostOps--;
      wake(this.#w, false); // eager: an async drive asleep wakes at once
    };
    this.#hostOps++;
    // `Promise.resolve` returns a native promise as is; a foreign thenable
    // is adopted, so it settles at most once and a throwing `then` becomes
    // a rejection rather than an operation counted forever.
    Promise.resolve(promise).then(
      (value) => done(() => callback({ status: "fulfilled", value })),
      (reason) => done(() => callback({ status: "rejected", reason })),
    );
  }

  /**
   * Reserves a port for another thread (or this one). The handle survives
   * `postMessage`; `connect(handle)` there makes the port. The loop stays
   * alive until the port closes or its thread is reported dead.
   *
   * Outside a pass (not from a task), it first reclaims the slots of dead
   * producers whose items were all delivered; from a task, the pass does
   * that at its end.
   *
   * @returns The handle.
   * @throws {RangeError} Every producer slot is taken (see `capacity`).
   * @throws {LoopClosedError} The loop is closed.
   */
  port(): PortHandle {
    this.#open("create port");
    // Not inside a drain: `reclaim` reads the consumer's counts, which the
    // entry being run has not reached yet.
    if (!this.#inPass) this.#inbox.repairDead();
    return this.#inbox.port();
  }

  /**
   * Reports that the thread behind a port died (fault protocol in
   * `loop_inbox.ts`): its completed posts are delivered, a post it left
   * half-linked is repaired, its slot is reclaimed. The slot's
   * `onPortClosed` callback runs after that bookkeeping; what it throws
   * goes to `onError`, or without one is rethrown here. Wakes an async
   * drive asleep, which returns if the port was all that kept it alive.
   *
   * @param slot The port's slot.
   * @throws {TypeError} `slot` is not an integer.
   * @throws {RangeError} `slot` is not one of this loop's port slots.
   * @throws The `onPortClosed` callback's error, when no `onError` is set.
   */
  producerDied(slot: number): void {
    this.#checkSlot("report producer death", slot);
    try {
      this.#guard(() => this.#inbox.died(slot));
    } finally {
      this.#poke();
    }
  }

  /** A slot another thread may hold: an integer below `producers`. */
  #checkSlot(action: string, slot: number): void {
    if (!Number.isInteger(slot)) {
      throw new TypeError(
        `Cannot ${action}: slot must be an integer, got ${String(slot)}`,
      );
    }
    if (
      slot < 0 || slot >= this.#queue.config.producers ||
      slot === this.#self.slot
    ) {
      throw new RangeError(
        `Cannot ${action}: slot ${slot} is not a port slot of this loop`,
      );
    }
  }

  /**
   * Runs `fn` once when the port on `slot` closes (its `MSG_PORT_CLOSED`
   * arrives, after its last message) or its producer is reported dead.
   *
   * @param slot A port's slot.
   * @param fn The callback; runs inside the pass that sees the close.
   * @throws {TypeError} `slot` is not an integer or `fn` not a function.
   * @throws {RangeError} `slot` is not one of this loop's port slots.
   */
  onPortClosed(slot: number, fn: () => void): void {
    this.#checkSlot("watch port close", slot);
    if (typeof fn !== "function") {
      throw new TypeError("Cannot watch port close: expected a function");
    }
    this.#inbox.closers.set(slot, fn);
  }

  /** Keeps `run()` alive until a matching `unref()`. */
  ref(): void {
    this.#refs++;
  }

  /**
   * Releases one `ref()`. Wakes an async drive asleep, so it returns if
   * that was all that kept it alive.
   */
  unref(): void {
    if (this.#refs > 0) this.#refs--;
    this.#poke();
  }

  /**
   * Whether `run()` would keep going: referenced timers, queued work,
   * tracked host operations, open ports or `ref()` holds (a snapshot).
   *
   * @returns True when the loop has something to wait for.
   */
  alive(): boolean {
    if (this.#sealed) return false;
    return this.#timers.refed > 0 || this.#refs > 0 || this.#hostOps > 0 ||
      this.#inbox.openPorts > 0 || !this.#queue.isEmpty();
  }

  /**
   * Makes the current run method return after the task that is running.
   * Called from outside the loop (a host callback) while the async drive
   * sleeps, it wakes the drive, which returns at once.
   */
  stop(): void {
    this.#stopped = true;
    this.#poke();
  }

  /**
   * Items still queued: the loop's own exactly, other producers' estimated
   * from their counters (a snapshot; other threads may add right after).
   *
   * @returns Number of queued items.
   */
  pending(): number {
    return this.#sealed ? 0 : this.#queue.depth();
  }

  /**
   * The loop's time, in ms: inside a pass, the clock as read once in that
   * pass (at the first use: due timers, `setTimer`, or this getter);
   * outside a pass, the time the last pass that read it read.
   */
  get now(): number {
    return this.#inPass ? this.#timers.time() : this.#now;
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * A snapshot of the loop's counters.
   *
   * @returns The metrics.
   */
  metrics(): LoopMetrics {
    return this.#m.snapshot(
      this.#waiter,
      this.#timers.pending,
      this.#watchdog.stalls,
    );
  }

  /**
   * Closes the loop (see the module docs): everything queued before this
   * call is delivered, pending timers are cancelled, later posts fail with
   * {@linkcode LoopClosedError}. Called from a task, the running run method
   * finishes the queue up to the marker and returns; called outside, it
   * runs those tasks itself before returning. Idempotent once the marker is
   * reached; if a task threw out of an earlier call (no `onError`), calling
   * it again (or a run method) goes on running up to the marker.
   *
   * @throws The error of a task it runs, when no `onError` is set.
   */
  close(): void {
    if (this.#sealed) return;
    if (!this.#closing) {
      this.#closing = true;
      Atomics.store(this.#w, WAIT_NR, WAKE_CLOSING); // pairs with Port.#settle
      this.#timers.cancelAll();
      this.#hostOps -= this.#hostBacklog.length; // dropped, as later ones
      this.#hostBacklog.length = 0;
      this.#self.push(TAG_CLOSE, 0, 0); // room kept by #pushLocal
      // Called from a host callback while the async drive sleeps: the store
      // above changed the word it waits on but woke nobody (producers do not
      // wake a closing loop), so wake it to run up to the marker.
      if (this.#asleep) Atomics.notify(this.#w, WAIT_NR);
    }
    if (!this.#running) {
      this.#drive("close", () => {
        while (!this.#sealed) this.#pass(WAIT_SYNC, true);
      });
    }
  }

  /** Reached the close marker: publish the verdicts and stop for good. */
  #seal(): void {
    this.#queue.publishDelivered();
    Atomics.store(this.#w, WAIT_NR, WAKE_SEALED);
    Atomics.notify(this.#w, WAIT_NR); // posters waiting for their verdict
    this.#sealed = true;
    this.#stopped = true;
  }

  /**
   * Runs passes, blocking the thread in `Atomics.wait` when idle, until
   * nothing referenced is left or `stop()` is called.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called from inside a task.
   * @throws {LoopClosedError} The loop is closed.
   * @throws A task's error when no `onError` is set; the loop can run again.
   */
  runSync(): number {
    return this.#drive("runSync", () => {
      while (!this.#stopped && this.alive()) this.#pass(WAIT_SYNC);
    });
  }

  /**
   * One pass that may block: runs what is due (at most `maxEvents` tasks),
   * then, if nothing is left to run and the loop is alive, sleeps once. The
   * sleep ends at a wake, the next timer deadline, the min-wait deadline or
   * after `stallMs` (1 s by default), whichever comes first; it does not
   * run what became due meanwhile: the next call does. So it may return
   * having run nothing, even with a timer pending: call it in a loop (or
   * use `runSync`) to wait for work. Under a virtual clock it jumps the
   * clock to the next deadline instead of sleeping.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called from inside a task.
   * @throws {LoopClosedError} The loop is closed.
   */
  runOnceSync(): number {
    return this.#drive("runOnceSync", () => this.#pass(WAIT_SYNC));
  }

  /**
   * One pass that never sleeps and never moves a virtual clock.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called from inside a task.
   * @throws {LoopClosedError} The loop is closed.
   */
  runNoWait(): number {
    return this.#drive("runNoWait", () => this.#pass(NO_WAIT));
  }

  #enter(method: string): number {
    if (this.#running) throw new ReentrancyError(method);
    if (this.#sealed) throw new LoopClosedError(undefined, method);
    this.#running = true;
    this.#stopped = false;
    return performance.now();
  }

  #leave(t0: number): void {
    this.#running = false;
    this.#endPass();
    this.#m.ranFor(performance.now() - t0);
  }

  #drive(method: string, body: () => void): number {
    const t0 = this.#enter(method);
    try {
      body();
    } finally {
      this.#leave(t0);
    }
    return this.pending();
  }

  /**
   * The async drive: like `runSync`, but yields to the host between passes
   * (so promise reactions and host I/O run) and sleeps with
   * `Atomics.waitAsync`, holding the process alive while it waits.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called while any run method is running.
   * @throws {LoopClosedError} The loop is closed.
   */
  async run(): Promise<number> {
    return await this.#driveAsync("run", false);
  }

  /**
   * One pass of the async drive: like `runOnceSync` (it runs what is due,
   * then may sleep once, at most `stallMs`, and may return having run
   * nothing), but sleeps without blocking the thread and yields to the
   * host after the pass.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called while any run method is running.
   * @throws {LoopClosedError} The loop is closed.
   */
  async runOnce(): Promise<number> {
    return await this.#driveAsync("runOnce", true);
  }

  /** Busy time after which the async drive yields an I/O turn, ms. */
  #ioTurnMs(): number {
    return this.#hostOps > 0 ? IO_TURN_TRACKED_MS : IO_TURN_MS;
  }

  async #driveAsync(method: string, once: boolean): Promise<number> {
    const t0 = this.#enter(method);
    // Busy time since the host could last poll I/O.
    const busy = new BusyTime(t0, () => performance.now());
    // A pending waitAsync does not keep the process alive: hold it for the
    // whole run instead of arming a host timer per sleep.
    const hold = setInterval(() => {}, 1 << 30);
    const turn = new MacrotaskTurn();
    try {
      do {
        const sleep = this.#pass(WAIT_ASYNC);
        if (sleep >= 0) {
          const s0 = performance.now();
          this.#asleep = true;
          let r;
          try {
            r = await this.#waiter.sleepAsync(
              this.#minEvents,
              sleep,
              this.#minWait,
              false,
            );
          } finally {
            this.#asleep = false;
          }
          const ms = performance.now() - s0;
          this.#m.slept(r, ms);
          this.#watchdog.slept(r, ms, sleep);
        }
        // A sleep that really waited gave the host its turns; one that
        // returned at once (a timer already due, work already there) did
        // not, so the busy-time bound still applies.
        if (sleep >= 0 && this.#waiter.yieldedToHost) {
          busy.yielded();
        } else if (busy.over(this.#ioTurnMs())) {
          // Work kept the drive busy: the host polls I/O, runs its timers.
          await turn.io();
          busy.yielded();
        } else if (
          sleep === VIRTUAL_JUMP || sleep === BUSY_PAUSE || this.#hostOps > 0
        ) {
          // Pending reactions (which may set an earlier timer or queue
          // work before a jump), host completions, a producer to finish.
          await turn.next();
        } else if (sleep < 0) {
          await null; // one microtask turn between passes
        }
        if (sleep === VIRTUAL_JUMP && this.#queue.isEmpty()) {
          const next = this.#timers.nextDeadline(); // nothing arrived: jump
          if (next !== Infinity) this.clock.jumpTo(next);
        }
        if (!once && !this.#stopped && !this.alive()) {
          await turn.next(); // a reaction may still add work
        }
      } while (!once && !this.#stopped && this.alive());
    } finally {
      clearInterval(hold);
      turn.close();
      this.#leave(t0);
    }
    return this.pending();
  }

  /**
   * One pass (phases 1-4 of the module docs). Returns how long an async
   * drive should sleep (ms, may be Infinity), `AWAKE` or `BUSY_PAUSE`.
   */
  #pass(mode: number, closing = false): number {
    this.#inPass = true;
    this.#timers.setPass(true); // not a turn's time read before the pass
    // 1. Time: read at its first use in the pass (timers.time()), so a pass
    // with no timer pending and no task asking reads no clock.
    this.#m.pass();
    if (!closing && this.#timers.pending > 0) this.#queueDueTimers(); // 2.
    this.#runTasks(); // 3. run at most maxEvents
    this.#endPass(); // after a task's throw, #leave does it
    if (this.#retries.length !== 0) this.#retryPushes();
    if (this.#hostBacklog.length !== 0) this.#pushHostBacklog();
    // Dead producers: a push left half-linked is repaired (run it now), a
    // drained slot is free again before the run method can return.
    if (!this.#sealed && this.#inbox.repairDead()) return AWAKE;
    return this.#idle(mode); // 4. sleep
  }

  /** Tasks no longer run: `setTimer` reads the clock, `port` may reclaim. */
  #endPass(): void {
    const now = this.#timers.passNow;
    if (now === now) this.#now = now;
    this.#inPass = false;
    this.#ownEntry = false;
    this.#timers.setPass(false);
  }

  /**
   * Queues the host completions that found the loop's own slot full, oldest
   * first, as far as the tasks just run freed room (the backlog keeps
   * `alive()` true, so a pass comes).
   */
  #pushHostBacklog(): void {
    const backlog = this.#hostBacklog;
    let n = 0;
    while (n < backlog.length && this.#pushLocal(backlog[n], TAG_HOST)) n++;
    backlog.splice(0, n);
    this.#hostOps -= n;
  }

  /**
   * Retries the control pushes (a port's close) that found a port on this
   * thread full: the tasks just run may have freed its space.
   */
  #retryPushes(): void {
    const retries = this.#retries;
    this.#retries = [];
    for (const retry of retries) {
      if (!retry()) this.#retries.push(retry);
    }
  }

  /**
   * Phase 2. Due timers take at most half the free nodes of the loop's own
   * slot and half the slot (a pass
   * runs only `maxEvents` of them anyway), so tasks their callbacks queue find
   * room without `#run` releasing each timer's node early (two atomic
   * stores each). A timer's entry carries its id and ticket; it has no
   * `#local` slot.
   */
  #queueDueTimers(): void {
    // Free nodes less the close marker's; timers take half of them (one at
    // least: tasks leave it to them), the rest stays for the tasks their
    // callbacks queue.
    const free = this.#self.freeNodes() - 1;
    const half = this.#dueIds.length - this.#timersQueued;
    const room = Math.min(free, Math.max(1, free >> 1), half);
    const ids = this.#dueIds;
    const tickets = this.#dueTickets;
    const now = this.#timers.time();
    const n = this.#timers.collectDue(now, room, ids, tickets);
    if (n === 0) return;
    this.#self.pushBatch(this.#dueTags, ids, tickets, n);
    this.#localQueued += n;
    this.#timersQueued += n;
  }

  #runTasks(): void {
    const q = this.#queue;
    q.drain(this.#maxEvents, this.#dispatch);
    const state = q.lastState;
    // Depth reads every producer's line: sampled on the first pass of a
    // backlog and every 8th pass while it lasts, not after each pass.
    if (state !== "empty" && (this.#backlogPasses++ & 7) === 0) {
      this.#m.depth(q.depth());
    }
    if (state !== "more") this.#backlogPasses = 0;
    if (state === "busy") this.#m.busy();
  }

  /** Dispatches one queue entry; returns false to end the pass. */
  #run(e: QueueEntry): boolean {
    if (this.#sealed) return false; // behind the marker: never delivered
    if (e.producer !== this.#self.slot) {
      this.#m.ran(2);
      this.#guard(() => this.#inbox.deliver(e));
      return !this.#stopped;
    }
    const tag = e.tag;
    if (tag === TAG_TIMER) return this.#runTimer(e.a, e.b);
    if (tag === TAG_CLOSE) {
      this.#seal();
      return false;
    }
    const item = this.#local[e.a]!;
    this.#local[e.a] = undefined;
    this.#releaseLocal();
    this.#m.ran(tag === TAG_HOST ? 3 : 0);
    this.#ownEntry = true; // a throw leaves it set: #endPass clears it
    this.#guard(item);
    this.#ownEntry = false;
    return !this.#stopped;
  }

  /** Dispatches a due timer's entry (its id and ticket). */
  #runTimer(id: number, ticket: number): boolean {
    this.#timersQueued--;
    this.#releaseLocal(); // the entry is not read after this
    const callback = this.#timers.fire(id, ticket);
    if (callback !== undefined) {
      this.#m.ran(1);
      this.#ownEntry = true;
      try {
        this.#guard(callback);
      } finally {
        this.#ownEntry = false;
        this.#timers.settle(id, ticket);
      }
    }
    return !this.#stopped;
  }

  /** One loop-thread entry is taken. */
  #releaseLocal(): void {
    // A nearly full slot (counting the two nodes `#pushLocal` keeps back)
    // frees this node now, so the task can queue more.
    if ((--this.#localQueued + 2) * 2 >= this.#local.length) {
      this.#queue.releaseCurrent();
    }
  }

  #guard(fn: () => void): void {
    if (this.onError === undefined) return fn();
    try {
      fn();
    } catch (err) {
      this.onError(err);
    }
  }

  #spin(): boolean {
    return spinUntil(this.#spinMs, () => !this.#queue.isEmpty());
  }

  /** Phase 4. Returns the sleep an async drive should take, or a code. */
  #idle(mode: number): number {
    const q = this.#queue;
    if (this.#stopped || !this.alive()) return AWAKE;
    if (q.lastState === "busy") {
      // A producer is mid-push (one that died there was repaired in
      // `#pass`): pause briefly, longer each time, capped at 1 ms.
      this.#watchdog.busy(performance.now());
      const ms = Math.min(1, 0.01 * ++this.#busySpins);
      if (mode === WAIT_SYNC) Atomics.wait(this.#pause, 0, 0, ms);
      return mode === WAIT_ASYNC ? BUSY_PAUSE : AWAKE;
    }
    this.#busySpins = 0;
    this.#watchdog.notBusy();
    if (!q.isEmpty() || mode === NO_WAIT) return AWAKE;
    const next = this.#timers.nextDeadline();
    if (next !== Infinity && this.clock.virtual) {
      if (mode === WAIT_ASYNC) return VIRTUAL_JUMP; // after reactions run
      this.clock.jumpTo(next); // virtual time: no real sleep
      return AWAKE;
    }
    const wait = this.#watchdog.cap(
      next === Infinity ? Infinity : Math.max(0, next - this.clock.now()),
    );
    if (wait > 0 && this.#spin()) return AWAKE;
    if (mode === WAIT_ASYNC) return wait;
    const s0 = performance.now();
    const r = this.#waiter.sleep(this.#minEvents, wait, this.#minWait);
    const ms = performance.now() - s0;
    this.#m.slept(r, ms);
    this.#watchdog.slept(r, ms, wait);
    return AWAKE;
  }
}

/** Bounded poll before sleeping; true when work arrived. */
function spinUntil(ms: number, ready: () => boolean): boolean {
  if (ms <= 0) return false;
  const end = performance.now() + ms;
  do {
    for (let i = 0; i < 32; i++) if (ready()) return true;
  } while (performance.now() < end);
  return false;
}

/** `v` when it is a function or undefined; else a `TypeError`. */
function optionalFn<T>(action: string, name: string, v: T): T {
  if (v !== undefined && typeof v !== "function") {
    throw new TypeError(`Cannot ${action}: ${name} must be a function`);
  }
  return v;
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(
      `Cannot create loop: ${name} must be an integer, got ${
        typeof v === "string" ? `"${v}" (a string)` : String(v)
      }`,
    );
  }
  if (v < 1 || v > 2 ** 30) {
    throw new RangeError(
      `Cannot create loop: ${name} must be from 1 to 2^30, got ${v}`,
    );
  }
  return v;
}
