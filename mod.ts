/**
 * twloop: an embeddable event loop whose work queue is a wait-free
 * multi-producer single-consumer FIFO in a SharedArrayBuffer. Tasks, timers,
 * host completions and messages posted by worker threads share one FIFO
 * order; the loop runs at most `maxEvents` of them per pass and sleeps with
 * lazy, counted wake-ups.
 *
 * @example
 * ```ts
 * import { connect, Loop, VirtualClock } from "./mod.ts";
 *
 * const loop = new Loop({ clock: new VirtualClock() });
 * const order: string[] = [];
 * loop.onMessage = (data) => order.push(`message ${data}`);
 * loop.setTimer(() => order.push("after 5 ms"), 5);
 * loop.queue(() => order.push("first task"));
 * const port = connect(loop.port()); // usually in a worker
 * port.post("hello");
 * port.close();
 * await loop.run();
 * if (order.join() !== "first task,message hello,after 5 ms") {
 *   throw new Error(order.join());
 * }
 * ```
 *
 * @module
 */

export { FIRST_USER_TAG, Loop, QueueFullError } from "./runtime/loop.ts";
export type {
  LoopMetrics,
  LoopOptions,
  LoopWarning,
  MessageHandler,
} from "./runtime/loop.ts";
export type { Source } from "./runtime/loop_metrics.ts";
export { RealClock, VirtualClock } from "./runtime/clock.ts";
export type { Clock } from "./runtime/clock.ts";
export { Timer } from "./runtime/timers.ts";
export {
  connect,
  DeadlockError,
  DeliveryUnknownError,
  LoopClosedError,
  Port,
  PostTimeoutError,
  ReentrancyError,
} from "./runtime/port.ts";
export type { PortHandle, PostOptions, WakePolicy } from "./runtime/port.ts";
export { PayloadTooLargeError } from "./runtime/messages.ts";
export { DataCloneError } from "./runtime/codec.ts";
export { spawnWorker, workerPort } from "./runtime/spawn.ts";
export {
  abortable,
  deadline,
  DeadlineError,
  delay,
  pooledMap,
} from "./runtime/async.ts";
export type { SignalOptions } from "./runtime/async.ts";
export type { SpawnedWorker, SpawnOptions } from "./runtime/spawn.ts";
export {
  BUSY,
  EMPTY,
  MpscQueue,
  Producer,
  PUSH_FULL,
  PUSH_OK,
  PUSH_WAS_EMPTY,
  QueueEntry,
} from "./runtime/mpsc_queue.ts";
export type {
  DrainState,
  PushResult,
  QueueConfig,
} from "./runtime/mpsc_queue.ts";
export type { Layout } from "./runtime/queue_layout.ts";
export { Waiter, wake } from "./runtime/wake.ts";
export type { SleepResult } from "./runtime/wake.ts";
