/**
 * Small self-contained SVG charts for `bench/results/`: hand-written markup,
 * no dependencies, no scripts, no external fonts, so a file opens the same in
 * a browser, an editor preview or a repository viewer. Two kinds:
 *
 * - {@linkcode lineChartSvg}: series of (x, y) points, optionally with
 *   min–max whiskers, on linear or logarithmic axes;
 * - {@linkcode barChartSvg}: grouped bars over named categories.
 *
 * On a logarithmic axis a value of 0 or less cannot be placed, and a line
 * chart may set a floor below which values mean nothing (a clock's
 * resolution): such values are drawn at the floor with an open marker, and
 * their tooltip says so.
 *
 * @module
 */

/** One point; `lo` and `hi` draw a whisker (for example min and max). */
export interface Point {
  /** Horizontal value. */
  x: number;
  /** Vertical value (for example a median). */
  y: number;
  /** Bottom of the whisker. */
  lo?: number;
  /** Top of the whisker. */
  hi?: number;
}

/** A line of a line chart. */
export interface LineSeries {
  /** Legend text. */
  name: string;
  /** Points, drawn in order. */
  points: Point[];
  /** CSS color; a palette color when left out. */
  color?: string;
  /** Draw the line dashed. */
  dashed?: boolean;
}

/** What a chart says around its data. */
export interface ChartText {
  /** Heading. */
  title: string;
  /** Smaller line under the heading. */
  subtitle?: string;
  /** Horizontal axis label. */
  xLabel: string;
  /** Vertical axis label. */
  yLabel: string;
}

/** A line chart. */
export interface LineChart extends ChartText {
  /** Logarithmic horizontal axis (ticks at the data's x values). */
  xLog?: boolean;
  /** Logarithmic vertical axis (ticks at powers of ten). */
  yLog?: boolean;
  /**
   * On a logarithmic vertical axis, the smallest value that means anything
   * (for example a clock's resolution): lower values are drawn at it, with
   * an open marker. Default: anything above 0.
   */
  yFloor?: number;
  /** The lines. */
  series: LineSeries[];
}

/** A group member of a bar chart: one value per category. */
export interface BarSeries {
  /** Legend text. */
  name: string;
  /** One value per category. */
  values: number[];
  /** Whisker bottoms, one per category. */
  lo?: number[];
  /** Whisker tops, one per category. */
  hi?: number[];
  /** CSS color; a palette color when left out. */
  color?: string;
}

/** A grouped bar chart. */
export interface BarChart extends ChartText {
  /** Category names along the horizontal axis. */
  categories: string[];
  /** The bars of each category, side by side. */
  series: BarSeries[];
  /** Logarithmic vertical axis. */
  yLog?: boolean;
}

const WIDTH = 860;
const HEIGHT = 470;
const LEFT = 80;
const TOP = 70;
const PLOT_W = 500;
const PLOT_H = 320;
const RIGHT = LEFT + PLOT_W;
const BOTTOM = TOP + PLOT_H;
const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#17becf",
  "#7f7f7f",
];

