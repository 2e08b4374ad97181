/**
 * The workload runner (`cli/`): the command line, each bad-input case, the
 * report's numbers against what the workloads say they did, `--json` and
 * `--html` output, duration, grace and Ctrl-C.
 *
 * Most tests call `main()` in this process with captured output (fast, and
 * the same code path as `deno task start` but for the process around it).
 * Two run `cli/main.ts` as a subprocess, for what only a process shows: the
 * exit status of a real run and a real SIGINT. Fixture workloads are written
 * to `tests/.tmp/cli/` (the one directory the test task may write), so
 * broken modules never sit in the source tree.
 *
 * Permissions beyond the test task's base set: the shipped examples are
 * imported at run time and spawn workers from `examples/` that import
 * `cli/`, so their tests need `--allow-read` of `cli` and `examples`; the
 * default scenario starts its load generator with `deno`, and the process
 * tests run `deno`, so those need `--allow-run=deno`. Without them those
 * tests are reported as ignored, never silently passed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { HELP, parseCli, UsageError } from "../cli/args.ts";
import { main, type MainIo } from "../cli/main.ts";
import { LatencyHistogram } from "../cli/latency.ts";
import { runWorkload } from "../cli/run.ts";
import type { Report } from "../cli/report.ts";
import { renderHtml } from "../cli/html.ts";
import { Progress } from "../cli/progress.ts";
import type { Sample, Sampler } from "../cli/sampler.ts";
import { seededRandom } from "../cli/random.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TMP = `${ROOT}tests/.tmp`;

interface Captured {
  status: number;
  out: string;
  err: string;
}

/** Runs `main` in this process; `interrupt` gets a function that sends Ctrl-C. */
async function run(
  args: string[],
  extra: Partial<MainIo> = {},
): Promise<Captured> {
  let out = "";
  let err = "";
  const status = await main(args, {
    out: (s) => (out += s),
    err: (s) => (err += s),
    terminal: false,
    cwd: ROOT,
    sampleMs: 20,
    probeMs: 60_000, // no probes: exact task counts (the default test asks)
    graceMs: 300,
    ...extra,
  });
  return { status, out, err };
}

/**
 * Runs `fn` in a fresh directory under `tests/.tmp/`, removed afterwards:
 * fixtures include broken modules, which `deno check .`, `deno lint` and
 * `deno fmt --check` of the repository must never find.
 */
async function inTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  await Deno.mkdir(TMP, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: TMP, prefix: "cli_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes a fixture workload into `dir` and returns its path. */
async function fixture(
  dir: string,
  name: string,
  source: string,
): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, source);
  return path;
}

async function readJson(path: string): Promise<Report> {
  return JSON.parse(await Deno.readTextFile(path)) as Report;
}

const oneLine = (s: string) => s.trimEnd().split("\n").length === 1;

const granted = (d: Deno.PermissionDescriptor) =>
  Deno.permissions.querySync(d).state === "granted";
/** The shipped examples can be imported and can spawn their workers. */
const CAN_LOAD_EXAMPLES = granted({ name: "read", path: `${ROOT}examples` }) &&
  granted({ name: "read", path: `${ROOT}cli` });
/** `deno` can be started (process tests, the sock workload's generator). */
const CAN_RUN_DENO = granted({ name: "run", command: "deno" });

// ---------------------------------------------------------------------------
// Command line

Deno.test("parseCli splits the workload, its arguments and the runner's flags", () => {
  const o = parseCli([
    "--duration",
    "1.5s",
    "w.ts",
    "extra",
    "--seed",
    "7",
    "--",
    "--clients",
    "8",
  ]);
  assert.equal(o.workload, "w.ts");
  assert.deepEqual(o.workloadArgs, ["extra", "--clients", "8"]);
  assert.equal(o.duration, 1500);
  assert.equal(o.seed, 7);
  assert.equal(parseCli(["-d", "250ms"]).duration, 250);
  assert.equal(parseCli(["--duration", "2"]).duration, 2000); // bare: s
  assert.equal(parseCli(["--min-wait", "2"]).minWait, 2); // bare: ms
  assert.equal(parseCli(["--duration", "1m"]).duration, 60_000);
  const none = parseCli(["--", "--clients", "4"]);
  assert.equal(none.workload, undefined, "after -- nothing is the workload");
  assert.deepEqual(none.workloadArgs, ["--clients", "4"]);
});

