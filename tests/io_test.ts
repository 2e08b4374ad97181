/**
 * Host I/O on the loop (`runtime/io/loop_io.ts` and its handles).
 *
 * Two halves:
 * - a scripted host (`fake_io_host.ts`) settles each host operation when
 *   the test says so: completion order against tasks, timers and worker
 *   messages, cancellation and close are checked exactly, on a virtual
 *   clock;
 * - the Deno host on loopback sockets (port 0) and temp files under
 *   `tests/.tmp/` (the only directory the test task may write): every file
 *   and TCP operation and each error condition the OS can produce there.
 *
 * Every drive is bounded: a rescue stops a loop that has not finished after
 * a few real seconds, and the test then fails saying so.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connect, Loop, VirtualClock } from "../mod.ts";
import { LoopIo } from "../runtime/io/loop_io.ts";
import type { IoError, IoResult } from "../runtime/io/io_error.ts";
import type { TcpConn, TcpListener } from "../runtime/io/tcp.ts";
import type { FileHandle } from "../runtime/io/file.ts";
import { denoIo } from "../runtime/host/deno_io.ts";
import { FakeHost, FakeStream } from "./fake_io_host.ts";

/** Real milliseconds before a stuck drive is rescued (a failure). */
const RESCUE_MS = 4000;

/** Runs the async drive to its end; fails if it had to be rescued. */
async function drive(loop: Loop): Promise<void> {
  let rescued = false;
  const id = setTimeout(() => {
    rescued = true;
    loop.queue(() => loop.stop());
  }, RESCUE_MS);
  try {
    await loop.run();
  } finally {
    clearTimeout(id);
  }
  assert.equal(rescued, false, "the loop did not finish: an operation hung");
}

/** A macrotask turn: every pending promise reaction has run. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

function value<T>(r: IoResult<T>): T {
  if (!r.ok) throw r.error;
  return r.value;
}

function error<T>(r: IoResult<T>): IoError {
  assert.equal(r.ok, false, "expected the operation to fail");
  return (r as { error: IoError }).error;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

function fake(): { loop: Loop; io: LoopIo; host: FakeHost } {
  const host = new FakeHost();
  const loop = new Loop({ clock: new VirtualClock() });
  return { loop, io: new LoopIo(loop, host), host };
}

/** Opens the fake host's one file and returns the handle and its stream. */
async function openFake(): Promise<{
  loop: Loop;
  host: FakeHost;
  file: FileHandle;
  stream: FakeStream;
}> {
  const { loop, io, host } = fake();
  const stream = new FakeStream();
  let file: FileHandle | undefined;
  io.open("f", {}, (r) => file = value(r));
  host.opens.shift()!.resolve(stream);
  await drive(loop);
  return { loop, host, file: file!, stream };
}

