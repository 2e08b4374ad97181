/**
 * Summaries of repeated measurements and the number formats the report uses.
 *
 * @module
 */

/** Median and range of a set of samples. */
export interface Summary {
  /** Middle value (mean of the two middle ones for an even count). */
  median: number;
  /** Smallest sample. */
  min: number;
  /** Largest sample. */
  max: number;
  /** Number of samples. */
  n: number;
}

/**
 * Summarises samples.
 *
 * @param samples At least one number.
 * @returns Median, min, max and count.
 * @throws {RangeError} No samples.
 */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) {
    throw new RangeError("Cannot summarize: no samples");
  }
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/**
 * Formats a rate in millions per second.
 *
 * @param perSecond Items per second.
 * @returns For example `"12.34 M"`.
 */
export function mega(perSecond: number): string {
  return `${(perSecond / 1e6).toFixed(perSecond < 1e6 ? 3 : 2)} M`;
}

/**
 * Formats a number with a fixed count of decimals.
 *
 * @param value The number.
 * @param digits Decimals.
 * @returns The text.
 */
export function fixed(value: number, digits = 1): string {
  return value.toFixed(digits);
}

/**
 * Pads table cells to aligned columns (first column left, the rest right).
 *
 * @param rows Header row first.
 * @returns The lines, the header underlined.
 */
export function alignTable(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0].map((_, c) =>
    Math.max(...rows.map((r) => r[c].length))
  );
  const line = (r: readonly string[]) =>
    r.map((cell, c) =>
      c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])
    ).join("  ");
  return [
    line(rows[0]),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.slice(1).map(line),
  ];
}

/**
 * Renders rows as a Markdown table (first column left-aligned).
 *
 * @param rows Header row first.
 * @returns The table lines.
 */
export function markdownTable(rows: readonly (readonly string[])[]): string[] {
  const line = (r: readonly string[]) => `| ${r.join(" | ")} |`;
  return [
    line(rows[0]),
    `| ${rows[0].map((_, c) => (c === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.slice(1).map(line),
  ];
}