Deno.test("parseCli rejects unknown flags and bad values with one named message", () => {
  const cases: [string[], RegExp][] = [
    [
      ["--durration", "1s"],
      /^Unknown flag --durration: did you mean --duration\?/,
    ],
    [["--bogus"], /^Unknown flag --bogus \(see --help/],
    [["--duration"], /^Flag --duration needs a value/],
    [["--quiet=yes"], /^Flag --quiet takes no value/],
    [["--duration", "soon"], /^Bad value for --duration: .* got "soon"/],
    [["--duration", "0"], /^Bad value for --duration/],
    [["--duration", "-1s"], /needs a value|Bad value/],
    [["--max-events", "0"], /^Bad value for --max-events: .*from 1 to 2\^30/],
    [["--min-events", "2.5"], /^Bad value for --min-events/],
    [["--min-wait", "NaN"], /^Bad value for --min-wait/],
    [["--seed", "-3"], /needs a value|Bad value for --seed/],
    [["--seed", "1e3"], /^Bad value for --seed/],
    [["--json", ""], /^Bad value for --json/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseCli(args), (e: unknown) => {
      assert.ok(e instanceof UsageError, `${args.join(" ")}: ${e}`);
      assert.match(e.message, message, args.join(" "));
      assert.ok(oneLine(e.message));
      return true;
    });
  }
});

Deno.test("main: --help prints the usage and exits 0", async () => {
  const r = await run(["--help"]);
  assert.equal(r.status, 0);
  assert.equal(r.out, HELP);
  assert.equal(r.err, "");
});

Deno.test("main: an unknown flag or a bad value exits 2 with one line on stderr", async () => {
  for (const args of [["--frobnicate"], ["--max-events", "lots"]]) {
    const r = await run(args);
    assert.equal(r.status, 2);
    assert.equal(r.out, "");
    assert.match(r.err, /^error: (Unknown flag|Bad value)/);
    assert.ok(oneLine(r.err), r.err);
  }
});

Deno.test("main: an output file the task may not write is refused before the run", async () => {
  const r = await run(["--json", "/twloop-nowhere/run.json", "x.ts"]);
  assert.equal(r.status, 2);
  assert.match(r.err, /^error: Cannot write --json file .*no write access/);
  assert.ok(oneLine(r.err));
});

// ---------------------------------------------------------------------------
// Bad workloads

Deno.test("main: each kind of unloadable workload gives one clear message and exit 1", () =>
  inTmp(async (dir) => {
    const cases: [string, RegExp][] = [
      [`${dir}/does_not_exist.ts`, /no such file/],
      [
        await fixture(dir, "syntax.ts", "export default function (ctx {\n"),
        /Cannot load workload .*syntax\.ts: .*(SyntaxError|Expected)/,
      ],
      [
        await fixture(
          dir,
          "bad_import.ts",
          'import "./nowhere.ts";\nexport default () => {};\n',
        ),
        /Module not found/,
      ],
      [
        await fixture(
          dir,
          "top_throw.ts",
          'throw new Error("top-level boom");\n',
        ),
        /its top-level code threw Error: top-level boom/,
      ],
      [
        await fixture(dir, "no_default.ts", "export const x = 1;\n"),
        /has no default export/,
      ],
      [
        await fixture(dir, "not_function.ts", "export default 42;\n"),
        /default export is a number, not a function/,
      ],
      ["https:/", /not a valid URL|Cannot load workload/],
    ];
    for (const [spec, message] of cases) {
      const r = await run([spec]);
      assert.equal(r.status, 1, spec);
      assert.match(r.err, /^error: Cannot load workload /, spec);
      assert.match(r.err, message, spec);
      assert.ok(oneLine(r.err), r.err);
    }
  }));

Deno.test("main: a workload outside the readable folders is named with the command that runs it", async () => {
  const r = await run(["/twloop-nowhere/mine.ts"]);
  assert.equal(r.status, 1);
  assert.match(r.err, /no read access to \/twloop-nowhere\/mine\.ts/);
  assert.match(
    r.err,
    /--allow-read=mod\.ts,runtime,cli,examples,workloads,\/twloop-nowhere/,
  );
});

Deno.test("main: a workload that throws synchronously fails with exit 1 and a report", () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "sync_throw.ts",
      `export default (ctx) => {
       for (let i = 0; i < 5; i++) ctx.loop.queue(() => {});
       throw new TypeError("setup went wrong");
     };\n`,
    );
    const r = await run([path]);
    assert.equal(r.status, 1);
    assert.match(
      r.err,
      /^error: Workload failed: TypeError: setup went wrong\n/,
    );
    assert.match(r.err, /halted with 5 item\(s\) still queued/);
    assert.match(r.out, /ended\s+FAILED/);
    assert.match(r.out, /pending at end\s+5\s+items left queued/);
  }));

