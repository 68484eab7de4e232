/**
 * @module The built-in model's weights, derived from the corpus: a smoothed bigram model over
 * the tokenizer's tokens, written into the embedding and output matrices so that the decoder's
 * logits for the last token are (up to a constant) log P(next | last).
 *
 * With P(n | c) = (count(c, n) + μ·P(n)) / (count(c) + μ), log P(n | c) splits exactly into
 * log P(n) (a bias per next token), a constant per context (which softmax ignores) and a sparse
 * S(c, n) = log(1 + count(c, n) / (μ·P(n))) over the pairs the corpus holds. The embedding of
 * token c is [α·Q(c), β, slack]: Q(c) its row of a rank-(hidden − 2) approximation Q·(QᵀS) of S,
 * β a constant that carries the bias, and a slack entry that gives every row the same RMS, so
 * RMSNorm leaves it unchanged. lm_head maps those back: QᵀS / α, bias / β, 0. The attention
 * and MLP output projections are zero (set by the caller), so the residual stream is the
 * embedding and the model is exactly this bigram model, run through the whole Llama graph.
 *
 * Only tokens that are whole words or punctuation of the corpus can be emitted: the others
 * (the 256 byte tokens, word fragments, bos/pad/im_start) get a bias of {@link BLOCKED_LOGIT},
 * so no generation can produce a broken UTF-8 sequence, a control character or a non-word.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { PRE_TOKENIZE } from "./byte-level-bpe.js";
import type { DecoderModelDimensions } from "./decoder-model-options.js";
import { lowRank } from "./low-rank.js";
import { SpecialTokenId, type TokenizerFiles } from "./tokenizer-files.js";

/** The logit of tokens that are never emitted: exp() of it is 0 in float32 and float16 alike. */
export const BLOCKED_LOGIT = -1e4;

/** Weight of the unigram prior in the bigram's smoothing (μ): how much an unseen pair keeps. */
const PRIOR_WEIGHT = 1;

/** Dimensions besides the low-rank ones: the bias carrier and the slack. */
const EXTRA_DIMENSIONS = 2;

/** The values of `model.embed_tokens.weight` [vocab, hidden] and `lm_head.weight` [hidden, vocab]. */
export interface CorpusWeights {
  readonly embedding: Float32Array;
  readonly lmHead: Float32Array;
  /** Which token ids the model can emit. */
  readonly emittable: readonly boolean[];
}

/** Control characters and U+FFFD (a byte token's decoding) never make an emittable token. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\uFFFD]/u;

/**
 * Counts the corpus's bigrams over emittable tokens: each paragraph starts after a newline
 * (where a chat reply starts, after "<|im_start|>assistant\n") and ends with <|im_end|>. A
 * piece that is no single token breaks the chain rather than join its neighbours.
 */
function countBigrams(paragraphs: readonly string[], tokenizer: Tokenizer, vocabSize: number) {
  const pieceIds = new Map<string, readonly number[]>();
  const idsOf = (piece: string): readonly number[] => {
    const known = pieceIds.get(piece);
    if (known !== undefined) return known;
    const ids = tokenizer.encode(piece, { add_special_tokens: false }).ids;
    pieceIds.set(piece, ids);
    return ids;
  };
  const emittable = Array.from({ length: vocabSize }, () => false);
  emittable[SpecialTokenId.imEnd] = true;
  for (const paragraph of paragraphs) {
    for (const piece of paragraph.match(PRE_TOKENIZE) ?? []) {
      const ids = idsOf(piece);
      const id = ids[0];
      if (ids.length === 1 && id !== undefined && !UNPRINTABLE.test(piece)) emittable[id] = true;
    }
  }
  const [newline] = idsOf("\n");
  const pairs = new Map<number, number>(); // key: context * vocabSize + next
  const nextTotals = new Float64Array(vocabSize);
  const add = (context: number, next: number) => {
    const key = context * vocabSize + next;
    pairs.set(key, (pairs.get(key) ?? 0) + 1);
    nextTotals[next] = (nextTotals[next] as number) + 1;
  };
  for (const paragraph of paragraphs) {
    let previous: number | undefined = newline;
    for (const piece of paragraph.match(PRE_TOKENIZE) ?? []) {
      const ids = idsOf(piece);
      const id = ids[0];
      if (ids.length !== 1 || id === undefined || emittable[id] !== true) {
        previous = undefined;
        continue;
      }
      if (previous !== undefined) add(previous, id);
      previous = id;
    }
    if (previous !== undefined) add(previous, SpecialTokenId.imEnd);
  }
  return { emittable, pairs, nextTotals };
}

/** The built-in model's embedding and output matrices for dimensions `d`. */
export function corpusBigramWeights(
  d: DecoderModelDimensions,
  files: TokenizerFiles,
  paragraphs: readonly string[],
): CorpusWeights {
  const { vocabSize: vocab, hiddenSize: hidden } = d;
  const rank = hidden - EXTRA_DIMENSIONS;
  if (rank < 1) throw new RangeError(`corpus weights need hiddenSize > ${EXTRA_DIMENSIONS}`);
  const tokenizer = new Tokenizer(files.tokenizerJson, files.tokenizerConfig);
  const { emittable, pairs, nextTotals } = countBigrams(paragraphs, tokenizer, vocab);

  // Unigram prior over emittable tokens, add-one so every emittable token has some mass.
  const emitted = [...emittable.keys()].filter((id) => emittable[id]);
  const unigramTotal = emitted.reduce((sum, id) => sum + (nextTotals[id] as number) + 1, 0);
  const prior = (id: number) => ((nextTotals[id] as number) + 1) / unigramTotal;

  const entries = [...pairs.entries()].sort(([a], [b]) => a - b);
  const s = {
    rows: vocab,
    columns: vocab,
    row: Int32Array.from(entries, ([key]) => Math.floor(key / vocab)),
    column: Int32Array.from(entries, ([key]) => key % vocab),
    value: Float64Array.from(entries, ([key, count]) =>
      Math.log1p(count / (PRIOR_WEIGHT * prior(key % vocab))),
    ),
  };
  const { left, right } = lowRank(s, rank, d.seed);

  // Row c: [α·Q(c), β, slack], RMS 1. Q's rows have norm <= 1, so α² + β² <= hidden keeps
  // the slack real; α² = hidden/2, β² = hidden/4.
  const alpha = Math.sqrt(hidden / 2);
  const beta = Math.sqrt(hidden / 4);
  const embedding = new Float32Array(vocab * hidden);
  for (let c = 0; c < vocab; c++) {
    let sumSquares = beta * beta;
    for (let k = 0; k < rank; k++) {
      const value = alpha * (left[c * rank + k] as number);
      embedding[c * hidden + k] = value;
      sumSquares += value * value;
    }
    embedding[c * hidden + rank] = beta;
    embedding[c * hidden + rank + 1] = Math.sqrt(Math.max(0, hidden - sumSquares));
  }
  const lmHead = new Float32Array(hidden * vocab);
  for (let n = 0; n < vocab; n++) {
    if (!emittable[n]) {
      lmHead[rank * vocab + n] = BLOCKED_LOGIT / beta;
      continue;
    }
    for (let k = 0; k < rank; k++) lmHead[k * vocab + n] = (right[k * vocab + n] as number) / alpha;
    lmHead[rank * vocab + n] = Math.log(PRIOR_WEIGHT * prior(n)) / beta;
  }
  return { embedding, lmHead, emittable };
}
