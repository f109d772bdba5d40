/** Structured JSON logs (pino) for the operator and services. */
import { pino } from "pino";
import type { Logger } from "pino";

export type { Logger };

export function createLogger(component: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ name: component, level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime });
}
