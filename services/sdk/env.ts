/**
 * The environment the operator gives a worker pod (operator/builders/deployment.ts, docs/topics.md),
 * parsed and checked once at start so a misconfigured pod fails with the variable's name.
 */
import type { SigningPolicy } from "../events/signing.ts";
import { WorkerConfigError } from "./errors.ts";

/** Everything a worker reads from its environment. */
export interface WorkerEnv {
  readonly brokers: readonly string[];
  readonly namespace: string;
  readonly orchestration: string;
  readonly worker: string;
  /** Bound steps, in the Orchestration's order. */
  readonly steps: readonly string[];
  /** Step topic → step name (same order as `steps`). */
  readonly topicSteps: ReadonlyMap<string, string>;
  /** Choreographed Workers only: the event types it subscribes to. */
  readonly subscribes: readonly string[];
  readonly consumerGroup: string;
  /** Step → its retry tiers in order (the topic of the 1st retry, the 2nd, ...). */
  readonly retryTopics: ReadonlyMap<string, readonly RetryTier[]>;
  /** Absent when the Orchestration disabled dead-lettering. */
  readonly deadLetterTopic: string | undefined;
  readonly resultsTopic: string;
  readonly concurrency: number;
  readonly signingPolicy: SigningPolicy;
  /** The mounted private JWK; absent under signing policy `none`. */
  readonly signingKeyPath: string | undefined;
  /** The mounted trust document; absent under signing policy `none`. */
  readonly trustPath: string | undefined;
}

/** One retry tier: its topic and the delay its name encodes. */
export interface RetryTier {
  readonly topic: string;
  readonly delayMs: number;
}

const RETRY_SUFFIX = /-retry-([0-9]+)$/;

/** The delay a retry topic's name encodes (`<base>-retry-<ms>`), or undefined when it is not one. */
export function retryDelayOfTopic(topic: string): number | undefined {
  const m = RETRY_SUFFIX.exec(topic);
  if (!m?.[1]) return undefined;
  const ms = Number(m[1]);
  return Number.isSafeInteger(ms) && ms >= 1 ? ms : undefined;
}

