/**
 * @module Writes a graph's `model.onnx`, generating its weights. Small models keep their
 * weights inline; big ones put them in `model.onnx.data` (ONNX external data, as Hugging Face
 * exports do), streamed tensor by tensor so memory holds one 4 MiB chunk, not the whole model
 * (a 4-bit weight is quantized whole, one tensor at a time). Graphs with `com.microsoft` nodes
 * get that domain's opset import.
 */
import { endianness } from "node:os";
import { basename } from "node:path";
import { createAtomicFile, writeFileAtomically } from "./atomic-file.js";
import { encodeOnnxModel, type OnnxTensor } from "./encode-onnx-model.js";
import { type GraphSpec, MS_DOMAIN, type WeightSpec } from "./graph-builder.js";
import { type WeightTensor, weightTensors } from "./weight-tensors.js";

/** ONNX IR version 8 goes with opset 17. */
const IR_VERSION = 8;
const OPSET_VERSION = 17;
/** The only version of the `com.microsoft` domain there is. */
const MS_OPSET_VERSION = 1;

/** External tensors start on 4 KiB boundaries, so onnxruntime can memory-map them. */
const EXTERNAL_ALIGNMENT = 4096;

export interface WriteOnnxModelOptions {
  /** Seed the weights are drawn from. */
  readonly seed: number;
  /** Put weights in `<model file>.data` instead of inline. */
  readonly externalData: boolean;
  /** The model's doc_string. */
  readonly docString: string;
  /** The generator's version, as producer_version. */
  readonly producerVersion: string;
}

function inlineTensor({ name, dataType, dims, byteLength, chunks }: WeightTensor): OnnxTensor {
  const raw = new Uint8Array(byteLength);
  let offset = 0;
  for (const chunk of chunks) {
    raw.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { name, dataType, dims, raw };
}

/** Streams every weight into the data file and returns the tensors that point into it. */
async function writeExternalData(
  dataPath: string,
  weights: readonly WeightSpec[],
  seed: number,
): Promise<OnnxTensor[]> {
  const file = await createAtomicFile(dataPath);
  const location = basename(dataPath);
  const tensors: OnnxTensor[] = [];
  try {
    let offset = 0;
    for (const { name, dataType, dims, chunks } of weights.flatMap((w) => weightTensors(w, seed))) {
      const padding = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
      if (padding > 0) await file.handle.write(new Uint8Array(padding));
      offset += padding;
      const start = offset;
      for (const chunk of chunks) {
        await file.handle.write(chunk);
        offset += chunk.byteLength;
      }
      tensors.push({
        name,
        dataType,
        dims,
        external: { location, offset: start, length: offset - start },
      });
    }
  } catch (error) {
    await file.abort();
    throw error;
  }
  await file.commit();
  return tensors;
}

/** Writes `graph` to `path` (and `path`.data when `externalData`), drawing weights from `seed`. */
export async function writeOnnxModel(
  path: string,
  graph: GraphSpec,
  options: WriteOnnxModelOptions,
): Promise<void> {
  // Float32Array bytes are the platform's; ONNX raw data is little-endian.
  if (endianness() !== "LE") throw new Error("the model generator needs a little-endian CPU");
  const weights = options.externalData
    ? await writeExternalData(`${path}.data`, graph.weights, options.seed)
    : graph.weights.flatMap((weight) => weightTensors(weight, options.seed).map(inlineTensor));
  const bytes = encodeOnnxModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET_VERSION,
    ...(graph.nodes.some((node) => node.domain === MS_DOMAIN)
      ? { customOpsets: [{ domain: MS_DOMAIN, version: MS_OPSET_VERSION }] }
      : {}),
    producerName: "parley",
    producerVersion: options.producerVersion,
    docString: options.docString,
    graph: {
      name: graph.name,
      nodes: graph.nodes,
      initializers: [...graph.constants, ...weights],
      inputs: graph.inputs,
      outputs: graph.outputs,
    },
  });
  await writeFileAtomically(path, bytes);
}
