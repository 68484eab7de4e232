/**
 * @module The JSON options every path that parses Connect or gRPC-Web JSON uses: connect-node's
 * router and the fast paths beside it, so they cannot disagree about a request.
 */
import type { JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";

/**
 * Unknown fields are rejected, the proto3 JSON mapping's default ("Proto3 JSON parser should
 * reject unknown fields by default"): connect-es turns ignoreUnknownFields on unless told
 * otherwise, and then `{"max_token": 3}` generated 256 tokens without a word. The parse error
 * names the field and becomes invalid_argument.
 */
export const jsonOptions: Partial<JsonReadOptions & JsonWriteOptions> = {
  ignoreUnknownFields: false,
};
