/**
 * TCP on the loop: a listener that accepts connections and the connections
 * themselves, each operation completing as a loop task. Make them with
 * `LoopIo.listen` and `LoopIo.connect`.
 *
 * @module
 */

import type { Loop } from "../loop.ts";
import type { HostConn, HostListener, NetAddress } from "./host.ts";
import type { IoCallback } from "./io_error.ts";
import {
  checkCallback,
  checkSignal,
  closedError,
  fail,
  type OpOptions,
  submit,
} from "./io_ops.ts";
import { IoStream } from "./io_stream.ts";

const noop = () => {};

/**
 * A TCP connection. Reading `null` means the peer shut its writes down; see
 * `io_stream.ts` for order, cancellation and close.
 */
export class TcpConn extends IoStream<HostConn> {
  /**
   * Wraps a host connection; made by `LoopIo.connect` and
   * `TcpListener.accept`.
   *
   * @param loop The loop.
   * @param host The host connection.
   */
  constructor(loop: Loop, host: HostConn) {
    super(loop, host, "connection");
  }

  /** This end's address. */
  get local(): NetAddress {
    return this.host.local;
  }

  /** The peer's address. */
  get remote(): NetAddress {
    return this.host.remote;
  }

  /**
   * Shuts the write side down after the writes already given: the peer
   * then reads end of stream; this side can still read.
   *
   * @param callback Runs as a loop task once done.
   * @throws {TypeError} `callback` is not a function.
   * @throws {LoopClosedError} The loop is closed.
   */
  closeWrite(callback: IoCallback<void>): void {
    const action = "shut down writes";
    checkCallback(action, callback);
    if (this.closed) {
      return fail(this.loop, action, closedError(action), callback);
    }
    // A zero-length write queues behind the writes already given.
    this.write(new Uint8Array(0), (r) => {
      if (!r.ok) return callback(r);
      if (this.closed) {
        return fail(this.loop, action, closedError(action), callback);
      }
      submit(
        this.loop,
        action,
        undefined,
        () => this.host.closeWrite(),
        callback,
      );
    });
  }
}

/**
 * A TCP listener. Accepts reach the host one at a time in call order; a
 * connection accepted after its accept was cancelled is kept for the next
 * accept. Pending connections still keep the loop alive, as the accepts
 * waiting for them do.
 */
export class TcpListener {
  readonly #loop: Loop;
  readonly #host: HostListener;
  #closed = false;
  #accepts: Promise<unknown> = Promise.resolve();
  readonly #kept: TcpConn[] = [];

  /**
   * Wraps a host listener; made by `LoopIo.listen`.
   *
   * @param loop The loop.
   * @param host The host listener.
   */
  constructor(loop: Loop, host: HostListener) {
    this.#loop = loop;
    this.#host = host;
  }

  /** The address it listens on, with the port the host picked for 0. */
  get address(): NetAddress {
    return this.#host.address;
  }

  /** Whether `close()` was called (a snapshot). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Accepts the next incoming connection.
   *
   * @param callback Runs as a loop task with the connection.
   * @param options `signal` to cancel.
   * @throws {TypeError} A wrong argument type.
   * @throws {LoopClosedError} The loop is closed.
   */
  accept(callback: IoCallback<TcpConn>, options?: OpOptions): void {
    const action = "accept";
    checkCallback(action, callback);
    const signal = checkSignal(action, options);
    if (this.#closed) {
      return fail(this.#loop, action, closedError(action), callback);
    }
    submit<TcpConn>(
      this.#loop,
      action,
      signal,
      (token) => {
        const p = this.#accepts.then(async () => {
          if (token.cancelled) return undefined;
          const kept = this.#kept.shift();
          if (kept !== undefined) return kept;
          if (this.#closed) throw closedError(action);
          try {
            return new TcpConn(this.#loop, await this.#host.accept());
          } catch (e) {
            throw this.#closed ? closedError(action, e) : e;
          }
        });
        this.#accepts = p.then(noop, noop);
        return p;
      },
      callback,
      {
        late: (conn) => {
          if (conn === undefined) return;
          if (this.#closed || this.#loop.closed) conn.close();
          else this.#kept.push(conn);
        },
      },
    );
  }

  /**
   * Stops listening: pending and later accepts complete with `EBADF`;
   * connections kept from cancelled accepts are closed.
   *
   * @param callback Runs as a loop task once closed (`EBADF` if it already
   *   was).
   * @throws {TypeError} `callback` is given and not a function.
   * @throws {LoopClosedError} The loop is closed and a callback is given.
   */
  close(callback?: IoCallback<void>): void {
    const action = "close listener";
    if (callback !== undefined) checkCallback(action, callback);
    if (this.#closed) {
      if (callback) fail(this.#loop, action, closedError(action), callback);
      return;
    }
    this.#closed = true;
    this.#host.close();
    for (const c of this.#kept.splice(0)) c.close();
    if (callback) {
      submit<void>(
        this.#loop,
        action,
        undefined,
        () => Promise.resolve(),
        callback,
      );
    }
  }
}
