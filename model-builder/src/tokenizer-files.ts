/**
 * @module The built-in model's tokenizer files: a GPT-2 style byte-level BPE in Hugging Face's
 * `tokenizer.json` format (so any UTF-8 text tokenizes, and a multi-byte character can be split
 * across byte tokens), `tokenizer_config.json` with the chat template, and
 * `special_tokens_map.json`. Ids: specials 0–4, the 256 byte tokens 5–260, merges after.
 */
import { BYTE_TO_CHAR, extendMerges, learnMerges } from "./byte-level-bpe.js";
import { CHAT_TEMPLATE } from "./chat-template.js";
import { TRAINING_CORPUS } from "./training-corpus.js";

/** Special tokens in id order. */
export const SPECIAL_TOKENS = [
  "<|pad|>",
  "<|bos|>",
  "<|eos|>",
  "<|im_start|>",
  "<|im_end|>",
] as const;

/** Ids of the special tokens. */
export const SpecialTokenId = { pad: 0, bos: 1, eos: 2, imStart: 3, imEnd: 4 } as const;

/** The smallest vocabulary: the specials and the 256 byte tokens. */
export const MIN_VOCAB_SIZE = SPECIAL_TOKENS.length + BYTE_TO_CHAR.length;

/** Characters that are always one token, however rare in the corpus. */
const WHOLE_CHARACTERS = ["é", "è", "ü", "ö", "ä", "ñ", "ç", "中", "文", "你", "好", "🙂", "👍"];

/** Seed of the merges drawn beyond what the corpus yields; fixed so the tokenizer never varies with the model seed. */
const EXTRA_MERGES_SEED = 0x5041524c;

export interface TokenizerFilesOptions {
  /** Total tokens, specials included; at least MIN_VOCAB_SIZE. */
  readonly vocabSize: number;
  /** tokenizer_config.json's model_max_length. */
  readonly contextLength: number;
}

/** The JSON documents of the three tokenizer files. */
export interface TokenizerFiles {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly specialTokensMap: Record<string, unknown>;
}

function addedToken(content: string) {
  return {
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  };
}

/** Builds the tokenizer files for a vocabulary of exactly `vocabSize` tokens. */
export function createTokenizerFiles(options: TokenizerFilesOptions): TokenizerFiles {
  const { vocabSize, contextLength } = options;
  if (!Number.isSafeInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new RangeError(
      `vocabSize must be an integer of at least ${MIN_VOCAB_SIZE}, got ${vocabSize}`,
    );
  }
  const mergeCount = vocabSize - MIN_VOCAB_SIZE;
  const learned = learnMerges({
    corpus: TRAINING_CORPUS,
    wholeCharacters: WHOLE_CHARACTERS,
    maxMerges: mergeCount,
    minFrequency: 2,
  });
  const merges = extendMerges(learned, mergeCount - learned.length, EXTRA_MERGES_SEED);

  const tokens = [...SPECIAL_TOKENS, ...BYTE_TO_CHAR, ...merges.map(([a, b]) => a + b)];
  const vocab = Object.fromEntries(tokens.map((token, id) => [token, id]));
  const bos = SPECIAL_TOKENS[SpecialTokenId.bos];
  const eos = SPECIAL_TOKENS[SpecialTokenId.eos];
  const pad = SPECIAL_TOKENS[SpecialTokenId.pad];
  const chatTokens = [SPECIAL_TOKENS[SpecialTokenId.imStart], SPECIAL_TOKENS[SpecialTokenId.imEnd]];

  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, ...addedToken(content) })),
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [SpecialTokenId.bos], tokens: [bos] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // Byte-level tokens never contain a space, so the classic "a b" form is unambiguous.
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };

  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      SPECIAL_TOKENS.map((content, id) => [String(id), addedToken(content)]),
    ),
    additional_special_tokens: chatTokens,
    bos_token: bos,
    eos_token: eos,
    pad_token: pad,
    chat_template: CHAT_TEMPLATE,
    // Byte-level BPE round-trips text exactly; "clean-up" would rewrite " ." to "." on decode.
    clean_up_tokenization_spaces: false,
    model_max_length: contextLength,
    tokenizer_class: "PreTrainedTokenizerFast",
  };

  const specialTokensMap = {
    bos_token: bos,
    eos_token: eos,
    pad_token: pad,
    additional_special_tokens: chatTokens,
  };

  return { tokenizerJson, tokenizerConfig, specialTokensMap };
}
