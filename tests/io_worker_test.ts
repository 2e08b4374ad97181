/**
 * I/O workers (`runtime/io/io_worker.ts`, `io_worker_thread.ts`) on
 * loopback: multishot receives into the provided buffer ring, backpressure
 * when the loop holds buffers, cancel and re-arm, sends, connects, stop,
 * many connections on a small ring, a custom completion sink, and the
 * faults of issue 6: a client leaving mid-stream, a reset, a slow
 * consumer. Clients run on the loop's own thread through `LoopIo`.
 *
 * Every byte is checked: a client sends its seed, then a pattern that
 * depends on the offset and the seed, so a lost, repeated or reordered
 * byte fails. Every drive is bounded by a rescue that fails the test.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Loop } from "../mod.ts";
import {
  IoWorker,
  type IoWorkerOptions,
  KEEP_BUFFER,
} from "../runtime/io/io_worker.ts";
import { LoopIo } from "../runtime/io/loop_io.ts";
import type { IoError, IoResult } from "../runtime/io/io_error.ts";
import type { TcpConn } from "../runtime/io/tcp.ts";
import { denoIo, denoIoError } from "../runtime/host/deno_io.ts";
import { failure, failureCode } from "../runtime/io/io_worker_protocol.ts";

const RESCUE_MS = 8000;

async function drive(loop: Loop, io: IoWorker): Promise<void> {
  let rescued = false;
  let state = "";
  const id = setTimeout(() => {
    rescued = true;
    state = JSON.stringify({ ...io.stats(), pending: loop.pending() });
    io.terminate();
    loop.queue(() => loop.stop());
  }, RESCUE_MS);
  try {
    await loop.run();
  } finally {
    clearTimeout(id);
  }
  assert.equal(
    rescued,
    false,
    `the loop did not finish: the test hung ${state}`,
  );
}

function value<T>(r: IoResult<T>): T {
  if (!r.ok) throw r.error;
  return r.value;
}

/** Byte `i` of the stream of client `seed` (byte 0 is the seed). */
function patternByte(seed: number, i: number): number {
  return i === 0 ? seed : (i * 7 + seed * 13) & 255;
}

function pattern(seed: number, from: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = patternByte(seed, from + i);
  return b;
}

/** Checks every received byte against its client's pattern. */
class Tally {
  readonly seedOf = new Map<number, number>();
  readonly count = new Map<number, number>();
  readonly ends = new Map<number, string>();

  add(conn: number, bytes: Uint8Array): void {
    let at = this.count.get(conn) ?? 0;
    if (at === 0 && bytes.length > 0) this.seedOf.set(conn, bytes[0]);
    const seed = this.seedOf.get(conn)!;
    for (let i = 0; i < bytes.length; i++, at++) {
      if (bytes[i] !== patternByte(seed, at)) {
        throw new Error(`conn ${conn}: wrong byte at ${at}`);
      }
    }
    this.count.set(conn, at);
  }

  /** Bytes received per seed. */
  bySeed(): Map<number, number> {
    const m = new Map<number, number>();
    for (const [conn, n] of this.count) m.set(this.seedOf.get(conn)!, n);
    return m;
  }
}

/**
 * A client on the loop thread: connects, sends `total` pattern bytes in
 * `chunk`-sized writes, then closes (or `stopAt` bytes early).
 */
function client(
  lio: LoopIo,
  port: number,
  seed: number,
  total: number,
  chunk: number,
  done: (sent: number) => void = () => {},
  stopAt = total,
): void {
  lio.connect({ port }, (c) => {
    const conn = value(c);
    let sent = 0;
    const next = () => {
      if (sent >= stopAt) {
        conn.close();
        return done(sent);
      }
      const n = Math.min(chunk, stopAt - sent);
      conn.write(pattern(seed, sent, n), (w) => {
        sent += value(w);
        next();
      });
    };
    next();
  });
}

function setup(options: IoWorkerOptions = {}) {
  const loop = new Loop();
  const io = IoWorker.start(loop, denoIo, options);
  return { loop, io, lio: new LoopIo(loop, denoIo), tally: new Tally() };
}

