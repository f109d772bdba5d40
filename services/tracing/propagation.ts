/**
 * W3C trace context in Kafka headers (`traceparent`, `tracestate`).
 *
 * The headers are plain (not `ce_`-prefixed) and never signed: they change at every hop
 * (docs/signing.md). Propagation uses the W3C propagator directly rather than the global one, so a
 * service that does not record spans still forwards its caller's trace context, and extraction costs
 * one regex when no SDK is running.
 */
import { context as otelContext, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import type { Context, SpanContext, TextMapGetter, TextMapSetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

/** Header names of W3C trace context on Kafka records. */
export const TRACEPARENT_HEADER = "traceparent";
export const TRACESTATE_HEADER = "tracestate";

/** A header value as Kafka clients hand it over: bytes, a string, or a list when the name repeats. */
export type TraceHeaderValue = Buffer | string | ReadonlyArray<Buffer | string> | undefined;
/** Headers to read trace context from (kafkajs headers and `IncomingRecord.headers` both fit). */
export type ReadableHeaders = Readonly<Record<string, TraceHeaderValue>>;
/** Headers to write trace context into (`RecordHeaders` and plain string maps both fit). */
export type WritableHeaders = Record<string, Buffer | string | undefined>;

const propagator = new W3CTraceContextPropagator();

function headerText(value: TraceHeaderValue): string | undefined {
  if (value === undefined) return undefined;
  // Repeated headers: the last one wins, as in services/kafka/client.ts.
  const one = typeof value === "string" || Buffer.isBuffer(value) ? value : value[value.length - 1];
  if (one === undefined) return undefined;
  return typeof one === "string" ? one : one.toString("latin1");
}

const getter: TextMapGetter<ReadableHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    // Plain header first; `ce_traceparent` (the CloudEvents distributed-tracing extension in binary
    // mode) is accepted from producers that use it.
    return headerText(carrier[key]) ?? headerText(carrier[`ce_${key}`]);
  },
};

const setter: TextMapSetter<WritableHeaders> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/**
 * Writes `traceparent` (and `tracestate` when there is one) of the span in `ctx` (default: the active
 * context) into `headers`, replacing any previous values, and returns `headers`. Writes nothing when
 * there is no valid span context, e.g. tracing is off and nothing upstream sent a trace.
 */
export function injectTraceContext<H extends WritableHeaders>(
  headers: H,
  ctx: Context = otelContext.active(),
): H {
  delete headers[TRACEPARENT_HEADER];
  delete headers[TRACESTATE_HEADER];
  propagator.inject(ctx, headers, setter);
  return headers;
}

/**
 * Reads W3C trace context from Kafka headers (Buffer or string values) and returns a context whose
 * remote parent is the sender's span, on top of `base` (default: the root context, because a consumed
 * record starts from what the record says, not from whatever the poll loop happened to have active).
 * Returns `base` unchanged when the headers carry no valid `traceparent`.
 */
export function extractTraceContext(
  headers: ReadableHeaders | undefined,
  base: Context = ROOT_CONTEXT,
): Context {
  if (headers === undefined) return base;
  return propagator.extract(base, headers, getter);
}

/** The sender's span context carried by the headers, or undefined when they carry none. */
export function remoteSpanContext(headers: ReadableHeaders | undefined): SpanContext | undefined {
  return trace.getSpanContext(extractTraceContext(headers));
}
