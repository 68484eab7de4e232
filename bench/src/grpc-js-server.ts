/**
 * @module The grpc-js baseline: `@grpc/grpc-js` serving `ListModels` from the same proto file,
 * loaded the idiomatic way with `@grpc/proto-loader`, and answering with the same
 * `ListModelsResponse` the gateway sends (serialized per call, as any grpc-js handler does).
 */
import { fromBinary, toJson } from "@bufbuild/protobuf";
import {
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type ServiceDefinition,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ListModelsResponseSchema } from "@parley/gen/inference/v1/inference_pb";
import type { BenchFixtures } from "./bench-fixtures.js";
import { inferenceProto } from "./bench-paths.js";

/** Starts the server on `port` of 127.0.0.1. */
export async function startGrpcJsServer(fixtures: BenchFixtures, port: number): Promise<Server> {
  const definition = loadSync(inferenceProto, { defaults: true, enums: String });
  const loaded = loadPackageDefinition(definition) as unknown as {
    inference: { v1: { InferenceService: { service: ServiceDefinition } } };
  };
  // proto-loader's objects use the same lowerCamelCase names as the Protobuf JSON mapping.
  const response = toJson(
    ListModelsResponseSchema,
    fromBinary(ListModelsResponseSchema, fixtures.listModelsResponse),
  );
  const server = new Server();
  server.addService(loaded.inference.v1.InferenceService.service, {
    listModels: (_call: unknown, callback: (error: null, value: unknown) => void) =>
      callback(null, response),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error) =>
      error === null ? resolve() : reject(error),
    ),
  );
  return server;
}
