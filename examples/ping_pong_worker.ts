/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker side of `ping_pong.ts`: runs its own loop, hands its port back to
 * the parent, and answers each number on the parent's port: with the same
 * number, or, when spawned with `{ stamped: true }` (the workload), with a
 * timestamp taken right before the post (`performance.timeOrigin +
 * performance.now()`, comparable across threads).
 *
 * @module
 */

import { Loop, workerPort } from "../mod.ts";

const { port: toParent, data } = await workerPort();
const stamped = (data as { stamped?: boolean } | undefined)?.stamped === true;
const loop = new Loop();
const fromParent = loop.port();
loop.onMessage = (n) => {
  if (n === -1) {
    toParent.close(); // lets the parent's run() end
    loop.close();
    return;
  }
  toParent.post(stamped ? performance.timeOrigin + performance.now() : n);
};
self.postMessage(fromParent);
loop.runSync(); // a dedicated thread: the blocking drive
