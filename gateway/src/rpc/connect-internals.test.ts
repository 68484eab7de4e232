/**
 * Fails loudly when connect-es changes what Parley takes from its non-semver `protocol*` entry
 * points: the installed version is the pin, the module exports exactly the names Parley uses,
 * and each behaves the way the protocol layer relies on.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { Health, HealthCheckRequestSchema } from "@parley/gen/grpc/health/v1/health_pb";
import * as internals from "./connect-internals.js";

const require = createRequire(import.meta.url);

async function versionOf(pkg: string): Promise<string> {
  const main = require.resolve(pkg);
  const root = main.slice(
    0,
    main.lastIndexOf(`/node_modules/${pkg}/`) + `/node_modules/${pkg}/`.length,
  );
  return (JSON.parse(await readFile(`${root}package.json`, "utf8")) as { version: string }).version;
}

describe("connect-internals: connect-es's non-semver protocol exports Parley uses", () => {
  it("come from the pinned connect-es, installed at exactly that version", async () => {
    const manifest = JSON.parse(
      await readFile(new URL("../../package.json", import.meta.url), "utf8"),
    ) as { dependencies: Record<string, string> };
    for (const pkg of ["@connectrpc/connect", "@connectrpc/connect-node"]) {
      const pin = manifest.dependencies[pkg];
      assert.match(pin ?? "", /^\d+\.\d+\.\d+$/, `${pkg} is pinned exactly`);
      assert.equal(await versionOf(pkg), pin, `${pkg} installed at its pin`);
    }
  });

  it("are exactly the names Parley imports, each defined", () => {
    assert.deepEqual(Object.keys(internals).sort(), [
      "codeToString",
      "compressedFlag",
      "compressionNegotiate",
      "connectCodeFromHttpStatus",
      "connectCodeToHttpStatus",
      "connectContentTypeRegExp",
      "connectEndStreamFlag",
      "connectEndStreamFromJson",
      "connectEndStreamToJson",
      "connectErrorFromJsonBytes",
      "connectErrorToJsonBytes",
      "connectHeaderStreamEncoding",
      "connectHeaderTimeout",
      "connectHeaderUnaryEncoding",
      "connectTrailerMux",
      "createMethodSerializationLookup",
      "grpcCodeFromHttpStatus",
      "grpcContentTypeRegExp",
      "grpcFindTrailerError",
      "grpcHeaderEncoding",
      "grpcHeaderTimeout",
      "grpcSetTrailerStatus",
      "grpcWebContentTypeRegExp",
      "grpcWebTrailerFlag",
      "grpcWebTrailerParse",
      "grpcWebTrailerSerialize",
      "parseConnectContentType",
      "parseConnectTimeout",
      "parseGrpcTimeout",
      "parseGrpcWebContentType",
    ]);
    for (const [name, value] of Object.entries(internals)) {
      assert.notEqual(value, undefined, name);
    }
  });

  it("keep the envelope flags and header names of the protocols", () => {
    assert.equal(internals.compressedFlag, 0b1);
    assert.equal(internals.connectEndStreamFlag, 0b10);
    assert.equal(internals.grpcWebTrailerFlag, 0b10000000);
    assert.equal(internals.connectHeaderTimeout.toLowerCase(), "connect-timeout-ms");
    assert.equal(internals.connectHeaderStreamEncoding.toLowerCase(), "connect-content-encoding");
    assert.equal(internals.connectHeaderUnaryEncoding.toLowerCase(), "content-encoding");
    assert.equal(internals.grpcHeaderTimeout.toLowerCase(), "grpc-timeout");
    assert.equal(internals.grpcHeaderEncoding.toLowerCase(), "grpc-encoding");
  });

  it("classify content types as connect-node negotiates them", () => {
    assert.ok(internals.grpcContentTypeRegExp.test("application/grpc+proto"));
    assert.ok(internals.grpcWebContentTypeRegExp.test("application/grpc-web-text"));
    assert.ok(internals.connectContentTypeRegExp.test("application/connect+json"));
    assert.ok(internals.connectContentTypeRegExp.test("application/proto"));
    assert.ok(!internals.grpcContentTypeRegExp.test("application/grpc-web+proto"));
    assert.deepEqual(internals.parseConnectContentType("application/connect+proto"), {
      stream: true,
      binary: true,
    });
    assert.deepEqual(internals.parseConnectContentType("application/json"), {
      stream: false,
      binary: false,
    });
    assert.equal(internals.parseConnectContentType("text/plain"), undefined);
    assert.deepEqual(internals.parseGrpcWebContentType("application/grpc-web-text+proto"), {
      text: true,
      binary: true,
    });
  });

  it("parse timeouts, refusing malformed ones with invalid_argument", () => {
    assert.deepEqual(internals.parseGrpcTimeout("150m", Number.POSITIVE_INFINITY), {
      timeoutMs: 150,
    });
    assert.deepEqual(internals.parseGrpcTimeout("2S", Number.POSITIVE_INFINITY), {
      timeoutMs: 2000,
    });
    assert.deepEqual(internals.parseGrpcTimeout(null, Number.POSITIVE_INFINITY), {});
    assert.equal(internals.parseGrpcTimeout("soon", Infinity).error?.code, Code.InvalidArgument);
    assert.deepEqual(internals.parseConnectTimeout("30000", Number.POSITIVE_INFINITY), {
      timeoutMs: 30000,
    });
    assert.equal(internals.parseConnectTimeout("-1", Infinity).error?.code, Code.InvalidArgument);
  });

  it("write and read gRPC and gRPC-Web status trailers", () => {
    const error = new ConnectError("not here: é", Code.NotFound);
    const trailer = internals.grpcSetTrailerStatus(new Headers({ "x-own": "1" }), error);
    assert.equal(trailer.get("grpc-status"), "5");
    assert.equal(trailer.get("grpc-message"), "not%20here%3A%20%C3%A9");
    assert.equal(trailer.get("x-own"), "1");
    assert.equal(internals.grpcSetTrailerStatus(new Headers(), undefined).get("grpc-status"), "0");
    const found = internals.grpcFindTrailerError(trailer);
    assert.equal(found?.code, Code.NotFound);
    assert.equal(found?.rawMessage, "not here: é");
    const bytes = internals.grpcWebTrailerSerialize(trailer);
    assert.equal(internals.grpcWebTrailerParse(bytes).get("grpc-status"), "5");
  });

  it("write and read Connect errors, end-stream messages and unary trailers", () => {
    const error = new ConnectError("too big", Code.ResourceExhausted, { "x-meta": "m" }, [
      { desc: StructSchema, value: create(StructSchema, {}) },
    ]);
    const parsed = internals.connectErrorFromJsonBytes(
      internals.connectErrorToJsonBytes(error, undefined),
      undefined,
      new ConnectError("fallback", Code.Unknown),
    );
    assert.equal(parsed.code, Code.ResourceExhausted);
    assert.equal(parsed.rawMessage, "too big");
    assert.equal(parsed.details.length, 1);
    const end = internals.connectEndStreamFromJson(
      JSON.stringify(
        internals.connectEndStreamToJson(new Headers({ "x-t": "1" }), error, undefined),
      ),
    );
    assert.equal(end.error?.code, Code.ResourceExhausted);
    assert.equal(end.metadata.get("x-t"), "1");
    const mux = internals.connectTrailerMux(new Headers({ a: "1" }), new Headers({ b: "2" }));
    assert.equal(mux.get("trailer-b"), "2");
    assert.equal(internals.connectCodeToHttpStatus(Code.ResourceExhausted), 429);
    assert.equal(internals.connectCodeFromHttpStatus(404), Code.Unimplemented);
    assert.equal(internals.grpcCodeFromHttpStatus(503), Code.Unavailable);
    assert.equal(internals.codeToString(Code.DeadlineExceeded), "deadline_exceeded");
  });

  it("negotiate the response compression the way connect-node's router does", () => {
    const available = [compressionGzip, compressionBrotli];
    assert.equal(
      internals.compressionNegotiate(available, null, "br, gzip", "").response,
      compressionBrotli,
    );
    assert.equal(internals.compressionNegotiate(available, null, "snappy", "").response, null);
    const unknown = internals.compressionNegotiate(
      available,
      "snappy",
      null,
      "grpc-accept-encoding",
    );
    assert.equal(unknown.error?.code, Code.Unimplemented);
  });

  it("serialize a method's messages in both formats", () => {
    const method = Health.method.check;
    const lookup = internals.createMethodSerializationLookup(method, undefined, undefined, {
      readMaxBytes: 1024,
      writeMaxBytes: 1024,
    });
    const request = create(HealthCheckRequestSchema, { service: "inference.v1.InferenceService" });
    const binary = toBinary(HealthCheckRequestSchema, request);
    assert.deepEqual(lookup.getI(true).parse(binary), request);
    const json = lookup.getI(false).parse(new TextEncoder().encode('{"service":"x"}'));
    assert.equal((json as { service: string }).service, "x");
  });
});
