/**
 * @module The one door through which the bench reaches the model builder (`@parley/model-builder`,
 * the ONNX writer of the bench's generated decoders), so that where the builder lives is one
 * import line.
 */
export { writeDecoderModel } from "@parley/model-builder";
