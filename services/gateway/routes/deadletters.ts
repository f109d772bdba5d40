/**
 * The dead-letter API of an Orchestration (seed 001's DLQ, on the Orchestration's shared `<base>-dlt`
 * topic): list and filter, show one, replay one to its original topic, purge.
 */
import { trace } from "@opentelemetry/api";
import type { FastifyInstance } from "fastify";
import { DEFAULT_DEAD_LETTER } from "../../../operator/crds/types.ts";
import { deadLetterTopic, resultsTopic, stepTopic } from "../../events/topics.ts";
import type { IncomingRecord } from "../../kafka/client.ts";
import type { OrchestrationEntry } from "../../runtime/registry.ts";
import { extractTraceContext, injectTraceContext, withProducerSpan } from "../../tracing/index.ts";
import { deadLetterOf, failedAt, replayCountOf, replayHeaders } from "../dlq/envelope.ts";
import type { DeadLetter } from "../dlq/envelope.ts";
import type { DeadLetterSnapshot } from "../ports.ts";
import { problemResponses, ProblemError } from "../problem.ts";
import {
  deadLetterListSchema,
  deadLetterParams,
  deadLetterQuery,
  deadLetterSchema,
  orchestrationParams,
  purgeSchema,
  replaySchema,
} from "../schemas.ts";

interface OrchestrationParams {
  namespace: string;
  name: string;
}
interface DeadLetterParams extends OrchestrationParams {
  id: string;
}
interface ListQuery {
  errorType?: string;
  topic?: string;
  since?: string;
  until?: string;
  limit: number;
}

const READ_ERRORS = problemResponses(400, 401, 403, 404, 429, 500, 503);

