/**
 * I/O workers, the loop's side (the io-wq idea with io_uring's provided
 * buffer rings and multishot receive): a worker thread owns sockets and
 * receives into a ring of fixed-size buffers in shared memory; each
 * receive arrives in the loop's FIFO as one completion naming the
 * connection and the buffer; the handler reads the bytes in place and the
 * buffer goes back to the ring. The worker side and its backpressure rules
 * are in `io_worker_thread.ts`, the ring in `buffer_ring.ts`.
 *
 * ## Life of a connection
 *
 * 1. `listen(address, cb, { arm })` (or `connect`): accepted connections
 *    reach `onAccept(conn, listener)`; with `arm: true` they start
 *    receiving at once, saving a round trip.
 * 2. `arm(conn)`: a multishot receive. Each receive runs
 *    `onData(conn, bytes, buffer)` as a loop task; `bytes` is a view into
 *    the ring, valid during the call. The buffer goes back when `onData`
 *    returns, unless it returns {@linkcode KEEP_BUFFER}: then it stays
 *    with the loop until `release(buffer)`.
 * 3. The receive ends with one `onEnd(conn, error)`: `undefined` at end of
 *    stream, else an `IoError` (`ECANCELED` after `cancel`, `EBADF` after
 *    `close`, `ECONNRESET`, ...). `arm` again to resume.
 * 4. `close(conn)`: the worker closes the socket and forgets it.
 *
 * Every callback runs as a loop task, in the order the worker produced the
 * completions. A running worker keeps the loop alive (its port is open);
 * `stop()` closes everything, then the worker ends and its port closes.
 *
 * @example
 * ```ts
 * import { Loop } from "../loop.ts";
 * import { IoWorker } from "./io_worker.ts";
 * import { LoopIo } from "./loop_io.ts";
 * import { denoIo } from "../host/deno_io.ts";
 *
 * const loop = new Loop();
 * const io = IoWorker.start(loop, denoIo, { buffers: 8, bufferSize: 1024 });
 * let received = "";
 * io.onData = (_conn, bytes) => {
 *   received += new TextDecoder().decode(bytes);
 * };
 * io.onEnd = (conn) => io.close(conn, () => io.stop());
 * io.listen({ port: 0 }, (r) => {
 *   if (!r.ok) throw r.error;
 *   // A client on the loop thread itself, through LoopIo.
 *   new LoopIo(loop, denoIo).connect({ port: r.value.port }, (c) => {
 *     if (!c.ok) throw c.error;
 *     c.value.write(new TextEncoder().encode("hello"), () => c.value.close());
 *   });
 * }, { arm: true });
 * await loop.run();
 * if (received !== "hello") throw new Error(received);
 * ```
 *
 * @module
 */

import type { Loop } from "../loop.ts";
import type { QueueEntry } from "../mpsc_queue.ts";
import { type SpawnedWorker, spawnWorker } from "../spawn.ts";
import { BufferRing, type RingStats } from "./buffer_ring.ts";
import type { IoHost } from "./host.ts";
import {
  type IoCallback,
  IoError,
  type IoErrorCode,
  type IoResult,
} from "./io_error.ts";
import { checkAddress, checkBytes, checkCallback } from "./io_ops.ts";
import type { TcpAddress } from "./loop_io.ts";
import {
  failureCode,
  IO_ACCEPT,
  IO_CLOSED,
  IO_CONNECT,
  IO_END,
  IO_LISTEN,
  IO_RECV,
  IO_SENT,
  IO_STOPPED,
  IO_UNLISTEN,
  type IoCommand,
  type IoWorkerSetup,
} from "./io_worker_protocol.ts";

/** Returned by `onData` to keep the buffer until `release(buffer)`. */
export const KEEP_BUFFER: unique symbol = Symbol("keep buffer");

/** Receives the bytes of one receive, in place. */
export type DataHandler = (
  conn: number,
  bytes: Uint8Array,
  buffer: number,
) => void | typeof KEEP_BUFFER;

