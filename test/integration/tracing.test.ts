/**
 * One trace across a real Kafka hop: the producer's `send <step topic>` span, the worker's
 * `process <step topic>` span parented on the record's traceparent, the handler's span inside it, and the
 * `send <results topic>` span of the result, all exported through the real OpenTelemetry SDK (started by
 * `startTracing`) to an in-memory exporter.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploymentFor } from "../../operator/builders/deployment.ts";
import { trustDocumentFor } from "../../operator/builders/keys.ts";
import { topicsFor } from "../../operator/builders/topics.ts";
import { API_VERSION } from "../../operator/crds/types.ts";
import type { Orchestration, Worker } from "../../operator/crds/types.ts";
import { encodeRecord } from "../../services/events/binding.ts";
import { generateSigningKey } from "../../services/events/keys.ts";
import { Signer } from "../../services/events/signing.ts";
import type { KafkaAdmin, KafkaProducer } from "../../services/kafka/client.ts";
import { defineWorker, runWorker, silentLogger } from "../../services/sdk/index.ts";
import type { RunningWorker } from "../../services/sdk/index.ts";
import { commandEvent, headerText, TopicTail, writeWorkerCredentials } from "../../services/sdk/testing.ts";
import {
  injectTraceContext,
  remoteSpanContext,
  startTracing,
  withProducerSpan,
} from "../../services/tracing/index.ts";
import type { Tracing } from "../../services/tracing/index.ts";
import { eventually, kafka, stack, uniqueName } from "./support/stack.ts";

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
const client = kafka("eventloom-tracing-test");
let admin: KafkaAdmin;
let producer: KafkaProducer;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  stack();
  tracing = startTracing({
    serviceName: "eventloom-tracing-test",
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  admin = client.admin();
  producer = client.producer();
  await admin.connect();
  await producer.connect();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await producer.close();
  await admin.close();
  await tracing.shutdown();
});
/** Creates topics and waits until each has its leaders (createTopics returns before they are elected). */
async function createTopics(topics: Parameters<KafkaAdmin["createTopics"]>[0]): Promise<void> {
  await admin.createTopics(topics);
  await eventually("the topics to have leaders", async () => {
    for (const topic of topics) await admin.partitionOffsets(topic.name);
    return true;
  });
}

function named(name: string, kind: SpanKind): ReadableSpan | undefined {
  return exporter.getFinishedSpans().find((s) => s.name === name && s.kind === kind);
}

