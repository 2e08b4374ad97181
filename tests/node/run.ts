/**
 * Runs the `Deno.test` suites under Node against the built package:
 * `deno task test:node` builds `npm/` and `npm_test/` (see
 * `scripts/build_npm.ts`), then runs `node npm_test/tests/node/run.js`.
 *
 * What it gives the suites, and why:
 *
 * - `Deno.test` (with `.only`, `.ignore`) and `t.step` from `deno_shim.ts`;
 *   `Deno.memoryUsage` from `process.memoryUsage()` (the soak samples it);
 *   `Deno.mkdir`, `Deno.makeTempFile` and `Deno.remove` over
 *   `node:fs/promises` (the I/O suites make their fixtures with them).
 * - A global `Worker`: the package's own Node facade (`NodeWorker`, over
 *   `node:worker_threads`), which also gives each worker `self`, so the
 *   suites' worker modules run unchanged.
 * - `self`, and `addEventListener` on `globalThis` with Deno's cancelable
 *   `unhandledrejection` event, as Deno's main thread has them.
 * - `Promise.withResolvers`, `Array.fromAsync` and `ArrayBuffer`'s
 *   `transfer` where Node lacks them (Node 20): test code uses them; the
 *   package does not (the build checks it against Node 20's library), so
 *   these help only the tests.
 * - Where Node 20's `assert.deepStrictEqual` fails two Invalid Dates, a
 *   `deepEqual` that passes them, as Deno's does (probed, and logged).
 * - The Node I/O host in place of the Deno one (`NODE_SUBSTITUTES` in
 *   `skips.ts`, applied by the build, logged here).
 *
 * Test modules are every `*_test.js` (or `*.test.js`, `test.js`) below
 * `npm_test/tests/`, in path order, outside `node/`; words given on the
 * command line keep only the modules whose path holds one. Each test has a
 * timeout ({@linkcode TIMEOUT_MS}). What does not run on Node is skipped
 * with its reason, printed where it happens and again in a list at the end:
 * modules that are Deno-only by nature (`DENO_ONLY` in `skips.ts`; the build
 * does not compile them), single tests in {@linkcode NODE_SKIPS} whose probe
 * finds the Node bug that stops them, and steps that need a permission
 * sandbox (`SANDBOX_STEPS`) when the run is not under Node's permission
 * model (`deno task test:node` runs it under it). The last line is
 * `node: N passed, N failed, N skipped on Node (listed above), N ignored by
 * their own ignore option (...)`; the exit code is 1 if any failed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { NodeWorker } from "../../runtime/host/node.ts";
import { currentHost } from "../../runtime/host/host.ts";
import {
  registered,
  runTest,
  setCurrentFile,
  setStepSkips,
  type ShimTest,
  type StepReport,
  test,
} from "./deno_shim.ts";
import { DENO_ONLY, NODE_SUBSTITUTES, SANDBOX_STEPS } from "./skips.ts";

/** Longest a test may run before it counts as failed. */
const TIMEOUT_MS = 60_000;

/**
 * Single tests that cannot pass on this Node, by `file: name`, each with a
 * probe that returns the reason (or undefined once Node is fixed).
 */
const NODE_SKIPS: Readonly<Record<string, () => string | undefined>> = {
  "codec_test.js: 2000 seeded random graphs decode like structuredClone":
    () => {
      const e = new Error("e", { cause: [] as unknown[] });
      (e.cause as unknown[]).push(e);
      try {
        structuredClone(e);
        return undefined;
      } catch {
        return 'its oracle, this Node\'s structuredClone, throws on an Error whose cause leads back to it (Node bug: "Unable to deserialize cloned data")';
      }
    },
};

