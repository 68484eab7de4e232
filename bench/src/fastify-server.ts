/**
 * @module The REST baselines on Fastify over HTTP/1.1: `GET /v1/models` answers the same
 * `ListModelsResponse` as JSON, and `GET /v1/stream?key=K&tokens=N` streams the captured messages (the first N tokens) as
 * Server-Sent Events (`data: <json>\n\n`), driven by the stream ticker.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { type BenchFixtures, fixturesAsJson } from "./bench-fixtures.js";
import type { StreamTicker } from "./stream-ticker.js";

/** Creates the app; the caller listens. */
export function createFastifyServer(
  fixtures: BenchFixtures,
  ticker: StreamTicker,
): FastifyInstance {
  const json = fixturesAsJson(fixtures);
  const models = JSON.parse(json.listModelsResponse) as unknown;
  const [first, ...tokens] = json.streamMessages.map((m) => `data: ${m}\n\n`);
  const app = Fastify({ logger: false });
  app.get("/v1/models", async () => models);
  app.get("/v1/stream", (request, reply) => {
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
    });
    response.write(first);
    const query = request.query as { key?: string; tokens?: string };
    ticker.add({
      key: query.key,
      tokens: Math.min(Number(query.tokens) || tokens.length, tokens.length),
      write: (index) => response.write(tokens[index - 1] as string),
      end: () => response.end(),
      onceDrain: (callback) => response.once("drain", callback),
      get closed() {
        return response.destroyed || response.writableEnded;
      },
    });
  });
  return app;
}
