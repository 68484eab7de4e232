/**
 * @module Which of the three protocols a request speaks, from its content type (the same regular
 * expressions connect-node negotiates with), as a metric and log label.
 */
import { contentTypeRegExp as connectContentType } from "@connectrpc/connect/protocol-connect";
import { contentTypeRegExp as grpcContentType } from "@connectrpc/connect/protocol-grpc";
import { contentTypeRegExp as grpcWebContentType } from "@connectrpc/connect/protocol-grpc-web";

/** A protocol label; "openai" for the `/v1` routes; "unknown" for requests no protocol handler accepts. */
export type RpcProtocol = "grpc" | "grpc_web" | "connect" | "openai" | "unknown";

/** Classifies a request by its method and content type. */
export function rpcProtocolOf(
  method: string | undefined,
  contentType: string | undefined,
): RpcProtocol {
  if (method === "GET") {
    // Only the Connect protocol has GET requests; they carry the message in the query.
    return "connect";
  }
  const type = contentType ?? "";
  if (grpcContentType.test(type)) {
    return "grpc";
  }
  if (grpcWebContentType.test(type)) {
    return "grpc_web";
  }
  if (connectContentType.test(type)) {
    return "connect";
  }
  return "unknown";
}
