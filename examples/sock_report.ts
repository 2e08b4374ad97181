/**
 * The tables `sock_test.ts` prints: one row per run, then per N and queue
 * the medians over the rounds beside the seed's figures. What each column
 * means is in `sock_test.ts`.
 *
 * @module
 */

import type { QueueKind } from "./sock_queues.ts";

/** What one run of `sock_test.ts` measured (times in ms). */
export interface RunResult {
  /** Clients (connections). */
  clients: number;
  queue: QueueKind;
  wallMs: number;
  /** Bytes received in the window. */
  bytes: number;
  /** Bytes received in all. */
  total: number;
  sent: number;
  completions: number;
  /** Worker: in the sink's publish (the queue's add). */
  pushMs: number;
  /** Worker: in the sink's wake. */
  wakeMs: number;
  /** Handler calls timed in the window. */
  timed: number;
  /** Notifies the loop received. */
  notifies: number;
  handlerMs: number;
  busyMs: number;
  idleMs: number;
  cpuMs: number;
  errors: number;
}

/** The seed's figures (kernel, perf): Gb/s and task_work add+run share. */
const SEED: Record<number, Record<"mpscq" | "llist", [number, number]>> = {
  8: { llist: [46, 2.64], mpscq: [53, 2.11] },
  1024: { llist: [24, 3.5], mpscq: [26, 1.32] },
};

function pct(part: number, whole: number): string {
  return `${(100 * part / whole).toFixed(2)}%`;
}

function median(xs: number[]): number {
  const s = xs.toSorted((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function tableRow(cells: (string | number)[]): string {
  return `| ${cells.join(" | ")} |`;
}

/** One run's figures for the summary (shares in % of the window). */
export interface Shares {
  /** Clients. */
  clients: number;
  /** The queue. */
  queue: QueueKind;
  /** Gb/s received. */
  gbps: number;
  /** Worker's push share. */
  push: number;
  /** Loop's run share. */
  run: number;
}

/**
 * Prints the title line and the per-run table's head.
 *
 * @param title The first line.
 */
export function printHeader(title: string): void {
  console.log(title);
  console.log(
    "| clients | queue | Gb/s | completions/s | add: push | add: wake | run (loop) | push+run | handlers | loop idle | wakes/s | receiver CPU | bytes sent = received |",
  );
  console.log(
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  );
}

/**
 * Prints one run's row.
 *
 * @param r The run.
 * @param clockMs Cost of one clock read, ms.
 * @returns Its figures for the summary.
 */
export function printRow(r: RunResult, clockMs: number): Shares {
  const w = r.wallMs;
  // Each timed call adds two clock reads: one inside the handler's
  // interval, one outside it (see `sock_test.ts`).
  const clock = r.timed * clockMs;
  const handlerMs = Math.max(0, r.handlerMs - clock);
  const runMs = Math.max(0, r.busyMs - r.handlerMs - clock);
  const s = w / 1000;
  const gbps = r.bytes * 8 / s / 1e9;
  const ok = r.sent === r.total;
  console.log(tableRow([
    r.clients,
    r.queue,
    gbps.toFixed(2),
    Math.round(r.completions / s).toLocaleString("en-US"),
    pct(r.pushMs, w),
    pct(r.wakeMs, w),
    pct(runMs, w),
    pct(r.pushMs + runMs, w),
    pct(handlerMs, w),
    pct(r.idleMs, w),
    Math.round(r.notifies / s).toLocaleString("en-US"),
    `${(r.cpuMs / w).toFixed(2)} cores`,
    (ok
      ? `yes (${(r.total / 2 ** 20).toFixed(0)} MiB)`
      : `NO: sent ${r.sent}, received ${r.total}`) +
    (r.errors > 0 ? `, ${r.errors} ended with an error` : ""),
  ]));
  return {
    clients: r.clients,
    queue: r.queue,
    gbps,
    push: 100 * r.pushMs / w,
    run: 100 * runMs / w,
  };
}

/** Collects the runs' figures and prints their medians. */
export class Summary {
  readonly #runs: Shares[] = [];

  /**
   * Adds one run.
   *
   * @param shares From {@linkcode printRow}.
   */
  add(shares: Shares): void {
    this.#runs.push(shares);
  }

  /**
   * Prints the medians per N and queue, beside the seed's figures.
   *
   * @param counts The Ns, in order.
   * @param queues The queues, in order.
   * @param rounds Rounds run.
   */
  print(counts: number[], queues: QueueKind[], rounds: number): void {
    console.log(
      `\nMedians over ${rounds} round(s), beside the seed (kernel io_uring, ` +
        "perf shares of task_work add+run on its machine; ours: % of one " +
        "core's wall time in the window):\n",
    );
    console.log(
      "| clients | queue | Gb/s | add: push | run (loop) | push+run | seed queue | seed Gb/s | seed add+run |",
    );
    console.log(
      "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    );
    for (const n of counts) {
      for (const q of queues) {
        const rows = this.#runs.filter((r) => r.clients === n && r.queue === q);
        const seedQueue = q === "treiber" ? "llist" : "mpscq";
        const seed = SEED[n]?.[seedQueue];
        console.log(tableRow([
          n,
          q,
          median(rows.map((r) => r.gbps)).toFixed(2),
          `${median(rows.map((r) => r.push)).toFixed(2)}%`,
          `${median(rows.map((r) => r.run)).toFixed(2)}%`,
          `${median(rows.map((r) => r.push + r.run)).toFixed(2)}%`,
          seed ? seedQueue : "",
          seed ? `~${seed[0]}` : "",
          seed ? `${seed[1].toFixed(2)}%` : "",
        ]));
      }
    }
  }
}
