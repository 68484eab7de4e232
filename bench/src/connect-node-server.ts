/**
 * @module A fourth unary baseline: `connectNodeAdapter` from @connectrpc/connect-node on a bare
 * `node:http2` server, with a handler returning the same `ListModelsResponse`. It is the gateway
 * minus everything the gateway adds around connect-node (protocol sniffing, CORS, per-call
 * metrics and logs, outcome tracking, validation, the engine), so the gap between it and the
 * gateway is the gateway's own cost and the gap between it and the raw ceiling is the library's.
 */

import { createServer, type Http2Server } from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { InferenceService, ListModelsResponseSchema } from "@parley/gen/inference/v1/inference_pb";
import type { BenchFixtures } from "./bench-fixtures.js";

/** Creates the server; the caller listens. */
export function createConnectNodeServer(fixtures: BenchFixtures): Http2Server {
  const response = fromBinary(ListModelsResponseSchema, fixtures.listModelsResponse);
  const handler = connectNodeAdapter({
    routes(router) {
      router.service(InferenceService, { listModels: () => response });
    },
  });
  return createServer(handler);
}
