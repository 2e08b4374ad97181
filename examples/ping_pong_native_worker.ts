/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Baseline for `ping_pong.ts`: echoes every message with `postMessage`.
 *
 * @module
 */

self.onmessage = (ev: MessageEvent) => self.postMessage(ev.data);
