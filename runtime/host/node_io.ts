/**
 * The Node implementation of the I/O host interface (`runtime/io/host.ts`):
 * files through `node:fs/promises`, TCP through `node:net`, every Node error
 * mapped to an {@linkcode IoError} code (Node's own `code`, `ENOENT` and the
 * like, when it is one of ours).
 *
 * The modules are reached through `process.getBuiltinModule` when first
 * used, not imported: this file loads on every host, and on Deno nothing
 * here runs.
 *
 * What it does to match the Deno host (`deno_io.ts`), which the same tests
 * check:
 *
 * - A connection is read by pull: the socket stays paused and `read()` takes
 *   what `net.Socket` has buffered, or waits for its `readable` event.
 * - `close()` on a connection first shuts its write side down (a FIN), as
 *   Deno's does, then destroys the socket once that is sent (at most
 *   {@linkcode CLOSE_LINGER_MS} later); reads and writes pending on it reject
 *   with `EBADF` at once.
 * - Writes wait until Node has handed the bytes to the OS; a view over a
 *   `SharedArrayBuffer` is copied first (Node may keep a reference until
 *   then).
 *
 * @module
 */

import type {
  FileInfo,
  HostConn,
  HostFile,
  HostListener,
  IoHost,
  NetAddress,
  OpenOptions,
} from "../io/host.ts";
import { IoError, type IoErrorCode, isIoErrorCode } from "../io/io_error.ts";

/** Longest a closed connection waits for its FIN to go out before reset. */
export const CLOSE_LINGER_MS = 1000;

// ---------------------------------------------------------------------------
// The parts of node:fs/promises and node:net used here

interface NodeStats {
  size: number;
  mtimeMs: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

interface NodeFileHandle {
  read(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: null,
  ): Promise<{ bytesRead: number }>;
  write(
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: null,
  ): Promise<{ bytesWritten: number }>;
  stat(): Promise<NodeStats>;
  close(): Promise<void>;
}

interface NodeFs {
  open(path: string, flags: number, mode?: number): Promise<NodeFileHandle>;
  stat(path: string): Promise<NodeStats>;
  constants: Record<string, number>;
}

interface NodeSocket {
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly destroyed: boolean;
  read(): Uint8Array | null;
  write(data: Uint8Array, cb: (err?: Error | null) => void): boolean;
  end(cb?: () => void): unknown;
  destroy(): unknown;
  resetAndDestroy?(): unknown;
  pause(): unknown;
  setNoDelay(on: boolean): unknown;
  on(event: string, fn: (arg: never) => void): unknown;
  once(event: string, fn: (arg: never) => void): unknown;
  off(event: string, fn: (arg: never) => void): unknown;
}

interface NodeServer {
  listen(
    options: { host: string; port: number; exclusive?: boolean },
    cb: () => void,
  ): unknown;
  address(): { address: string; port: number } | string | null;
  close(): unknown;
  on(event: string, fn: (arg: never) => void): unknown;
  once(event: string, fn: (arg: never) => void): unknown;
  off(event: string, fn: (arg: never) => void): unknown;
}

interface NodeNet {
  createServer(
    options: { pauseOnConnect: boolean; allowHalfOpen: boolean },
  ): NodeServer;
  connect(
    options: { host: string; port: number; allowHalfOpen: boolean },
  ): NodeSocket;
}

function builtin<T>(id: string): T {
  const p = (globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown };
  }).process;
  if (typeof p?.getBuiltinModule !== "function") {
    throw new IoError("EIO", "load host", `${id} needs Node 20.16 or later`);
  }
  return p.getBuiltinModule(id) as T;
}

let fsModule: NodeFs | undefined;
let netModule: NodeNet | undefined;
const fs = (): NodeFs => (fsModule ??= builtin<NodeFs>("node:fs/promises"));
const net = (): NodeNet => (netModule ??= builtin<NodeNet>("node:net"));

// ---------------------------------------------------------------------------
// Errors

/** Node error codes that are ours under another name. */
const ALIASES: Readonly<Record<string, IoErrorCode>> = {
  ERR_STREAM_DESTROYED: "EBADF",
  ERR_SOCKET_CLOSED: "EBADF",
  ERR_STREAM_WRITE_AFTER_END: "EPIPE",
  ERR_SERVER_NOT_RUNNING: "EBADF",
  ABORT_ERR: "ECANCELED",
  ERR_ACCESS_DENIED: "EACCES", // Node's permission model (--permission)
  EPERM: "EACCES",
  ENFILE: "EMFILE",
  ENOTCONN: "EPIPE",
  ERR_INVALID_ARG_TYPE: "EINVAL",
  ERR_INVALID_ARG_VALUE: "EINVAL",
  ERR_OUT_OF_RANGE: "EINVAL",
  ERR_SOCKET_BAD_PORT: "EINVAL",
};

/**
 * Maps a Node error to an {@linkcode IoError}.
 *
 * @param e What a Node call threw, rejected with or emitted.
 * @param action What was attempted, e.g. "read file".
 * @returns The error, with `e` as its cause.
 */