Deno.test("scripted host: order", async (t) => {
  await t.step(
    "a completion runs in FIFO order with tasks, worker messages and due timers",
    async () => {
      const { loop, io, host } = fake();
      const seen: string[] = [];
      loop.onMessage = (m) => seen.push(`message ${m}`);
      const port = connect(loop.port());
      io.stat("a", () => seen.push("stat a"));
      io.stat("b", () => seen.push("stat b"));
      loop.queue(() => seen.push("task 1"));
      host.stats[0].resolve({
        size: 0,
        isFile: true,
        isDirectory: false,
        mtimeMs: null,
      });
      await settle(); // stat a is queued now, behind task 1
      port.post("m1");
      loop.setTimer(() => seen.push("timer"), 0);
      host.stats[1].resolve({
        size: 0,
        isFile: true,
        isDirectory: false,
        mtimeMs: null,
      });
      await settle(); // stat b is queued behind m1; the timer joins at the pass
      port.close();
      await drive(loop);
      assert.deepEqual(seen, [
        "task 1",
        "stat a",
        "message m1",
        "stat b",
        "timer",
      ]);
    },
  );

  await t.step(
    "reads of one handle reach the host one at a time and complete in call order",
    async () => {
      const { loop, file, stream } = await openFake();
      const got: string[] = [];
      const b1 = new Uint8Array(8);
      const b2 = new Uint8Array(8);
      file.read(b1, (r) => got.push(`1:${text(b1.subarray(0, value(r)!))}`));
      file.read(b2, (r) => got.push(`2:${text(b2.subarray(0, value(r)!))}`));
      await settle();
      assert.equal(stream.reads.length, 1, "the second read waits its turn");
      stream.feed("ab");
      await settle();
      assert.equal(stream.reads.length, 1);
      stream.feed("cd");
      await drive(loop);
      assert.deepEqual(got, ["1:ab", "2:cd"]);
    },
  );

  await t.step("writes go out in call order, each one whole", async () => {
    const { loop, file, stream } = await openFake();
    const done: number[] = [];
    file.write(bytes("hello"), (r) => done.push(value(r)));
    file.write(bytes("xy"), (r) => done.push(value(r)));
    await settle();
    assert.equal(stream.writes.length, 1);
    // A short write: the handle writes the rest before the next write.
    stream.writes.shift()!.resolve(2);
    await settle();
    assert.equal(text(stream.writes[0].arg), "llo");
    stream.writes.shift()!.resolve(3);
    await settle();
    assert.equal(text(stream.writes[0].arg), "xy");
    stream.writes.shift()!.resolve(2);
    await drive(loop);
    assert.deepEqual(done, [5, 2]);
  });
});

Deno.test("scripted host: cancellation", async (t) => {
  await t.step(
    "an already aborted signal completes with ECANCELED and never reaches the host",
    async () => {
      const { loop, file, stream } = await openFake();
      const ac = new AbortController();
      const reason = new Error("not wanted");
      ac.abort(reason);
      let e: IoError | undefined;
      file.read(new Uint8Array(4), (r) => e = error(r), { signal: ac.signal });
      await drive(loop);
      assert.equal(e?.code, "ECANCELED");
      assert.equal(e?.cause, reason);
      assert.equal(stream.reads.length, 0);
    },
  );

  await t.step(
    "aborting a pending read completes it at once; its late bytes go to the next read, not the old buffer",
    async () => {
      const { loop, file, stream } = await openFake();
      const ac = new AbortController();
      const old = new Uint8Array(4).fill(0xee); // canary
      let first: IoError | undefined;
      file.read(old, (r) => first = error(r), { signal: ac.signal });
      await settle();
      assert.equal(stream.reads.length, 1);
      ac.abort();
      await drive(loop); // ends: the cancelled read no longer holds the loop
      assert.equal(first?.code, "ECANCELED");
      stream.feed("late"); // the host read finishes after all
      await settle();
      assert.deepEqual([...old], [0xee, 0xee, 0xee, 0xee]);
      const b1 = new Uint8Array(3);
      const b2 = new Uint8Array(3);
      const got: string[] = [];
      file.read(b1, (r) => got.push(text(b1.subarray(0, value(r)!))));
      file.read(b2, (r) => got.push(text(b2.subarray(0, value(r)!))));
      await drive(loop);
      assert.deepEqual(got, ["lat", "e"]);
      assert.equal(
        stream.reads.length,
        0,
        "kept bytes served without the host",
      );
    },
  );

  await t.step(
    "a read aborted before its turn never reaches the host",
    async () => {
      const { loop, file, stream } = await openFake();
      const ac = new AbortController();
      const codes: string[] = [];
      file.read(new Uint8Array(2), (r) => codes.push(`1:${value(r)}`));
      file.read(new Uint8Array(2), (r) => codes.push(`2:${error(r).code}`), {
        signal: ac.signal,
      });
      await settle();
      ac.abort();
      stream.feed("ok");
      await drive(loop);
      assert.deepEqual(codes, ["2:ECANCELED", "1:2"]);
      assert.equal(stream.reads.length, 0);
    },
  );

  await t.step(
    "aborting after the outcome settled changes nothing",
    async () => {
      const { loop, file, stream } = await openFake();
      const ac = new AbortController();
      const buf = new Uint8Array(4);
      let n: number | null | undefined;
      file.read(buf, (r) => n = value(r), { signal: ac.signal });
      await settle();
      stream.feed("abcd");
      await settle();
      ac.abort();
      await drive(loop);
      assert.equal(n, 4);
      assert.equal(text(buf), "abcd");
    },
  );

  await t.step(
    "a connection accepted after its accept was cancelled is kept for the next accept",
    async () => {
      const { loop, io, host } = fake();
      let listener: TcpListener | undefined;
      io.listen({ port: 0 }, (r) => listener = value(r));
      await drive(loop);
      const ac = new AbortController();
      const seen: string[] = [];
      listener!.accept((r) => seen.push(error(r).code), { signal: ac.signal });
      await settle();
      ac.abort();
      await drive(loop);
      const conn = new FakeStream();
      host.listener.accepts.shift()!.resolve(conn);
      await settle();
      listener!.accept((r) => {
        seen.push("accepted");
        value(r).close();
      });
      await drive(loop);
      assert.deepEqual(seen, ["ECANCELED", "accepted"]);
      assert.equal(host.listener.accepts.length, 0);
      assert.equal(conn.closed, true);
    },
  );

  await t.step(
    "a connection made after connect was cancelled is closed",
    async () => {
      const { loop, io, host } = fake();
      const ac = new AbortController();
      let code = "";
      io.connect({ port: 9 }, (r) => code = error(r).code, {
        signal: ac.signal,
      });
      assert.equal(host.connects[0].arg, ac.signal, "the host gets the signal");
      ac.abort();
      await drive(loop);
      assert.equal(code, "ECANCELED");
      const conn = new FakeStream();
      host.connects.shift()!.resolve(conn);
      await settle();
      assert.equal(conn.closed, true);
    },
  );
});

