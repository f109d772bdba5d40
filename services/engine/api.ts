/**
 * The run API, as a fastify plugin: the gateway registers it in its
 * authenticated scope; `main.ts` serves it on its own for a standalone engine.
 *
 *   POST /namespaces/:namespace/orchestrations/:name/runs   start a run (202 once the request is in Kafka)
 *   GET  /namespaces/:namespace/runs                        list (?orchestration=&state=&limit=)
 *   GET  /namespaces/:namespace/runs/:id                    one run: state, steps, attempts, errors, trace
 *   POST /namespaces/:namespace/runs/:id/undo               undo a Succeeded run (seed 003)
 *   POST /namespaces/:namespace/runs/:id/cancel             cancel a Pending or Running run
 *
 * Writes go to the engine inbox (acks=all); reads come from a state view. The
 * view lags the engine by a moment, so a run answered 202 may read `Pending`
 * (from this process's memory of what it accepted) before the engine wrote it.
 * Errors are RFC 9457 problem details. See docs/engine.md.
 */
import { createHash, randomUUID } from "node:crypto";
import { Ajv } from "ajv";
import type { ValidateFunction } from "ajv";
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { OrchestrationEntry } from "../runtime/registry.ts";
import type { OutgoingRecord } from "../kafka/client.ts";
import type { TopicNamingOptions } from "../events/topics.ts";
import { inputHash } from "./input-hash.ts";
import { RUN_STATUSES, STATE_SCHEMA, isTerminal, pendingSteps } from "./model.ts";
import type { RunState, RunStatus } from "./model.ts";
import { runRequestRecord, startRecord } from "./inbox.ts";
import { engineInboxTopic } from "./topics.ts";
import { startRunSpan } from "./tracing.ts";
import { problemResponses, runApiErrorHandler, sendProblem } from "./problem.ts";
import type { RunFilter } from "./view.ts";

/** Where the API reads runs from (`StateView` fits). */
export interface RunReader {
  get(runId: string): RunState | undefined;
  list(filter: RunFilter): RunState[];
  /** False until the reader has caught up with the state topic once. */
  readonly ready: boolean;
}

export interface RunApiOptions {
  orchestrations: { get(namespace: string, name: string): OrchestrationEntry | undefined };
  runs: RunReader;
  /** Writes records with acks=all (`KafkaProducer.send` and the gateway's `GatewayKafka.send` fit). */
  send(topic: string, records: OutgoingRecord[]): Promise<unknown>;
  naming?: TopicNamingOptions;
  now?: () => number;
  /** Upper bound of `limit` on list (default 1000). */
  maxListLimit?: number;
  /** How long a run this process accepted answers `Pending` before the engine wrote it (default 5 min). */
  acceptedMemoryMs?: number;
}

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const namespaceParam = { type: "string", pattern: DNS_LABEL, maxLength: 63 } as const;
const runIdParam = { type: "string", minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._-]+$" } as const;
const time = { type: "string", format: "date-time" } as const;
const anyJson = {} as const;
const errorInfo = {
  type: "object",
  properties: { type: { type: "string" }, message: { type: "string" } },
  required: ["type", "message"],
} as const;

const attemptSchema = {
  type: "object",
  properties: {
    action: { type: "string", enum: ["do", "compensate"] },
    attempt: { type: "integer" },
    commandId: { type: "string" },
    dispatchedAt: time,
    deadlineAt: time,
    finishedAt: time,
    outcome: { type: "string", enum: ["completed", "failed", "timedOut"] },
    error: errorInfo,
  },
  required: ["action", "attempt", "commandId", "dispatchedAt", "deadlineAt"],
} as const;

const stepSchema = {
  type: "object",
  properties: {
    name: { type: "string" },
    status: {
      type: "string",
      enum: [
        "Pending",
        "Skipped",
        "Running",
        "Succeeded",
        "Failed",
        "TimedOut",
        "Compensating",
        "Compensated",
        "CompensationFailed",
      ],
    },
    action: { type: "string", enum: ["do", "compensate"] },
    attempt: {
      type: "integer",
      description: "Current attempt of the current action (0: not dispatched yet).",
    },
    waiting: { type: "string", enum: ["result", "backoff"] },
    dueAt: {
      ...time,
      description: "When the engine acts next: the attempt's deadline or the end of its backoff.",
    },
    startedAt: time,
    completedAt: time,
    compensatedAt: time,
    completionIndex: { type: "integer", description: "Order of completion; compensation runs in reverse." },
    output: anyJson,
    error: errorInfo,
    attempts: { type: "array", items: attemptSchema },
  },
  required: ["name", "status", "action", "attempt", "attempts"],
} as const;

