/**
 * Errors as RFC 9457 problem details (`application/problem+json`). Every error
 * the gateway answers with, its own or fastify's (validation, body limit,
 * media type, rate limit, unknown route), leaves through {@link problemErrorHandler}
 * and {@link problemNotFoundHandler}, so clients parse one shape.
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

/** The problem types the gateway uses, with their status and title. */
export const PROBLEMS = {
  "bad-request": { status: 400, title: "Bad request" },
  "invalid-cloudevent": { status: 400, title: "Not a valid CloudEvent" },
  "invalid-json": { status: 400, title: "Body is not valid JSON" },
  "unsupported-specversion": { status: 400, title: "Unsupported CloudEvents specversion" },
  "reserved-attribute": { status: 400, title: "Attribute reserved by Eventloom" },
  unauthorized: { status: 401, title: "Authentication required" },
  forbidden: { status: 403, title: "Not allowed" },
  "not-found": { status: 404, title: "Not found" },
  "orchestration-not-found": { status: 404, title: "Orchestration not found" },
  "dead-letter-not-found": { status: 404, title: "Dead letter not found" },
  "dead-letters-disabled": { status: 404, title: "Dead-letter topic disabled" },
  "dead-letter-topic-not-found": { status: 404, title: "Dead-letter topic does not exist" },
  "method-not-allowed": { status: 405, title: "Method not allowed" },
  "idempotency-conflict": { status: 409, title: "Event id reused for a different event" },
  "replay-limit-reached": { status: 409, title: "Replay limit reached" },
  "payload-too-large": { status: 413, title: "Request body too large" },
  "unsupported-media-type": { status: 415, title: "Unsupported media type" },
  "schema-violation": { status: 422, title: "Event data does not match the Orchestration's inputSchema" },
  "unroutable-event": { status: 422, title: "No step of the Orchestration takes this event type" },
  "not-replayable": { status: 422, title: "Dead letter cannot be replayed" },
  "rate-limited": { status: 429, title: "Too many requests" },
  internal: { status: 500, title: "Internal error" },
  "invalid-input-schema": { status: 500, title: "The Orchestration's inputSchema cannot be compiled" },
  "kafka-unavailable": { status: 503, title: "Kafka is unavailable" },
  "signing-key-unavailable": { status: 503, title: "Signing key not available yet" },
  "not-ready": { status: 503, title: "Gateway not ready" },
  "engine-unavailable": { status: 503, title: "The engine does not answer" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemKind = keyof typeof PROBLEMS;

/** Members beyond the five standard ones (RFC 9457 §3.2 extension members). */
export type ProblemExtensions = Record<string, unknown>;

/** An error the gateway answers with a problem document. Throw it from any handler or hook. */
export class ProblemError extends Error {
  override readonly name = "ProblemError";
  readonly kind: ProblemKind;
  readonly status: number;
  readonly extensions: ProblemExtensions;
  /** Seconds for `Retry-After` (429, 503). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    kind: ProblemKind,
    detail: string,
    opts: { extensions?: ProblemExtensions; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.status = PROBLEMS[kind].status;
    this.extensions = opts.extensions ?? {};
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

/** JSON Schema of a problem document, used as the response schema of every 4xx/5xx. */
export const problemSchema = { $id: "Problem", ...problemSchemaBody } as const;

/** Response schemas for the error statuses a route can answer with. */
export function problemResponses(...statuses: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(statuses.map((s) => [s, { $ref: "Problem#" }]));
}

export function problemOf(
  kind: ProblemKind,
  detail: string,
  instance: string,
  extensions: ProblemExtensions = {},
): Problem {
  return problemFrom(PROBLEMS, kind, detail, instance, extensions);
}

/** Path (and query) of the request: the `instance` of its problems. */
function instanceOf(request: FastifyRequest): string {
  return request.url;
}

export function sendProblem(reply: FastifyReply, problem: Problem, retryAfterSeconds?: number): FastifyReply {
  if (retryAfterSeconds !== undefined) void reply.header("retry-after", String(retryAfterSeconds));
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

// fastify's own error codes, mapped to the problem they mean.
const FASTIFY_CODES: Record<string, ProblemKind> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "payload-too-large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported-media-type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "bad-request",
  FST_ERR_CTP_EMPTY_JSON_BODY: "invalid-json",
  FST_ERR_CTP_INVALID_JSON_BODY: "invalid-json",
  FST_ERR_VALIDATION: "bad-request",
};

/**
 * Turns any thrown error into a problem response. ProblemErrors keep their
 * kind; fastify errors are mapped by code or status; anything else is a 500
 * whose detail does not leak internals (it is logged instead).
 */
export function problemErrorHandler(
  error: FastifyError | ProblemError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const instance = instanceOf(request);
  if (error instanceof ProblemError) {
    if (error.status >= 500) request.log.warn({ err: error, problem: error.kind }, error.message);
    return sendProblem(
      reply,
      problemOf(error.kind, error.message, instance, error.extensions),
      error.retryAfterSeconds,
    );
  }
  const fe = error as FastifyError;
  const errors = validationEntries(fe);
  if (errors !== undefined) {
    return sendProblem(
      reply,
      problemOf("bad-request", `The request is invalid: ${fe.message}.`, instance, { errors }),
    );
  }
  const mapped = fe.code !== undefined ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped !== undefined) {
    return sendProblem(reply, problemOf(mapped, detailFor(mapped, fe, request), instance));
  }
  const status = fe.statusCode ?? 500;
  if (status === 429) {
    const retryAfter = reply.getHeader("retry-after");
    return sendProblem(
      reply,
      problemOf("rate-limited", fe.message, instance),
      retryAfter === undefined ? undefined : Number(retryAfter),
    );
  }
  if (status >= 400 && status < 500) {
    const kind: ProblemKind =
      status === 404
        ? "not-found"
        : status === 413
          ? "payload-too-large"
          : status === 415
            ? "unsupported-media-type"
            : "bad-request";
    return sendProblem(reply, { ...problemOf(kind, fe.message, instance), status });
  }
  request.log.error({ err: error }, "request failed");
  return sendProblem(
    reply,
    problemOf(
      "internal",
      "The gateway failed to handle this request; the error is in its log. Retry later.",
      instance,
    ),
  );
}

function detailFor(kind: ProblemKind, error: FastifyError, request: FastifyRequest): string {
  switch (kind) {
    case "payload-too-large":
      return `The request body is larger than this gateway accepts (${request.routeOptions.bodyLimit ?? "the configured"} bytes); send smaller events or raise EVENTLOOM_GATEWAY_BODY_LIMIT.`;
    case "unsupported-media-type":
      return `Content-Type "${request.headers["content-type"] ?? ""}" is not a valid media type.`;
    default:
      return error.message;
  }
}

export function problemNotFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(
    reply,
    problemOf(
      "not-found",
      `No route ${request.method} ${request.url.split("?")[0]}; see /docs for the API.`,
      instanceOf(request),
    ),
  );
}