Deno.test("main: a task that throws halts the loop and reports what was still queued", () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "task_throw.ts",
      `export default (ctx) => {
       ctx.loop.queue(() => { throw new Error("task boom"); });
       for (let i = 0; i < 99; i++) ctx.loop.queue(() => {});
     };\n`,
    );
    const r = await run([path, "--json", `${dir}/task_throw.json`]);
    assert.equal(r.status, 1);
    assert.match(r.err, /Workload failed: Error: task boom/);
    const j = await readJson(`${dir}/task_throw.json`);
    assert.equal(j.ended, "failed");
    assert.equal(j.error, "Error: task boom");
    assert.equal(j.drained, false);
    assert.equal(j.tasksBySource.task, 1, "the throwing task ran, no other");
    assert.equal(j.loop.pending, 99, "the 99 queued tasks are reported");
  }));

Deno.test("main: a rejected promise and an uncaught callback error both fail the run", () =>
  inTmp(async (dir) => {
    const rejects = await fixture(
      dir,
      "rejects.ts",
      `export default async (ctx) => {
       await new Promise((r) => ctx.loop.setTimer(r, 5));
       throw new RangeError("later");
     };\n`,
    );
    const stray = await fixture(
      dir,
      "stray.ts",
      `export default (ctx) => {
       ctx.loop.ref();
       setTimeout(() => { throw new Error("host callback"); }, 5);
     };\n`,
    );
    const a = await run([rejects, "--virtual-time"]);
    assert.equal(a.status, 1);
    assert.match(a.err, /Workload failed: RangeError: later/);
    const b = await run([stray]);
    assert.equal(b.status, 1);
    assert.match(b.err, /Workload failed: Error: host callback/);
  }));

// ---------------------------------------------------------------------------
// Duration, grace, Ctrl-C

Deno.test("main: --duration on virtual time aborts ctx.signal and the workload winds down", () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "ticker.ts",
      `export default (ctx) => {
       let ticks = 0;
       const t = ctx.loop.setTimer(() => ticks++, 100, 100);
       return new Promise((resolve) => ctx.signal.addEventListener("abort", () => {
         t.cancel();
         resolve({ ticks, reason: String(ctx.signal.reason) });
       }));
     };\n`,
    );
    const r = await run([
      path,
      "--virtual-time",
      "-d",
      "10s",
      "--json",
      `${dir}/ticker.json`,
      "-q",
    ]);
    assert.equal(r.status, 0, r.err);
    assert.equal(r.out, "", "--quiet prints nothing");
    const j = await readJson(`${dir}/ticker.json`);
    assert.equal(j.ended, "duration");
    assert.equal(j.drained, true);
    assert.deepEqual(j.workload.result, { ticks: 99, reason: "duration" });
    assert.equal(j.tasksBySource.timer, 100, "99 ticks and the duration timer");
    assert.ok(j.time.clockMs >= 10_000 && j.time.clockMs < 10_100);
  }));

