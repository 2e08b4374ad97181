/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Producer worker for `tests/port_test.ts`. It gets its port either from
 * `spawnWorker` (through `workerPort`) or as `{ kind: "connect", handle,
 * task }` from a plain `Worker` (through `connect`), runs one task, and
 * closes the port. Any broken expectation throws: the uncaught error reaches
 * the loop through `spawnWorker`'s fault path, or the test's `error`
 * listener for a plain worker.
 *
 * - `catalogue`: posts every `payloadCases()` value (cycling through `post`,
 *   `tryPost` and `postAsync`); before each one, tries every
 *   `nonCloneableCases()` value through one of the three and expects
 *   `DataCloneError`.
 * - `stream`: posts `count` seeded `streamMessage`s with seeded methods,
 *   retrying `tryPost` while it returns false.
 * - `backpressure`: with the loop not yet running, fills the port, checks
 *   `tryPost` refuses, `post` and `postAsync` time out with
 *   `PostTimeoutError` carrying the value, then posts `count` numbers with
 *   a blocking `post`, reporting its phase in `ctrl[C_PHASE]`.
 * - `wake`: the wake-policy rounds; see `wakeRounds`.
 *
 * @module
 */
import { connect, type Port, type PortHandle } from "../../runtime/port.ts";
import { PostTimeoutError } from "../../runtime/port.ts";
import { DataCloneError } from "../../runtime/codec.ts";
import { workerPort } from "../../runtime/spawn.ts";
import { WAIT_NR } from "../../runtime/queue_layout.ts";
import {
  C_ARMED,
  C_DELIVERED,
  C_LAZY_KEPT_ASLEEP,
  C_LAZY_KEPT_ASLEEP_2,
  C_PHASE,
  nonCloneableCases,
  payloadCases,
  PHASE_BLOCKING,
  PHASE_POSTED,
  prng,
  type ProducerTask,
  streamMessage,
  streamMethod,
} from "./port_payloads.ts";

const pause = new Int32Array(new SharedArrayBuffer(4));
const BOUND_MS = 10_000;

