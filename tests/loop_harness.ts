/**
 * Guards for driving a loop in tests: a drive that does not end turns into
 * a loud failure instead of a hung test.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FIRST_USER_TAG, type Loop, Producer, wake } from "../mod.ts";

/** Far beyond every deadline the tests set (exact in float64). */
const GUARD_DELAY = 2 ** 52;

/** Real milliseconds before a stuck async drive is rescued (a failure). */
const RESCUE_MS = 5000;

function watched(loop: Loop): { result: number; tripped: boolean } {
  let tripped = false;
  const guard = loop.setTimer(() => {
    tripped = true;
    loop.stop();
  }, GUARD_DELAY).unref();
  try {
    return { result: loop.runSync(), tripped };
  } finally {
    guard.cancel();
  }
}

/**
 * `runSync()` under an unreferenced far-future timer that stops it.
 *
 * @param loop The loop (a virtual clock jumps to the guard when stuck).
 * @returns Whether the guard had to stop the loop.
 */
export function runSyncWatched(loop: Loop): boolean {
  return watched(loop).tripped;
}

/**
 * `runSync()` that fails the test if the guard had to stop it, i.e. if
 * something kept the loop alive.
 *
 * @param loop The loop.
 * @returns What `runSync` returned.
 */
export function runSyncToEnd(loop: Loop): number {
  const { result, tripped } = watched(loop);
  assert.equal(
    tripped,
    false,
    "runSync kept running with nothing referenced left (alive() stuck true)",
  );
  return result;
}

/**
 * Awaits an async drive; if it has not settled after 5 s of real time,
 * stops and wakes the loop and fails.
 *
 * @param loop The loop being driven.
 * @param drive Its `run()` or `runOnce()` promise.
 * @returns What the drive resolved to.
 */
export async function settleOrRescue(
  loop: Loop,
  drive: Promise<number>,
): Promise<number> {
  let rescued = false;
  const id = setTimeout(() => {
    rescued = true;
    loop.stop();
    Producer.attach(loop.buffer).push(FIRST_USER_TAG, 0, 0);
    wake(new Int32Array(loop.buffer), false);
  }, RESCUE_MS);
  try {
    return await drive;
  } finally {
    clearTimeout(id);
    assert.equal(rescued, false, "the async drive never settled");
  }
}
