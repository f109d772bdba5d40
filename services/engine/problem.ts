/**
 * RFC 9457 problem details for the run API, in the gateway's shape and with
 * its `urn:eventloom:problem:` type URNs, so clients parse one error format
 * whichever process serves the route.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import {
  PROBLEM_CONTENT_TYPE,
  problemFrom,
  problemSchemaBody,
  validationEntries,
  type Problem,
} from "../http/problem.ts";

export { PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, type Problem } from "../http/problem.ts";

export const RUN_PROBLEMS = {
  "bad-request": { status: 400, title: "Bad request" },
  "orchestration-not-found": { status: 404, title: "Orchestration not found" },
  "run-not-found": { status: 404, title: "Run not found" },
  "not-orchestrated": { status: 409, title: "Orchestration is choreographed" },
  "run-state-conflict": { status: 409, title: "Run is not in a state that allows this" },
  "schema-violation": { status: 422, title: "Input does not match the Orchestration's inputSchema" },
  "idempotency-key-reused": { status: 422, title: "Idempotency-Key reused with a different input" },
  internal: { status: 500, title: "Internal error" },
  "invalid-input-schema": { status: 500, title: "The Orchestration's inputSchema cannot be compiled" },
  "kafka-unavailable": { status: 503, title: "Kafka is unavailable" },
  "not-ready": { status: 503, title: "Run view not ready" },
} as const satisfies Record<string, { status: number; title: string }>;

export type RunProblemKind = keyof typeof RUN_PROBLEMS;

/** Inline (no `$id`, so it can live next to the gateway's own) problem schema for response schemas. */
export const problemResponseSchema = {
  ...problemSchemaBody,
  properties: { ...problemSchemaBody.properties, runId: { type: "string" }, state: { type: "string" } },
} as const;

export function problemResponses(...statuses: number[]): Record<number, typeof problemResponseSchema> {
  return Object.fromEntries(statuses.map((s) => [s, problemResponseSchema]));
}

export function problemOf(
  kind: RunProblemKind,
  detail: string,
  instance: string,
  extensions: Record<string, unknown> = {},
): Problem {
  return problemFrom(RUN_PROBLEMS, kind, detail, instance, extensions);
}

export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  kind: RunProblemKind,
  detail: string,
  extensions: Record<string, unknown> = {},
  retryAfterSeconds?: number,
): FastifyReply {
  if (retryAfterSeconds !== undefined) void reply.header("retry-after", String(retryAfterSeconds));
  const problem = problemOf(kind, detail, request.url, extensions);
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

/** Error handler of the run API's scope: request validation → 400, anything unexpected → 500 (logged, not leaked). */
export function runApiErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const errors = validationEntries(error);
  if (errors !== undefined) {
    return sendProblem(reply, request, "bad-request", `The request is invalid: ${error.message}.`, {
      errors,
    });
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return reply
      .code(status)
      .type(PROBLEM_CONTENT_TYPE)
      .send({ ...problemOf("bad-request", error.message, request.url), status });
  }
  request.log.error({ err: error }, "run API request failed");
  return sendProblem(
    reply,
    request,
    "internal",
    "The run API failed to handle this request; the error is in its log. Retry later.",
  );
}
