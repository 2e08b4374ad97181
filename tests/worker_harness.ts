/**
 * Helpers shared by the worker suites (`close_test.ts`, `fault_test.ts`):
 * a seeded PRNG, bounded waits that fail loudly, and a worker wrapper that
 * buffers its messages from the start.
 *
 * Nothing here asserts on time: the bounds only turn a hang into a failure
 * that says what it was waiting for.
 *
 * @module
 */

export { rng as prng } from "./rng.ts";

/** One host macrotask turn (timers, worker events, I/O get to run). */
export function turn(ms = 0): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `ready` once per host turn until it holds; throws after `ms`.
 *
 * @param ready The condition.
 * @param ms Bound in real milliseconds.
 * @param what Describes the wait (called only on failure).
 */
export async function until(
  ready: () => boolean,
  ms: number,
  what: () => string,
): Promise<void> {
  const end = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > end) {
      throw new Error(`Timed out after ${ms} ms waiting for ${what()}`);
    }
    await turn(1);
  }
}

/**
 * Settles like `p`, or rejects after `ms` saying what it waited for.
 *
 * @param p The promise.
 * @param ms Bound in real milliseconds.
 * @param what Describes the wait.
 * @returns What `p` resolves to.
 */
export async function within<T>(
  p: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A worker message that reports a failure inside the worker. */
export interface WorkerFailure {
  kind: "error";
  message: string;
}

/**
 * A module worker whose messages are buffered from the start; an uncaught
 * error or an `{ kind: "error" }` message fails the next `next()`.
 */
export class TestWorker<M extends { kind: string }> {
  readonly worker: Worker;
  readonly #inbox: (M | WorkerFailure)[] = [];
  #failure: Error | null = null;
  #notify: () => void = () => {};

  /**
   * Starts the worker and sends it `first`, if given.
   *
   * @param url The worker module.
   * @param first Its first message.
   */
  constructor(url: URL, first?: unknown) {
    this.worker = new Worker(url, { type: "module" });
    this.worker.onmessage = (e: MessageEvent<M | WorkerFailure>) => {
      this.#inbox.push(e.data);
      this.#notify();
    };
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#failure = new Error(`Worker failed: ${e.message}`);
      this.#notify();
    };
    if (first !== undefined) this.worker.postMessage(first);
  }

  /**
   * The next message; throws on a worker failure or after `ms`.
   *
   * @param ms Bound in real milliseconds.
   * @param what Describes the message, for the failure.
   * @returns The message.
   */
  async next(ms: number, what: string): Promise<M> {
    const end = performance.now() + ms;
    for (;;) {
      if (this.#failure !== null) throw this.#failure;
      const m = this.#inbox.shift();
      if (m !== undefined) {
        if (m.kind === "error") {
          throw new Error(`Worker: ${(m as WorkerFailure).message}`);
        }
        return m as M;
      }
      const left = end - performance.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#notify = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Terminates the worker (idempotent). */
  terminate(): void {
    this.worker.terminate();
  }
}

/**
 * Describes an error for a worker report.
 *
 * @param e Anything thrown.
 * @returns Its stack or message.
 */
export function describe(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
