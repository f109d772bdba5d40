/**
 * The worker SDK against the real Kafka broker: a worker started with exactly the environment the
 * operator's Deployment gives its pod (deploymentFor), topics created as the operator creates them
 * (topicsFor), and the trust document the operator publishes (trustDocumentFor).
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploymentFor } from "../../operator/builders/deployment.ts";
import { trustDocumentFor } from "../../operator/builders/keys.ts";
import { topicsFor } from "../../operator/builders/topics.ts";
import { API_VERSION } from "../../operator/crds/types.ts";
import type { Orchestration, Step, Worker } from "../../operator/crds/types.ts";
import { encodeRecord } from "../../services/events/binding.ts";
import type { KafkaMessage } from "../../services/events/binding.ts";
import type { CloudEvent } from "../../services/events/cloudevent.ts";
import { generateSigningKey } from "../../services/events/keys.ts";
import type { SigningKey } from "../../services/events/keys.ts";
import { Signer, Verifier } from "../../services/events/signing.ts";
import { TrustStore } from "../../services/events/trust-store.ts";
import type { IncomingRecord, KafkaAdmin, KafkaProducer } from "../../services/kafka/client.ts";
import {
  defineWorker,
  readDeadLetterEnvelope,
  runWorker,
  silentLogger,
  stepSource,
  STEP_COMPLETED,
  STEP_FAILED,
} from "../../services/sdk/index.ts";
import type { RunningWorker, StepContext, StepHandlers } from "../../services/sdk/index.ts";
import { commandEvent, headerText, TopicTail, writeWorkerCredentials } from "../../services/sdk/testing.ts";
import { eventually, kafka, stack, uniqueName } from "./support/stack.ts";

const client = kafka("eventloom-sdk-test");
let admin: KafkaAdmin;
let producer: KafkaProducer;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  stack();
  admin = client.admin();
  producer = client.producer();
  await admin.connect();
  await producer.connect();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await producer.close();
  await admin.close();
});
/** Creates topics and waits until each has its leaders (createTopics returns before they are elected). */
async function createTopics(topics: Parameters<KafkaAdmin["createTopics"]>[0]): Promise<void> {
  await admin.createTopics(topics);
  await eventually("the topics to have leaders", async () => {
    for (const topic of topics) await admin.partitionOffsets(topic.name);
    return true;
  });
}

interface Fixture {
  namespace: string;
  orchestration: Orchestration;
  env: NodeJS.ProcessEnv;
  engineKey: SigningKey;
  workerKey: SigningKey;
  trust: TrustStore;
  topic(step: string): string;
  resultsTopic: string;
  deadLetterTopic: string;
  retryTopics: string[];
  /** A command for `step`, signed by the engine's key unless `signer` says otherwise. */
  command(
    step: string,
    data: unknown,
    opts?: { signer?: Signer; destination?: string; id?: string },
  ): { event: CloudEvent; message: KafkaMessage };
  send(step: string, message: KafkaMessage): Promise<{ offset: string }>;
  start(steps: Record<string, StepHandlers>): Promise<RunningWorker>;
}

const STEPS: Step[] = [
  { name: "charge", type: "com.example.payment.charge", compensation: "com.example.payment.refund" },
  { name: "ship", type: "com.example.shipping.ship", dependsOn: ["charge"] },
];

