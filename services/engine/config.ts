/**
 * The engine's configuration, from the environment, checked at start so a
 * mistake stops the process with a message saying what to fix.
 */
import { brokersFromEnv } from "../kafka/client.ts";
import { DEFAULT_TOPIC_PREFIX } from "../events/topics.ts";
import { parseDuration } from "../events/retry.ts";

export interface EngineConfig {
  /** `KAFKA_BROKERS`, comma-separated. */
  brokers: string[];
  /** `ENGINE_PORT` (default 8081): run API, /healthz, /readyz, /metrics. */
  port: number;
  /** `ENGINE_HOST` (default 0.0.0.0). */
  host: string;
  /** `EVENTLOOM_TOPIC_PREFIX` (default eventloom). */
  topicPrefix: string;
  /** `EVENTLOOM_NAMESPACE`: watch Orchestrations in this namespace only; default all. */
  namespace: string | undefined;
  /** `ENGINE_PARTITIONS` (default 6): partitions of the inbox and state topics when the engine creates them. */
  partitions: number;
  /** `ENGINE_REPLICATION_FACTOR`: of the engine topics when created; default the broker's. */
  replicationFactor: number | undefined;
  /** `ENGINE_SESSION_TIMEOUT` (default 10s): how fast a dead replica's partitions move to the others. */
  sessionTimeoutMs: number;
  /** `ENGINE_RUN_RETENTION` (default 168h; 0s = keep forever): finished runs are forgotten after this. */
  runRetentionMs: number;
  /** `ENGINE_RESTORE_GRACE` (default 2s): overdue timers found on restore wait this long for queued results. */
  restoreGraceMs: number;
  /**
   * `ENGINE_DIRECT_RESULTS` (default true): apply results of runs this replica owns as they are read,
   * without copying them through the inbox first.
   */
  directResults: boolean;
}

export const ENGINE_DEFAULTS = {
  port: 8081,
  host: "0.0.0.0",
  partitions: 6,
  sessionTimeout: "10s",
  runRetention: "168h",
  restoreGrace: "2s",
} as const;

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name}="${raw}" is not a whole number from ${min} to ${max}`);
  }
  return n;
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new Error(`${name}="${env[name]}" is not true or false`);
}

function duration(env: NodeJS.ProcessEnv, name: string, fallback: string): number {
  const raw = env[name]?.trim() || fallback;
  return parseDuration(raw, name);
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const prefix = env.EVENTLOOM_TOPIC_PREFIX?.trim() || DEFAULT_TOPIC_PREFIX;
  const rf = env.ENGINE_REPLICATION_FACTOR?.trim();
  return {
    brokers: brokersFromEnv(env),
    port: integer(env, "ENGINE_PORT", ENGINE_DEFAULTS.port, 0, 65535),
    host: env.ENGINE_HOST?.trim() || ENGINE_DEFAULTS.host,
    topicPrefix: prefix,
    namespace: env.EVENTLOOM_NAMESPACE?.trim() || undefined,
    partitions: integer(env, "ENGINE_PARTITIONS", ENGINE_DEFAULTS.partitions, 1, 1000),
    replicationFactor: rf ? integer(env, "ENGINE_REPLICATION_FACTOR", 1, 1, 32) : undefined,
    sessionTimeoutMs: duration(env, "ENGINE_SESSION_TIMEOUT", ENGINE_DEFAULTS.sessionTimeout),
    runRetentionMs: duration(env, "ENGINE_RUN_RETENTION", ENGINE_DEFAULTS.runRetention),
    restoreGraceMs: duration(env, "ENGINE_RESTORE_GRACE", ENGINE_DEFAULTS.restoreGrace),
    directResults: boolean(env, "ENGINE_DIRECT_RESULTS", true),
  };
}