export async function deadLetterRoutes(api: FastifyInstance): Promise<void> {
  api.addSchema(deadLetterSchema);
  const { kafka, orchestrations, config } = api.gateway;

  /** The Orchestration and its dead-letter topic, or the problem that stops the request. */
  async function deadLetterTopicOf(
    params: OrchestrationParams,
  ): Promise<{ entry: OrchestrationEntry; topic: string }> {
    if (!orchestrations.synced()) {
      throw new ProblemError(
        "not-ready",
        "The gateway has not loaded the Orchestrations yet; retry shortly.",
        {
          retryAfterSeconds: config.retryAfterSeconds,
        },
      );
    }
    const entry = orchestrations.get(params.namespace, params.name);
    if (entry === undefined) {
      throw new ProblemError(
        "orchestration-not-found",
        `There is no Orchestration ${params.name} in namespace ${params.namespace}.`,
      );
    }
    if ((entry.orchestration.spec.deadLetter?.enabled ?? DEFAULT_DEAD_LETTER.enabled) === false) {
      throw new ProblemError(
        "dead-letters-disabled",
        `Orchestration ${entry.key} has deadLetter.enabled: false, so failed records are dropped, not dead-lettered.`,
      );
    }
    const topic = deadLetterTopic(
      { namespace: params.namespace, orchestration: params.name },
      { prefix: config.topicPrefix },
    );
    if (!kafka.ready()) {
      throw new ProblemError("kafka-unavailable", `${kafka.readinessDetail()}; retry later.`, {
        retryAfterSeconds: config.retryAfterSeconds,
      });
    }
    if (!(await kafkaCall(() => kafka.topicExists(topic)))) {
      throw new ProblemError(
        "dead-letter-topic-not-found",
        `The dead-letter topic ${topic} of Orchestration ${entry.key} does not exist (yet); the operator creates it when it reconciles the Orchestration.`,
      );
    }
    return { entry, topic };
  }

  async function kafkaCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new ProblemError(
        "kafka-unavailable",
        `Kafka did not answer: ${(err as Error).message}; retry later.`,
        {
          retryAfterSeconds: config.retryAfterSeconds,
          cause: err,
        },
      );
    }
  }

  async function find(
    params: DeadLetterParams,
  ): Promise<{ entry: OrchestrationEntry; record: IncomingRecord; snapshot: DeadLetterSnapshot }> {
    const { entry, topic } = await deadLetterTopicOf(params);
    const snapshot = await kafkaCall(() => kafka.readDeadLetters(topic));
    const record = snapshot.records.find((r) => `${r.partition}-${r.offset}` === params.id);
    if (record === undefined) {
      throw new ProblemError(
        "dead-letter-not-found",
        `Dead letter ${params.id} is not in ${topic}` +
          (snapshot.complete
            ? " (it may have been purged, expired, or never existed)."
            : "; the topic could not be read to its end in time, retry."),
      );
    }
    return { entry, record, snapshot };
  }

  api.get<{ Params: OrchestrationParams; Querystring: ListQuery }>(
    "/namespaces/:namespace/orchestrations/:name/deadletters",
    {
      schema: {
        summary: "List dead letters",
        description:
          "Reads the Orchestration's dead-letter topic from its log start to the end offsets captured when the request arrived; newest first.",
        tags: ["dead letters"],
        params: orchestrationParams,
        querystring: deadLetterQuery,
        response: { 200: deadLetterListSchema, ...READ_ERRORS },
      },
    },
    async (request) => {
      const { topic, entry } = await deadLetterTopicOf(request.params);
      const { errorType, topic: originalTopic, limit } = request.query;
      const since = timeParam("since", request.query.since);
      const until = timeParam("until", request.query.until);
      const snapshot = await kafkaCall(() => kafka.readDeadLetters(topic));
      const matching = snapshot.records
        .map(deadLetterOf)
        .filter(
          (l) =>
            (errorType === undefined || l.errorType === errorType) &&
            (originalTopic === undefined || l.originalTopic === originalTopic) &&
            (since === undefined || failedAt(l) >= since) &&
            (until === undefined || failedAt(l) < until),
        )
        .sort(newestFirst);
      return {
        orchestration: entry.key,
        topic,
        total: matching.length,
        complete: snapshot.complete,
        evicted: snapshot.evicted,
        partitions: snapshot.partitions.map((p) => ({
          partition: p.partition,
          logStart: p.logStart.toString(),
          logEnd: p.logEnd.toString(),
        })),
        messages: matching.slice(0, limit),
      };
    },
  );

  api.get<{ Params: DeadLetterParams }>(
    "/namespaces/:namespace/orchestrations/:name/deadletters/:id",
    {
      schema: {
        summary: "Show one dead letter",
        tags: ["dead letters"],
        params: deadLetterParams,
        response: { 200: { $ref: "DeadLetter#" }, ...READ_ERRORS },
      },
    },
    async (request) => deadLetterOf((await find(request.params)).record),
  );

  api.post<{ Params: DeadLetterParams }>(
    "/namespaces/:namespace/orchestrations/:name/deadletters/:id/replay",
    {
      schema: {
        summary: "Replay a dead letter to its original topic",
        description:
          "Writes the record's value and ce_* headers, byte for byte (its signature still verifies), back to its original topic with the replaycount extension raised by one. " +
          "Refused with 409 once replaycount reached the Orchestration's deadLetter.maxReplays.",
        tags: ["dead letters"],
        params: deadLetterParams,
        response: { 202: replaySchema, ...problemResponses(400, 401, 403, 404, 409, 422, 429, 500, 503) },
      },
    },
    async (request, reply) => {
      const { entry, record } = await find(request.params);
      const letter = deadLetterOf(record);
      const maxReplays = entry.orchestration.spec.deadLetter?.maxReplays ?? DEFAULT_DEAD_LETTER.maxReplays;
      const current = replayCountOf(record.headers);
      if (current >= maxReplays) {
        throw new ProblemError(
          "replay-limit-reached",
          `Dead letter ${letter.id} was already replayed ${current} time(s), the limit (deadLetter.maxReplays) of Orchestration ${entry.key}; ` +
            "fix the cause and send a new event instead, or raise maxReplays.",
          { extensions: { replayCount: current, maxReplays } },
        );
      }
      const target = letter.originalTopic;
      const allowed = replayTargets(entry, config.topicPrefix);
      if (target === undefined || !allowed.has(target)) {
        throw new ProblemError(
          "not-replayable",
          target === undefined
            ? `Dead letter ${letter.id} does not say which topic it came from (no eventloom-dlt-original-topic header), so it cannot be replayed.`
            : `Dead letter ${letter.id} names original topic ${target}, which is not a topic of Orchestration ${entry.key}; refusing to write there.`,
        );
      }
      const headers = replayHeaders(record, current + 1);
      const parent = extractTraceContext(record.headers);
      const sent = await withProducerSpan(
        target,
        undefined,
        async (span) => {
          try {
            // The replay continues the failed event's trace (one run, one trace).
            return await kafka.send(target, [
              {
                key: record.key,
                value: record.value,
                headers: injectTraceContext(headers, trace.setSpan(parent, span)),
              },
            ]);
          } catch (err) {
            throw new ProblemError(
              "kafka-unavailable",
              `Kafka did not acknowledge the replay to ${target}: ${(err as Error).message}; nothing was replayed, retry later.`,
              {
                retryAfterSeconds: config.retryAfterSeconds,
                cause: err,
              },
            );
          }
        },
        { parent },
      );
      const first = sent[0];
      request.log.info(
        { orchestration: entry.key, deadLetter: letter.id, topic: target, replayCount: current + 1 },
        "dead letter replayed",
      );
      return reply.code(202).send({
        id: letter.id,
        replayCount: current + 1,
        maxReplays,
        topic: target,
        partition: first?.partition ?? 0,
        offset: first?.offset ?? "",
      });
    },
  );

  api.delete<{ Params: OrchestrationParams }>(
    "/namespaces/:namespace/orchestrations/:name/deadletters",
    {
      schema: {
        summary: "Purge the dead-letter topic",
        description:
          "Deletes every record below the end offsets captured when the request arrived (Kafka DeleteRecords). Records dead-lettered after that stay. Irreversible.",
        tags: ["dead letters"],
        params: orchestrationParams,
        response: { 200: purgeSchema, ...READ_ERRORS },
      },
    },
    async (request) => {
      const { topic, entry } = await deadLetterTopicOf(request.params);
      const partitions = await kafkaCall(() => kafka.purge(topic));
      const purged = partitions.reduce((sum, p) => sum + Number(BigInt(p.to) - BigInt(p.from)), 0);
      request.log.warn(
        { orchestration: entry.key, topic, purged, principal: request.principal?.name },
        "dead letters purged",
      );
      return { topic, purged, partitions };
    },
  );
}

function newestFirst(a: DeadLetter, b: DeadLetter): number {
  return (
    failedAt(b) - failedAt(a) || b.partition - a.partition || Number(BigInt(b.offset) - BigInt(a.offset))
  );
}

function timeParam(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new ProblemError(
      "bad-request",
      `Query parameter ${name}="${value}" is not a time; use RFC 3339, e.g. 2026-01-30T12:00:00Z.`,
    );
  }
  return ms;
}

/** Topics a dead letter of `entry` may be replayed to: its step topics and its results topic. */
function replayTargets(entry: OrchestrationEntry, prefix: string): Set<string> {
  const ref = { namespace: entry.namespace, orchestration: entry.name };
  return new Set([
    ...entry.orchestration.spec.steps.map((s) => stepTopic(ref, s.name, { prefix })),
    resultsTopic(ref, { prefix }),
  ]);
}
