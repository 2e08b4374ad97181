/**
 * The Deno implementation of the I/O host interface (`runtime/io/host.ts`):
 * files through `Deno.open` / `Deno.stat`, TCP through `Deno.listen` /
 * `Deno.connect`, every Deno error mapped to an {@linkcode IoError} code.
 *
 * Two Deno behaviours shape what callers see (measured with strace on
 * Deno 2.9.6, Linux):
 *
 * - `close()` on a connection shuts its write side down before closing, so a
 *   peer that closes with unread data still sends a FIN first, and reads on
 *   this side end with end of stream, not `ECONNRESET`; a reset is seen on
 *   the next write (`EPIPE`). A connection reset before any FIN (for example
 *   a backlog connection dropped when its listener closes, or a killed
 *   process) does read as `ECONNRESET`.
 * - A read or accept pending when its handle closes rejects with
 *   `Interrupted` or `BadResource`: mapped to `EBADF`.
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

/** Deno error class name → code. */
const BY_NAME: Readonly<Record<string, IoErrorCode>> = {
  NotFound: "ENOENT",
  AlreadyExists: "EEXIST",
  PermissionDenied: "EACCES",
  NotCapable: "EACCES",
  IsADirectory: "EISDIR",
  NotADirectory: "ENOTDIR",
  ConnectionRefused: "ECONNREFUSED",
  ConnectionReset: "ECONNRESET",
  ConnectionAborted: "ECONNABORTED",
  BrokenPipe: "EPIPE",
  AddrInUse: "EADDRINUSE",
  AddrNotAvailable: "EADDRNOTAVAIL",
  TimedOut: "ETIMEDOUT",
  InvalidData: "EINVAL",
  BadResource: "EBADF",
  Interrupted: "EBADF",
};

/**
 * Maps a Deno error to an {@linkcode IoError}.
 *
 * @param e What a Deno call threw or rejected with.
 * @param action What was attempted, e.g. "read file".
 * @returns The error, with `e` as its cause.
 */
export function denoIoError(e: unknown, action: string): IoError {
  if (e instanceof IoError) return e;
  const name = e instanceof Error ? e.name : "";
  const own = (e as { code?: unknown } | null)?.code;
  const code = BY_NAME[name] ?? (isIoErrorCode(own) ? own : undefined) ??
    (own === "ENFILE" ? "EMFILE" : undefined) ?? // system-wide: same advice
    (e instanceof TypeError ? "EINVAL" : "EIO");
  let detail = e instanceof Error ? e.message : String(e);
  detail = detail.replace(/ \(os error \d+\)/, "");
  if (detail.length > 0) detail = detail[0].toLowerCase() + detail.slice(1);
  return new IoError(code, action, detail, { cause: e });
}

async function mapped<T>(action: string, p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (e) {
    throw denoIoError(e, action);
  }
}

function netAddress(a: Deno.Addr): NetAddress {
  const n = a as Deno.NetAddr;
  return Object.freeze({ hostname: n.hostname, port: n.port });
}

function fileInfo(i: Deno.FileInfo): FileInfo {
  return Object.freeze({
    size: i.size,
    isFile: i.isFile,
    isDirectory: i.isDirectory,
    mtimeMs: i.mtime?.getTime() ?? null,
  });
}

class DenoFile implements HostFile {
  readonly #f: Deno.FsFile;
  constructor(f: Deno.FsFile) {
    this.#f = f;
  }
  read(buffer: Uint8Array): Promise<number | null> {
    return mapped("read file", () => this.#f.read(buffer));
  }
  write(bytes: Uint8Array): Promise<number> {
    return mapped("write file", () => this.#f.write(bytes));
  }
  stat(): Promise<FileInfo> {
    return mapped("stat file", async () => fileInfo(await this.#f.stat()));
  }
  close(): void {
    try {
      this.#f.close();
    } catch { /* already closed */ }
  }
}

class DenoConn implements HostConn {
  readonly #c: Deno.TcpConn;
  readonly local: NetAddress;
  readonly remote: NetAddress;
  constructor(c: Deno.TcpConn) {
    this.#c = c;
    this.local = netAddress(c.localAddr);
    this.remote = netAddress(c.remoteAddr);
  }
  read(buffer: Uint8Array): Promise<number | null> {
    return mapped("read", () => this.#c.read(buffer));
  }
  write(bytes: Uint8Array): Promise<number> {
    return mapped("write", () => this.#c.write(bytes));
  }
  closeWrite(): Promise<void> {
    return mapped("shut down writes", () => this.#c.closeWrite());
  }
  close(): void {
    try {
      this.#c.close();
    } catch { /* already closed */ }
  }
}

class DenoListener implements HostListener {
  readonly #l: Deno.TcpListener;
  readonly address: NetAddress;
  constructor(l: Deno.TcpListener) {
    this.#l = l;
    this.address = netAddress(l.addr);
  }
  accept(): Promise<HostConn> {
    return mapped("accept", async () => new DenoConn(await this.#l.accept()));
  }
  close(): void {
    try {
      this.#l.close();
    } catch { /* already closed */ }
  }
}

/**
 * I/O through Deno's APIs. Needs `--allow-read` / `--allow-write` for the
 * files used and `--allow-net` for the addresses used; a denied permission
 * is an `EACCES` result, not a prompt (run with `--no-prompt`).
 *
 * @example
 * ```ts
 * import { denoIo } from "./deno_io.ts";
 * const info = await denoIo.stat(new URL(import.meta.url).pathname);
 * if (!info.isFile) throw new Error("unexpected");
 * ```
 */
export const denoIo: IoHost = Object.freeze({
  name: "deno",
  ioWorkerUrl: new URL("./deno_worker_io.ts", import.meta.url),
  open(path: string, options: OpenOptions): Promise<HostFile> {
    return mapped(
      "open file",
      async () => new DenoFile(await Deno.open(path, options)),
    );
  },
  stat(path: string): Promise<FileInfo> {
    return mapped("stat file", async () => fileInfo(await Deno.stat(path)));
  },
  listen(address: NetAddress): Promise<HostListener> {
    return mapped("listen", () =>
      Promise.resolve(
        new DenoListener(Deno.listen({
          hostname: address.hostname,
          port: address.port,
          transport: "tcp",
        })),
      ));
  },
  connect(address: NetAddress, signal?: AbortSignal): Promise<HostConn> {
    return mapped("connect", async () =>
      new DenoConn(
        await Deno.connect({
          hostname: address.hostname,
          port: address.port,
          transport: "tcp",
          signal,
        }),
      ));
  },
});