Deno.test("scripted host: close and errors", async (t) => {
  await t.step(
    "closing completes a pending read with EBADF, and every later operation too",
    async () => {
      const { loop, file } = await openFake();
      const codes: string[] = [];
      file.read(new Uint8Array(2), (r) => codes.push(`read ${error(r).code}`));
      await settle();
      file.close((r) => codes.push(`close ${r.ok}`));
      file.read(new Uint8Array(2), (r) => codes.push(`read ${error(r).code}`));
      file.write(bytes("x"), (r) => codes.push(`write ${error(r).code}`));
      file.stat((r) => codes.push(`stat ${error(r).code}`));
      file.close((r) => codes.push(`close ${error(r).code}`));
      await drive(loop);
      assert.deepEqual(codes.toSorted(), [
        "close EBADF",
        "close true",
        "read EBADF",
        "read EBADF",
        "stat EBADF",
        "write EBADF",
      ]);
    },
  );

  await t.step(
    "a host rejection that is not an IoError arrives as EIO with its cause",
    async () => {
      const { loop, io, host } = fake();
      let e: IoError | undefined;
      io.stat("x", (r) => e = error(r));
      const odd = { weird: true };
      host.stats[0].reject(odd);
      await drive(loop);
      assert.equal(e?.code, "EIO");
      assert.equal(e?.cause, odd);
    },
  );

  await t.step("a throwing callback reaches onError", async () => {
    const host = new FakeHost();
    const errors: unknown[] = [];
    const loop = new Loop({
      clock: new VirtualClock(),
      onError: (e) => errors.push(e),
    });
    const io = new LoopIo(loop, host);
    const boom = new Error("boom");
    io.stat("x", () => {
      throw boom;
    });
    host.stats[0].reject(new Error("no"));
    await drive(loop);
    assert.deepEqual(errors, [boom]);
  });

  await t.step("wrong arguments throw at the call", () => {
    const { io, loop } = fake();
    assert.throws(() => new LoopIo({} as Loop, new FakeHost()), TypeError);
    assert.throws(() => io.stat(1 as unknown as string, () => {}), TypeError);
    assert.throws(() => io.stat("x", undefined as never), TypeError);
    assert.throws(() => io.connect({ port: 70000 }, () => {}), RangeError);
    assert.throws(() => io.connect({ port: 1.5 }, () => {}), TypeError);
    assert.throws(
      () => io.stat("x", () => {}, { signal: {} as AbortSignal }),
      TypeError,
    );
    loop.close();
    assert.throws(() => io.stat("x", () => {}), { name: "LoopClosedError" });
  });
});

