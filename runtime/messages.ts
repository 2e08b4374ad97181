/**
 * How a posted value becomes one queue item, and back. The item's tag says
 * the payload kind; small values need no payload bytes at all.
 *
 * | tag            | value                       | item words / payload          |
 * | -------------- | --------------------------- | ----------------------------- |
 * | `MSG_INT`      | int32 number (not -0)       | `a` = value, no bytes         |
 * | `MSG_FLOAT`    | any other number            | `a`,`b` = float64, no bytes   |
 * | `MSG_CONST`    | undefined, null, false, true| `a` = 0, 1, 2, 3              |
 * | `MSG_BYTES`    | exactly a `Uint8Array`      | the bytes, copied once        |
 * | `MSG_STRING`   | well-formed string          | UTF-8, encoded in place       |
 * | `MSG_VALUE`    | anything else cloneable     | `codec.ts` encoding           |
 *
 * A bare `Uint8Array` is copied as bytes whatever its buffer, a
 * `SharedArrayBuffer` included: the receiver gets a snapshot, never shared
 * memory. Nested in a structured value, a view over a `SharedArrayBuffer`
 * is rejected by the codec (`DataCloneError`).
 *
 * Strings with lone surrogates go through `MSG_VALUE`, which keeps their
 * UTF-16 code units exactly (UTF-8 would turn them into U+FFFD).
 *
 * @module
 */

import { decode, Encoder } from "./codec.ts";
import { isDetached } from "./codec_encode.ts";
import {
  type Producer,
  PUSH_FULL,
  type PushResult,
  type QueueEntry,
} from "./mpsc_queue.ts";

/** Tag: int32 message. */
export const MSG_INT = 4;
/** Tag: float64 message. */
export const MSG_FLOAT = 5;
/** Tag: undefined / null / false / true. */
export const MSG_CONST = 6;
/** Tag: bytes. */
export const MSG_BYTES = 7;
/** Tag: UTF-8 string. */
export const MSG_STRING = 8;
/** Tag: codec-encoded value. */
export const MSG_VALUE = 9;
/** Tag: the port is closing; sent after its last message. */
export const MSG_PORT_CLOSED = 10;
/** Tag: a remote request to close the loop. */
export const MSG_CLOSE_REQUEST = 11;

const CONSTS = [undefined, null, false, true] as const;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Thrown when a payload cannot fit one port's storage at all.
 */
export class PayloadTooLargeError extends RangeError {
  /**
   * Makes the error.
   *
   * @param size Bytes the payload needs.
   * @param limit Bytes one port can hold.
   */
  constructor(size: number, limit: number) {
    super(
      `Cannot post message: ${size} bytes exceeds the ${limit}-byte payload limit of a port`,
    );
    this.name = "PayloadTooLargeError";
  }
}

/** Encodes values into queue items for one producer thread. */
export class MessageWriter {
  readonly #encoder = new Encoder();
  readonly #p: Producer;
  readonly #limit: number;

  /**
   * Binds a writer to a producer.
   *
   * @param producer The thread's producer.
   */
  constructor(producer: Producer) {
    this.#p = producer;
    this.#limit = producer.maxPayload;
  }

  /**
   * Pushes `data` as one item, or reports the slot full.
   *
   * @param data The value.
   * @returns The push result; `PUSH_FULL` means nothing was queued.
   * @throws {DataCloneError} `data` cannot be cloned; nothing queued.
   * @throws {PayloadTooLargeError} `data` can never fit; nothing queued.
   */
  write(data: unknown): PushResult {
    const p = this.#p;
    switch (typeof data) {
      case "number":
        if ((data | 0) === data && !Object.is(data, -0)) {
          return p.push(MSG_INT, data, 0);
        }
        return p.pushFloat(MSG_FLOAT, data);
      case "undefined":
        return p.push(MSG_CONST, 0, 0);
      case "boolean":
        return p.push(MSG_CONST, data ? 3 : 2, 0);
      case "string":
        if (data.isWellFormed()) return this.#string(data);
        break;
      case "object":
        if (data === null) return p.push(MSG_CONST, 1, 0);
        if (data instanceof Uint8Array && data.constructor === Uint8Array) {
          // A view over a detached buffer cannot be copied (`set` throws a
          // TypeError): the codec rejects it with DataCloneError. Node 20
          // lacks `ArrayBuffer.prototype.detached`: `isDetached` probes, and
          // only for an empty view (a detached one always is).
          if (data.byteLength === 0 && isDetached(data.buffer as ArrayBuffer)) {
            break;
          }
          this.#fits(data.length);
          return p.pushWith(MSG_BYTES, data.length, (t, o) => t.set(data, o));
        }
    }
    return this.writeEncoded(this.encode(data));
  }

  #fits(size: number): void {
    if (size > this.#limit) throw new PayloadTooLargeError(size, this.#limit);
  }

  #string(s: string): PushResult {
    const worst = s.length * 3;
    if (worst <= this.#limit) {
      const r = this.#p.pushWith(
        MSG_STRING,
        worst,
        (t, o) => utf8.encodeInto(s, t.subarray(o, o + worst)).written,
      );
      if (r !== PUSH_FULL) return r;
      // No room for the worst case (3 bytes per UTF-16 unit): the exact
      // UTF-8 length may still fit. Encoded only on this slow path.
      const bytes = utf8.encode(s);
      if (bytes.length === worst) return r;
      return this.#p.pushWith(
        MSG_STRING,
        bytes.length,
        (t, o) => t.set(bytes, o),
      );
    }
    const bytes = utf8.encode(s);
    this.#fits(bytes.length);
    return this.#p.pushWith(
      MSG_STRING,
      bytes.length,
      (t, o) => t.set(bytes, o),
    );
  }

  /**
   * Encodes a structured value into the writer's scratch buffer.
   *
   * @param data The value.
   * @returns The encoded bytes (a view valid until the next encode).
   * @throws {DataCloneError} Not cloneable.
   * @throws {PayloadTooLargeError} Larger than a port can hold.
   */
  encode(data: unknown): Uint8Array {
    const n = this.#encoder.encode(data);
    this.#fits(n);
    return this.#encoder.bytes.subarray(0, n);
  }

  /**
   * Pushes bytes produced by {@linkcode MessageWriter.encode}.
   *
   * @param bytes Encoded value.
   * @returns The push result.
   */
  writeEncoded(bytes: Uint8Array): PushResult {
    return this.#p.pushWith(MSG_VALUE, bytes.length, (t, o) => t.set(bytes, o));
  }
}

/**
 * Whether a tag is a message kind (as opposed to control items).
 *
 * @param tag An item tag.
 * @returns True for `MSG_INT` .. `MSG_VALUE`.
 */
export function isMessage(tag: number): boolean {
  return tag >= MSG_INT && tag <= MSG_VALUE;
}

/**
 * Decodes a message item into its value.
 *
 * @param e The queue entry (valid only during the call).
 * @param copyBytes Copy `MSG_BYTES` payloads out of shared memory; when
 *   false the handler gets a view that is valid only during its call.
 * @returns The value.
 */
export function readMessage(e: QueueEntry, copyBytes: boolean): unknown {
  switch (e.tag) {
    case MSG_INT:
      return e.a;
    case MSG_FLOAT:
      return e.float();
    case MSG_CONST:
      return CONSTS[e.a];
    case MSG_BYTES:
      return copyBytes ? e.bytes().slice() : e.bytes();
    case MSG_STRING:
      return utf8Decoder.decode(e.bytes());
    default:
      return decode(e.bytes());
  }
}

export { PUSH_FULL };
