/**
 * The run API, as a fastify plugin: the gateway registers it in its
 * authenticated scope; `main.ts` serves it on its own for a standalone engine.
 *
 *   POST /namespaces/:namespace/orchestrations/:name/runs   start a run (202 once the request is in Kafka)
 *   POST /namespaces/:namespace/orchestrations/:name/runs/batch   start up to 1000 runs (per-run answers)
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
import { recordBytes } from "../kafka/coalesce.ts";
import type { TopicNamingOptions } from "../events/topics.ts";
import { inputHash } from "./input-hash.ts";
import { RUN_STATUSES, STATE_SCHEMA, isTerminal, pendingSteps } from "./model.ts";
import type { RunState, RunStatus } from "./model.ts";
import { runRequestRecord, startRecord } from "./inbox.ts";
import { engineInboxTopic } from "./topics.ts";
import { startRunSpan } from "./tracing.ts";
import {
  problemOf,
  problemResponseSchema,
  problemResponses,
  runApiErrorHandler,
  sendProblem,
} from "./problem.ts";
import type { Problem, RunProblemKind } from "./problem.ts";
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
/** Path parameters of the routes under one Orchestration (start, batch start). */
const orchestrationParams = {
  type: "object",
  properties: { namespace: namespaceParam, name: namespaceParam },
  required: ["namespace", "name"],
} as const;
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

/** Most runs one batch request may start. */
export const MAX_BATCH_RUNS = 1000;

const batchBodySchema = {
  type: "object",
  properties: {
    runs: {
      type: "array",
      minItems: 1,
      maxItems: MAX_BATCH_RUNS,
      items: {
        type: "object",
        properties: {
          input: { description: "The run input (any JSON; `{}` when absent)." },
          idempotencyKey: {
            type: "string",
            minLength: 1,
            maxLength: 255,
            description: "As the Idempotency-Key header of a single start: a retry returns the same run.",
          },
        },
        // Unknown fields are refused by the handler (a typo such as `inputs` must not start a run with `{}`);
        // `additionalProperties: false` would make fastify's ajv drop them silently instead.
      },
    },
  },
  required: ["runs"],
  additionalProperties: false,
} as const;