/** Options for {@linkcode IoWorker.start}. */
export interface IoWorkerOptions {
  /** Buffers in the ring (default 256); at least one per armed socket. */
  buffers?: number;
  /** Bytes per buffer, a multiple of 16 (default 16384). */
  bufferSize?: number;
  /** Buffers one connection may have at the loop at once (default 8). */
  perConnection?: number;
  /** Worker name, for debugging. */
  name?: string;
  /**
   * The worker module (default: the host's `ioWorkerUrl`). A custom module
   * calls `serveIoWorker(host, { sink })` to route completions elsewhere;
   * the items it drains must then reach {@linkcode IoWorker.deliver}.
   */
  workerUrl?: URL;
  /** Structured-cloneable data for a custom module's sink factory. */
  sinkData?: unknown;
}

/** Options for `listen` and `connect`. */
export interface ArmOptions {
  /** Start a multishot receive on each new connection at once. */
  arm?: boolean;
}

/** A listener the worker opened. */
export interface WorkerListener {
  /** Its id, as `onAccept` reports it. */
  readonly listener: number;
  /** The port it listens on. */
  readonly port: number;
}

const DETAIL: Partial<Record<IoErrorCode, string>> = {
  ECANCELED: "the receive was cancelled",
  EBADF: "the connection is closed",
  ECONNRESET: "the peer reset the connection",
  ECONNREFUSED: "connection refused",
  EMFILE: "too many open files (raise the limit: ulimit -n, ulimit -Hn)",
};

function ioError(code: IoErrorCode, action: string): IoError {
  return new IoError(code, action, DETAIL[code] ?? `the host reported ${code}`);
}

const STOPPED_ERROR = (action: string) =>
  new IoError("EBADF", action, "the I/O worker is stopped");

/** A running I/O worker and its buffer ring. */
export class IoWorker {
  /** The ring the worker receives into. */
  readonly ring: BufferRing;
  /** Receives each accepted connection with the listener's id. */
  onAccept: ((conn: number, listener: number) => void) | undefined;
  /** Receives bytes; see {@linkcode KEEP_BUFFER}. */
  onData: DataHandler | undefined;
  /** Receives the end of a multishot receive. */
  onEnd: ((conn: number, error: IoError | undefined) => void) | undefined;
  /** Receives a listener that stopped by itself, with the reason. */
  onListenerEnd: ((listener: number, error: IoError) => void) | undefined;
  readonly #loop: Loop;
  readonly #spawned: SpawnedWorker;
  #nextId = 1;
  #stopped = false;
  readonly #conns = new Set<number>();
  readonly #armed = new Set<number>();
  readonly #listens = new Map<number, IoCallback<WorkerListener>>();
  readonly #listeners = new Set<number>();
  readonly #unlistens = new Map<number, IoCallback<void>>();
  readonly #connects = new Map<number, IoCallback<number>>();
  readonly #sends = new Map<number, IoCallback<number>[]>();
  readonly #closes = new Map<number, IoCallback<void> | undefined>();
  readonly #stops: IoCallback<void>[] = [];
  /** Listeners and connect requests whose connections start armed. */
  readonly #listenerArms = new Set<number>();
  readonly #connectArms = new Set<number>();

