/**
 * Runs a section in a fresh worker, so its measurements start from clean
 * JIT state. V8 keeps one type feedback per call site for the whole
 * isolate: after the stream and item-cost runs have passed three different
 * callbacks to `MpscQueue.drain`, its callback call is polymorphic and not
 * inlined, which adds ~6 ns per item (measured: 14.3 → 20.3 ns per item at
 * 1024 queued, while the Treiber baseline, called with one callback, stayed
 * at 14.2). A loop has one dispatch callback, so the clean state is the one
 * that describes it; a section that compares per-item drain costs across
 * queues runs here.
 *
 * The worker imports the section's module, runs the named
 * {@linkcode SectionRunner} with the same settings (progress goes to the
 * same stderr), and posts the {@linkcode BenchSection} back. Workers inherit
 * the bench's permissions, so the section still writes its charts.
 *
 * @module
 */

import type {
  BenchSection,
  SectionRunner,
  SectionSettings,
} from "./section.ts";

/** Job for `workers/section_runner.ts`. */
export interface IsolatedJob {
  /** Absolute URL of the section's module. */
  module: string;
  /** Name of its exported {@linkcode SectionRunner}. */
  name: string;
  /** `--quick`. */
  quick: boolean;
  /** Repetitions. */
  reps: number;
}

/** What the worker posts back. */
export type IsolatedResult =
  | { ok: true; section: BenchSection }
  | { ok: false; error: string };

/**
 * Wraps a section so that it runs in its own worker.
 *
 * @param module The section's module, relative to this file (`./bursty.ts`).
 * @param name Its exported runner's name.
 * @returns A runner for `SECTIONS`.
 */
export function isolated(module: string, name: string): SectionRunner {
  return (s: SectionSettings) =>
    new Promise<BenchSection>((resolve, reject) => {
      const worker = new Worker(
        new URL("./workers/section_runner.ts", import.meta.url),
        { type: "module" },
      );
      worker.onmessage = (ev: MessageEvent<IsolatedResult>) => {
        worker.terminate();
        if (ev.data.ok) resolve(ev.data.section);
        else reject(new Error(`Cannot run ${name}: ${ev.data.error}`));
      };
      worker.onerror = (ev) => {
        ev.preventDefault();
        worker.terminate();
        reject(new Error(`Cannot run ${name}: worker failed: ${ev.message}`));
      };
      const job: IsolatedJob = {
        module: new URL(module, import.meta.url).href,
        name,
        quick: s.quick,
        reps: s.reps,
      };
      worker.postMessage(job);
    });
}
