/**
 * The host adapter for Node (20.16 and later): workers from
 * `node:worker_threads`, behind {@linkcode NodeWorker}, a facade with the
 * web `Worker` members, so `spawnWorker` returns the same kind of object on
 * every host.
 *
 * `node:worker_threads` is reached through `process.getBuiltinModule`
 * (Node 20.16+), synchronously and without a static `node:` import: this
 * file loads on every host, and on Deno nothing here runs.
 *
 * A worker started here first runs `node_scope.ts`, which gives the thread
 * the web worker scope (`self`, `postMessage`, `onmessage`, `close`) and
 * then imports the worker module: a worker written for Deno runs unchanged.
 * Like a web worker, it lives until it calls `close()`, fails, or is
 * terminated.
 *
 * ## Terminating: at the thread's next turn, then hard
 *
 * `terminate()` on a `node:worker_threads` worker stops its JavaScript at
 * once, at any instruction, where Deno's `terminate()` stops a worker only
 * when it next turns its event loop. The port fault protocol
 * (`loop_inbox.ts`) relies on Deno's behaviour: a port raises its slot
 * fence's writing bit around each write, and a dead slot is repaired and
 * reused only once the bit is down; a thread cut off between raising and
 * lowering it would leave the slot, and a push it left unlinked, stuck for
 * good. So {@linkcode NodeWorker.terminate} first asks the thread, over a
 * private `MessageChannel`, to end itself at its next event-loop turn
 * (between two tasks, so never inside a write); only a thread still running
 * {@linkcode TERMINATE_GRACE_MS} later (one that never yields) is stopped
 * hard. Events stop at the call either way, as on the web.
 *
 * @module
 */

import type { Host, WorkerStart } from "./host.ts";

/** The part of `node:worker_threads` used here. */
export interface WorkerThreads {
  /** Starts a thread. */
  Worker: new (
    filename: URL,
    options: {
      workerData: unknown;
      name?: string;
      transferList?: readonly Transferable[];
    },
  ) => Thread;
  /** In a worker, the channel to the parent; null on the main thread. */
  parentPort: ParentPort | null;
  /** What the parent passed as `workerData`. */
  workerData: unknown;
}

/** The part of a `node:worker_threads` Worker used here. */
interface Thread {
  postMessage(value: unknown, transfer?: readonly Transferable[]): void;
  terminate(): Promise<number>;
  on(event: string, listener: (value: never) => void): unknown;
}

/** The part of `parentPort` used here. */
export interface ParentPort {
  /** Sends to the parent. */
  postMessage(value: unknown, transfer?: readonly Transferable[]): void;
  /** Adds a listener (a `message` listener starts and refs the port). */
  on(event: "message", listener: (value: unknown) => void): unknown;
  /** Removes a listener. */
  off(event: "message", listener: (value: unknown) => void): unknown;
}

/** What `node_scope.ts` receives as `workerData`. */
export interface ScopeData {
  /** The worker module to import. */
  url: string;
  /** The worker's name, as `self.name`. */
  name: string;
  /** Receives the parent's request to end at the next turn (any message). */
  control: MessagePort;
}

/**
 * How long a terminated worker may run on before it is stopped hard: it is
 * asked to end at its next event-loop turn, which a worker that yields at
 * all reaches within milliseconds (see the module docs).
 */
export const TERMINATE_GRACE_MS = 2000;

interface NodeProcess {
  getBuiltinModule?: (id: string) => unknown;
}

/**
 * `node:worker_threads`, or undefined on a host without
 * `process.getBuiltinModule`.
 *
 * @returns The module.
 */
export function workerThreads(): WorkerThreads | undefined {
  const p = (globalThis as { process?: NodeProcess }).process;
  if (typeof p?.getBuiltinModule !== "function") return undefined;
  return p.getBuiltinModule("node:worker_threads") as WorkerThreads;
}

