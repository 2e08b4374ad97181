/**
 * `deno task bench:node`: the Node column of the benchmarks for messages and
 * timers. Runs `bench/node_bench.mjs` (the scenarios, plain JavaScript over
 * the built package `npm/mod.js`) once under Deno and once under plain
 * `node`, each in its own process, and prints the two side by side with
 * each runtime's own baseline (postMessage, setTimeout). The task builds
 * `npm/` first.
 *
 * Both columns run the same compiled JavaScript, so the difference between
 * them is the runtime (V8 version, worker and timer implementations), not
 * the build. The twloop-vs-baseline verdicts of `deno task bench` use its
 * own harness (`post_ints.ts`, `timers.ts`); this table is for comparing
 * runtimes.
 *
 * Usage: `deno task bench:node [--quick]`.
 *
 * ## Permissions
 *
 * - `--allow-run=deno,node`: the two runs, each itself limited to reading
 *   `npm/` and `bench/` (Deno's flags; Node's permission model).
 *
 * @module
 */

import { alignTable } from "./stats.ts";

/** What `node_bench.mjs` prints. */
interface Results {
  runtime: string;
  messages: number;
  timers: number;
  reps: number;
  portPerSecond: number;
  postPerSecond: number;
  setTimerMs: number;
  setTimeoutMs: number;
}

const SCRIPT = "bench/node_bench.mjs";

async function run(cmd: string, args: string[]): Promise<Results> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    throw new Error(`Cannot run the bench: ${cmd} exited with ${out.code}`);
  }
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Results;
}

const mps = (x: number) => (x / 1e6).toFixed(2);
const ms = (x: number) => x.toFixed(0);

/**
 * The table for both runtimes.
 *
 * @param deno Results under Deno.
 * @param node Results under Node.
 * @returns Printable lines.
 */
export function render(deno: Results, node: Results): string[] {
  const m = deno.messages.toLocaleString("en-US");
  const t = deno.timers.toLocaleString("en-US");
  const rows = [
    ["scenario", deno.runtime, node.runtime],
    [
      `${m} ints, twloop port (M msg/s)`,
      mps(deno.portPerSecond),
      mps(node.portPerSecond),
    ],
    [
      `${m} ints, host postMessage (M msg/s)`,
      mps(deno.postPerSecond),
      mps(node.postPerSecond),
    ],
    [
      "  twloop / postMessage",
      (deno.portPerSecond / deno.postPerSecond).toFixed(1) + "x",
      (node.portPerSecond / node.postPerSecond).toFixed(1) + "x",
    ],
    [
      `${t} timers, twloop setTimer (ms)`,
      ms(deno.setTimerMs),
      ms(node.setTimerMs),
    ],
    [
      `${t} timers, host setTimeout (ms)`,
      ms(deno.setTimeoutMs),
      ms(node.setTimeoutMs),
    ],
    [
      "  setTimeout / twloop",
      (deno.setTimeoutMs / deno.setTimerMs).toFixed(1) + "x",
      (node.setTimeoutMs / node.setTimerMs).toFixed(1) + "x",
    ],
  ];
  return [
    "Node column: messages and timers (bench/node_bench.mjs on the built package)",
    `median of ${deno.reps} runs after a warm-up; timers: delays 0..10 ms, ` +
    "insert to last callback; ints: start signal to last received",
    "",
    ...alignTable(rows),
  ];
}

if (import.meta.main) {
  const extra = Deno.args.includes("--quick") ? ["--quick"] : [];
  const deno = await run("deno", [
    "run",
    "--no-prompt",
    "--allow-read=npm,bench",
    SCRIPT,
    ...extra,
  ]);
  const node = await run("node", [
    // Node's permission model, as Deno's flags above: read npm/ and bench/.
    "--experimental-permission",
    "--allow-fs-read=npm/*",
    "--allow-fs-read=bench/*",
    "--allow-worker",
    "--disable-warning=ExperimentalWarning",
    "--disable-warning=SecurityWarning",
    SCRIPT,
    ...extra,
  ]);
  console.log(render(deno, node).join("\n"));
}
