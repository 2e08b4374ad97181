/**
 * Loop-aware stand-ins for `@std/async`: {@linkcode delay},
 * {@linkcode deadline}, {@linkcode abortable} and {@linkcode pooledMap}.
 * Their timers are the loop's own (`Loop.setTimer`), so under a
 * `VirtualClock` they are deterministic and never really sleep.
 *
 * ## What keeps `await loop.run()` alive
 *
 * - `delay`, `deadline`: their timer (referenced) until it fires or is
 *   cancelled. A deadline whose promise settles first cancels its timer, so
 *   nothing is left holding the loop.
 * - `pooledMap`: every `fn` call and every pull from an async source is a
 *   tracked host operation (`Loop.track`) and the pool's own steps run as loop
 *   tasks, so the loop stays alive from the first call until the pool is done,
 *   with no gap between one call settling and the next starting. This needs
 *   the async drive (`run`, `runOnce`); the blocking drive would sleep forever
 *   on a tracked operation.
 * - `abortable` does not touch the loop.
 *
 * Your own code between two awaits is not covered: the async drive checks
 * whether it is still alive one microtask after a pass, so a continuation that
 * awaits something else before setting its next timer may find `run()` already
 * returned.
 *
 * ## Outside a pass
 *
 * A timer set or cancelled from a promise reaction runs while the async drive
 * may be asleep with a timeout computed before the change. These helpers wake
 * the loop after such a change so it recomputes its sleep (see `poke`).
 *
 * @module
 */

import { Loop } from "./loop.ts";
import { checkDelay, type Timer, TIMER_DONE } from "./timers.ts";
import { wake } from "./wake.ts";

/** Options for {@linkcode delay} and {@linkcode deadline}. */
export interface SignalOptions {
  /** Aborting rejects with `signal.reason` and cancels the timer. */
  signal?: AbortSignal;
}

/**
 * The promise given to {@linkcode deadline} did not settle in time.
 *
 * @example
 * ```ts
 * import { DeadlineError } from "./async.ts";
 * const err = new DeadlineError(50);
 * if (err.message !== "Cannot complete: deadline of 50 ms exceeded") {
 *   throw new Error(err.message);
 * }
 * ```
 */
export class DeadlineError extends Error {
  /** The deadline that passed, in milliseconds. */
  readonly ms: number;

  /**
   * Creates the error for a deadline of `ms` milliseconds.
   *
   * @param ms The deadline that passed, in milliseconds.
   */
  constructor(ms: number) {
    super(`Cannot complete: deadline of ${ms} ms exceeded`);
    this.name = "DeadlineError";
    this.ms = ms;
  }
}

/**
 * Resolves when a timer of `loop` fires after `ms` milliseconds. The timer
 * keeps `run()` alive; aborting cancels it, so it no longer does.
 *
 * @param loop The loop whose timer to use; the promise settles only while it
 *   runs.
 * @param ms Milliseconds, finite and >= 0 (the loop's delay rules).
 * @param options `signal` to abort the delay.
 * @returns A promise that resolves when the timer fires, or rejects with
 *   `signal.reason` when aborted first (at once if already aborted).
 * @throws {TypeError} `loop` is not a Loop, `ms` not a number, or `signal` not
 *   an AbortSignal (thrown, not a rejection).
 * @throws {RangeError} `ms` is negative, NaN or infinite.
 *
 * @example
 * ```ts
 * import { delay } from "./async.ts";
 * import { VirtualClock } from "./clock.ts";
 * import { Loop } from "./loop.ts";
 *
 * const clock = new VirtualClock();
 * const loop = new Loop({ clock });
 * const woke = delay(loop, 1000).then(() => clock.now());
 * await loop.run(); // jumps the virtual clock: no real sleep
 * if (await woke !== 1000) throw new Error("unexpected");
 * ```
 */
