/**
 * Port hardening: failing cases from a hostile review of `runtime/port.ts`,
 * each a named test whose title says the behaviour.
 *
 * The worker tests run `workers/port_hardening_worker.ts` (a file, not a
 * blob module: Node's module loader refuses `blob:` URLs). Every wait is
 * bounded and fails saying what it waited for; no assertion is on time.
 * Two tests hold the loop back for 1.3 s of real time: the bug they guard
 * against gave up on the close verdict after 1 s.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  connect,
  LoopClosedError,
  PostTimeoutError,
  ReentrancyError,
} from "../mod.ts";
import { Loop } from "../runtime/loop.ts";
import { WAIT_NR, WAKE_CLOSING } from "../runtime/queue_layout.ts";
import { TestWorker, turn, within } from "./worker_harness.ts";

/** Bound on each wait for a worker or a loop, real ms. */
const WAIT_MS = 10_000;

const WORKER = new URL("./workers/port_hardening_worker.ts", import.meta.url);

/** The case worker (`workers/port_hardening_worker.ts`) with its first job. */
function caseWorker<M extends { kind: string }>(
  mode: "post-one" | "fill-and-close",
  first: Record<string, unknown>,
): TestWorker<M> {
  return new TestWorker<M>(WORKER, { mode, ...first });
}

/**
 * Puts the loop in close protocol step 1's window: "closing" stored, the
 * marker not pushed yet (`loop.close()` later stores it again and pushes
 * the marker), so a post pushed now is ahead of the marker.
 */
function storeClosing(loop: Loop): void {
  Atomics.store(new Int32Array(loop.buffer), WAIT_NR, WAKE_CLOSING);
}

type Outcome = { kind: "posting" } | {
  kind: "done";
  outcome: string;
  message?: string;
  data?: unknown;
};

Deno.test("a post that reads 'closing' waits for the seal as long as it takes and returns when its value is delivered, never also throwing LoopClosedError", async () => {
  const got: unknown[] = [];
  const loop = new Loop({ onMessage: (d) => got.push(d) });
  const handle = loop.port();
  storeClosing(loop);
  const w = caseWorker<Outcome>("post-one", { handle });
  try {
    assert.equal((await w.next(WAIT_MS, "the worker to post")).kind, "posting");
    await turn(1300); // past the 1 s the verdict wait used to give up after
    loop.close(); // pushes the marker behind the worker's 42, then seals
    const r = await w.next(WAIT_MS, "the post's outcome");
    assert.deepEqual(got, [42], "the value is delivered once");
    assert.equal(
      r.kind === "done" && r.outcome,
      "returned",
      `the delivered post returned: ${JSON.stringify(r)}`,
    );
  } finally {
    w.terminate();
  }
});

Deno.test("a post whose close verdict does not come within its timeout throws DeliveryUnknownError carrying the value, not LoopClosedError; the value is then delivered", async () => {
  const got: unknown[] = [];
  const loop = new Loop({ onMessage: (d) => got.push(d) });
  const handle = loop.port();
  storeClosing(loop);
  const w = caseWorker<Outcome>("post-one", {
    handle,
    options: { timeout: 50 },
  });
  try {
    await w.next(WAIT_MS, "the worker to post");
    const r = await w.next(WAIT_MS, "the post's outcome");
    assert.ok(r.kind === "done");
    assert.equal(r.outcome, "DeliveryUnknownError", r.message);
    assert.match(
      r.message!,
      /^Cannot confirm message delivery: .*may or may not be delivered/,
    );
    assert.equal(r.data, 42);
    loop.close();
    assert.deepEqual(got, [42], "queued ahead of the marker: delivered");
  } finally {
    w.terminate();
  }
});

type CloseReport = { kind: "full"; n: number } | {
  kind: "close";
  outcome: string;
  message?: string;
};

Deno.test("Port.close() on a port that stays full throws PostTimeoutError 'Cannot close port', keeps the port open and its slot out of loop.port(), and a retried close() succeeds", async () => {
  let got = 0;
  const loop = new Loop({
    capacity: { nodesPerProducer: 8 },
    onMessage: () => got++,
  });
  const handle = loop.port();
  const w = caseWorker<CloseReport>("fill-and-close", { handle, timeout: 50 });
  try {
    const full = await w.next(WAIT_MS, "the worker to fill its port");
    assert.ok(full.kind === "full" && full.n > 0);
    const r = await w.next(WAIT_MS, "the first close() to give up");
    assert.ok(r.kind === "close");
    assert.equal(r.outcome, "PostTimeoutError", r.message);
    assert.match(r.message!, /^Cannot close port: .*the port stays open/);
    assert.ok(loop.alive(), "the loop still counts the port open");
    const other = loop.port();
    assert.notEqual(
      other.slot,
      handle.slot,
      "the slot is not handed out twice",
    );
    connect(other).close();
    loop.runNoWait(); // frees space
    w.worker.postMessage({ timeout: 5000 });
    const again = await w.next(WAIT_MS, "the retried close()");
    assert.ok(again.kind === "close");
    assert.equal(again.outcome, "closed", again.message);
    await within(loop.run(), WAIT_MS, "run() to return once the port closed");
    assert.equal(got, full.n, "every message delivered");
  } finally {
    w.terminate();
  }
});

