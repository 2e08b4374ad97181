/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * A thread that has never seen the queue: it copies the queue's bytes into
 * a new shared memory (same header id and size) and connects a handle
 * carrying that copy (after attaching a producer to the copy alone), then
 * connects the rightful handle and posts through it. Reports
 * `{ kind: "done", attached, forged, rightful }`: what each step did.
 *
 * @module
 */

import { connect, type PortHandle, Producer } from "../../mod.ts";

self.onmessage = (e: MessageEvent) => {
  const h = e.data as PortHandle;
  const src = h.buffer as SharedArrayBuffer;
  const pages = src.byteLength / 65536;
  const copy = new WebAssembly.Memory({
    initial: pages,
    maximum: pages,
    shared: true,
  });
  new Uint8Array(copy.buffer).set(new Uint8Array(src));
  // A producer on the copy has nothing to check it against: it is used as
  // it is, and must not become this thread's memory for the queue.
  let attached: string;
  try {
    Producer.attach(copy);
    attached = "used as it is";
  } catch (err) {
    attached = `${(err as Error).name}: ${(err as Error).message}`;
  }
  let forged: string;
  try {
    connect({ ...h, memory: copy }).post("to the copy");
    forged = "accepted";
  } catch (err) {
    forged = `${(err as Error).name}: ${(err as Error).message}`;
  }
  let rightful: string;
  try {
    const port = connect(h);
    port.post("rightful");
    port.close();
    rightful = "ok";
  } catch (err) {
    rightful = `${(err as Error).name}: ${(err as Error).message}`;
  }
  self.postMessage({ kind: "done", attached, forged, rightful });
};
