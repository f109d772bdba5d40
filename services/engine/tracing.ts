/**
 * One run = one trace. The run API starts the run's root span; its context is
 * kept in the run state, and every command of the run (compensations
 * included, after any restart) is sent in a `send <topic>` PRODUCER span below
 * it, whose context travels in the record's `traceparent` header.
 *
 * When tracing is off, spans do not record and have no ids of their own, so
 * the run gets a synthesized (unsampled) trace context instead: the run still
 * has a trace id to correlate by, and workers that do trace join that trace.
 */
import { randomFillSync } from "node:crypto";
import { context as otelContext, ROOT_CONTEXT, SpanKind, trace, TraceFlags } from "@opentelemetry/api";
import type { Attributes, Context, Span } from "@opentelemetry/api";
import type { CloudEvent } from "../events/cloudevent.ts";
import { ATTR, eventloomTracer, extractTraceContext, injectTraceContext } from "../tracing/index.ts";
import type { RunTrace } from "./model.ts";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace id of a W3C traceparent, or undefined when it is not one. */
export function traceIdOf(traceparent: string): string | undefined {
  return TRACEPARENT.exec(traceparent)?.[1];
}

/** A fresh, unsampled trace context: for a run whose start carried none. */
export function newTrace(): RunTrace {
  return synthesizedTrace();
}

/** The trace context of the span in `ctx`, as a run keeps it; undefined when there is none. */
export function traceOf(ctx: Context): RunTrace | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  const headers: Record<string, string | undefined> = {};
  injectTraceContext(headers, ctx);
  const traceparent =
    headers.traceparent ?? `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & TraceFlags.SAMPLED}`;
  return {
    traceparent,
    traceId: sc.traceId,
    ...(headers.tracestate !== undefined ? { tracestate: headers.tracestate } : {}),
  };
}

/** Random bytes for synthesized trace contexts, drawn from the CSPRNG 24 per trace, a pool at a time. */
const POOL_TRACES = 256;
const pool = Buffer.alloc(24 * POOL_TRACES);
let poolNext = POOL_TRACES;

function synthesizedTrace(): RunTrace {
  if (poolNext >= POOL_TRACES) {
    randomFillSync(pool);
    poolNext = 0;
  }
  const at = 24 * poolNext++;
  const traceId = pool.toString("hex", at, at + 16);
  return { traceparent: `00-${traceId}-${pool.toString("hex", at + 16, at + 24)}-00`, traceId };
}

/**
 * Starts the root span of a new run (a new trace, linked to the caller's span
 * when there is one) and returns it with the trace context to store. End the
 * span once the start request is written.
 */
export function startRunSpan(
  namespace: string,
  orchestration: string,
  runId: string,
): { span: Span; trace: RunTrace } {
  const caller = trace.getSpanContext(otelContext.active());
  const span = eventloomTracer().startSpan(
    `run ${namespace}/${orchestration}`,
    {
      root: true,
      kind: SpanKind.INTERNAL,
      attributes: {
        "eventloom.run.id": runId,
        "eventloom.namespace": namespace,
        "eventloom.orchestration": orchestration,
      },
      ...(caller && trace.isSpanContextValid(caller) ? { links: [{ context: caller }] } : {}),
    },
    ROOT_CONTEXT,
  );
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return { span, trace: synthesizedTrace() };
  const headers: Record<string, string | undefined> = {};
  injectTraceContext(headers, trace.setSpan(ROOT_CONTEXT, span));
  const traceparent =
    headers.traceparent ?? `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & TraceFlags.SAMPLED}`;
  return {
    span,
    trace: {
      traceparent,
      traceId: sc.traceId,
      ...(headers.tracestate !== undefined ? { tracestate: headers.tracestate } : {}),
    },
  };
}

/** The context of a run's root span, to parent the run's commands on. */
export function runContext(runTrace: RunTrace): Context {
  if (!runTrace.traceparent) return ROOT_CONTEXT;
  return extractTraceContext({
    traceparent: runTrace.traceparent,
    ...(runTrace.tracestate !== undefined ? { tracestate: runTrace.tracestate } : {}),
  });
}

/** The context of a consumed record (its `traceparent`), for processing it. */
export function recordContext(headers: Record<string, Buffer | undefined>): Context {
  return extractTraceContext(headers);
}

/**
 * Opens a `send <topic>` PRODUCER span for one record below `parent`, writes
 * its trace context into `headers`, and returns a function that ends the span
 * once the record was written (or failed to be).
 */
export function producerSpan(
  topic: string,
  event: CloudEvent,
  parent: Context,
  headers: Record<string, Buffer | string | undefined>,
): (error?: unknown) => void {
  const span = eventloomTracer().startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER }, parent);
  if (span.isRecording()) {
    const attrs: Attributes = {
      [ATTR.messagingSystem]: "kafka",
      [ATTR.destinationName]: topic,
      [ATTR.operationType]: "send",
      [ATTR.operationName]: "send",
      [ATTR.messageId]: event.id,
      [ATTR.eventId]: event.id,
      [ATTR.eventSource]: event.source,
      [ATTR.eventType]: event.type,
      [ATTR.eventSpecVersion]: event.specversion,
    };
    const key = event.extensions.partitionkey;
    if (key !== undefined) attrs[ATTR.kafkaMessageKey] = key;
    if (event.subject !== undefined) attrs[ATTR.eventSubject] = event.subject;
    span.setAttributes(attrs);
  }
  injectTraceContext(headers, trace.setSpan(parent, span));
  return (error?: unknown) => {
    if (error !== undefined && span.isRecording()) {
      const e = error instanceof Error ? error : new Error(String(error));
      span.recordException(e);
      span.setStatus({ code: 2, message: e.message });
    }
    span.end();
  };
}

/** Runs `fn` in a `process <topic>` CONSUMER span whose parent is `parent`. */
export async function consumerSpan<T>(
  topic: string,
  attributes: Attributes,
  parent: Context,
  fn: (ctx: Context) => Promise<T>,
): Promise<T> {
  const span = eventloomTracer().startSpan(`process ${topic}`, { kind: SpanKind.CONSUMER }, parent);
  if (span.isRecording()) {
    span.setAttributes({
      [ATTR.messagingSystem]: "kafka",
      [ATTR.destinationName]: topic,
      [ATTR.operationType]: "process",
      [ATTR.operationName]: "process",
      ...attributes,
    });
  }
  const ctx = trace.setSpan(parent, span);
  try {
    return await otelContext.with(ctx, () => fn(ctx));
  } catch (err) {
    if (span.isRecording()) {
      const e = err instanceof Error ? err : new Error(String(err));
      span.recordException(e);
      span.setStatus({ code: 2, message: e.message });
    }
    throw err;
  } finally {
    span.end();
  }
}
