/**
 * The runner's command line: flags parsed by `parseArgs` from `node:util`
 * (strict: an unknown flag or a missing value is an error), then each value
 * checked here. Everything wrong ends in one {@linkcode UsageError} whose
 * message names the flag and what it accepts.
 *
 * The first positional argument is the workload; every other positional
 * argument, and everything after `--`, goes to the workload as `ctx.args`.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The command line was wrong: print the message and exit 2. */
export class UsageError extends Error {
  /**
   * Makes the error.
   *
   * @param message What was wrong, sentence case, no trailing period.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The runner's settings, as the command line gave them. */
export interface CliOptions {
  /** `--help`: print the usage and exit. */
  readonly help: boolean;
  /** The workload path or URL, or undefined for the default. */
  readonly workload: string | undefined;
  /** Arguments for the workload. */
  readonly workloadArgs: readonly string[];
  /** `--duration` in ms, or undefined: run until the workload finishes. */
  readonly duration: number | undefined;
  /** `--max-events`: tasks per pass. */
  readonly maxEvents: number | undefined;
  /** `--min-events`: lazy posts that wake a sleeping loop. */
  readonly minEvents: number | undefined;
  /** `--min-wait` in ms: after this long asleep any post wakes the loop. */
  readonly minWait: number | undefined;
  /** `--virtual-time`: the loop runs on a virtual clock. */
  readonly virtualTime: boolean;
  /** `--seed`: seed of `ctx.random()`. */
  readonly seed: number;
  /** `--json FILE`. */
  readonly json: string | undefined;
  /** `--html FILE`. */
  readonly html: string | undefined;
  /** `--quiet`: no progress, no report on the terminal. */
  readonly quiet: boolean;
}

/** The usage text `--help` prints. */
export const HELP =
  `Usage: deno task start [FLAGS] [WORKLOAD] [-- WORKLOAD ARGS]

Runs a workload module on a twloop loop, shows live progress and prints a
report. Without WORKLOAD it runs examples/sock_workload.ts, the seed's
scenario: 8 TCP clients stream to a receiver on 127.0.0.1 for 3 s.

WORKLOAD   a path (relative to where you ran the command) or a URL to a module
           whose default export takes the runner's context (cli/workload.ts)

Flags:
  -h, --help             show this help
  -d, --duration TIME    stop after TIME (e.g. 500ms, 3s, 2m; a bare number is
                         seconds), measured on the loop's clock
      --max-events N     most tasks run per pass (default 20)
      --min-events N     lazy posts that wake a sleeping loop (default 1)
      --min-wait TIME    after this long asleep any post wakes the loop
                         (bare number: ms; default never)
      --virtual-time     run the loop on a virtual clock: idle time jumps to
                         the next timer
      --seed N           seed for ctx.random() (integer, default 1)
      --json FILE        also write the report as JSON
      --html FILE        also write the report as one self-contained HTML page
                         (the start task may write only under reports/)
  -q, --quiet            no progress and no report on the terminal

Examples:
  deno task start                       the seed's scenario: 8 clients, 3 s
  deno task start examples/timer_storm.ts --virtual-time
  deno task start examples/ingest.ts -d 5s --html reports/ingest.html -- --workers 4

Exit status: 0 done, 1 the workload failed or could not be loaded,
2 bad command line, 130 interrupted (the report is still printed).
`;

const FLAGS = {
  help: { type: "boolean", short: "h" },
  duration: { type: "string", short: "d" },
  "max-events": { type: "string" },
  "min-events": { type: "string" },
  "min-wait": { type: "string" },
  "virtual-time": { type: "boolean" },
  seed: { type: "string" },
  json: { type: "string" },
  html: { type: "string" },
  quiet: { type: "boolean", short: "q" },
} as const;

/**
 * Parses and checks the runner's arguments.
 *
 * @param argv The arguments after the script name.
 * @returns The options.
 * @throws {UsageError} An unknown flag, a missing or bad value.
 */
export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: FLAGS,
      strict: true,
      allowPositionals: true,
      tokens: true,
    });
  } catch (error) {
    throw new UsageError(explainParseError(error));
  }
  const v = parsed.values;
  const positionals = parsed.tokens
    .filter((t) => t.kind === "positional")
    .map((t) => t.value);
  const terminator = parsed.tokens.find((t) => t.kind === "option-terminator");
  // The workload is the first positional before `--`; the rest are its own.
  const first = parsed.tokens.find((t) => t.kind === "positional");
  const hasWorkload = first !== undefined &&
    (terminator === undefined || first.index < terminator.index);
  return {
    help: v.help ?? false,
    workload: hasWorkload ? positionals[0] : undefined,
    workloadArgs: hasWorkload ? positionals.slice(1) : positionals,
    duration: optional(v.duration, (s) => parseTime("--duration", s, "s")),
    maxEvents: optional(v["max-events"], (s) => parseCount("--max-events", s)),
    minEvents: optional(v["min-events"], (s) => parseCount("--min-events", s)),
    minWait: optional(v["min-wait"], (s) => parseTime("--min-wait", s, "ms")),
    virtualTime: v["virtual-time"] ?? false,
    seed: optional(v.seed, parseSeed) ?? 1,
    json: optional(v.json, (s) => parseFile("--json", s)),
    html: optional(v.html, (s) => parseFile("--html", s)),
    quiet: v.quiet ?? false,
  };
}

