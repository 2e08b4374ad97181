/**
 * What the Node build of the tests imports in place of
 * `runtime/host/deno_io.ts` (see `NODE_SUBSTITUTES` in `skips.ts`): the Node
 * I/O host and its error mapping, under the Deno host's names, so the I/O
 * suites run unchanged.
 *
 * @module
 */

export {
  nodeIo as denoIo,
  nodeIoError as denoIoError,
} from "../../runtime/host/node_io.ts";
