/**
 * The worker's logger: a small interface (so handlers and tests do not depend on a logging library),
 * backed by pino writing JSON lines to stdout.
 */
import { pino } from "pino";

export type LogFields = Record<string, unknown>;

/** What `ctx.log` offers a handler. */
export interface WorkerLogger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): WorkerLogger;
}

type PinoLike = {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child(bindings: object): PinoLike;
};

function wrap(logger: PinoLike): WorkerLogger {
  return {
    debug: (message, fields) => logger.debug(fields ?? {}, message),
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
    child: (fields) => wrap(logger.child(fields)),
  };
}

/** A JSON logger on stdout; level from `LOG_LEVEL` (default `info`). */
export function defaultLogger(env: NodeJS.ProcessEnv = process.env, base: LogFields = {}): WorkerLogger {
  return wrap(pino({ level: env.LOG_LEVEL?.trim() || "info", base: { ...base } }) as unknown as PinoLike);
}

/** A logger that drops everything (tests). */
export const silentLogger: WorkerLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
