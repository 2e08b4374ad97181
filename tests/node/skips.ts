/**
 * Test modules that do not run on Node, each with the reason: read by the
 * build (`scripts/build_npm.ts --tests` does not compile them, so a module
 * that changes under way cannot break the Node build) and by the runner
 * (`run.ts` prints each one, with its reason, as skipped).
 *
 * Only modules that are Deno-only by nature belong here; a test that should
 * pass on Node and does not is a failure, not a skip.
 *
 * @module
 */

/** Paths below `tests/` (as `.ts`) → why the module is Deno-only. */
export const DENO_ONLY: Readonly<Record<string, string>> = {
  "cli_test.ts":
    "it tests the workload runner cli/, the `deno task start` command: it " +
    "runs as a Deno process (Deno.args, Deno.exit, Deno.addSignalListener " +
    "for Ctrl-C), loads workload modules under Deno's permissions, and the " +
    "test spawns `deno` subprocesses; cli/ is not part of the npm package",
};

/**
 * Modules the Node build of the tests uses in place of a Deno-only one (paths
 * from the repository root), and why. The tests that import the Deno I/O
 * host run, on Node, against the Node I/O host under the same name.
 */
export const NODE_SUBSTITUTES: Readonly<
  Record<string, { use: string; why: string }>
> = {
  "runtime/host/deno_io.ts": {
    use: "tests/node/deno_io_on_node.ts",
    why:
      "the I/O tests' `denoIo` is the Node I/O host (runtime/host/node_io.ts) on Node",
  },
};

/**
 * Single steps that need a permission sandbox: `module: test > step`
 * (module below `tests/`, as `.ts`) → why. Deno's sandbox is always on in
 * the test task; on Node they run when the runner is under Node's permission
 * model, as `deno task test:node` starts it (only `npm/` and `npm_test/`
 * readable, only `npm_test/tests/.tmp/` writable), and are skipped, saying
 * so, when `run.js` is started without it.
 */
export const SANDBOX_STEPS: Readonly<Record<string, string>> = {
  "io_test.ts: Deno host: files > a missing file is ENOENT, a denied one EACCES, a directory EISDIR, writing a read-only handle EBADF":
    "its EACCES case needs a write outside tests/.tmp refused by a sandbox, " +
    "and this Node run is not under the permission model (--experimental-" +
    "permission); the step's ENOENT, EISDIR and EBADF cases are skipped with it",
};
