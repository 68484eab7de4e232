/**
 * @module The engine-to-Connect table, and that internal details never reach a client message.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { EngineError, type EngineErrorCode } from "../engine/engine-error.js";
import { engineErrorCodes, toConnectError } from "./errors.js";

describe("toConnectError", () => {
  const expected: [EngineErrorCode, Code][] = [
    ["invalid_argument", Code.InvalidArgument],
    ["not_found", Code.NotFound],
    ["resource_exhausted", Code.ResourceExhausted],
    ["unavailable", Code.Unavailable],
    ["cancelled", Code.Canceled],
    ["deadline_exceeded", Code.DeadlineExceeded],
    ["unimplemented", Code.Unimplemented],
    ["internal", Code.Internal],
  ];

  it("maps every engine code, and the table has no other entry", () => {
    assert.deepEqual(Object.keys(engineErrorCodes).sort(), expected.map(([code]) => code).sort());
    for (const [engineCode, code] of expected) {
      const engineError = new EngineError(engineCode, `message for ${engineCode}`);
      const error = toConnectError(engineError);
      assert.equal(error.code, code, engineCode);
      assert.equal(error.cause, engineError, "the engine error travels in cause");
    }
  });

  it("keeps client-facing engine messages, but replaces internal ones", () => {
    assert.equal(
      toConnectError(new EngineError("not_found", 'model "x" is not loaded')).rawMessage,
      'model "x" is not loaded',
    );
    const internal = toConnectError(
      new EngineError("internal", "ORT session failed at /home/secret/model.onnx"),
    );
    assert.equal(internal.rawMessage, "internal error");
    assert.doesNotMatch(internal.message, /secret/);
  });

  it("turns unknown throws into internal errors with the throw as cause", () => {
    const thrown = new TypeError("x is undefined");
    const error = toConnectError(thrown);
    assert.equal(error.code, Code.Internal);
    assert.equal(error.rawMessage, "internal error");
    assert.equal(error.cause, thrown);
  });

  it("passes ConnectErrors through", () => {
    const error = new ConnectError("bad", Code.InvalidArgument);
    assert.equal(toConnectError(error), error);
  });

  it("takes the code of a stopped generation from the call's abort reason", () => {
    const stopped = new EngineError("cancelled", "generation stopped");
    for (const [reason, code] of [
      [new ConnectError("the operation timed out", Code.DeadlineExceeded), Code.DeadlineExceeded],
      [new ConnectError("the server is shutting down", Code.Unavailable), Code.Unavailable],
      [new ConnectError("operation was aborted via signal", Code.Canceled), Code.Canceled],
    ] as const) {
      const controller = new AbortController();
      controller.abort(reason);
      const error = toConnectError(stopped, controller.signal);
      assert.equal(error.code, code);
      assert.equal(error.cause, stopped);
    }
    assert.equal(toConnectError(stopped, new AbortController().signal).code, Code.Canceled);
  });
});