const runSummarySchema = {
  type: "object",
  properties: {
    runId: { type: "string" },
    namespace: { type: "string" },
    orchestration: { type: "string" },
    generation: { type: "integer" },
    mode: { type: "string", enum: ["orchestrated", "choreographed"] },
    state: { type: "string", enum: [...RUN_STATUSES] },
    reason: { type: "string" },
    traceId: { type: "string" },
    createdAt: time,
    updatedAt: time,
    finishedAt: time,
  },
  required: ["runId", "namespace", "orchestration", "state", "createdAt", "updatedAt"],
} as const;

const runSchema = {
  type: "object",
  properties: {
    ...runSummarySchema.properties,
    waitingFor: { type: "string" },
    intent: { type: "string", enum: ["fail", "cancel", "undo"] },
    input: anyJson,
    idempotencyKey: { type: "string" },
    traceparent: { type: "string" },
    steps: { type: "array", items: stepSchema },
    requests: {
      type: "array",
      items: {
        type: "object",
        properties: {
          kind: { type: "string", enum: ["cancel", "undo"] },
          id: { type: "string" },
          at: time,
          accepted: { type: "boolean" },
          reason: { type: "string" },
        },
        required: ["kind", "id", "at", "accepted"],
      },
    },
    events: {
      type: "array",
      description: "Choreographed runs: the events observed, oldest first.",
      items: {
        type: "object",
        properties: {
          id: { type: "string" },
          source: { type: "string" },
          type: { type: "string" },
          step: { type: "string" },
          time: { type: "string" },
          observedAt: time,
        },
        required: ["id", "source", "type", "observedAt"],
      },
    },
  },
  required: [...runSummarySchema.required, "steps"],
} as const;

const acceptedSchema = {
  type: "object",
  properties: {
    runId: { type: "string" },
    namespace: { type: "string" },
    orchestration: { type: "string" },
    state: { type: "string", enum: [...RUN_STATUSES] },
    traceId: { type: "string" },
    location: { type: "string" },
  },
  required: ["runId", "namespace", "orchestration", "state", "location"],
} as const;

const requestAcceptedSchema = {
  type: "object",
  properties: {
    runId: { type: "string" },
    requestId: { type: "string" },
    action: { type: "string", enum: ["undo", "cancel"] },
    state: { type: "string", enum: [...RUN_STATUSES] },
    location: { type: "string" },
  },
  required: ["runId", "requestId", "action", "state", "location"],
} as const;

const idempotencyHeaders = {
  type: "object",
  properties: {
    [IDEMPOTENCY_KEY_HEADER]: {
      type: "string",
      minLength: 1,
      maxLength: 255,
      description: "Retrying with the same key returns the same run (and does not start another).",
    },
  },
} as const;

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function defined<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/** A run as the API shows it (times as RFC 3339). */
export function runView(s: RunState): Record<string, unknown> {
  return defined({
    ...runSummary(s),
    waitingFor: s.waitingFor,
    intent: s.intent,
    input: s.input,
    idempotencyKey: s.idempotencyKey,
    traceparent: s.trace.traceparent || undefined,
    steps: s.steps.map((st) =>
      defined({
        name: st.name,
        status: st.status,
        action: st.action,
        attempt: st.attempt,
        waiting: st.waiting,
        dueAt: iso(st.dueAt),
        startedAt: iso(st.startedAt),
        completedAt: iso(st.completedAt),
        compensatedAt: iso(st.compensatedAt),
        completionIndex: st.completionIndex,
        output: st.output,
        error: st.error,
        attempts: st.attempts.map((a) =>
          defined({
            action: a.action,
            attempt: a.attempt,
            commandId: a.commandId,
            dispatchedAt: iso(a.dispatchedAt),
            deadlineAt: iso(a.deadlineAt),
            finishedAt: iso(a.finishedAt),
            outcome: a.outcome,
            error: a.error,
          }),
        ),
      }),
    ),
    requests: s.requests.map((r) =>
      defined({ kind: r.kind, id: r.id, at: iso(r.at), accepted: r.accepted, reason: r.reason }),
    ),
    events: s.events?.map((e) => defined({ ...e, observedAt: iso(e.observedAt) })),
  });
}

