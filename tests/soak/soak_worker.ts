/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * One soak producer: posts `count` messages of seeded random kinds through
 * its port, mostly with `post()` (blocking on a full port), some with
 * `tryPost()` falling back to `postAsync()`, some with `postAsync()`; then
 * reports how often the port was full and closes it.
 *
 * @module
 */

import { workerPort } from "../../mod.ts";
import { rng } from "../rng.ts";
import { make, pick } from "./payloads.ts";

/** What the soak hands each worker. */
export interface SoakJob {
  id: number;
  count: number;
  seed: number;
}

const { port, data } = await workerPort();
const job = data as SoakJob;
const random = rng(job.seed * 1000 + job.id);
let refused = 0;
for (let seq = 0; seq < job.count; seq++) {
  const value = make(pick(random()), seq);
  const how = random();
  if (how < 0.9) {
    port.post(value, { timeout: 30_000 });
  } else if (how < 0.95) {
    if (!port.tryPost(value)) {
      refused++;
      await port.postAsync(value, { timeout: 30_000 });
    }
  } else {
    await port.postAsync(value, { timeout: 30_000 });
  }
}
port.post({ done: job.id, refused });
port.close();