export function delay(
  loop: Loop,
  ms: number,
  options: SignalOptions = {},
): Promise<void> {
  checkLoop("start delay", loop);
  checkDelay("start delay", "ms", ms);
  const signal = checkSignal("start delay", options.signal);
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      stop(loop, timer);
      reject(signal!.reason);
    };
    const timer = loop.setTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    poke(loop);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Settles like `promise`, unless `ms` milliseconds of the loop's clock pass
 * first: then it rejects with a {@linkcode DeadlineError}. When `promise`
 * settles first the timer is cancelled, so it does not keep `run()` alive.
 * A late rejection of `promise` is handled (dropped), as with `Promise.race`.
 *
 * @typeParam T The promise's value.
 * @param loop The loop whose timer measures the deadline.
 * @param promise The operation to wait for.
 * @param ms Milliseconds, finite and >= 0 (the loop's delay rules).
 * @param options `signal` to give up early.
 * @returns A promise settled by whichever comes first: `promise`, the
 *   deadline, or the abort.
 * @throws {TypeError} `loop` is not a Loop, `promise` not a thenable, `ms` not
 *   a number or `signal` not an AbortSignal (thrown, not a rejection).
 * @throws {RangeError} `ms` is negative, NaN or infinite.
 *
 * @example
 * ```ts
 * import { deadline, DeadlineError, delay } from "./async.ts";
 * import { VirtualClock } from "./clock.ts";
 * import { Loop } from "./loop.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const answer = new Promise((r) => loop.setTimer(() => r("ok"), 10));
 * const fast = deadline(loop, answer, 50);
 * const slow = deadline(loop, delay(loop, 90), 50).catch((e) => e);
 * await loop.run();
 * if (await fast !== "ok") throw new Error("unexpected");
 * if (!((await slow) instanceof DeadlineError)) throw new Error("unexpected");
 * ```
 */
export function deadline<T>(
  loop: Loop,
  promise: PromiseLike<T>,
  ms: number,
  options: SignalOptions = {},
): Promise<T> {
  checkLoop("set deadline", loop);
  if (!isThenable(promise)) {
    throw new TypeError(
      `Cannot set deadline: promise must be a thenable, got ${typeOf(promise)}`,
    );
  }
  checkDelay("set deadline", "ms", ms);
  const signal = checkSignal("set deadline", options.signal);
  const input = Promise.resolve(promise);
  if (signal?.aborted) {
    input.then(undefined, noop);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let open = true;
    const close = (): boolean => {
      if (!open) return false;
      open = false;
      signal?.removeEventListener("abort", onAbort);
      stop(loop, timer);
      return true;
    };
    const onAbort = () => {
      if (close()) reject(signal!.reason);
    };
    const timer = loop.setTimer(() => {
      if (close()) reject(new DeadlineError(ms));
    }, ms);
    poke(loop);
    signal?.addEventListener("abort", onAbort, { once: true });
    input.then((value) => {
      if (close()) resolve(value);
    }, (error) => {
      if (close()) reject(error);
    });
  });
}

/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as the
 * signal aborts (at once if it already has). The operation itself is not
 * stopped; a late rejection of it is handled (dropped).
 *
 * @typeParam T The promise's value.
 * @param promise The operation to wait for.
 * @param signal Aborting it rejects the result.
 * @returns A promise that settles like `promise` unless aborted first.
 * @throws {TypeError} `signal` is not an AbortSignal, or `promise` neither a
 *   thenable nor an async iterable.
 *
 * @example
 * ```ts
 * import { abortable } from "./async.ts";
 *
 * const controller = new AbortController();
 * const never = new Promise<string>(() => {});
 * const result = abortable(never, controller.signal).catch((e) => e);
 * controller.abort("stop");
 * if (await result !== "stop") throw new Error("unexpected");
 * ```
 */
export function abortable<T>(
  promise: PromiseLike<T>,
  signal: AbortSignal,
): Promise<T>;
/**
 * Yields what `iterable` yields until the signal aborts; then the pending or
 * next `next()` rejects with `signal.reason` and the source's `return()` is
 * called. That call is not awaited: a source stuck in `next()` (often the
 * reason to abort) would not answer it until its `next()` settles.
 *
 * @typeParam T The items.
 * @param iterable The source.
 * @param signal Aborting it ends the iteration with `signal.reason`.
 * @returns An async generator over the source's items.
 * @throws {TypeError} `signal` is not an AbortSignal, or `iterable` neither a
 *   thenable nor an async iterable.
 *
 * @example
 * ```ts
 * import { abortable } from "./async.ts";
 *
 * async function* ticks() {
 *   for (let i = 0;; i++) yield i;
 * }
 * const controller = new AbortController();
 * const seen: number[] = [];
 * try {
 *   for await (const i of abortable(ticks(), controller.signal)) {
 *     seen.push(i);
 *     if (i === 2) controller.abort(new Error("enough"));
 *   }
 * } catch (e) {
 *   if ((e as Error).message !== "enough") throw e;
 * }
 * if (seen.join() !== "0,1,2") throw new Error(seen.join());
 * ```
 */