Deno.test("main: a workload that ignores the stop is halted after the grace period", () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "stubborn.ts",
      `export default (ctx) => { ctx.loop.ref(); return new Promise(() => {}); };\n`,
    );
    const r = await run([path, "--duration", "50ms"]);
    assert.equal(r.status, 0);
    assert.match(r.out, /ended\s+stopped at --duration/);
    assert.match(r.err, /did not finish within the grace period/);
  }));

Deno.test("main: Ctrl-C stops the run, prints the report and exits 130", () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "forever.ts",
      `export default (ctx) => new Promise((resolve) => {
       const t = ctx.loop.setTimer(() => {}, 10, 10);
       ctx.signal.addEventListener("abort", () => { t.cancel(); resolve({ stopped: String(ctx.signal.reason) }); });
     });\n`,
    );
    const r = await run([path], {
      interrupts(fire) {
        const id = setTimeout(fire, 150);
        return () => clearTimeout(id);
      },
    });
    assert.equal(r.status, 130);
    assert.match(r.out, /ended\s+interrupted \(Ctrl-C\)/);
    assert.match(r.out, /stopped\s+interrupted/);
    assert.match(
      r.out,
      /\[progress\] /,
      "plain progress lines when not a terminal",
    );
  }));

Deno.test("main: a workload that fails while stopping after Ctrl-C still ends interrupted", () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "cut_short.ts",
      `export default (ctx) => new Promise((resolve, reject) => {
       const t = ctx.loop.setTimer(() => {}, 10, 10);
       ctx.signal.addEventListener("abort", () => {
         t.cancel();
         reject(new Error("cut short"));
       });
     });\n`,
    );
    const r = await run([path], {
      interrupts(fire) {
        const id = setTimeout(fire, 50);
        return () => clearTimeout(id);
      },
    });
    assert.equal(r.status, 130);
    assert.match(r.out, /ended\s+interrupted \(Ctrl-C\)/);
    assert.match(r.out, /error\s+Error: cut short/);
    assert.match(
      r.err,
      /^note: after Ctrl-C the workload stopped with Error: cut short/,
    );
    assert.ok(oneLine(r.err), r.err);
  }));

Deno.test("main: --max-events, --min-events and --min-wait reach the loop", () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "passes.ts",
      `export default (ctx) => {
       let ran = 0;
       for (let i = 0; i < 10; i++) ctx.loop.queue(() => ran++);
       return new Promise((r) => ctx.loop.setTimer(() => r({ ran }), 1));
     };\n`,
    );
    const json = `${dir}/passes.json`;
    const r = await run([
      path,
      "--virtual-time",
      "--max-events",
      "3",
      "--min-events",
      "4",
      "--min-wait",
      "2ms",
      "--seed",
      "9",
      "--json",
      json,
    ]);
    assert.equal(r.status, 0, r.err);
    const j = await readJson(json);
    assert.deepEqual(j.settings, {
      durationMs: null,
      maxEvents: 3,
      minEvents: 4,
      minWaitMs: 2,
      virtualTime: true,
      seed: 9,
    });
    assert.deepEqual(j.workload.result, { ran: 10 });
    assert.ok(j.loop.passes >= 4, `10 tasks at 3 per pass: ${j.loop.passes}`);
    assert.match(r.out, /maxEvents 3, minEvents 4, minWait 2\.00 ms, seed 9/);
  }));

// ---------------------------------------------------------------------------
// The shipped workloads: the report's numbers agree with the workload's

