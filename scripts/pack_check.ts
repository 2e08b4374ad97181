/**
 * `deno task pack:check`: the npm package as a user gets it. Packs `npm/`
 * (run `deno task build:npm` first) with `npm pack`, installs the tarball
 * into an empty folder, and runs `examples/node/sum.mjs` there with plain
 * `node`, its worker file beside it; then checks what it printed.
 *
 * The tarball must hold the entry point, its types, the Node worker scope
 * module, the README and the licence, and no test file.
 *
 * ## Permissions
 *
 * - `--allow-run=npm,node`: `npm pack`, `npm install`, `node`.
 * - `--allow-read=examples/node`: the example, copied into the folder.
 * - `--allow-write=/tmp/twloop_pack_check`: the empty folder (a fresh
 *   temporary folder inside it per run, removed at the end).
 *
 * @module
 */

const WORK = "/tmp/twloop_pack_check";
const EXAMPLE = new URL("../examples/node/", import.meta.url);
const PACKAGE = new URL("../npm/", import.meta.url);
const MUST_HAVE = [
  "package.json",
  "README.md",
  "LICENSE",
  "mod.js",
  "mod.d.ts",
  "mod.js.map",
  "runtime/host/node_scope.js",
];
const EXPECTED = [
  "100000 messages from 2 workers, sum 5000050000",
  "each worker's messages in order",
];

function fail(message: string): never {
  console.error(`pack:check: ${message}`);
  Deno.exit(1);
}

/** Runs a command, echoing it; fails on a non-zero exit. */
async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  console.log(`$ ${[cmd, ...args].join(" ")}   (in ${cwd})`);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && /\/npm\/?$/.test(cwd)) {
      fail("npm/ is missing: run deno task build:npm first");
    }
    throw e;
  }
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    fail(`${cmd} exited with ${out.code}:\n${stdout}${stderr}`);
  }
  return stdout;
}

interface PackEntry {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

async function main(): Promise<void> {
  await Deno.mkdir(WORK, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: WORK, prefix: "run_" });
  try {
    const packed = JSON.parse(
      await run(
        "npm",
        ["pack", "--json", "--pack-destination", dir],
        decodeURIComponent(PACKAGE.pathname),
      ),
    ) as PackEntry[];
    const { filename, size, unpackedSize, files } = packed[0];
    const paths = files.map((f) => f.path);
    console.log(
      `${filename}: ${files.length} files, ${size} bytes packed, ` +
        `${unpackedSize} unpacked`,
    );
    for (const p of MUST_HAVE) {
      if (!paths.includes(p)) fail(`the tarball lacks ${p}`);
    }
    const tests = paths.filter((p) => /(^|\/)tests\/|_test\.js$/.test(p));
    if (tests.length > 0) fail(`the tarball holds tests: ${tests.join()}`);

    const app = `${dir}/app`;
    await Deno.mkdir(app);
    await Deno.writeTextFile(
      `${app}/package.json`,
      JSON.stringify({ private: true, type: "module" }, null, 2) + "\n",
    );
    for (const f of ["sum.mjs", "sum_worker.mjs"]) {
      await Deno.copyFile(new URL(f, EXAMPLE), `${app}/${f}`);
    }
    // No dependencies: nothing is fetched.
    await run(
      "npm",
      ["install", "--offline", "--no-audit", "--no-fund", `${dir}/${filename}`],
      app,
    );
    const out = await run("node", ["sum.mjs"], app);
    checkOutput(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function checkOutput(out: string): void {
  console.log(out.trimEnd().split("\n").map((l) => "  " + l).join("\n"));
  const lines = out.trim().split("\n");
  if (JSON.stringify(lines) !== JSON.stringify(EXPECTED)) {
    fail(`expected:\n  ${EXPECTED.join("\n  ")}`);
  }
  console.log("pack:check: the installed tarball runs under plain node: ok");
}

if (import.meta.main) await main();
