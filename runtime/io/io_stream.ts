/**
 * What files and TCP connections share: reads, writes and close on a host
 * stream, each completing as a loop task (see `io_ops.ts`).
 *
 * ## Order
 *
 * Reads on one handle reach the host one at a time, in call order, and so
 * do writes: two reads never race for the same bytes, and bytes go out in
 * the order they were given. Reads and writes run independently of each
 * other. Completions are queued when the host settles them, so the
 * callbacks of one handle's reads run in call order too.
 *
 * ## Cancelled reads keep their bytes
 *
 * A read given a signal reads into a private buffer of the same size and
 * copies into the caller's buffer only when it is delivered, so an aborted
 * read never writes the caller's buffer afterwards. What such a read
 * returns late (bytes, end of stream, an error) is kept in order and handed
 * to the next reads before the host is asked again: nothing is dropped.
 *
 * ## Close
 *
 * `close()` releases the host handle at once. Operations pending on it
 * complete with `EBADF`, and so does every operation started afterwards,
 * including a second `close`.
 *
 * @module
 */

import type { Loop } from "../loop.ts";
import type { HostStream } from "./host.ts";
import type { IoCallback, IoError } from "./io_error.ts";
import {
  checkBytes,
  checkCallback,
  checkSignal,
  closedError,
  fail,
  type OpOptions,
  submit,
} from "./io_ops.ts";

const noop = () => {};

/** A chunk kept from a cancelled read: bytes, end of stream, or an error. */
type Kept = Uint8Array | null | IoError;

/** Reads, writes and close over one host stream. */
export class IoStream<H extends HostStream> {
  /** The loop completions run on. */
  protected readonly loop: Loop;
  /** The host handle. */
  protected readonly host: H;
  /** "file" or "connection", for messages. */
  protected readonly kind: string;
  #closed = false;
  #reads: Promise<unknown> = Promise.resolve();
  #writes: Promise<unknown> = Promise.resolve();
  readonly #kept: Kept[] = [];

  /**
   * Wraps a host stream; made by `LoopIo` and friends, not by callers.
   *
   * @param loop The loop.
   * @param host The host handle.
   * @param kind "file" or "connection".
   */
  constructor(loop: Loop, host: H, kind: string) {
    this.loop = loop;
    this.host = host;
    this.kind = kind;
  }

  /** Whether `close()` was called (a snapshot). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Reads into `buffer`; the callback gets the byte count, or `null` at end
   * of stream.
   *
   * @param buffer Where the bytes go; do not touch it until the callback.
   * @param callback Runs as a loop task with the result.
   * @param options `signal` to cancel.
   * @throws {TypeError} A wrong argument type.
   * @throws {LoopClosedError} The loop is closed.
   */
  read(
    buffer: Uint8Array,
    callback: IoCallback<number | null>,
    options?: OpOptions,
  ): void {
    const action = `read ${this.kind}`;
    checkBytes(action, buffer);
    checkCallback(action, callback);
    const signal = checkSignal(action, options);
    if (this.#closed) {
      return fail(this.loop, action, closedError(action), callback);
    }
    const target = signal === undefined
      ? buffer
      : new Uint8Array(buffer.length);
    submit<number | null>(
      this.loop,
      action,
      signal,
      (token) => {
        const p = this.#reads.then(() => {
          if (token.cancelled) return undefined;
          if (this.#kept.length > 0) return this.#takeKept(target);
          return this.#host(action, () => this.host.read(target));
        });
        this.#reads = p.then(noop, noop);
        return p;
      },
      callback,
      {
        done: (n) => {
          if (target !== buffer && n !== null) {
            buffer.set(target.subarray(0, n));
          }
        },
        late: (n) => {
          if (n !== undefined && !this.#closed) {
            this.#kept.push(n === null ? null : target.slice(0, n));
          }
        },
        lateError: (e) => {
          if (!this.#closed) this.#kept.push(e);
        },
      },
    );
  }

  #takeKept(target: Uint8Array): number | null {
    const k = this.#kept[0];
    if (k === null || !(k instanceof Uint8Array)) {
      this.#kept.shift();
      if (k === null) return null;
      throw k;
    }
    const n = Math.min(k.length, target.length);
    target.set(k.subarray(0, n));
    if (n === k.length) this.#kept.shift();
    else this.#kept[0] = k.subarray(n);
    return n;
  }

  /** Runs a host call, turning a failure after close into `EBADF`. */
  async #host<T>(action: string, call: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError(action);
    try {
      return await call();
    } catch (e) {
      throw this.#closed ? closedError(action, e) : e;
    }
  }

  /**
   * Writes all of `bytes` (in as many host writes as it takes); the
   * callback gets the byte count. With a signal the bytes are copied first,
   * so the buffer is free again at once; an abort stops further host writes
   * but cannot recall what was written.
   *
   * @param bytes What to write; without a signal, do not change it until
   *   the callback.
   * @param callback Runs as a loop task with the result.
   * @param options `signal` to cancel.
   * @throws {TypeError} A wrong argument type.
   * @throws {LoopClosedError} The loop is closed.
   */
  write(
    bytes: Uint8Array,
    callback: IoCallback<number>,
    options?: OpOptions,
  ): void {
    const action = `write ${this.kind}`;
    checkBytes(action, bytes);
    checkCallback(action, callback);
    const signal = checkSignal(action, options);
    if (this.#closed) {
      return fail(this.loop, action, closedError(action), callback);
    }
    const data = signal === undefined ? bytes : bytes.slice();
    submit<number>(this.loop, action, signal, (token) => {
      const p = this.#writes.then(async () => {
        let off = 0;
        while (off < data.length) {
          if (token.cancelled) return undefined;
          off += await this.#host(
            action,
            () => this.host.write(data.subarray(off)),
          );
        }
        return off;
      });
      this.#writes = p.then(noop, noop);
      return p;
    }, callback);
  }

  /**
   * Closes the handle: pending and later operations complete with `EBADF`.
   *
   * @param callback Runs as a loop task once closed (`EBADF` if it already
   *   was).
   * @throws {TypeError} `callback` is given and not a function.
   * @throws {LoopClosedError} The loop is closed and a callback is given.
   */
  close(callback?: IoCallback<void>): void {
    const action = `close ${this.kind}`;
    if (callback !== undefined) checkCallback(action, callback);
    if (this.#closed) {
      if (callback) fail(this.loop, action, closedError(action), callback);
      return;
    }
    this.#closed = true;
    this.#kept.length = 0;
    this.host.close();
    if (callback) {
      submit<void>(
        this.loop,
        action,
        undefined,
        () => Promise.resolve(),
        callback,
      );
    }
  }
}
