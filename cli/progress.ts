/**
 * Live progress while a workload runs. On a terminal, one status line
 * redrawn in place four times a second (carriage return, erase line); when
 * output goes to a file or a pipe, one plain line per second, so logs stay
 * readable. Lines the workload logs are printed above the status line.
 *
 * @module
 */

import { count, rate } from "./format.ts";
import type { Sampler } from "./sampler.ts";

/** Where progress goes and how. */
export interface ProgressOptions {
  /** Writes text as is (no newline added). */
  readonly write: (text: string) => void;
  /** Output is a terminal: redraw one line in place. */
  readonly terminal: boolean;
  /** Terminal width, to keep the status line on one row. */
  readonly columns?: number;
  /** Print nothing at all. */
  readonly quiet?: boolean;
}

const ERASE_LINE = "\r\x1b[2K";

/** Draws progress from a {@linkcode Sampler}'s samples. */
export class Progress {
  readonly #o: ProgressOptions;
  #lastDraw = -Infinity;
  #drawn = false;

  /**
   * @param options Output, terminal or not, quiet.
   */
  constructor(options: ProgressOptions) {
    this.#o = options;
  }

  /**
   * Called after each sample; draws when it is time to.
   *
   * @param sampler The run's sampler.
   */
  update(sampler: Sampler): void {
    if (this.#o.quiet) return;
    const s = sampler.samples[sampler.samples.length - 1];
    const every = this.#o.terminal ? 0.25 : 1;
    if (s.t - this.#lastDraw < every) return;
    this.#lastDraw = s.t;
    const r = sampler.recentRates(1);
    const line = `${s.t.toFixed(1)}s  tasks/s ${rate(r.tasks)}  ` +
      `messages/s ${rate(r.messages)}  queue ${count(s.depth)}  ` +
      `wakes/s ${rate(r.wakes)}  total ${count(s.tasks)}`;
    if (this.#o.terminal) {
      // A pseudo-terminal may report 0 columns: then assume 100.
      const columns = this.#o.columns ?? 0;
      const width = (columns >= 40 ? columns : 100) - 1;
      this.#o.write(ERASE_LINE + line.slice(0, width));
      this.#drawn = true;
    } else {
      this.#o.write(`[progress] ${line}\n`);
    }
  }

  /**
   * Prints a whole line, above the status line on a terminal.
   *
   * @param line The text, without newline.
   */
  log(line: string): void {
    if (this.#o.quiet) return;
    this.clear();
    this.#o.write(line + "\n");
  }

  /** Erases the status line (before the report is printed). */
  clear(): void {
    if (!this.#drawn) return;
    this.#o.write(ERASE_LINE);
    this.#drawn = false;
    this.#lastDraw = -Infinity; // redraw at the next sample
  }
}
