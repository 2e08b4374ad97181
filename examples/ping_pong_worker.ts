/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker side of `ping_pong.ts`: runs its own loop, hands its port back to
 * the parent, and answers each number on the parent's port.
 *
 * @module
 */

import { Loop, workerPort } from "../mod.ts";

const { port: toParent } = await workerPort();
const loop = new Loop();
const fromParent = loop.port();
loop.onMessage = (n) => {
  if (n === -1) {
    toParent.close(); // lets the parent's run() end
    loop.close();
    return;
  }
  toParent.post(n);
};
self.postMessage(fromParent);
loop.runSync(); // a dedicated thread: the blocking drive
