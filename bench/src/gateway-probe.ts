/**
 * @module Preloaded into every gateway child the bench starts (`node --import gateway-probe.js
 * gateway/dist/main.js …`). On the main thread it answers the bench over IPC (CPU, memory,
 * event-loop delay, and with PARLEY_BENCH_TRACE=1 the token arrival trace); in model workers
 * started with PARLEY_BENCH_PACE=1 it installs the step pacer. The gateway itself runs unchanged.
 */
import { BroadcastChannel, isMainThread, parentPort } from "node:worker_threads";
import { serveIpc } from "./ipc-channel.js";
import { createProcessStatsHandlers } from "./process-stats.js";
import { installTokenTrace } from "./token-trace.js";

/** The channel that carries the pace from the main thread to the model workers' step pacers. */
const paceChannelName = "parley-bench-pace";

if (isMainThread) {
  const handlers = createProcessStatsHandlers();
  if (process.env.PARLEY_BENCH_TRACE === "1") {
    for (const [type, handler] of installTokenTrace()) handlers.set(type, handler);
  }
  const pace = new BroadcastChannel(paceChannelName);
  pace.unref();
  handlers.set("pace", (request) => {
    pace.postMessage({ paceMs: request.paceMs });
    return null;
  });
  serveIpc(handlers);
} else if (process.env.PARLEY_BENCH_PACE === "1" && parentPort !== null) {
  // Imported only here: the step pacer loads onnxruntime-node, which the main thread never does.
  const { installStepPacer } = await import("./step-pacer.js");
  installStepPacer(paceChannelName);
}
