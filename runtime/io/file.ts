/**
 * An open file on the loop: reads, writes, stat and close, each completing
 * as a loop task. Open one with `LoopIo.open`.
 *
 * @module
 */

import type { FileInfo, HostFile } from "./host.ts";
import type { IoCallback } from "./io_error.ts";
import {
  checkCallback,
  checkSignal,
  closedError,
  fail,
  type OpOptions,
  submit,
} from "./io_ops.ts";
import { IoStream } from "./io_stream.ts";

/**
 * An open file. Reads and writes follow the file position, as POSIX
 * `read(2)` and `write(2)` do; see `io_stream.ts` for order, cancellation
 * and close.
 */
export class FileHandle extends IoStream<HostFile> {
  /**
   * Reports the file's size, type and modification time.
   *
   * @param callback Runs as a loop task with the info.
   * @param options `signal` to cancel.
   * @throws {TypeError} A wrong argument type.
   * @throws {LoopClosedError} The loop is closed.
   */
  stat(callback: IoCallback<FileInfo>, options?: OpOptions): void {
    const action = "stat file";
    checkCallback(action, callback);
    const signal = checkSignal(action, options);
    if (this.closed) {
      return fail(this.loop, action, closedError(action), callback);
    }
    submit(this.loop, action, signal, () => this.host.stat(), callback);
  }
}