/** An Orchestration with its topics, keys, trust and a Worker bound to `charge`, unique to one test. */
async function fixture(): Promise<Fixture> {
  const namespace = uniqueName("sdk");
  const orchestration: Orchestration = {
    apiVersion: API_VERSION,
    kind: "Orchestration",
    metadata: { name: "checkout", namespace, uid: randomUUID() },
    spec: { mode: "orchestrated", steps: STEPS, topics: { partitions: 1 } },
  };
  const worker: Worker = {
    apiVersion: API_VERSION,
    kind: "Worker",
    metadata: { name: "payments", namespace, uid: randomUUID() },
    spec: { orchestration: "checkout", steps: ["charge"], image: "example/payments:test" },
  };
  const topics = topicsFor(orchestration);
  await createTopics(topics);
  cleanups.push(() => admin.deleteTopics(topics.map((t) => t.name)));

  const engineKey = generateSigningKey();
  const workerKey = generateSigningKey();
  const document = trustDocumentFor(orchestration, [
    { role: "engine", keys: [engineKey] },
    { role: "worker", worker: "payments", steps: ["charge"], keys: [workerKey] },
  ]);
  const dir = await mkdtemp(join(tmpdir(), "eventloom-sdk-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const paths = await writeWorkerCredentials(dir, workerKey, document);

  const container = deploymentFor(worker, orchestration, { kafkaBrokers: stack().kafkaBrokers }).spec
    ?.template.spec?.containers[0];
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    (container?.env ?? []).map((e) => [e.name, e.value ?? ""]),
  );
  env.EVENTLOOM_SIGNING_KEY_PATH = paths.signingKeyPath;
  env.EVENTLOOM_TRUST_PATH = paths.trustPath;

  const topicOf = (step: string) => topics.find((t) => t.purpose === "step" && t.step === step)?.name ?? "";
  const engine = new Signer(engineKey);
  const retryTopics = topics
    .filter((t) => t.purpose === "retry")
    .sort((a, b) => (a.delayMs ?? 0) - (b.delayMs ?? 0))
    .map((t) => t.name);
  return {
    namespace,
    orchestration,
    env,
    engineKey,
    workerKey,
    trust: TrustStore.fromDocument(document),
    topic: topicOf,
    resultsTopic: topics.find((t) => t.purpose === "results")?.name ?? "",
    deadLetterTopic: topics.find((t) => t.purpose === "dead-letter")?.name ?? "",
    retryTopics,
    command(step, data, opts = {}) {
      const unsigned = commandEvent({
        namespace,
        orchestration: "checkout",
        step,
        topic: opts.destination ?? topicOf(step),
        type: STEPS.find((s) => s.name === step)?.type ?? "",
        runId: `run-${randomUUID().slice(0, 8)}`,
        data,
        ...(opts.id !== undefined ? { id: opts.id } : {}),
      });
      const event = (opts.signer ?? engine).sign(unsigned);
      return { event, message: encodeRecord(event) };
    },
    async send(step, message) {
      const [meta] = await producer.send(topicOf(step), [message]);
      return { offset: meta?.offset ?? "" };
    },
    async start(steps) {
      const running = await runWorker(
        defineWorker({ steps, logger: silentLogger, tracing: false, handleSignals: false }),
        env,
      );
      cleanups.push(() => running.stop());
      await running.ready;
      return running;
    },
  };
}

async function tail(topic: string): Promise<TopicTail> {
  const t = await TopicTail.start(client, topic);
  cleanups.push(() => t.close());
  return t;
}

function resultFor(results: TopicTail, commandId: string): IncomingRecord | undefined {
  return results.records.find((r) => headerText(r, "ce_causationid") === commandId);
}

/** The record's event headers (`ce_*` and content-type), to compare byte for byte. */
function eventHeaderBytes(headers: Record<string, Buffer | string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !(name.startsWith("ce_") || name === "content-type")) continue;
    out[name] = Buffer.from(value).toString("hex");
  }
  return out;
}

