/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Worker side of `isolated.ts`: imports a section module, runs the named
 * section and posts its result (or its error) back.
 *
 * @module
 */

import type { IsolatedJob, IsolatedResult } from "../isolated.ts";
import type { SectionRunner } from "../section.ts";

const encoder = new TextEncoder();

self.onmessage = async (ev: MessageEvent<IsolatedJob>) => {
  const job = ev.data;
  let result: IsolatedResult;
  try {
    const mod: Record<string, SectionRunner> = await import(job.module);
    const section = await mod[job.name]({
      quick: job.quick,
      reps: job.reps,
      progress: (text) => Deno.stderr.writeSync(encoder.encode(text)),
    });
    result = { ok: true, section };
  } catch (e) {
    result = {
      ok: false,
      error: e instanceof Error ? e.stack ?? e.message : String(e),
    };
  }
  self.postMessage(result);
};
