/**
 * The report as a terminal table: sections (run, throughput, task latency,
 * loop, tasks by source, workload, warnings) of `name  value  note` rows,
 * aligned. The HTML page embeds the same text.
 *
 * @module
 */

import type { Ended } from "./run.ts";
import type { Report } from "./report.ts";
import { count, duration, percent, rate } from "./format.ts";

const ENDED_TEXT: Record<Ended, string> = {
  finished: "finished",
  duration: "stopped at --duration",
  interrupted: "interrupted (Ctrl-C)",
  failed: "FAILED",
};

/**
 * The report as a terminal table.
 *
 * @param r The report.
 * @returns Lines ending in a newline.
 */
export function formatReport(r: Report): string {
  const rows: [string, string, string?][] = [];
  const section = (title: string) => rows.push([title, ""]);
  const row = (k: string, v: string, note?: string) =>
    rows.push([`  ${k}`, v, note]);
  const t = r.time;
  const clock = r.settings.virtualTime
    ? `, loop clock ${duration(t.clockMs)} (virtual)`
    : "";
  const l = r.latency;
  const lp = r.loop;

  section("run");
  row("workload", r.workload.name, r.workload.args.join(" ") || undefined);
  row("ended", ENDED_TEXT[r.ended], `after ${duration(t.realMs)}${clock}`);
  if (r.error !== null) {
    row(
      "error",
      r.error,
      r.errors > 1 ? `and ${r.errors - 1} more` : undefined,
    );
  }
  row(
    "settings",
    `maxEvents ${r.settings.maxEvents}, minEvents ${r.settings.minEvents}, ` +
      `minWait ${
        r.settings.minWaitMs === null ? "none" : duration(r.settings.minWaitMs)
      }, seed ${r.settings.seed}`,
  );
  section("throughput");
  row(
    "tasks run",
    count(r.throughput.tasks),
    `${rate(r.throughput.tasksPerSec)}/s`,
  );
  row(
    "messages",
    count(r.throughput.messages),
    `${rate(r.throughput.messagesPerSec)}/s (items from other threads)`,
  );
  section(
    l.source === "workload"
      ? "task latency, enqueue -> run (recorded by the workload)"
      : "task latency, queue() -> run (runner probes, 100/s)",
  );
  row(
    "samples",
    count(l.count),
    l.negative ? `${l.negative} below 0 (clock skew), counted as 0` : undefined,
  );
  row(
    "p50 / p90 / p99",
    `${duration(l.p50Ms)} / ${duration(l.p90Ms)} / ${duration(l.p99Ms)}`,
  );
  row("mean / max", `${duration(l.meanMs)} / ${duration(l.maxMs)}`);
  if (l.source === "workload" && r.probeLatency.count > 0) {
    const p = r.probeLatency;
    row(
      "queue() probes",
      `p50 ${duration(p.p50Ms)}, p99 ${duration(p.p99Ms)}, max ${
        duration(p.maxMs)
      }`,
      `${count(p.count)} samples`,
    );
  }
  section("loop");
  row(
    "utilization",
    percent(lp.utilization),
    `${duration(lp.runMs - lp.idleMs)} busy of ${duration(lp.runMs)}`,
  );
  row("passes", count(lp.passes));
  row("armings / sleeps", `${count(lp.armings)} / ${count(lp.sleeps)}`);
  row("wakes", count(lp.wakes), `${lp.wakesPerArming.toFixed(2)} per arming`);
  row("notifies sent", count(lp.notifies), "by producers");
  row("busy encounters", count(lp.busy), "passes that met a push mid-link");
  row("stalls", count(lp.stalls), "watchdog reports");
  row("peak queue depth", count(lp.peakDepth));
  row(
    "pending at end",
    count(lp.pending),
    lp.pending > 0
      ? "items left queued when the loop was halted"
      : r.drained
      ? "the loop drained"
      : undefined,
  );
  row("timers pending", count(lp.pendingTimers));
  section("tasks by source");
  const s = r.tasksBySource;
  row(
    "task / timer",
    `${count(s.task)} / ${count(s.timer)}`,
    "queue() tasks include the runner's probes",
  );
  row(
    "entry / host",
    `${count(s.entry)} / ${count(s.host)}`,
    `${r.workers} worker(s) from ctx.spawn`,
  );
  const result = r.workload.result;
  if (result && Object.keys(result).length > 0) {
    section("workload");
    for (const [k, v] of Object.entries(result)) {
      row(k, typeof v === "number" ? formatNumber(v) : String(v));
    }
  }
  if (r.warnings.length > 0) {
    section("warnings");
    for (const w of r.warnings.slice(0, 5)) row(w.kind, w.message);
    if (r.warnings.length > 5) row("...", `${r.warnings.length - 5} more`);
  }
  const w0 = Math.max(...rows.filter((x) => x[1]).map((x) => x[0].length));
  const w1 = Math.max(...rows.filter((x) => x[2]).map((x) => x[1].length), 0);
  return rows.map(([k, v, note]) => {
    if (v === "" && note === undefined) return `${k}\n`;
    const line = `${k.padEnd(w0)}  ${note ? v.padEnd(w1) + "  " + note : v}`;
    return line.trimEnd() + "\n";
  }).join("");
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? count(v) : v.toPrecision(4);
}
