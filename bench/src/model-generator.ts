/**
 * @module The one door through which the bench reaches the model generator (the ONNX writer that
 * builds the bench's generated decoders), so that moving the generator to its own package changes
 * one import line here.
 */
export { writeDecoderModel } from "@parley/gateway/model-generator";
