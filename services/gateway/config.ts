/**
 * Gateway configuration: named defaults, parsing from the environment, and
 * validation at construction, so a misconfigured gateway refuses to start
 * with a message naming the variable instead of failing on the first request.
 */
import { parseDuration } from "../events/retry.ts";

/** Defaults, each overridable through the environment variable named beside it. */
export const GATEWAY_DEFAULTS = {
  /** `PORT` */
  port: 8080,
  /** `HOST` */
  host: "0.0.0.0",
  /** `EVENTLOOM_GATEWAY_BODY_LIMIT` (bytes): larger requests get 413. */
  bodyLimitBytes: 1024 * 1024,
  /** `EVENTLOOM_GATEWAY_RATE_LIMIT`: requests per token (or per client IP without auth) per window. */
  rateLimitMax: 100,
  /** `EVENTLOOM_GATEWAY_RATE_LIMIT_WINDOW` */
  rateLimitWindowMs: 1000,
  /** `EVENTLOOM_GATEWAY_IDEMPOTENCY_WINDOW`: how long a (source, id) answer is remembered. */
  idempotencyWindowMs: 10 * 60_000,
  /** `EVENTLOOM_GATEWAY_IDEMPOTENCY_MAX_ENTRIES`: memory bound of the idempotency cache. */
  idempotencyMaxEntries: 100_000,
  /** `EVENTLOOM_GATEWAY_PRODUCE_TIMEOUT`: longest wait for Kafka's acknowledgement before answering 503. */
  produceTimeoutMs: 10_000,
  /** `EVENTLOOM_GATEWAY_RETRY_AFTER` (seconds): `Retry-After` sent with 503. */
  retryAfterSeconds: 5,
  /** `EVENTLOOM_GATEWAY_DLQ_MAX_RECORDS`: dead-letter records kept in memory per topic. */
  deadLetterMaxRecords: 10_000,
  /** `EVENTLOOM_GATEWAY_DLQ_CATCH_UP_TIMEOUT`: longest wait for the dead-letter index to reach the topic's end. */
  deadLetterCatchUpTimeoutMs: 10_000,
  /** `EVENTLOOM_GATEWAY_DLQ_IDLE`: a topic's dead-letter index is dropped after this long without requests. */
  deadLetterIdleMs: 10 * 60_000,
  /** `EVENTLOOM_TOPIC_PREFIX` */
  topicPrefix: "eventloom",
} as const;

export type AuthMode = "token" | "none";

export interface GatewayConfig {
  port: number;
  host: string;
  /** `token` (default): bearer tokens from `tokensFile`. `none`: no authentication (local demos only). */
  auth: AuthMode;
  /** File mounted from a Kubernetes Secret; see docs/gateway.md for its format. */
  tokensFile: string | undefined;
  bodyLimitBytes: number;
  rateLimitMax: number;
  rateLimitWindowMs: number;
  idempotencyWindowMs: number;
  idempotencyMaxEntries: number;
  produceTimeoutMs: number;
  retryAfterSeconds: number;
  deadLetterMaxRecords: number;
  deadLetterCatchUpTimeoutMs: number;
  deadLetterIdleMs: number;
  topicPrefix: string;
  /** Watch Orchestrations in this namespace only (`EVENTLOOM_NAMESPACE`); default all namespaces. */
  namespace: string | undefined;
}

/** A configuration value that cannot be used; the message names the variable and what it accepts. */
export class GatewayConfigError extends Error {
  override readonly name = "GatewayConfigError";
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    throw new GatewayConfigError(`${name}="${raw}" is not a whole number of at least 1`);
  }
  return Number(raw);
}

function duration(env: NodeJS.ProcessEnv, name: string, fallbackMs: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallbackMs;
  try {
    const ms = parseDuration(raw, name);
    if (ms < 1) throw new Error("must be longer than 0");
    return ms;
  } catch (err) {
    throw new GatewayConfigError(
      `${name}="${raw}" is not a duration such as 500ms, 10s or 10m: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Reads the gateway's configuration from the environment (see {@link GATEWAY_DEFAULTS} for the names). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const authRaw = (env.EVENTLOOM_GATEWAY_AUTH ?? "token").trim().toLowerCase();
  if (authRaw !== "token" && authRaw !== "none") {
    throw new GatewayConfigError(
      `EVENTLOOM_GATEWAY_AUTH="${env.EVENTLOOM_GATEWAY_AUTH}" is not "token" (the default) or "none"`,
    );
  }
  const tokensFile = env.EVENTLOOM_GATEWAY_TOKENS_FILE?.trim() || undefined;
  if (authRaw === "token" && tokensFile === undefined) {
    throw new GatewayConfigError(
      "EVENTLOOM_GATEWAY_TOKENS_FILE is not set: mount the gateway's token Secret and point this variable at its file " +
        "(see docs/gateway.md), or set EVENTLOOM_GATEWAY_AUTH=none for a local demo without authentication",
    );
  }
  const prefix = env.EVENTLOOM_TOPIC_PREFIX?.trim() || GATEWAY_DEFAULTS.topicPrefix;
  return {
    port: env.PORT?.trim() ? positiveInteger(env, "PORT", GATEWAY_DEFAULTS.port) : GATEWAY_DEFAULTS.port,
    host: env.HOST?.trim() || GATEWAY_DEFAULTS.host,
    auth: authRaw,
    tokensFile,
    bodyLimitBytes: positiveInteger(env, "EVENTLOOM_GATEWAY_BODY_LIMIT", GATEWAY_DEFAULTS.bodyLimitBytes),
    rateLimitMax: positiveInteger(env, "EVENTLOOM_GATEWAY_RATE_LIMIT", GATEWAY_DEFAULTS.rateLimitMax),
    rateLimitWindowMs: duration(
      env,
      "EVENTLOOM_GATEWAY_RATE_LIMIT_WINDOW",
      GATEWAY_DEFAULTS.rateLimitWindowMs,
    ),
    idempotencyWindowMs: duration(
      env,
      "EVENTLOOM_GATEWAY_IDEMPOTENCY_WINDOW",
      GATEWAY_DEFAULTS.idempotencyWindowMs,
    ),
    idempotencyMaxEntries: positiveInteger(
      env,
      "EVENTLOOM_GATEWAY_IDEMPOTENCY_MAX_ENTRIES",
      GATEWAY_DEFAULTS.idempotencyMaxEntries,
    ),
    produceTimeoutMs: duration(env, "EVENTLOOM_GATEWAY_PRODUCE_TIMEOUT", GATEWAY_DEFAULTS.produceTimeoutMs),
    retryAfterSeconds: positiveInteger(
      env,
      "EVENTLOOM_GATEWAY_RETRY_AFTER",
      GATEWAY_DEFAULTS.retryAfterSeconds,
    ),
    deadLetterMaxRecords: positiveInteger(
      env,
      "EVENTLOOM_GATEWAY_DLQ_MAX_RECORDS",
      GATEWAY_DEFAULTS.deadLetterMaxRecords,
    ),
    deadLetterCatchUpTimeoutMs: duration(
      env,
      "EVENTLOOM_GATEWAY_DLQ_CATCH_UP_TIMEOUT",
      GATEWAY_DEFAULTS.deadLetterCatchUpTimeoutMs,
    ),
    deadLetterIdleMs: duration(env, "EVENTLOOM_GATEWAY_DLQ_IDLE", GATEWAY_DEFAULTS.deadLetterIdleMs),
    topicPrefix: prefix,
    namespace: env.EVENTLOOM_NAMESPACE?.trim() || undefined,
  };
}
