/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * Posting worker for `tests/close_test.ts`. It connects the port handle it
 * is sent, posts `{ kind: "ready" }`, waits for the go word, runs one task
 * and posts a {@linkcode PosterReport} (or `{ kind: "error", message }`).
 *
 * - `race`: posts `posterValue(id, 0)`, `posterValue(id, 1)`, ... with one
 *   method until a post throws {@linkcode LoopClosedError}. After each post
 *   that returned it stores the count of returned posts in
 *   `ctrl[C_RETURNED + id]`, so the test knows which posts completed.
 * - `after-seal`: one post per method, each expected to throw.
 * - `blocked`: fills the port (`fill` posts), stores `fill` in
 *   `ctrl[C_RETURNED + id]`, then makes one more `post` that waits for
 *   space until the loop closes.
 *
 * @module
 */
import { connect, LoopClosedError, type PortHandle } from "../../mod.ts";

/** Control word: 0 until the test lets the posters go. */
export const C_GO = 0;
/** Control words: posts returned so far by poster `id`, at `C_RETURNED + id`. */
export const C_RETURNED = 4;
/** Words in the control buffer (room for 12 posters). */
export const C_WORDS = 16;

/** Which port method a poster uses. */
export type PostMethod = "post" | "tryPost" | "postAsync";

/** One poster's task. */
export interface PosterTask {
  mode: "race" | "after-seal" | "blocked";
  handle: PortHandle;
  ctrl: SharedArrayBuffer;
  id: number;
  method: PostMethod;
  wake: "lazy" | "eager";
  /** `blocked`: posts that fill the port. */
  fill: number;
}

/** How one post ended in a LoopClosedError. */
export interface Refusal {
  method: PostMethod;
  name: string;
  message: string;
  /** The error's `data` is the very value passed to the post. */
  sameData: boolean;
}

/** What a poster reports. */
export interface PosterReport {
  kind: "done";
  id: number;
  slot: number;
  /** Posts that returned. */
  returned: number;
  /** One entry per post that threw, in order. */
  refused: Refusal[];
}

/**
 * The value poster `id` sends as its `seq`-th post with `method`: an int for
 * `post`, a string for `tryPost`, an object for `postAsync`, so each
 * encoding path meets the close protocol.
 *
 * @param id Poster id, 0 to 999.
 * @param seq Sequence number, 0 to 999 999.
 * @param method The method.
 * @returns The value.
 */
export function posterValue(
  id: number,
  seq: number,
  method: PostMethod,
): unknown {
  if (method === "post") return id * 1_000_000 + seq;
  if (method === "tryPost") return `${id}:${seq}`;
  return { id, seq };
}

/**
 * Reads back `[id, seq]` from a value made by {@linkcode posterValue}.
 *
 * @param v A delivered message.
 * @returns Poster id and sequence number.
 * @throws {Error} Not such a value.
 */
export function posterOf(v: unknown): [number, number] {
  if (typeof v === "number") return [Math.floor(v / 1_000_000), v % 1_000_000];
  if (typeof v === "string") {
    const [id, seq] = v.split(":").map(Number);
    return [id, seq];
  }
  if (typeof v === "object" && v !== null && "id" in v && "seq" in v) {
    return [Number(v.id), Number(v.seq)];
  }
  throw new Error(`Not a poster value: ${JSON.stringify(v)}`);
}

const pause = new Int32Array(new SharedArrayBuffer(4));
/** Bound on the whole task; the test's own bounds are shorter. */
const STUCK_MS = 20_000;

/** One post with `method`; false only when `tryPost` found the port full. */
async function postOnce(
  port: ReturnType<typeof connect>,
  method: PostMethod,
  value: unknown,
  wake: "lazy" | "eager",
): Promise<boolean> {
  if (method === "tryPost") return port.tryPost(value, { wake });
  if (method === "post") port.post(value, { wake, timeout: STUCK_MS });
  else await port.postAsync(value, { wake, timeout: STUCK_MS });
  return true;
}

function refusal(e: unknown, method: PostMethod, value: unknown): Refusal {
  if (!(e instanceof LoopClosedError)) throw e;
  return {
    method,
    name: e.name,
    message: e.message,
    sameData: e.data === value,
  };
}

async function run(task: PosterTask): Promise<PosterReport> {
  const ctrl = new Int32Array(task.ctrl);
  const port = connect(task.handle);
  const report: PosterReport = {
    kind: "done",
    id: task.id,
    slot: port.slot,
    returned: 0,
    refused: [],
  };
  self.postMessage({ kind: "ready" });
  const end = performance.now() + STUCK_MS;
  while (Atomics.load(ctrl, C_GO) === 0) {
    if (performance.now() > end) throw new Error("Never told to go");
    Atomics.wait(ctrl, C_GO, 0, 50);
  }
  const { id, method, wake } = task;
  if (task.mode === "after-seal") {
    for (const m of ["tryPost", "post", "postAsync"] as const) {
      const value = posterValue(id, report.refused.length, m);
      try {
        await postOnce(port, m, value, wake);
        report.returned++;
      } catch (e) {
        report.refused.push(refusal(e, m, value));
      }
    }
    return report;
  }
  if (task.mode === "blocked") {
    for (let seq = 0; seq < task.fill; seq++) {
      port.post(posterValue(id, seq, "post"));
      report.returned++;
    }
    Atomics.store(ctrl, C_RETURNED + id, report.returned);
    const value = posterValue(id, task.fill, "post");
    try {
      port.post(value, { timeout: STUCK_MS }); // waits: the port is full
      report.returned++;
    } catch (e) {
      report.refused.push(refusal(e, "post", value));
    }
    return report;
  }
  // race: post until refused, then once more to see the refusal stick.
  for (let seq = 0; report.refused.length < 2; seq++) {
    const value = posterValue(id, seq, method);
    try {
      while (!await postOnce(port, method, value, wake)) {
        if (performance.now() > end) throw new Error("Port full for good");
        Atomics.wait(pause, 0, 0, 0.05);
      }
      if (report.refused.length > 0) {
        throw new Error(`Post ${seq} returned after an earlier one threw`);
      }
      report.returned++;
      Atomics.store(ctrl, C_RETURNED + id, report.returned);
    } catch (e) {
      report.refused.push(refusal(e, method, value));
    }
    if (performance.now() > end) throw new Error("Never refused");
  }
  return report;
}

self.onmessage = async (event: MessageEvent<PosterTask>) => {
  try {
    self.postMessage(await run(event.data));
  } catch (e) {
    self.postMessage({
      kind: "error",
      message: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  }
};
