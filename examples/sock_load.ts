/**
 * Load generator for `sock_test.ts`, plain Deno TCP (no twloop): opens
 * `clients` connections to 127.0.0.1:`port`, then every client writes
 * `chunk`-byte blocks as fast as the socket takes them for `seconds`, and
 * closes. Prints `ready` when all are connected and, at the end, one JSON
 * line `{ "sent": [bytes per client, in connect order] }`.
 *
 * Run by `sock_test.ts` as a separate process:
 * `deno run --allow-net=127.0.0.1 examples/sock_load.ts <port> <clients> <seconds> <chunk>`
 *
 * Exits with code 3 and a message when it runs out of file descriptors
 * (see "1024 clients" in `sock_test.ts`).
 *
 * @module
 */

const [port, clients, seconds, chunk] = Deno.args.map(Number);
if (!(port > 0 && clients > 0 && seconds > 0 && chunk > 0)) {
  console.error("usage: sock_load.ts <port> <clients> <seconds> <chunk>");
  Deno.exit(2);
}

/** Connections opened at once; the listener's backlog is 511 by default. */
const CONNECT_BATCH = 128;

const conns: Deno.TcpConn[] = [];
try {
  for (let i = 0; i < clients; i += CONNECT_BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(clients, i + CONNECT_BATCH); j++) {
      batch.push(Deno.connect({ hostname: "127.0.0.1", port }));
    }
    conns.push(...await Promise.all(batch));
  }
} catch (e) {
  if ((e as { code?: unknown }).code !== "EMFILE") throw e;
  console.error(
    `sock_load: Cannot open ${clients} clients: too many open files after ` +
      `${conns.length} (raise the hard limit: ulimit -Hn ${
        clients + 64
      } or more)`,
  );
  Deno.exit(3);
}
console.log("ready");

const block = new Uint8Array(chunk).map((_, i) => i & 255);
const sent = new Array<number>(clients).fill(0);
const end = performance.now() + seconds * 1000;

await Promise.all(conns.map(async (c, i) => {
  try {
    while (performance.now() < end) sent[i] += await c.write(block);
  } finally {
    c.close();
  }
}));
console.log(JSON.stringify({ sent }));
