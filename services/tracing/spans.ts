/**
 * Producer and consumer spans for Kafka records, named and attributed after the OpenTelemetry messaging
 * semantic conventions (https://opentelemetry.io/docs/specs/semconv/messaging/kafka/) plus the CloudEvents
 * ones (https://opentelemetry.io/docs/specs/semconv/cloudevents/cloudevents-spans/).
 *
 * Cheap when tracing is off: with no SDK started the API hands out non-recording spans, and the attributes
 * (a dozen strings) are only built when the span records.
 */
import { context as otelContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Attributes, Context, Span, Tracer } from "@opentelemetry/api";
import type { CloudEvent } from "../events/cloudevent.ts";
import { extractTraceContext } from "./propagation.ts";
import type { ReadableHeaders } from "./propagation.ts";

/** Instrumentation scope of every span Eventloom itself creates. */
export const TRACER_NAME = "eventloom";

// Messaging attribute names are still "incubating" in @opentelemetry/semantic-conventions, whose docs ask
// users to copy them rather than import the unstable entry point.
export const ATTR = {
  messagingSystem: "messaging.system",
  destinationName: "messaging.destination.name",
  operationType: "messaging.operation.type",
  operationName: "messaging.operation.name",
  messageId: "messaging.message.id",
  kafkaMessageKey: "messaging.kafka.message.key",
  kafkaOffset: "messaging.kafka.offset",
  consumerGroup: "messaging.consumer.group.name",
  partitionId: "messaging.destination.partition.id",
  bodySize: "messaging.message.body.size",
  eventId: "cloudevents.event_id",
  eventSource: "cloudevents.event_source",
  eventType: "cloudevents.event_type",
  eventSubject: "cloudevents.event_subject",
  eventSpecVersion: "cloudevents.event_spec_version",
  errorType: "error.type",
} as const;

/** The tracer Eventloom's spans come from (the global provider's; a no-op one until tracing starts). */
export function eventloomTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

function eventAttributes(attrs: Attributes, event: CloudEvent | undefined): void {
  if (event === undefined) return;
  attrs[ATTR.eventId] = event.id;
  attrs[ATTR.eventSource] = event.source;
  attrs[ATTR.eventType] = event.type;
  attrs[ATTR.eventSpecVersion] = event.specversion;
  attrs[ATTR.messageId] = event.id;
  if (event.subject !== undefined) attrs[ATTR.eventSubject] = event.subject;
  attrs[ATTR.bodySize] = event.data?.length ?? 0;
}

function recordFailure(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  span.setAttribute(ATTR.errorType, e.name || "Error");
}

async function runInSpan<T>(
  span: Span,
  parent: Context,
  fn: (span: Span, ctx: Context) => T | Promise<T>,
): Promise<T> {
  const ctx = trace.setSpan(parent, span);
  try {
    return await otelContext.with(ctx, fn, undefined, span, ctx);
  } catch (err) {
    recordFailure(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export interface ProducerSpanOptions {
  /** Parent context (default: the active one). */
  parent?: Context;
  /** The Kafka partition, when the producer picks it itself. */
  partition?: number;
}

/**
 * Runs `fn` in a `send <topic>` PRODUCER span, active for the duration of `fn`, so that
 * `injectTraceContext(headers)` inside `fn` writes this span as the record's parent. `fn` also receives the
 * span's context, to pass explicitly where no context manager runs (tracing off: the sender's trace
 * context is then still forwarded). The span ends when `fn` settles; an error is recorded on it and rethrown.
 *
 * ```ts
 * await withProducerSpan(topic, event, () => producer.send(topic, [{ ...msg, headers: injectTraceContext(msg.headers) }]));
 * ```
 */
export function withProducerSpan<T>(
  topic: string,
  event: CloudEvent | undefined,
  fn: (span: Span, ctx: Context) => T | Promise<T>,
  opts: ProducerSpanOptions = {},
): Promise<T> {
  const parent = opts.parent ?? otelContext.active();
  const span = eventloomTracer().startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER }, parent);
  if (span.isRecording()) {
    const attrs: Attributes = {
      [ATTR.messagingSystem]: "kafka",
      [ATTR.destinationName]: topic,
      [ATTR.operationType]: "send",
      [ATTR.operationName]: "send",
    };
    const key = event?.extensions.partitionkey;
    if (key !== undefined) attrs[ATTR.kafkaMessageKey] = key;
    if (opts.partition !== undefined) attrs[ATTR.partitionId] = String(opts.partition);
    eventAttributes(attrs, event);
    span.setAttributes(attrs);
  }
  return runInSpan(span, parent, fn);
}

/** What a consumer span needs to know about the record (`IncomingRecord` fits). */
export interface ConsumedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | string | null;
  readonly headers?: ReadableHeaders;
}

export interface ConsumerSpanOptions {
  /** The consumer group the record was read in. */
  consumerGroup?: string;
}

/**
 * Runs `fn` in a `process <topic>` CONSUMER span whose parent is the record's `traceparent` (a new trace
 * when it has none), active for the duration of `fn`. `event` may be undefined for a record that did not
 * decode. `fn` receives the span and its context (pass it as `parent` to later producer spans: without a
 * running SDK there is no active context, and the record's trace is still forwarded that way). The span
 * ends when `fn` settles; an error is recorded on it and rethrown.
 */
export function withConsumerSpan<T>(
  record: ConsumedRecord,
  event: CloudEvent | undefined,
  fn: (span: Span, ctx: Context) => T | Promise<T>,
  opts: ConsumerSpanOptions = {},
): Promise<T> {
  const parent = extractTraceContext(record.headers);
  const span = eventloomTracer().startSpan(`process ${record.topic}`, { kind: SpanKind.CONSUMER }, parent);
  if (span.isRecording()) {
    const attrs: Attributes = {
      [ATTR.messagingSystem]: "kafka",
      [ATTR.destinationName]: record.topic,
      [ATTR.operationType]: "process",
      [ATTR.operationName]: "process",
      [ATTR.partitionId]: String(record.partition),
      [ATTR.kafkaOffset]: Number(record.offset),
    };
    if (record.key !== null)
      attrs[ATTR.kafkaMessageKey] = typeof record.key === "string" ? record.key : record.key.toString("utf8");
    if (opts.consumerGroup !== undefined) attrs[ATTR.consumerGroup] = opts.consumerGroup;
    eventAttributes(attrs, event);
    span.setAttributes(attrs);
  }
  return runInSpan(span, parent, fn);
}
