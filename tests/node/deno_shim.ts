/**
 * Enough of `Deno.test` for the suites to run under Node: `Deno.test` in
 * its four call shapes, `ignore` and `only`, and a test context whose
 * `step` runs a nested test and reports a failure to its parent, as Deno
 * does. Sanitizers and permissions do not apply on Node and are ignored.
 *
 * The runner (`run.ts`) sets {@linkcode setCurrentFile} before importing
 * each test module, then runs what it registered.
 *
 * @module
 */

/** The context a test or step receives (the part the suites use). */
export interface ShimContext {
  /** The test's or step's name. */
  readonly name: string;
  /** The test module's URL. */
  readonly origin: string;
  /** The enclosing context, for a step. */
  readonly parent?: ShimContext;
  /** Runs a nested step; resolves to whether it passed. */
  step(
    nameOrDef: string | StepDefinition | StepFn,
    fn?: StepFn,
  ): Promise<boolean>;
}

type StepFn = (t: ShimContext) => unknown;

interface StepDefinition {
  name: string;
  fn: StepFn;
  ignore?: boolean;
}

/** A registered test. */
export interface ShimTest {
  /** As given to `Deno.test`. */
  name: string;
  /** The body. */
  fn: StepFn;
  /** `ignore: true` was given. */
  ignore: boolean;
  /** `only: true` was given. */
  only: boolean;
  /** The module that registered it. */
  file: string;
}

/** One line of a step's outcome, for the runner to print. */
export interface StepReport {
  /** Nesting depth, 1 for a test's own steps. */
  depth: number;
  /** The step's name. */
  name: string;
  /** "ok", "FAILED", "ignored" or "skipped on Node: why". */
  result: string;
  /** The error, for a failed step. */
  error?: unknown;
}

const tests: ShimTest[] = [];
let currentFile = "";
let skipStep: (origin: string, path: string) => string | undefined = () =>
  undefined;

/**
 * Sets which steps are skipped: `skip(origin, "test > step")` returns why,
 * or undefined to run the step. A skipped step resolves to false, as an
 * ignored one does in Deno.
 *
 * @param skip The lookup.
 */
export function setStepSkips(
  skip: (origin: string, path: string) => string | undefined,
): void {
  skipStep = skip;
}

/**
 * Names the module whose registrations follow.
 *
 * @param file The test module's URL.
 */
export function setCurrentFile(file: string): void {
  currentFile = file;
}

/** @returns Every test registered so far. */
export function registered(): readonly ShimTest[] {
  return tests;
}

interface TestDefinition {
  name?: string;
  fn?: StepFn;
  ignore?: boolean;
  only?: boolean;
}

/**
 * `Deno.test` for the shim: `(name, fn)`, `(name, options, fn)`,
 * `(definition)`, `(options, fn)` or `(fn)`.
 *
 * @param a The name, definition or function.
 * @param b Options or the function.
 * @param c The function.
 * @throws {TypeError} No function or no name.
 */
export function test(a: unknown, b?: unknown, c?: unknown): void {
  let def: TestDefinition;
  if (typeof a === "string") {
    def = typeof b === "function"
      ? { name: a, fn: b as StepFn }
      : { ...(b as TestDefinition), name: a, fn: c as StepFn };
  } else if (typeof a === "function") {
    def = { name: a.name, fn: a as StepFn };
  } else {
    def = typeof b === "function"
      ? { ...(a as TestDefinition), fn: b as StepFn }
      : a as TestDefinition;
    def.name ??= def.fn?.name;
  }
  if (typeof def.fn !== "function" || !def.name) {
    throw new TypeError("Cannot register test: expected a name and a function");
  }
  tests.push({
    name: def.name,
    fn: def.fn,
    ignore: def.ignore === true,
    only: def.only === true,
    file: currentFile,
  });
}

/**
 * `Deno.test.only`: as {@linkcode test}, with `only: true`.
 *
 * @param a The name, definition or function.
 * @param b Options or the function.
 * @param c The function.
 */
test.only = (a: unknown, b?: unknown, c?: unknown): void => {
  test(a, b, c);
  tests[tests.length - 1].only = true;
};

/**
 * `Deno.test.ignore`: as {@linkcode test}, with `ignore: true`.
 *
 * @param a The name, definition or function.
 * @param b Options or the function.
 * @param c The function.
 */
test.ignore = (a: unknown, b?: unknown, c?: unknown): void => {
  test(a, b, c);
  tests[tests.length - 1].ignore = true;
};

/**
 * Runs a test body with a context whose steps report into `steps`.
 *
 * @param name The test's name.
 * @param origin The module URL.
 * @param fn The body.
 * @param steps Receives each step's outcome, in order.
 * @returns Resolves when the body and its steps are done.
 * @throws The body's error, or an error naming the failed steps.
 */
export async function runTest(
  name: string,
  origin: string,
  fn: StepFn,
  steps: StepReport[],
): Promise<void> {
  const failed: string[] = [];
  const ctx = context(name, origin, undefined, 1, steps, failed);
  await fn(ctx);
  if (failed.length > 0) {
    throw new Error(`Steps failed: ${failed.join(", ")}`);
  }
}

function pathOf(ctx: ShimContext): string {
  return ctx.parent === undefined
    ? ctx.name
    : `${pathOf(ctx.parent)} > ${ctx.name}`;
}

function context(
  name: string,
  origin: string,
  parent: ShimContext | undefined,
  depth: number,
  steps: StepReport[],
  failed: string[],
): ShimContext {
  const self: ShimContext = {
    name,
    origin,
    parent,
    async step(nameOrDef, maybeFn) {
      let def: StepDefinition;
      if (typeof nameOrDef === "string") {
        def = { name: nameOrDef, fn: maybeFn! };
      } else if (typeof nameOrDef === "function") {
        def = { name: nameOrDef.name, fn: nameOrDef };
      } else def = nameOrDef;
      if (def.ignore === true) {
        steps.push({ depth, name: def.name, result: "ignored" });
        return false;
      }
      const why = skipStep(origin, `${pathOf(self)} > ${def.name}`);
      if (why !== undefined) {
        steps.push({
          depth,
          name: def.name,
          result: `skipped on Node: ${why}`,
        });
        return false;
      }
      const mine: string[] = [];
      const at = steps.length;
      steps.push({ depth, name: def.name, result: "ok" });
      try {
        await def.fn(context(def.name, origin, self, depth + 1, steps, mine));
        if (mine.length > 0) {
          throw new Error(`Steps failed: ${mine.join(", ")}`);
        }
        return true;
      } catch (error) {
        steps[at] = { depth, name: def.name, result: "FAILED", error };
        failed.push(def.name);
        return false;
      }
    },
  };
  return self;
}