describe("tracing across Kafka", () => {
  it("links the producer's send span, the worker's process and handler spans and the result's send span in one trace", async () => {
    expect(tracing.enabled).toBe(true);
    const namespace = uniqueName("trace");
    const orchestration: Orchestration = {
      apiVersion: API_VERSION,
      kind: "Orchestration",
      metadata: { name: "signup", namespace, uid: randomUUID() },
      spec: {
        steps: [{ name: "create-realm", type: "com.example.tenant.createRealm" }],
        topics: { partitions: 1 },
      },
    };
    const worker: Worker = {
      apiVersion: API_VERSION,
      kind: "Worker",
      metadata: { name: "realm-service", namespace, uid: randomUUID() },
      spec: { orchestration: "signup", steps: ["create-realm"], image: "example/realm:test" },
    };
    const topics = topicsFor(orchestration);
    await createTopics(topics);
    cleanups.push(() => admin.deleteTopics(topics.map((t) => t.name)));
    const stepTopic = topics.find((t) => t.purpose === "step")?.name ?? "";
    const resultsTopic = topics.find((t) => t.purpose === "results")?.name ?? "";

    const engineKey = generateSigningKey();
    const workerKey = generateSigningKey();
    const document = trustDocumentFor(orchestration, [
      { role: "engine", keys: [engineKey] },
      { role: "worker", worker: "realm-service", steps: ["create-realm"], keys: [workerKey] },
    ]);
    const dir = await mkdtemp(join(tmpdir(), "eventloom-tracing-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const paths = await writeWorkerCredentials(dir, workerKey, document);
    const container = deploymentFor(worker, orchestration, { kafkaBrokers: stack().kafkaBrokers }).spec
      ?.template.spec?.containers[0];
    const env: NodeJS.ProcessEnv = Object.fromEntries(
      (container?.env ?? []).map((e) => [e.name, e.value ?? ""]),
    );
    env.EVENTLOOM_SIGNING_KEY_PATH = paths.signingKeyPath;
    env.EVENTLOOM_TRUST_PATH = paths.trustPath;

    const results = await TopicTail.start(client, resultsTopic);
    cleanups.push(() => results.close());
    const running: RunningWorker = await runWorker(
      defineWorker({
        steps: {
          "create-realm": {
            handle: ({ data }) => ({ realm: (data as { input: { realmName: string } }).input.realmName }),
          },
        },
        logger: silentLogger,
        tracing: false, // this process's SDK is already started above
        handleSignals: false,
      }),
      env,
    );
    cleanups.push(() => running.stop());
    await running.ready;

    const event = new Signer(engineKey).sign(
      commandEvent({
        namespace,
        orchestration: "signup",
        step: "create-realm",
        topic: stepTopic,
        type: "com.example.tenant.createRealm",
        runId: `run-${randomUUID().slice(0, 8)}`,
        data: { input: { tenantId: "t1", realmName: "acme" } },
      }),
    );
    const message = encodeRecord(event);
    await withProducerSpan(stepTopic, event, () =>
      producer.send(stepTopic, [
        { key: message.key, value: message.value, headers: injectTraceContext({ ...message.headers }) },
      ]),
    );

    const result = await eventually("the result record", async () =>
      results.records.find((r) => headerText(r, "ce_causationid") === event.id),
    );
    const send = await eventually("the producer span", async () =>
      named(`send ${stepTopic}`, SpanKind.PRODUCER),
    );
    const process = await eventually("the consumer span", async () =>
      named(`process ${stepTopic}`, SpanKind.CONSUMER),
    );
    const handler = await eventually("the handler span", async () =>
      named("handle create-realm", SpanKind.INTERNAL),
    );
    const sendResult = await eventually("the result's producer span", async () =>
      named(`send ${resultsTopic}`, SpanKind.PRODUCER),
    );

    const traceId = send.spanContext().traceId;
    for (const span of [process, handler, sendResult])
      expect(span.spanContext().traceId, span.name).toBe(traceId);
    expect(process.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(process.parentSpanContext?.isRemote).toBe(true);
    expect(handler.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    expect(sendResult.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    // The result record carries the result's send span as its parent for the next hop (the engine).
    expect(remoteSpanContext(result.headers)).toMatchObject({
      traceId,
      spanId: sendResult.spanContext().spanId,
    });

    expect(send.attributes).toMatchObject({
      "messaging.system": "kafka",
      "messaging.destination.name": stepTopic,
      "messaging.operation.type": "send",
      "messaging.kafka.message.key": event.extensions.runid,
      "cloudevents.event_id": event.id,
      "cloudevents.event_source": event.source,
      "cloudevents.event_type": "com.example.tenant.createRealm",
      "cloudevents.event_subject": "create-realm",
    });
    expect(process.attributes).toMatchObject({
      "messaging.system": "kafka",
      "messaging.destination.name": stepTopic,
      "messaging.operation.type": "process",
      "messaging.kafka.message.key": event.extensions.runid,
      "messaging.kafka.offset": 0,
      "messaging.destination.partition.id": "0",
      "messaging.consumer.group.name": env.EVENTLOOM_CONSUMER_GROUP,
      "cloudevents.event_id": event.id,
      "cloudevents.event_type": "com.example.tenant.createRealm",
    });
    expect(sendResult.attributes).toMatchObject({
      "messaging.destination.name": resultsTopic,
      "cloudevents.event_type": "io.eventloom.step.completed",
      "cloudevents.event_source": `/eventloom/${namespace}/signup/create-realm`,
    });
  });
});
