/**
 * The worker side of an I/O worker (the io-wq idea): this thread owns
 * listeners and connections, receives into buffers of a provided buffer
 * ring (`buffer_ring.ts`) and posts completions into the loop's queue
 * through its port slot (`io_worker_protocol.ts`). A host adapter starts it
 * with {@linkcode serveIoWorker} (see `runtime/host/deno_worker_io.ts`).
 *
 * ## A multishot receive
 *
 * An armed connection runs one receive after another, each into a buffer
 * taken from the ring, and posts `IO_RECV (connection, buffer)` for each;
 * the length is in the ring's length word. It stops at end of stream, an
 * error, `cancel` or `close`, with one `IO_END`.
 *
 * Hosts without a readiness API (Deno's `read(buffer)`) need the buffer
 * when the receive starts, not when data arrives as io_uring picks it, so
 * a connection waiting for data holds one buffer: give the ring at least
 * one buffer per armed connection, plus what the loop keeps.
 *
 * ## Backpressure: pause, never allocate or drop
 *
 * - No free buffer: the connection stops receiving (no receive is
 *   started, so the host's socket buffer and then TCP flow control hold
 *   the peer) and joins a FIFO of waiting connections. Buffers that come
 *   back go to the waiting connections in that order: those the loop
 *   releases, and those a receive gave back unused (end of stream, an
 *   error, a close), which matters when the loop holds none, e.g. many
 *   connections ending at once on a ring smaller than their number.
 * - A connection idle in a receive holds its buffer: with fewer buffers
 *   than armed connections, waiting ones get data only as others receive
 *   or end. Size the ring at one buffer per armed connection plus what
 *   the loop keeps (`sock_test.ts` uses two per connection plus 64).
 * - Per-connection quota: a connection with `perConnection` buffers at the
 *   loop also pauses, until one of its own comes back, so one slow
 *   consumer cannot take the whole ring from the others.
 * - While any connection waits, the worker sleeps on the ring's return
 *   word (`Atomics.waitAsync`); a release wakes it.
 * - The loop's queue slot full: completions wait in a local outbox (at
 *   most one per buffer plus one per connection and request) and are
 *   pushed when the loop has drained.
 *
 * ## Batching
 *
 * Completions produced in one turn of the worker's event loop are pushed
 * as one chain (`Producer.pushBatch`: 2 atomics for the whole batch) with
 * one lazy wake, and the ring's stats words are stored once per batch.
 *
 * ## Where completions go
 *
 * By default into the loop's queue through the worker's port slot. A
 * worker module may pass its own sink (`completion_sink.ts`) to
 * {@linkcode serveIoWorker} (a benchmark routes completions through a
 * baseline queue this way; `examples/sock_queue_worker.ts`). The port's
 * close marker always goes through the port slot, after the last
 * completion was accepted by the sink.
 *
 * ## Cancel with a receive in flight
 *
 * The host cannot withdraw a started receive. `cancel` posts `IO_END
 * (ECANCELED)` at once; if the receive then brings bytes, the connection
 * keeps that buffer and posts it first when armed again (end of stream or
 * an error likewise); `close` puts it back.
 *
 * @module
 */

