/**
 * @module The one door to connect-es's protocol internals: every name Parley takes from
 * `@connectrpc/connect/protocol`, `/protocol-connect`, `/protocol-grpc` and `/protocol-grpc-web`.
 * Those entry points say their exports "do not follow semantic versioning", so a patch release may
 * rename or change any of them; `.dependency-cruiser.cjs` forbids importing them anywhere else,
 * the package pins connect-es exactly (README, "Dependencies"), and connect-internals.test.ts
 * checks that each name below exists and still behaves the way Parley uses it.
 *
 * Why use them rather than implement the specs again: they are the code connect-node's own router
 * runs, so the paths beside it write the same trailers, error JSON, timeouts and texts, which the
 * differential suite (protocol-conformance.test.ts) compares call by call.
 *
 * Names are prefixed with their protocol where two protocols export the same one.
 */

export {
  type Compression,
  compressedFlag,
  compressionNegotiate,
  createMethodSerializationLookup,
  type UniversalHandler,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
export {
  codeFromHttpStatus as connectCodeFromHttpStatus,
  codeToHttpStatus as connectCodeToHttpStatus,
  codeToString,
  contentTypeRegExp as connectContentTypeRegExp,
  endStreamFlag as connectEndStreamFlag,
  endStreamFromJson as connectEndStreamFromJson,
  endStreamToJson as connectEndStreamToJson,
  errorFromJsonBytes as connectErrorFromJsonBytes,
  errorToJsonBytes as connectErrorToJsonBytes,
  headerStreamEncoding as connectHeaderStreamEncoding,
  headerTimeout as connectHeaderTimeout,
  headerUnaryEncoding as connectHeaderUnaryEncoding,
  parseContentType as parseConnectContentType,
  parseTimeout as parseConnectTimeout,
  trailerMux as connectTrailerMux,
} from "@connectrpc/connect/protocol-connect";
export {
  codeFromHttpStatus as grpcCodeFromHttpStatus,
  contentTypeRegExp as grpcContentTypeRegExp,
  findTrailerError as grpcFindTrailerError,
  headerEncoding as grpcHeaderEncoding,
  headerTimeout as grpcHeaderTimeout,
  parseTimeout as parseGrpcTimeout,
  setTrailerStatus as grpcSetTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
export {
  contentTypeRegExp as grpcWebContentTypeRegExp,
  parseContentType as parseGrpcWebContentType,
  trailerFlag as grpcWebTrailerFlag,
  trailerParse as grpcWebTrailerParse,
  trailerSerialize as grpcWebTrailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