// ---- The Deno host: real files and loopback sockets ----

const TMP = new URL("./.tmp/", import.meta.url);

async function tempFile(): Promise<string> {
  await Deno.mkdir(TMP, { recursive: true });
  return await Deno.makeTempFile({ dir: TMP.pathname, suffix: ".bin" });
}

function real(): { loop: Loop; io: LoopIo } {
  const loop = new Loop();
  return { loop, io: new LoopIo(loop, denoIo) };
}

Deno.test("Deno host: files", async (t) => {
  await t.step(
    "open, write, close, reopen, stat, read to end of file",
    async () => {
      const path = await tempFile();
      try {
        const { loop, io } = real();
        const log: string[] = [];
        const buf = new Uint8Array(4);
        let read = "";
        const readAll = (f: FileHandle) =>
          f.read(buf, (r) => {
            const n = value(r);
            if (n === null) {
              log.push(`eof after ${JSON.stringify(read)}`);
              f.close((c) => log.push(`closed ${c.ok}`));
              return;
            }
            read += text(buf.subarray(0, n));
            readAll(f);
          });
        io.open(path, { write: true, truncate: true }, (r) => {
          const f = value(r);
          f.write(bytes("hello file"), (w) => {
            log.push(`wrote ${value(w)}`);
            f.close(() => {
              // One after the other: two host operations in flight at once
              // may complete in either order.
              io.stat(path, (s) => {
                log.push(`size ${value(s).size}`);
                io.open(path, { read: true }, (o) => {
                  const g = value(o);
                  g.stat((s) => {
                    log.push(`isFile ${value(s).isFile}`);
                    readAll(g);
                  });
                });
              });
            });
          });
        });
        await drive(loop);
        assert.deepEqual(log, [
          "wrote 10",
          "size 10",
          "isFile true",
          'eof after "hello file"',
          "closed true",
        ]);
      } finally {
        await Deno.remove(path);
      }
    },
  );

  await t.step(
    "a missing file is ENOENT, a denied one EACCES, a directory EISDIR, writing a read-only handle EBADF",
    async () => {
      const path = await tempFile();
      try {
        const { loop, io } = real();
        const codes: string[] = [];
        io.open(`${path}.missing`, {}, (r) => codes.push(error(r).code));
        // The test task may read mod.ts but write nothing outside tests/.tmp.
        const mod = new URL("../mod.ts", import.meta.url).pathname;
        io.open(mod, { write: true }, (r) => codes.push(error(r).code));
        io.open(
          TMP.pathname,
          { write: true },
          (r) => codes.push(error(r).code),
        );
        io.open(path, { read: true }, (r) => {
          const f = value(r);
          f.write(bytes("x"), (w) => {
            codes.push(error(w).code);
            f.close();
          });
        });
        await drive(loop);
        assert.deepEqual(codes.toSorted(), [
          "EACCES",
          "EBADF",
          "EISDIR",
          "ENOENT",
        ]);
      } finally {
        await Deno.remove(path);
      }
    },
  );
});

/** Listens on 127.0.0.1, port 0. */
function listen(io: LoopIo, then: (l: TcpListener) => void): void {
  io.listen({ hostname: "127.0.0.1", port: 0 }, (r) => then(value(r)));
}

