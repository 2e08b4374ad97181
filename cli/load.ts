/**
 * Finding and importing a workload module, with one clear
 * {@linkcode LoadError} for each way it can go wrong: no read permission,
 * no such file, a module that fails to resolve, parse or evaluate, no
 * default export, a default export that is not a function.
 *
 * A path is resolved against the directory the command was started in
 * (`INIT_CWD`, which `deno task` sets, else the current directory); a
 * string with a URL scheme (`file:`, `https:`) is used as is.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Workload } from "./workload.ts";

/** The workload could not be loaded: print the message and exit 1. */
export class LoadError extends Error {
  /**
   * Makes the error.
   *
   * @param spec The workload as given.
   * @param detail What went wrong.
   */
  constructor(spec: string, detail: string) {
    super(`Cannot load workload ${spec}: ${detail}`);
    this.name = "LoadError";
  }
}

/** A loaded workload module. */
export interface LoadedWorkload {
  /** The module's URL. */
  readonly url: URL;
  /** Its default export. */
  readonly run: Workload;
}

/** The directories the `start` task may read (see deno.json). */
export const TASK_READ_DIRS = "mod.ts,runtime,cli,examples,workloads";

/**
 * Turns a path or URL into a module URL.
 *
 * @param spec The workload as given.
 * @param base Directory relative paths are resolved against.
 * @returns The URL.
 */
export function workloadUrl(spec: string, base: string): URL {
  // A scheme of two letters or more: `C:\x.ts` stays a path.
  if (/^[a-z][a-z0-9+.-]+:/i.test(spec)) {
    try {
      return new URL(spec);
    } catch {
      throw new LoadError(spec, "not a valid URL");
    }
  }
  return pathToFileURL(resolve(base, spec));
}

/**
 * Imports a workload and checks its default export.
 *
 * @param spec The workload as given (for messages).
 * @param url Its URL, from {@linkcode workloadUrl}.
 * @returns The module's URL and default export.
 * @throws {LoadError} See the module docs.
 */
export async function loadWorkload(
  spec: string,
  url: URL,
): Promise<LoadedWorkload> {
  if (url.protocol === "file:") await checkFile(spec, fileURLToPath(url));
  let mod: Record<string, unknown>;
  try {
    mod = await import(url.href);
  } catch (error) {
    throw new LoadError(spec, describeImportError(error));
  }
  if (!("default" in mod)) {
    throw new LoadError(
      spec,
      "the module has no default export (expected `export default function (ctx) { ... }`, see cli/workload.ts)",
    );
  }
  if (typeof mod.default !== "function") {
    throw new LoadError(
      spec,
      `its default export is ${
        mod.default === null ? "null" : `a ${typeof mod.default}`
      }, not a function (see cli/workload.ts)`,
    );
  }
  return { url, run: mod.default as Workload };
}

async function checkFile(spec: string, path: string): Promise<void> {
  const read = await Deno.permissions.query({ name: "read", path });
  if (read.state !== "granted") {
    throw new LoadError(
      spec,
      `no read access to ${path}. The start task reads only ${TASK_READ_DIRS}: ` +
        `put your workload under workloads/, or run it directly with ` +
        `deno run --allow-read=${TASK_READ_DIRS},${
          dirname(path)
        } cli/main.ts ${spec}`,
    );
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new LoadError(
      spec,
      error instanceof Deno.errors.NotFound
        ? `no such file (looked for ${path})`
        : firstLine(error),
    );
  }
  if (!info.isFile) throw new LoadError(spec, `${path} is not a file`);
}

/** Import failures: resolution and syntax errors, or top-level throws. */
function describeImportError(error: unknown): string {
  const code = (error as { code?: string })?.code;
  if (
    code === "ERR_MODULE_NOT_FOUND" || code === "ERR_UNSUPPORTED_ESM_URL_SCHEME"
  ) {
    return firstLines(error);
  }
  return `its top-level code threw ${firstLine(error)}`;
}

function plain(error: unknown): string {
  const text = error instanceof Error ? `${error.message}` : String(error);
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

function firstLine(error: unknown): string {
  const name = error instanceof Error ? `${error.name}: ` : "";
  return name + plain(error).split("\n")[0];
}

/** A syntax error's message with its source excerpt and location. */
function firstLines(error: unknown): string {
  const lines = plain(error).split("\n");
  const at = lines.find((l) => l.trim().startsWith("at "));
  return lines[0] +
    (at && !lines[0].includes(at.trim()) ? ` (${at.trim()})` : "");
}
