/**
 * CloudEvents ingress:
 *
 * - `POST /namespaces/:namespace/orchestrations/:name/events`: the Orchestration is in the path.
 * - `POST /events` with header `Eventloom-Orchestration: <namespace>/<name>`: for producers that post
 *   every event to one URL (webhook-style senders).
 *
 * The body is raw bytes (any media type): the binding code checks it, not a body schema, because the
 * signature must cover the data exactly as sent.
 */
import { Ajv } from "ajv";
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler } from "fastify";
import { extractTraceContext } from "../../tracing/index.ts";
import { acceptEvent } from "../ingress/accept.ts";
import { ORCHESTRATION_HEADER, targetOf } from "../plugins/auth.ts";
import { problemResponses, ProblemError } from "../problem.ts";
import {
  acceptedSchema,
  eventBody,
  eventHeaders,
  orchestrationParams,
  routedEventHeaders,
} from "../schemas.ts";

/** Replies carry this header when answered from the idempotency window (nothing written). */
export const IDEMPOTENT_REPLAYED_HEADER = "idempotent-replayed";

// Params and headers are validated like fastify's default; the body is bytes, checked by the binding.
const parts = new Ajv({
  coerceTypes: "array",
  useDefaults: true,
  removeAdditional: true,
  allErrors: false,
  strict: false,
});
const skipBody: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  httpPart === "body" ? () => true : parts.compile(schema as object);

const ERRORS = problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503);

export async function eventRoutes(api: FastifyInstance): Promise<void> {
  // Every media type arrives as a Buffer, untouched (structured mode is parsed by the event module).
  api.removeAllContentTypeParsers();
  api.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  api.post(
    "/namespaces/:namespace/orchestrations/:name/events",
    {
      validatorCompiler: skipBody,
      schema: {
        summary: "Send a CloudEvent to an Orchestration",
        description:
          "Binary mode (ce-* headers, the body is the data) or structured mode (Content-Type: application/cloudevents+json). " +
          "Answered 202 only after Kafka acknowledged the write with acks=all. A retry with the same ce-id and ce-source is idempotent.",
        tags: ["events"],
        params: orchestrationParams,
        headers: eventHeaders,
        body: eventBody,
        response: { 202: acceptedSchema, ...ERRORS },
      },
    },
    async (request, reply) => accept(api, request, reply),
  );

  api.post(
    "/events",
    {
      validatorCompiler: skipBody,
      schema: {
        summary: "Send a CloudEvent, naming the Orchestration in a header",
        description: `Same as POST /namespaces/{namespace}/orchestrations/{name}/events, with the Orchestration in the ${ORCHESTRATION_HEADER} header.`,
        tags: ["events"],
        headers: routedEventHeaders,
        body: eventBody,
        response: { 202: acceptedSchema, ...ERRORS },
      },
    },
    async (request, reply) => accept(api, request, reply),
  );
}

async function accept(
  api: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const target = targetOf(request);
  if (target === undefined) {
    throw new ProblemError(
      "bad-request",
      `Name the Orchestration in the ${ORCHESTRATION_HEADER} header as <namespace>/<name>.`,
    );
  }
  const { metrics } = api.gateway;
  try {
    const result = await acceptEvent(
      {
        kafka: api.gateway.kafka,
        orchestrations: api.gateway.orchestrations,
        schemas: api.gateway.schemas,
        idempotency: api.gateway.idempotency,
        metrics,
        topicPrefix: api.gateway.config.topicPrefix,
        produceTimeoutMs: api.gateway.config.produceTimeoutMs,
        retryAfterSeconds: api.gateway.config.retryAfterSeconds,
      },
      {
        ...target,
        headers: request.headers,
        rawHeaders: request.raw.rawHeaders,
        body: Buffer.isBuffer(request.body) ? request.body : undefined,
        trace: extractTraceContext(request.headers),
      },
    );
    metrics.events.inc({ outcome: result.replayed ? "duplicate" : "accepted" });
    request.log.info(
      {
        orchestration: result.answer.orchestration,
        eventId: result.answer.id,
        runId: result.answer.runid,
        mode: result.mode,
        replayed: result.replayed,
      },
      result.replayed ? "event answered from the idempotency window" : "event accepted",
    );
    if (result.replayed) void reply.header(IDEMPOTENT_REPLAYED_HEADER, "true");
    return reply.code(202).send(result.answer);
  } catch (err) {
    metrics.events.inc({ outcome: err instanceof ProblemError && err.status < 500 ? "refused" : "failed" });
    throw err;
  }
}