export function abortable<T>(
  iterable: AsyncIterable<T>,
  signal: AbortSignal,
): AsyncGenerator<T>;
export function abortable<T>(
  source: PromiseLike<T> | AsyncIterable<T>,
  signal: AbortSignal,
): Promise<T> | AsyncGenerator<T> {
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot make abortable: signal must be an AbortSignal, got ${
        typeOf(signal)
      }`,
    );
  }
  if (isThenable(source)) return abortablePromise(source, signal);
  if (isAsyncIterable(source)) return abortableIterable(source, signal);
  throw new TypeError(
    `Cannot make abortable: expected a thenable or an async iterable, got ${
      typeOf(source)
    }`,
  );
}

function abortablePromise<T>(
  promise: PromiseLike<T>,
  signal: AbortSignal,
): Promise<T> {
  const input = Promise.resolve(promise);
  if (signal.aborted) {
    input.then(undefined, noop);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    input.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    }, (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
  });
}

async function* abortableIterable<T>(
  iterable: AsyncIterable<T>,
  signal: AbortSignal,
): AsyncGenerator<T> {
  signal.throwIfAborted();
  // Not Promise.withResolvers: Node 20 lacks it.
  let reject: (reason: unknown) => void = noop;
  const aborted = new Promise<never>((_, r) => (reject = r));
  aborted.catch(noop);
  const onAbort = () => reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  const it = iterable[Symbol.asyncIterator]();
  let finished = false; // the source ended or threw: no return() owed
  try {
    for (;;) {
      signal.throwIfAborted(); // aborted while suspended at the yield
      const step = (async () => {
        try {
          const r = await it.next();
          if (r.done) finished = true;
          return r;
        } catch (error) {
          finished = true;
          throw error;
        }
      })();
      const r = await Promise.race([step, aborted]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (!finished) closeQuietly(it);
  }
}

/**
 * Maps `iterable` through `fn` with at most `limit` calls in flight, yielding
 * results in input order. Each `fn` call starts in a task of `loop`; the pool
 * keeps `run()` alive until it is done (see the module docs).
 *
 * Like `@std/async`, the pool does not wait for its consumer: it works
 * through the whole input while the loop runs, holding results that finish
 * early (or unread) until they are taken. Call `return()` (`break` out of
 * `for await`) to stop it; `return()` resolves once the calls in flight have
 * settled, and their results are dropped.
 *
 * Errors: the first failure in input order (a rejected or throwing `fn`
 * call, or the source throwing) stops new calls; results before it are still
 * yielded, then `next()` rejects with that error once every call in flight
 * has settled, and the iteration ends. Failures of later inputs are dropped,
 * as a sequential loop would never have reached them.
 *
 * @typeParam T The input items.
 * @typeParam R The results.
 * @param loop The loop that runs the pool; needs the async drive (`run`).
 * @param limit Most `fn` calls in flight, an integer >= 1.
 * @param iterable The input, sync or async; read only as calls can start.
 * @param fn Maps one item; may return a value or a promise.
 * @returns An async iterator over the results, in input order.
 * @throws {TypeError} `loop` is not a Loop, `limit` not an integer,
 *   `iterable` not iterable or `fn` not a function.
 * @throws {RangeError} `limit` is below 1.
 *
 * @example
 * ```ts
 * import { delay, pooledMap } from "./async.ts";
 * import { VirtualClock } from "./clock.ts";
 * import { Loop } from "./loop.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const results = Array.fromAsync(
 *   pooledMap(loop, 2, [30, 10, 20], async (ms) => {
 *     await delay(loop, ms);
 *     return ms * 2;
 *   }),
 * );
 * await loop.run();
 * if ((await results).join() !== "60,20,40") throw new Error("unexpected");
 * ```
 */
export function pooledMap<T, R>(
  loop: Loop,
  limit: number,
  iterable: Iterable<T> | AsyncIterable<T>,
  fn: (item: T) => R | PromiseLike<R>,
): AsyncIterableIterator<R> {
  const action = "start pooled map";
  checkLoop(action, loop);
  if (typeof limit !== "number" || !Number.isInteger(limit)) {
    throw new TypeError(
      `Cannot ${action}: limit must be an integer, got ${String(limit)}`,
    );
  }
  if (limit < 1) {
    throw new RangeError(`Cannot ${action}: limit must be >= 1, got ${limit}`);
  }
  const isAsync = isAsyncIterable(iterable);
  if (
    !isAsync &&
    typeof (iterable as Iterable<T> | null)?.[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `Cannot ${action}: iterable must be iterable, got ${typeOf(iterable)}`,
    );
  }
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot ${action}: fn must be a function, got ${typeOf(fn)}`,
    );
  }
  return new Pool(loop, limit, iterable, isAsync, fn);
}

