/**
 * The run-to-completion event loop over one {@linkcode MpscQueue}.
 *
 * Every source goes through the same queue, so one FIFO order covers them
 * all: tasks queued from the loop thread (`queue`), timers when they come
 * due, host completions (`track`), and items pushed by other threads
 * (`Producer.attach(loop.buffer)`).
 *
 * ## One pass
 *
 * 1. **Update time**: read the clock once.
 * 2. **Due timers**: move every timer whose deadline has passed into the
 *    queue, in deadline order, ties in creation order, as one chain published
 *    with one exchange; all are collected before any runs. If the loop's own
 *    producer slot is short of nodes, the rest stay due for the next pass.
 * 3. **Run**: take at most `maxEvents` items in FIFO order and run each to
 *    completion; the rest stay queued.
 * 4. **Sleep**, only if the loop may wait, is still alive and nothing is
 *    runnable: a producer caught mid-push ("busy") gets a short bounded
 *    pause, never an open-ended sleep; otherwise the waiter arms and sleeps
 *    until woken, the next timer deadline or the min-wait deadline. Under a
 *    virtual clock the loop jumps the clock to the next deadline instead.
 *
 * ## Microtasks
 *
 * Within a pass tasks run back to back. With the async drive (`run`,
 * `runOnce`), promise reactions queued by a task run after the pass ends,
 * before the next pass: after at most `maxEvents` tasks. The blocking drive
 * (`runSync`) never yields, so reactions wait until it returns.
 *
 * @module
 */

import { RealClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import {
  MpscQueue,
  PUSH_FULL,
  type QueueConfig,
  type QueueEntry,
} from "./mpsc_queue.ts";
import { Producer } from "./mpsc_queue.ts";
import {
  checkDelay,
  Timer,
  TIMER_DONE,
  TIMER_PENDING,
  TIMER_QUEUED,
  TimerQueue,
} from "./timers.ts";
import { Waiter, wake } from "./wake.ts";
import { type LoopMetrics, MetricsCollector } from "./loop_metrics.ts";

export type { LoopMetrics } from "./loop_metrics.ts";

/** Queue tag of a task queued on the loop thread. */
export const TAG_TASK = 0;
/** Queue tag of a due timer. */
export const TAG_TIMER = 1;
/** Queue tag of a host completion. */
export const TAG_HOST = 2;
/** Tags below this are the loop's own; producers use tags from here up. */
export const FIRST_USER_TAG = 16;

/** Options for {@linkcode Loop}. */
export interface LoopOptions {
  /** Most tasks run per pass (default 20, as the seed's `max_events`). */
  maxEvents?: number;
  /** Lazy adds that wake a sleeping loop (default 1). */
  minEvents?: number;
  /** After this many ms asleep, any add wakes the loop (default: never). */
  minWait?: number;
  /** Queue sizes; the loop's own slot also bounds `queue()` backlog. */
  capacity?: Partial<QueueConfig>;
  /** Time source (default: {@linkcode RealClock}). */
  clock?: Clock;
  /** Receives errors thrown by tasks; without it `run` rethrows them. */
  onError?: (error: unknown) => void;
  /** Receives items pushed by other threads with tags >= 16. */
  onEntry?: (entry: QueueEntry) => void;
}

/** A run method was called from inside a task of the same loop. */
export class ReentrancyError extends Error {
  /**
   * Makes the error.
   *
   * @param method The run method called.
   */
  constructor(method: string) {
    super(
      `Cannot ${method}: the loop is already running (called from inside a task)`,
    );
    this.name = "ReentrancyError";
  }
}

/** A task's `queue()` found the loop's own producer slot full. */
export class QueueFullError extends RangeError {
  /**
   * Makes the error.
   *
   * @param limit The slot's node count.
   */
  constructor(limit: number) {
    super(
      `Cannot queue task: ${limit} tasks already queued from the loop thread`,
    );
    this.name = "QueueFullError";
  }
}

type Local = (() => void) | Timer;

/** `#pass` result for the async drive: a producer is mid-push, pause. */
const BUSY_PAUSE = -2;

/**
 * An event loop. See the module docs for the pass and the microtask rule.
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
  /** The queue's buffer: hand it to workers for `Producer.attach`. */
  readonly buffer: SharedArrayBuffer;
  /** The clock read once per pass. */
  readonly clock: Clock;
  readonly #maxEvents: number;
  readonly #minEvents: number;
  readonly #minWait: number;
  readonly #queue: MpscQueue;
  readonly #w: Int32Array;
  readonly #self: Producer;
  readonly #waiter: Waiter;
  readonly #local: (Local | undefined)[];
  #localNext = 0;
  #localQueued = 0;
  readonly #heap = new TimerQueue();
  #timerSeq = 0;
  #refedTimers = 0;
  #refs = 0;
  #hostOps = 0;
  #now = 0;
  #running = false;
  #stopped = false;
  #busySpins = 0;
  readonly #pause = new Int32Array(new SharedArrayBuffer(4));
  readonly #dispatch: (e: QueueEntry) => void;
  readonly #m = new MetricsCollector();
  /** Receives errors thrown by tasks; without it run methods rethrow. */
  onError: ((error: unknown) => void) | undefined;
  /** Receives items pushed by other threads (or with tags >= 16). */
  onEntry: ((entry: QueueEntry) => void) | undefined;

  /**
   * Creates a loop with its queue and its own producer slot.
   *
   * @param options See {@linkcode LoopOptions}.
   * @throws {TypeError} An option has the wrong type.
   * @throws {RangeError} An option is out of range.
   */
  constructor(options: LoopOptions = {}) {
    this.#maxEvents = positiveInt("maxEvents", options.maxEvents ?? 20);
    this.#minEvents = positiveInt("minEvents", options.minEvents ?? 1);
    this.#minWait = options.minWait === undefined
      ? Infinity
      : checkDelay("create loop", "minWait", options.minWait);
    this.#queue = MpscQueue.create({
      nodesPerProducer: 4096,
      ...options.capacity,
    });
    this.buffer = this.#queue.buffer;
    this.#w = new Int32Array(this.buffer);
    this.#self = Producer.attach(this.buffer);
    this.#waiter = new Waiter(this.buffer);
    this.#local = new Array(this.#queue.config.nodesPerProducer);
    this.clock = options.clock ?? new RealClock();
    this.onError = options.onError;
    this.onEntry = options.onEntry;
    this.#now = this.clock.now();
    this.#dispatch = (e) => this.#run(e);
  }

  /**
   * Queues `fn` to run on this loop, after everything already queued.
   *
   * @param fn The task.
   * @throws {TypeError} `fn` is not a function.
   * @throws {QueueFullError} The loop's own slot is full (see `capacity`).
   */
  queue(fn: () => void): void {
    if (typeof fn !== "function") {
      throw new TypeError("Cannot queue task: expected a function");
    }
    if (!this.#pushLocal(fn, TAG_TASK)) {
      throw new QueueFullError(this.#local.length);
    }
  }

  /**
   * Queues `fn` unless the loop's own slot is full.
   *
   * @param fn The task.
   * @returns False when nothing was queued.
   * @throws {TypeError} `fn` is not a function.
   */
  tryQueue(fn: () => void): boolean {
    if (typeof fn !== "function") {
      throw new TypeError("Cannot queue task: expected a function");
    }
    return this.#pushLocal(fn, TAG_TASK);
  }

  #pushLocal(item: Local, tag: number): boolean {
    const i = this.#localNext & (this.#local.length - 1);
    if (this.#self.push(tag, i, 0) === PUSH_FULL) return false;
    this.#local[i] = item;
    this.#localNext++;
    this.#localQueued++;
    return true;
  }

  /**
   * Schedules `callback` after `delay` ms, repeating every `interval` ms if
   * given. See `timers.ts` for the meaning of each delay value.
   *
   * @param callback Runs as a task when due.
   * @param delay Milliseconds from now (finite, >= 0).
   * @param interval Repeat period (finite, > 0), or omitted for one-shot.
   * @returns The timer handle.
   * @throws {TypeError} `callback` is not a function or a delay not a number.
   * @throws {RangeError} A delay is negative, NaN, infinite, or a 0 interval.
   */
  setTimer(callback: () => void, delay: number, interval?: number): Timer {
    if (typeof callback !== "function") {
      throw new TypeError("Cannot set timer: callback must be a function");
    }
    checkDelay("set timer", "delay", delay);
    const every = interval === undefined
      ? 0
      : checkDelay("set timer", "interval", interval, false);
    const t = new Timer(
      this,
      callback,
      this.clock.now() + delay,
      delay,
      every,
      this.#timerSeq++,
    );
    this.#heap.push(t);
    this.#refedTimers++;
    return t;
  }

  /** @internal Keeps the heap and the ref count in step with a timer. */
  timerChanged(t: Timer, wasRefed: boolean): void {
    const counted = t.bucket !== null || t.state === TIMER_QUEUED;
    if (counted && wasRefed) this.#refedTimers--;
    this.#heap.remove(t);
    if (t.state === TIMER_DONE) return;
    if (Number.isNaN(t.deadline)) {
      t.deadline = this.clock.now() + t.delay;
      t.seq = this.#timerSeq++;
    }
    if (t.state === TIMER_PENDING) this.#heap.push(t);
    if (t.hasRef()) this.#refedTimers++;
  }

  /**
   * Tracks a host promise: `callback` runs as a task, in FIFO order with
   * everything else, once it settles. Rejections arrive as `error`, never as
   * unhandled rejections. Needs the async drive to make progress.
   *
   * @param promise The host operation.
   * @param callback Receives `(error, undefined)` or `(undefined, value)`.
   */
  track<T>(
    promise: Promise<T>,
    callback: (error: unknown, value?: T) => void,
  ): void {
    this.#hostOps++;
    const done = (fn: () => void) => {
      this.#hostOps--;
      const i = this.#localNext & (this.#local.length - 1);
      this.#local[i] = fn;
      // The loop thread itself produces here; eager, so a sleeping async
      // drive wakes at once.
      if (this.#self.push(TAG_HOST, i, 0) === PUSH_FULL) {
        this.#local[i] = undefined;
        Promise.resolve().then(() => done(fn));
        this.#hostOps++;
        return;
      }
      this.#localNext++;
      this.#localQueued++;
      wake(this.#w, false);
    };
    promise.then(
      (v) => done(() => callback(undefined, v)),
      (e) => done(() => callback(e)),
    );
  }

  /** Keeps `run()` alive until a matching `unref()` (e.g. for a worker). */
  ref(): void {
    this.#refs++;
  }

  /** Releases one `ref()`. */
  unref(): void {
    if (this.#refs > 0) this.#refs--;
  }

  /**
   * Whether `run()` would keep going: referenced timers, queued work,
   * tracked host operations or `ref()` holds (a snapshot).
   *
   * @returns True when the loop has something to wait for.
   */
  alive(): boolean {
    return this.#refedTimers > 0 || this.#refs > 0 || this.#hostOps > 0 ||
      !this.#queue.isEmpty();
  }

  /** Makes the current run method return after the task that is running. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Work still queued: tasks queued from the loop thread, due-and-queued
   * timers, plus other producers' items (estimated from their counters).
   * A snapshot; other threads may add right after.
   *
   * @returns Number of queued items.
   */
  pending(): number {
    return this.#queue.depth();
  }

  /** Milliseconds of the clock as read at the start of the current pass. */
  get now(): number {
    return this.#now;
  }

  /**
   * A snapshot of the loop's counters.
   *
   * @returns The metrics.
   */
  metrics(): LoopMetrics {
    return this.#m.snapshot(this.#waiter, this.#heap.size);
  }

  /**
   * Runs passes, blocking the thread in `Atomics.wait` when idle, until
   * nothing referenced is left or `stop()` is called.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called from inside a task.
   * @throws A task's error when no `onError` is set; the loop can run again.
   */
  runSync(): number {
    return this.#drive("runSync", () => {
      while (!this.#stopped && this.alive()) this.#pass(true);
    });
  }

  /**
   * One pass that may block: runs what is due, or sleeps until something is.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called from inside a task.
   */
  runOnceSync(): number {
    return this.#drive("runOnceSync", () => this.#pass(true));
  }

  /**
   * One pass that never sleeps.
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called from inside a task.
   */
  runNoWait(): number {
    return this.#drive("runNoWait", () => this.#pass(false));
  }

  #drive(method: string, body: () => void): number {
    if (this.#running) throw new ReentrancyError(method);
    this.#running = true;
    this.#stopped = false;
    const t0 = performance.now();
    try {
      body();
    } finally {
      this.#running = false;
      this.#m.ranFor(performance.now() - t0);
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
   */
  async run(): Promise<number> {
    return await this.#driveAsync("run", false);
  }

  /**
   * One pass of the async drive; may sleep (without blocking the thread).
   *
   * @returns Items still queued.
   * @throws {ReentrancyError} Called while any run method is running.
   */
  async runOnce(): Promise<number> {
    return await this.#driveAsync("runOnce", true);
  }

  async #driveAsync(method: string, once: boolean): Promise<number> {
    if (this.#running) throw new ReentrancyError(method);
    this.#running = true;
    this.#stopped = false;
    const t0 = performance.now();
    let lastYield = t0;
    try {
      do {
        const sleep = this.#pass(false);
        if (sleep === BUSY_PAUSE) {
          await new Promise((r) => setTimeout(r, 0)); // let the producer finish
          lastYield = performance.now();
        } else if (sleep >= 0 && !this.#stopped) {
          const s0 = performance.now();
          const r = await this.#waiter.sleepAsync(
            this.#minEvents,
            sleep,
            this.#minWait,
          );
          this.#m.slept(r, performance.now() - s0);
          lastYield = performance.now();
        } else if (this.#hostOps > 0 || performance.now() - lastYield > 10) {
          // A macrotask turn, so host I/O callbacks and host timers run.
          await new Promise((r) => setTimeout(r, 0));
          lastYield = performance.now();
        } else {
          await null; // microtask checkpoint between passes
        }
      } while (!once && !this.#stopped && this.alive());
    } finally {
      this.#running = false;
      this.#m.ranFor(performance.now() - t0);
    }
    return this.pending();
  }

  /**
   * One pass (phases 1-4 of the module docs). With `mayWait` false, returns
   * how long the caller should sleep (ms, may be Infinity), -1 for "do not
   * sleep" or `BUSY_PAUSE`; with `mayWait` true it sleeps itself.
   */
  #pass(mayWait: boolean): number {
    this.#now = this.clock.now(); // 1. update time
    this.#m.pass();
    this.#queueDueTimers(); // 2. due timers
    this.#runTasks(); // 3. run at most maxEvents
    return this.#idle(mayWait); // 4. sleep
  }

  #queueDueTimers(): void {
    const heap = this.#heap;
    let top = heap.peek();
    if (top === undefined || top.deadline > this.#now) return;
    const room = this.#self.freeNodes();
    const tags: number[] = [];
    const as: number[] = [];
    while (
      top !== undefined && top.deadline <= this.#now && tags.length < room
    ) {
      heap.pop();
      top.state = TIMER_QUEUED;
      const i = (this.#localNext + tags.length) & (this.#local.length - 1);
      this.#local[i] = top;
      tags.push(TAG_TIMER);
      as.push(i);
      top = heap.peek();
    }
    if (tags.length === 0) return;
    this.#self.pushBatch(tags, as, as, tags.length);
    this.#localNext += tags.length;
    this.#localQueued += tags.length;
  }

  #runTasks(): void {
    const q = this.#queue;
    q.drain(this.#maxEvents, this.#dispatch);
    this.#m.depth(q.depth());
    if (q.lastState === "busy") this.#m.busy();
  }

  /** Dispatches one queue entry by tag. */
  #run(e: QueueEntry): void {
    if (e.tag >= FIRST_USER_TAG || e.producer !== this.#self.slot) {
      this.#m.ran(2);
      return this.#guard(this.onEntry, e);
    }
    const item = this.#local[e.a]!;
    this.#local[e.a] = undefined;
    this.#localQueued--;
    if (item instanceof Timer) return this.#fire(item);
    this.#m.ran(e.tag === TAG_HOST ? 3 : 0);
    this.#guard(item, undefined);
  }

  #fire(t: Timer): void {
    if (t.state !== TIMER_QUEUED) return; // cancelled after it was queued
    this.#m.ran(1);
    if (t.interval > 0) {
      // Keep the phase; skip ticks that are already past (no drift, no burst).
      const behind = Math.floor((this.#now - t.deadline) / t.interval) + 1;
      t.deadline += Math.max(1, behind) * t.interval;
      t.state = TIMER_PENDING;
      this.#heap.push(t);
    } else {
      t.state = TIMER_DONE;
      if (t.hasRef()) this.#refedTimers--;
    }
    this.#guard(t.callback, undefined);
  }

  #guard<A>(fn: ((a: A) => void) | undefined, arg: A): void {
    if (fn === undefined) return;
    if (this.onError === undefined) return fn(arg);
    try {
      fn(arg);
    } catch (err) {
      this.onError(err);
    }
  }

  /** Phase 4. Returns the sleep the async drive should take, or -1. */
  #idle(mayWait: boolean): number {
    const q = this.#queue;
    if (this.#stopped || !this.alive()) return -1;
    if (q.lastState === "busy") {
      // A producer is mid-push: pause briefly, longer each time, capped.
      const ms = Math.min(1, 0.01 * ++this.#busySpins);
      if (mayWait) Atomics.wait(this.#pause, 0, 0, ms);
      return mayWait ? -1 : BUSY_PAUSE;
    }
    this.#busySpins = 0;
    if (!q.isEmpty()) return -1;
    const top = this.#heap.peek();
    const wait = top === undefined
      ? Infinity
      : Math.max(0, top.deadline - this.clock.now());
    if (top !== undefined && this.clock.virtual) {
      this.clock.jumpTo(top.deadline); // virtual time: no real sleep
      return -1;
    }
    if (!mayWait) return wait;
    const s0 = performance.now();
    const r = this.#waiter.sleep(this.#minEvents, wait, this.#minWait);
    this.#m.slept(r, performance.now() - s0);
    return -1;
  }
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(
      `Cannot create loop: ${name} must be an integer, got ${String(v)}`,
    );
  }
  if (v < 1 || v > 2 ** 30) {
    throw new RangeError(
      `Cannot create loop: ${name} must be from 1 to 2^30, got ${v}`,
    );
  }
  return v;
}