function sleepMs(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

/** Waits (blocking, bounded) until `ready()`; throws naming `what`. */
function until(ready: () => boolean, what: string): void {
  const end = performance.now() + BOUND_MS;
  while (!ready()) {
    if (performance.now() > end) throw new Error(`Timed out: ${what}`);
    sleepMs(0.05);
  }
}

function expectCloneError(e: unknown, name: string): void {
  if (!(e instanceof DataCloneError)) {
    throw new Error(`${name}: expected DataCloneError, got ${e}`);
  }
}

async function catalogue(port: Port): Promise<void> {
  const bad = nonCloneableCases();
  const cases = payloadCases();
  for (let i = 0; i < cases.length; i++) {
    const b = bad[i % bad.length];
    switch (i % 3) {
      case 0:
        try {
          port.post(b.value);
          throw new Error(`${b.name}: post accepted it`);
        } catch (e) {
          expectCloneError(e, b.name);
        }
        break;
      case 1:
        try {
          port.tryPost(b.value);
          throw new Error(`${b.name}: tryPost accepted it`);
        } catch (e) {
          expectCloneError(e, b.name);
        }
        break;
      default:
        await port.postAsync(b.value).then(
          () => {
            throw new Error(`${b.name}: postAsync accepted it`);
          },
          (e) => expectCloneError(e, b.name),
        );
    }
    const c = cases[i];
    if (i % 3 === 0) port.post(c.value);
    else if (i % 3 === 1) until(() => port.tryPost(c.value), "tryPost");
    else await port.postAsync(c.value);
  }
}

async function stream(port: Port, task: ProducerTask): Promise<void> {
  const random = prng(task.seed!);
  for (let seq = 0; seq < task.count!; seq++) {
    const m = streamMessage(task.id!, seq, random);
    const how = streamMethod(random);
    if (how === "post") port.post(m, { timeout: BOUND_MS });
    else if (how === "postAsync") {
      await port.postAsync(m, { timeout: BOUND_MS });
    } else until(() => port.tryPost(m), `tryPost of message ${seq}`);
  }
}

function expectTimeout(e: unknown, data: unknown, ms: number): void {
  if (!(e instanceof PostTimeoutError)) {
    throw new Error(`Expected PostTimeoutError, got ${e}`);
  }
  if (e.data !== data) throw new Error(`PostTimeoutError.data is ${e.data}`);
  if (!e.message.includes(`after ${ms} ms`)) {
    throw new Error(`PostTimeoutError message: ${e.message}`);
  }
}

async function backpressure(port: Port, task: ProducerTask): Promise<void> {
  const ctrl = new Int32Array(task.ctrl!);
  const fill = task.fill!;
  for (let i = 0; i < fill; i++) {
    if (!port.tryPost(i)) throw new Error(`tryPost ${i} refused early`);
  }
  if (port.tryPost(fill)) throw new Error("tryPost accepted on a full port");
  try {
    port.post(fill, { timeout: 5 });
    throw new Error("post returned on a full port");
  } catch (e) {
    expectTimeout(e, fill, 5);
  }
  const obj = { seq: fill };
  try {
    port.post(obj, { timeout: 0 });
    throw new Error("post returned on a full port");
  } catch (e) {
    expectTimeout(e, obj, 0);
  }
  await port.postAsync(fill, { timeout: 5 }).then(
    () => {
      throw new Error("postAsync resolved on a full port");
    },
    (e) => expectTimeout(e, fill, 5),
  );
  Atomics.store(ctrl, C_PHASE, PHASE_BLOCKING);
  for (let i = fill; i < task.count!; i++) port.post(i, { timeout: BOUND_MS });
  Atomics.store(ctrl, C_PHASE, PHASE_POSTED);
}

/**
 * The wake rounds. The test stores in `C_ARMED` the arming count of a loop
 * it saw asleep with `WAIT_NR === minEvents` (from a macrotask of its own, so
 * the loop's arming, re-check and `waitAsync` have all run); each round
 * waits for a fresh arming so the loop is surely asleep when it posts.
 *
 * 1. `minEvents - 1` lazy posts (the first with no options: lazy is the
 *    default) leave the loop asleep: `WAIT_NR` still armed and nothing
 *    delivered. The next lazy post reaches the threshold and wakes it.
 * 2. An eager `post`, then an eager `tryPost`, then an eager `postAsync`,
 *    each alone on a fresh arming, wake it.
 * 3. `minEvents - 1` lazy posts again leave it asleep; `close()` wakes it.
 *
 * Messages are 1, 2, ... in order; the loop counts them in `C_DELIVERED`.
 */
async function wakeRounds(port: Port, task: ProducerTask): Promise<void> {
  const w = new Int32Array(task.buffer!);
  const ctrl = new Int32Array(task.ctrl!);
  const k = task.minEvents!;
  let seen = 0;
  let sent = 0;
  const armed = () => {
    until(() => Atomics.load(ctrl, C_ARMED) > seen, "a fresh arming");
    seen = Atomics.load(ctrl, C_ARMED);
  };
  const delivered = () =>
    until(() => Atomics.load(ctrl, C_DELIVERED) === sent, `${sent} delivered`);
  const asleep = () =>
    Atomics.load(w, WAIT_NR) === k &&
      Atomics.load(ctrl, C_DELIVERED) === sent - (k - 1)
      ? 1
      : 2;

  armed();
  port.post(++sent);
  for (let i = 2; i < k; i++) port.post(++sent, { wake: "lazy" });
  Atomics.store(ctrl, C_LAZY_KEPT_ASLEEP, asleep());
  port.post(++sent, { wake: "lazy" });
  delivered();

  armed();
  port.post(++sent, { wake: "eager" });
  delivered();
  armed();
  if (!port.tryPost(++sent, { wake: "eager" })) throw new Error("tryPost");
  delivered();
  armed();
  await port.postAsync(++sent, { wake: "eager" });
  delivered();

  armed();
  for (let i = 1; i < k; i++) port.post(++sent);
  Atomics.store(ctrl, C_LAZY_KEPT_ASLEEP_2, asleep());
}

/** The port and task, from `spawnWorker` or a plain `connect` message. */
function start(): Promise<{ port: Port; task: ProducerTask }> {
  return new Promise((resolve) => {
    self.addEventListener("message", (ev: MessageEvent) => {
      const m = ev.data as {
        kind?: string;
        handle: PortHandle;
        task: ProducerTask;
      };
      if (m?.kind === "connect") {
        resolve({ port: connect(m.handle), task: m.task });
      }
    }, { once: true });
    workerPort().then(({ port, data }) =>
      resolve({ port, task: data as ProducerTask })
    );
  });
}

const { port, task } = await start();
switch (task.mode) {
  case "catalogue":
    await catalogue(port);
    break;
  case "stream":
    await stream(port, task);
    break;
  case "backpressure":
    await backpressure(port, task);
    break;
  case "wake":
    await wakeRounds(port, task);
    break;
}
port.close();
