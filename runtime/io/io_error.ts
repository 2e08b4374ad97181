/**
 * How an I/O operation reports its outcome: an {@linkcode IoResult} that is
 * either a value or an {@linkcode IoError}, never a thrown error or a
 * rejected promise. Errors carry a POSIX-style code so callers can tell the
 * conditions apart without knowing which host produced them.
 *
 * | code           | condition                                            |
 * | -------------- | ---------------------------------------------------- |
 * | `EIO`          | anything the host reported that has no code below    |
 * | `ENOENT`       | no such file or directory                            |
 * | `EEXIST`       | the file exists (`createNew`)                        |
 * | `EACCES`       | permission denied, by the OS or by the host sandbox  |
 * | `EISDIR`       | a directory where a file was expected                |
 * | `ENOTDIR`      | a path component is not a directory                  |
 * | `ECONNREFUSED` | nothing listens at the address                       |
 * | `ECONNRESET`   | the peer reset the connection                        |
 * | `ECONNABORTED` | the connection was aborted locally                   |
 * | `EPIPE`        | writing to a connection the peer has closed          |
 * | `EADDRINUSE`   | the address is taken                                 |
 * | `EADDRNOTAVAIL`| the address is not local                             |
 * | `ETIMEDOUT`    | the host gave up waiting                             |
 * | `EINVAL`       | the host rejected an argument                        |
 * | `EBADF`        | the handle is closed (before or during the operation)|
 * | `ECANCELED`    | the operation's `AbortSignal` fired first            |
 * | `EMFILE`       | the process is out of file descriptors (`ulimit -n`) |
 *
 * The table's order is also the wire order: I/O workers send a code as its
 * index in {@linkcode IO_ERROR_CODES}; new codes go at the end.
 *
 * @module
 */

/** Every error code, in wire order (index 0 is the catch-all `EIO`). */
export const IO_ERROR_CODES = Object.freeze(
  [
    "EIO",
    "ENOENT",
    "EEXIST",
    "EACCES",
    "EISDIR",
    "ENOTDIR",
    "ECONNREFUSED",
    "ECONNRESET",
    "ECONNABORTED",
    "EPIPE",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ETIMEDOUT",
    "EINVAL",
    "EBADF",
    "ECANCELED",
    "EMFILE",
  ] as const,
);

/** One of {@linkcode IO_ERROR_CODES}. */
export type IoErrorCode = typeof IO_ERROR_CODES[number];

const CODE_INDEX: ReadonlyMap<string, number> = new Map(
  IO_ERROR_CODES.map((c, i) => [c, i]),
);

/**
 * Whether `code` is one of {@linkcode IO_ERROR_CODES}.
 *
 * @param code Any value.
 * @returns True for a known code.
 */
export function isIoErrorCode(code: unknown): code is IoErrorCode {
  return typeof code === "string" && CODE_INDEX.has(code);
}

/**
 * The wire number of a code (its index in {@linkcode IO_ERROR_CODES}).
 *
 * @param code The code.
 * @returns Its index.
 */
export function codeNumber(code: IoErrorCode): number {
  return CODE_INDEX.get(code)!;
}

/**
 * The code for a wire number; unknown numbers read as `EIO`.
 *
 * @param n A wire number.
 * @returns The code.
 */
export function codeOf(n: number): IoErrorCode {
  return IO_ERROR_CODES[n] ?? "EIO";
}

/**
 * A failed I/O operation.
 *
 * @example
 * ```ts
 * import { IoError } from "./io_error.ts";
 * const e = new IoError("ECONNREFUSED", "connect", "connection refused");
 * if (e.message !== "Cannot connect: connection refused") throw new Error();
 * ```
 */
export class IoError extends Error {
  /** What went wrong, host-independent. */
  readonly code: IoErrorCode;

  /**
   * Makes the error; the message reads `Cannot <action>: <detail>`.
   *
   * @param code The condition.
   * @param action What was attempted, e.g. "read file".
   * @param detail What happened, sentence case, no trailing period.
   * @param options `cause`: the host's own error or the abort reason.
   * @throws {TypeError} `code` is not a known code.
   */
  constructor(
    code: IoErrorCode,
    action: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    if (!isIoErrorCode(code)) {
      throw new TypeError(
        `Cannot create I/O error: unknown code ${String(code)}`,
      );
    }
    super(`Cannot ${action}: ${detail}`, options);
    this.name = "IoError";
    this.code = code;
  }
}

/** A successful outcome. */
export interface IoOk<T> {
  /** Tells the two outcomes apart. */
  readonly ok: true;
  /** The operation's value. */
  readonly value: T;
}

/** A failed outcome. */
export interface IoFailed {
  /** Tells the two outcomes apart. */
  readonly ok: false;
  /** Why it failed. */
  readonly error: IoError;
}

/** What an I/O callback receives. */
export type IoResult<T> = IoOk<T> | IoFailed;

/** Receives the outcome of one operation, as a loop task. */
export type IoCallback<T> = (result: IoResult<T>) => void;

/**
 * Wraps any rejection reason as an {@linkcode IoError}: an `IoError` passes
 * through, anything else becomes `EIO` with the reason as its cause.
 *
 * @param reason What a host promise rejected with.
 * @param action What was attempted.
 * @returns The error.
 */
export function asIoError(reason: unknown, action: string): IoError {
  if (reason instanceof IoError) return reason;
  const detail = reason instanceof Error ? reason.message : String(reason);
  return new IoError("EIO", action, detail, { cause: reason });
}