Deno.test({
  name:
    "timer storm: every timer not cancelled fires once, in order, and the report agrees",
  ignore: !CAN_LOAD_EXAMPLES,
}, () =>
  inTmp(async (dir) => {
    const json = `${dir}/storm.json`;
    const html = `${dir}/storm.html`;
    const r = await run([
      "examples/timer_storm.ts",
      "--virtual-time",
      "--json",
      json,
      "--html",
      html,
      "--",
      "--timers",
      "20000",
    ]);
    assert.equal(r.status, 0, r.err);
    const j = await readJson(json);
    const w = j.workload.result as Record<string, number>;
    assert.equal(j.format, "twloop-run-report/1");
    assert.equal(j.ended, "finished");
    assert.equal(w.timers, 20_000);
    assert.equal(w.outOfOrder, 0);
    assert.equal(w.fired + w.cancelled, 20_000);
    assert.equal(j.tasksBySource.timer, w.fired);
    assert.equal(j.latency.source, "workload");
    assert.equal(j.latency.count, w.fired);
    assert.equal(j.latency.maxMs, 0, "virtual time: no timer is late");
    const t = j.tasksBySource;
    assert.equal(j.throughput.tasks, t.task + t.timer + t.entry + t.host);
    assert.equal(j.loop.pending, 0);
    assert.equal(j.loop.pendingTimers, 0);
    for (
      const key of [
        "utilization",
        "wakesPerArming",
        "notifies",
        "busy",
        "stalls",
        "peakDepth",
      ] as const
    ) assert.equal(typeof j.loop[key], "number", key);
    assert.ok(j.series.length >= 2);
    const page = await Deno.readTextFile(html);
    assert.match(page, /^<!doctype html>/);
    assert.equal((page.match(/<svg /g) ?? []).length, 3, "three charts");
    assert.doesNotMatch(
      page,
      /<script|<link|src=|@import|url\(/,
      "self-contained",
    );
  }));

Deno.test({
  name: "ingest: every event posted by the workers is received and aggregated",
  ignore: !CAN_LOAD_EXAMPLES,
}, () =>
  inTmp(async (dir) => {
    const json = `${dir}/ingest.json`;
    const r = await run([
      "examples/ingest.ts",
      "--json",
      json,
      "--",
      "--workers",
      "2",
      "--events",
      "3000",
      "--window",
      "20",
    ]);
    assert.equal(r.status, 0, r.err);
    const j = await readJson(json);
    const w = j.workload.result as Record<string, number>;
    assert.equal(w.sent, 6000);
    assert.equal(w.received, 6000);
    assert.equal(j.latency.count, 6000, "one latency per event");
    // Items from other threads: events, plus per worker ready, done, close.
    assert.equal(j.throughput.messages, 6000 + 2 * 3);
    assert.equal(j.workers, 2);
    assert.ok(w.windows >= 1);
  }));

Deno.test({
  name: "ping-pong: every request gets its reply across two loops",
  ignore: !CAN_LOAD_EXAMPLES,
}, () =>
  inTmp(async (dir) => {
    const json = `${dir}/ping.json`;
    const r = await run([
      "examples/ping_pong.ts",
      "--json",
      json,
      "--",
      "--rounds",
      "400",
    ]);
    assert.equal(r.status, 0, r.err);
    const j = await readJson(json);
    const w = j.workload.result as Record<string, number>;
    assert.equal(w.requests, 400);
    assert.equal(w.replies, 400);
    assert.equal(j.latency.count, 400, "one latency per reply");
    // Items from other threads: the replies and the worker's port close.
    assert.equal(j.throughput.messages, 400 + 1);
    assert.equal(j.workers, 1);
    assert.ok(w.meanRoundTripUs > 0);
    assert.equal(j.ended, "finished");
    assert.equal(j.loop.pending, 0);
  }));

Deno.test({
  name:
    "no workload: the default runs the seed's scenario at 8 clients and every byte arrives",
  ignore: !(CAN_LOAD_EXAMPLES && CAN_RUN_DENO),
}, () =>
  inTmp(async (dir) => {
    const json = `${dir}/sock.json`;
    // The generator streams for --duration once the listener is up; starting
    // the I/O worker can take seconds under `deno test` (it type-checks the
    // worker), so the grace period is long: the run ends when the workload
    // does, well before it.
    const r = await run(["--duration", "500ms", "--json", json], {
      graceMs: 30_000,
      probeMs: 10,
    });
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /running examples\/sock_workload\.ts \(default\)/);
    const j = await readJson(json);
    const w = j.workload.result as Record<string, number>;
    assert.equal(j.workload.name, "examples/sock_workload.ts (default)");
    assert.equal(j.ended, "duration");
    assert.equal(j.drained, true);
    assert.equal(j.loop.pending, 0);
    assert.equal(w.clients, 8);
    assert.ok(w.sentBytes > 0);
    assert.equal(w.receivedBytes, w.sentBytes);
    assert.ok(j.tasksBySource.entry >= w.completions);
    assert.equal(j.latency.source, "probe", "completions carry no timestamp");
    assert.ok(j.latency.count > 0 && j.latency.count <= j.tasksBySource.task);
  }));

