/**
 * @module Words for the numbers under a reply: "84 ms to first token · 41.7 tok/s · 128 tokens
 * · gRPC-Web · stopped: length".
 */
import type { ReplyStats, ReplyStatus } from "./conversation-store.js";
import { protocolLabel } from "./protocol-transport.js";
import type { StreamProgress } from "./stream-reply.js";

/** One item of the line, with a tooltip that says what it measures. */
export interface StatItem {
  readonly text: string;
  readonly title: string;
}

const finishWords: Record<string, string> = {
  stop: "end of text",
  stop_sequence: "stop sequence",
  length: "length",
  context_length: "context full",
};

/** The items shown under a finished, stopped or failed reply, in display order. */
export function formatStats(stats: ReplyStats, status: ReplyStatus): StatItem[] {
  const items: StatItem[] = [];
  if (stats.ttftMs !== undefined) {
    items.push({
      text: `${formatDuration(stats.ttftMs)} to first token`,
      title: "Time from sending to the first token",
    });
  }
  if (stats.tokensPerSecond !== undefined) {
    items.push({
      text: `${stats.tokensPerSecond.toFixed(1)} tok/s`,
      title: "Tokens per second after the first token",
    });
  }
  const count = stats.completionTokens;
  items.push({
    text: `${count} ${count === 1 ? "token" : "tokens"}`,
    title:
      stats.promptTokens === undefined
        ? "Tokens generated"
        : `Tokens generated (prompt: ${stats.promptTokens} tokens)`,
  });
  items.push({
    text: protocolLabel(stats.protocol),
    title: `Served over ${protocolLabel(stats.protocol)} by ${stats.model || "the default model"}`,
  });
  if (status === "stopped") {
    items.push({ text: "stopped by you", title: "Generation was cancelled from the page" });
  } else if (stats.finishReason !== undefined) {
    items.push({
      text: `stopped: ${finishWords[stats.finishReason] ?? stats.finishReason}`,
      title: `Finish reason: ${stats.finishReason}`,
    });
  }
  return items;
}

/** The numbers shown while a reply streams: tokens so far and decode speed. */
export function formatLiveStats(progress: StreamProgress | undefined): StatItem[] {
  if (progress === undefined) {
    return [{ text: "waiting for the first token…", title: "The prompt is being read" }];
  }
  const items: StatItem[] = [
    {
      text: `${progress.tokens} ${progress.tokens === 1 ? "token" : "tokens"}`,
      title: "Tokens generated so far",
    },
  ];
  if (progress.tokensPerSecond !== undefined) {
    items.push({
      text: `${progress.tokensPerSecond.toFixed(1)} tok/s`,
      title: "Tokens per second since the first token",
    });
  }
  return items;
}

function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
