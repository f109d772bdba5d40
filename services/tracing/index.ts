/**
 * Eventloom tracing: OpenTelemetry setup, W3C trace context in Kafka headers, and messaging spans.
 * See docs/tracing.md.
 */
export { startTracing, tracingDisabledReason } from "./start.ts";
export type { Tracing, TracingOptions } from "./start.ts";
export {
  extractTraceContext,
  injectTraceContext,
  remoteSpanContext,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from "./propagation.ts";
export type { ReadableHeaders, TraceHeaderValue, WritableHeaders } from "./propagation.ts";
export { ATTR, eventloomTracer, TRACER_NAME, withConsumerSpan, withProducerSpan } from "./spans.ts";
export type { ConsumedRecord, ConsumerSpanOptions, ProducerSpanOptions } from "./spans.ts";
