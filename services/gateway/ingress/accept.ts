/**
 * Accepting one ingress event: read it (HTTP binding), find its Orchestration, route it, check its data
 * against the inputSchema, answer a retry from the idempotency window, and otherwise sign and write it,
 * answering only once Kafka acknowledged every copy with acks=all. Every refusal is a ProblemError.
 */
import { trace } from "@opentelemetry/api";
import type { Context } from "@opentelemetry/api";
import { DEFAULT_SIGNING_POLICY } from "../../../operator/crds/types.ts";
import { encodeRecord } from "../../events/binding.ts";
import { CloudEventError } from "../../events/cloudevent.ts";
import type { CloudEvent } from "../../events/cloudevent.ts";
import { KafkaUnavailableError } from "../../kafka/client.ts";
import type { SentRecordMetadata } from "../../kafka/client.ts";
import type { OrchestrationEntry } from "../../runtime/registry.ts";
import { injectTraceContext, withProducerSpan } from "../../tracing/index.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { GatewayKafka, OrchestrationDirectory } from "../ports.ts";
import { ProblemError } from "../problem.ts";
import { readHttpEvent, UnsupportedContentModeError } from "./http-binding.ts";
import type { HttpContentMode, HttpRequestParts } from "./http-binding.ts";
import type { IdempotencyCache } from "./idempotency.ts";
import { checkReservedExtensions, fingerprintOf, forDestination, ingressEvent } from "./ingress-event.ts";
import type { InputSchemas } from "./input-schema.ts";
import { routeFor } from "./routing.ts";

/** The 202 answer: what was written, and where. */
export interface Accepted {
  /** The written event's id (derived from the client's source and id; stable across retries). */
  id: string;
  /** The written event's source: the Orchestration's, `/eventloom/<ns>/<o>`. */
  source: string;
  type: string;
  specversion: string;
  /** The run the event belongs to (also its partitionkey). */
  runid: string;
  /** `<namespace>/<name>`. */
  orchestration: string;
  originsource: string;
  originid: string;
  /** Whether the event was signed (false under signing policy `none`). */
  signed: boolean;
  records: Array<{ topic: string; partition: number; offset: string }>;
}

export interface AcceptDeps {
  kafka: GatewayKafka;
  orchestrations: OrchestrationDirectory;
  schemas: InputSchemas;
  idempotency: IdempotencyCache<Accepted>;
  metrics: GatewayMetrics;
  topicPrefix: string;
  produceTimeoutMs: number;
  retryAfterSeconds: number;
}

export interface AcceptRequest extends HttpRequestParts {
  namespace: string;
  name: string;
  /** Trace context of the HTTP request (its `traceparent`), parent of the producer spans. */
  trace: Context;
}

export interface AcceptResult {
  answer: Accepted;
  mode: HttpContentMode;
  /** True when answered from the idempotency window (nothing written). */
  replayed: boolean;
}

export async function acceptEvent(deps: AcceptDeps, req: AcceptRequest): Promise<AcceptResult> {
  if (!deps.orchestrations.synced()) {
    throw new ProblemError(
      "not-ready",
      "The gateway has not loaded the Orchestrations from the Kubernetes API yet; retry shortly.",
      {
        retryAfterSeconds: deps.retryAfterSeconds,
      },
    );
  }
  let entry = deps.orchestrations.get(req.namespace, req.name);
  if (entry === undefined) {
    throw new ProblemError(
      "orchestration-not-found",
      `There is no Orchestration ${req.name} in namespace ${req.namespace}; check the name with "kubectl get orchestrations -n ${req.namespace}".`,
    );
  }
  const { event: client, mode } = readEvent(req);
  checkReservedExtensions(client);
  let event: CloudEvent;
  try {
    event = ingressEvent(client, { namespace: req.namespace, name: req.name });
  } catch (err) {
    throw asProblem(err);
  }
  const route = routeFor(entry.orchestration, client.type, { prefix: deps.topicPrefix });
  const schema = entry.orchestration.spec.inputSchema;
  if (route.checksInput && schema !== undefined)
    deps.schemas.check(entry.key, entry.generation, schema, client);

  const key = `${entry.key}\0${client.source}\0${client.id}`;
  const fingerprint = fingerprintOf(client);
  const earlier = fromWindow(deps, key, fingerprint, client);
  if (earlier !== undefined) return { answer: await earlier, mode, replayed: true };

  if (!deps.kafka.ready()) {
    throw new ProblemError(
      "kafka-unavailable",
      `Nothing was written: ${deps.kafka.readinessDetail()}. Retry later.`,
      {
        retryAfterSeconds: deps.retryAfterSeconds,
      },
    );
  }
  entry = await withSigner(deps, entry);
  // A duplicate may have started its write while this request waited for the key: look again, with no
  // await between this lookup and track(), so only one of them writes.
  const concurrent = fromWindow(deps, key, fingerprint, client);
  if (concurrent !== undefined) return { answer: await concurrent, mode, replayed: true };
  const write = publish(
    deps,
    entry,
    event,
    route.targets.map((t) => t.topic),
    req.trace,
  );
  deps.idempotency.track(key, fingerprint, write);
  return { answer: await deadline(deps, write), mode, replayed: false };
}

/** The answer of an earlier request for the same event (settled or in flight), or undefined. */
function fromWindow(
  deps: AcceptDeps,
  key: string,
  fingerprint: string,
  client: CloudEvent,
): Promise<Accepted> | undefined {
  const seen = deps.idempotency.lookup(key, fingerprint);
  switch (seen.kind) {
    case "miss":
      return undefined;
    case "hit":
      return Promise.resolve(seen.answer);
    case "in-flight":
      return deadline(deps, seen.promise);
    case "conflict":
      throw new ProblemError(
        "idempotency-conflict",
        `An event with source "${client.source}" and id "${client.id}" but different content was accepted recently; CloudEvents ids must be unique per source, so give this event a new id.`,
      );
  }
}

