/**
 * @module Test support: splits buf curl's output, one pretty-printed JSON document per message,
 * into the documents.
 */

/** Parses every top-level JSON object in `text`, in order. */
export function parseJsonStream<T = unknown>(text: string): T[] {
  const documents: T[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") {
      if (depth++ === 0) start = i;
    } else if (c === "}" && --depth === 0) {
      documents.push(JSON.parse(text.slice(start, i + 1)) as T);
    }
  }
  return documents;
}
