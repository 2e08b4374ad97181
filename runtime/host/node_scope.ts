/**
 * The first module of every thread `NodeWorker` starts (see
 * `node.ts`): it gives the thread the web worker scope, then imports the
 * worker module named in `workerData`, so a worker written for Deno runs
 * unchanged on Node.
 *
 * | scope member                          | on Node                              |
 * | ------------------------------------- | ------------------------------------ |
 * | `self`                                | `globalThis`                         |
 * | `name`                                | the name given to the worker         |
 * | `postMessage(data, transfer?)`        | `parentPort.postMessage`             |
 * | `onmessage`, `add/removeEventListener` | `message` events from `parentPort`   |
 * | `close()`                             | ends the thread (exit code 0)        |
 *
 * `parentPort` is listened to only once a `message` listener exists: until
 * then Node queues what the parent sends, as a web worker does while its
 * module loads. A referenced interval keeps the thread alive until
 * `close()`, a failure or `terminate()`, as a web worker lives. The
 * parent's `terminate()` arrives on a private control port and ends the
 * thread at its next event-loop turn (see `node.ts`).
 *
 * @module
 */

import { type ScopeData, workerThreads } from "./node.ts";

const wt = workerThreads();
const port = wt?.parentPort;
if (wt === undefined || port == null) {
  throw new TypeError("Cannot set up worker scope: not in a Node worker");
}
const { url, name, control } = wt.workerData as ScopeData;
const scope = new EventTarget();
const keepAlive = setInterval(() => {}, 2 ** 30);

interface NodeProcess {
  exit(code: number): never;
}
/** Ends this thread (in a worker, `process.exit` ends only the thread). */
function exitThread(): never {
  clearInterval(keepAlive);
  return (globalThis as unknown as { process: NodeProcess }).process.exit(0);
}
// The parent's terminate(): runs between two tasks, never inside one.
control.onmessage = () => exitThread();
(control as MessagePort & { unref?(): void }).unref?.();
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  port!.on("message", (data) => {
    scope.dispatchEvent(new MessageEvent("message", { data }));
  });
}

let onmessage: ((ev: MessageEvent) => unknown) | null = null;
const onmessageListener = (ev: Event) =>
  onmessage?.call(globalThis, ev as MessageEvent);

const members: Record<string, unknown> = {
  self: globalThis,
  name,
  postMessage(
    data: unknown,
    transfer?: Transferable[] | StructuredSerializeOptions,
  ): void {
    const list = Array.isArray(transfer) ? transfer : transfer?.transfer;
    port!.postMessage(data, list);
  },
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void {
    if (type === "message") listen();
    scope.addEventListener(type, listener, options);
  },
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void {
    scope.removeEventListener(type, listener, options);
  },
  dispatchEvent(ev: Event): boolean {
    return scope.dispatchEvent(ev);
  },
  close(): void {
    exitThread();
  },
};
for (const [key, value] of Object.entries(members)) {
  Object.defineProperty(globalThis, key, {
    value,
    writable: true,
    configurable: true,
  });
}
Object.defineProperty(globalThis, "onmessage", {
  get: () => onmessage,
  set(fn: ((ev: MessageEvent) => unknown) | null) {
    if (onmessage === null && typeof fn === "function") {
      listen();
      scope.addEventListener("message", onmessageListener);
    } else if (typeof fn !== "function") {
      scope.removeEventListener("message", onmessageListener);
    }
    onmessage = typeof fn === "function" ? fn : null;
  },
  configurable: true,
});

// The worker module is the caller's, known only now: a dynamic import by
// nature (`deno publish` notes it cannot analyze it; nothing to rewrite).
await import(url);