/** A loop on this thread with a 4-node port, filled. */
function fullPort(): {
  loop: Loop;
  got: unknown[];
  port: ReturnType<typeof connect>;
} {
  const got: unknown[] = [];
  const loop = new Loop({
    capacity: { nodesPerProducer: 4 },
    onMessage: (d) => got.push(d),
  });
  const port = connect(loop.port());
  let n = 0;
  while (port.tryPost(n)) n++;
  assert.equal(n, 4);
  return { loop, got, port };
}

Deno.test("postAsync calls that wait for space keep call order: a later postAsync never overtakes an earlier one", async () => {
  const { loop, got, port } = fullPort();
  const a = port.postAsync("A");
  await turn(20); // A is backing off
  loop.runNoWait(); // frees the port
  const b = port.postAsync("B"); // space now, but A is still waiting
  await within(Promise.all([a, b]), WAIT_MS, "A and B to be queued");
  loop.runNoWait();
  assert.deepEqual(got, [0, 1, 2, 3, "A", "B"]);
});

Deno.test("while a postAsync waits for space, tryPost returns false and post sends the waiting value first", async () => {
  const { loop, got, port } = fullPort();
  const c = port.postAsync("C");
  loop.runNoWait(); // frees the port; C still waits for its retry
  assert.equal(port.tryPost("T"), false, "tryPost does not overtake C");
  port.post("D"); // sends C, then D
  await within(c, WAIT_MS, "C's promise to settle");
  loop.runNoWait();
  assert.deepEqual(got, [0, 1, 2, 3, "C", "D"]);
});

Deno.test("postAsync that waits for space sends the bytes as they were at call time", async () => {
  const { loop, got, port } = fullPort();
  const bytes = new Uint8Array([1, 2, 3]);
  const p = port.postAsync(bytes);
  bytes[0] = 9; // the caller reuses its buffer
  loop.runNoWait();
  await within(p, WAIT_MS, "the bytes to be queued");
  loop.runNoWait();
  assert.deepEqual(got.slice(4).map((b) => [...(b as Uint8Array)]), [[
    1,
    2,
    3,
  ]]);
});

Deno.test("a stale handle (its slot closed and reserved again) cannot connect; the rightful handle connects and delivers", () => {
  const got: string[] = [];
  const loop = new Loop({ onMessage: (d, slot) => got.push(`${d}@${slot}`) });
  const h1 = loop.port();
  const p1 = connect(h1);
  p1.post("first");
  p1.close();
  loop.runNoWait();
  const h2 = loop.port();
  assert.equal(h2.slot, h1.slot, "the slot was reserved again");
  assert.throws(() => connect(h1), (e) => {
    assert.ok(e instanceof RangeError);
    assert.equal(
      e.message,
      "Cannot connect port: the handle is stale (its slot was closed and reserved again)",
    );
    return true;
  });
  const p2 = connect(h2);
  p2.post("second");
  p2.close();
  loop.runNoWait();
  assert.deepEqual(got, [`first@${h1.slot}`, `second@${h2.slot}`]);
});

Deno.test("bad input to ports: null options count as absent, non-object options, a port closed by close() and bad slots say what is wrong", () => {
  const got: unknown[] = [];
  const loop = new Loop({ onMessage: (d) => got.push(d) });
  const h = loop.port();
  const port = connect(h);
  // deno-lint-ignore no-explicit-any
  port.post(1, null as any);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => port.post(2, 5 as any), {
    name: "TypeError",
    message: "Cannot post message: options must be an object, got 5",
  });
  port.close();
  for (const call of [() => port.post(3), () => port.tryPost(3)]) {
    assert.throws(call, (e) => {
      assert.ok(e instanceof LoopClosedError);
      assert.equal(e.message, "Cannot post message: port is closed");
      assert.equal(e.data, 3);
      return true;
    });
  }
  assert.throws(() => port.requestClose(), {
    message: "Cannot request close: port is closed",
  });
  loop.runNoWait();
  assert.deepEqual(got, [1]);
  const other = loop.port();
  for (
    const [slot, name, message] of [
      [
        -1,
        "RangeError",
        /^Cannot connect port: slot must be from 0 to \d+, got -1$/,
      ],
      [
        1.5,
        "TypeError",
        /^Cannot connect port: slot must be an integer, got 1.5$/,
      ],
      [
        NaN,
        "TypeError",
        /^Cannot connect port: slot must be an integer, got NaN$/,
      ],
    ] as const
  ) {
    assert.throws(() => connect({ ...other, slot }), { name, message });
  }
  assert.ok(PostTimeoutError); // re-exported beside LoopClosedError
});

