/**
 * Runs chosen sections of `deno task bench` on their own, without the
 * stream table and the other sections, and prints their tables:
 *
 * ```sh
 * deno run --allow-read=mod.ts,runtime,bench --allow-write=bench/results \
 *   bench/run_sections.ts --only=timers,dispatch,payloads [--quick] \
 *   [--reps=N] [--json]
 * ```
 *
 * Each section still measures against its own baseline in this run, with
 * the same settings `bench/main.ts` gives it (reps 5 unless `--reps`).
 * `--json` also writes every section's data to
 * `bench/results/latest.sections.json`.
 *
 * @module
 */

import { isolated } from "./isolated.ts";
import type { BenchSection, SectionRunner } from "./section.ts";
import { alignTable } from "./stats.ts";

/**
 * The sections this entry can run, by the id their table reports; each in
 * a fresh worker, as `deno task bench` runs them (see `isolated.ts`).
 */
const RUNNERS: Readonly<Record<string, SectionRunner>> = {
  timers: isolated("./timers.ts", "runTimers"),
  dispatch: isolated("./dispatch.ts", "runDispatch"),
  payloads: isolated("./payloads.ts", "runPayloadSection"),
  throughput: isolated("./throughput.ts", "runThroughput"),
};

interface Options {
  only: string[];
  quick: boolean;
  reps: number;
  json: boolean;
}

function parseArgs(args: readonly string[]): Options {
  const o: Options = {
    only: Object.keys(RUNNERS),
    quick: false,
    reps: 5,
    json: false,
  };
  for (const arg of args) {
    if (arg === "--quick") {
      o.quick = true;
    } else if (arg === "--json") {
      o.json = true;
    } else if (arg.startsWith("--only=")) {
      o.only = arg.slice("--only=".length).split(",").filter((x) => x !== "");
      const bad = o.only.filter((id) => !(id in RUNNERS));
      if (bad.length > 0 || o.only.length === 0) {
        throw new RangeError(
          `Cannot parse ${arg}: sections are ${Object.keys(RUNNERS).join(",")}`,
        );
      }
    } else if (arg.startsWith("--reps=")) {
      o.reps = Number(arg.slice("--reps=".length));
      if (!Number.isInteger(o.reps) || o.reps < 1) {
        throw new RangeError(`Cannot parse ${arg}: expected an integer >= 1`);
      }
    } else {
      throw new TypeError(
        `Cannot parse ${arg}: options are --only=ID[,ID], --quick, --reps=N, --json`,
      );
    }
  }
  return o;
}

function progress(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}

async function main(): Promise<void> {
  const o = parseArgs(Deno.args);
  console.log(
    `twloop bench sections ${o.only.join(",")}: Deno ${Deno.version.deno} ` +
      `(V8 ${Deno.version.v8}), ${navigator.hardwareConcurrency} CPUs, ` +
      `${o.quick ? "quick" : "normal"}, reps ${o.reps}, ${
        new Date().toISOString()
      }\n`,
  );
  const sections: BenchSection[] = [];
  for (const id of o.only) {
    const t0 = performance.now();
    const b = await RUNNERS[id]({ quick: o.quick, reps: o.reps, progress });
    sections.push(b);
    const table = alignTable([b.columns, ...b.rows]);
    console.log([b.title, ...b.notes, "", ...table].join("\n"));
    console.log(
      `(section ${id}: ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
    );
  }
  if (o.json) {
    const out = new URL("./results/latest.sections.json", import.meta.url);
    await Deno.mkdir(new URL(".", out), { recursive: true });
    await Deno.writeTextFile(
      out,
      JSON.stringify(
        {
          deno: { ...Deno.version },
          date: new Date().toISOString(),
          mode: o.quick ? "quick" : "normal",
          reps: o.reps,
          sections: Object.fromEntries(sections.map((b) => [b.id, b])),
        },
        null,
        2,
      ) + "\n",
    );
    console.log("wrote bench/results/latest.sections.json");
  }
}

if (import.meta.main) await main();