function required(env: NodeJS.ProcessEnv, name: string, hint: string): string {
  const value = env[name]?.trim();
  if (!value) throw new WorkerConfigError(`${name} is not set: ${hint}`);
  return value;
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

const FROM_OPERATOR =
  "the operator sets it on every worker pod (see docs/topics.md); set it by hand when running a worker outside Kubernetes";

/**
 * Reads and checks the worker's environment.
 * @throws WorkerConfigError naming the first variable that is missing or malformed.
 */
export function parseWorkerEnv(env: NodeJS.ProcessEnv): WorkerEnv {
  const brokers = list(required(env, "KAFKA_BROKERS", "give the bootstrap brokers, e.g. 127.0.0.1:19092"));
  const namespace = required(env, "EVENTLOOM_NAMESPACE", FROM_OPERATOR);
  const orchestration = required(env, "EVENTLOOM_ORCHESTRATION", FROM_OPERATOR);
  const worker = required(env, "EVENTLOOM_WORKER", FROM_OPERATOR);
  const steps = list(required(env, "EVENTLOOM_STEPS", FROM_OPERATOR));
  const topics = list(required(env, "EVENTLOOM_TOPICS", FROM_OPERATOR));
  if (steps.length !== topics.length) {
    throw new WorkerConfigError(
      `EVENTLOOM_STEPS lists ${steps.length} step(s) but EVENTLOOM_TOPICS lists ${topics.length} topic(s); they must pair up in order`,
    );
  }
  if (new Set(steps).size !== steps.length)
    throw new WorkerConfigError(`EVENTLOOM_STEPS repeats a step: ${steps.join(",")}`);
  if (new Set(topics).size !== topics.length)
    throw new WorkerConfigError(`EVENTLOOM_TOPICS repeats a topic: ${topics.join(",")}`);
  const topicSteps = new Map(topics.map((topic, i) => [topic, steps[i] as string]));

  const retryTopics = new Map<string, RetryTier[]>();
  const rawRetry = env.EVENTLOOM_RETRY_TOPICS?.trim();
  if (rawRetry) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawRetry);
    } catch (err) {
      throw new WorkerConfigError(`EVENTLOOM_RETRY_TOPICS is not JSON: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new WorkerConfigError(
        'EVENTLOOM_RETRY_TOPICS must be a JSON object of step → retry topics, e.g. {"charge":["…-retry-1000"]}',
      );
    }
    for (const [step, value] of Object.entries(parsed)) {
      if (!steps.includes(step)) {
        throw new WorkerConfigError(
          `EVENTLOOM_RETRY_TOPICS names step "${step}", which is not in EVENTLOOM_STEPS (${steps.join(",")})`,
        );
      }
      if (!Array.isArray(value) || !value.every((t) => typeof t === "string")) {
        throw new WorkerConfigError(`EVENTLOOM_RETRY_TOPICS["${step}"] must be a list of topic names`);
      }
      retryTopics.set(
        step,
        value.map((topic: string) => {
          const delayMs = retryDelayOfTopic(topic);
          if (delayMs === undefined) {
            throw new WorkerConfigError(
              `EVENTLOOM_RETRY_TOPICS["${step}"] lists "${topic}", which is not a retry topic (<base>-retry-<ms>)`,
            );
          }
          return { topic, delayMs };
        }),
      );
    }
  }
  for (const step of steps) if (!retryTopics.has(step)) retryTopics.set(step, []);

  const rawConcurrency = env.EVENTLOOM_CONCURRENCY?.trim() || "1";
  const concurrency = Number(rawConcurrency);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
    throw new WorkerConfigError(
      `EVENTLOOM_CONCURRENCY is "${rawConcurrency}"; use a whole number from 1 to 1000`,
    );
  }

  const rawPolicy = env.EVENTLOOM_SIGNING_POLICY?.trim() || "required";
  if (rawPolicy !== "required" && rawPolicy !== "none") {
    throw new WorkerConfigError(`EVENTLOOM_SIGNING_POLICY is "${rawPolicy}"; use "required" or "none"`);
  }
  const signingKeyPath = env.EVENTLOOM_SIGNING_KEY_PATH?.trim() || undefined;
  const trustPath = env.EVENTLOOM_TRUST_PATH?.trim() || undefined;
  if (rawPolicy === "required") {
    if (!signingKeyPath) {
      throw new WorkerConfigError(
        "EVENTLOOM_SIGNING_KEY_PATH is not set but EVENTLOOM_SIGNING_POLICY is required: mount the Worker's signing-key Secret and point it at private.jwk",
      );
    }
    if (!trustPath) {
      throw new WorkerConfigError(
        "EVENTLOOM_TRUST_PATH is not set but EVENTLOOM_SIGNING_POLICY is required: mount the Orchestration's trust ConfigMap and point it at trust.json",
      );
    }
  }

  return {
    brokers,
    namespace,
    orchestration,
    worker,
    steps,
    topicSteps,
    subscribes: list(env.EVENTLOOM_SUBSCRIBES),
    consumerGroup: required(env, "EVENTLOOM_CONSUMER_GROUP", FROM_OPERATOR),
    retryTopics,
    deadLetterTopic: env.EVENTLOOM_DLT_TOPIC?.trim() || undefined,
    resultsTopic: required(env, "EVENTLOOM_RESULTS_TOPIC", FROM_OPERATOR),
    concurrency,
    signingPolicy: rawPolicy,
    signingKeyPath,
    trustPath,
  };
}

/** Every topic the worker consumes: its step topics, then their distinct retry tiers. */
export function consumedTopics(env: WorkerEnv): string[] {
  const retry = new Set<string>();
  for (const tiers of env.retryTopics.values()) for (const tier of tiers) retry.add(tier.topic);
  return [...env.topicSteps.keys(), ...[...retry].sort()];
}
