/**
 * @module The JSON options every path that parses Connect or gRPC-Web JSON uses: connect-node's
 * router and the fast paths beside it, so they cannot disagree about a request.
 */
import type { JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import { wellFormedJsonDecoder } from "./well-formed.js";

/**
 * Unknown fields are rejected, the proto3 JSON mapping's default ("Proto3 JSON parser should
 * reject unknown fields by default"): connect-es turns ignoreUnknownFields on unless told
 * otherwise, and then `{"max_token": 3}` generated 256 tokens without a word. The parse error
 * names the field and becomes invalid_argument.
 *
 * `textDecoder` refuses lone surrogates before connect-es builds a parse error quoting one
 * (`well-formed.ts` says why); connect-es's JSON serialization reads it from these options
 * (createJsonSerialization), though the router's option type leaves the field out.
 */
export const jsonOptions: Partial<JsonReadOptions & JsonWriteOptions> & {
  readonly textDecoder: typeof wellFormedJsonDecoder;
} = {
  ignoreUnknownFields: false,
  textDecoder: wellFormedJsonDecoder,
};
