/**
 * @module Child entry of a baseline server: `node baseline-server.js <raw-h2|grpc-js|fastify>
 * <port> <fixtures.json>`. It answers the bench over IPC like the gateway probe does (stats,
 * token write stamps, pace) plus `ready`, which resolves once the server listens.
 */
import { once } from "node:events";
import { loadFixtures } from "./bench-fixtures.js";
import { createConnectNodeServer } from "./connect-node-server.js";
import { createFastifyServer } from "./fastify-server.js";
import { startGrpcJsServer } from "./grpc-js-server.js";
import { serveIpc } from "./ipc-channel.js";
import { createProcessStatsHandlers } from "./process-stats.js";
import { createRawH2Server } from "./raw-h2-server.js";
import { createStreamTicker } from "./stream-ticker.js";

const baselineKinds = ["raw-h2", "grpc-js", "fastify", "connect-node"];

async function listen(kind: string, port: number, fixturesPath: string): Promise<void> {
  const fixtures = await loadFixtures(fixturesPath);
  const ticker = createStreamTicker();
  const handlers = createProcessStatsHandlers();
  handlers.set("take-token-trace", () => ticker.takeTrace());
  handlers.set("pace", (request) => {
    ticker.setPace(Number(request.paceMs));
    return null;
  });
  let ready: Promise<unknown>;
  switch (kind) {
    case "raw-h2": {
      const server = createRawH2Server(fixtures, ticker);
      server.listen(port, "127.0.0.1");
      ready = once(server, "listening");
      break;
    }
    case "connect-node": {
      const server = createConnectNodeServer(fixtures);
      server.listen(port, "127.0.0.1");
      ready = once(server, "listening");
      break;
    }
    case "grpc-js":
      ready = startGrpcJsServer(fixtures, port);
      break;
    case "fastify":
      ready = createFastifyServer(fixtures, ticker).listen({ port, host: "127.0.0.1" });
      break;
    default:
      throw new Error(`unknown baseline "${kind}"; expected one of ${baselineKinds.join(", ")}`);
  }
  handlers.set("ready", async () => {
    await ready;
    return null;
  });
  serveIpc(handlers);
}

const [kind = "", port = "", fixturesPath = ""] = process.argv.slice(2);
await listen(kind, Number(port), fixturesPath);
