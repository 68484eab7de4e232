/**
 * @module An engine that exists before its models have loaded, so the server can listen at once
 * (health, `/metrics`, the UI, probes) while models download and load, and serve inference from
 * the moment the real engine is handed over.
 */
import type { Engine } from "./engine.js";
import { EngineError } from "./engine-error.js";

/** An {@link Engine} that refuses generations with `unavailable` until {@link resolve} is called. */
export interface DeferredEngine extends Engine {
  /** Hands over the loaded engine; closes it at once if this one was closed meanwhile. */
  resolve(engine: Engine): Promise<void>;
}

/** Creates the stand-in: no models, none ready, every call refused until `resolve`. */
export function createDeferredEngine(): DeferredEngine {
  let inner: Engine | undefined;
  let closed: { graceMs: number } | undefined;
  const listeners = new Set<() => void>();
  let stopForwarding: (() => void) | undefined;
  const notify = () => {
    for (const listener of listeners) listener();
  };
  /** The loaded engine, or the `unavailable` error that says why there is none. */
  const loaded = (): Engine => {
    if (inner === undefined) {
      throw new EngineError(
        "unavailable",
        closed === undefined
          ? "the gateway is still loading its models; retry once it reports ready (/readyz, grpc.health.v1)"
          : "the gateway is shutting down",
      );
    }
    return inner;
  };

  return {
    models: () => inner?.models() ?? [],
    readyModels: () => inner?.readyModels() ?? [],
    onReadinessChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    generate(request, signal) {
      return loaded().generate(request, signal);
    },
    async tokenize(request, signal) {
      return loaded().tokenize(request, signal);
    },
    async detokenize(request, signal) {
      return loaded().detokenize(request, signal);
    },
    async resolve(engine) {
      if (inner !== undefined) throw new Error("the deferred engine was already resolved");
      if (closed !== undefined) {
        await engine.close(0);
        return;
      }
      inner = engine;
      stopForwarding = engine.onReadinessChange(notify);
      notify();
    },
    async close(graceMs = 0) {
      closed ??= { graceMs };
      stopForwarding?.();
      await inner?.close(graceMs);
    },
  };
}