describe("a worker built with the SDK", () => {
  it("handles a signed command and publishes a signed result the Orchestration's trust verifies", async () => {
    const f = await fixture();
    const results = await tail(f.resultsTopic);
    const seen: StepContext[] = [];
    await f.start({
      charge: {
        handle: (ctx) => {
          seen.push(ctx);
          const data = ctx.data as { input: { amount: number } };
          return { charged: data.input.amount, currency: "EUR" };
        },
      },
    });

    const { event, message } = f.command("charge", { input: { amount: 42 }, steps: {} });
    await f.send("charge", message);
    const record = await eventually("the result of the command", async () => resultFor(results, event.id));

    const verified = new Verifier(f.trust).verifyRecord(record);
    expect(verified.ok, verified.ok ? "" : verified.message).toBe(true);
    if (!verified.ok) return;
    expect(verified.keyid).toBe(f.workerKey.keyid);
    expect(verified.event.type).toBe(STEP_COMPLETED);
    expect(verified.event.source).toBe(stepSource(f.namespace, "checkout", "charge"));
    expect(verified.event.extensions).toMatchObject({
      causationid: event.id,
      runid: event.extensions.runid,
      partitionkey: event.extensions.runid,
      step: "charge",
      attempt: "1",
      action: "do",
    });
    expect(record.key?.toString()).toBe(event.extensions.runid);
    expect(JSON.parse(verified.event.data?.toString() ?? "null")).toEqual({ charged: 42, currency: "EUR" });

    expect(seen).toHaveLength(1);
    const ctx = seen[0] as StepContext;
    expect(ctx.data).toEqual({ input: { amount: 42 }, steps: {} });
    expect(ctx.runId).toBe(event.extensions.runid);
    expect(ctx.step).toBe("charge");
    expect(ctx.attempt).toBe(1);
    expect(ctx.action).toBe("do");
    expect(ctx.retryCount).toBe(0);
    expect(ctx.event.id).toBe(event.id);
    expect(ctx.signal.aborted).toBe(false);
  });

  it("retries a failing handler through the 1 s, 2 s and 4 s tiers, then dead-letters it with seed 001's envelope and publishes step.failed", async () => {
    const f = await fixture();
    const [tier1, tier2, tier3] = f.retryTopics;
    expect(f.retryTopics.map((t) => t.replace(/.*-retry-/, ""))).toEqual(["1000", "2000", "4000"]);
    const tails = await Promise.all([
      tail(tier1 ?? ""),
      tail(tier2 ?? ""),
      tail(tier3 ?? ""),
      tail(f.deadLetterTopic),
      tail(f.resultsTopic),
    ]);
    const [retry1, retry2, retry3, dlt, results] = tails as [
      TopicTail,
      TopicTail,
      TopicTail,
      TopicTail,
      TopicTail,
    ];
    class PaymentGatewayError extends Error {
      override readonly name = "PaymentGatewayError";
    }
    const calls: Array<{ at: number; retryCount: number }> = [];
    const worker = await f.start({
      charge: {
        handle: (ctx) => {
          if ((ctx.data as { input: { amount: number } }).input.amount !== 7) return { ok: true };
          calls.push({ at: Date.now(), retryCount: ctx.retryCount });
          throw new PaymentGatewayError(`gateway timeout for run ${ctx.runId}`);
        },
      },
    });

    const { event, message } = f.command("charge", { input: { amount: 7 } });
    const { offset } = await f.send("charge", message);
    // While the failing command waits in the retry tiers, the step topic goes on.
    await eventually("the first failure", async () => (calls.length > 0 ? true : undefined));
    const other = f.command("charge", { input: { amount: 8 } });
    await f.send("charge", other.message);
    await eventually("the other command's result", async () => resultFor(results, other.event.id));
    const otherDoneAt =
      results.receivedAt[
        results.records.findIndex((r) => headerText(r, "ce_causationid") === other.event.id)
      ] ?? Infinity;
    const deadLetter = await eventually("the dead-letter record", async () => dlt.records[0], {
      timeoutMs: 30_000,
    });
    const dltReceivedAt = dlt.receivedAt[0] as number;
    const failed = await eventually("the step.failed result", async () => resultFor(results, event.id));

    // One record per tier, each the original value and ce_* headers byte for byte, plus delivery headers.
    const sentHeaders = eventHeaderBytes(message.headers);
    for (const [i, retried] of [retry1, retry2, retry3].entries()) {
      expect(retried.records).toHaveLength(1);
      const record = retried.records[0] as IncomingRecord;
      expect(record.value?.equals(message.value ?? Buffer.alloc(0))).toBe(true);
      expect(record.key?.toString()).toBe(message.key);
      expect(eventHeaderBytes(record.headers)).toEqual(sentHeaders);
      expect(headerText(record, "eventloom-retry-count")).toBe(String(i + 1));
      expect(headerText(record, "eventloom-original-topic")).toBe(f.topic("charge"));
      expect(headerText(record, "eventloom-original-partition")).toBe("0");
      expect(headerText(record, "eventloom-original-offset")).toBe(offset);
      expect(JSON.parse(headerText(record, "eventloom-errors") ?? "[]")).toHaveLength(i + 1);
      expect(Number(headerText(record, "eventloom-retry-due"))).toBeGreaterThan(
        Number(headerText(record, "eventloom-first-failure")),
      );
    }

    // The dead-letter record: untouched event, seed 001's envelope.
    expect(dlt.records).toHaveLength(1);
    expect(deadLetter.value?.equals(message.value ?? Buffer.alloc(0))).toBe(true);
    expect(eventHeaderBytes(deadLetter.headers)).toEqual(sentHeaders);
    expect(
      new Verifier(f.trust, { requiredExtensions: ["partitionkey", "destination"] }).verifyRecord(deadLetter)
        .ok,
    ).toBe(true);
    const envelope = readDeadLetterEnvelope(deadLetter);
    expect(envelope).toMatchObject({
      originalMessage: JSON.stringify({ input: { amount: 7 } }),
      errorMessage: `gateway timeout for run ${event.extensions.runid}`,
      errorType: "PaymentGatewayError",
      retryCount: 3,
      failedAttempts: 4,
      originalTopic: f.topic("charge"),
      originalPartition: 0,
      originalOffset: Number(offset),
      consumerGroup: f.env.EVENTLOOM_CONSUMER_GROUP,
    });
    const first = Date.parse(envelope?.firstFailureTimestamp ?? "");
    const last = Date.parse(envelope?.lastFailureTimestamp ?? "");
    expect(last - first).toBeGreaterThanOrEqual(7_000);
    const firstCall = calls[0]?.at ?? 0;
    expect(dltReceivedAt - firstCall).toBeGreaterThanOrEqual(7_000);
    expect(calls.map((c) => c.retryCount)).toEqual([0, 1, 2, 3]);
    expect(otherDoneAt).toBeLessThan(dltReceivedAt);
    expect(JSON.parse(headerText(deadLetter, "eventloom-errors") ?? "[]")).toHaveLength(4);

    // The engine learns the step failed for good, from a result it can verify.
    const verified = new Verifier(f.trust).verifyRecord(failed);
    expect(verified.ok).toBe(true);
    if (!verified.ok) return;
    expect(verified.event.type).toBe(STEP_FAILED);
    expect(JSON.parse(verified.event.data?.toString() ?? "null")).toEqual({
      errorType: "PaymentGatewayError",
      errorMessage: `gateway timeout for run ${event.extensions.runid}`,
      attempts: 4,
    });
    expect(worker.stats).toMatchObject({ handled: 5, retried: 3, deadLettered: 1, failed: 1, completed: 1 });
    console.info(
      `DLT timeline: handler calls at +${calls.map((c) => c.at - firstCall).join(" ms, +")} ms; ` +
        `dead-letter record received at +${dltReceivedAt - firstCall} ms; envelope first→last failure ${last - first} ms; ` +
        `a command sent meanwhile completed at +${otherDoneAt - firstCall} ms`,
    );
  }, 45_000);

  it("dead-letters tampered, foreign-key, unsigned and misrouted commands as SignatureError without calling the handler or publishing a result", async () => {
    const f = await fixture();
    const dlt = await tail(f.deadLetterTopic);
    const results = await tail(f.resultsTopic);
    const handled: string[] = [];
    const worker = await f.start({ charge: { handle: (ctx) => void handled.push(ctx.event.id) } });

    const tampered = f.command("charge", { input: { amount: 1 } });
    const tamperedMessage = {
      ...tampered.message,
      value: Buffer.from(JSON.stringify({ input: { amount: 1_000_000 } })),
    };
    const foreign = f.command(
      "charge",
      { input: { amount: 2 } },
      { signer: new Signer(generateSigningKey()) },
    );
    const unsigned = f.command("charge", { input: { amount: 3 } });
    const strippedHeaders = { ...unsigned.message.headers };
    delete strippedHeaders.ce_dssematerial;
    delete strippedHeaders.ce_signedextattrs;
    const misrouted = f.command("charge", { input: { amount: 4 } }, { destination: f.topic("ship") });
    // Signed by the worker's own key: trusted, but not for commands.
    const selfSigned = f.command("charge", { input: { amount: 5 } }, { signer: new Signer(f.workerKey) });
    const sent = [
      { name: "tampered", event: tampered.event, message: tamperedMessage, reason: "bad-signature" },
      { name: "foreign key", event: foreign.event, message: foreign.message, reason: "unknown-key" },
      {
        name: "stripped",
        event: unsigned.event,
        message: { ...unsigned.message, headers: strippedHeaders },
        reason: "missing-signature",
      },
      { name: "misrouted", event: misrouted.event, message: misrouted.message, reason: "wrong-destination" },
      {
        name: "worker-signed",
        event: selfSigned.event,
        message: selfSigned.message,
        reason: "not-authorized",
      },
    ];
    for (const s of sent) await f.send("charge", s.message);
    // A valid command after them: once its result is there, the bad ones have all been decided.
    const sentinel = f.command("charge", { input: { amount: 6 } });
    await f.send("charge", sentinel.message);
    await eventually("the sentinel's result", async () => resultFor(results, sentinel.event.id));
    await eventually("five dead-letter records", async () =>
      dlt.records.length >= sent.length ? true : undefined,
    );

    expect(handled).toEqual([sentinel.event.id]);
    expect(results.records.map((r) => headerText(r, "ce_causationid"))).toEqual([sentinel.event.id]);
    expect(dlt.records).toHaveLength(sent.length);
    for (const [i, s] of sent.entries()) {
      const record = dlt.records[i] as IncomingRecord;
      expect(headerText(record, "eventloom-dlt-error-type"), s.name).toBe("SignatureError");
      expect(headerText(record, "eventloom-dlt-reason"), s.name).toBe(s.reason);
      expect(headerText(record, "ce_id"), s.name).toBe(s.event.id);
      expect(record.value?.equals(s.message.value ?? Buffer.alloc(0)), s.name).toBe(true);
      expect(eventHeaderBytes(record.headers), s.name).toEqual(eventHeaderBytes(s.message.headers));
      expect(readDeadLetterEnvelope(record), s.name).toMatchObject({
        retryCount: 0,
        failedAttempts: 1,
        originalTopic: f.topic("charge"),
      });
    }
    expect(worker.stats).toMatchObject({ rejected: sent.length, completed: 1, handled: 1 });
  });

  it("runs a command delivered twice only once, also when the second copy arrives after a restart", async () => {
    const f = await fixture();
    const results = await tail(f.resultsTopic);
    const handled: string[] = [];
    const handlers = { charge: { handle: (ctx: StepContext) => (handled.push(ctx.event.id), { ok: true }) } };
    const first = await f.start(handlers);

    const command = f.command("charge", { input: { amount: 9 } });
    await f.send("charge", command.message);
    await f.send("charge", command.message);
    const sentinel1 = f.command("charge", { input: { amount: 10 } });
    await f.send("charge", sentinel1.message);
    await eventually("the first sentinel's result", async () => resultFor(results, sentinel1.event.id));
    expect(handled.filter((id) => id === command.event.id)).toHaveLength(1);
    expect(first.stats.duplicates).toBe(1);
    await first.stop();

    // A new process: nothing in memory; the results topic tells it the command was handled.
    const second = await f.start(handlers);
    await f.send("charge", command.message);
    const sentinel2 = f.command("charge", { input: { amount: 11 } });
    await f.send("charge", sentinel2.message);
    await eventually("the second sentinel's result", async () => resultFor(results, sentinel2.event.id));
    expect(handled.filter((id) => id === command.event.id)).toHaveLength(1);
    expect(second.stats.duplicates).toBe(1);
    expect(results.records.filter((r) => headerText(r, "ce_causationid") === command.event.id)).toHaveLength(
      1,
    );
  });

  it("refuses to start, naming the topic, when its step topic does not exist", async () => {
    const f = await fixture();
    const missing = `${f.topic("charge")}-missing`;
    const env = { ...f.env, EVENTLOOM_TOPICS: missing };
    const definition = defineWorker({
      steps: { charge: { handle: () => null } },
      logger: silentLogger,
      tracing: false,
      handleSignals: false,
      topicWaitMs: 500,
    });
    await expect(runWorker(definition, env)).rejects.toThrow(new RegExp(`${missing}.*do not exist`));
  });

  it("finishes the handler in flight when stopped, publishes its result and commits it before closing", async () => {
    const f = await fixture();
    const results = await tail(f.resultsTopic);
    const events: string[] = [];
    let markStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const worker = await f.start({
      charge: {
        handle: async (ctx) => {
          markStarted();
          await gate;
          events.push(`handler done, aborted=${ctx.signal.aborted}`);
          return { ok: true };
        },
      },
    });
    const { event, message } = f.command("charge", { input: { amount: 13 } });
    await f.send("charge", message);
    await started;
    const stopped = worker.stop().then(() => events.push("stopped"));
    release();
    await stopped;

    expect(events).toEqual(["handler done, aborted=false", "stopped"]);
    await eventually("the result of the in-flight command", async () => resultFor(results, event.id));
    const committed = await admin.committedOffsets(f.env.EVENTLOOM_CONSUMER_GROUP ?? "", f.topic("charge"));
    expect(committed).toEqual([{ partition: 0, offset: 1n }]);
  });

  it("dead-letters a poison record as InvalidCloudEvent and goes on with the next record of the partition", async () => {
    const f = await fixture();
    const dlt = await tail(f.deadLetterTopic);
    const results = await tail(f.resultsTopic);
    await f.start({ charge: { handle: () => ({ ok: true }) } });

    const poison = {
      key: "run-poison",
      value: Buffer.from("\u0000not a cloud event"),
      headers: { ce_id: "1", "x-junk": "y" },
    };
    const { offset } = await producer
      .send(f.topic("charge"), [poison])
      .then(([m]) => ({ offset: m?.offset ?? "" }));
    const next = f.command("charge", { input: { amount: 12 } });
    await f.send("charge", next.message);

    await eventually("the next record's result", async () => resultFor(results, next.event.id));
    const dead = await eventually("the poison record in the dead-letter topic", async () => dlt.records[0]);
    expect(headerText(dead, "eventloom-dlt-error-type")).toBe("InvalidCloudEvent");
    expect(dead.value?.equals(poison.value)).toBe(true);
    expect(headerText(dead, "x-junk")).toBe("y");
    expect(readDeadLetterEnvelope(dead)).toMatchObject({
      originalTopic: f.topic("charge"),
      originalOffset: Number(offset),
      retryCount: 0,
    });
  });
});