Deno.test("I/O worker", async (t) => {
  await t.step(
    "multishot receives deliver every byte of every connection in order, then end of stream",
    async () => {
      const { loop, io, lio, tally } = setup({
        buffers: 16,
        bufferSize: 4096,
        perConnection: 4,
      });
      const TOTAL = 200_000;
      io.onData = (conn, bytes) => tally.add(conn, bytes);
      io.onEnd = (conn, e) => {
        tally.ends.set(conn, e?.code ?? "eof");
        io.close(conn);
        if (tally.ends.size === 3) io.stop();
      };
      io.listen({ port: 0 }, (r) => {
        for (let s = 1; s <= 3; s++) {
          client(lio, value(r).port, s, TOTAL, 16384);
        }
      }, { arm: true });
      await drive(loop, io);
      assert.deepEqual([...tally.bySeed()].toSorted(), [
        [1, TOTAL],
        [2, TOTAL],
        [3, TOTAL],
      ]);
      assert.deepEqual([...tally.ends.values()], ["eof", "eof", "eof"]);
      assert.equal(io.ring.held, 0);
      const s = io.stats();
      assert.equal(
        s.posted,
        s.receives + 3 + 3 + 1 + 3 + 1,
        "every item counted",
      );
      assert.ok(s.batches <= s.posted);
    },
  );

  await t.step(
    "when the loop holds every buffer the worker pauses, and resumes when they come back, every byte accounted",
    async () => {
      // 4 buffers of 64 bytes, all of which one connection may hold.
      const { loop, io, lio, tally } = setup({
        buffers: 4,
        bufferSize: 64,
        perConnection: 4,
      });
      const TOTAL = 1000;
      const kept: number[] = [];
      let holding = true;
      let seenWhileHeld = -1;
      io.onData = (conn, bytes, buffer) => {
        tally.add(conn, bytes);
        if (!holding) return;
        kept.push(buffer);
        return KEEP_BUFFER;
      };
      io.onEnd = (conn, e) => {
        tally.ends.set(conn, e?.code ?? "eof");
        io.close(conn, () => io.stop());
      };
      // Poll until the worker reports a paused socket with all 4 held, then
      // check twice that nothing more arrives before giving them back.
      let checks = 0;
      const poll = loop.setTimer(
        () => {
          const s = io.stats();
          if (io.ring.held === 4 && s.starved === 1) {
            const received = [...tally.count.values()][0];
            if (seenWhileHeld === -1) seenWhileHeld = received;
            assert.equal(received, seenWhileHeld, "no receive while paused");
            if (++checks < 3) return;
            poll.cancel();
            assert.ok(s.pauses >= 1);
            holding = false;
            for (const b of kept.splice(0)) io.release(b);
          }
        },
        2,
        2,
      );
      io.listen({ port: 0 }, (r) => {
        client(lio, value(r).port, 9, TOTAL, TOTAL);
      }, { arm: true });
      await drive(loop, io);
      assert.equal(seenWhileHeld, 4 * 64, "paused with exactly 4 full buffers");
      assert.deepEqual([...tally.bySeed()], [[9, TOTAL]]);
      assert.deepEqual([...tally.ends.values()], ["eof"]);
    },
  );

  await t.step(
    "cancel ends the receive with ECANCELED; bytes that arrive meanwhile come first on the next arm",
    async () => {
      const { loop, io, lio, tally } = setup({ buffers: 4, bufferSize: 256 });
      const log: string[] = [];
      let peer: TcpConn | undefined;
      io.onData = (conn, bytes) => {
        tally.add(conn, bytes);
        if (tally.count.get(conn) === 100) io.cancel(conn);
      };
      io.onEnd = (conn, e) => {
        log.push(e?.code ?? "eof");
        if (e?.code === "ECANCELED") {
          // More bytes while no receive is armed, then re-arm later.
          peer!.write(pattern(5, 100, 100), () => {
            loop.setTimer(() => io.arm(conn), 20);
            peer!.close();
          });
        } else {
          io.close(conn, () => io.stop());
        }
      };
      io.listen({ port: 0 }, (r) => {
        lio.connect({ port: value(r).port }, (c) => {
          peer = value(c);
          peer.write(pattern(5, 0, 100), () => {});
        });
      }, { arm: true });
      await drive(loop, io);
      assert.deepEqual(log, ["ECANCELED", "eof"]);
      assert.deepEqual([...tally.bySeed()], [[5, 200]]);
    },
  );

  await t.step(
    "connects and sends from the worker; close ends the receive with EBADF; a refused connect is ECONNREFUSED",
    async () => {
      const { loop, io, lio } = setup({ buffers: 4, bufferSize: 256 });
      const log: string[] = [];
      io.onData = (conn, bytes) => {
        log.push(`worker got ${new TextDecoder().decode(bytes)}`);
        io.close(conn, (r) => {
          log.push(`closed ${r.ok}`);
          assert.throws(() => io.arm(conn), RangeError);
          io.connect({ port: closedPort }, (c) => {
            log.push(`connect ${(c as { error: IoError }).error.code}`);
            io.stop((s) => log.push(`stopped ${s.ok}`));
          });
        });
      };
      io.onEnd = (_conn, e) => log.push(`end ${e?.code}`);
      let closedPort = 0;
      lio.listen({ port: 0 }, (l) => {
        const listener = value(l);
        closedPort = listener.address.port;
        listener.accept((a) => {
          const server = value(a);
          listener.close();
          const buf = new Uint8Array(16);
          server.read(buf, (r) => {
            log.push(
              `loop got ${
                new TextDecoder().decode(buf.subarray(0, value(r)!))
              }`,
            );
            server.write(new TextEncoder().encode("pong"), () => {});
            server.read(buf, () => server.close()); // until the worker closes
          });
        });
        io.connect({ port: closedPort }, (c) => {
          const conn = value(c);
          io.send(conn, new TextEncoder().encode("ping"), (s) => {
            log.push(`sent ${value(s)}`);
          });
        }, { arm: true });
      });
      await drive(loop, io);
      // The send's completion and the loop's own read race: any order.
      assert.deepEqual(log.slice(0, 2).toSorted(), ["loop got ping", "sent 4"]);
      assert.deepEqual(log.slice(2), [
        "worker got pong",
        "end EBADF",
        "closed true",
        "connect ECONNREFUSED",
        "stopped true",
      ]);
    },
  );

  await t.step(
    "stop ends running receives with EBADF, fails pending calls, and lets run() return",
    async () => {
      const { loop, io, lio } = setup({ buffers: 4, bufferSize: 256 });
      const log: string[] = [];
      io.onEnd = (_conn, e) => log.push(`end ${e?.code}`);
      io.onAccept = (conn) => {
        io.send(conn, new Uint8Array(1), () => {}); // may go before the stop
        io.stop((r) => {
          log.push(`stopped ${r.ok}`);
          io.listen({ port: 0 }, (l) => log.push(`listen ${!l.ok}`));
        });
      };
      io.listen({ port: 0 }, (r) => {
        lio.connect({ port: value(r).port }, (c) => {
          const client = value(c);
          // The byte sent, or end of stream once the worker stopped.
          client.read(new Uint8Array(8), () => client.close());
        });
      }, { arm: true });
      await drive(loop, io);
      assert.deepEqual(log, ["end EBADF", "stopped true", "listen true"]);
      assert.equal(io.stopped, true);
    },
  );
});

