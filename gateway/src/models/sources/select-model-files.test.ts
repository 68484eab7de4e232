import assert from "node:assert/strict";
import { test } from "node:test";
import { HubModelError } from "./hub-model-error.js";
import { downloadOrder, selectModelFiles } from "./select-model-files.js";

const metadata = ["config.json", "tokenizer.json", "tokenizer_config.json"];
const repo = [
  ...metadata,
  "special_tokens_map.json",
  "README.md",
  "onnx/model.onnx",
  "onnx/model.onnx_data",
  "onnx/model_fp16.onnx",
  "onnx/model_fp16.onnx_data",
  "onnx/model_fp16.onnx_data_1",
  "onnx/model_fp16.onnx_data_10",
  "onnx/model_fp16.onnx_data_2",
  "onnx/model_quantized.onnx",
  "onnx/model_q4f16.onnx",
];

function reason(expected: string) {
  return (error: unknown) => error instanceof HubModelError && error.reason === expected;
}

test("defaults to the fp32 graph with its external data and the present metadata", () => {
  const files = selectModelFiles("org/name", repo);
  assert.equal(files.variant, "fp32");
  assert.equal(files.graph, "onnx/model.onnx");
  assert.deepEqual(files.externalData, ["onnx/model.onnx_data"]);
  assert.deepEqual(files.metadata, [...metadata, "special_tokens_map.json"]);
});

test("picks the requested variant and only that graph's data files, in numeric order", () => {
  const files = selectModelFiles("org/name", repo, "fp16");
  assert.equal(files.graph, "onnx/model_fp16.onnx");
  assert.deepEqual(files.externalData, [
    "onnx/model_fp16.onnx_data",
    "onnx/model_fp16.onnx_data_1",
    "onnx/model_fp16.onnx_data_2",
    "onnx/model_fp16.onnx_data_10",
  ]);
  assert.equal(selectModelFiles("org/name", repo, "int8").graph, "onnx/model_quantized.onnx");
});

test("prefers a root model.onnx and finds its .onnx.data", () => {
  const files = selectModelFiles("org/name", [...metadata, "model.onnx", "model.onnx.data"]);
  assert.equal(files.graph, "model.onnx");
  assert.deepEqual(files.externalData, ["model.onnx.data"]);
});

test("without fp32, defaults to the first variant in table order", () => {
  const files = selectModelFiles("org/name", [
    ...metadata,
    "onnx/model_q4.onnx",
    "onnx/model_fp16.onnx",
  ]);
  assert.equal(files.variant, "fp16");
});

test("downloads the graph last", () => {
  const order = downloadOrder(selectModelFiles("org/name", repo, "fp16"));
  assert.equal(order.at(-1), "onnx/model_fp16.onnx");
  assert.deepEqual(order.slice(0, 4), [...metadata, "special_tokens_map.json"]);
});

test("reports missing graphs, variants and files clearly", () => {
  assert.throws(
    () => selectModelFiles("org/name", [...metadata, "model.safetensors"]),
    (error: unknown) => reason("not_found")(error) && /no ONNX graph/.test(String(error)),
  );
  assert.throws(
    () => selectModelFiles("org/name", repo, "bnb4"),
    (error: unknown) =>
      reason("not_found")(error) &&
      /available variants: fp32, fp16, int8, q4f16/.test(String(error)),
  );
  assert.throws(() => selectModelFiles("org/name", repo, "fp8"), reason("invalid"));
  assert.throws(
    () => selectModelFiles("org/name", ["config.json", "onnx/model.onnx"]),
    (error: unknown) =>
      reason("not_found")(error) && /tokenizer\.json, tokenizer_config\.json/.test(String(error)),
  );
});