Deno.test("tryPost of a string that fits by its UTF-8 length is queued even when its worst case (3 bytes per unit) does not fit", () => {
  const got: unknown[] = [];
  const loop = new Loop({
    capacity: { bytesPerProducer: 256 },
    onMessage: (d) => got.push(d),
  });
  const port = connect(loop.port());
  assert.ok(port.tryPost(new Uint8Array(150)));
  const ascii = "a".repeat(60); // 60 bytes; the worst case, 180, does not fit
  assert.ok(port.tryPost(ascii), "refused though 60 bytes fit");
  assert.ok(!port.tryPost("é".repeat(60)), "120 bytes cannot fit: full");
  port.close();
  while (loop.runNoWait() > 0);
  assert.equal(got.length, 2);
  assert.equal(got[1], ascii);
});

Deno.test("a post from a getter of the value its port is encoding throws ReentrancyError; the inner value is not queued and the slot is not handed out mid-write", () => {
  const loop = new Loop({ capacity: { producers: 2 } });
  try {
    const seen: unknown[] = [];
    loop.onMessage = (v) => seen.push(v);
    const h = loop.port();
    const port = connect(h);
    const inner: unknown[] = [];
    let reserved: unknown;
    port.post({
      get x() {
        try {
          port.post("inner");
          inner.push("returned");
        } catch (e) {
          inner.push(e);
        }
        // A death report while the write is under way must not free the
        // slot under it: loop.port() finds no free slot yet.
        loop.producerDied(h.slot);
        loop.runNoWait();
        try {
          loop.port();
          reserved = "a slot";
        } catch (e) {
          reserved = e;
        }
        return "outer";
      },
    });
    assert.equal(inner.length, 1);
    assert.ok(inner[0] instanceof ReentrancyError, String(inner[0]));
    assert.equal(
      (inner[0] as Error).message,
      "Cannot post message: this port is already writing a message (posted again while encoding it)",
    );
    assert.ok(reserved instanceof RangeError, String(reserved));
    loop.runNoWait();
    assert.deepEqual(seen, [{ x: "outer" }], "the outer post, once");
    // The slot is reclaimed after the write: a new port gets it and delivers.
    loop.runNoWait();
    const again = connect(loop.port());
    again.post("after");
    loop.runNoWait();
    assert.deepEqual(seen, [{ x: "outer" }, "after"]);
  } finally {
    loop.close();
  }
});

Deno.test("a getter that posts and lets ReentrancyError escape fails the outer post: nothing queued, the port still works", () => {
  const loop = new Loop();
  try {
    const seen: unknown[] = [];
    loop.onMessage = (v) => seen.push(v);
    const port = connect(loop.port());
    const value = {
      get x() {
        port.post("inner");
        return 1;
      },
    };
    assert.throws(() => port.post(value), ReentrancyError);
    assert.equal(port.tryPost("next"), true);
    loop.runNoWait();
    assert.deepEqual(seen, ["next"]);
  } finally {
    loop.close();
  }
});

Deno.test("close() or requestClose() from a getter of the value its port is encoding throws ReentrancyError; the message is delivered, the port stays open", () => {
  for (const call of ["close", "requestClose"] as const) {
    const loop = new Loop({ stallMs: Infinity });
    try {
      const got: unknown[] = [];
      loop.onMessage = (d) => got.push(d);
      const handle = loop.port();
      loop.onPortClosed(handle.slot, () => got.push("port closed"));
      const port = connect(handle);
      let inner: unknown;
      port.post({
        get a() {
          try {
            port[call]();
          } catch (e) {
            inner = e;
          }
          return 1;
        },
      });
      assert.ok(inner instanceof ReentrancyError, `${call}: ${inner}`);
      assert.match(
        (inner as Error).message,
        /^Cannot (close port|request close): this port is already writing a message/,
      );
      loop.runNoWait();
      assert.deepEqual(got, [{ a: 1 }], call);
      port.post(2); // still open
      port.close();
      loop.runNoWait();
      assert.deepEqual(got, [{ a: 1 }, 2, "port closed"], call);
    } finally {
      loop.close();
    }
  }
});

Deno.test("a tryPost from a getter while postAsync encodes for a full port throws ReentrancyError; the waiting value arrives whole", async () => {
  const loop = new Loop({ capacity: { nodesPerProducer: 8 } });
  try {
    const got: unknown[] = [];
    loop.onMessage = (d) => got.push(d);
    const port = connect(loop.port());
    let filled = 0;
    while (port.tryPost(0)) filled++;
    let inner: unknown;
    const value = {
      x: "outer",
      get y() {
        try {
          inner = port.tryPost({ nested: "z".repeat(16) });
        } catch (e) {
          inner = e;
        }
        return 42;
      },
      z: [7, 8, 9],
    };
    const sent = port.postAsync(value);
    assert.ok(inner instanceof ReentrancyError, String(inner));
    loop.runNoWait();
    await within(sent, WAIT_MS, "the waiting postAsync to be sent");
    loop.runNoWait();
    assert.equal(got.length, filled + 1);
    assert.deepEqual(got.at(-1), { x: "outer", y: 42, z: [7, 8, 9] });
  } finally {
    loop.close();
  }
});
