/**
 * Workload: a timer storm. Sets `--timers` one-shot loop timers (10^6 by
 * default), each with a whole-millisecond delay drawn uniformly from
 * `[0, --spread)` ms (default 1000), so about a thousand timers share each
 * deadline; cancels a seeded random share of them (`--cancel`, default 0.1)
 * before any of them is due; then checks that every other timer fires
 * exactly once, in deadline order with ties in creation order.
 *
 * Timers are set from loop tasks, `--batch` at a time (default 5000), so
 * the loop keeps firing due timers (and the progress line keeps moving)
 * while the storm is still being set up: setting 10^6 timers takes a few
 * seconds of the loop's time.
 *
 * The latency recorded is each timer's lateness: from its deadline (when
 * it became due, its "enqueue") to the start of its callback, on the
 * loop's clock. Under `--virtual-time` the loop jumps from deadline to
 * deadline without sleeping, so lateness is 0 and the run takes only as
 * long as the work.
 *
 * Run: `deno task start examples/timer_storm.ts -- --timers 1000000`
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Timer } from "../mod.ts";
import type { WorkloadContext, WorkloadResult } from "../cli/workload.ts";

/**
 * Runs the storm.
 *
 * @param ctx The runner's context.
 * @returns Counts of timers set, cancelled and fired, and setup time.
 */
export default function timerStorm(
  ctx: WorkloadContext,
): Promise<WorkloadResult> {
  const { values } = parseArgs({
    args: [...ctx.args],
    options: {
      timers: { type: "string", default: "1000000" },
      spread: { type: "string", default: "1000" },
      cancel: { type: "string", default: "0.1" },
      batch: { type: "string", default: "5000" },
    },
  });
  const n = whole("--timers", values.timers, 1, 1e8);
  const spread = whole("--spread", values.spread, 1, 2 ** 31 - 1);
  const batch = whole("--batch", values.batch, 1, 1e8);
  const share = Number(values.cancel);
  if (!(share >= 0 && share <= 1)) {
    throw new RangeError(
      `Bad value for timer_storm --cancel: expected 0 to 1, got "${values.cancel}"`,
    );
  }
  const { loop } = ctx;
  const clock = loop.clock;
  const timers = new Array<Timer>(n);
  const settled = new Uint8Array(n); // 1 once fired or cancelled
  let set = 0;
  let fired = 0;
  let cancelled = 0;
  let stoppedEarly = 0;
  let outOfOrder = 0;
  let setupMs = 0;
  let lastDeadline = -Infinity;
  let lastSeq = -1;

  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (outOfOrder > 0) {
        reject(new Error(`Timers ran out of order ${outOfOrder} time(s)`));
      } else if (fired + cancelled + stoppedEarly !== n) {
        reject(
          new Error(
            `Timers lost: ${n} to set, ${fired} fired, ${
              cancelled + stoppedEarly
            } cancelled or never set`,
          ),
        );
      } else {
        resolve({
          timers: n,
          cancelled,
          fired,
          cancelledAtStop: stoppedEarly,
          outOfOrder,
          setupMs: Math.round(setupMs),
        });
      }
    };
    const settledAll = () => set === n && fired + cancelled === n;
    const onFire = (i: number) => {
      const t = timers[i];
      settled[i] = 1;
      ctx.recordLatency(clock.now() - t.deadline);
      if (
        t.deadline < lastDeadline ||
        (t.deadline === lastDeadline && t.seq < lastSeq)
      ) outOfOrder++;
      lastDeadline = t.deadline;
      lastSeq = t.seq;
      fired++;
      if (settledAll()) finish();
    };
    // One batch: set the timers, then cancel a share of them in the same
    // task, before the next pass can find any of them due.
    const setBatch = () => {
      if (done || ctx.signal.aborted) return;
      const t0 = performance.now();
      const from = set;
      const to = Math.min(n, from + batch);
      for (let i = from; i < to; i++) {
        const delay = Math.floor(ctx.random() * spread);
        timers[i] = loop.setTimer(() => onFire(i), delay);
      }
      for (let i = from; i < to; i++) {
        if (ctx.random() < share) {
          timers[i].cancel();
          settled[i] = 1;
          cancelled++;
        }
      }
      set = to;
      setupMs += performance.now() - t0;
      if (set < n) loop.queue(setBatch);
      else {
        ctx.log(
          `set ${n} timers in ${setupMs.toFixed(0)} ms, cancelled ${cancelled}`,
        );
        if (settledAll()) finish();
      }
    };
    loop.queue(setBatch);
    ctx.signal.addEventListener("abort", () => {
      if (done) return;
      // Stop: cancel what has not fired, count what was never set.
      for (let i = 0; i < set; i++) {
        if (settled[i] === 0) {
          timers[i].cancel();
          settled[i] = 1;
          stoppedEarly++;
        }
      }
      stoppedEarly += n - set;
      finish();
    });
  });
}

function whole(flag: string, s: string, min: number, max: number): number {
  const v = Number(s);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(
      `Bad value for timer_storm ${flag}: expected a whole number from ${min} to ${max}, got "${s}"`,
    );
  }
  return v;
}
