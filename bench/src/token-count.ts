/**
 * @module Counts the token ids a `GenerateStreamResponse` carries without decoding it: the
 * gateway may coalesce several tokens into one message for a reader that fell behind, so the
 * streaming client stamps arrivals per token, not per message. Hand-written (a few lines of
 * Protobuf wire format) to keep the client's cost per message small and equal for every system.
 */

/** The field number of `token_ids` in `GenerateStreamResponse`. */
const tokenIdsField = 2;

function readVarint(bytes: Uint8Array, start: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  let pos = start;
  for (;;) {
    const byte = bytes[pos++];
    if (byte === undefined) return [value, pos];
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, pos];
    shift += 7;
  }
}

/** Token ids in a binary `GenerateStreamResponse` (packed or not). */
export function countProtoTokenIds(bytes: Uint8Array): number {
  let count = 0;
  let pos = 0;
  while (pos < bytes.length) {
    const [tag, afterTag] = readVarint(bytes, pos);
    const field = Math.floor(tag / 8);
    pos = afterTag;
    switch (tag & 7) {
      case 0:
        pos = readVarint(bytes, pos)[1];
        if (field === tokenIdsField) count++;
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const [length, start] = readVarint(bytes, pos);
        if (field === tokenIdsField) {
          for (let i = start; i < start + length; i++)
            if (((bytes[i] as number) & 0x80) === 0) count++;
        }
        pos = start + length;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        return count;
    }
  }
  return count;
}

/** Token ids in the Protobuf JSON form of a `GenerateStreamResponse`. */
export function countJsonTokenIds(json: string): number {
  const start = json.indexOf('"tokenIds":[');
  if (start < 0) return 0;
  const from = start + '"tokenIds":['.length;
  const end = json.indexOf("]", from);
  if (end <= from) return 0;
  let count = 1;
  for (let i = from; i < end; i++) if (json.charCodeAt(i) === 44) count++;
  return count;
}
