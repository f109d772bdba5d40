import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { CloudEvent } from "../events/cloudevent.ts";
import { extractTraceContext, injectTraceContext, remoteSpanContext } from "./propagation.ts";
import { withConsumerSpan, withProducerSpan } from "./spans.ts";
import { startTracing, tracingDisabledReason } from "./start.ts";
import type { Tracing } from "./start.ts";

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const event: CloudEvent = {
  id: "e-1",
  source: "/eventloom/shop/orders",
  specversion: "1.0",
  type: "com.example.order.create",
  subject: "create-order",
  extensions: { partitionkey: "run-1" },
  data: Buffer.from("{}"),
};

describe("tracingDisabledReason", () => {
  it.each([
    [{}, "no OTEL_EXPORTER_OTLP_ENDPOINT"],
    [
      { OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" },
      "OTEL_TRACES_EXPORTER=none",
    ],
    [{ OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }, "OTEL_SDK_DISABLED=true"],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }, undefined],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" }, undefined],
    [{ OTEL_TRACES_EXPORTER: "console" }, undefined],
  ])("for %j is %s", (env, reason) => {
    expect(tracingDisabledReason(env)).toBe(reason);
  });

  it("starts nothing when disabled", async () => {
    const off = startTracing({ serviceName: "x", env: {} });
    expect(off.enabled).toBe(false);
    await off.shutdown();
  });
});

describe("propagation without an SDK", () => {
  it.each([
    ["Buffer", { traceparent: Buffer.from(TRACEPARENT) }],
    ["string", { traceparent: TRACEPARENT }],
    ["repeated header (last wins)", { traceparent: [Buffer.from("garbage"), Buffer.from(TRACEPARENT)] }],
    ["ce_ header", { ce_traceparent: Buffer.from(TRACEPARENT) }],
  ])("reads a %s traceparent", (_what, headers) => {
    expect(remoteSpanContext(headers)).toMatchObject({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      isRemote: true,
    });
  });

  it.each([
    ["absent", {}],
    ["malformed", { traceparent: "00-zz-yy-01" }],
    ["undefined headers", undefined],
  ])("reads nothing when it is %s", (_what, headers) => {
    expect(remoteSpanContext(headers)).toBeUndefined();
  });

  it("forwards the caller's trace context and tracestate, replacing stale values", () => {
    const ctx = extractTraceContext({ traceparent: TRACEPARENT, tracestate: "vendor=1" });
    const headers = injectTraceContext<Record<string, string | undefined>>(
      { ce_id: "e-1", traceparent: "stale", tracestate: "stale" },
      ctx,
    );
    expect(headers).toEqual({ ce_id: "e-1", traceparent: TRACEPARENT, tracestate: "vendor=1" });
  });

  it("writes nothing when there is no trace, and removes stale headers", () => {
    expect(injectTraceContext({ traceparent: "stale" })).toEqual({});
  });

  it("passes a record's trace through a consumer and producer span when no SDK records", async () => {
    const forwarded: Record<string, string | Buffer | undefined> = await withConsumerSpan(
      { topic: "t", partition: 0, offset: "1", key: null, headers: { traceparent: TRACEPARENT } },
      event,
      (_s, ctx) =>
        withProducerSpan(
          "u",
          event,
          (_p, inner) => injectTraceContext<Record<string, string | Buffer | undefined>>({}, inner),
          { parent: ctx },
        ),
    );
    expect(forwarded.traceparent).toBe(TRACEPARENT);
  });
});

describe("spans with the SDK started", () => {
  const exporter = new InMemorySpanExporter();
  const processor = new SimpleSpanProcessor({ exporter });
  let tracing: Tracing;
  beforeAll(() => {
    tracing = startTracing({ serviceName: "unit", spanProcessors: [processor] });
  });
  // The processor exports asynchronously.
  async function finished() {
    await processor.forceFlush();
    return exporter.getFinishedSpans();
  }
  afterAll(async () => {
    await tracing.shutdown();
  });
  beforeEach(() => exporter.reset());

  it("names and attributes a producer span, and makes it the parent written into the headers", async () => {
    const headers = await withProducerSpan(
      "eventloom.shop.orders.create-order",
      event,
      () => injectTraceContext({}),
      { partition: 2 },
    );
    const [span] = await finished();
    expect(span?.name).toBe("send eventloom.shop.orders.create-order");
    expect(span?.kind).toBe(SpanKind.PRODUCER);
    expect(span?.attributes).toEqual({
      "messaging.system": "kafka",
      "messaging.destination.name": "eventloom.shop.orders.create-order",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.kafka.message.key": "run-1",
      "messaging.destination.partition.id": "2",
      "messaging.message.id": "e-1",
      "messaging.message.body.size": 2,
      "cloudevents.event_id": "e-1",
      "cloudevents.event_source": "/eventloom/shop/orders",
      "cloudevents.event_type": "com.example.order.create",
      "cloudevents.event_subject": "create-order",
      "cloudevents.event_spec_version": "1.0",
    });
    expect(remoteSpanContext(headers)?.spanId).toBe(span?.spanContext().spanId);
  });

  it("parents a consumer span on the record's traceparent and records a failure", async () => {
    const record = {
      topic: "t",
      partition: 1,
      offset: "42",
      key: Buffer.from("run-1"),
      headers: { traceparent: Buffer.from(TRACEPARENT) },
    };
    await expect(
      withConsumerSpan(
        record,
        event,
        () => {
          expect(trace.getActiveSpan()?.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
          throw new TypeError("boom");
        },
        { consumerGroup: "g" },
      ),
    ).rejects.toThrow("boom");
    const [span] = await finished();
    expect(span?.name).toBe("process t");
    expect(span?.kind).toBe(SpanKind.CONSUMER);
    expect(span?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toMatchObject({
      "messaging.operation.type": "process",
      "messaging.kafka.offset": 42,
      "messaging.kafka.message.key": "run-1",
      "messaging.consumer.group.name": "g",
      "messaging.destination.partition.id": "1",
      "error.type": "TypeError",
    });
  });

  it("starts a new trace for a record without trace context, not the caller's", async () => {
    await context.with(extractTraceContext({ traceparent: TRACEPARENT }), () =>
      withConsumerSpan({ topic: "t", partition: 0, offset: "0", key: null }, undefined, () => undefined),
    );
    const [span] = await finished();
    expect(span?.name).toBe("process t");
    expect(span?.spanContext().traceId).not.toBe("0af7651916cd43dd8448eb211c80319c");
    expect(span?.parentSpanContext).toBeUndefined();
  });
});
