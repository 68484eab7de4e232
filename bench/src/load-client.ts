/**
 * @module Child entry of the bench's load generator: runs one job at a time on request over IPC
 * (`unary` and `client-stream` with connect-node clients, `stream` with the raw streaming
 * client), so that the
 * client's CPU is measured apart from both the servers and the bench's bookkeeping.
 */
import { type ClientStreamJob, runClientStream } from "./client-stream.js";
import { serveIpc } from "./ipc-channel.js";
import { createProcessStatsHandlers } from "./process-stats.js";
import { runStreamLoad, type StreamLoadJob } from "./stream-load.js";
import { runUnaryLoad, type UnaryLoadJob } from "./unary-load.js";

const handlers = createProcessStatsHandlers();
handlers.set("unary", (request) => runUnaryLoad(request.job as UnaryLoadJob));
handlers.set("stream", (request) => runStreamLoad(request.job as StreamLoadJob));
handlers.set("client-stream", (request) => runClientStream(request.job as ClientStreamJob));
serveIpc(handlers);
