/**
 * @module A service and its implementation as one value, so that both RPC paths (connect-node's
 * router and the direct gRPC path) are given the same list and cannot drift apart.
 */
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";

/** A service description and the handlers that implement it. */
export interface RpcService {
  readonly service: DescService;
  readonly implementation: Partial<ServiceImpl<DescService>>;
}

/** Pairs a service with its implementation, checked against each other here. */
export function rpcService<T extends DescService>(
  service: T,
  implementation: Partial<ServiceImpl<T>>,
): RpcService {
  // The pair is checked above; the list holds services of different types.
  return { service, implementation: implementation as Partial<ServiceImpl<DescService>> };
}