function installGlobals(): void {
  const g = globalThis as Record<string, unknown>;
  g.Deno = {
    test,
    memoryUsage: () => process.memoryUsage(),
    // The file calls the I/O suites make for their fixtures.
    mkdir: (path: string | URL, o?: { recursive?: boolean }) =>
      mkdir(path, o).then(() => {}),
    makeTempFile: async (o: { dir?: string; suffix?: string } = {}) => {
      const dir = o.dir ?? (process.env.TMPDIR ?? "/tmp");
      const rand = Math.random().toString(36).slice(2, 10);
      const path = `${dir.replace(/\/$/, "")}/${rand}${o.suffix ?? ""}`;
      await (await open(path, "wx")).close();
      return path;
    },
    remove: (path: string | URL, o?: { recursive?: boolean }) =>
      rm(path, { recursive: o?.recursive === true }),
  };
  g.Worker = NodeWorker;
  // Deno's main thread is an event target named `self` (worker modules the
  // suites import for their constants assign `self.onmessage`), and it
  // reports unhandled rejections as cancelable events.
  const scope = new EventTarget();
  g.self = globalThis;
  g.addEventListener = scope.addEventListener.bind(scope);
  g.removeEventListener = scope.removeEventListener.bind(scope);
  g.dispatchEvent = scope.dispatchEvent.bind(scope);
  const P = Promise as unknown as Record<string, unknown>;
  P.withResolvers ??= <T>() => {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
  const AB = ArrayBuffer.prototype as unknown as Record<string, unknown>;
  AB.transfer ??= function (this: ArrayBuffer) {
    return structuredClone(this, { transfer: [this] }); // detaches this
  };
  const A = Array as unknown as Record<string, unknown>;
  A.fromAsync ??= async <T>(items: AsyncIterable<T> | Iterable<T>) => {
    const out: T[] = [];
    for await (const item of items) out.push(item);
    return out;
  };
}

/**
 * Node 20's `assert.deepStrictEqual` fails two Invalid Dates (it compares
 * their times with `!==`, and NaN is not NaN; later Node versions compare
 * them equal, as Deno's does). Where the probe finds that, `deepEqual` and
 * `deepStrictEqual` of two Invalid Dates pass, as they do on Deno.
 *
 * @returns What was patched, for the log.
 */
function patchAssert(): string[] {
  try {
    assert.deepEqual(new Date(NaN), new Date(NaN));
    return [];
  } catch { /* Node 20 */ }
  const invalid = (v: unknown) => v instanceof Date && Number.isNaN(+v);
  const a = assert as unknown as Record<string, unknown>;
  for (const name of ["deepEqual", "deepStrictEqual"]) {
    const original = a[name] as (x: unknown, y: unknown, m?: unknown) => void;
    a[name] = (x: unknown, y: unknown, m?: unknown) => {
      if (invalid(x) && invalid(y)) return;
      original(x, y, m);
    };
  }
  return [
    "patched: node:assert deepEqual of two top-level Invalid Dates passes, " +
    "as on Deno (this Node compares their NaN times with !==)",
  ];
}

function findTests(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      // node/: the runner's own modules and workers (node/workers/ too);
      // its *_test.js files are the Node host's own tests.
      if (p !== `${base}/node/workers`) out.push(...findTests(p, base));
    } else if (/(^|[._])test\.js$/.test(e.name)) {
      out.push(p);
    }
  }
  return out.sort();
}

/** The error a test or the process reported while it ran. */
let stray: unknown[] = [];

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Test timed out after ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function describe(error: unknown): string {
  const text = error instanceof Error
    ? (error.stack ?? String(error))
    : String(error);
  return text.split("\n").map((l) => "    " + l).join("\n");
}

function printSteps(steps: StepReport[]): void {
  for (const s of steps) {
    console.log(`${"  ".repeat(s.depth)}${s.name} ... ${s.result}`);
    if (s.error !== undefined) console.log(describe(s.error));
  }
}

async function runOne(t: ShimTest): Promise<boolean> {
  const steps: StepReport[] = [];
  const t0 = performance.now();
  stray = [];
  let error: unknown;
  try {
    await withTimeout(runTest(t.name, t.file, t.fn, steps), TIMEOUT_MS);
    // A rejection or exception reported by the host during the test.
    await new Promise((r) => setTimeout(r, 0));
    if (stray.length > 0) error = stray[0];
  } catch (e) {
    error = e;
  }
  const ms = Math.round(performance.now() - t0);
  const ok = error === undefined;
  console.log(`${t.name} ... ${ok ? "ok" : "FAILED"} (${ms}ms)`);
  printSteps(steps);
  if (!ok) console.log(describe(error));
  return ok;
}

