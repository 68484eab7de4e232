/**
 * @module The wire protocols the page can speak to the one InferenceService, as connect
 * transports. gRPC itself is missing: it needs HTTP/2 trailers, which `fetch` cannot read.
 */
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

/** A protocol a browser can use to call the gateway. */
export type Protocol = "connect-json" | "connect-binary" | "grpc-web";

/** Every protocol with the name people know it by, in the order the picker lists them. */
export const protocols: readonly { readonly id: Protocol; readonly label: string }[] = [
  { id: "connect-json", label: "Connect JSON" },
  { id: "connect-binary", label: "Connect binary" },
  { id: "grpc-web", label: "gRPC-Web" },
];

/** Whether a stored or typed value names a protocol. */
export function isProtocol(value: unknown): value is Protocol {
  return protocols.some((protocol) => protocol.id === value);
}

/** The display name of a protocol, e.g. "gRPC-Web". */
export function protocolLabel(protocol: Protocol): string {
  return protocols.find((entry) => entry.id === protocol)?.label ?? protocol;
}

/** Options of `createProtocolTransport`. */
export interface ProtocolTransportOptions {
  readonly protocol: Protocol;
  /** The gateway's origin, e.g. `location.origin` or `http://127.0.0.1:8080`. */
  readonly baseUrl: string;
  /** The API key to send as `Authorization: Bearer`, read at each call; "" sends none. */
  readonly apiKey?: () => string;
}

/** Creates the transport that calls the gateway at `baseUrl` over one protocol. */
export function createProtocolTransport(options: ProtocolTransportOptions): Transport {
  const { baseUrl, apiKey } = options;
  const interceptors: Interceptor[] =
    apiKey === undefined
      ? []
      : [
          (next) => (request) => {
            const key = apiKey();
            if (key.length > 0) {
              request.header.set("Authorization", `Bearer ${key}`);
            }
            return next(request);
          },
        ];
  switch (options.protocol) {
    case "connect-json":
      return createConnectTransport({ baseUrl, useBinaryFormat: false, interceptors });
    case "connect-binary":
      return createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, interceptors });
  }
}
