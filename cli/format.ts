/**
 * Number formatting shared by the progress line, the terminal report and
 * the HTML page.
 *
 * @module
 */

/**
 * A count with thousands separators: `1234567` → `1,234,567`.
 *
 * @param n The number (rounded).
 * @returns The text.
 */
export function count(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * A rate in compact form: `950`, `12.3k`, `4.56M`.
 *
 * @param n Events per second.
 * @returns The text.
 */
export function rate(n: number): string {
  if (!Number.isFinite(n)) return "-";
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(2)}k`;
  return n.toFixed(a >= 100 || a === 0 ? 0 : 1);
}

/**
 * A duration with a unit chosen for it: `850 ns`, `12.4 µs`, `3.10 ms`,
 * `2.50 s`.
 *
 * @param ms Milliseconds.
 * @returns The text.
 */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const a = Math.abs(ms);
  if (a === 0) return "0 ms";
  if (a < 1e-3) return `${(ms * 1e6).toFixed(0)} ns`;
  if (a < 1) return `${(ms * 1e3).toFixed(a < 0.01 ? 2 : 1)} µs`;
  if (a < 1000) return `${ms.toFixed(a < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * A share as a percentage: `0.4567` → `45.7 %`.
 *
 * @param x From 0 to 1.
 * @returns The text.
 */
export function percent(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : "-";
}