async function main(): Promise<number> {
  installGlobals();
  process.on("unhandledRejection", (reason, promise) => {
    const ev = Object.assign(
      new Event("unhandledrejection", { cancelable: true }),
      { reason, promise },
    );
    if (globalThis.dispatchEvent(ev)) stray.push(reason);
  });
  process.on("uncaughtException", (error) => stray.push(error));
  const root = fileURLToPath(new URL("../", import.meta.url)).replace(
    /\/$/,
    "",
  );
  // `node run.js fault io_` runs only the modules whose path contains one
  // of the words (for working on one suite; the task runs them all).
  const words = process.argv.slice(2);
  const files = findTests(root).filter((f) =>
    words.length === 0 || words.some((w) => f.slice(root.length).includes(w))
  );
  let passed = 0;
  let failed = 0;
  let ignored = 0;
  const failures: string[] = [];
  const skips: string[] = [];
  const t0 = performance.now();
  for (const [from, { use, why }] of Object.entries(NODE_SUBSTITUTES)) {
    console.log(`substituted: ${from} -> ${use}: ${why}`);
  }
  for (const note of patchAssert()) console.log(note);
  console.log(`host adapter: ${currentHost().name}`);
  console.log(
    "permission model: " +
      ("permission" in process
        ? "on (the Node run is sandboxed like Deno's test task)"
        : "off (the steps that need a sandbox are skipped)"),
  );
  const stepSkips: string[] = [];
  setStepSkips((origin, path) => {
    const rel = origin.slice(pathToFileURL(root).href.length + 1)
      .replace(/\.js$/, ".ts");
    const sandboxed = "permission" in process;
    const why = sandboxed ? undefined : SANDBOX_STEPS[`${rel}: ${path}`];
    if (why !== undefined) stepSkips.push(`${rel}: ${path}: ${why}`);
    return why;
  });
  for (const [rel, reason] of Object.entries(DENO_ONLY)) {
    const line = `${rel} (whole module, not compiled): ${reason}`;
    console.log(`skipped on Node: ${line}`);
    skips.push(line);
  }
  for (const file of files) {
    const rel = file.slice(root.length + 1);
    const url = pathToFileURL(file).href;
    const before = registered().length;
    setCurrentFile(url);
    try {
      await import(url);
    } catch (error) {
      console.log(`${rel}: cannot load ... FAILED\n${describe(error)}`);
      failed++;
      failures.push(rel);
      continue;
    }
    const mine = registered().slice(before);
    console.log(`running ${mine.length} tests from ./${rel}`);
    const only = mine.some((t) => t.only);
    for (const t of mine) {
      const why = NODE_SKIPS[`${rel}: ${t.name}`]?.();
      if (t.ignore || (only && !t.only)) {
        console.log(`${t.name} ... ignored`);
        ignored++;
      } else if (why !== undefined) {
        console.log(`${t.name} ... skipped on Node: ${why}`);
        skips.push(`${rel}: ${t.name}: ${why}`);
      } else if (await runOne(t)) {
        passed++;
      } else {
        failed++;
        failures.push(`${rel}: ${t.name}`);
      }
    }
  }
  console.log();
  skips.push(...stepSkips);
  console.log(`skipped on Node (${skips.length}), each with its reason:`);
  for (const line of skips) console.log(`  - ${line}`);
  console.log();
  if (failures.length > 0) {
    console.log(`failures:\n${failures.map((f) => "  " + f).join("\n")}\n`);
  }
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`Node ${process.version}, ${files.length} test modules, ${s} s`);
  console.log(
    `node: ${passed} passed, ${failed} failed, ${skips.length} skipped on ` +
      `Node (listed above), ${ignored} ignored by their own \`ignore\` ` +
      "option (the Deno run's ignored tests are the Node-only ones, which run here)",
  );
  return failed > 0 ? 1 : 0;
}

// Leaked workers or handles must not keep the run alive: exit explicitly.
process.exit(await main());
