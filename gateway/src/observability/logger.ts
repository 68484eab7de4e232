/**
 * @module The gateway's structured logger: one JSON line per event on stdout, so that any log
 * shipper can parse it. Server-side only: nothing logged here is ever sent to a client.
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from "pino";

/** The log levels `--log-level` accepts. */
export const logLevels: readonly LevelWithSilent[] = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** @example "info" */
  readonly level: LevelWithSilent;
  /** Where lines go; defaults to stdout. Tests pass a stream to read the lines back. */
  readonly destination?: DestinationStream;
}

/** Creates the pino logger; errors under the `err` key are serialized with their cause chain. */
export function createLogger(options: LoggerOptions): Logger {
  const settings = { level: options.level, base: { service: "parley" } };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}