/** A URL, or a file path resolved against the working directory. */
function resolveUrl(url: string | URL): string {
  if (url instanceof URL || URL.canParse(url)) return new URL(url).href;
  const p = (globalThis as { process?: NodeProcess }).process!;
  const nodeUrl = p.getBuiltinModule!("node:url") as {
    pathToFileURL(path: string): URL;
  };
  return nodeUrl.pathToFileURL(url).href;
}

/** The module a worker runs first; the build rewrites `.ts` to `.js`. */
const SCOPE_URL = new URL("./node_scope.ts", import.meta.url);

/** The `error` event of a {@linkcode NodeWorker}, shaped like `ErrorEvent`. */
export class WorkerErrorEvent extends Event {
  /** What the worker threw. */
  readonly error: unknown;
  /** Its message. */
  readonly message: string;
  /** Unknown on Node: always empty. */
  readonly filename = "";
  /** Unknown on Node: always 0. */
  readonly lineno = 0;
  /** Unknown on Node: always 0. */
  readonly colno = 0;

  /**
   * Makes the event (cancelable, as a web worker's).
   *
   * @param error What the worker threw.
   */
  constructor(error: unknown) {
    super("error", { cancelable: true });
    this.error = error;
    this.message = error instanceof Error
      ? `Uncaught ${error.name}: ${error.message}`
      : `Uncaught ${String(error)}`;
  }
}

/** The non-standard `exit` event of a {@linkcode NodeWorker}. */
export class WorkerExitEvent extends Event {
  /** The thread's exit code. */
  readonly code: number;

  /**
   * Makes the event.
   *
   * @param code The thread's exit code.
   */
  constructor(code: number) {
    super("exit");
    this.code = code;
  }
}

type Handler = ((this: NodeWorker, ev: Event) => unknown) | null;
type Kind = "message" | "messageerror" | "error";

/**
 * A `node:worker_threads` worker with the web `Worker` members: events
 * `message`, `messageerror`, `error` (cancelable; an error no listener
 * cancels is rethrown in this thread, as Deno does) and, non-standard,
 * `exit` when the thread ends by itself. After `terminate()` no event
 * fires, as on the web.
 *
 * @example
 * ```ts ignore
 * const w = new NodeWorker(new URL("./worker.js", import.meta.url));
 * w.onmessage = (ev) => console.log((ev as MessageEvent).data);
 * w.postMessage("hello");
 * ```
 */
export class NodeWorker extends EventTarget {
  readonly #thread: Thread;
  readonly #control: MessagePort;
  readonly #handlers = new Map<Kind, [Handler, EventListener]>();
  #terminated = false;
  #exited = false;
  #hardStop: ReturnType<typeof setTimeout> | undefined;

