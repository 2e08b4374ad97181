/**
 * Host I/O on a loop: files and TCP through an {@linkcode IoHost}, every
 * completion delivered as a task in the loop's FIFO order, together with
 * timers, queued tasks and worker messages.
 *
 * ## Delivery
 *
 * Each operation takes a callback that runs as a loop task with an
 * `IoResult`: `{ ok: true, value }` or `{ ok: false, error }` where `error`
 * is an `IoError` with a code (`ECONNREFUSED`, `ECONNRESET`, `EACCES`,
 * `EBADF`, `ECANCELED`, ...). End of stream is a read of `null`, not an
 * error. Errors never throw out of the operation after it was started and
 * host rejections never become unhandled; the call itself throws only for
 * wrong arguments (`TypeError`, `RangeError`) or a closed loop
 * (`LoopClosedError`). A callback that throws goes to the loop's `onError`,
 * like any task.
 *
 * The completion is queued when the host settles the operation (through
 * `Loop.track`), so it runs after everything queued before that moment and
 * before everything queued after it.
 *
 * ## Driving the loop
 *
 * Every operation in flight keeps the loop alive, and the host can only
 * complete it while the thread is free: drive the loop with the async
 * `run()`, which sleeps without blocking while operations are in flight.
 * A pending accept or read waits as long as the peer does; cancel it with
 * an `AbortSignal` or close its handle to let `run()` return.
 *
 * @example
 * ```ts
 * import { Loop } from "../loop.ts";
 * import { LoopIo } from "./loop_io.ts";
 * import { denoIo } from "../host/deno_io.ts";
 *
 * const loop = new Loop();
 * const io = new LoopIo(loop, denoIo);
 * const got: string[] = [];
 * io.listen({ hostname: "127.0.0.1", port: 0 }, (l) => {
 *   if (!l.ok) throw l.error;
 *   const listener = l.value;
 *   listener.accept((a) => {
 *     if (!a.ok) throw a.error;
 *     const buf = new Uint8Array(16);
 *     a.value.read(buf, (r) => {
 *       if (r.ok && r.value !== null) {
 *         got.push(new TextDecoder().decode(buf.subarray(0, r.value)));
 *       }
 *       a.value.close();
 *       listener.close();
 *     });
 *   });
 *   io.connect({ port: listener.address.port }, (c) => {
 *     if (!c.ok) throw c.error;
 *     c.value.write(new TextEncoder().encode("hi"), () => c.value.close());
 *   });
 * });
 * await loop.run();
 * if (got.join() !== "hi") throw new Error(got.join());
 * ```
 *
 * @module
 */

import { Loop } from "../loop.ts";
import type { FileInfo, IoHost, NetAddress, OpenOptions } from "./host.ts";
import type { IoCallback } from "./io_error.ts";
import {
  checkAddress,
  checkCallback,
  checkSignal,
  type OpOptions,
  submit,
} from "./io_ops.ts";
import { FileHandle } from "./file.ts";
import { TcpConn, TcpListener } from "./tcp.ts";

/** Where to listen or connect; `hostname` defaults to `127.0.0.1`. */
export interface TcpAddress {
  /** Host name or IP literal (default `127.0.0.1`). */
  hostname?: string;
  /** Port; 0 to listen on any free port. */
  port: number;
}

/** File and TCP operations on one loop through one host. */
export class LoopIo {
  readonly #loop: Loop;
  readonly #host: IoHost;

  /**
   * Binds the operations to a loop and a host.
   *
   * @param loop The loop completions run on.
   * @param host The host implementation, e.g. `denoIo`.
   * @throws {TypeError} `loop` is not a Loop or `host` not an IoHost.
   */
  constructor(loop: Loop, host: IoHost) {
    if (!(loop instanceof Loop)) {
      throw new TypeError("Cannot create I/O: expected a Loop");
    }
    if (
      host === null || typeof host !== "object" ||
      typeof host.open !== "function" || typeof host.connect !== "function"
    ) {
      throw new TypeError("Cannot create I/O: expected an IoHost");
    }
    this.#loop = loop;
    this.#host = host;
  }

