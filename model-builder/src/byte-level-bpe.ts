/**
 * @module Byte-level BPE vocabulary building (GPT-2 style): merges learned from a small corpus,
 * then, for big vocabularies, more merges drawn deterministically. Hand-written because npm
 * has no maintained BPE trainer (Hugging Face's `tokenizers` trainer is Python/Rust only), and
 * the generated model must be buildable offline from this repository alone.
 */
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/**
 * GPT-2's byte-to-character table: printable bytes stand for themselves, the others are moved
 * to U+0100 and up, so every byte is one visible character (a space is "Ġ").
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table.push(String.fromCharCode(printable(b) ? b : 256 + shifted++));
  }
  return table;
})();

/** The pre-tokenizer split of Hugging Face's ByteLevel pre-tokenizer (GPT-2's pattern). */
export const PRE_TOKENIZE =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const utf8 = new TextEncoder();

/** `text`'s UTF-8 bytes as byte-level characters, one per byte. */
export function toByteChars(text: string): string[] {
  return Array.from(utf8.encode(text), (byte) => BYTE_TO_CHAR[byte] as string);
}

export type Merge = readonly [string, string];

export interface LearnMergesOptions {
  readonly corpus: string;
  /** Characters that must become single tokens whatever their frequency; merged first. */
  readonly wholeCharacters: readonly string[];
  /** Stop after this many merges. */
  readonly maxMerges: number;
  /** Stop when the most frequent pair occurs fewer times than this. */
  readonly minFrequency: number;
}

/** Merges `pair` wherever it occurs in `symbols` (left to right, non-overlapping). */
function applyMerge(symbols: readonly string[], [a, b]: Merge): string[] {
  const merged: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (symbols[i] === a && symbols[i + 1] === b) {
      merged.push(a + b);
      i++;
    } else {
      merged.push(symbols[i] as string);
    }
  }
  return merged;
}

/** A pair's key; byte-level symbols never contain a space, so the space is unambiguous. */
function pairKey(a: string, b: string): string {
  return `${a} ${b}`;
}

/**
 * Learns merges the standard way: repeatedly merge the most frequent adjacent pair (ties go to
 * the smaller pair key). Pair counts are kept incrementally, and a merge rewrites only the words
 * that hold its pair, so a few thousand merges over a 200 KB corpus take well under a second.
 */
export function learnMerges(options: LearnMergesOptions): Merge[] {
  const frequency = new Map<string, number>();
  for (const piece of options.corpus.match(PRE_TOKENIZE) ?? []) {
    const word = toByteChars(piece).join("");
    frequency.set(word, (frequency.get(word) ?? 0) + 1);
  }
  // Sorted so the result does not depend on Map insertion order of equal counts.
  const words = [...frequency.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([word, count]) => ({ symbols: Array.from(word), count }));
  const pairCounts = new Map<string, number>();
  const wordsWithPair = new Map<string, Set<number>>();
  const count = (index: number, sign: 1 | -1) => {
    const { symbols, count: weight } = words[index] as (typeof words)[number];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i] as string, symbols[i + 1] as string);
      const total = (pairCounts.get(key) ?? 0) + sign * weight;
      if (total === 0) pairCounts.delete(key);
      else pairCounts.set(key, total);
      if (sign === 1) {
        const holders = wordsWithPair.get(key) ?? new Set<number>();
        holders.add(index);
        wordsWithPair.set(key, holders);
      }
    }
  };
  for (let index = 0; index < words.length; index++) count(index, 1);

  const merges: Merge[] = [];
  const known = new Set(BYTE_TO_CHAR);
  const merge = (pair: Merge) => {
    merges.push(pair);
    known.add(pair[0] + pair[1]);
    const key = pairKey(...pair);
    // A stale holder (its pair merged away since) is harmless: applyMerge leaves it unchanged.
    for (const index of wordsWithPair.get(key) ?? []) {
      const word = words[index] as (typeof words)[number];
      count(index, -1);
      word.symbols = applyMerge(word.symbols, pair);
      count(index, 1);
    }
    wordsWithPair.delete(key);
  };

  for (const character of options.wholeCharacters) {
    const [first, ...rest] = toByteChars(character);
    let current = first as string;
    for (const next of rest) {
      if (!known.has(current + next)) merge([current, next]);
      current += next;
    }
  }
  while (merges.length < options.maxMerges) {
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, total] of pairCounts) {
      if (total > bestCount || (total === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = total;
      }
    }
    if (best === undefined || bestCount < options.minFrequency) break;
    const [a, b] = best.split(" ") as [string, string];
    merge([a, b]);
  }
  return merges;
}

/** Longest token that `extendMerges` makes, in byte-level characters. */
const MAX_EXTENDED_LENGTH = 12;

/**
 * Adds `count` merges to `merges`, each joining two tokens that already exist into a new
 * word-like token (lowercase letters, optionally after a leading space), chosen by a seeded
 * generator. Big benchmark vocabularies need tens of thousands of valid merges that no small
 * corpus yields; these keep the tokenizer a real BPE whose vocabulary matches the model's.
 */
export function extendMerges(merges: readonly Merge[], count: number, seed: number): Merge[] {
  const known = new Set<string>([...BYTE_TO_CHAR, ...merges.map(([a, b]) => a + b)]);
  const sorted = [...known].sort();
  // Left parts may start a word (with "Ġ"); right parts continue one.
  const heads = sorted.filter((token) => /^Ġ?[a-z]+$/.test(token));
  const tails = sorted.filter((token) => /^[a-z]+$/.test(token));
  const rng = xoroshiro128plus(seed);
  const added: Merge[] = [];
  while (added.length < count) {
    const head = heads[uniformInt(rng, 0, heads.length - 1)] as string;
    const tail = tails[uniformInt(rng, 0, tails.length - 1)] as string;
    const token = head + tail;
    if (token.length > MAX_EXTENDED_LENGTH || known.has(token)) continue;
    added.push([head, tail]);
    known.add(token);
    heads.push(token);
    if (!token.startsWith("Ġ")) tails.push(token);
  }
  return [...merges, ...added];
}
