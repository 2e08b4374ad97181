/**
 * Main-thread helpers for the benchmark's workers. A producer worker lives
 * for all the runs of its transport, so its push loop is compiled by the
 * warm-up run and stays optimized for the measured ones: each run sends a
 * job, waits for {@linkcode READY}, starts the run, and waits for the
 * worker's report.
 *
 * @module
 */

import { type ProducerReport, READY } from "./protocol.ts";

/** A worker not ready this long after a job was sent is reported as failed. */
const READY_TIMEOUT_MS = 10_000;

/**
 * Starts a module worker.
 *
 * @param script Path of the worker script, relative to this file.
 * @returns The worker, idle until it gets a job.
 */
export function spawnWorker(script: string): Worker {
  return new Worker(new URL(script, import.meta.url), { type: "module" });
}

/**
 * Sends a worker its job and waits until it is ready to start.
 *
 * @param worker From {@linkcode spawnWorker}.
 * @param job The job message (may carry SharedArrayBuffers).
 * @returns Resolves once the worker is blocked on its `GO` word (or, for the
 *   ping worker, spinning on its first ping).
 * @throws {Error} The worker failed, or was not ready in time.
 */
export function prepareWorker(worker: Worker, job: unknown): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new Error(
          `Cannot start run: worker not ready in ${READY_TIMEOUT_MS} ms`,
        ),
      );
    }, READY_TIMEOUT_MS);
    worker.onerror = (ev) => {
      ev.preventDefault();
      clearTimeout(timer);
      reject(new Error(`Cannot start run: worker failed: ${ev.message}`));
    };
    worker.onmessage = (ev) => {
      if (ev.data !== READY) return;
      clearTimeout(timer);
      resolve();
    };
    worker.postMessage(job);
  });
}

/**
 * Waits for a producer worker's {@linkcode ProducerReport}.
 *
 * @param worker A producer worker whose run was started.
 * @param timeoutMs Give up after this long.
 * @returns The report.
 * @throws {Error} No report in time, or the worker failed.
 */
export function awaitReport(
  worker: Worker,
  timeoutMs: number,
): Promise<ProducerReport> {
  return new Promise<ProducerReport>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new Error(`Cannot finish run: no producer report in ${timeoutMs} ms`),
      );
    }, timeoutMs);
    worker.onerror = (ev) => {
      ev.preventDefault();
      clearTimeout(timer);
      reject(new Error(`Cannot finish run: worker failed: ${ev.message}`));
    };
    worker.onmessage = (ev) => {
      if (!isReport(ev.data)) return;
      clearTimeout(timer);
      resolve(ev.data);
    };
  });
}

/**
 * Tells a producer report apart from an item.
 *
 * @param data A message from a producer worker.
 * @returns True for a report.
 */
export function isReport(data: unknown): data is ProducerReport {
  return typeof data === "object" && data !== null &&
    (data as ProducerReport).done === true;
}
