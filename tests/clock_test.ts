/**
 * The clocks a loop reads (`runtime/clock.ts`): the caller-driven
 * {@linkcode VirtualClock} and the host's monotonic {@linkcode RealClock}.
 * No wall-clock assertions: RealClock is only checked for never going back.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Clock, RealClock, VirtualClock } from "../mod.ts";

function isClockError(
  type: typeof TypeError | typeof RangeError,
  action: string,
) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    assert.equal(e.constructor, type);
    assert.ok(
      e.message.startsWith(`Cannot ${action}: `),
      `message: ${e.message}`,
    );
    assert.doesNotMatch(e.message, /\.$/);
    return true;
  };
}

Deno.test("VirtualClock", async (t) => {
  await t.step("starts at 0, or at the given finite start", () => {
    assert.equal(new VirtualClock().now(), 0);
    assert.equal(new VirtualClock(12.5).now(), 12.5);
    assert.equal(new VirtualClock(-3).now(), -3);
    assert.equal(new VirtualClock().virtual, true);
  });

  await t.step("a NaN or infinite start throws RangeError", () => {
    for (const start of [NaN, Infinity, -Infinity]) {
      assert.throws(
        () => new VirtualClock(start),
        isClockError(RangeError, "create clock"),
        `start ${start}`,
      );
    }
  });

  await t.step("moves only when advanced: reading it does not", () => {
    const clock = new VirtualClock(5);
    for (let i = 0; i < 3; i++) assert.equal(clock.now(), 5);
  });

  await t.step("advance() adds exactly, including 0 and fractions", () => {
    const clock = new VirtualClock();
    clock.advance(0);
    assert.equal(clock.now(), 0);
    clock.advance(0.1);
    clock.advance(0.2);
    assert.equal(clock.now(), 0.1 + 0.2);
    clock.advance(2 ** 31);
    assert.equal(clock.now(), 0.1 + 0.2 + 2 ** 31);
  });

  await t.step(
    "advance() by a negative, NaN or infinite amount throws RangeError and leaves the time",
    () => {
      const clock = new VirtualClock(7);
      for (const ms of [-1, -0.5, NaN, Infinity, -Infinity]) {
        assert.throws(
          () => clock.advance(ms),
          isClockError(RangeError, "advance clock"),
          `advance(${ms})`,
        );
      }
      assert.equal(clock.now(), 7);
    },
  );

  await t.step(
    "advance() by a non-number throws TypeError and leaves the time",
    () => {
      const clock = new VirtualClock(7);
      for (const ms of ["5", null, undefined, 5n, {}]) {
        assert.throws(
          () => clock.advance(ms as unknown as number),
          isClockError(TypeError, "advance clock"),
          `advance(${typeof ms})`,
        );
      }
      assert.equal(clock.now(), 7, "no string concatenation or coercion");
    },
  );

  await t.step("jumpTo() moves forward only; earlier times are ignored", () => {
    const clock = new VirtualClock(10);
    clock.jumpTo(25.5);
    assert.equal(clock.now(), 25.5);
    clock.jumpTo(20);
    assert.equal(clock.now(), 25.5);
    clock.jumpTo(25.5);
    assert.equal(clock.now(), 25.5);
  });

  await t.step("two clocks are independent", () => {
    const a = new VirtualClock();
    const b = new VirtualClock();
    a.advance(10);
    assert.equal(b.now(), 0);
  });
});

Deno.test("RealClock", async (t) => {
  await t.step("is not virtual and never goes back over many reads", () => {
    const clock: Clock = new RealClock();
    assert.equal(clock.virtual, false);
    let last = clock.now();
    assert.ok(Number.isFinite(last));
    for (let i = 0; i < 100_000; i++) {
      const now = clock.now();
      assert.ok(now >= last, `went back from ${last} to ${now}`);
      last = now;
    }
  });

  await t.step("jumpTo() cannot move real time", () => {
    const clock: Clock = new RealClock();
    const before = clock.now();
    clock.jumpTo(before + 1e9);
    assert.ok(clock.now() < before + 1e9);
  });
});