  private constructor(
    loop: Loop,
    ring: BufferRing,
    spawned: SpawnedWorker,
  ) {
    this.#loop = loop;
    this.ring = ring;
    this.#spawned = spawned;
    loop.routeEntries(spawned.slot, (e) => this.deliver(e));
    spawned.worker.addEventListener("error", () => {
      if (!this.#stopped && !loop.closed) {
        loop.queue(() => this.#shutDown("EIO", "run I/O worker"));
      }
    });
  }

  /**
   * Starts a worker with its own buffer ring, connected to `loop`.
   *
   * @param loop The loop that receives the completions.
   * @param host The host's I/O (its `ioWorkerUrl` is the worker module).
   * @param options Ring sizes and the per-connection quota.
   * @returns The worker.
   * @throws {TypeError} An option has the wrong type.
   * @throws {RangeError} An option is out of range, or the loop has no
   *   free producer slot.
   * @throws {LoopClosedError} The loop is closed.
   */
  static start(
    loop: Loop,
    host: IoHost,
    options: IoWorkerOptions = {},
  ): IoWorker {
    const ring = BufferRing.create({
      count: options.buffers ?? 256,
      size: options.bufferSize ?? 16384,
    });
    const perConnection = options.perConnection ?? 8;
    if (!Number.isInteger(perConnection) || perConnection < 1) {
      throw new RangeError(
        `Cannot start I/O worker: perConnection must be an integer >= 1, got ${perConnection}`,
      );
    }
    const data: IoWorkerSetup = {
      ring: ring.buffer,
      perConnection,
      sinkData: options.sinkData,
    };
    if (
      options.workerUrl !== undefined && !(options.workerUrl instanceof URL)
    ) {
      throw new TypeError("Cannot start I/O worker: workerUrl must be a URL");
    }
    const spawned = spawnWorker(loop, options.workerUrl ?? host.ioWorkerUrl, {
      data,
      name: options.name ?? "twloop I/O worker",
    });
    return new IoWorker(loop, ring, spawned);
  }

  /** The worker's port slot. */
  get slot(): number {
    return this.#spawned.slot;
  }

  /** Whether the worker has stopped (or failed). */
  get stopped(): boolean {
    return this.#stopped;
  }

  #post(c: IoCommand, transfer: Transferable[] = []): void {
    this.#spawned.worker.postMessage(c, transfer);
  }