Deno.test("Deno host: TCP", async (t) => {
  await t.step(
    "a task flood under await loop.run() leaves host I/O its turns: echo round trips keep coming",
    async () => {
      const { loop, io } = real();
      const FLOOD_MS = 400;
      const end = performance.now() + FLOOD_MS;
      let trips = 0;
      listen(io, (l) => {
        l.accept((a) => {
          const s = value(a);
          const buf = new Uint8Array(1);
          const echo = () =>
            s.read(buf, (r) => {
              if (value(r) === null) return s.close();
              s.write(buf, echo);
            });
          echo();
          l.close();
        });
        io.connect({ port: l.address.port }, (c) => {
          const conn = value(c);
          const one = new Uint8Array(1);
          const trip = () =>
            conn.write(one, () =>
              conn.read(one, () => {
                trips++;
                if (performance.now() < end) trip();
                else conn.close();
              }));
          trip();
        });
      });
      const flood = () => {
        if (performance.now() < end) loop.queue(flood);
      };
      for (let i = 0; i < 8; i++) loop.queue(flood);
      await drive(loop);
      // A turn in which the host polls I/O comes after every 10 ms of busy
      // time while operations are tracked: ~15 trips here (each I/O step of
      // the echo takes a turn). Yielding only through a MessageChannel
      // (Deno) or only to port messages (Node) let 0-2 through.
      assert.ok(trips >= 6, `${trips} round trips in a ${FLOOD_MS} ms flood`);
    },
  );

  await t.step(
    "listen, accept, connect, write, read, end of stream, close",
    async () => {
      const { loop, io } = real();
      const log: string[] = [];
      listen(io, (l) => {
        l.accept((a) => {
          const s = value(a);
          const buf = new Uint8Array(64);
          let got = "";
          const next = () =>
            s.read(buf, (r) => {
              const n = value(r);
              if (n === null) {
                log.push(`server got ${JSON.stringify(got)} then eof`);
                s.write(bytes("bye"), () => s.close());
                return;
              }
              got += text(buf.subarray(0, n));
              next();
            });
          next();
          l.close();
        });
        io.connect({ port: l.address.port }, (c) => {
          const conn = value(c);
          assert.equal(conn.remote.port, l.address.port);
          conn.write(bytes("ping "), () => {});
          conn.write(bytes("pong"), () => {});
          conn.closeWrite((w) => {
            log.push(`client shut down writes ${w.ok}`);
            const buf = new Uint8Array(8);
            conn.read(buf, (r) => {
              log.push(`client got ${text(buf.subarray(0, value(r)!))}`);
              conn.close();
            });
          });
        });
      });
      await drive(loop);
      // The shutdown's completion and the server's end of stream are two
      // host completions that race: either order.
      assert.deepEqual(log.slice(0, 2).toSorted(), [
        "client shut down writes true",
        'server got "ping pong" then eof',
      ]);
      assert.equal(log[2], "client got bye");
      assert.equal(log.length, 3);
    },
  );

  await t.step("connecting where nothing listens is ECONNREFUSED", async () => {
    const { loop, io } = real();
    let port = 0;
    listen(io, (l) => {
      port = l.address.port;
      l.close(() => io.connect({ port }, (r) => code = error(r).code));
    });
    let code = "";
    await drive(loop);
    assert.equal(code, "ECONNREFUSED");
  });

  await t.step(
    "a connection reset before any FIN reads as ECONNRESET",
    async () => {
      const { loop, io } = real();
      let code = "";
      listen(io, (l) => {
        io.connect({ port: l.address.port }, (c) => {
          const conn = value(c);
          conn.read(new Uint8Array(8), (r) => {
            code = error(r).code;
            conn.close();
          });
          // Closing a listener resets connections it never accepted.
          l.close();
        });
      });
      await drive(loop);
      assert.equal(code, "ECONNRESET");
    },
  );

  await t.step(
    "writing after the peer closed fails with EPIPE (or ECONNRESET), not a throw",
    async () => {
      const { loop, io } = real();
      const codes: string[] = [];
      listen(io, (l) => {
        l.accept((a) => {
          const s = value(a);
          s.close(); // FIN, then RST for anything we send
          l.close();
        });
        io.connect({ port: l.address.port }, (c) => {
          const conn = value(c);
          conn.read(new Uint8Array(1), (r) => {
            assert.equal(value(r), null, "the peer's FIN");
            const big = new Uint8Array(1 << 16);
            const again = (k: number) =>
              conn.write(big, (w) => {
                if (w.ok && k < 64) return again(k + 1);
                if (!w.ok) codes.push(w.error.code);
                conn.close();
              });
            again(0);
          });
        });
      });
      await drive(loop);
      assert.equal(codes.length, 1, "a write failed");
      assert.ok(["EPIPE", "ECONNRESET"].includes(codes[0]), codes[0]);
    },
  );

  await t.step(
    "an aborted accept completes with ECANCELED; the connection it would have got goes to the next accept",
    async () => {
      const { loop, io } = real();
      const log: string[] = [];
      listen(io, (l) => {
        const ac = new AbortController();
        l.accept((r) => {
          log.push(`first ${error(r).code}`);
          io.connect({ port: l.address.port }, (c) => {
            const client = value(c);
            l.accept((a) => {
              const s = value(a);
              log.push(
                `second accepted ${s.remote.port === client.local.port}`,
              );
              s.close();
              client.close();
              l.close();
            });
          });
        }, { signal: ac.signal });
        loop.queue(() => ac.abort());
      });
      await drive(loop);
      assert.deepEqual(log, ["first ECANCELED", "second accepted true"]);
    },
  );

  await t.step(
    "an aborted read keeps the bytes it received for the next read",
    async () => {
      const { loop, io } = real();
      const log: string[] = [];
      listen(io, (l) => {
        l.accept((a) => {
          const s = value(a);
          l.close();
          const ac = new AbortController();
          const first = new Uint8Array(16);
          s.read(first, (r) => {
            log.push(`first ${error(r).code}`);
            s.write(bytes("go"), () => {}); // now the client sends
            const buf = new Uint8Array(16);
            const next = (acc: string) =>
              s.read(buf, (rr) => {
                const n = value(rr);
                if (n === null) {
                  log.push(`then ${acc}`);
                  s.close();
                  return;
                }
                next(acc + text(buf.subarray(0, n)));
              });
            next("");
          }, { signal: ac.signal });
          loop.queue(() => ac.abort());
        });
        io.connect({ port: l.address.port }, (c) => {
          const conn = value(c);
          const buf = new Uint8Array(2);
          conn.read(buf, () => {
            conn.write(bytes("kept bytes"), () => conn.close());
          });
        });
      });
      await drive(loop);
      assert.deepEqual(log, ["first ECANCELED", "then kept bytes"]);
    },
  );

  await t.step(
    "closing a listener completes its pending accept with EBADF",
    async () => {
      const { loop, io } = real();
      let code = "";
      listen(io, (l) => {
        l.accept((r) => code = error(r).code);
        loop.queue(() => l.close());
      });
      await drive(loop);
      assert.equal(code, "EBADF");
    },
  );

  await t.step(
    "closing a connection completes its pending read with EBADF",
    async () => {
      const { loop, io } = real();
      let code = "";
      let server: TcpConn | undefined;
      listen(io, (l) => {
        l.accept((a) => {
          server = value(a);
          l.close();
        });
        io.connect({ port: l.address.port }, (c) => {
          const conn = value(c);
          conn.read(new Uint8Array(4), (r) => {
            code = error(r).code;
            server?.close();
          });
          loop.queue(() => conn.close());
        });
      });
      await drive(loop);
      assert.equal(code, "EBADF");
    },
  );

  await t.step(
    "a connect aborted at once completes with ECANCELED",
    async () => {
      const { loop, io } = real();
      const ac = new AbortController();
      ac.abort();
      let code = "";
      io.connect({ port: 9 }, (r) => code = error(r).code, {
        signal: ac.signal,
      });
      await drive(loop);
      assert.equal(code, "ECANCELED");
    },
  );
});