export function nodeIoError(e: unknown, action: string): IoError {
  if (e instanceof IoError) return e;
  const own = (e as { code?: unknown } | null)?.code;
  const code = isIoErrorCode(own)
    ? own
    : (typeof own === "string" ? ALIASES[own] : undefined) ??
      (e instanceof Error && e.name === "AbortError" ? "ECANCELED" : "EIO");
  let detail = e instanceof Error ? e.message : String(e);
  // "ENOENT: no such file or directory, open '/x'" → "no such file ..."
  detail = detail.replace(/^[A-Z_]+: /, "").replace(/ \(os error \d+\)/, "");
  if (detail.length > 0) detail = detail[0].toLowerCase() + detail.slice(1);
  return new IoError(code, action, detail, { cause: e });
}

async function mapped<T>(action: string, p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (e) {
    throw nodeIoError(e, action);
  }
}

function closedError(action: string): IoError {
  return new IoError("EBADF", action, "the handle is closed");
}

// ---------------------------------------------------------------------------
// Files

function fileInfo(s: NodeStats): FileInfo {
  return Object.freeze({
    size: s.size,
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
    mtimeMs: Number.isFinite(s.mtimeMs) ? s.mtimeMs : null,
  });
}

/** POSIX open flags for `options`, with Deno's rules for invalid mixes. */
function openFlags(options: OpenOptions): number {
  const c = fs().constants;
  const write = options.write === true || options.append === true;
  const read = options.read ?? !write;
  if (
    (options.create === true || options.createNew === true ||
      options.truncate === true) && !write
  ) {
    throw new IoError(
      "EINVAL",
      "open file",
      "create, createNew and truncate need write or append",
    );
  }
  let flags = read && write ? c.O_RDWR : write ? c.O_WRONLY : c.O_RDONLY;
  if (options.append === true) flags |= c.O_APPEND;
  if (options.truncate === true) flags |= c.O_TRUNC;
  if (options.createNew === true) flags |= c.O_CREAT | c.O_EXCL;
  else if (options.create === true) flags |= c.O_CREAT;
  return flags;
}

