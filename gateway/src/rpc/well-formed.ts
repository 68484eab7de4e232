/**
 * @module Keeps lone UTF-16 surrogates out of status messages. gRPC and gRPC-Web carry a status
 * message percent-encoded (`grpc-message`), and connect-es encodes it with `encodeURIComponent`,
 * which throws a `URIError` for a lone surrogate. Such a message is easy to provoke: a JSON
 * request whose value is `"\ud800"` makes protobuf-es quote that value in its parse error. The
 * error must reach the client as the status it was (invalid_argument), not as an exception
 * where nothing expects one (issue 13).
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** `error` itself when its message is well-formed UTF-16, else a copy with U+FFFD in place of lone surrogates. */
export function wellFormedError(error: ConnectError): ConnectError {
  if (error.rawMessage.isWellFormed()) return error;
  const copy = new ConnectError(
    error.rawMessage.toWellFormed(),
    error.code,
    error.metadata,
    undefined,
    error.cause,
  );
  copy.details = error.details;
  return copy;
}

/** Rethrows what a handler (or the request parsing it consumed) threw with a well-formed message. */
export const wellFormedErrors: Interceptor = (next) => async (request) => {
  try {
    const response = await next(request);
    if (!response.stream) return response;
    return { ...response, message: wellFormedStream(response.message) };
  } catch (error) {
    throw error instanceof ConnectError ? wellFormedError(error) : error;
  }
};

async function* wellFormedStream<T>(messages: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (error) {
    throw error instanceof ConnectError ? wellFormedError(error) : error;
  }
}

/** A `\u` escape of a UTF-16 surrogate in JSON text: the only way JSON text can hold a lone one. */
const surrogateEscape = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

/**
 * The text decoder of JSON requests (connect-es's `jsonOptions.textDecoder`): UTF-8 decoding as
 * connect-es does it, refusing JSON whose strings (keys or values) hold a lone surrogate with
 * invalid_argument. I-JSON (RFC 7493 §2.1) forbids them, protobuf-es rejects them in string
 * fields anyway, and only this hook runs before connect-es builds its parse error: that message
 * would quote the surrogate, and connect-node's router path would fail to encode it. Valid text
 * costs one regular-expression test.
 */
export const wellFormedJsonDecoder = {
  decode(bytes: Uint8Array): string {
    const text = utf8.decode(bytes);
    if (surrogateEscape.test(text)) assertWellFormedStrings(text);
    return text;
  },
};

const utf8 = new TextDecoder();

function assertWellFormedStrings(text: string): void {
  try {
    JSON.parse(text, (key, value: unknown) => {
      if (!key.isWellFormed() || (typeof value === "string" && !value.isWellFormed())) {
        throw new ConnectError(
          "invalid JSON: a string holds a lone UTF-16 surrogate",
          Code.InvalidArgument,
        );
      }
      return value;
    });
  } catch (error) {
    // Not JSON at all: protobuf-es reports that with its own message.
    if (error instanceof ConnectError) throw error;
  }
}
