/**
 * The `--html` page: one self-contained file (inline CSS and SVG, no
 * script, no external resource) that opens offline. It shows the report's
 * tables and three charts: queue depth over time, throughput over time,
 * and the latency histogram.
 *
 * @module
 */

import type { Report, SeriesPoint } from "./report.ts";
import { formatReport } from "./report_table.ts";
import { count, duration, rate } from "./format.ts";

const W = 720;
const H = 260;
const PAD = { l: 64, r: 16, t: 16, b: 40 };

/**
 * Escapes text for HTML.
 *
 * @param s The text.
 * @returns The escaped text.
 */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** "Nice" tick values from 0 to at least `max`, at least `minStep` apart. */
function ticks(max: number, n = 5, minStep = 0): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = Math.max(max / n, minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(v);
  return out;
}

interface Line {
  name: string;
  color: string;
  points: [number, number][];
  /** SVG dash pattern, so lines that coincide stay visible. */
  dash?: string;
}

function lineChart(
  title: string,
  lines: Line[],
  xLabel: string,
  fmtY: (v: number) => string,
): string {
  const xs = lines.flatMap((l) => l.points.map((p) => p[0]));
  const ys = lines.flatMap((l) => l.points.map((p) => p[1]));
  const xMax = Math.max(...xs, 1e-3);
  const yTicks = ticks(Math.max(...ys, 0));
  const yMax = yTicks[yTicks.length - 1];
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const px = (x: number) => PAD.l + (x / xMax) * iw;
  const py = (y: number) => PAD.t + ih - (y / yMax) * ih;
  const parts: string[] = [];
  for (const v of yTicks) {
    parts.push(
      `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${py(v)}" y2="${
        py(v)
      }" class="grid"/>`,
      `<text x="${PAD.l - 6}" y="${py(v) + 4}" text-anchor="end">${
        escapeHtml(fmtY(v))
      }</text>`,
    );
  }
  for (const v of ticks(xMax, 6)) {
    if (v > xMax * 1.001) continue;
    parts.push(
      `<text x="${px(v)}" y="${H - PAD.b + 16}" text-anchor="middle">${+v
        .toFixed(2)}</text>`,
    );
  }
  parts.push(
    `<text x="${PAD.l + iw / 2}" y="${H - 6}" text-anchor="middle">${
      escapeHtml(xLabel)
    }</text>`,
    `<line x1="${PAD.l}" x2="${PAD.l}" y1="${PAD.t}" y2="${
      PAD.t + ih
    }" class="axis"/>`,
    `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${PAD.t + ih}" y2="${
      PAD.t + ih
    }" class="axis"/>`,
  );
  lines.forEach((l, i) => {
    const pts = l.points.map(([x, y]) =>
      `${px(x).toFixed(1)},${py(y).toFixed(1)}`
    ).join(" ");
    parts.push(
      `<polyline points="${pts}" fill="none" stroke="${l.color}" stroke-width="1.6"${
        l.dash ? ` stroke-dasharray="${l.dash}"` : ""
      }/>`,
      `<rect x="${PAD.l + 10 + i * 150}" y="${
        PAD.t + 4
      }" width="10" height="10" fill="${l.color}"/>`,
      `<text x="${PAD.l + 24 + i * 150}" y="${PAD.t + 13}">${
        escapeHtml(l.name)
      }</text>`,
    );
  });
  return figure(title, parts);
}

