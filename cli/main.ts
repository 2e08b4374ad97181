/**
 * `deno task start [FLAGS] [WORKLOAD] [-- ARGS]`: runs a workload module on
 * a twloop loop with live progress, then prints a report (and writes it as
 * JSON and HTML on request). `--help` lists the flags; `cli/workload.ts`
 * documents the workload contract.
 *
 * One module per concept: `args.ts` (command line), `load.ts` (finding
 * and importing the workload), `run.ts` (driving the loop), `sampler.ts` and
 * `progress.ts` (live status), `latency.ts` (histogram), `report.ts`
 * (the numbers), `report_table.ts` (the terminal table), `html.ts` (the
 * page), `format.ts` (number formats), `random.ts` (seeded `random()`),
 * `workload.ts` (the contract).
 *
 * Exit status: 0 done (finished or stopped at `--duration`), 1 the
 * workload failed or could not be loaded, 2 a bad command line or an
 * output file that cannot be written, 130 interrupted by Ctrl-C (after the
 * report).
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { HELP, parseCli, UsageError } from "./args.ts";
import { renderHtml } from "./html.ts";
import { LoadError, loadWorkload, workloadUrl } from "./load.ts";
import { Progress } from "./progress.ts";
import { buildReport, describe } from "./report.ts";
import { formatReport } from "./report_table.ts";
import { runWorkload } from "./run.ts";

/** The workload run when none is given (see README, "Running workloads"). */
export const DEFAULT_WORKLOAD = new URL(
  "../examples/sock_workload.ts",
  import.meta.url,
);

/** Where the runner's output goes; {@linkcode denoIo} is the real one. */
export interface MainIo {
  /** Writes to standard output, as is. */
  readonly out: (text: string) => void;
  /** Writes to standard error, as is. */
  readonly err: (text: string) => void;
  /** Standard output is a terminal. */
  readonly terminal: boolean;
  /** Terminal width. */
  readonly columns?: number;
  /** Directory relative paths are resolved against. */
  readonly cwd: string;
  /** Subscribes to Ctrl-C; returns the unsubscribe function. */
  readonly interrupts?: (onInterrupt: () => void) => () => void;
  /** Real ms between samples (tests shorten it). */
  readonly sampleMs?: number;
  /** Real ms between latency probes (tests lengthen it). */
  readonly probeMs?: number;
  /** Real ms of grace after an abort (tests shorten it). */
  readonly graceMs?: number;
}

/**
 * Runs the command line.
 *
 * @param argv The arguments after the script name.
 * @param io Output and environment.
 * @returns The exit status.
 */
