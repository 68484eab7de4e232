/**
 * @module The methods the paths beside connect-node serve (unary and server-streaming), each
 * with its implementation and its (de)serializers for both formats looked up once, keyed by
 * request path, and the options those paths share. Built from the same service list as
 * connect-node's router.
 */
import { create, type DescMessage, isMessage } from "@bufbuild/protobuf";
import { type ConnectError, createServiceImplSpec, type MethodImplSpec } from "@connectrpc/connect";
import { createMethodSerializationLookup } from "@connectrpc/connect/protocol";
import type { NodeRequest, NodeResponse } from "../../http/node-http.js";
import { jsonOptions } from "../json-options.js";
import type { RpcCall } from "../rpc-call.js";
import type { RpcService } from "../rpc-service.js";

/** Reads a request message and writes response messages in one format. */
export interface DirectSerialization {
  readonly parse: (bytes: Uint8Array) => unknown;
  /** Takes a message or the init object a handler may return instead. */
  readonly serialize: (message: unknown) => Uint8Array;
}

/** A method served beside connect-node. */
export interface DirectRoute {
  /** The procedure without its leading slash, e.g. "inference.v1.InferenceService/Generate". */
  readonly name: string;
  readonly spec: MethodImplSpec & { kind: "unary" | "server_streaming" };
  readonly binary: DirectSerialization;
  readonly json: DirectSerialization;
}

/** What every path beside connect-node is given. */
export interface DirectPathOptions {
  /** The methods to serve (`createDirectRoutes`). */
  readonly routes: ReadonlyMap<string, DirectRoute>;
  /** Largest request message; larger ones fail with resource_exhausted. */
  readonly readMaxBytes: number;
  /** Longest deadline a call may have; longer ones are shortened to it, as in connect-node's path. */
  readonly maxTimeoutMs: number;
  /** Aborting it aborts every call with its reason. */
  readonly shutdownSignal: AbortSignal;
  /** A call was accepted. */
  readonly onStart: (call: RpcCall) => void;
  /** A call's response closed; `error` is the status the client got (undefined: OK). */
  readonly onEnd: (
    call: RpcCall,
    error: ConnectError | undefined,
    durationMs: number,
    httpVersion: string,
  ) => void;
}

/**
 * A path on Node's request/response API: serves the request and returns true, or returns false
 * when connect-node should serve it. `path` is the request path without its query.
 */
export type DirectRequestHandler = (
  request: NodeRequest,
  response: NodeResponse,
  path: string,
) => boolean;

/** The unary and server-streaming methods of `services`, keyed by path ("/pkg.Service/Method"). */
export function createDirectRoutes(
  services: readonly RpcService[],
  readMaxBytes: number,
): ReadonlyMap<string, DirectRoute> {
  const routes = new Map<string, DirectRoute>();
  for (const { service, implementation } of services) {
    const spec = createServiceImplSpec(service, implementation);
    for (const method of Object.values(spec.methods)) {
      if (method.kind !== "unary" && method.kind !== "server_streaming") continue;
      const lookup = createMethodSerializationLookup(method.method, undefined, jsonOptions, {
        readMaxBytes,
        writeMaxBytes: 0xffffffff,
      });
      const serialization = (binary: boolean): DirectSerialization => {
        const input = lookup.getI(binary);
        const output = lookup.getO(binary);
        const schema: DescMessage = method.method.output;
        return {
          parse: (bytes) => input.parse(bytes),
          serialize: (message) =>
            output.serialize(
              (isMessage(message) ? message : create(schema, message as never)) as never,
            ),
        };
      };
      const name = `${service.typeName}/${method.method.name}`;
      routes.set(`/${name}`, {
        name,
        spec: method,
        binary: serialization(true),
        json: serialization(false),
      });
    }
  }
  return routes;
}