function histogram(r: Report): string {
  const bins = r.latency.bins;
  if (bins.length === 0) {
    return `<figure><figcaption>Latency histogram</figcaption><p>No samples.</p></figure>`;
  }
  const yTicks = ticks(Math.max(...bins.map((b) => b.count)), 5, 1);
  const yMax = yTicks[yTicks.length - 1];
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = iw / bins.length;
  const py = (y: number) => PAD.t + ih - (y / yMax) * ih;
  const parts: string[] = [];
  for (const v of yTicks) {
    parts.push(
      `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${py(v)}" y2="${
        py(v)
      }" class="grid"/>`,
      `<text x="${PAD.l - 6}" y="${py(v) + 4}" text-anchor="end">${
        escapeHtml(count(v))
      }</text>`,
    );
  }
  const labelEvery = Math.max(1, Math.ceil(bins.length / 8));
  bins.forEach((b, i) => {
    const x = PAD.l + i * bw;
    const label = `${duration(b.fromMs)} – ${duration(b.toMs)}: ${
      count(b.count)
    }`;
    parts.push(
      `<rect x="${(x + 0.5).toFixed(1)}" y="${py(b.count).toFixed(1)}" width="${
        Math.max(1, bw - 1).toFixed(1)
      }" height="${
        (PAD.t + ih - py(b.count)).toFixed(1)
      }" fill="#4c78a8"><title>${escapeHtml(label)}</title></rect>`,
    );
    if (i % labelEvery === 0 && x + 48 <= W) { // room for the label
      parts.push(
        `<text x="${x.toFixed(1)}" y="${H - PAD.b + 16}">${
          escapeHtml(duration(b.fromMs) || "0")
        }</text>`,
      );
    }
  });
  parts.push(
    `<text x="${PAD.l + iw / 2}" y="${
      H - 6
    }" text-anchor="middle">latency (log scale, quarter-octave bins)</text>`,
    `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${PAD.t + ih}" y2="${
      PAD.t + ih
    }" class="axis"/>`,
  );
  const src = r.latency.source === "workload"
    ? "enqueue → run, recorded by the workload"
    : "queue() → run, runner probes";
  return figure(`Task latency histogram (${src})`, parts);
}

function figure(title: string, parts: string[]): string {
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>` +
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${
      escapeHtml(title)
    }">${parts.join("")}</svg></figure>`;
}

function pts(
  series: readonly SeriesPoint[],
  y: (p: SeriesPoint) => number,
): [number, number][] {
  return series.map((p) => [p.t, y(p)]);
}

/**
 * Renders the page.
 *
 * @param r The report.
 * @returns A complete HTML document.
 */
export function renderHtml(r: Report): string {
  const s = r.series;
  const charts = [
    lineChart(
      "Queue depth over time",
      [
        {
          name: "items queued",
          color: "#e45756",
          points: pts(s, (p) => p.depth),
        },
      ],
      "seconds (real time)",
      (v) => count(v),
    ),
    lineChart(
      "Throughput over time",
      [
        {
          name: "tasks/s",
          color: "#4c78a8",
          points: pts(s, (p) => p.taskRate),
        },
        {
          name: "messages/s",
          color: "#f58518",
          points: pts(s, (p) => p.messageRate),
          dash: "5 3",
        },
        {
          name: "wakes/s",
          color: "#54a24b",
          points: pts(s, (p) => p.wakeRate),
        },
      ],
      "seconds (real time)",
      rate,
    ),
    histogram(r),
  ];
  const title = `twloop run: ${r.workload.name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 760px; color: #222; }
h1 { font-size: 1.3em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
figure { margin: 1.5em 0; }
figcaption { font-weight: 600; margin-bottom: .3em; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
svg .grid { stroke: #e4e4e4; }
svg .axis { stroke: #888; }
.failed { color: #b00; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>Started ${escapeHtml(r.time.startedAt)}; ended: <b class="${
    r.ended === "failed" ? "failed" : ""
  }">${escapeHtml(r.ended)}</b>${
    r.error ? ` — ${escapeHtml(r.error)}` : ""
  }. Rates are per second of real time.</p>
${charts.join("\n")}
<h2>Report</h2>
<pre>${escapeHtml(formatReport(r))}</pre>
<p>Machine-readable numbers: run with <code>--json FILE</code> (format <code>${
    escapeHtml(r.format)
  }</code>).</p>
</body>
</html>
`;
}
