/**
 * @module The standard `grpc.health.v1.Health` service, so that Kubernetes gRPC probes, grpc
 * health clients and load balancers can ask whether Parley serves. connect-node has none
 * (connect-es #797) and grpc-js's package plugs only into a grpc-js server.
 */

import { EventEmitter, on } from "node:events";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@parley/gen/grpc/health/v1/health_pb";

/** Options of {@link createHealthService}. */
export interface HealthServiceOptions {
  /** Fully qualified names of the services whose health is known, besides "" (the server). */
  readonly services: readonly string[];
  /**
   * A service name that reports SERVING for as long as the process answers, loading, serving or
   * draining alike: what a liveness probe asks (Kubernetes' `grpc.service`), so that a model
   * loading, a worker restarting or a drain never gets the container killed.
   */
  readonly livenessService?: string;
}

/** The health service and the switches that drive it. */
export interface HealthService {
  readonly service: typeof Health;
  readonly implementation: ServiceImpl<typeof Health>;
  /**
   * Reports every service NOT_SERVING while `serving` is false (no model can generate), SERVING
   * again once it is true; `Watch` streams see each change. No effect after `shutDown()`.
   */
  setServing(serving: boolean): void;
  /**
   * Marks every service NOT_SERVING for good (the server is shutting down): `Watch` streams get
   * that status, then end with Unavailable so that they do not hold the shutdown up.
   */
  shutDown(): void;
}

/**
 * Creates the health service; every known service is SERVING until {@link HealthService.setServing}
 * says otherwise or {@link HealthService.shutDown}.
 */
export function createHealthService(options: HealthServiceOptions): HealthService {
  const live = options.livenessService;
  const known = new Set(["", ...options.services, ...(live === undefined ? [] : [live])]);
  const changes = new EventEmitter();
  let shuttingDown = false;
  let serving = true;
  const status = (service: string) =>
    !known.has(service)
      ? ServingStatus.SERVICE_UNKNOWN
      : service === live
        ? ServingStatus.SERVING
        : shuttingDown || !serving
          ? ServingStatus.NOT_SERVING
          : ServingStatus.SERVING;

  return {
    service: Health,
    implementation: {
      check(request) {
        if (!known.has(request.service)) {
          throw new ConnectError(`unknown service: ${request.service}`, Code.NotFound);
        }
        return { status: status(request.service) };
      },
      async *watch(request, context) {
        // Per the health protocol, an unknown service is not an error for Watch: it reports
        // SERVICE_UNKNOWN and would report a change should the service appear.
        let last = status(request.service);
        yield { status: last };
        if (shuttingDown) {
          throw shutdownError();
        }
        try {
          for await (const _ of on(changes, "change", { signal: context.signal })) {
            const current = status(request.service);
            if (current !== last) {
              last = current;
              yield { status: current };
            }
            if (shuttingDown) {
              throw shutdownError();
            }
          }
        } catch (error) {
          throw abortReason(error, context);
        }
      },
    },
    setServing(value) {
      if (value === serving) return;
      serving = value;
      changes.emit("change");
    },
    shutDown() {
      shuttingDown = true;
      changes.emit("change");
    },
  };
}

function shutdownError(): ConnectError {
  return new ConnectError("the server is shutting down", Code.Unavailable);
}

/** `events.on` rejects with an AbortError; the signal's reason says why (deadline, cancel). */
function abortReason(error: unknown, context: HandlerContext): unknown {
  return context.signal.aborted && !(error instanceof ConnectError)
    ? ConnectError.from(context.signal.reason)
    : error;
}
