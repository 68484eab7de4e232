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
  encode(input: PromptInput): number[];
  /** Decodes generated ids, leaving special tokens out. */
  decode(ids: readonly number[]): string;
}

/** Creates the encoder for a model folder. */
export function createPromptEncoder(folder: ModelFolder): PromptEncoder {
  const tokenizer = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig);
  const template =
    folder.chatTemplate === undefined ? undefined : new Template(folder.chatTemplate);

  function encodeText(text: string): number[] {
    const ids = tokenizer.encode(text, { add_special_tokens: true }).ids;
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

  return {
    encode(input) {
      if (input.kind === "text") return encodeText(input.text);
      // The rendered template already holds BOS and other special tokens as text.
      return tokenizer.encode(render(input.messages), { add_special_tokens: false }).ids;
    },
    decode(ids) {
      // The library refuses an empty list; the detokenizer's windows are often empty.
      return ids.length === 0 ? "" : tokenizer.decode([...ids], { skip_special_tokens: true });
    },
  };
}
