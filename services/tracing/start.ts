/**
 * Starts OpenTelemetry tracing for one process, configured by the standard `OTEL_*` variables.
 */
import { startNodeSdk } from "@opentelemetry/sdk-node";
import type { SpanProcessor } from "@opentelemetry/sdk-trace";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

/** A started (or deliberately not started) tracing setup. */
export interface Tracing {
  /** False when no exporter was configured: spans are then non-recording and nearly free. */
  readonly enabled: boolean;
  /** Flushes pending spans and stops exporting. Safe to call more than once. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** `service.name` of the resource (`OTEL_SERVICE_NAME` wins when set). */
  serviceName: string;
  /**
   * Span processors to use instead of the exporter named by `OTEL_TRACES_EXPORTER` (tests pass a
   * `SimpleSpanProcessor` over an `InMemorySpanExporter`). Tracing is enabled whenever they are given.
   */
  spanProcessors?: SpanProcessor[];
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Why tracing stays off, or undefined when an exporter is configured. Off when `OTEL_SDK_DISABLED=true`,
 * when `OTEL_TRACES_EXPORTER` is `none`, or when it is OTLP (the default) and no endpoint is set: a
 * worker without a collector must not spend time building spans or retrying exports to localhost.
 */
export function tracingDisabledReason(env: NodeJS.ProcessEnv): string | undefined {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return "OTEL_SDK_DISABLED=true";
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes("none")) return "OTEL_TRACES_EXPORTER=none";
  const onlyOtlp = exporters.length === 0 || exporters.every((e) => e === "otlp");
  const endpoint = (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "").trim();
  if (onlyOtlp && endpoint === "") return "no OTEL_EXPORTER_OTLP_ENDPOINT";
  return undefined;
}

const OFF: Tracing = { enabled: false, shutdown: async () => {} };

/**
 * Starts the OpenTelemetry Node SDK: OTLP export (protocol from `OTEL_EXPORTER_OTLP_PROTOCOL`, default
 * `http/protobuf`; endpoint, headers, sampler and batch settings from the other `OTEL_*` variables),
 * W3C trace-context propagation, async-hooks context. Metrics and logs are not set up here. Call once per
 * process, before the first span; the OpenTelemetry API keeps the first provider registered.
 */
export function startTracing(opts: TracingOptions): Tracing {
  const env = opts.env ?? process.env;
  if (opts.spanProcessors === undefined && tracingDisabledReason(env) !== undefined) return OFF;
  const sdk = startNodeSdk({
    resourceAttributes: { "service.name": env.OTEL_SERVICE_NAME?.trim() || opts.serviceName },
    propagators: [new W3CTraceContextPropagator()],
    metricReaders: [],
    logRecordProcessors: [],
    logLevel: env.OTEL_LOG_LEVEL ?? "warn",
    ...(opts.spanProcessors !== undefined ? { spanProcessors: opts.spanProcessors } : {}),
  });
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown: () => (stopped ??= sdk.shutdown()),
  };
}
