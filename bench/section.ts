/**
 * A self-contained part of `deno task bench`: one scenario measured against
 * its baseline in the same process run, rendered as one table.
 *
 * A section module exports a {@linkcode SectionRunner}; `bench/main.ts` runs
 * each in turn and prints and saves what it returns.
 *
 * @module
 */

/** What a section measured. */
export interface BenchSection {
  /** Stable key in `latest.json`. */
  id: string;
  /** Heading of the table. */
  title: string;
  /** Lines printed under the heading: method, sizes, how to read it. */
  notes: string[];
  /** Header row of the table. */
  columns: string[];
  /** Table rows, already formatted. */
  rows: string[][];
  /** The numbers behind the rows (medians, min-max, ratios), for JSON. */
  data: unknown;
}

/** Settings every section receives. */
export interface SectionSettings {
  /** `--quick`: fewer items, for smoke runs. */
  quick: boolean;
  /** Measured repetitions (after one warm-up). */
  reps: number;
  /** Writes progress to stderr. */
  progress: (text: string) => void;
}

/** A section's entry point. */
export type SectionRunner = (s: SectionSettings) => Promise<BenchSection>;