function optional<T>(
  s: string | undefined,
  parse: (s: string) => T,
): T | undefined {
  return s === undefined ? undefined : parse(s);
}

/** Turns `node:util`'s parse errors into one line naming the flag. */
function explainParseError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const msg = String(e.message ?? error);
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'([^']+)'/.exec(msg)?.[1] ?? "";
    const near = closestFlag(flag);
    return `Unknown flag ${flag}${near ? `: did you mean --${near}?` : ""}` +
      " (see --help; workload flags go after --)";
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    // node:util names the flag as '-d, --duration <value>' or '--seed'.
    const flag = /--[a-z][a-z-]*/.exec(msg)?.[0] ?? "a flag";
    if (msg.includes("does not take")) return `Flag ${flag} takes no value`;
    if (msg.includes("ambiguous")) {
      return `Flag ${flag} needs a value: write a value that starts with - as ${flag}=VALUE (see --help)`;
    }
    return `Flag ${flag} needs a value (see --help)`;
  }
  return `Cannot parse the command line: ${msg.split("\n")[0]}`;
}

/** The known flag nearest to `flag` by edit distance, if close enough. */
function closestFlag(flag: string): string | undefined {
  const name = flag.replace(/^-+/, "").split("=")[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const known of Object.keys(FLAGS)) {
    const d = known.startsWith(name) && name.length >= 2
      ? 0
      : editDistance(name, known);
    if (d < bestD) [best, bestD] = [known, d];
  }
  return bestD <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j] + 1,
        row[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length];
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/**
 * Parses a time such as `500ms`, `3s`, `1.5m`, or a bare number in
 * `bareUnit`.
 *
 * @param flag The flag, for the message.
 * @param s The value.
 * @param bareUnit The unit of a bare number.
 * @returns Milliseconds, finite, > 0 and at most 2^31-1.
 * @throws {UsageError} Not such a time.
 */
export function parseTime(flag: string, s: string, bareUnit: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m)?\s*$/.exec(s);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] ?? bareUnit] : NaN;
  if (!(ms > 0) || ms > 2 ** 31 - 1) {
    throw new UsageError(
      `Bad value for ${flag}: expected a time above 0 such as 500ms, 3s or 2m (up to 24 days), got "${s}"`,
    );
  }
  return ms;
}

function parseCount(flag: string, s: string): number {
  const n = /^\s*\d+\s*$/.test(s) ? Number(s) : NaN;
  if (!(n >= 1 && n <= 2 ** 30)) {
    throw new UsageError(
      `Bad value for ${flag}: expected a whole number from 1 to 2^30, got "${s}"`,
    );
  }
  return n;
}

function parseSeed(s: string): number {
  const n = /^\s*\d+\s*$/.test(s) ? Number(s) : NaN;
  if (!(n >= 0 && n <= 0xffff_ffff)) {
    throw new UsageError(
      `Bad value for --seed: expected a whole number from 0 to 4294967295, got "${s}"`,
    );
  }
  return n;
}

function parseFile(flag: string, s: string): string {
  if (s.trim() === "" || s.startsWith("-")) {
    throw new UsageError(
      `Bad value for ${flag}: expected a file path, got "${s}"`,
    );
  }
  return s;
}
