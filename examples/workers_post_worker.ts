/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker side of `workers_post.ts`: attach, push `count` numbered items
 * (backing off while the loop catches up), then a done item.
 *
 * @module
 */

import { Producer, PUSH_FULL, wake } from "../mod.ts";

self.onmessage = (ev: MessageEvent) => {
  const { buffer, count, tag, doneTag } = ev.data as {
    buffer: SharedArrayBuffer;
    count: number;
    tag: number;
    doneTag: number;
  };
  const p = Producer.attach(buffer);
  const w = new Int32Array(buffer);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < count; i++) {
    while (p.push(tag, i, 0) === PUSH_FULL) {
      wake(w, false); // make sure the loop is up, then give it a moment
      Atomics.wait(pause, 0, 0, 0.05);
    }
    wake(w, true);
  }
  while (p.push(doneTag, 0, 0) === PUSH_FULL) Atomics.wait(pause, 0, 0, 0.05);
  wake(w, false);
  p.detach();
};