/** An axis: maps values to pixels and lists its ticks. */
interface Axis {
  map: (v: number) => number;
  ticks: number[];
  /** Smallest value the axis shows as itself (log axes clamp below it). */
  floor: number;
  log: boolean;
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;")
    .replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * Formats an axis or tooltip number compactly: round thousands from 10,000
 * and anything from 100,000 with k or M, other integers in full (65536 stays
 * 65536), fractions to 3 significant digits.
 *
 * @param v The number.
 * @returns The text.
 */
export function compact(v: number): string {
  const trim = (x: number) => String(Number(x.toPrecision(3)));
  const a = Math.abs(v);
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e5 || (a >= 1e4 && v % 1000 === 0)) return `${trim(v / 1e3)}k`;
  return Number.isInteger(v) ? String(v) : trim(v);
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function logAxis(
  values: number[],
  from: number,
  to: number,
  tickValues?: number[],
  minValue = 0,
): Axis {
  const finite = values.filter(Number.isFinite);
  const pos = finite.filter((v) => v > 0 && v >= minValue);
  // Values at or below the floor are drawn at it, so it must be on the axis.
  if (minValue > 0 && pos.length < finite.length) pos.push(minValue);
  let lo = pos.length ? 10 ** Math.floor(Math.log10(Math.min(...pos))) : 1;
  let hi = pos.length ? 10 ** Math.ceil(Math.log10(Math.max(...pos))) : 10;
  if (tickValues?.length) {
    // Ticks at the data's own values, with some room at both ends.
    lo = Math.min(...tickValues, ...pos) / 1.5;
    hi = Math.max(...tickValues, ...pos) * 1.5;
  } else if (minValue > 0 && lo < minValue) {
    lo = minValue / 1.5; // start just under the floor, not a decade under
  }
  if (hi <= lo) hi = lo * 10;
  const floor = minValue > 0 ? minValue : lo;
  const l0 = Math.log10(lo);
  const span = Math.log10(hi) - l0;
  const map = (v: number) =>
    from + ((Math.log10(Math.max(v, floor)) - l0) / span) * (to - from);
  let ticks = tickValues ?? [];
  if (!tickValues) {
    const first = Math.ceil(l0 - 1e-9);
    const last = Math.floor(Math.log10(hi) + 1e-9);
    const step = Math.max(1, Math.ceil((last - first) / 8));
    for (let d = first; d <= last; d += step) ticks.push(10 ** d);
  }
  ticks = ticks.filter((t) => t >= floor && t <= hi);
  return { map, ticks, floor, log: true };
}

function linearAxis(values: number[], from: number, to: number): Axis {
  const finite = values.filter(Number.isFinite);
  let lo = Math.min(0, ...finite);
  let hi = Math.max(0, ...finite);
  if (hi === lo) hi = lo + 1;
  const step = niceStep((hi - lo) / 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const map = (v: number) => from + ((v - lo) / (hi - lo)) * (to - from);
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return { map, ticks, floor: lo, log: false };
}

function frame(c: ChartText, x: Axis | string[], y: Axis): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
    `viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(c.title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${LEFT}" y="28" font-size="16" font-weight="bold">${
      esc(c.title)
    }</text>`,
  ];
  if (c.subtitle) {
    out.push(`<text x="${LEFT}" y="48" fill="#555">${esc(c.subtitle)}</text>`);
  }
  for (const t of y.ticks) {
    const py = y.map(t).toFixed(1);
    out.push(
      `<line x1="${LEFT}" x2="${RIGHT}" y1="${py}" y2="${py}" stroke="#e4e4e4"/>`,
      `<text x="${
        LEFT - 6
      }" y="${py}" text-anchor="end" dominant-baseline="middle">${
        esc(compact(t))
      }</text>`,
    );
  }
  if (Array.isArray(x)) {
    const band = PLOT_W / x.length;
    x.forEach((name, i) => {
      out.push(
        `<text x="${(LEFT + band * (i + 0.5)).toFixed(1)}" y="${
          BOTTOM + 18
        }" ` +
          `text-anchor="middle">${esc(name)}</text>`,
      );
    });
  } else {
    for (const t of x.ticks) {
      const px = x.map(t).toFixed(1);
      out.push(
        `<line x1="${px}" x2="${px}" y1="${TOP}" y2="${BOTTOM}" stroke="#f0f0f0"/>`,
        `<text x="${px}" y="${BOTTOM + 18}" text-anchor="middle">${
          esc(compact(t))
        }</text>`,
      );
    }
  }
  out.push(
    `<path d="M${LEFT} ${TOP}V${BOTTOM}H${RIGHT}" fill="none" stroke="#333"/>`,
    `<text x="${LEFT + PLOT_W / 2}" y="${BOTTOM + 42}" text-anchor="middle">${
      esc(c.xLabel)
    }</text>`,
    `<text transform="translate(22 ${TOP + PLOT_H / 2}) rotate(-90)" ` +
      `text-anchor="middle">${esc(c.yLabel)}</text>`,
  );
  return out;
}

