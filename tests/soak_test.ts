/**
 * The soak's short variant: the same runner as `deno task soak`, scaled down
 * to run in the suite.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runSoak } from "./soak/soak.ts";

Deno.test({
  name:
    "soak, short: 8 workers' mixed payloads arrive exactly once, in order, intact, under backpressure (seed 7)",
  async fn() {
    const r = await runSoak({ messages: 200_000, workers: 8, seed: 7 });
    assert.equal(r.delivered, 200_000);
    assert.ok(r.timersSet > 0, "no timer was set");
    assert.equal(r.timersFired + r.timersCancelled, r.timersSet);
  },
});
