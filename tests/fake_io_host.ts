/**
 * A scripted {@linkcode IoHost} for deterministic I/O tests: every host
 * operation stays pending until the test settles it, so the order in which
 * completions reach the loop is the test's choice, not the OS's.
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
} from "../runtime/io/host.ts";
import { IoError } from "../runtime/io/io_error.ts";

/** A host call waiting for the test. */
export interface Pending<T, A = undefined> {
  /** What the call was given. */
  readonly arg: A;
  /** Settles it. */
  resolve(value: T): void;
  /** Fails it. */
  reject(error: unknown): void;
}

function pending<T, A>(list: Pending<T, A>[], arg: A): Promise<T> {
  const d = Promise.withResolvers<T>();
  list.push({ arg, resolve: d.resolve, reject: d.reject });
  return d.promise;
}

const ADDR: NetAddress = Object.freeze({ hostname: "127.0.0.1", port: 1 });

/** A stream whose reads and writes wait for the test. */
export class FakeStream implements HostFile, HostConn {
  readonly reads: Pending<number | null, Uint8Array>[] = [];
  readonly writes: Pending<number, Uint8Array>[] = [];
  readonly local: NetAddress = ADDR;
  readonly remote: NetAddress = ADDR;
  closed = false;

  read(buffer: Uint8Array): Promise<number | null> {
    return pending(this.reads, buffer);
  }
  write(bytes: Uint8Array): Promise<number> {
    return pending(this.writes, bytes);
  }
  stat(): Promise<FileInfo> {
    return Promise.resolve({
      size: 3,
      isFile: true,
      isDirectory: false,
      mtimeMs: null,
    });
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
    for (const p of [...this.reads.splice(0), ...this.writes.splice(0)]) {
      p.reject(new IoError("EBADF", "read", "interrupted"));
    }
  }

  /**
   * Completes the oldest pending read with `text`.
   *
   * @returns The buffer the host was given.
   */
  feed(text: string): Uint8Array {
    const r = this.reads.shift();
    if (r === undefined) throw new Error("no read is pending");
    const bytes = new TextEncoder().encode(text);
    r.arg.set(bytes);
    r.resolve(bytes.length);
    return r.arg;
  }
}

/** A listener whose accepts wait for the test. */
export class FakeListener implements HostListener {
  readonly address: NetAddress = ADDR;
  readonly accepts: Pending<HostConn>[] = [];
  closed = false;
  accept(): Promise<HostConn> {
    return pending(this.accepts, undefined);
  }
  close(): void {
    this.closed = true;
    for (const p of this.accepts.splice(0)) {
      p.reject(new IoError("EBADF", "accept", "interrupted"));
    }
  }
}

/** The scripted host. */
export class FakeHost implements IoHost {
  readonly name = "fake";
  readonly ioWorkerUrl = new URL("data:text/javascript,");
  readonly opens: Pending<HostFile, string>[] = [];
  readonly stats: Pending<FileInfo, string>[] = [];
  readonly connects: Pending<HostConn, AbortSignal | undefined>[] = [];
  readonly listener = new FakeListener();

  open(path: string): Promise<HostFile> {
    return pending(this.opens, path);
  }
  stat(path: string): Promise<FileInfo> {
    return pending(this.stats, path);
  }
  listen(): Promise<HostListener> {
    return Promise.resolve(this.listener);
  }
  connect(_: NetAddress, signal?: AbortSignal): Promise<HostConn> {
    return pending(this.connects, signal);
  }
}
