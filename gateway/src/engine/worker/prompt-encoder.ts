/**
 * @module Turns a request's prompt into token ids: raw text through the tokenizer, or messages
 * through the model's Jinja chat template (`@huggingface/jinja`) first, as transformers'
 * `apply_chat_template` does.
 */
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import type { ModelFolder } from "../../models/model-folder.js";
import type { PromptInput } from "../engine.js";
import { EngineError } from "../engine-error.js";

/** Encodes prompts and decodes generated ids for one model. */
export interface PromptEncoder {
  /**
   * The prompt's ids. `addSpecialTokens` absent: what generation runs (the tokenizer's special
   * tokens for text, none for a rendered conversation, whose template writes them as text).
   */
  encode(input: PromptInput, addSpecialTokens?: boolean): number[];
  /** Decodes generated ids, leaving special tokens out. */
  decode(ids: readonly number[]): string;
  /** Decodes any ids; throws `invalid_argument` for an id the vocabulary does not have. */
  detokenize(ids: readonly number[], skipSpecialTokens: boolean): string;
  /** Each id's vocabulary entry ("▁Hello", "Ġworld", "<s>"). */
  vocabularyEntries(ids: readonly number[]): string[];
  /** One token's text decoded on its own, special tokens included (cached: logprobs ask often). */
  tokenText(id: number): string;
}

/** Decoded windows kept per model (a few MiB at most). */
const maxDecodedWindows = 1 << 16;

/** Creates the encoder for a model folder. */
export function createPromptEncoder(folder: ModelFolder): PromptEncoder {
  const tokenizer = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig);
  const template =
    folder.chatTemplate === undefined ? undefined : new Template(folder.chatTemplate);

  function encodeText(text: string, addSpecialTokens: boolean): number[] {
    const ids = tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    if (!addSpecialTokens) return ids;
    if (folder.addBosToken && folder.bosTokenId !== undefined && ids[0] !== folder.bosTokenId) {
      ids.unshift(folder.bosTokenId);
    }
    return ids;
  }

  function render(messages: readonly { role: string; content: string }[]): string {
    if (template === undefined) {
      throw new EngineError(
        "invalid_argument",
        "this model has no chat template: send a raw prompt instead of messages",
      );
    }
    try {
      return template.render({
        ...folder.specialTokens,
        messages: messages.map(({ role, content }) => ({ role, content })),
        add_generation_prompt: true,
      });
    } catch (cause) {
      // Templates reject conversations with raise_exception (e.g. roles that do not alternate);
      // that message is written for the caller.
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new EngineError("invalid_argument", `chat template rejected the messages: ${reason}`, {
        cause,
      });
    }
  }

  function checkIds(ids: readonly number[]): void {
    for (const id of ids) {
      if (tokenizer.id_to_token(id) === undefined) {
        throw new EngineError("invalid_argument", `token id ${id} is not in the vocabulary`);
      }
    }
  }

  const tokenTexts = new Map<number, string>();
  /**
   * `decode` of windows of one or two ids. The incremental detokenizer decodes two such windows
   * per generated token (the last emitted id, and it with the new one), and the library's decode
   * costs several µs a call (it maps ids to tokens, scans the added tokens, runs the decoder
   * chain and a TextDecoder): at 1,000 streams it was a quarter of the worker's time. Decoding
   * is a pure function of the ids, so the answers are kept; cleared when full, which bounds it.
   */
  const decodedWindows = new Map<number | string, string>();

  return {
    encode(input, addSpecialTokens) {
      if (input.kind === "text") return encodeText(input.text, addSpecialTokens ?? true);
      // The rendered template already holds BOS and other special tokens as text.
      return tokenizer.encode(render(input.messages), {
        add_special_tokens: addSpecialTokens ?? false,
      }).ids;
    },
    detokenize(ids, skipSpecialTokens) {
      checkIds(ids);
      return ids.length === 0
        ? ""
        : tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens });
    },
    vocabularyEntries(ids) {
      return ids.map((id) => tokenizer.id_to_token(id) ?? "");
    },
    tokenText(id) {
      const cached = tokenTexts.get(id);
      if (cached !== undefined) return cached;
      // Ids the tokenizer lacks (graphs pad their vocabulary) have no text.
      const text: string =
        tokenizer.id_to_token(id) === undefined
          ? ""
          : tokenizer.decode([id], { skip_special_tokens: false });
      tokenTexts.set(id, text);
      return text;
    },
    decode(ids) {
      // The library refuses an empty list; the detokenizer's windows are often empty.
      if (ids.length === 0) return "";
      if (ids.length > 2) return tokenizer.decode([...ids], { skip_special_tokens: true });
      const key = ids.length === 1 ? (ids[0] as number) : `${ids[0]},${ids[1]}`;
      const kept = decodedWindows.get(key);
      if (kept !== undefined) return kept;
      const text: string = tokenizer.decode([...ids], { skip_special_tokens: true });
      if (decodedWindows.size >= maxDecodedWindows) decodedWindows.clear();
      decodedWindows.set(key, text);
      return text;
    },
  };
}