import type { HostConn, HostListener, IoHost } from "./host.ts";
import { asIoError } from "./io_error.ts";
import { RingReceiver } from "./buffer_ring.ts";
import {
  S_ADD_US,
  S_BATCHES,
  S_PAUSES,
  S_POSTED,
  S_RECEIVES,
  S_STARVED,
} from "./buffer_ring.ts";
import {
  failure,
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
import { Producer, PUSH_FULL } from "../producer.ts";
import {
  type CompletionSink,
  queueSink,
  type SinkContext,
} from "./completion_sink.ts";
import { MSG_PORT_CLOSED } from "../messages.ts";
import type { PortHandle } from "../port.ts";
import { wake } from "../wake.ts";

/** Not waiting. */
const PARK_NONE = 0;
/** Waiting for any free buffer (in the FIFO). */
const PARK_BUFFER = 1;
/** Waiting for one of its own buffers to come back. */
const PARK_QUOTA = 2;
/** No buffer kept from a cancelled receive. */
const NONE = -1;

/** One connection this worker owns. */
class Conn {
  readonly id: number;
  readonly host: HostConn;
  armed = false;
  pumping = false;
  closed = false;
  /** Buffers at the loop. */
  held = 0;
  parked = PARK_NONE;
  /** Buffer (and length) received after a cancel. */
  kept = NONE;
  keptLength = 0;
  /** End word (0 or a failure) seen after a cancel, or undefined. */
  keptEnd: number | undefined;
  sends: Promise<void> = Promise.resolve();

  constructor(id: number, host: HostConn) {
    this.id = id;
    this.host = host;
  }
}

/** Options for {@linkcode serveIoWorker}. */
export interface ServeOptions {
  /** Makes the sink (default: {@linkcode queueSink}). */
  sink?: (context: SinkContext) => CompletionSink;
}

/**
 * Serves one I/O worker on this thread: waits for the spawn message from
 * `IoWorker.start` (a port handle and the ring), then runs commands until
 * `stop`. Call it once, at the top of the worker module.
 *
 * @param host The host's I/O implementation.
 * @param options Where completions go.
 */
export function serveIoWorker(host: IoHost, options: ServeOptions = {}): void {
  let server: IoServer | undefined;
  const target = globalThis as unknown as EventTarget;
  target.addEventListener("message", (ev: Event) => {
    const data = (ev as MessageEvent).data;
    if (server !== undefined) return server.command(data as IoCommand);
    const handle = data?.twloop as PortHandle | undefined;
    if (handle?.kind === "twloop.port") {
      const setup = data.data as IoWorkerSetup;
      const producer = Producer.attach(handle.buffer, handle.slot);
      const context: SinkContext = {
        producer,
        queueWords: new Int32Array(handle.buffer),
        data: setup.sinkData,
      };
      const sink = (options.sink ?? queueSink)(context);
      server = new IoServer(host, context, sink, setup);
    }
  });
}

/** The worker's state and command handlers. */
class IoServer {
  readonly #host: IoHost;
  readonly #p: Producer;
  readonly #sink: CompletionSink;
  readonly #w: Int32Array;
  readonly #rx: RingReceiver;
  readonly #quota: number;
  readonly #conns = new Map<number, Conn>();
  readonly #listeners = new Map<number, HostListener>();
  /** Connection id per buffer at the loop, for the quota. */
  readonly #ownerOf: Int32Array;
  /** FIFO of connections waiting for a buffer. */
  #starved: Conn[] = [];
  #quotaParked = 0;
  #watching = false;
  /** A `#serveLater` microtask is queued. */
  #serving = false;
  #nextConn = 1;
  #stopped = false;
  readonly #resume: Conn[] = [];
  // Outbox, pushed in one batch per turn.
  readonly #tags: number[] = [];
  readonly #as: number[] = [];
  readonly #bs: number[] = [];
  #scheduled = false;
  #portClosing = false;
  // Counters, stored into the ring's stats words once per batch.
  #posted = 0;
  #batches = 0;
  #receives = 0;
  #pauses = 0;
  #addMs = 0;

  constructor(
    host: IoHost,
    context: SinkContext,
    sink: CompletionSink,
    setup: IoWorkerSetup,
  ) {
    this.#host = host;
    this.#p = context.producer;
    this.#w = context.queueWords;
    this.#sink = sink;
    this.#rx = RingReceiver.attach(setup.ring);
    this.#quota = setup.perConnection;
    this.#ownerOf = new Int32Array(this.#rx.count).fill(-1);
  }

  command(c: IoCommand): void {
    if (this.#stopped) return;
    switch (c.op) {
      case "listen":
        return this.#listen(c.id, c.hostname, c.port, c.arm);
      case "unlisten":
        return this.#unlisten(c.id);
      case "connect":
        return this.#connect(c.req, c.hostname, c.port, c.arm);
      case "arm":
        return this.#arm(c.conn);
      case "cancel":
        return this.#cancel(c.conn);
      case "send":
        return this.#send(c.conn, c.bytes);
      case "close":
        return this.#close(c.conn);
      case "stop":
        return this.#stop();
    }
  }

  // ---- Completions ----

  #emit(tag: number, a: number, b: number): void {
    if (this.#portClosing) return; // the loop has had IO_STOPPED
    this.#tags.push(tag);
    this.#as.push(a);
    this.#bs.push(b);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Pushes the outbox as one chain, or as much as the slot takes. */
  readonly #flush = (): void => {
    this.#scheduled = false;
    const n = this.#tags.length;
    if (n === 0) return this.#maybeClosePort();
    const t0 = performance.now();
    const k = this.#sink.push(this.#tags, this.#as, this.#bs, n);
    if (k > 0) {
      this.#posted += k;
      this.#batches++;
      if (k === n) {
        this.#tags.length = this.#as.length = this.#bs.length = 0;
      } else {
        this.#tags.splice(0, k);
        this.#as.splice(0, k);
        this.#bs.splice(0, k);
      }
    }
    this.#addMs += performance.now() - t0;
    this.#storeStats();
    if (this.#tags.length > 0) {
      // The loop's slot is full: make sure it is draining, retry shortly.
      wake(this.#w, false);
      this.#scheduled = true;
      setTimeout(this.#flush, 1);
      return;
    }
    this.#maybeClosePort();
  };

  #storeStats(): void {
    const rx = this.#rx;
    rx.setStat(S_POSTED, this.#posted);
    rx.setStat(S_BATCHES, this.#batches);
    rx.setStat(S_RECEIVES, this.#receives);
    rx.setStat(S_PAUSES, this.#pauses);
    rx.setStat(S_STARVED, this.#starved.length + this.#quotaParked);
    rx.setStat(S_ADD_US, Math.round(this.#addMs * 1000));
  }

  // ---- Receiving ----

  #arm(id: number): void {
    const c = this.#conns.get(id);
    if (c === undefined || c.armed || c.closed) return;
    c.armed = true;
    this.#pump(c);
  }

  #pump(c: Conn): void {
    if (!c.pumping) void this.#pumpLoop(c);
  }

  /** The multishot receive of one connection; never rejects. */
  async #pumpLoop(c: Conn): Promise<void> {
    const rx = this.#rx;
    c.pumping = true;
    try {
      while (c.armed && !c.closed) {
        if (c.kept !== NONE) {
          const id = c.kept;
          c.kept = NONE;
          this.#deliver(c, id, c.keptLength);
          continue;
        }
        if (c.keptEnd !== undefined) {
          const end = c.keptEnd;
          c.keptEnd = undefined;
          this.#end(c, end);
          break;
        }
        if (c.held >= this.#quota) this.#collect(); // may free some of its own
        if (c.held >= this.#quota) {
          this.#park(c, PARK_QUOTA);
          break;
        }
        let id = rx.take();
        if (id < 0) {
          this.#collect();
          id = rx.take();
        }
        if (id < 0) {
          this.#park(c, PARK_BUFFER);
          break;
        }
        let n: number | null;
        try {
          n = await c.host.read(rx.view(id));
        } catch (e) {
          this.#putBack(id);
          if (!c.closed) this.#finish(c, failure(asIoError(e, "read").code));
          break;
        }
        if (c.closed || n === 0) {
          this.#putBack(id);
          continue;
        }
        if (n === null) {
          this.#putBack(id);
          this.#finish(c, 0);
          break;
        }
        if (!c.armed) {
          c.kept = id; // cancelled meanwhile: first thing on the next arm
          c.keptLength = n;
          break;
        }
        this.#deliver(c, id, n);
      }
    } finally {
      c.pumping = false;
    }
  }

  #deliver(c: Conn, id: number, n: number): void {
    c.held++;
    this.#ownerOf[id] = c.id;
    this.#rx.setLength(id, n); // published by the push in #flush
    this.#receives++;
    this.#emit(IO_RECV, c.id, id);
  }

  /** End of stream or an error: ends the arm, or is kept if cancelled. */
  #finish(c: Conn, end: number): void {
    if (c.armed) this.#end(c, end);
    else c.keptEnd = end;
  }

  #end(c: Conn, word: number): void {
    c.armed = false;
    this.#unpark(c);
    this.#emit(IO_END, c.id, word);
  }

  #park(c: Conn, how: number): void {
    c.parked = how;
    this.#pauses++;
    if (how === PARK_BUFFER) this.#starved.push(c);
    else this.#quotaParked++;
    // After the caller's pump has returned, so a resume can restart it.
    queueMicrotask(this.#startWatch);
  }

  #unpark(c: Conn): void {
    if (c.parked === PARK_QUOTA) this.#quotaParked--;
    c.parked = PARK_NONE; // a starved entry is skipped when it comes up
  }

  #parkedCount(): number {
    return this.#starved.length + this.#quotaParked;
  }

  readonly #onReturn = (id: number): void => {
    const c = this.#conns.get(this.#ownerOf[id]);
    this.#ownerOf[id] = -1;
    if (c === undefined) return;
    c.held--;
    if (c.parked === PARK_QUOTA && c.held < this.#quota) {
      this.#unpark(c);
      this.#resume.push(c);
    }
  };

  /** Takes back returned buffers and restarts connections waiting on them. */
  #collect(): void {
    if (this.#rx.collect(this.#onReturn) === 0) return;
    for (const c of this.#resume.splice(0)) this.#pump(c);
    this.#serveStarved();
  }

  /** Hands free buffers to waiting connections, in the order they waited. */
  #serveStarved(): void {
    let i = 0;
    const q = this.#starved;
    while (i < q.length && this.#rx.free > 0) {
      const c = q[i++];
      if (c.parked !== PARK_BUFFER) continue; // cancelled or closed
      c.parked = PARK_NONE;
      this.#pump(c); // takes a buffer before its first await
    }
    if (i > 0) this.#starved = i === q.length ? [] : q.slice(i);
  }

  /**
   * A buffer taken and not handed to the loop (end of stream, an error, a
   * close) goes back to the free stack, and to the connections waiting for
   * one: the loop may hold no buffer at all, so no return would wake them.
   * Served after the current pump step, never inside it.
   */
  #putBack(id: number): void {
    this.#rx.putBack(id);
    if (this.#starved.length > 0 && !this.#serving) {
      this.#serving = true;
      queueMicrotask(this.#serveLater);
    }
  }

  readonly #serveLater = (): void => {
    this.#serving = false;
    this.#serveStarved();
  };

  readonly #startWatch = (): void => void this.#watch();

  /** While connections wait, sleeps until buffers come back. */
  async #watch(): Promise<void> {
    if (this.#watching) return;
    this.#watching = true;
    try {
      while (this.#parkedCount() > 0 && !this.#stopped) {
        this.#collect();
        this.#starved = this.#starved.filter((c) => c.parked === PARK_BUFFER);
        if (this.#parkedCount() === 0) break;
        this.#storeStats();
        await this.#rx.waitForReturn();
      }
    } finally {
      this.#watching = false;
    }
  }

  #cancel(id: number): void {
    const c = this.#conns.get(id);
    if (c === undefined || !c.armed) return;
    this.#end(c, failure("ECANCELED"));
  }

  // ---- Connections, listeners, sends ----

  #adopt(host: HostConn, arm: boolean): Conn {
    const c = new Conn(this.#nextConn++, host);
    this.#conns.set(c.id, c);
    c.armed = arm;
    return c;
  }

  #listen(id: number, hostname: string, port: number, arm: boolean): void {
    this.#host.listen({ hostname, port }).then((l) => {
      if (this.#stopped) return l.close();
      this.#listeners.set(id, l);
      this.#emit(IO_LISTEN, id, l.address.port);
      void this.#acceptLoop(id, l, arm);
    }, (e) => this.#emit(IO_LISTEN, id, failure(asIoError(e, "listen").code)));
  }

  async #acceptLoop(id: number, l: HostListener, arm: boolean): Promise<void> {
    for (;;) {
      let host: HostConn;
      try {
        host = await l.accept();
      } catch (e) {
        if (this.#listeners.delete(id)) {
          l.close();
          this.#emit(IO_UNLISTEN, id, failure(asIoError(e, "accept").code));
        }
        return;
      }
      if (this.#stopped) return host.close();
      const c = this.#adopt(host, arm);
      this.#emit(IO_ACCEPT, c.id, id);
      if (arm) this.#pump(c);
    }
  }

  #unlisten(id: number): void {
    const l = this.#listeners.get(id);
    if (l === undefined) return;
    this.#listeners.delete(id);
    l.close();
    this.#emit(IO_UNLISTEN, id, 0);
  }

  #connect(req: number, hostname: string, port: number, arm: boolean): void {
    this.#host.connect({ hostname, port }).then(
      (host) => {
        if (this.#stopped) return host.close();
        const c = this.#adopt(host, arm);
        this.#emit(IO_CONNECT, req, c.id);
        if (arm) this.#pump(c);
      },
      (e) => this.#emit(IO_CONNECT, req, failure(asIoError(e, "connect").code)),
    );
  }

  #send(id: number, bytes: Uint8Array): void {
    const c = this.#conns.get(id);
    if (c === undefined) return this.#emit(IO_SENT, id, failure("EBADF"));
    c.sends = c.sends.then(async () => {
      let off = 0;
      try {
        while (off < bytes.length) {
          if (c.closed) throw new Error("closed");
          off += await c.host.write(bytes.subarray(off));
        }
        this.#emit(IO_SENT, id, off);
      } catch (e) {
        const code = c.closed ? "EBADF" : asIoError(e, "send").code;
        this.#emit(IO_SENT, id, failure(code));
      }
    });
  }

  #close(id: number): void {
    const c = this.#conns.get(id);
    if (c === undefined) return;
    if (c.armed) this.#end(c, failure("EBADF"));
    this.#drop(c);
    this.#emit(IO_CLOSED, id, 0);
  }

  #drop(c: Conn): void {
    c.closed = true;
    c.armed = false;
    this.#unpark(c);
    if (c.kept !== NONE) this.#putBack(c.kept);
    c.kept = NONE;
    this.#conns.delete(c.id);
    c.host.close(); // a receive in flight rejects and puts its buffer back
  }

  #stop(): void {
    this.#stopped = true;
    for (const l of this.#listeners.values()) l.close();
    this.#listeners.clear();
    for (const c of [...this.#conns.values()]) this.#drop(c);
    this.#starved = [];
    this.#quotaParked = 0;
    this.#emit(IO_STOPPED, 0, 0);
  }

  /** After `stop` and the last completion: closes the port (FIFO last). */
  #maybeClosePort(): void {
    if (!this.#stopped || this.#portClosing) return;
    if (this.#p.push(MSG_PORT_CLOSED, 0, 0) === PUSH_FULL) {
      wake(this.#w, false);
      setTimeout(() => this.#maybeClosePort(), 1);
      return;
    }
    this.#portClosing = true;
    wake(this.#w, false);
    this.#p.detach();
  }
}
