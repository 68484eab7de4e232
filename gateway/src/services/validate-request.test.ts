/**
 * @module The request rules as plain functions: each limit on both sides of its edge.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DetokenizeRequestSchema,
  GenerateRequestSchema,
  GenerateStreamRequestSchema,
  TokenizeRequestSchema,
} from "@parley/gen/inference/v1/inference_pb";
import {
  requestLimits,
  validateDetokenizeRequest,
  validateGenerateRequest,
  validateTokenizeRequest,
} from "./validate-request.js";

type Init = Parameters<typeof create<typeof GenerateRequestSchema>>[1];

const validate = (init: Init) => validateGenerateRequest(create(GenerateRequestSchema, init));

function rejects(init: Init, pattern: RegExp): void {
  assert.throws(
    () => validate(init),
    (error: unknown) =>
      error instanceof ConnectError &&
      error.code === Code.InvalidArgument &&
      pattern.test(error.rawMessage),
  );
}

describe("validateGenerateRequest", () => {
  it("maps a prompt request with every field to the engine's request", () => {
    assert.deepEqual(
      validate({
        model: "m",
        prompt: "Once",
        maxTokens: 7,
        temperature: 0.5,
        topP: 0.9,
        topK: 40,
        seed: 18446744073709551615n,
        stop: ["\n\n"],
        presencePenalty: 0.5,
        frequencyPenalty: -0.25,
        repetitionPenalty: 1.5,
        minP: 0.125,
        stopTokenIds: [2, 7],
        logprobs: true,
        topLogprobs: 3,
      }),
      {
        model: "m",
        input: { kind: "text", text: "Once" },
        maxTokens: 7,
        sampling: {
          temperature: 0.5,
          topP: 0.9,
          topK: 40,
          seed: 18446744073709551615n,
          presencePenalty: 0.5,
          frequencyPenalty: -0.25,
          repetitionPenalty: 1.5,
          minP: 0.125,
        },
        stop: ["\n\n"],
        stopTokenIds: [2, 7],
        topLogprobs: 3,
      },
    );
  });

  it("maps a conversation and leaves unset fields unset", () => {
    const request = validateGenerateRequest(
      create(GenerateStreamRequestSchema, {
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "" },
        ],
      }),
    );
    assert.deepEqual(request, {
      model: "",
      input: {
        kind: "messages",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "" },
        ],
      },
      maxTokens: undefined,
      sampling: {
        temperature: undefined,
        topP: undefined,
        topK: undefined,
        seed: undefined,
        presencePenalty: undefined,
        frequencyPenalty: undefined,
        repetitionPenalty: undefined,
        minP: undefined,
      },
      stop: [],
      stopTokenIds: [],
      topLogprobs: undefined,
    });
  });

  it("wants exactly one of prompt and messages", () => {
    rejects({}, /both are empty/);
    rejects({ prompt: "a", messages: [{ role: "user", content: "b" }] }, /not both/);
  });

  it("wants a role on every message", () => {
    rejects(
      {
        messages: [
          { role: "user", content: "a" },
          { role: "", content: "b" },
        ],
      },
      /messages\[1\]\.role/,
    );
    rejects({ messages: [{ role: "  ", content: "b" }] }, /messages\[0\]\.role/);
    rejects(
      { messages: [{ role: "r".repeat(requestLimits.maxRoleChars + 1), content: "b" }] },
      /role is longer/,
    );
  });

  it("bounds the prompt and the conversation", () => {
    assert.doesNotThrow(() => validate({ prompt: "x".repeat(requestLimits.maxPromptChars) }));
    rejects({ prompt: "x".repeat(requestLimits.maxPromptChars + 1) }, /prompt is longer/);
    const half = "x".repeat(requestLimits.maxPromptChars / 2 + 1);
    rejects(
      {
        messages: [
          { role: "user", content: half },
          { role: "user", content: half },
        ],
      },
      /characters of content/,
    );
    const turns = Array.from({ length: requestLimits.maxMessages + 1 }, () => ({
      role: "user",
      content: "",
    }));
    rejects({ messages: turns }, /more than 1000 turns/);
  });

  it("wants max_tokens of at least 1 when set", () => {
    rejects({ prompt: "a", maxTokens: 0 }, /max_tokens/);
    assert.equal(validate({ prompt: "a", maxTokens: 1 }).maxTokens, 1);
  });

  it("keeps temperature finite in [0, 2]", () => {
    for (const temperature of [0, 1, 2]) {
      assert.equal(validate({ prompt: "a", temperature }).sampling.temperature, temperature);
    }
    for (const temperature of [-0.1, 2.01, Number.NaN, Number.POSITIVE_INFINITY]) {
      rejects({ prompt: "a", temperature }, /temperature/);
    }
  });

  it("keeps top_p in (0, 1]", () => {
    assert.equal(validate({ prompt: "a", topP: 1 }).sampling.topP, 1);
    assert.equal(validate({ prompt: "a", topP: 0.01 }).sampling.topP, 0.01);
    for (const topP of [0, -1, 1.01, Number.NaN]) {
      rejects({ prompt: "a", topP }, /top_p/);
    }
  });

  it("keeps top_k at most 1000 (0 is off)", () => {
    assert.equal(validate({ prompt: "a", topK: 0 }).sampling.topK, 0);
    assert.equal(
      validate({ prompt: "a", topK: requestLimits.maxTopK }).sampling.topK,
      requestLimits.maxTopK,
    );
    rejects({ prompt: "a", topK: requestLimits.maxTopK + 1 }, /top_k/);
  });

  it("bounds stop strings in number and length, and refuses empty ones", () => {
    const sixteen = Array.from({ length: requestLimits.maxStopStrings }, (_, i) => `s${i}`);
    assert.deepEqual(validate({ prompt: "a", stop: sixteen }).stop, sixteen);
    rejects({ prompt: "a", stop: [...sixteen, "x"] }, /more than 16/);
    rejects({ prompt: "a", stop: ["ok", ""] }, /stop\[1\] is empty/);
    assert.doesNotThrow(() =>
      validate({ prompt: "a", stop: ["s".repeat(requestLimits.maxStopChars)] }),
    );
    rejects(
      { prompt: "a", stop: ["s".repeat(requestLimits.maxStopChars + 1)] },
      /stop\[0\] is longer/,
    );
  });

  it("keeps presence_penalty and frequency_penalty finite in [-2, 2]", () => {
    for (const field of ["presencePenalty", "frequencyPenalty"] as const) {
      const name = field === "presencePenalty" ? "presence_penalty" : "frequency_penalty";
      for (const value of [-2, 0, 2]) {
        assert.equal(validate({ prompt: "a", [field]: value }).sampling[field], value);
      }
      for (const value of [-2.01, 2.01, Number.NaN, Number.NEGATIVE_INFINITY]) {
        rejects({ prompt: "a", [field]: value }, new RegExp(`^${name} must be in \\[-2, 2\\]`));
      }
    }
  });

  it("keeps repetition_penalty finite and above 0", () => {
    for (const value of [0.01, 1, 100]) {
      assert.equal(
        validate({ prompt: "a", repetitionPenalty: value }).sampling.repetitionPenalty,
        value,
      );
    }
    for (const value of [0, -1, Number.POSITIVE_INFINITY, Number.NaN]) {
      rejects({ prompt: "a", repetitionPenalty: value }, /^repetition_penalty must be above 0/);
    }
  });

  it("keeps min_p in [0, 1]", () => {
    for (const value of [0, 0.5, 1]) {
      assert.equal(validate({ prompt: "a", minP: value }).sampling.minP, value);
    }
    for (const value of [-0.01, 1.01, Number.NaN]) {
      rejects({ prompt: "a", minP: value }, /^min_p must be in \[0, 1\]/);
    }
  });

  it("bounds stop_token_ids in number", () => {
    const ids = Array.from({ length: requestLimits.maxStopTokenIds }, (_, i) => i);
    assert.deepEqual(validate({ prompt: "a", stopTokenIds: ids }).stopTokenIds, ids);
    rejects({ prompt: "a", stopTokenIds: [...ids, 0] }, /^stop_token_ids has more than 256/);
  });

  it("asks for logprobs with logprobs, and at most 20 alternatives", () => {
    assert.equal(validate({ prompt: "a" }).topLogprobs, undefined);
    assert.equal(validate({ prompt: "a", logprobs: true }).topLogprobs, 0);
    assert.equal(validate({ prompt: "a", logprobs: true, topLogprobs: 20 }).topLogprobs, 20);
    rejects({ prompt: "a", logprobs: true, topLogprobs: 21 }, /^top_logprobs must be in \[0, 20\]/);
    rejects({ prompt: "a", topLogprobs: 2 }, /^top_logprobs needs logprobs/);
  });
});

describe("validateTokenizeRequest and validateDetokenizeRequest", () => {
  it("tokenizes exactly one of text and messages, as generation would", () => {
    assert.deepEqual(
      validateTokenizeRequest(create(TokenizeRequestSchema, { model: "m", text: "hi" })),
      { model: "m", input: { kind: "text", text: "hi" }, addSpecialTokens: undefined },
    );
    assert.deepEqual(
      validateTokenizeRequest(
        create(TokenizeRequestSchema, {
          messages: [{ role: "user", content: "hi" }],
          addSpecialTokens: false,
        }),
      ),
      {
        model: "",
        input: { kind: "messages", messages: [{ role: "user", content: "hi" }] },
        addSpecialTokens: false,
      },
    );
    for (const init of [{}, { text: "a", messages: [{ role: "user", content: "b" }] }]) {
      assert.throws(
        () => validateTokenizeRequest(create(TokenizeRequestSchema, init)),
        (error: unknown) =>
          error instanceof ConnectError &&
          error.code === Code.InvalidArgument &&
          /^set (either )?text or messages/.test(error.rawMessage),
      );
    }
  });

  it("bounds the ids Detokenize decodes", () => {
    const request = create(DetokenizeRequestSchema, { tokenIds: [1, 2], skipSpecialTokens: true });
    assert.deepEqual(validateDetokenizeRequest(request), {
      model: "",
      tokenIds: [1, 2],
      skipSpecialTokens: true,
    });
    const tooMany = create(DetokenizeRequestSchema, {
      tokenIds: new Array<number>(requestLimits.maxDetokenizeIds + 1).fill(0),
    });
    assert.throws(
      () => validateDetokenizeRequest(tooMany),
      (error: unknown) =>
        error instanceof ConnectError &&
        error.code === Code.InvalidArgument &&
        /^token_ids has more than/.test(error.rawMessage),
    );
  });
});
