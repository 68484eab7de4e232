/**
 * @module Scenario 9, prefix caching: a chat resends its history every turn. Two gateways on the
 * large generated model, one with the prefix cache (the default) and one with
 * `--prefix-cache-mib 0`, each hold the same five-turn conversation over `/v1/completions`
 * (the history as the prompt, so no chat template is involved), in alternating rounds. The
 * figure is the time to first token of the fifth turn, whose prompt holds at least 512 tokens of
 * history: with the cache only the new turn is prefilled.
 *
 * The chat opens with a document the user pastes (about 400 tokens), then asks one-sentence
 * questions (about 55 tokens each) that get 16-token replies. The shape sets the floor of the
 * ratio, since the cache cannot save what is new in the prompt: the new question, and the last
 * reply too, because a random-weights model's tokens do not survive decoding and re-encoding
 * (a trained model's mostly do), so the match ends where the reply starts. With five equal
 * turns that is a fifth of the prompt whatever the turns' size, and 0.2 is out of reach; the
 * report gives the prompt and cached tokens so the floor can be read beside the ratio.
 */
import type { BenchContext } from "./bench-context.js";
import { type ChildSystem, startGateway } from "./child-system.js";
import { sseCompletion } from "./sse-completion.js";
import { type RoundFigure, roundFigure } from "./summary-stats.js";

/** One system's figures over the rounds. */
export interface PrefixCacheRow {
  readonly system: "prefix cache on" | "prefix cache off";
  /** Prompt tokens of the fifth turn (the history it resends). */
  readonly historyTokens: number;
  /** Of those, the tokens the prefix cache gave (the rest were prefilled), last round. */
  readonly cachedTokens: number;
  /** Time to first token of the fifth turn, ms. */
  readonly fifthTurnTtftMs: RoundFigure;
}

/** The document the first turn pastes, different in every round so rounds share no prefix. */
function document(round: number): string {
  const paragraph = `Notes of round ${round}: an inference gateway admits requests, batches their decode steps, caches the keys and values of shared prefixes, and streams tokens to many clients at once. `;
  return paragraph.repeat(8);
}

/** One question per turn. */
function userTurn(round: number, turn: number): string {
  const question = `In round ${round}, turn ${turn}, the user asks about gateways, batching, caches and streams, and how a server keeps many clients served at once without waiting.`;
  return turn === 1 ? `${document(round)}\n${question}` : question;
}

/** Five turns on `gateway`; returns the fifth turn's TTFT and prompt size. */
async function conversation(gateway: ChildSystem, round: number, replyTokens: number) {
  let history = "";
  let fifth = { ttftMs: 0, promptTokens: 0, cachedTokens: 0 };
  for (let turn = 1; turn <= 5; turn++) {
    history += `User: ${userTurn(round, turn)}\nAssistant:`;
    const reply = await sseCompletion(gateway.port, history, replyTokens);
    history += `${reply.text}\n`;
    if (turn === 5) fifth = reply;
  }
  return fifth;
}

/** Runs scenario 9. */
export async function runPrefixCacheScenario(
  ctx: BenchContext,
): Promise<{ rows: PrefixCacheRow[] }> {
  const replyTokens = ctx.settings.quick ? 4 : 16;
  const rounds = ctx.settings.quick ? 1 : ctx.settings.rounds;
  const systems = [
    { system: "prefix cache on", flags: [] },
    { system: "prefix cache off", flags: ["--prefix-cache-mib", "0"] },
  ] as const;
  const gateways = await Promise.all(
    systems.map(({ system, flags }) =>
      startGateway({
        name: system,
        // --quick generates no large model: the built-in one shows the mechanism, not the figure.
        models: [ctx.settings.engine.largeModel ? ctx.models.large : "builtin"],
        flags: ["--max-timeout-ms", "600000", ...flags],
      }),
    ),
  );
  try {
    const ttfts: number[][] = systems.map(() => []);
    const history: number[] = systems.map(() => 0);
    const cached: number[] = systems.map(() => 0);
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so drift on a shared machine falls on both.
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const fifth = await conversation(gateways[i] as ChildSystem, round, replyTokens);
        (ttfts[i] as number[]).push(fifth.ttftMs);
        history[i] = fifth.promptTokens;
        cached[i] = fifth.cachedTokens;
        ctx.log(
          `prefix cache: ${systems[i]?.system}, round ${round + 1}: fifth turn (${fifth.promptTokens} prompt tokens) TTFT ${fifth.ttftMs.toFixed(1)} ms, ${fifth.cachedTokens} tokens from the cache`,
        );
      }
    }
    return {
      rows: systems.map(({ system }, i) => ({
        system,
        historyTokens: history[i] ?? 0,
        cachedTokens: cached[i] ?? 0,
        fifthTurnTtftMs: roundFigure(ttfts[i] ?? []),
      })),
    };
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
  }
}

/** The rows as a Markdown table for the report. */
export function prefixCacheTable(rows: readonly PrefixCacheRow[]): string {
  return [
    "| system | fifth turn's prompt tokens | of them from the cache | fifth turn TTFT ms, median (range) |",
    "| --- | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.system} | ${r.historyTokens} | ${r.cachedTokens} | ${r.fifthTurnTtftMs.median.toFixed(1)} (${r.fifthTurnTtftMs.min.toFixed(1)}–${r.fifthTurnTtftMs.max.toFixed(1)}) |`,
    ),
  ].join("\n");
}
