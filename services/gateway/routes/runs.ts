/**
 * The run API on the gateway: start (one or a batch), get, list, undo and cancel runs. The
 * engine owns runs and serves this API itself (services/engine/api.ts); the
 * gateway fronts it so clients have one entry point, one authentication and
 * one rate limit. Requests are forwarded as they are (body, content type,
 * Idempotency-Key, trace context) and answers come back as the engine wrote
 * them, problem documents included.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ProblemError, problemResponses } from "../problem.ts";

export interface RunRoutesOptions {
  /** Base URL of the engine's run API, e.g. `http://eventloom-engine:8081`. */
  engineUrl: string;
  /** How long to wait for the engine, ms. */
  timeoutMs?: number;
}

const FORWARDED_REQUEST_HEADERS = ["content-type", "idempotency-key", "traceparent", "tracestate", "accept"];
const FORWARDED_RESPONSE_HEADERS = ["content-type", "location", "retry-after"];

const namespaceParam = { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 } as const;
const nameParam = namespaceParam;
/** Path parameters of the routes under one Orchestration (start, batch start). */
const orchestrationParams = {
  type: "object",
  properties: { namespace: namespaceParam, name: nameParam },
  required: ["namespace", "name"],
} as const;
const idParam = { type: "string", minLength: 1, maxLength: 200 } as const;

export async function runRoutes(app: FastifyInstance, opts: RunRoutesOptions): Promise<void> {
  const base = opts.engineUrl.replace(/\/+$/, "");
  const timeoutMs = opts.timeoutMs ?? 10_000;

  const forward = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const headers: Record<string, string> = {};
    for (const h of FORWARDED_REQUEST_HEADERS) {
      const v = request.headers[h];
      if (typeof v === "string") headers[h] = v;
    }
    let res: Response;
    try {
      res = await fetch(`${base}${request.url}`, {
        method: request.method,
        headers,
        ...(request.body !== undefined && request.method !== "GET"
          ? { body: JSON.stringify(request.body) }
          : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new ProblemError(
        "engine-unavailable",
        `the engine at ${base} did not answer: ${(err as Error).message}`,
        {
          retryAfterSeconds: 2,
          cause: err,
        },
      );
    }
    reply.code(res.status);
    for (const h of FORWARDED_RESPONSE_HEADERS) {
      const v = res.headers.get(h);
      if (v !== null) reply.header(h, v);
    }
    return reply.send(Buffer.from(await res.arrayBuffer()));
  };

  const tags = ["runs"];
  const responses = problemResponses(400, 401, 403, 404, 409, 422, 429, 503);
  app.post(
    "/namespaces/:namespace/orchestrations/:name/runs",
    {
      schema: {
        tags,
        summary:
          "Start a run (202 once the start request is durably in Kafka); Idempotency-Key returns the same run",
        params: orchestrationParams,
        body: { type: "object", additionalProperties: true },
        response: responses,
      },
    },
    forward,
  );
  app.post(
    "/namespaces/:namespace/orchestrations/:name/runs/batch",
    {
      schema: {
        tags,
        summary:
          "Start up to 1000 runs in one request; each run answered on its own (202 once its start request is in Kafka, or a problem)",
        description:
          "The gateway's rate limit counts requests: a batch counts once, whatever the number of runs in it.",
        params: orchestrationParams,
        body: { type: "object", additionalProperties: true },
        response: responses,
      },
    },
    forward,
  );
  app.get(
    "/namespaces/:namespace/runs",
    {
      schema: {
        tags,
        summary: "List runs by orchestration and state",
        params: { type: "object", properties: { namespace: namespaceParam }, required: ["namespace"] },
        querystring: {
          type: "object",
          properties: {
            orchestration: nameParam,
            state: { type: "string", maxLength: 40 },
            limit: { type: "integer", minimum: 1, maximum: 1000 },
          },
          additionalProperties: false,
        },
        response: responses,
      },
    },
    forward,
  );
  app.get(
    "/namespaces/:namespace/runs/:id",
    {
      schema: {
        tags,
        summary: "A run: state, each step's attempts, timestamps, errors and trace id",
        params: {
          type: "object",
          properties: { namespace: namespaceParam, id: idParam },
          required: ["namespace", "id"],
        },
        response: responses,
      },
    },
    forward,
  );
  for (const action of ["undo", "cancel"] as const) {
    app.post(
      `/namespaces/:namespace/runs/:id/${action}`,
      {
        schema: {
          tags,
          summary:
            action === "undo"
              ? "Undo a succeeded run: compensate every step in reverse order"
              : "Cancel a running run: compensate the completed steps",
          params: {
            type: "object",
            properties: { namespace: namespaceParam, id: idParam },
            required: ["namespace", "id"],
          },
          response: responses,
        },
      },
      forward,
    );
  }
}
