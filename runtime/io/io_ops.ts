/**
 * How one host operation becomes one loop task: {@linkcode submit} starts
 * it, races it against its `AbortSignal`, and hands the outcome to
 * `Loop.track`, so the callback runs as a task in FIFO order with timers,
 * other completions and worker messages. Nothing here throws after the
 * call returns and no host rejection goes unhandled.
 *
 * ## Cancellation
 *
 * 1. Signal already aborted: the host operation never starts; the callback
 *    gets `ECANCELED` (cause: `signal.reason`).
 * 2. Aborted while pending: the callback gets `ECANCELED` at once, queued
 *    when the signal fires. Hosts cannot withdraw most operations, so the
 *    host operation runs on; its late outcome goes to the operation's
 *    `late` hook, which keeps it (bytes, a connection) for the next
 *    operation of the same kind or undoes it (closes what was opened).
 * 3. Aborted after the outcome was settled: no effect; the outcome stands.
 *
 * The check in step 2 and the `done` hook run in one synchronous step, so
 * an outcome is either delivered (and `done` applied) or late, never both.
 *
 * @module
 */

import type { Loop } from "../loop.ts";
import { asIoError, type IoCallback, IoError } from "./io_error.ts";

/** Options every operation takes. */
export interface OpOptions {
  /** Aborting completes the operation with `ECANCELED` (see `io_ops.ts`). */
  signal?: AbortSignal;
}

/** Lets a started operation see that it was cancelled before it began. */
export interface CancelToken {
  /** Set when the signal fires before the outcome settled. */
  cancelled: boolean;
}

/** What happens to an outcome, delivered or late. */
export interface OpHooks<T> {
  /** Runs on the delivered value, right before it is queued. */
  done?: (value: T) => void;
  /**
   * Receives a value that settled after the operation was cancelled or
   * the loop closed; `undefined` when the operation never started.
   */
  late?: (value: T | undefined) => void;
  /** Receives an error that settled after cancellation. */
  lateError?: (error: IoError) => void;
}

/**
 * Runs `start` and delivers its outcome to `callback` as a loop task.
 *
 * @param loop The loop the task runs on.
 * @param action What is attempted, for error messages.
 * @param signal Aborts the operation.
 * @param start Starts the host operation; resolves `undefined` only when it
 *   saw the token cancelled and did not start.
 * @param callback Receives the result.
 * @param hooks What to do with delivered and late outcomes.
 * @throws {LoopClosedError} The loop is closed.
 */
export function submit<T>(
  loop: Loop,
  action: string,
  signal: AbortSignal | undefined,
  start: (token: CancelToken) => Promise<T | undefined>,
  callback: IoCallback<T>,
  hooks: OpHooks<T> = {},
): void {
  let outcome: Promise<T>;
  if (signal?.aborted) {
    outcome = Promise.reject(cancelled(action, signal));
  } else {
    const token: CancelToken = { cancelled: false };
    outcome = new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        token.cancelled = true;
        reject(cancelled(action, signal!));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      start(token).then(
        (value) => {
          signal?.removeEventListener("abort", onAbort);
          if (token.cancelled || loop.closed) {
            hooks.late?.(value);
          } else {
            hooks.done?.(value as T);
            resolve(value as T);
          }
        },
        (reason) => {
          signal?.removeEventListener("abort", onAbort);
          const error = asIoError(reason, action);
          if (token.cancelled) hooks.lateError?.(error);
          else reject(error);
        },
      );
    });
  }
  loop.track(outcome, (r) =>
    callback(
      r.status === "fulfilled"
        ? { ok: true, value: r.value }
        : { ok: false, error: asIoError(r.reason, action) },
    ));
}

/**
 * Delivers an error as the operation's outcome, as a loop task.
 *
 * @param loop The loop.
 * @param action What was attempted.
 * @param error The error.
 * @param callback Receives it.
 * @throws {LoopClosedError} The loop is closed.
 */
export function fail<T>(
  loop: Loop,
  action: string,
  error: IoError,
  callback: IoCallback<T>,
): void {
  submit<T>(loop, action, undefined, () => Promise.reject(error), callback);
}

function cancelled(action: string, signal: AbortSignal): IoError {
  return new IoError("ECANCELED", action, "the operation was aborted", {
    cause: signal.reason,
  });
}

/**
 * The error for an operation on a closed handle.
 *
 * @param action What was attempted.
 * @param cause The host's error, if the close interrupted it.
 * @returns An `EBADF` error.
 */
export function closedError(action: string, cause?: unknown): IoError {
  return new IoError("EBADF", action, "the handle is closed", { cause });
}

/**
 * @param action For the message.
 * @param fn Must be a function.
 * @throws {TypeError} It is not.
 */
export function checkCallback(action: string, fn: unknown): void {
  if (typeof fn !== "function") {
    throw new TypeError(`Cannot ${action}: callback must be a function`);
  }
}

/**
 * @param action For the message.
 * @param options Operation options.
 * @returns The signal, if any.
 * @throws {TypeError} `options` is not an object or `signal` not an
 *   AbortSignal.
 */
export function checkSignal(
  action: string,
  options: OpOptions | undefined,
): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Cannot ${action}: options must be an object`);
  }
  const s = options.signal;
  if (s !== undefined && !(s instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${action}: signal must be an AbortSignal`);
  }
  return s;
}

/**
 * @param action For the message.
 * @param bytes Must be a Uint8Array.
 * @throws {TypeError} It is not.
 */
export function checkBytes(action: string, bytes: unknown): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${action}: expected a Uint8Array`);
  }
}

/**
 * Validates a TCP address, filling in the default host `127.0.0.1`.
 *
 * @param action For the message.
 * @param address `{ hostname?, port }`.
 * @returns The address.
 * @throws {TypeError} Not an object, hostname not a string, port not an
 *   integer.
 * @throws {RangeError} Port outside 0 to 65535.
 */
export function checkAddress(
  action: string,
  address: { hostname?: string; port: number },
): { hostname: string; port: number } {
  if (address === null || typeof address !== "object") {
    throw new TypeError(`Cannot ${action}: address must be an object`);
  }
  const hostname = address.hostname ?? "127.0.0.1";
  if (typeof hostname !== "string") {
    throw new TypeError(`Cannot ${action}: hostname must be a string`);
  }
  const port = address.port;
  if (typeof port !== "number" || !Number.isInteger(port)) {
    throw new TypeError(
      `Cannot ${action}: port must be an integer, got ${String(port)}`,
    );
  }
  if (port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot ${action}: port must be from 0 to 65535, got ${port}`,
    );
  }
  return { hostname, port };
}
