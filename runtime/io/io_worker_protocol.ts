/**
 * What an I/O worker and its loop say to each other.
 *
 * Commands go loop → worker by `postMessage` (the control path: a few per
 * connection). Completions go worker → loop as raw queue items on the
 * worker's port slot (the data path): two int32 words each, no payload.
 *
 * | tag            | `a`            | `b`                                     |
 * | -------------- | -------------- | --------------------------------------- |
 * | `IO_RECV`      | connection id  | buffer id (its length is in the ring)   |
 * | `IO_END`       | connection id  | 0 at end of stream, else a failure      |
 * | `IO_ACCEPT`    | connection id  | listener id                             |
 * | `IO_LISTEN`    | listener id    | port, or a failure                      |
 * | `IO_UNLISTEN`  | listener id    | 0, or the failure that stopped it       |
 * | `IO_CONNECT`   | request id     | connection id, or a failure             |
 * | `IO_SENT`      | connection id  | bytes sent, or a failure                |
 * | `IO_CLOSED`    | connection id  | 0                                       |
 * | `IO_STOPPED`   | 0              | 0                                       |
 *
 * A failure is `-(n + 1)` for the error code's wire number `n` (see
 * `io_error.ts`), so a value `>= 0` is always a success.
 *
 * A multishot receive (`arm`) yields `IO_RECV` items until one `IO_END`:
 * end of stream (0), `ECANCELED` (`cancel`), `EBADF` (`close`) or the
 * receive's error. All items of one connection arrive in the order the
 * worker produced them.
 *
 * @module
 */

import { FIRST_USER_TAG } from "../loop.ts";
import { codeNumber, codeOf, type IoErrorCode } from "./io_error.ts";

/** Completion: bytes received into a ring buffer. */
export const IO_RECV = FIRST_USER_TAG;
/** Completion: a multishot receive ended. */
export const IO_END = FIRST_USER_TAG + 1;
/** Completion: a listener accepted a connection. */
export const IO_ACCEPT = FIRST_USER_TAG + 2;
/** Completion: a listen request finished. */
export const IO_LISTEN = FIRST_USER_TAG + 3;
/** Completion: a listener stopped. */
export const IO_UNLISTEN = FIRST_USER_TAG + 4;
/** Completion: a connect request finished. */
export const IO_CONNECT = FIRST_USER_TAG + 5;
/** Completion: a send finished. */
export const IO_SENT = FIRST_USER_TAG + 6;
/** Completion: a connection is closed and forgotten by the worker. */
export const IO_CLOSED = FIRST_USER_TAG + 7;
/** Completion: the worker closed everything; its port closes next. */
export const IO_STOPPED = FIRST_USER_TAG + 8;

/**
 * The word for a failure.
 *
 * @param code The error code.
 * @returns A negative word.
 */
export function failure(code: IoErrorCode): number {
  return -(codeNumber(code) + 1);
}

/**
 * The error code of a failure word.
 *
 * @param word A negative word from {@linkcode failure}.
 * @returns The code.
 */
export function failureCode(word: number): IoErrorCode {
  return codeOf(-word - 1);
}

/** What the worker is told when it starts (the spawn data). */
export interface IoWorkerSetup {
  /** The ring's buffer. */
  ring: SharedArrayBuffer;
  /** Buffers one connection may have with the loop at once. */
  perConnection: number;
  /** For a custom completion sink (`IoWorkerOptions.sinkData`). */
  sinkData?: unknown;
}

/** A command from the loop. */
export type IoCommand =
  | {
    op: "listen";
    id: number;
    hostname: string;
    port: number;
    arm: boolean;
  }
  | { op: "unlisten"; id: number }
  | {
    op: "connect";
    req: number;
    hostname: string;
    port: number;
    arm: boolean;
  }
  | { op: "arm"; conn: number }
  | { op: "cancel"; conn: number }
  | { op: "send"; conn: number; bytes: Uint8Array }
  | { op: "close"; conn: number }
  | { op: "stop" };