  /**
   * Starts the worker.
   *
   * @param url The worker module (always run as a module).
   * @param options Its name, as for a web worker.
   * @throws {TypeError} Not on Node 20.16 or later.
   */
  constructor(url: string | URL, options: { name?: string } = {}) {
    super();
    const wt = workerThreads();
    if (wt === undefined) {
      throw new TypeError(
        "Cannot start worker: node:worker_threads needs Node 20.16 or later",
      );
    }
    const name = options.name ?? "";
    const { port1, port2 } = new MessageChannel();
    this.#control = port1;
    const data: ScopeData = { url: resolveUrl(url), name, control: port2 };
    this.#thread = new wt.Worker(SCOPE_URL, {
      workerData: data,
      name,
      transferList: [port2],
    });
    this.#thread.on("message", (data: unknown) => {
      this.#fire(new MessageEvent("message", { data }));
    });
    this.#thread.on("messageerror", (error: unknown) => {
      this.#fire(new MessageEvent("messageerror", { data: error }));
    });
    this.#thread.on("error", (error: unknown) => {
      const ev = new WorkerErrorEvent(error);
      if (this.#fire(ev) && !ev.defaultPrevented) {
        queueMicrotask(() => { // unhandled: fatal, as in Deno
          throw error;
        });
      }
    });
    this.#thread.on("exit", (code: number) => {
      this.#exited = true;
      clearTimeout(this.#hardStop);
      this.#control.close();
      this.#fire(new WorkerExitEvent(code));
    });
  }

  /** @returns Whether the event was dispatched (not after terminate). */
  #fire(ev: Event): boolean {
    if (this.#terminated) return false;
    this.dispatchEvent(ev);
    return true;
  }

  #get(kind: Kind): Handler {
    return this.#handlers.get(kind)?.[0] ?? null;
  }

  #set(kind: Kind, fn: Handler): void {
    const old = this.#handlers.get(kind);
    if (old !== undefined) this.removeEventListener(kind, old[1]);
    this.#handlers.delete(kind);
    if (typeof fn !== "function") return;
    const listener = (ev: Event) => fn.call(this, ev);
    this.#handlers.set(kind, [fn, listener]);
    this.addEventListener(kind, listener);
  }

  /** Handler of `message` events. */
  get onmessage(): Handler {
    return this.#get("message");
  }
  set onmessage(fn: Handler) {
    this.#set("message", fn);
  }

  /** Handler of `messageerror` events. */
  get onmessageerror(): Handler {
    return this.#get("messageerror");
  }
  set onmessageerror(fn: Handler) {
    this.#set("messageerror", fn);
  }

  /** Handler of `error` events. */
  get onerror(): Handler {
    return this.#get("error");
  }
  set onerror(fn: Handler) {
    this.#set("error", fn);
  }

  /**
   * Sends a message to the worker.
   *
   * @param message Any structured-cloneable value.
   * @param transfer Objects to transfer, as an array or `{ transfer }`.
   */
  postMessage(
    message: unknown,
    transfer?: Transferable[] | StructuredSerializeOptions,
  ): void {
    const list = Array.isArray(transfer) ? transfer : transfer?.transfer;
    this.#thread.postMessage(message, list);
  }

  /**
   * Stops the worker: at its next event-loop turn, or hard after
   * {@linkcode TERMINATE_GRACE_MS} (see the module docs). No event fires
   * after this call.
   */
  terminate(): void {
    if (this.#terminated || this.#exited) {
      this.#terminated = true;
      return;
    }
    this.#terminated = true;
    this.#control.postMessage("terminate");
    // The worker holds the process alive until it ends, so this timer
    // fires if it is still running then; `exit` clears it.
    this.#hardStop = setTimeout(() => {
      void this.#thread.terminate();
    }, TERMINATE_GRACE_MS);
  }
}

/** Node's way: see `host.ts`. */
export const nodeHost: Host & { detected(): boolean } = {
  name: "node",

  /**
   * Node with `getBuiltinModule`, and not Deno (which emulates `process`
   * too). Deno is told by `Deno.version.deno`, not by a global `Deno`
   * alone: a shim of one (the Node test runner's) does not make Node Deno.
   *
   * @returns Whether this is Node.
   */
  detected(): boolean {
    const deno = (globalThis as { Deno?: { version?: { deno?: unknown } } })
      .Deno;
    return typeof deno?.version?.deno !== "string" &&
      workerThreads() !== undefined;
  },

  startWorker(url: string | URL, options: WorkerStart): Worker {
    const worker = new NodeWorker(url, { name: options.name });
    const onExit = options.onExit;
    if (onExit !== undefined) {
      worker.addEventListener("exit", (ev) => {
        onExit((ev as WorkerExitEvent).code);
      });
    }
    // The members spawnWorker and its callers use; see NodeWorker.
    return worker as unknown as Worker;
  },

  onParentMessage(listener: (data: unknown) => void): () => void {
    const port = workerThreads()?.parentPort;
    if (port == null) {
      throw new TypeError("Cannot wait for the parent: not in a Node worker");
    }
    port.on("message", listener);
    return () => port.off("message", listener);
  },
};
