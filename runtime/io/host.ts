/**
 * The host side of I/O: the small interface a runtime adapter implements
 * (`runtime/host/deno_io.ts` for Deno) so that the loop's I/O code
 * (`loop_io.ts`, `io_worker.ts`) never names a host API.
 *
 * ## Contract for implementations
 *
 * - Every promise rejects only with an {@linkcode IoError} whose code says
 *   what happened (the host maps its own errors, keeping them as `cause`).
 * - A read resolves to the byte count, or `null` at end of stream.
 * - A write may write fewer bytes than given and resolves to the count.
 * - `close()` never throws; operations pending on the handle then reject.
 * - Handles are used from the thread that made them.
 *
 * @module
 */

import type { IoError } from "./io_error.ts";

export type { IoError };

/** How to open a file; the flags mean what POSIX `open(2)` makes of them. */
export interface OpenOptions {
  /** Open for reading (default true when `write` and `append` are unset). */
  read?: boolean;
  /** Open for writing. */
  write?: boolean;
  /** Writes go to the end of the file. */
  append?: boolean;
  /** Empty the file on open. */
  truncate?: boolean;
  /** Create the file if it does not exist. */
  create?: boolean;
  /** Create the file, failing with `EEXIST` if it exists. */
  createNew?: boolean;
  /** Permission bits of a created file (POSIX only). */
  mode?: number;
}

/** What `stat` reports. */
export interface FileInfo {
  /** Size in bytes. */
  readonly size: number;
  /** A regular file. */
  readonly isFile: boolean;
  /** A directory. */
  readonly isDirectory: boolean;
  /** Last modification, ms since the epoch, or null if unknown. */
  readonly mtimeMs: number | null;
}

/** Something a handle can read from and write to. */
export interface HostStream {
  /**
   * Reads into `buffer`.
   *
   * @param buffer Where the bytes go.
   * @returns Bytes read, or null at end of stream.
   */
  read(buffer: Uint8Array): Promise<number | null>;
  /**
   * Writes some of `bytes`.
   *
   * @param bytes What to write.
   * @returns Bytes written (at least 1 unless `bytes` is empty).
   */
  write(bytes: Uint8Array): Promise<number>;
  /** Releases the handle; pending operations reject. Never throws. */
  close(): void;
}

/** An open file. */
export interface HostFile extends HostStream {
  /** @returns The file's info. */
  stat(): Promise<FileInfo>;
}

/** An address: host name or IP literal and port. */
export interface NetAddress {
  /** Host name or IP literal. */
  readonly hostname: string;
  /** Port, 0 to 65535. */
  readonly port: number;
}

/** A TCP connection. */
export interface HostConn extends HostStream {
  /** The local end. */
  readonly local: NetAddress;
  /** The remote end. */
  readonly remote: NetAddress;
  /** Shuts down the write side: the peer reads end of stream. */
  closeWrite(): Promise<void>;
}

/** A TCP listener. */
export interface HostListener {
  /** The address it listens on (port resolved when 0 was asked). */
  readonly address: NetAddress;
  /** @returns The next incoming connection. */
  accept(): Promise<HostConn>;
  /** Stops listening; a pending accept rejects. Never throws. */
  close(): void;
}

/** The operations a host provides. */
export interface IoHost {
  /** Host name, for messages. */
  readonly name: string;
  /**
   * Module that runs an I/O worker on this host (see `io_worker.ts`): it
   * calls `serveIoWorker` with this host.
   */
  readonly ioWorkerUrl: URL;
  /**
   * @param path File path.
   * @param options Open flags.
   * @returns The open file.
   */
  open(path: string, options: OpenOptions): Promise<HostFile>;
  /**
   * @param path File path.
   * @returns Its info.
   */
  stat(path: string): Promise<FileInfo>;
  /**
   * @param address Where to listen (port 0: any free port).
   * @returns The listener.
   */
  listen(address: NetAddress): Promise<HostListener>;
  /**
   * @param address Where to connect.
   * @param signal Aborts the attempt (the promise then rejects).
   * @returns The connection.
   */
  connect(address: NetAddress, signal?: AbortSignal): Promise<HostConn>;
}