export function runSummary(s: RunState): Record<string, unknown> {
  return defined({
    runId: s.runId,
    namespace: s.namespace,
    orchestration: s.orchestration,
    generation: s.generation,
    mode: s.mode,
    state: s.status,
    reason: s.reason,
    traceId: s.trace.traceId || undefined,
    createdAt: iso(s.createdAt),
    updatedAt: iso(s.updatedAt),
    finishedAt: iso(s.finishedAt),
  });
}

/**
 * The run id for an Idempotency-Key: a UUID (RFC 9562 version 8) derived from
 * namespace, Orchestration and key, so a retry names the same run wherever it lands.
 */
export function idempotentRunId(namespace: string, orchestration: string, key: string): string {
  const h = createHash("sha256").update(`${namespace}/${orchestration}/${key}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x80;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

// ---------------------------------------------------------------------------
// Plugin
// ---------------------------------------------------------------------------

/** What this process remembers of a run it accepted, until the view has it: enough to answer `Pending`. */
interface Accepted {
  request: Omit<
    RunState,
    | "schema"
    | "mode"
    | "status"
    | "createdAt"
    | "updatedAt"
    | "steps"
    | "completions"
    | "requests"
    | "version"
  >;
  at: number;
  expires: number;
}

function pendingState({ request, at }: Accepted): RunState {
  return {
    schema: STATE_SCHEMA,
    ...request,
    mode: "orchestrated",
    status: "Pending",
    createdAt: at,
    updatedAt: at,
    steps: pendingSteps(request.spec),
    completions: 0,
    requests: [],
    version: 0,
  };
}

type NsParams = { namespace: string };
type StartParams = { namespace: string; name: string };
type RunParams = { namespace: string; id: string };
type ListQuery = { orchestration?: string; state?: RunStatus; limit?: number };
type IdemHeaders = { [IDEMPOTENCY_KEY_HEADER]?: string };

export const runApi: FastifyPluginAsync<RunApiOptions> = async (
  app: FastifyInstance,
  opts: RunApiOptions,
) => {
  const now = opts.now ?? Date.now;
  const inboxTopic = engineInboxTopic(opts.naming ?? {});
  const maxLimit = opts.maxListLimit ?? 1000;
  const acceptedMemoryMs = opts.acceptedMemoryMs ?? 5 * 60_000;
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validators = new Map<string, { generation: number; validate: ValidateFunction }>();
  const accepted = new Map<string, Accepted>();
  const write = opts.send;
  /** Forgets, oldest first, what the view has by now or what expired (a Map keeps insertion order). */
  const evictAccepted = (at: number): void => {
    for (const [runId, entry] of accepted) {
      if (entry.expires > at && !opts.runs.get(runId) && accepted.size <= 10_000) return;
      accepted.delete(runId);
    }
  };

  app.setErrorHandler(runApiErrorHandler);

  /** A run as the view has it, or as this process accepted it when the view has not seen it yet. */
  const lookup = (runId: string): RunState | undefined => {
    const known = opts.runs.get(runId);
    if (known) {
      accepted.delete(runId);
      return known;
    }
    const mine = accepted.get(runId);
    if (mine && mine.expires > now()) return pendingState(mine);
    accepted.delete(runId);
    return undefined;
  };

  const validatorFor = (entry: OrchestrationEntry): ValidateFunction | undefined => {
    const schema = entry.orchestration.spec.inputSchema;
    if (!schema) return undefined;
    const cached = validators.get(entry.key);
    if (cached && cached.generation === entry.generation) return cached.validate;
    const validate = ajv.compile(schema);
    validators.set(entry.key, { generation: entry.generation, validate });
    return validate;
  };

  const send = async (
    reply: FastifyReply,
    request: FastifyRequest,
    record: OutgoingRecord,
  ): Promise<boolean> => {
    try {
      await write(inboxTopic, [record]);
      return true;
    } catch (err) {
      request.log.warn({ err }, "could not write to the engine inbox");
      sendProblem(
        reply,
        request,
        "kafka-unavailable",
        `The request could not be written to Kafka (${(err as Error).message}); nothing was started. Retry later.`,
        {},
        5,
      );
      return false;
    }
  };

  app.post<{ Params: StartParams; Headers: IdemHeaders; Body: unknown }>(
    "/namespaces/:namespace/orchestrations/:name/runs",
    {
      schema: {
        summary: "Start a run of an Orchestration",
        description:
          "The body is the run input, validated against the Orchestration's inputSchema. Answered 202 once the start " +
          "request is durably in Kafka (acks=all). With an Idempotency-Key, a retry returns the same run.",
        tags: ["runs"],
        params: {
          type: "object",
          properties: { namespace: namespaceParam, name: namespaceParam },
          required: ["namespace", "name"],
        },
        headers: idempotencyHeaders,
        body: {
          description:
            "The run input (any JSON; `{}` when the body is empty), checked against the Orchestration's inputSchema.",
        },
        response: { 202: acceptedSchema, ...problemResponses(400, 404, 409, 422, 500, 503) },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const entry = opts.orchestrations.get(namespace, name);
      if (!entry) {
        return sendProblem(
          reply,
          request,
          "orchestration-not-found",
          `Orchestration ${namespace}/${name} does not exist (or the engine has not seen it yet); kubectl get orchestrations -n ${namespace}.`,
        );
      }
      const spec = entry.orchestration.spec;
      if ((spec.mode ?? "orchestrated") !== "orchestrated") {
        return sendProblem(
          reply,
          request,
          "not-orchestrated",
          `Orchestration ${namespace}/${name} is choreographed: its runs start when its first event is published (POST .../events), not through the run API.`,
        );
      }
      const input = request.body ?? {};
      let validate: ValidateFunction | undefined;
      try {
        validate = validatorFor(entry);
      } catch (err) {
        return sendProblem(
          reply,
          request,
          "invalid-input-schema",
          `The inputSchema of ${namespace}/${name} does not compile: ${(err as Error).message}. Fix spec.inputSchema.`,
        );
      }
      if (validate && !validate(input)) {
        const errors = (validate.errors ?? []).map((e) => ({
          instancePath: e.instancePath,
          schemaPath: e.schemaPath,
          keyword: e.keyword,
          message: e.message ?? "",
          params: e.params as Record<string, unknown>,
        }));
        return sendProblem(
          reply,
          request,
          "schema-violation",
          `The input does not match the inputSchema of ${namespace}/${name}: ${ajv.errorsText(validate.errors)}.`,
          { errors },
        );
      }
      const key = request.headers[IDEMPOTENCY_KEY_HEADER];
      const hash = inputHash(input);
      const runId = key !== undefined ? idempotentRunId(namespace, name, key) : randomUUID();
      const location = `/namespaces/${namespace}/runs/${runId}`;
      if (key !== undefined) {
        const existing = lookup(runId);
        if (existing) {
          if (existing.inputHash !== hash) {
            return sendProblem(
              reply,
              request,
              "idempotency-key-reused",
              `Idempotency-Key "${key}" already started run ${runId} with a different input; use a new key for a new run.`,
              { runId },
            );
          }
          return reply
            .code(202)
            .header("location", location)
            .send({ ...runSummary(existing), runId, location });
        }
      }
      const { span, trace } = startRunSpan(namespace, name, runId);
      const request0 = {
        runId,
        namespace,
        orchestration: name,
        generation: entry.generation,
        spec,
        input,
        inputHash: hash,
        ...(key !== undefined ? { idempotencyKey: key } : {}),
        trace,
      };
      const written = await send(reply, request, startRecord(request0, randomUUID()));
      span.end();
      if (!written) return reply;
      const at = now();
      evictAccepted(at);
      accepted.set(runId, { request: request0, at, expires: at + acceptedMemoryMs });
      return reply.code(202).header("location", location).send({
        runId,
        namespace,
        orchestration: name,
        state: "Pending",
        traceId: trace.traceId,
        location,
      });
    },
  );

  app.get<{ Params: NsParams; Querystring: ListQuery }>(
    "/namespaces/:namespace/runs",
    {
      schema: {
        summary: "List runs",
        description: "Newest first. Filter by Orchestration and state.",
        tags: ["runs"],
        params: { type: "object", properties: { namespace: namespaceParam }, required: ["namespace"] },
        querystring: {
          type: "object",
          properties: {
            orchestration: namespaceParam,
            state: { type: "string", enum: [...RUN_STATUSES] },
            limit: { type: "integer", minimum: 1, maximum: maxLimit, default: 100 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: "object",
            properties: { items: { type: "array", items: runSummarySchema }, count: { type: "integer" } },
            required: ["items", "count"],
          },
          ...problemResponses(400, 503),
        },
      },
    },
    async (request, reply) => {
      if (!opts.runs.ready)
        return sendProblem(
          reply,
          request,
          "not-ready",
          "The run view is still reading the engine state topic; retry in a moment.",
          {},
          1,
        );
      const { orchestration, state, limit } = request.query;
      const items = opts.runs
        .list({
          namespace: request.params.namespace,
          ...(orchestration !== undefined ? { orchestration } : {}),
          ...(state !== undefined ? { status: state } : {}),
          limit: limit ?? 100,
        })
        .map(runSummary);
      return reply.send({ items, count: items.length });
    },
  );

  app.get<{ Params: RunParams }>(
    "/namespaces/:namespace/runs/:id",
    {
      schema: {
        summary: "Get a run",
        description: "The run's state, each step's status and attempts, timestamps, errors and trace id.",
        tags: ["runs"],
        params: {
          type: "object",
          properties: { namespace: namespaceParam, id: runIdParam },
          required: ["namespace", "id"],
        },
        response: { 200: runSchema, ...problemResponses(400, 404) },
      },
    },
    async (request, reply) => {
      const run = lookup(request.params.id);
      if (!run || run.namespace !== request.params.namespace) {
        return sendProblem(reply, request, "run-not-found", notFound(request.params, opts.runs.ready));
      }
      return reply.send(runView(run));
    },
  );

  const requestRoute = (action: "undo" | "cancel"): void => {
    app.post<{ Params: RunParams; Headers: IdemHeaders }>(
      `/namespaces/:namespace/runs/:id/${action}`,
      {
        schema: {
          summary: action === "undo" ? "Undo a succeeded run" : "Cancel a running run",
          description:
            action === "undo"
              ? "Compensates every step of a Succeeded run in reverse completion order; the run ends Undone (or CompensationFailed)."
              : "Stops dispatching, lets the steps in flight finish, compensates the completed steps; the run ends Cancelled (or CompensationFailed).",
          tags: ["runs"],
          params: {
            type: "object",
            properties: { namespace: namespaceParam, id: runIdParam },
            required: ["namespace", "id"],
          },
          headers: idempotencyHeaders,
          response: { 202: requestAcceptedSchema, ...problemResponses(400, 404, 409, 503) },
        },
      },
      async (request, reply) => {
        const run = lookup(request.params.id);
        if (!run || run.namespace !== request.params.namespace) {
          return sendProblem(reply, request, "run-not-found", notFound(request.params, opts.runs.ready));
        }
        const allowed =
          action === "undo"
            ? run.status === "Succeeded"
            : run.status === "Pending" || run.status === "Running";
        if (!allowed) {
          const why =
            action === "undo"
              ? `only a Succeeded run can be undone; run ${run.runId} is ${run.status}`
              : isTerminal(run.status)
                ? `run ${run.runId} already finished (${run.status}); undo a Succeeded run instead`
                : `run ${run.runId} is ${run.status}; only a Pending or Running run can be cancelled`;
          return sendProblem(reply, request, "run-state-conflict", why, {
            runId: run.runId,
            state: run.status,
          });
        }
        const key = request.headers[IDEMPOTENCY_KEY_HEADER];
        const requestId = key !== undefined ? idempotentRunId(run.runId, action, key) : randomUUID();
        const written = await send(reply, request, runRequestRecord(action, run, requestId));
        if (!written) return reply;
        const location = `/namespaces/${run.namespace}/runs/${run.runId}`;
        return reply
          .code(202)
          .header("location", location)
          .send({ runId: run.runId, requestId, action, state: run.status, location });
      },
    );
  };
  requestRoute("undo");
  requestRoute("cancel");
};

function notFound(params: RunParams, ready: boolean): string {
  return ready
    ? `Run ${params.id} does not exist in namespace ${params.namespace} (or was forgotten after its retention).`
    : `Run ${params.id} is not known yet: the run view is still reading the engine state topic; retry in a moment.`;
}