  /** Delivers `r` to `cb` as a task (for calls made after stop). */
  #later<T>(cb: IoCallback<T>, r: IoResult<T>): void {
    this.#loop.queue(() => cb(r));
  }

  /**
   * Opens a listener in the worker.
   *
   * @param address Where to listen (port 0: any free port).
   * @param callback Runs as a loop task with the listener id and port.
   * @param options `arm` each accepted connection at once.
   * @throws {TypeError} A wrong argument type.
   * @throws {RangeError} Port out of range.
   */
  listen(
    address: TcpAddress,
    callback: IoCallback<WorkerListener>,
    options: ArmOptions = {},
  ): void {
    const a = checkAddress("listen", address);
    checkCallback("listen", callback);
    if (this.#stopped) {
      return this.#later(callback, {
        ok: false,
        error: STOPPED_ERROR("listen"),
      });
    }
    const id = this.#nextId++;
    this.#listens.set(id, callback);
    if (options.arm === true) this.#listenerArms.add(id);
    this.#post({ op: "listen", id, ...a, arm: options.arm === true });
  }

  /**
   * Closes a listener.
   *
   * @param listener Its id.
   * @param callback Runs as a loop task once closed.
   * @throws {RangeError} No such listener.
   */
  unlisten(listener: number, callback?: IoCallback<void>): void {
    if (!this.#listeners.has(listener)) {
      throw new RangeError(`Cannot close listener: no listener ${listener}`);
    }
    if (callback !== undefined) this.#unlistens.set(listener, callback);
    this.#post({ op: "unlisten", id: listener });
  }

  /**
   * Connects from the worker.
   *
   * @param address Where to connect.
   * @param callback Runs as a loop task with the connection id.
   * @param options `arm` the connection at once.
   * @throws {TypeError} A wrong argument type.
   * @throws {RangeError} Port out of range.
   */
  connect(
    address: TcpAddress,
    callback: IoCallback<number>,
    options: ArmOptions = {},
  ): void {
    const a = checkAddress("connect", address);
    checkCallback("connect", callback);
    if (this.#stopped) {
      return this.#later(callback, {
        ok: false,
        error: STOPPED_ERROR("connect"),
      });
    }
    const req = this.#nextId++;
    this.#connects.set(req, callback);
    if (options.arm === true) this.#connectArms.add(req);
    this.#post({ op: "connect", req, ...a, arm: options.arm === true });
  }

  #known(conn: number, action: string): void {
    if (!this.#conns.has(conn)) {
      throw new RangeError(`Cannot ${action}: no connection ${conn}`);
    }
  }

  /**
   * Starts a multishot receive; no effect if one is running.
   *
   * @param conn The connection.
   * @throws {RangeError} No such connection.
   */
  arm(conn: number): void {
    this.#known(conn, "arm receive");
    if (this.#armed.has(conn) || this.#closes.has(conn)) return;
    this.#armed.add(conn);
    this.#post({ op: "arm", conn });
  }

  /**
   * Ends a multishot receive: `onEnd(conn, ECANCELED)` follows, after the
   * completions already on their way. No effect if none is running.
   *
   * @param conn The connection.
   * @throws {RangeError} No such connection.
   */
  cancel(conn: number): void {
    this.#known(conn, "cancel receive");
    if (this.#armed.has(conn)) this.#post({ op: "cancel", conn });
  }

  /**
   * Sends bytes (copied, so the caller's buffer is free at once).
   *
   * @param conn The connection.
   * @param bytes What to send.
   * @param callback Runs as a loop task with the byte count.
   * @throws {TypeError} A wrong argument type.
   * @throws {RangeError} No such connection.
   */
  send(conn: number, bytes: Uint8Array, callback: IoCallback<number>): void {
    checkBytes("send", bytes);
    checkCallback("send", callback);
    this.#known(conn, "send");
    if (this.#closes.has(conn)) {
      return this.#later(callback, {
        ok: false,
        error: ioError("EBADF", "send"),
      });
    }
    let q = this.#sends.get(conn);
    if (q === undefined) this.#sends.set(conn, q = []);
    q.push(callback);
    const copy = bytes.slice();
    this.#post({ op: "send", conn, bytes: copy }, [copy.buffer]);
  }

  /**
   * Closes a connection; a running receive ends with `EBADF` first.
   *
   * @param conn The connection.
   * @param callback Runs as a loop task once the worker forgot it.
   * @throws {RangeError} No such connection.
   */
  close(conn: number, callback?: IoCallback<void>): void {
    this.#known(conn, "close connection");
    if (this.#closes.has(conn)) {
      if (callback) {
        this.#later(callback, { ok: false, error: ioError("EBADF", "close") });
      }
      return;
    }
    this.#closes.set(conn, callback);
    this.#post({ op: "close", conn });
  }

  /**
   * Gives back a buffer kept with {@linkcode KEEP_BUFFER}.
   *
   * @param buffer Its id.
   * @throws {RangeError} The loop does not hold that buffer.
   */
  release(buffer: number): void {
    this.ring.release(buffer);
  }

  /**
   * The ring's and the worker's counters.
   *
   * @returns A snapshot.
   */
  stats(): RingStats {
    return this.ring.stats();
  }

  /**
   * Closes every listener and connection and ends the worker. Running
   * receives end with `onEnd(conn, EBADF)`; pending callbacks get `EBADF`.
   *
   * @param callback Runs as a loop task once stopped.
   */
  stop(callback?: IoCallback<void>): void {
    if (callback) this.#stops.push(callback);
    if (this.#stopped) {
      if (callback) this.#later(callback, { ok: true, value: undefined });
      return;
    }
    this.#post({ op: "stop" });
  }

  /** Kills the worker at once (no orderly stop), e.g. before `loop.close()`. */
  terminate(): void {
    this.#spawned.terminate();
    if (!this.#stopped && !this.#loop.closed) {
      this.#loop.queue(() => this.#shutDown("EBADF", "run I/O worker"));
    }
  }

  /**
   * Handles one completion from the worker. The loop calls it for every
   * raw item of the worker's slot (see `Loop.routeEntries`); a harness that
   * carries completions through another queue calls it itself.
   *
   * @param e The item: `tag`, `a`, `b` as in `io_worker_protocol.ts`.
   */
  deliver(e: Pick<QueueEntry, "tag" | "a" | "b">): void {
    const a = e.a;
    const b = e.b;
    switch (e.tag) {
      case IO_RECV:
        return this.#recv(a, b);
      case IO_END:
        this.#armed.delete(a);
        return this.onEnd?.(
          a,
          b === 0 ? undefined : ioError(failureCode(b), "receive"),
        );
      case IO_ACCEPT:
        this.#conns.add(a);
        if (this.#listenerArms.has(b)) this.#armed.add(a);
        return this.onAccept?.(a, b);
      case IO_LISTEN:
        return this.#listened(a, b);
      case IO_UNLISTEN:
        return this.#unlistened(a, b);
      case IO_CONNECT:
        return this.#connected(a, b);
      case IO_SENT: {
        const cb = this.#sends.get(a)?.shift();
        return cb?.(
          b >= 0 ? { ok: true, value: b } : {
            ok: false,
            error: ioError(failureCode(b), "send"),
          },
        );
      }
      case IO_CLOSED:
        return this.#closed(a);
      case IO_STOPPED:
        return this.#shutDown("EBADF", "finish I/O");
    }
  }

  #recv(conn: number, id: number): void {
    const ring = this.ring;
    ring.receive(id);
    let keep = false;
    try {
      keep = this.onData?.(conn, ring.bytes(id), id) === KEEP_BUFFER;
    } finally {
      if (!keep) ring.release(id);
    }
  }

  #listened(id: number, b: number): void {
    const cb = this.#listens.get(id);
    this.#listens.delete(id);
    if (b < 0) {
      this.#listenerArms.delete(id);
      return cb?.({ ok: false, error: ioError(failureCode(b), "listen") });
    }
    this.#listeners.add(id);
    cb?.({ ok: true, value: { listener: id, port: b } });
  }

  #unlistened(id: number, b: number): void {
    this.#listeners.delete(id);
    this.#listenerArms.delete(id);
    const cb = this.#unlistens.get(id);
    this.#unlistens.delete(id);
    if (cb !== undefined) return cb({ ok: true, value: undefined });
    if (b < 0) this.onListenerEnd?.(id, ioError(failureCode(b), "accept"));
  }

  #connected(req: number, b: number): void {
    const cb = this.#connects.get(req);
    this.#connects.delete(req);
    if (b < 0) {
      this.#connectArms.delete(req);
      return cb?.({ ok: false, error: ioError(failureCode(b), "connect") });
    }
    this.#conns.add(b);
    if (this.#connectArms.delete(req)) this.#armed.add(b);
    cb?.({ ok: true, value: b });
  }

  #closed(conn: number): void {
    this.#conns.delete(conn);
    this.#armed.delete(conn);
    const sends = this.#sends.get(conn) ?? [];
    this.#sends.delete(conn);
    const cb = this.#closes.get(conn);
    this.#closes.delete(conn);
    for (const s of sends) s({ ok: false, error: ioError("EBADF", "send") });
    cb?.({ ok: true, value: undefined });
  }

  /** The worker stopped or failed: everything pending ends with `code`. */
  #shutDown(code: IoErrorCode, action: string): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#loop.routeEntries(this.#spawned.slot, undefined);
    const fail = {
      ok: false,
      error: new IoError(code, action, "the I/O worker stopped"),
    } as const;
    for (const conn of this.#armed) this.onEnd?.(conn, fail.error);
    this.#armed.clear();
    for (const cb of this.#listens.values()) cb(fail);
    for (const cb of this.#connects.values()) cb(fail);
    for (const q of this.#sends.values()) for (const cb of q) cb(fail);
    for (const cb of this.#closes.values()) {
      cb?.({ ok: true, value: undefined });
    }
    for (const cb of this.#unlistens.values()) {
      cb({ ok: true, value: undefined });
    }
    this.#listens.clear();
    this.#connects.clear();
    this.#sends.clear();
    this.#closes.clear();
    this.#unlistens.clear();
    this.#conns.clear();
    this.#listeners.clear();
    const ok = { ok: true, value: undefined } as const;
    for (const cb of this.#stops.splice(0)) cb(code === "EBADF" ? ok : fail);
  }
}