Deno.test("I/O worker limits", async (t) => {
  await t.step(
    "200 connections on a ring of 64 buffers: a connection that ends hands its unused buffer to one waiting, so none stalls",
    async () => {
      const { loop, io, lio, tally } = setup({
        buffers: 64,
        bufferSize: 1024,
        perConnection: 2,
      });
      const CLIENTS = 200;
      const TOTAL = 3000;
      io.onData = (conn, bytes) => tally.add(conn, bytes);
      io.onEnd = (conn, e) => {
        tally.ends.set(conn, e?.code ?? "eof");
        io.close(conn);
        if (tally.ends.size === CLIENTS) io.stop();
      };
      io.listen({ port: 0 }, (r) => {
        for (let s = 0; s < CLIENTS; s++) {
          client(lio, value(r).port, s, TOTAL, TOTAL);
        }
      }, { arm: true });
      await drive(loop, io);
      assert.equal(tally.bySeed().size, CLIENTS);
      for (const [seed, n] of tally.bySeed()) assert.equal(n, TOTAL, `${seed}`);
      assert.ok([...tally.ends.values()].every((e) => e === "eof"));
      assert.equal(io.ring.held, 0);
    },
  );

  await t.step(
    "a custom sink gets every completion; one that takes a single item per call loses nothing and keeps order",
    async () => {
      const calls = new SharedArrayBuffer(4);
      const { loop, io, lio, tally } = setup({
        buffers: 8,
        bufferSize: 4096,
        perConnection: 2,
        workerUrl: new URL("./io_sink_worker.ts", import.meta.url),
        sinkData: calls,
      });
      const TOTAL = 20_000;
      io.onData = (conn, bytes) => tally.add(conn, bytes);
      io.onEnd = (conn, e) => {
        tally.ends.set(conn, e?.code ?? "eof");
        io.close(conn);
        if (tally.ends.size === 2) io.stop();
      };
      io.listen({ port: 0 }, (r) => {
        for (let s = 1; s <= 2; s++) {
          client(lio, value(r).port, s, TOTAL, 8192);
        }
      }, { arm: true });
      await drive(loop, io);
      assert.deepEqual([...tally.bySeed()].toSorted(), [[1, TOTAL], [
        2,
        TOTAL,
      ]]);
      assert.deepEqual([...tally.ends.values()], ["eof", "eof"]);
      const s = io.stats();
      assert.equal(s.batches, s.posted, "one item per sink call");
      assert.equal(Atomics.load(new Int32Array(calls), 0), s.posted);
    },
  );

  await t.step("EMFILE survives the wire and says what to raise", () => {
    const e = denoIoError(
      Object.assign(new Error("Too many open files (os error 24)"), {
        code: "EMFILE",
      }),
      "accept",
    );
    assert.equal(e.code, "EMFILE");
    assert.equal(e.message, "Cannot accept: too many open files");
    assert.equal(failureCode(failure("EMFILE")), "EMFILE");
    assert.throws(
      () =>
        IoWorker.start(new Loop(), denoIo, {
          workerUrl: "x" as unknown as URL,
        }),
      TypeError,
    );
  });
});