// ---------------------------------------------------------------------------
// Pieces

Deno.test("runWorkload hands the workload a seeded random() and its args", async () => {
  const seen: number[] = [];
  const o = await runWorkload({
    workload: (ctx) => {
      for (let i = 0; i < 3; i++) seen.push(ctx.random());
      return { args: ctx.args.join(" "), seed: ctx.seed };
    },
    args: ["a", "b"],
    seed: 42,
    virtualTime: true,
  });
  const again = seededRandom(42);
  assert.deepEqual(seen, [again(), again(), again()]);
  assert.deepEqual(o.result, { args: "a b", seed: 42 });
  assert.equal(o.ended, "finished");
  assert.notDeepEqual(seededRandom(1)(), seededRandom(2)());
});

Deno.test("Progress: one status line redrawn in place on a terminal, logs above it", () => {
  let text = "";
  const p = new Progress({
    write: (t) => (text += t),
    terminal: true,
    columns: 0,
  });
  const samples: Sample[] = [];
  const sampler = {
    samples,
    recentRates: () => ({ tasks: 1500, messages: 20, wakes: 3 }),
  };
  const at = (t: number, tasks: number) =>
    samples.push({
      t,
      clockMs: t * 1000,
      depth: 7,
      tasks,
      messages: 0,
      wakes: 0,
      taskRate: 0,
      messageRate: 0,
      wakeRate: 0,
    });
  at(0.3, 10);
  p.update(sampler as unknown as Sampler);
  at(0.4, 20); // under 0.25 s since the last draw: skipped
  p.update(sampler as unknown as Sampler);
  p.log("hello");
  at(0.7, 30);
  p.update(sampler as unknown as Sampler);
  p.clear();
  const ERASE = "\r\x1b[2K";
  assert.equal(
    text,
    `${ERASE}0.3s  tasks/s 1.50k  messages/s 20.0  queue 7  wakes/s 3.0  total 10` +
      `${ERASE}hello\n` +
      `${ERASE}0.7s  tasks/s 1.50k  messages/s 20.0  queue 7  wakes/s 3.0  total 30` +
      ERASE,
  );
  assert.ok(!text.includes("\n0."), "the status line never scrolls");
});

