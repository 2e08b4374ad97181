/**
 * `deno task build:npm`: builds the npm package into `npm/` (and, with
 * `--tests`, the test suites for Node into `npm_test/`).
 *
 * ## Why the TypeScript compiler, not `deno bundle`
 *
 * The package needs `.d.ts` types, which `deno bundle` does not emit, and it
 * must stay one module per file: a worker entry such as
 * `runtime/host/node_scope.ts` is started by URL, so it has to exist as its
 * own file next to the module naming it, and one-to-one files keep source
 * maps and stack traces readable. `npm:typescript@6.0.3` is pinned in
 * `deno.json` (and `deno.lock`) to the TypeScript that Deno 2.9.6 itself
 * embeds, so the build checks the code with the same language rules as
 * `deno check`.
 *
 * ## What it does
 *
 * 1. Checks the host boundary: no core file (`runtime/`, outside
 *    `runtime/host/`) names `Deno`, `process` or a `node:` module, in code
 *    (comments may).
 * 2. Collects the package's modules: each `deno.json` export and everything
 *    it reaches through imports or `new URL("./x.ts", import.meta.url)`.
 * 3. Type-checks them against Node 20's language level (ES2023 library plus
 *    `Atomics.waitAsync`, web globals) and emits ES modules, `.d.ts` and
 *    source maps (sources inlined) into `npm/`, `.ts` specifiers rewritten to
 *    `.js`, in imports and in worker URLs alike.
 * 4. Writes `package.json` (`exports` derived from `deno.json`'s and read
 *    back: the build fails if the two diverge or a target is missing),
 *    copies `README.md` and `LICENSE`.
 * 5. With `--tests`: transpiles every file under `tests/` but the
 *    Deno-only modules of `tests/node/skips.ts`, and what they import from
 *    outside the package, into `npm_test/` (types were checked by
 *    `deno check`); their imports of the package's modules point into
 *    `npm/`, so the Node run tests the built package.
 *
 * ## Permissions
 *
 * - `--allow-read`: `deno.json`, `mod.ts`, `runtime`, `README.md`,
 *   `LICENSE`, the output read back for the exports check (`npm`) and
 *   `node_modules` (TypeScript's lib files); with `--tests` also `tests`,
 *   `bench` (helpers the tests import) and `npm_test`.
 * - `--allow-write=npm` (and `npm_test` with `--tests`): the output
 *   folders, emptied first.
 * - `--ignore-env`: TypeScript reads tuning variables (`TSC_WATCHFILE`,
 *   `NODE_ENV`, ...) when it loads; they read as unset, none is granted.
 * - `--node-modules-dir=auto`: TypeScript, pinned in `deno.json`, resolves
 *   its lib files from a real `node_modules/` folder.
 *
 * @module
 */

import ts from "typescript";
import { DENO_ONLY, NODE_SUBSTITUTES } from "../tests/node/skips.ts";

const ROOT = new URL("../", import.meta.url);
const ROOT_DIR = path(ROOT);
const OUT_DIR = ROOT_DIR + "npm/";
const TEST_OUT_DIR = ROOT_DIR + "npm_test/";
const NODE_RANGE = ">=20.16.0";
const DESCRIPTION =
  "An embeddable event loop whose work queue is a wait-free MPSC FIFO in a SharedArrayBuffer";

/** Compiler options for the package: what Node 20 runs, checked strictly. */
const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  // Node 20 has ES2023's library and parts of ES2024's: Atomics.waitAsync,
  // resizable ArrayBuffer, String isWellFormed; not Promise.withResolvers,
  // Object.groupBy or Array.fromAsync (Node 22).
  lib: [
    "lib.es2023.d.ts",
    "lib.es2024.sharedmemory.d.ts",
    "lib.es2024.arraybuffer.d.ts",
    "lib.es2024.string.d.ts",
    "lib.dom.d.ts",
  ],
  types: [],
  strict: true,
  skipLibCheck: true,
  allowImportingTsExtensions: true,
  rewriteRelativeImportExtensions: true,
  declaration: true,
  sourceMap: true,
  inlineSources: true,
  noEmitOnError: true,
  rootDir: ROOT_DIR,
  outDir: OUT_DIR,
  newLine: ts.NewLineKind.LineFeed,
};

interface DenoConfig {
  name: string;
  version: string;
  license: string;
  exports: string | Record<string, string>;
}

function path(url: URL): string {
  return decodeURIComponent(url.pathname);
}

function fail(message: string): never {
  console.error(`build:npm: ${message}`);
  Deno.exit(1);
}