Deno.test("I/O worker faults", async (t) => {
  await t.step(
    "a client leaving mid-stream ends only its own receive; every byte it sent is accounted",
    async () => {
      const { loop, io, lio, tally } = setup({
        buffers: 32,
        bufferSize: 4096,
        perConnection: 4,
      });
      const TOTAL = 300_000;
      const sent = new Map<number, number>();
      io.onData = (conn, bytes) => tally.add(conn, bytes);
      io.onEnd = (conn, e) => {
        tally.ends.set(conn, e?.code ?? "eof");
        io.close(conn);
        if (tally.ends.size === 4) io.stop();
      };
      io.listen({ port: 0 }, (r) => {
        for (let s = 1; s <= 4; s++) {
          const stopAt = s === 1 ? 50_000 : TOTAL; // client 1 leaves early
          client(
            lio,
            value(r).port,
            s,
            TOTAL,
            8192,
            (n) => sent.set(s, n),
            stopAt,
          );
        }
      }, { arm: true });
      await drive(loop, io);
      assert.deepEqual(tally.bySeed(), sent);
      assert.equal(sent.get(1), 50_000);
      assert.equal(sent.get(2), TOTAL);
    },
  );

  await t.step(
    "a reset ends that receive with ECONNRESET while another connection streams on",
    async () => {
      const { loop, io, lio, tally } = setup({
        buffers: 16,
        bufferSize: 4096,
        perConnection: 4,
      });
      const TOTAL = 200_000;
      const ends: string[] = [];
      io.onData = (conn, bytes) => tally.add(conn, bytes);
      io.onEnd = (conn, e) => {
        ends.push(e?.code ?? "eof");
        io.close(conn);
        if (ends.length === 2) io.stop();
      };
      // A listener that never accepts: closing it resets the worker's
      // connection, which sits in its backlog.
      lio.listen({ port: 0 }, (l) => {
        const doomed = value(l);
        io.connect({ port: doomed.address.port }, (c) => {
          value(c);
          io.listen({ port: 0 }, (r) => {
            client(lio, value(r).port, 3, TOTAL, 8192);
            loop.setTimer(() => doomed.close(), 5);
          }, { arm: true });
        }, { arm: true });
      });
      await drive(loop, io);
      assert.deepEqual(ends.toSorted(), ["ECONNRESET", "eof"]);
      assert.deepEqual([...tally.bySeed()], [[3, TOTAL]]);
    },
  );

  await t.step(
    "a slow consumer holding its buffers stalls only its own connection",
    async () => {
      const { loop, io, lio, tally } = setup({
        buffers: 12,
        bufferSize: 1024,
        perConnection: 3,
      });
      const TOTAL = 100_000;
      let slow = -1; // the connection of client 1, once known
      const kept: number[] = [];
      let othersDone = 0;
      let heldWhenOthersDone = -1;
      io.onData = (conn, bytes, buffer) => {
        tally.add(conn, bytes);
        if (tally.seedOf.get(conn) === 1 && slow === -1) slow = conn;
        if (conn === slow && othersDone < 2) {
          kept.push(buffer);
          return KEEP_BUFFER;
        }
      };
      io.onEnd = (conn, e) => {
        tally.ends.set(conn, e?.code ?? "eof");
        io.close(conn);
        if (conn !== slow && ++othersDone === 2) {
          heldWhenOthersDone = kept.length;
          for (const b of kept.splice(0)) io.release(b);
        }
        if (tally.ends.size === 3) io.stop();
      };
      io.listen({ port: 0 }, (r) => {
        for (let s = 1; s <= 3; s++) client(lio, value(r).port, s, TOTAL, 8192);
      }, { arm: true });
      await drive(loop, io);
      assert.equal(heldWhenOthersDone, 3, "the slow one stopped at its quota");
      assert.deepEqual([...tally.bySeed()].toSorted(), [
        [1, TOTAL],
        [2, TOTAL],
        [3, TOTAL],
      ]);
      assert.deepEqual([...tally.ends.values()], ["eof", "eof", "eof"]);
    },
  );
});