function legend(
  items: { name: string; color: string; dashed: boolean; bar: boolean }[],
): string[] {
  const out: string[] = [];
  items.forEach((it, i) => {
    const y = TOP + 8 + i * 20;
    const x = RIGHT + 24;
    out.push(
      it.bar
        ? `<rect x="${x}" y="${
          y - 6
        }" width="22" height="12" fill="${it.color}"/>`
        : `<line x1="${x}" x2="${
          x + 22
        }" y1="${y}" y2="${y}" stroke="${it.color}" ` +
          `stroke-width="2"${it.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      `<text x="${x + 30}" y="${y}" dominant-baseline="middle">${
        esc(it.name)
      }</text>`,
    );
  });
  return out;
}

function whisker(
  px: number,
  y: Axis,
  lo?: number,
  hi?: number,
  color = "#333",
): string {
  if (lo === undefined || hi === undefined) return "";
  const a = y.map(lo).toFixed(1);
  const b = y.map(hi).toFixed(1);
  const l = (px - 4).toFixed(1);
  const r = (px + 4).toFixed(1);
  const x = px.toFixed(1);
  return `<path d="M${x} ${a}V${b}M${l} ${a}H${r}M${l} ${b}H${r}" stroke="${color}" ` +
    `stroke-width="1" fill="none" opacity="0.7"/>`;
}

function tip(
  name: string,
  x: string,
  p: { y: number; lo?: number; hi?: number },
  y: Axis,
) {
  const range = p.lo !== undefined && p.hi !== undefined
    ? ` (${compact(p.lo)}–${compact(p.hi)})`
    : "";
  const clamped = y.log && (p.y <= 0 || p.y < y.floor)
    ? `, below ${compact(y.floor)}: drawn at ${compact(y.floor)}`
    : "";
  return `<title>${
    esc(`${name}, ${x}: ${compact(p.y)}${range}${clamped}`)
  }</title>`;
}

/**
 * Renders a line chart.
 *
 * @param c The chart.
 * @returns The SVG document.
 */
export function lineChartSvg(c: LineChart): string {
  const pts = c.series.flatMap((s) => s.points);
  const ys = pts.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]);
  const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  const x = c.xLog
    ? logAxis(xs, LEFT, RIGHT, xs.length <= 12 ? xs : undefined)
    : linearAxis(xs, LEFT, RIGHT);
  const y = c.yLog
    ? logAxis(ys, BOTTOM, TOP, undefined, c.yFloor)
    : linearAxis(ys, BOTTOM, TOP);
  const out = frame(c, x, y);
  c.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const d = s.points.map((p, j) =>
      `${j === 0 ? "M" : "L"}${x.map(p.x).toFixed(1)} ${y.map(p.y).toFixed(1)}`
    ).join("");
    out.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"` +
        `${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
    );
    for (const p of s.points) {
      const px = x.map(p.x);
      out.push(whisker(px, y, p.lo, p.hi, color));
      const open = y.log && (p.y <= 0 || p.y < y.floor);
      out.push(
        `<circle cx="${px.toFixed(1)}" cy="${y.map(p.y).toFixed(1)}" r="3.5" ` +
          `fill="${open ? "#fff" : color}" stroke="${color}">` +
          `${tip(s.name, compact(p.x), p, y)}</circle>`,
      );
    }
  });
  out.push(...legend(c.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length],
    dashed: s.dashed ?? false,
    bar: false,
  }))));
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/**
 * Renders a grouped bar chart.
 *
 * @param c The chart.
 * @returns The SVG document.
 */
export function barChartSvg(c: BarChart): string {
  const ys = c.series.flatMap((
    s,
  ) => [...s.values, ...(s.lo ?? []), ...(s.hi ?? [])]);
  const y = c.yLog ? logAxis(ys, BOTTOM, TOP) : linearAxis(ys, BOTTOM, TOP);
  const out = frame(c, c.categories, y);
  const band = PLOT_W / c.categories.length;
  const barW = (band * 0.7) / Math.max(1, c.series.length);
  const base = y.map(y.log ? y.floor : Math.max(0, y.floor));
  c.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    s.values.forEach((v, j) => {
      const x0 = LEFT + band * j + band * 0.15 + barW * i;
      const top = y.map(v);
      const p = { y: v, lo: s.lo?.[j], hi: s.hi?.[j] };
      out.push(
        `<rect x="${x0.toFixed(1)}" y="${Math.min(top, base).toFixed(1)}" ` +
          `width="${(barW - 2).toFixed(1)}" height="${
            Math.abs(base - top).toFixed(1)
          }" ` +
          `fill="${color}">${tip(s.name, c.categories[j], p, y)}</rect>`,
        whisker(x0 + (barW - 2) / 2, y, p.lo, p.hi),
      );
    });
  });
  out.push(...legend(c.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length],
    dashed: false,
    bar: true,
  }))));
  out.push("</svg>");
  return out.join("\n") + "\n";
}

const RESULTS_DIR = new URL("./results/", import.meta.url);

/**
 * Writes a chart into `bench/results/`.
 *
 * @param fileName File name, for example `"bursty_first_item.svg"`.
 * @param svg The document.
 * @returns The path written, relative to the repository root.
 */
export async function writeChart(
  fileName: string,
  svg: string,
): Promise<string> {
  await Deno.mkdir(RESULTS_DIR, { recursive: true });
  await Deno.writeTextFile(new URL(fileName, RESULTS_DIR), svg);
  return `bench/results/${fileName}`;
}