function relative(fromDir: string, to: string): string {
  const a = fromDir.split("/").filter(Boolean);
  const b = to.split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  const up = a.length - i;
  const rest = b.slice(i).join("/");
  return up === 0 ? "./" + rest : "../".repeat(up) + rest;
}

function dirOf(file: string): string {
  return file.slice(0, file.lastIndexOf("/") + 1);
}

/**
 * Every `.ts` file under `dir` (absolute paths), sorted; hidden folders
 * (such as `tests/.tmp/`, where tests write fixtures) are left out.
 */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = dir + e.name;
    if (e.isDirectory) {
      if (!e.name.startsWith(".")) out.push(...walk(p + "/"));
    } else if (e.isFile && p.endsWith(".ts") && !p.endsWith(".d.ts")) {
      out.push(p);
    }
  }
  return out.sort();
}

function parse(file: string): ts.SourceFile {
  let text;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      fail(`${file.slice(ROOT_DIR.length)} is named but does not exist`);
    }
    throw e;
  }
  return ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
}

// ---------------------------------------------------------------------------
// 1. Host boundary

/** Names in code (not comments) that only `runtime/host/` may use. */
function checkHostBoundary(): void {
  const bad: string[] = [];
  for (const file of walk(ROOT_DIR + "runtime/")) {
    if (file.startsWith(ROOT_DIR + "runtime/host/")) continue;
    const sf = parse(file);
    const visit = (node: ts.Node): void => {
      let what: string | undefined;
      if (ts.isIdentifier(node) && !isPropertyName(node)) {
        if (node.text === "Deno" || node.text === "process") what = node.text;
      } else if (
        ts.isStringLiteralLike(node) && node.text.startsWith("node:")
      ) {
        what = JSON.stringify(node.text);
      }
      if (what !== undefined) {
        const { line } = sf.getLineAndCharacterOfPosition(node.getStart());
        bad.push(`${file.slice(ROOT_DIR.length)}:${line + 1} names ${what}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  if (bad.length > 0) {
    fail(
      "Core files must reach the host through runtime/host/:\n  " +
        bad.join("\n  "),
    );
  }
}

/** `x.process` or `{ process: 1 }`: a property name, not the global. */
function isPropertyName(node: ts.Identifier): boolean {
  const p = node.parent;
  return (ts.isPropertyAccessExpression(p) && p.name === node) ||
    (ts.isPropertyAssignment(p) && p.name === node) ||
    (ts.isPropertyDeclaration(p) && p.name === node) ||
    (ts.isPropertySignature(p) && p.name === node) ||
    (ts.isMethodDeclaration(p) && p.name === node);
}

// ---------------------------------------------------------------------------
// 2. Module graph

/** Relative module specifiers a file names, with worker URLs. */
function specifiersOf(sf: ts.SourceFile): string[] {
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    const lit = specifierLiteral(node);
    if (lit !== undefined) out.push(lit.text);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out.filter((s) => s.startsWith("./") || s.startsWith("../"));
}

/**
 * The string literal naming a module in `node`, if any: an import or export
 * declaration, `import("...")`, an `import("...")` type, or
 * `new URL("...", import.meta.url)`.
 */
function specifierLiteral(node: ts.Node): ts.StringLiteral | undefined {
  let lit: ts.Node | undefined;
  if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
    lit = node.moduleSpecifier;
  } else if (
    ts.isCallExpression(node) &&
    node.expression.kind === ts.SyntaxKind.ImportKeyword
  ) {
    lit = node.arguments[0];
  } else if (ts.isImportTypeNode(node)) {
    const arg = node.argument;
    lit = ts.isLiteralTypeNode(arg) ? arg.literal : undefined;
  } else if (isWorkerUrl(node)) {
    lit = node.arguments![0];
  }
  return lit !== undefined && ts.isStringLiteral(lit) ? lit : undefined;
}

/** `new URL("literal", import.meta.url)`. */
function isWorkerUrl(node: ts.Node): node is ts.NewExpression {
  if (!ts.isNewExpression(node)) return false;
  const args = node.arguments;
  if (!ts.isIdentifier(node.expression) || node.expression.text !== "URL") {
    return false;
  }
  if (args?.length !== 2 || !ts.isStringLiteral(args[0])) return false;
  const base = args[1];
  return ts.isPropertyAccessExpression(base) && base.name.text === "url" &&
    ts.isMetaProperty(base.expression);
}

/** The package's files: the exports and all they reach. */
function packageFiles(entries: string[]): string[] {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of specifiersOf(parse(file))) {
      if (!spec.endsWith(".ts")) continue;
      todo.push(path(new URL(spec, "file://" + file)));
    }
  }
  return [...seen].sort();
}

// ---------------------------------------------------------------------------
// Specifier rewriting (one transformer for JS and `.d.ts` output)

/** Maps a source file to where its JS lands, or undefined if nowhere. */
type OutputOf = (source: string) => string | undefined;

function rewriter(
  outputOf: OutputOf,
): ts.TransformerFactory<ts.SourceFile | ts.Bundle> {
  return (ctx) => (root) => {
    if (!ts.isSourceFile(root)) return root;
    const from = root.fileName;
    const out = outputOf(from);
    if (out === undefined) fail(`No output place for ${from}`);
    const map = (spec: string): string => {
      if (!spec.startsWith("./") && !spec.startsWith("../")) return spec;
      if (!spec.endsWith(".ts")) return spec;
      const target = path(new URL(spec, "file://" + from));
      const dest = outputOf(target);
      if (dest === undefined) {
        fail(`${from} names ${spec}, which is not built`);
      }
      return relative(dirOf(out), dest);
    };
    const f = ctx.factory;
    const visit = (node: ts.Node): ts.Node => {
      const lit = specifierLiteral(node);
      if (lit !== undefined) {
        const to = map(lit.text);
        if (to !== lit.text) node = replaceLiteral(f, node, lit, to);
      }
      return ts.visitEachChild(node, visit, ctx);
    };
    return ts.visitNode(root, visit) as ts.SourceFile;
  };
}

function replaceLiteral(
  f: ts.NodeFactory,
  node: ts.Node,
  lit: ts.StringLiteral,
  to: string,
): ts.Node {
  const s = f.createStringLiteral(to);
  if (ts.isImportDeclaration(node)) {
    return f.updateImportDeclaration(
      node,
      node.modifiers,
      node.importClause,
      s,
      node.attributes,
    );
  }
  if (ts.isExportDeclaration(node)) {
    return f.updateExportDeclaration(
      node,
      node.modifiers,
      node.isTypeOnly,
      node.exportClause,
      s,
      node.attributes,
    );
  }
  if (ts.isImportTypeNode(node)) {
    return f.updateImportTypeNode(
      node,
      f.createLiteralTypeNode(s),
      node.attributes,
      node.qualifier,
      node.typeArguments,
      node.isTypeOf,
    );
  }
  if (ts.isCallExpression(node)) {
    return f.updateCallExpression(node, node.expression, node.typeArguments, [
      s,
      ...node.arguments.slice(1),
    ]);
  }
  if (ts.isNewExpression(node)) {
    return f.updateNewExpression(node, node.expression, node.typeArguments, [
      s,
      ...node.arguments!.slice(1),
    ]);
  }
  fail(`Cannot rewrite ${lit.text}`);
}

// ---------------------------------------------------------------------------
// 3-4. The package

function exportsOf(config: DenoConfig): Record<string, string> {
  const e = config.exports;
  return typeof e === "string" ? { ".": e } : e;
}

function jsOf(ts_: string): string {
  return ts_.replace(/\.ts$/, ".js");
}

function buildPackage(config: DenoConfig): Set<string> {
  const entries = Object.values(exportsOf(config)).map((p) =>
    path(new URL(p, ROOT))
  );
  const files = packageFiles(entries);
  const built = new Set(files);
  const outputOf: OutputOf = (src) =>
    built.has(src) ? jsOf(OUT_DIR + src.slice(ROOT_DIR.length)) : undefined;

  const program = ts.createProgram(files, OPTIONS);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length > 0) fail(format(diagnostics));
  const transform = rewriter(outputOf);
  const result = program.emit(undefined, write, undefined, false, {
    before: [transform as ts.TransformerFactory<ts.SourceFile>],
    afterDeclarations: [transform],
  });
  if (result.emitSkipped || result.diagnostics.length > 0) {
    fail(format(result.diagnostics));
  }

  const pkg = {
    name: config.name,
    version: config.version,
    description: DESCRIPTION,
    license: config.license,
    type: "module",
    exports: Object.fromEntries(
      Object.entries(exportsOf(config)).map(([key, target]) => [key, {
        types: target.replace(/\.ts$/, ".d.ts"),
        default: jsOf(target),
      }]),
    ),
    engines: { node: NODE_RANGE },
  };
  write(OUT_DIR + "package.json", JSON.stringify(pkg, null, 2) + "\n");
  Deno.copyFileSync(ROOT_DIR + "README.md", OUT_DIR + "README.md");
  Deno.copyFileSync(ROOT_DIR + "LICENSE", OUT_DIR + "LICENSE");
  checkExports(config);
  return built;
}

/** Reads `npm/package.json` back: its exports must be deno.json's. */
function checkExports(config: DenoConfig): void {
  const pkg = JSON.parse(Deno.readTextFileSync(OUT_DIR + "package.json"));
  const deno = exportsOf(config);
  const npm = pkg.exports as Record<string, { types: string; default: string }>;
  const keys = (o: object) => JSON.stringify(Object.keys(o).sort());
  if (keys(deno) !== keys(npm)) {
    fail(
      `package.json exports ${keys(npm)} differ from deno.json ${keys(deno)}`,
    );
  }
  for (const [key, target] of Object.entries(deno)) {
    const want = {
      types: target.replace(/\.ts$/, ".d.ts"),
      default: jsOf(target),
    };
    const got = npm[key];
    if (got.types !== want.types || got.default !== want.default) {
      fail(
        `Export ${key}: package.json has ${
          JSON.stringify(got)
        }, deno.json ${target}`,
      );
    }
    for (const file of [got.types, got.default]) {
      try {
        Deno.statSync(OUT_DIR + file);
      } catch {
        fail(`Export ${key}: ${file} was not built`);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// 5. Tests for Node

function buildTests(built: Set<string>): number {
  // The test files, and what they reach outside the package (helpers in
  // bench/, say), which lands beside them under npm_test/.
  // Deno-only modules (tests/node/skips.ts) are not compiled at all.
  // A Deno-only module the tests import is replaced by its substitute.
  const substitute = (file: string): string => {
    const sub = NODE_SUBSTITUTES[file.slice(ROOT_DIR.length)];
    return sub === undefined ? file : ROOT_DIR + sub.use;
  };
  const mine = new Set<string>();
  const todo = walk(ROOT_DIR + "tests/").filter((f) =>
    !Object.hasOwn(DENO_ONLY, f.slice(ROOT_DIR.length + "tests/".length))
  );
  while (todo.length > 0) {
    const file = substitute(todo.pop()!);
    if (mine.has(file) || built.has(file)) continue;
    if (!file.startsWith(ROOT_DIR)) fail(`Tests reach ${file}, outside`);
    mine.add(file);
    for (const spec of specifiersOf(parse(file))) {
      if (spec.endsWith(".ts")) {
        todo.push(path(new URL(spec, "file://" + file)));
      }
    }
  }
  const tests = [...mine].sort();
  const outputOf: OutputOf = (source) => {
    const src = substitute(source);
    const rel = src.slice(ROOT_DIR.length);
    if (built.has(src)) return jsOf(OUT_DIR + rel);
    if (mine.has(src)) return jsOf(TEST_OUT_DIR + rel);
    return undefined;
  };
  const transform = rewriter(outputOf) as ts.TransformerFactory<ts.SourceFile>;
  for (const file of tests) {
    const out = outputOf(file)!;
    const r = ts.transpileModule(Deno.readTextFileSync(file), {
      fileName: file,
      compilerOptions: {
        ...OPTIONS,
        declaration: false,
        rewriteRelativeImportExtensions: false,
        outDir: undefined,
        rootDir: undefined,
      },
      reportDiagnostics: true,
      transformers: { before: [transform] },
    });
    if (r.diagnostics?.length) fail(format(r.diagnostics));
    const map = out + ".map";
    const name = map.slice(map.lastIndexOf("/") + 1);
    write(
      out,
      r.outputText.replace(
        /\/\/# sourceMappingURL=.*$/m,
        `//# sourceMappingURL=${name}`,
      ),
    );
    write(map, r.sourceMapText!);
  }
  write(
    TEST_OUT_DIR + "package.json",
    JSON.stringify({ private: true, type: "module" }, null, 2) + "\n",
  );
  return tests.length;
}

// ---------------------------------------------------------------------------

function write(file: string, text: string): void {
  Deno.mkdirSync(dirOf(file), { recursive: true });
  Deno.writeTextFileSync(file, text);
}

function format(diagnostics: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ROOT_DIR,
    getNewLine: () => "\n",
  });
}

function clean(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

if (import.meta.main) {
  const withTests = Deno.args.includes("--tests");
  const config = JSON.parse(
    Deno.readTextFileSync(ROOT_DIR + "deno.json"),
  ) as DenoConfig;
  checkHostBoundary();
  clean(OUT_DIR);
  const built = buildPackage(config);
  console.log(
    `build:npm: ${config.name}@${config.version}: ${built.size} modules ` +
      `with .d.ts and source maps in npm/, typescript ${ts.version}`,
  );
  if (withTests) {
    clean(TEST_OUT_DIR);
    const n = buildTests(built);
    console.log(`build:npm: ${n} test files in npm_test/`);
  }
}
