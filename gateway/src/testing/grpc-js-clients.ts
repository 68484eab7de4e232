/**
 * @module Test support: `@grpc/grpc-js` clients (a gRPC implementation we did not write) for the
 * health and inference services, loaded from the repository's .proto files with proto-loader.
 */
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { repoRoot } from "./model-fixtures.js";

/** A message as proto-loader delivers it (enums as names, 64-bit integers as strings). */
export type GrpcJsMessage = Record<string, unknown>;

type Unary = (
  request: object,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: GrpcJsMessage) => void,
) => void;

/** `grpc.health.v1.Health` and `inference.v1.InferenceService` on one channel's worth of clients. */
export interface GrpcJsClients {
  /** Health `Check` for `service`: resolves with the status name, e.g. "SERVING". */
  check(service: string): Promise<string>;
  /** Unary `Generate`; rejects with the grpc-js `ServiceError`. */
  generate(request: object): Promise<GrpcJsMessage>;
  /** Server-streaming `GenerateStream`. */
  generateStream(request: object): grpc.ClientReadableStream<GrpcJsMessage>;
  close(): void;
}

const loadOptions = {
  includeDirs: [join(repoRoot, "proto")],
  enums: String,
  longs: String,
  defaults: false,
};

/** Connects to `address` (`host:port`), without TLS. */
export async function createGrpcJsClients(address: string): Promise<GrpcJsClients> {
  const definition = grpc.loadPackageDefinition(
    await protoLoader.load(
      ["grpc/health/v1/health.proto", "inference/v1/inference.proto"],
      loadOptions,
    ),
  ) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    inference: { v1: { InferenceService: grpc.ServiceClientConstructor } };
  };
  const credentials = grpc.credentials.createInsecure();
  const health = new definition.grpc.health.v1.Health(address, credentials);
  const inference = new definition.inference.v1.InferenceService(address, credentials);
  const call = (client: grpc.Client, method: string, request: object) =>
    new Promise<GrpcJsMessage>((resolve, reject) => {
      const unary = (client as unknown as Record<string, Unary>)[method] as Unary;
      unary.call(client, request, { deadline: Date.now() + 30_000 }, (error, response) =>
        error === null ? resolve(response) : reject(error),
      );
    });
  return {
    async check(service) {
      return String((await call(health, "Check", { service })).status);
    },
    generate: (request) => call(inference, "Generate", request),
    generateStream(request) {
      const stream = (inference as unknown as Record<string, (r: object) => unknown>)
        .GenerateStream as (r: object) => grpc.ClientReadableStream<GrpcJsMessage>;
      return stream.call(inference, request);
    },
    close() {
      health.close();
      inference.close();
    },
  };
}