class NodeFile implements HostFile {
  readonly #f: NodeFileHandle;
  #closed = false;
  constructor(f: NodeFileHandle) {
    this.#f = f;
  }
  // Node's FileHandle lets an operation pending at close() finish; the
  // contract (`io/host.ts`) says it rejects: checked again after the await.
  read(buffer: Uint8Array): Promise<number | null> {
    return mapped("read file", async () => {
      if (this.#closed) throw closedError("read file");
      if (buffer.length === 0) return 0;
      const { bytesRead } = await this.#f.read(buffer, 0, buffer.length, null);
      if (this.#closed) throw closedError("read file");
      return bytesRead === 0 ? null : bytesRead;
    });
  }
  write(bytes: Uint8Array): Promise<number> {
    return mapped("write file", async () => {
      if (this.#closed) throw closedError("write file");
      const { bytesWritten } = await this.#f.write(
        bytes,
        0,
        bytes.length,
        null,
      );
      if (this.#closed) throw closedError("write file");
      return bytesWritten;
    });
  }
  stat(): Promise<FileInfo> {
    return mapped("stat file", async () => {
      if (this.#closed) throw closedError("stat file");
      const info = fileInfo(await this.#f.stat());
      if (this.#closed) throw closedError("stat file");
      return info;
    });
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#f.close().catch(() => {/* already closed */});
  }
}

// ---------------------------------------------------------------------------
// TCP

function address(host: string | undefined, port: number | undefined) {
  return Object.freeze({ hostname: host ?? "", port: port ?? 0 });
}

/** A paused `net.Socket` read by pull. */
class NodeConn implements HostConn {
  readonly #s: NodeSocket;
  readonly local: NetAddress;
  readonly remote: NetAddress;
  #chunk: Uint8Array | null = null;
  #ended = false;
  #closed = false;
  #error: unknown;
  #waiters: (() => void)[] = [];

  constructor(s: NodeSocket) {
    this.#s = s;
    s.pause();
    s.setNoDelay(true);
    this.local = address(s.localAddress, s.localPort);
    this.remote = address(s.remoteAddress, s.remotePort);
    const wake = () => {
      const w = this.#waiters;
      this.#waiters = [];
      for (const fn of w) fn();
    };
    s.on("readable", wake);
    s.on("end", () => {
      this.#ended = true;
      wake();
    });
    s.on("error", (e: unknown) => {
      this.#error ??= e;
      wake();
    });
    s.on("close", wake);
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw closedError("read");
      if (buffer.length === 0) return 0;
      const chunk = this.#chunk ?? this.#s.read();
      if (chunk !== null && chunk.length > 0) {
        const n = Math.min(chunk.length, buffer.length);
        buffer.set(chunk.subarray(0, n));
        this.#chunk = n < chunk.length ? chunk.subarray(n) : null;
        return n;
      }
      this.#chunk = null;
      if (this.#error !== undefined) throw nodeIoError(this.#error, "read");
      if (this.#ended) return null;
      if (this.#s.destroyed) throw closedError("read");
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(closedError("write"));
    if (bytes.length === 0) return Promise.resolve(0);
    const data = bytes.buffer instanceof SharedArrayBuffer
      ? bytes.slice()
      : bytes;
    return new Promise((resolve, reject) => {
      this.#s.write(data, (err) => {
        if (this.#closed) reject(closedError("write"));
        else if (err != null) reject(nodeIoError(err, "write"));
        else resolve(bytes.length);
      });
    });
  }

  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("shut down writes"));
    return new Promise((resolve) => this.#s.end(() => resolve()));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const s = this.#s;
    const w = this.#waiters;
    this.#waiters = [];
    for (const fn of w) fn(); // pending reads see #closed: EBADF
    if (s.destroyed) return;
    // FIN first, as Deno does; then release (a stuck write cannot hold it).
    const linger = setTimeout(() => s.destroy(), CLOSE_LINGER_MS);
    s.on("error", () => {}); // a reset now is nobody's business
    s.end(() => {
      clearTimeout(linger);
      s.destroy();
    });
  }
}

class NodeListener implements HostListener {
  readonly #server: NodeServer;
  readonly address: NetAddress;
  readonly #queued: NodeSocket[] = [];
  readonly #accepts: {
    resolve: (c: HostConn) => void;
    reject: (e: unknown) => void;
  }[] = [];
  #closed = false;

  constructor(server: NodeServer, address: NetAddress) {
    this.#server = server;
    this.address = address;
    server.on("connection", (s: NodeSocket) => {
      const next = this.#accepts.shift();
      if (next !== undefined) return next.resolve(new NodeConn(s));
      // Not accepted yet: an error now must not go unhandled (it would be
      // thrown); the connection reports it once accepted.
      s.on("error", () => {});
      this.#queued.push(s);
    });
  }

  accept(): Promise<HostConn> {
    if (this.#closed) return Promise.reject(closedError("accept"));
    const s = this.#queued.shift();
    if (s !== undefined) return Promise.resolve(new NodeConn(s));
    return new Promise((resolve, reject) => {
      this.#accepts.push({ resolve, reject });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const a of this.#accepts.splice(0)) a.reject(closedError("accept"));
    // Connections the OS accepted but nobody took: reset, as a listener's
    // backlog is when it closes.
    for (const s of this.#queued.splice(0)) {
      if (s.resetAndDestroy !== undefined) s.resetAndDestroy();
      else s.destroy();
    }
  }
}

function listen(a: NetAddress): Promise<HostListener> {
  return mapped("listen", () =>
    new Promise((resolve, reject) => {
      const server = net().createServer({
        pauseOnConnect: true,
        allowHalfOpen: true, // closeWrite() is the caller's, as in Deno
      });
      const onError = (e: unknown) => reject(e);
      server.once("error", onError);
      server.listen({ host: a.hostname, port: a.port, exclusive: true }, () => {
        server.off("error", onError);
        server.on("error", () => {/* reported through accept */});
        const bound = server.address();
        const port = typeof bound === "object" && bound !== null
          ? bound.port
          : a.port;
        const host = typeof bound === "object" && bound !== null
          ? bound.address
          : a.hostname;
        resolve(new NodeListener(server, address(host, port)));
      });
    }));
}

function connect(a: NetAddress, signal?: AbortSignal): Promise<HostConn> {
  return mapped("connect", () =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new IoError("ECANCELED", "connect", "aborted"));
        return;
      }
      const s = net().connect({
        host: a.hostname,
        port: a.port,
        allowHalfOpen: true,
      });
      const onAbort = () => {
        s.destroy();
        reject(new IoError("ECANCELED", "connect", "aborted"));
      };
      const onError = (e: unknown) => {
        signal?.removeEventListener("abort", onAbort);
        reject(e);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      s.once("error", onError);
      s.once("connect", () => {
        signal?.removeEventListener("abort", onAbort);
        s.off("error", onError);
        resolve(new NodeConn(s));
      });
    }));
}

/**
 * I/O through Node's APIs (Node 20.16 or later).
 *
 * @example
 * ```ts ignore
 * import { nodeIo } from "./node_io.ts";
 * const info = await nodeIo.stat("package.json");
 * console.log(info.size);
 * ```
 */
export const nodeIo: IoHost = Object.freeze({
  name: "node",
  ioWorkerUrl: new URL("./node_worker_io.ts", import.meta.url),
  open(path: string, options: OpenOptions): Promise<HostFile> {
    return mapped("open file", async () => {
      const flags = openFlags(options);
      return new NodeFile(await fs().open(path, flags, options.mode));
    });
  },
  stat(path: string): Promise<FileInfo> {
    return mapped("stat file", async () => fileInfo(await fs().stat(path)));
  },
  listen,
  connect,
});
