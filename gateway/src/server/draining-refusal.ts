/**
 * @module The answer to an inference call that arrives while the server drains: `unavailable`,
 * with HTTP status 503 on every protocol. A gRPC server would normally send status 200 with
 * `grpc-status: 14`, but a balancer decides on the HTTP status alone: nginx's
 * `grpc_next_upstream`/`proxy_next_upstream http_503` retry the call on another replica, which a
 * 200 would never let them do. Clients see `unavailable` either way: gRPC maps HTTP 503 to it,
 * and the headers (gRPC, gRPC-Web) or the JSON body (Connect) carry the code and message.
 * Hand-written because connect-node writes its errors only from inside a handler, with 200 for
 * gRPC; this answer is three headers and a short body.
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { NodeRequest, NodeResponse } from "../http/node-http.js";

/** What the caller reads. */
export const drainingMessage = "the server is shutting down, retry on another replica";

/** Whether a request for `path` is refused while draining: inference, not health or reflection. */
export function isDrainedPath(path: string): boolean {
  return path.startsWith("/inference.v1.InferenceService/");
}

/** The response headers and body for a request with this content type. */
function refusal(contentType: string | undefined): {
  headers: Record<string, string>;
  body: string | undefined;
} {
  const type = contentType ?? "";
  if (type.startsWith("application/grpc")) {
    // gRPC and gRPC-Web: a trailers-only response; the status travels in the headers.
    return {
      headers: {
        "content-type": type.split(";", 1)[0] ?? type,
        "grpc-status": "14",
        // Printable ASCII needs no percent-encoding (gRPC's rule for grpc-message).
        "grpc-message": drainingMessage,
      },
      body: undefined,
    };
  }
  // Connect (unary and streaming) reads an error from a non-200 response's JSON body.
  return {
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code: "unavailable", message: drainingMessage }),
  };
}

/** Refuses a request served by Node's request/response API (HTTP/1.1 and HTTP/2 alike). */
export function refuseRequest(request: NodeRequest, response: NodeResponse): void {
  const { headers, body } = refusal(request.headers["content-type"]);
  response.statusCode = 503;
  for (const [name, value] of Object.entries(headers)) {
    response.setHeader(name, value);
  }
  // The request body is not read: end the response, and let Node drain or reset the rest.
  if (body === undefined) {
    response.end();
  } else {
    response.end(body);
  }
}

/** Refuses a raw HTTP/2 stream (the gRPC path, before Node's compatibility API sees it). */
export function refuseStream(stream: ServerHttp2Stream, requestHeaders: IncomingHttpHeaders): void {
  const { headers, body } = refusal(requestHeaders["content-type"]);
  stream.respond({ ":status": 503, ...headers }, { endStream: body === undefined });
  if (body !== undefined) {
    stream.end(body);
  }
}
