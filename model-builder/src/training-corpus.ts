/**
 * @module The text the generated models learn from: chapters 1–20 of Jane Austen's "Pride and
 * Prejudice" (1813, public domain), shipped in `corpus/` with its source in `corpus/README.md`.
 * The tokenizer's merges are learned from it, and the built-in model's next-token table is
 * counted from it, so a reply is a stream of Austen's words.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The corpus file, read at build time (its bytes are part of the generator's fingerprint). */
export const CORPUS_FILE = fileURLToPath(
  new URL("../corpus/pride-and-prejudice-1-20.txt", import.meta.url),
);

/**
 * The corpus as paragraphs of plain prose: chapter headings and the title dropped, Project
 * Gutenberg's `_italics_` marks removed, each paragraph's hard line breaks joined into spaces.
 */
export function corpusParagraphs(text: string = readFileSync(CORPUS_FILE, "utf8")): string[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => block.replaceAll("_", "").replace(/\s+/g, " ").trim())
    .filter((paragraph) => /[a-z]/.test(paragraph) && !/^Chapter \d+$/.test(paragraph))
    .filter((paragraph) => paragraph !== "By Jane Austen");
}

/** The training text of the tokenizer. Changing the corpus changes every generated tokenizer. */
export const TRAINING_CORPUS = corpusParagraphs().join("\n");