type Outcome<V> = { ok: true; value: V } | { ok: false; error: unknown };

interface Taker<R> {
  resolve(r: IteratorResult<R>): void;
  reject(e: unknown): void;
}

/**
 * The state behind {@linkcode pooledMap}. Everything that starts work
 * (`#fill`) runs in a loop task; consumers only take what is ready.
 */
class Pool<T, R> implements AsyncIterableIterator<R> {
  readonly #loop: Loop;
  readonly #limit: number;
  readonly #fn: (item: T) => R | PromiseLike<R>;
  readonly #isAsync: boolean;
  #source: Iterable<T> | AsyncIterable<T> | undefined;
  #it: Iterator<T> | AsyncIterator<T> | undefined;
  /** Items taken from the source; the next item's index. */
  #started = 0;
  /** `fn` calls not yet settled. */
  #inFlight = 0;
  /** An async source's `next()` is pending. */
  #pulling = false;
  /** The source ended, threw, or was closed. */
  #sourceDone = false;
  /** Index of the first failure in input order, or Infinity. */
  #failAt = Infinity;
  #error: unknown;
  /** The consumer called `return()`. */
  #closed = false;
  /** Nothing more will be yielded. */
  #ended = false;
  /** Index of the result the consumer takes next. */
  #out = 0;
  readonly #ready = new Map<number, R>();
  readonly #takers: Taker<R>[] = [];
  readonly #closers: (() => void)[] = [];

