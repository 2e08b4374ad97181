/**
 * Starts the seed scenario's load generator (`sock_load.ts`) as a separate
 * plain-Deno process, for `sock_test.ts` and `sock_workload.ts`.
 *
 * @module
 */

/** Bytes per generator write and per ring buffer. */
export const CHUNK = 16384;

/**
 * Spawns `deno run sock_load.ts`: `clients` connections to 127.0.0.1:`port`
 * streaming for `seconds`. It prints `ready` once all are connected, then
 * one JSON line `{ sent: number[] }` when done; stderr is inherited.
 *
 * @param port The receiver's port.
 * @param clients Connections to open.
 * @param seconds How long to stream.
 * @returns The child process (stdout piped).
 */
export function startLoadGenerator(
  port: number,
  clients: number,
  seconds: number,
): Deno.ChildProcess {
  return new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      new URL("./sock_load.ts", import.meta.url).href,
      String(port),
      String(clients),
      String(seconds),
      String(CHUNK),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}