Deno.test("renderHtml escapes what the workload named and links nothing external", () => {
  const report = {
    format: "twloop-run-report/1",
    workload: {
      name: "<b>x</b>.ts",
      url: "file:///x",
      args: [],
      result: { note: "a<b" },
    },
    ended: "finished",
    drained: true,
    error: null,
    errors: 0,
    settings: {
      durationMs: null,
      maxEvents: 20,
      minEvents: 1,
      minWaitMs: null,
      virtualTime: false,
      seed: 1,
    },
    time: {
      startedAt: "2026-01-01T00:00:00.000Z",
      realMs: 1000,
      clockMs: 1000,
    },
    throughput: { tasks: 3, tasksPerSec: 3, messages: 0, messagesPerSec: 0 },
    latency: {
      source: "probe",
      count: 2,
      minMs: 0.01,
      meanMs: 0.02,
      p50Ms: 0.01,
      p90Ms: 0.03,
      p99Ms: 0.03,
      maxMs: 0.03,
      negative: 0,
      bins: [{ fromMs: 0.008, toMs: 0.016, count: 1 }, {
        fromMs: 0.016,
        toMs: 0.032,
        count: 1,
      }],
    },
    probeLatency: {
      count: 2,
      minMs: 0.01,
      meanMs: 0.02,
      p50Ms: 0.01,
      p90Ms: 0.03,
      p99Ms: 0.03,
      maxMs: 0.03,
      negative: 0,
    },
    loop: {
      utilization: 0.5,
      passes: 3,
      armings: 1,
      sleeps: 1,
      wakes: 1,
      wakesPerArming: 1,
      notifies: 1,
      busy: 0,
      stalls: 0,
      peakDepth: 2,
      pending: 0,
      pendingTimers: 0,
      runMs: 1000,
      idleMs: 500,
    },
    tasksBySource: { task: 3, timer: 0, entry: 0, host: 0 },
    workers: 0,
    warnings: [],
    series: [
      { t: 0, clockMs: 0, depth: 0, taskRate: 0, messageRate: 0, wakeRate: 0 },
      {
        t: 1,
        clockMs: 1000,
        depth: 2,
        taskRate: 3,
        messageRate: 0,
        wakeRate: 1,
      },
    ],
  } as const satisfies Report;
  const page = renderHtml(report);
  assert.ok(!page.includes("<b>x</b>"), "the name is escaped");
  assert.match(page, /&#60;b&#62;x&#60;\/b&#62;\.ts/);
  assert.match(page, /note\s+a&#60;b/);
  assert.equal((page.match(/<svg /g) ?? []).length, 3);
  assert.equal(
    (page.match(/<\/rect>/g) ?? []).length,
    2,
    "one bar (with its tooltip) per bin",
  );
  assert.doesNotMatch(
    page,
    /<script|<link|src=|@import|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
  );
});

Deno.test("LatencyHistogram: percentiles within 1/32, exact extremes, negatives counted as 0", () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i / 1000); // 1 µs .. 1 ms
  h.record(-0.001);
  const s = h.summary();
  assert.equal(s.count, 1001);
  assert.equal(s.maxMs, 1);
  assert.equal(s.minMs, 0);
  assert.equal(s.negative, 1);
  for (const [q, want] of [[s.p50Ms, 0.5], [s.p90Ms, 0.9], [s.p99Ms, 0.99]]) {
    assert.ok(q >= want * 0.99 && q <= want * (1 + 1 / 16), `${q} vs ${want}`);
  }
  const bins = h.bins();
  assert.equal(bins.reduce((a, b) => a + b.count, 0), 1001);
  assert.equal(new LatencyHistogram().summary().p99Ms, 0);
});

// ---------------------------------------------------------------------------
// As a process

const DENO_RUN = [
  "run",
  "--no-prompt",
  "--allow-read=mod.ts,runtime,cli,examples,workloads,tests/.tmp",
  "--allow-write=reports",
  "cli/main.ts",
];

Deno.test({
  name: "process: a bad flag exits 2 with one line on stderr",
  ignore: !CAN_RUN_DENO,
}, async () => {
  const out = await new Deno.Command("deno", {
    args: [...DENO_RUN, "--frobnicate"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const err = new TextDecoder().decode(out.stderr);
  assert.match(err, /^error: Unknown flag --frobnicate/);
  assert.ok(oneLine(err));
});

Deno.test({
  name: "process: SIGINT stops the run and the report is still printed",
  ignore: !CAN_RUN_DENO,
}, () =>
  inTmp(async (dir) => {
    const path = await fixture(
      dir,
      "sigint.ts",
      `export default (ctx) => new Promise((resolve) => {
       const t = ctx.loop.setTimer(() => {}, 5, 5);
       ctx.signal.addEventListener("abort", () => { t.cancel(); resolve({ why: String(ctx.signal.reason) }); });
     });\n`,
    );
    const child = new Deno.Command("deno", {
      args: [...DENO_RUN, path],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Bounded: a child that hangs is killed, and the asserts below fail.
    const guard = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let out = "";
    while (!out.includes("[progress]")) { // running, with the listener set
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const status = await child.status;
    clearTimeout(guard);
    await child.stderr.cancel();
    assert.equal(status.code, 130);
    assert.match(out, /ended\s+interrupted \(Ctrl-C\)/);
    assert.match(out, /why\s+interrupted/);
  }));