function readEvent(req: HttpRequestParts): { event: CloudEvent; mode: HttpContentMode } {
  try {
    return readHttpEvent(req);
  } catch (err) {
    throw asProblem(err);
  }
}

/** The problem a CloudEvents error means for the client. */
export function asProblem(err: unknown): unknown {
  if (err instanceof UnsupportedContentModeError)
    return new ProblemError("unsupported-media-type", err.message);
  if (!(err instanceof CloudEventError)) return err;
  const extensions = err.attribute === undefined ? {} : { attribute: err.attribute };
  const detail = `${err.message.charAt(0).toUpperCase()}${err.message.slice(1)}.`;
  switch (err.code) {
    case "unsupported-specversion":
      return new ProblemError("unsupported-specversion", detail, { extensions });
    case "invalid-json":
      return new ProblemError("invalid-json", detail, { extensions });
    default:
      return new ProblemError("invalid-cloudevent", detail, {
        extensions: { ...extensions, reason: err.code },
      });
  }
}

/** The entry with its signer, reloading the key once when policy `required` finds none. */
async function withSigner(deps: AcceptDeps, entry: OrchestrationEntry): Promise<OrchestrationEntry> {
  const policy = entry.orchestration.spec.signing?.policy ?? DEFAULT_SIGNING_POLICY;
  if (policy === "none" || entry.signer !== undefined) return entry;
  const reloaded = await deps.orchestrations.reload(entry.namespace, entry.name).catch(() => undefined);
  if (reloaded?.signer !== undefined) return reloaded;
  throw new ProblemError(
    "signing-key-unavailable",
    `Orchestration ${entry.key} requires signed events, and its signing key (Secret ${entry.name}-orchestration-signing-key) is not there yet; the operator creates it. Nothing was written; retry shortly.`,
    { retryAfterSeconds: deps.retryAfterSeconds },
  );
}

async function publish(
  deps: AcceptDeps,
  entry: OrchestrationEntry,
  event: CloudEvent,
  topics: string[],
  parent: Context,
): Promise<Accepted> {
  const policy = entry.orchestration.spec.signing?.policy ?? DEFAULT_SIGNING_POLICY;
  const signer = policy === "none" ? undefined : entry.signer;
  const written = await Promise.all(
    topics.map(async (topic) => {
      const bound = forDestination(event, topic);
      const message = encodeRecord(signer ? signer.sign(bound) : bound);
      const started = performance.now();
      try {
        const sent = await withProducerSpan(
          topic,
          bound,
          // The span's context is passed explicitly: without a tracing SDK there is no active context,
          // and the client's trace must still reach the record.
          (span) =>
            deps.kafka.send(topic, [
              {
                key: message.key,
                value: message.value,
                headers: injectTraceContext({ ...message.headers }, trace.setSpan(parent, span)),
              },
            ]),
          { parent },
        );
        deps.metrics.produceDuration.observe(
          { outcome: "acknowledged" },
          (performance.now() - started) / 1000,
        );
        return firstOf(sent, topic);
      } catch (err) {
        deps.metrics.produceDuration.observe({ outcome: "failed" }, (performance.now() - started) / 1000);
        throw writeProblem(err, topic, deps.retryAfterSeconds);
      }
    }),
  );
  return {
    id: event.id,
    source: event.source,
    type: event.type,
    specversion: event.specversion,
    runid: event.extensions.runid ?? "",
    orchestration: entry.key,
    originsource: event.extensions.originsource ?? "",
    originid: event.extensions.originid ?? "",
    signed: signer !== undefined,
    records: written,
  };
}

function firstOf(
  sent: SentRecordMetadata[],
  topic: string,
): { topic: string; partition: number; offset: string } {
  const first = sent[0];
  if (first === undefined) throw new Error(`Kafka acknowledged no record on ${topic}`);
  return { topic: first.topic, partition: first.partition, offset: first.offset };
}

/** Why a write failed, as the problem the client gets. Nothing was acknowledged, so never a 202. */
function writeProblem(err: unknown, topic: string, retryAfterSeconds: number): ProblemError {
  const message = (err as Error).message ?? String(err);
  if (/larger than the max message size|MESSAGE_TOO_LARGE|message.*too large/i.test(message)) {
    return new ProblemError(
      "payload-too-large",
      `Kafka refused the event on ${topic} as too large: ${message}`,
      { cause: err },
    );
  }
  const missing = /does not host this topic-partition|UNKNOWN_TOPIC/i.test(message);
  return new ProblemError(
    "kafka-unavailable",
    missing
      ? `Topic ${topic} does not exist (yet): the operator creates it once the Orchestration is reconciled. Nothing was written; retry later.`
      : `Kafka did not acknowledge the write to ${topic}${err instanceof KafkaUnavailableError ? "" : " (refused)"}: ${message}. Nothing was written (or, if it was, a retry with the same ce-id is deduplicated); retry later.`,
    { retryAfterSeconds, cause: err },
  );
}

/** Waits for a write, answering 503 when Kafka takes longer than the produce timeout. */
async function deadline<T>(deps: AcceptDeps, write: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ProblemError(
            "kafka-unavailable",
            `Kafka did not acknowledge the write within ${deps.produceTimeoutMs} ms. It may still complete: retry with the same ce-id and source, which is answered from the first write instead of writing twice.`,
            { retryAfterSeconds: deps.retryAfterSeconds },
          ),
        ),
      deps.produceTimeoutMs,
    );
  });
  try {
    return await Promise.race([write, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