const batchResponseSchema = {
  type: "object",
  properties: {
    accepted: {
      type: "integer",
      description: "Runs accepted (status 202): their start requests are in Kafka.",
    },
    failed: { type: "integer", description: "Runs refused or not written; nothing was started for them." },
    items: {
      type: "array",
      description: "One answer per run asked for, in the order of the request.",
      items: {
        type: "object",
        properties: {
          status: { type: "integer", description: "202, or the status of the problem." },
          runId: { type: "string" },
          state: { type: "string", enum: [...RUN_STATUSES] },
          traceId: { type: "string" },
          location: { type: "string" },
          problem: problemResponseSchema,
        },
        required: ["status"],
      },
    },
  },
  required: ["accepted", "failed", "items"],
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

  /** What a start needs from its Orchestration, checked once per request (a batch shares it). */
  type Target =
    | { ok: true; namespace: string; name: string; entry: OrchestrationEntry; validate?: ValidateFunction }
    | { ok: false; kind: RunProblemKind; detail: string };

  const target = (namespace: string, name: string): Target => {
    const entry = opts.orchestrations.get(namespace, name);
    if (!entry) {
      return {
        ok: false,
        kind: "orchestration-not-found",
        detail: `Orchestration ${namespace}/${name} does not exist (or the engine has not seen it yet); kubectl get orchestrations -n ${namespace}.`,
      };
    }
    if ((entry.orchestration.spec.mode ?? "orchestrated") !== "orchestrated") {
      return {
        ok: false,
        kind: "not-orchestrated",
        detail: `Orchestration ${namespace}/${name} is choreographed: its runs start when its first event is published (POST .../events), not through the run API.`,
      };
    }
    try {
      const validate = validatorFor(entry);
      return { ok: true, namespace, name, entry, ...(validate ? { validate } : {}) };
    } catch (err) {
      return {
        ok: false,
        kind: "invalid-input-schema",
        detail: `The inputSchema of ${namespace}/${name} does not compile: ${(err as Error).message}. Fix spec.inputSchema.`,
      };
    }
  };

  /** One start: refused, answered from a run that already exists (idempotent retry), or a record to write. */
  type Start =
    | { kind: "refused"; problem: RunProblemKind; detail: string; extensions: Record<string, unknown> }
    | { kind: "existing"; runId: string; location: string; run: RunState }
    | {
        kind: "new";
        runId: string;
        location: string;
        request: Accepted["request"];
        record: OutgoingRecord;
        end: () => void;
      };

  const prepareStart = (t: Extract<Target, { ok: true }>, input: unknown, key: string | undefined): Start => {
    const { namespace, name, entry, validate } = t;
    if (validate && !validate(input)) {
      const errors = (validate.errors ?? []).map((e) => ({
        instancePath: e.instancePath,
        schemaPath: e.schemaPath,
        keyword: e.keyword,
        message: e.message ?? "",
        params: e.params as Record<string, unknown>,
      }));
      return {
        kind: "refused",
        problem: "schema-violation",
        detail: `The input does not match the inputSchema of ${namespace}/${name}: ${ajv.errorsText(validate.errors)}.`,
        extensions: { errors },
      };
    }
    const hash = inputHash(input);
    const runId = key !== undefined ? idempotentRunId(namespace, name, key) : randomUUID();
    const location = `/namespaces/${namespace}/runs/${runId}`;
    if (key !== undefined) {
      const existing = lookup(runId);
      if (existing) {
        if (existing.inputHash !== hash) {
          return {
            kind: "refused",
            problem: "idempotency-key-reused",
            detail: `Idempotency-Key "${key}" already started run ${runId} with a different input; use a new key for a new run.`,
            extensions: { runId },
          };
        }
        return { kind: "existing", runId, location, run: existing };
      }
    }
    const { span, trace } = startRunSpan(namespace, name, runId);
    const request = {
      runId,
      namespace,
      orchestration: name,
      generation: entry.generation,
      spec: entry.orchestration.spec,
      input,
      inputHash: hash,
      ...(key !== undefined ? { idempotencyKey: key } : {}),
      trace,
    };
    return {
      kind: "new",
      runId,
      location,
      request,
      record: startRecord(request, randomUUID()),
      end: () => span.end(),
    };
  };

  /** Remembers runs whose start is in Kafka, so this process answers `Pending` until its view has them. */
  const remember = (requests: Array<Accepted["request"]>): void => {
    const at = now();
    evictAccepted(at);
    for (const request of requests)
      accepted.set(request.runId, { request, at, expires: at + acceptedMemoryMs });
  };

  const accepted202 = (
    runId: string,
    namespace: string,
    name: string,
    traceId: string,
    location: string,
  ) => ({
    runId,
    namespace,
    orchestration: name,
    state: "Pending" as const,
    traceId,
    location,
  });

  app.post<{ Params: StartParams; Headers: IdemHeaders; Body: unknown }>(
    "/namespaces/:namespace/orchestrations/:name/runs",
    {
      schema: {
        summary: "Start a run of an Orchestration",
        description:
          "The body is the run input, validated against the Orchestration's inputSchema. Answered 202 once the start " +
          "request is durably in Kafka (acks=all). With an Idempotency-Key, a retry returns the same run.",
        tags: ["runs"],
        params: orchestrationParams,
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
      const t = target(namespace, name);
      if (!t.ok) return sendProblem(reply, request, t.kind, t.detail);
      const start = prepareStart(t, request.body ?? {}, request.headers[IDEMPOTENCY_KEY_HEADER]);
      if (start.kind === "refused")
        return sendProblem(reply, request, start.problem, start.detail, start.extensions);
      if (start.kind === "existing") {
        return reply
          .code(202)
          .header("location", start.location)
          .send({ ...runSummary(start.run), runId: start.runId, location: start.location });
      }
      const written = await send(reply, request, start.record);
      start.end();
      if (!written) return reply;
      remember([start.request]);
      return reply
        .code(202)
        .header("location", start.location)
        .send(accepted202(start.runId, namespace, name, start.request.trace.traceId, start.location));
    },
  );

  app.post<{
    Params: StartParams;
    Body: { runs: Array<{ input?: unknown; idempotencyKey?: string }> };
  }>(
    "/namespaces/:namespace/orchestrations/:name/runs/batch",
    {
      schema: {
        summary: "Start many runs of an Orchestration",
        description:
          `Up to ${MAX_BATCH_RUNS} runs in one request, each answered on its own, in order: status 202 once its start ` +
          "request is durably in Kafka (acks=all; the response is sent only after every write of the batch resolved), " +
          "or a problem (422 schema-violation or idempotency-key-reused, 503 kafka-unavailable: nothing was started " +
          "for that run; retry it). Problems of the whole request (400, 404, 409, 500) are answered as for a single start.",
        tags: ["runs"],
        params: orchestrationParams,
        body: batchBodySchema,
        response: { 200: batchResponseSchema, ...problemResponses(400, 404, 409, 500) },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const t = target(namespace, name);
      if (!t.ok) return sendProblem(reply, request, t.kind, t.detail);
      const unknown = request.body.runs.findIndex((run) =>
        Object.keys(run).some((k) => k !== "input" && k !== "idempotencyKey"),
      );
      if (unknown >= 0) {
        const fields = Object.keys(request.body.runs[unknown] ?? {}).join(", ");
        return sendProblem(
          reply,
          request,
          "bad-request",
          `Run ${unknown} of the batch has fields ${fields}; a run takes only input and idempotencyKey.`,
        );
      }
      type Item = Record<string, unknown> & { status: number };
      const items: Item[] = new Array<Item>(request.body.runs.length);
      const refused = (
        i: number,
        kind: RunProblemKind,
        detail: string,
        ext: Record<string, unknown> = {},
      ) => {
        const problem: Problem = problemOf(kind, detail, `${request.url}#/runs/${i}`, ext);
        items[i] = { status: problem.status, problem };
      };
      const fresh: Array<{ i: number; start: Extract<Start, { kind: "new" }> }> = [];
      /** Keys asked for earlier in this batch: a repeat is the same run, or a reuse with another input. */
      const keys = new Map<string, { i: number; hash: string }>();
      request.body.runs.forEach((run, i) => {
        const input = run.input ?? {};
        const key = run.idempotencyKey;
        if (key !== undefined) {
          const earlier = keys.get(key);
          if (earlier) {
            if (earlier.hash !== inputHash(input)) {
              refused(
                i,
                "idempotency-key-reused",
                `Idempotency-Key "${key}" is used by run ${earlier.i} of this batch with a different input; use a new key for a new run.`,
                { runId: idempotentRunId(namespace, name, key) },
              );
            } else {
              items[i] = { status: -1, sameAs: earlier.i };
            }
            return;
          }
        }
        const start = prepareStart(t, input, key);
        if (key !== undefined && start.kind !== "refused") keys.set(key, { i, hash: inputHash(input) });
        if (start.kind === "refused") refused(i, start.problem, start.detail, start.extensions);
        else if (start.kind === "existing")
          items[i] = { status: 202, ...runSummary(start.run), runId: start.runId, location: start.location };
        else fresh.push({ i, start });
      });
      // Chunks of about MAX_WRITE_BYTES (one request each), written together; each run answered by its chunk.
      const chunks = chunkByBytes(fresh, (f) => recordBytes([f.start.record]), MAX_WRITE_BYTES);
      await Promise.all(
        chunks.map(async (chunk) => {
          try {
            await write(
              inboxTopic,
              chunk.map((f) => f.start.record),
            );
            remember(chunk.map((f) => f.start.request));
            for (const { i, start } of chunk)
              items[i] = {
                status: 202,
                ...accepted202(start.runId, namespace, name, start.request.trace.traceId, start.location),
              };
          } catch (err) {
            request.log.warn({ err, runs: chunk.length }, "could not write to the engine inbox");
            for (const { i } of chunk)
              refused(
                i,
                "kafka-unavailable",
                `The start request could not be written to Kafka (${(err as Error).message}); nothing was started for this run. Retry it.`,
              );
          } finally {
            for (const { start } of chunk) start.end();
          }
        }),
      );
      items.forEach((item, i) => {
        if (item.status === -1) items[i] = { ...(items[item.sameAs as number] as Item) };
      });
      const acceptedCount = items.filter((item) => item.status === 202).length;
      return reply.send({ accepted: acceptedCount, failed: items.length - acceptedCount, items });
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

/** About the most bytes of start records one batch writes in one request (under the broker's 1 MiB). */
const MAX_WRITE_BYTES = 512 * 1024;

/** Splits `items` in order into chunks of about `maxBytes` (an item bigger than that alone). */
export function chunkByBytes<T>(items: T[], bytes: (item: T) => number, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let size = 0;
  for (const item of items) {
    const b = bytes(item);
    if (chunk.length > 0 && size + b > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(item);
    size += b;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

function notFound(params: RunParams, ready: boolean): string {
  return ready
    ? `Run ${params.id} does not exist in namespace ${params.namespace} (or was forgotten after its retention).`
    : `Run ${params.id} is not known yet: the run view is still reading the engine state topic; retry in a moment.`;
}
