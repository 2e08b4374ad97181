/**
 * The structured-value codec that message payloads travel in: an
 * {@linkcode Encoder} writes a value graph into its own scratch bytes, which
 * the poster copies straight into shared memory, and {@linkcode decode}
 * rebuilds a fresh graph from those bytes on the loop's side.
 *
 * It follows structured-clone semantics (what `postMessage` does), with a
 * few deliberate, documented differences; `node:v8` serialize (~27 µs per
 * small object) was too slow and JSON changes values silently. The measured
 * costs are in `bench/codec_bench.ts`.
 *
 * ## What is supported
 *
 * - Primitives: `undefined`, `null`, booleans, numbers (`-0`, `NaN`,
 *   `±Infinity` kept; int32 fast path), BigInt of any size, strings (UTF-8
 *   when well formed; strings with lone surrogates are stored as UTF-16 code
 *   units so they come back exactly).
 * - Plain objects (prototype `Object.prototype` or `null`, and the `null`
 *   prototype is kept): own enumerable string keys in their order; getters
 *   are invoked, symbol keys and non-enumerable properties are skipped.
 * - Arrays, with holes and `length` kept; very sparse arrays are sent as
 *   index/value pairs. Difference: non-index properties on arrays
 *   (`arr.foo = 1`) are not sent; finding them costs `Object.keys`, which is
 *   O(length) string work (~7.5 µs for 1000 elements on the dev VM).
 * - `Map`, `Set`, `Date` (invalid dates too), `RegExp` (source and flags;
 *   `lastIndex` resets to 0), `ArrayBuffer` (resizable kept), every typed
 *   array (`Float16Array` where the host has it), `DataView`, and boxed
 *   `Number`, `String`, `Boolean`, `BigInt`.
 * - Typed arrays and `DataView`s carry only the bytes they view: they decode
 *   over a fresh buffer of exactly that size (`byteOffset` 0). Difference:
 *   structured clone copies the whole underlying buffer and keeps views of
 *   one buffer sharing it; a payload should not drag a large pool buffer
 *   along. Subclasses (Node's `Buffer`) decode as their base typed array.
 * - Errors (anything `Error.isError` accepts, subclasses included): `name`,
 *   `message`, `stack` and `cause` (the cause is a cloned value, cycles
 *   allowed). As in structured clone the prototype is the standard
 *   constructor named by `name` (`Error`, `EvalError`, `RangeError`,
 *   `ReferenceError`, `SyntaxError`, `TypeError`, `URIError`), else
 *   `Error`; other own properties are not sent. Difference: a non-standard
 *   name (`"AbortError"`) is kept as an own `name` property instead of being
 *   dropped.
 * - Shared references and cycles: an object met twice decodes to one object.
 *
 * ## What is rejected
 *
 * {@linkcode DataCloneError}, with a path to the offending value, for:
 * functions, symbols, `WeakMap`, `WeakSet`, `WeakRef`, `Promise`,
 * `SharedArrayBuffer` and views over one (shared memory cannot travel as
 * bytes: send a copy; a port's `post` of a bare `Uint8Array` is the one
 * exception, see `messages.ts`: it copies the bytes, whatever the buffer),
 * detached buffers, instances of other classes
 * (prototype not `Object.prototype`, `null` or a supported built-in; this
 * includes subclasses of `Array`, `Map`, `Set`, `Date`, `RegExp`), objects
 * that borrow a built-in prototype without its internals, and graphs nested
 * more than {@linkcode MAX_DEPTH} levels deep. Errors thrown by getters
 * propagate unchanged. Either way the encoder is left clean and reusable.
 * Proxies cannot be detected and are read through their traps.
 *
 * ## Wire format (version 1)
 *
 * One version byte, then one value. A value is a tag byte and a body;
 * integers in bodies are little-endian, `varint` is unsigned LEB128. The
 * bytes of buffers and views start at the next offset from the message start
 * that is a multiple of 8 (zero padding before them).
 *
 * | tag         | value                 | body                                       |
 * | ----------- | --------------------- | ------------------------------------------ |
 * | `0x00-0x3f` | integer 0-63          | none: the tag is the value                 |
 * | `0x40-0x43` | undefined, null, false, true | none                                |
 * | `0x44`      | int32 number          | 4 bytes                                    |
 * | `0x45`      | other number          | float64, 8 bytes                           |
 * | `0x46/0x47` | BigInt ≥ 0 / < 0      | varint n, n magnitude bytes                |
 * | `0x48`      | string, UTF-8         | u32 byte length, bytes                     |
 * | `0x49`      | string, UTF-16        | u32 code units, 2 bytes each               |
 * | `0x4a/0x4b` | object / null-proto   | (string key, value)*, then `0x51`          |
 * | `0x4c`      | array                 | varint length, length × (value or hole)    |
 * | `0x4d`      | sparse array          | varint length, varint n, n × (varint index, value) |
 * | `0x4e`      | hole                  | none (array elements only)                 |
 * | `0x4f/0x50` | Map / Set             | entries (key, value) / values, then `0x51` |
 * | `0x51`      | end of object, Map, Set | none                                     |
 * | `0x52`      | Date                  | float64 time value                         |
 * | `0x53`      | RegExp                | source string, flags string                |
 * | `0x54`      | ArrayBuffer           | varint n, bytes                            |
 * | `0x55`      | resizable ArrayBuffer | varint n, varint max, bytes                |
 * | `0x56`      | typed array           | kind byte, varint byte length, bytes       |
 * | `0x57`      | DataView              | varint n, bytes                            |
 * | `0x58`      | back-reference        | varint object id                           |
 * | `0x59`      | Number object         | float64                                    |
 * | `0x5a`      | String object         | string                                     |
 * | `0x5b/0x5c` | Boolean object        | none (true / false)                        |
 * | `0x5d`      | BigInt object         | a BigInt value                             |
 * | `0x5e`      | Error                 | flags, name, [message], [stack], [cause]   |
 * | `0x80-0xff` | string, UTF-8         | tag & 0x7f bytes                           |
 *
 * Object ids count every object-tagged value (`0x4a`-`0x4d`, `0x4f`,
 * `0x50`, `0x52`-`0x57`, `0x59`-`0x5e`) in the order it is first written,
 * from 0.
 *
 * ## Where the parts live
 *
 * This file is the public door and the contract; the work is split by
 * concept:
 *
 * - `codec_wire.ts`: what both sides must agree on (version, tags, Error
 *   flags, the typed array kind table, {@linkcode MAX_DEPTH}, alignment).
 * - `codec_encode.ts`: {@linkcode Encoder} and {@linkcode DataCloneError}.
 * - `codec_decode.ts`: {@linkcode decode}.
 *
 * @module
 */

export { MAX_DEPTH } from "./codec_wire.ts";
export { DataCloneError, Encoder } from "./codec_encode.ts";
export { decode } from "./codec_decode.ts";