  /** The loop completions run on. */
  get loop(): Loop {
    return this.#loop;
  }

  /**
   * Opens a file. A file opened after the operation was cancelled is closed.
   *
   * @param path File path.
   * @param options Open flags (default: read only).
   * @param callback Runs as a loop task with the handle.
   * @param opOptions `signal` to cancel.
   * @throws {TypeError} A wrong argument type.
   * @throws {LoopClosedError} The loop is closed.
   */
  open(
    path: string,
    options: OpenOptions,
    callback: IoCallback<FileHandle>,
    opOptions?: OpOptions,
  ): void {
    const action = "open file";
    if (typeof path !== "string") {
      throw new TypeError(`Cannot ${action}: path must be a string`);
    }
    if (options === null || typeof options !== "object") {
      throw new TypeError(`Cannot ${action}: options must be an object`);
    }
    checkCallback(action, callback);
    const signal = checkSignal(action, opOptions);
    const flags: OpenOptions = {
      ...options,
      read: options.read ?? !(options.write || options.append),
    };
    const loop = this.#loop;
    submit<FileHandle>(
      loop,
      action,
      signal,
      async () =>
        new FileHandle(loop, await this.#host.open(path, flags), "file"),
      callback,
      { late: (f) => f?.close() },
    );
  }

  /**
   * Reports a file's size, type and modification time.
   *
   * @param path File path.
   * @param callback Runs as a loop task with the info.
   * @param opOptions `signal` to cancel.
   * @throws {TypeError} A wrong argument type.
   * @throws {LoopClosedError} The loop is closed.
   */
  stat(
    path: string,
    callback: IoCallback<FileInfo>,
    opOptions?: OpOptions,
  ): void {
    const action = "stat file";
    if (typeof path !== "string") {
      throw new TypeError(`Cannot ${action}: path must be a string`);
    }
    checkCallback(action, callback);
    const signal = checkSignal(action, opOptions);
    submit(this.#loop, action, signal, () => this.#host.stat(path), callback);
  }

  /**
   * Listens for TCP connections.
   *
   * @param address Where to listen; port 0 picks a free one (read it from
   *   `listener.address.port`).
   * @param callback Runs as a loop task with the listener (`EADDRINUSE`,
   *   `EACCES`, ... on failure).
   * @throws {TypeError} A wrong argument type.
   * @throws {RangeError} Port out of range.
   * @throws {LoopClosedError} The loop is closed.
   */
  listen(address: TcpAddress, callback: IoCallback<TcpListener>): void {
    const action = "listen";
    const a: NetAddress = checkAddress(action, address);
    checkCallback(action, callback);
    const loop = this.#loop;
    submit<TcpListener>(
      loop,
      action,
      undefined,
      async () => new TcpListener(loop, await this.#host.listen(a)),
      callback,
      { late: (l) => l?.close() },
    );
  }

  /**
   * Opens a TCP connection. A connection made after the operation was
   * cancelled is closed.
   *
   * @param address Where to connect.
   * @param callback Runs as a loop task with the connection
   *   (`ECONNREFUSED`, `EACCES`, ... on failure).
   * @param options `signal` to cancel (also passed to the host).
   * @throws {TypeError} A wrong argument type.
   * @throws {RangeError} Port out of range.
   * @throws {LoopClosedError} The loop is closed.
   */
  connect(
    address: TcpAddress,
    callback: IoCallback<TcpConn>,
    options?: OpOptions,
  ): void {
    const action = "connect";
    const a: NetAddress = checkAddress(action, address);
    checkCallback(action, callback);
    const signal = checkSignal(action, options);
    const loop = this.#loop;
    submit<TcpConn>(
      loop,
      action,
      signal,
      async () => new TcpConn(loop, await this.#host.connect(a, signal)),
      callback,
      { late: (c) => c?.close() },
    );
  }
}