  constructor(
    loop: Loop,
    limit: number,
    source: Iterable<T> | AsyncIterable<T>,
    isAsync: boolean,
    fn: (item: T) => R | PromiseLike<R>,
  ) {
    this.#loop = loop;
    this.#limit = limit;
    this.#source = source;
    this.#isAsync = isAsync;
    this.#fn = fn;
    this.#track(undefined, () => this.#fill()); // first step as a loop task
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<R>> {
    return new Promise((resolve, reject) => {
      this.#takers.push({ resolve, reject });
      this.#deliver();
    });
  }

  return(): Promise<IteratorResult<R>> {
    if (!this.#ended) {
      this.#closed = true;
      this.#end();
      this.#closeSource();
      this.#deliver();
    }
    return new Promise((resolve) => {
      this.#closers.push(() => resolve({ done: true, value: undefined }));
      this.#deliver();
    });
  }

  /** Starts calls while allowed; runs in a loop task. */
  #fill(): void {
    while (
      !this.#closed && this.#failAt === Infinity && !this.#sourceDone &&
      !this.#pulling && this.#inFlight < this.#limit
    ) {
      let step: IteratorResult<T>;
      try {
        this.#it ??= this.#isAsync
          ? (this.#source as AsyncIterable<T>)[Symbol.asyncIterator]()
          : (this.#source as Iterable<T>)[Symbol.iterator]();
        if (this.#isAsync) {
          this.#pull(this.#it as AsyncIterator<T>);
          break;
        }
        step = (this.#it as Iterator<T>).next();
      } catch (error) {
        this.#sourceDone = true;
        this.#fail(this.#started, error);
        break;
      }
      if (step.done) this.#sourceDone = true;
      else this.#start(step.value);
    }
    if (this.#failAt !== Infinity) this.#closeSource();
    this.#deliver();
  }

  #pull(it: AsyncIterator<T>): void {
    this.#pulling = true;
    this.#track(it.next(), (o) => {
      this.#pulling = false;
      if (!o.ok) {
        this.#sourceDone = true;
        this.#fail(this.#started, o.error);
      } else if (o.value.done) {
        this.#sourceDone = true;
      } else if (this.#closed || this.#failAt !== Infinity) {
        this.#closeSource(); // pulled after the pool stopped: drop it
      } else {
        this.#start(o.value.value);
      }
      this.#fill();
    });
  }

  #start(item: T): void {
    const i = this.#started++;
    this.#inFlight++;
    let result: R | PromiseLike<R>;
    try {
      result = this.#fn(item);
    } catch (error) {
      result = Promise.reject(error);
    }
    this.#track(result, (o) => {
      this.#inFlight--;
      if (!o.ok) this.#fail(i, o.error);
      else if (i < this.#failAt && !this.#closed) this.#ready.set(i, o.value);
      this.#fill();
    });
  }

  #fail(i: number, error: unknown): void {
    if (i >= this.#failAt) return;
    this.#failAt = i;
    this.#error = error;
    for (const k of this.#ready.keys()) if (k > i) this.#ready.delete(k);
  }

  /**
   * Runs `done` as a loop task once `value` settles. The outcome object
   * keeps a rejection with `undefined` apart from a success, which
   * `Loop.track`'s `(error, value)` callback cannot.
   */
  #track<V>(value: V | PromiseLike<V>, done: (o: Outcome<V>) => void): void {
    const settled = Promise.resolve(value).then(
      (v): Outcome<V> => ({ ok: true, value: v }),
      (e): Outcome<V> => ({ ok: false, error: e }),
    );
    this.#loop.track(settled, (r) => {
      if (r.status === "fulfilled") done(r.value);
    });
  }

  /** Nothing runs and nothing more will start. */
  #idle(): boolean {
    return this.#inFlight === 0 && !this.#pulling &&
      (this.#sourceDone || this.#closed || this.#failAt !== Infinity);
  }

  /** Hands ready results, the error or the end to waiting consumers. */
  #deliver(): void {
    while (this.#takers.length > 0) {
      if (this.#ended) {
        this.#takers.shift()!.resolve({ done: true, value: undefined });
        continue;
      }
      const i = this.#out;
      if (this.#ready.has(i)) {
        const value = this.#ready.get(i)!;
        this.#ready.delete(i);
        this.#out++;
        this.#takers.shift()!.resolve({ done: false, value });
        continue;
      }
      if (!this.#idle()) break; // result i, or an earlier failure, may come
      this.#end();
      if (i === this.#failAt) this.#takers.shift()!.reject(this.#error);
    }
    if (this.#idle()) {
      for (const close of this.#closers.splice(0)) close();
    }
  }

  #end(): void {
    this.#ended = true;
    this.#ready.clear();
    this.#source = undefined;
  }

  /** Calls the source's `return()` once, unless it ended by itself. */
  #closeSource(): void {
    if (this.#sourceDone || this.#pulling) return;
    this.#sourceDone = true;
    if (this.#it !== undefined) closeQuietly(this.#it);
  }
}

/** Cancels a pending timer and wakes the loop so it recomputes its sleep. */
function stop(loop: Loop, timer: Timer): void {
  if (timer.state === TIMER_DONE) return;
  timer.cancel();
  poke(loop);
}

/**
 * Wakes the loop if its async drive is asleep, so it recomputes its sleep
 * after a timer was set or cancelled from outside a pass (a promise
 * reaction). `Loop.setTimer` and `Timer.cancel` do not wake it themselves;
 * without this a cancelled deadline keeps `run()` asleep until the old
 * deadline, and a new timer is noticed only when the current sleep ends.
 * Costs one atomic load when the loop is not asleep.
 */
function poke(loop: Loop): void {
  wake(new Int32Array(loop.buffer), false);
}

function closeQuietly(it: Iterator<unknown> | AsyncIterator<unknown>): void {
  // Cleanup of a source being abandoned: its errors have nowhere to go.
  try {
    Promise.resolve(it.return?.()).catch(noop);
  } catch {
    // A throwing return() is ignored for the same reason.
  }
}

function checkLoop(action: string, loop: unknown): void {
  if (!(loop instanceof Loop)) {
    throw new TypeError(
      `Cannot ${action}: loop must be a Loop, got ${typeOf(loop)}`,
    );
  }
}

function checkSignal(action: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new TypeError(
    `Cannot ${action}: signal must be an AbortSignal, got ${typeOf(signal)}`,
  );
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null &&
    typeof (v as { then?: unknown }).then === "function";
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return v != null &&
    typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

function typeOf(v: unknown): string {
  return v === null ? "null" : typeof v;
}

function noop(): void {}
