/**
 * @module Turns generated token ids into text one token at a time without ever emitting half a
 * UTF-8 character, and so that the pieces concatenate to exactly what decoding all ids at once
 * gives. The technique is TGI's and vLLM's: decode a small window of recent ids twice (with and
 * without the newest ones) and emit the difference once it no longer ends in U+FFFD.
 */

/** Decodes ids to text, skipping special tokens (the tokenizer library's `decode`). */
export type DecodeFn = (ids: readonly number[]) => string;

const replacementCharacter = "\uFFFD";

/** Incremental detokenizer for one sequence. */
export class IncrementalDetokenizer {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  private emitted = "";

  constructor(private readonly decode: DecodeFn) {}

  /** Adds one token id; returns the new whole characters it completes (often "", never half). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const newText = this.decode(this.ids.slice(this.prefixOffset));
    if (newText.length <= prefixText.length || newText.endsWith(replacementCharacter)) {
      return "";
    }
    const delta = newText.slice(prefixText.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.emitted += delta;
    return delta;
  }

  /**
   * Returns the text still held back at the end (bytes that never completed a character decode
   * to U+FFFD here, as they do when decoding all ids at once).
   */
  flush(): string {
    const full = this.decode(this.ids);
    const rest = full.startsWith(this.emitted) ? full.slice(this.emitted.length) : "";
    this.emitted += rest;
    return rest;
  }
}