export async function main(
  argv: readonly string[],
  io: MainIo,
): Promise<number> {
  let opts;
  try {
    opts = parseCli(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`error: ${error.message}\n`);
    return 2;
  }
  if (opts.help) {
    io.out(HELP);
    return 0;
  }
  const outputs: { flag: string; path: string }[] = [];
  for (const [flag, file] of [["--json", opts.json], ["--html", opts.html]]) {
    if (file === undefined) continue;
    const path = resolve(io.cwd, file!);
    const problem = await cannotWrite(path);
    if (problem) {
      io.err(`error: Cannot write ${flag} file ${file}: ${problem}\n`);
      return 2;
    }
    outputs.push({ flag: flag!, path });
  }

  const spec = opts.workload;
  const name = spec ?? `${displayPath(DEFAULT_WORKLOAD)} (default)`;
  let url = DEFAULT_WORKLOAD;
  let loaded;
  try {
    if (spec !== undefined) url = workloadUrl(spec, io.cwd);
    loaded = await loadWorkload(spec ?? displayPath(url), url);
  } catch (error) {
    if (!(error instanceof LoadError)) throw error;
    io.err(`error: ${error.message}\n`);
    return 1;
  }

  const progress = new Progress({
    write: io.out,
    terminal: io.terminal,
    columns: io.columns,
    quiet: opts.quiet,
  });
  if (!opts.quiet) {
    io.out(
      `twloop: running ${name}${
        opts.duration === undefined ? "" : ` for ${opts.duration / 1000} s`
      }${opts.virtualTime ? " on virtual time" : ""} (Ctrl-C stops)\n`,
    );
  }
  const startedAt = new Date();
  const outcome = await runWorkload({
    workload: loaded.run,
    args: opts.workloadArgs,
    duration: opts.duration,
    maxEvents: opts.maxEvents,
    minEvents: opts.minEvents,
    minWait: opts.minWait,
    virtualTime: opts.virtualTime,
    seed: opts.seed,
    interrupts: io.interrupts,
    onSample: (s) => progress.update(s),
    log: (line) => progress.log(line),
    sampleMs: io.sampleMs,
    probeMs: io.probeMs,
    graceMs: io.graceMs,
  });
  progress.clear();
  const report = buildReport(outcome, {
    name,
    url: url.href,
    args: opts.workloadArgs,
    durationMs: opts.duration,
    virtualTime: opts.virtualTime,
    seed: opts.seed,
    startedAt,
  });
  if (!opts.quiet) io.out("\n" + formatReport(report));

  let status = outcome.ended === "failed"
    ? 1
    : outcome.ended === "interrupted"
    ? 130
    : 0;
  for (const { flag, path } of outputs) {
    try {
      await Deno.mkdir(dirname(path), { recursive: true });
      await Deno.writeTextFile(
        path,
        flag === "--json"
          ? JSON.stringify(report, null, 2) + "\n"
          : renderHtml(report),
      );
      if (!opts.quiet) io.out(`wrote ${flag.slice(2)} report to ${path}\n`);
    } catch (error) {
      io.err(`error: Cannot write ${flag} file ${path}: ${describe(error)}\n`);
      status ||= 1;
    }
  }
  if (outcome.ended === "failed") {
    io.err(failureText(outcome.error, report.loop.pending, outcome.errors));
  } else if (outcome.errors > 0) {
    io.err(
      `note: after Ctrl-C the workload stopped with ${
        describe(outcome.error)
      }; ${report.loop.pending} item(s) were left queued\n`,
    );
  } else if (!outcome.workloadSettled && !opts.quiet) {
    io.err(
      "note: the workload did not finish within the grace period after " +
        `${outcome.ended === "duration" ? "--duration" : "Ctrl-C"}; ` +
        `${report.loop.pending} item(s) were left queued\n`,
    );
  }
  return status;
}

function failureText(error: unknown, pending: number, errors: number): string {
  const frames = error instanceof Error && error.stack
    ? error.stack.split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 6)
    : [];
  const more = errors > 1 ? `; ${errors - 1} more error(s) after it` : "";
  return `error: Workload failed: ${describe(error)}\n` +
    frames.map((f) => `  ${f.trim()}\n`).join("") +
    `  (the loop was halted with ${pending} item(s) still queued${more})\n`;
}

/** Why `path` cannot be written, or undefined when it can. */
async function cannotWrite(path: string): Promise<string | undefined> {
  const write = await Deno.permissions.query({ name: "write", path });
  if (write.state === "granted") return undefined;
  return "no write access. The start task may write only under reports/ " +
    "(for example --json reports/run.json); elsewhere, run " +
    `deno run --allow-write=${dirname(path)} with the task's other flags`;
}

function displayPath(url: URL): string {
  const root = new URL("../", import.meta.url).href;
  return url.href.startsWith(root) ? url.href.slice(root.length) : url.href;
}

/**
 * The real process: stdout, stderr, `INIT_CWD` (set by `deno task` to the
 * directory the command was typed in) and SIGINT.
 *
 * @returns The io for {@linkcode main}.
 */
export function denoIo(): MainIo {
  const enc = new TextEncoder();
  const writer = (f: { writeSync(b: Uint8Array): number }) => (s: string) => {
    let b = enc.encode(s);
    while (b.length > 0) b = b.subarray(f.writeSync(b));
  };
  let cwd = Deno.cwd();
  try {
    cwd = Deno.env.get("INIT_CWD") ?? cwd;
  } catch { /* no env access: resolve against the current directory */ }
  let columns: number | undefined;
  try {
    columns = Deno.consoleSize().columns;
  } catch { /* not a terminal */ }
  return {
    out: writer(Deno.stdout),
    err: writer(Deno.stderr),
    terminal: Deno.stdout.isTerminal(),
    columns,
    cwd,
    interrupts(onInterrupt) {
      Deno.addSignalListener("SIGINT", onInterrupt);
      return () => Deno.removeSignalListener("SIGINT", onInterrupt);
    },
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args, denoIo()));
