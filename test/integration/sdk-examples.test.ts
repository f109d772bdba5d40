/**
 * An example worker run the way a pod runs it: `tsx services/examples/order-saga/payment-service.ts` as its
 * own process, with the environment the operator's Deployment gives the Worker of
 * examples/order-saga/workers.yaml, against the Orchestration of examples/order-saga/orchestration.yaml,
 * on the real Kafka broker. Ends with SIGTERM: the process must commit and exit cleanly.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploymentFor } from "../../operator/builders/deployment.ts";
import { trustDocumentFor } from "../../operator/builders/keys.ts";
import { topicsFor } from "../../operator/builders/topics.ts";
import type { Orchestration, Worker } from "../../operator/crds/types.ts";
import { encodeRecord } from "../../services/events/binding.ts";
import { generateSigningKey } from "../../services/events/keys.ts";
import { Signer, Verifier } from "../../services/events/signing.ts";
import { TrustStore } from "../../services/events/trust-store.ts";
import type { KafkaAdmin, KafkaProducer } from "../../services/kafka/client.ts";
import { readDeadLetterEnvelope } from "../../services/sdk/index.ts";
import { commandEvent, headerText, TopicTail, writeWorkerCredentials } from "../../services/sdk/testing.ts";
import { eventually, kafka, stack, uniqueName } from "./support/stack.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const client = kafka("eventloom-sdk-examples-test");
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

async function manifests<T>(file: string): Promise<T[]> {
  return parseAllDocuments(await readFile(join(root, file), "utf8")).map((d) => d.toJS() as T);
}

describe("the order saga's payment-service example", () => {
  it("charges once, declines above its limit for good, and commits and exits on SIGTERM", async () => {
    const namespace = uniqueName("examples");
    const [orchestration] = await manifests<Orchestration>("examples/order-saga/orchestration.yaml");
    const worker = (await manifests<Worker>("examples/order-saga/workers.yaml")).find(
      (w) => w.metadata.name === "payment-service",
    );
    if (!orchestration || !worker) throw new Error("example manifests not found");
    orchestration.metadata = { ...orchestration.metadata, namespace, uid: randomUUID() };
    worker.metadata = { ...worker.metadata, namespace, uid: randomUUID() };

    const topics = topicsFor(orchestration);
    await createTopics(topics);
    cleanups.push(() => admin.deleteTopics(topics.map((t) => t.name)));
    const stepTopic = topics.find((t) => t.step === "process-payment")?.name ?? "";
    const resultsTopic = topics.find((t) => t.purpose === "results")?.name ?? "";
    const deadLetterTopic = topics.find((t) => t.purpose === "dead-letter")?.name ?? "";

    const engineKey = generateSigningKey();
    const workerKey = generateSigningKey();
    const document = trustDocumentFor(orchestration, [
      { role: "engine", keys: [engineKey] },
      { role: "worker", worker: "payment-service", steps: ["process-payment"], keys: [workerKey] },
    ]);
    const dir = await mkdtemp(join(tmpdir(), "eventloom-example-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const paths = await writeWorkerCredentials(dir, workerKey, document);
    const container = deploymentFor(worker, orchestration, { kafkaBrokers: stack().kafkaBrokers }).spec
      ?.template.spec?.containers[0];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? ""])),
      EVENTLOOM_SIGNING_KEY_PATH: paths.signingKeyPath,
      EVENTLOOM_TRUST_PATH: paths.trustPath,
      EXAMPLE_LEDGER_DIR: join(dir, "ledger"),
      PAYMENT_LIMIT: "500",
      LOG_LEVEL: "warn",
    };
    expect(env.EVENTLOOM_CONCURRENCY).toBe("8");

    const results = await TopicTail.start(client, resultsTopic);
    cleanups.push(() => results.close());
    const dlt = await TopicTail.start(client, deadLetterTopic);
    cleanups.push(() => dlt.close());

    let output = "";
    const child: ChildProcess = spawn(
      join(root, "node_modules/.bin/tsx"),
      ["services/examples/order-saga/payment-service.ts"],
      {
        cwd: root,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });

    const engine = new Signer(engineKey);
    const command = (amount: number) => {
      const event = engine.sign(
        commandEvent({
          namespace,
          orchestration: "order-saga",
          step: "process-payment",
          topic: stepTopic,
          type: "com.example.payment.process",
          runId: `run-${randomUUID().slice(0, 8)}`,
          data: { input: { orderId: `ORD-${amount}`, productId: "P-1", quantity: 1, amount }, steps: {} },
        }),
      );
      return { event, message: encodeRecord(event) };
    };
    const paid = command(120);
    const declined = command(900);
    await producer.send(stepTopic, [paid.message, paid.message, declined.message]);

    const resultOf = (id: string) => results.records.filter((r) => headerText(r, "ce_causationid") === id);
    await eventually(
      `both results (worker output so far: ${output.slice(-500)})`,
      async () =>
        resultOf(paid.event.id).length > 0 && resultOf(declined.event.id).length > 0 ? true : undefined,
      { timeoutMs: 40_000 },
    );
    const verifier = new Verifier(TrustStore.fromDocument(document));
    const ok = verifier.verifyRecord(resultOf(paid.event.id)[0] ?? results.records[0]!);
    const failed = verifier.verifyRecord(resultOf(declined.event.id)[0] ?? results.records[0]!);
    expect(ok.ok && ok.event.type).toBe("io.eventloom.step.completed");
    expect(ok.ok && JSON.parse(ok.event.data?.toString() ?? "")).toMatchObject({
      orderId: "ORD-120",
      amount: 120,
    });
    expect(failed.ok && failed.event.type).toBe("io.eventloom.step.failed");
    expect(failed.ok && JSON.parse(failed.event.data?.toString() ?? "")).toEqual({
      errorType: "PaymentDeclined",
      errorMessage: "payment of 900 for order ORD-900 exceeds the limit of 500",
      attempts: 1,
    });
    // A decline is not retried: straight to the dead-letter topic.
    const dead = await eventually(
      "the declined command in the dead-letter topic",
      async () => dlt.records[0],
    );
    expect(readDeadLetterEnvelope(dead)).toMatchObject({
      errorType: "PaymentDeclined",
      retryCount: 0,
      failedAttempts: 1,
    });

    // SIGTERM: the process stops, commits what it processed, and exits 0.
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const ends = await admin.partitionOffsets(stepTopic);
    const committed = await admin.committedOffsets(env.EVENTLOOM_CONSUMER_GROUP ?? "", stepTopic);
    for (const end of ends) {
      const c = committed.find((p) => p.partition === end.partition)?.offset ?? end.logStart;
      expect(c, `partition ${end.partition}`).toBe(end.logEnd);
    }
    // Charged once although the command came twice; nothing charged for the declined one.
    const ledger = (await readFile(join(dir, "ledger", "payment-service.jsonl"), "utf8")).trim().split("\n");
    expect(ledger.map((line) => (JSON.parse(line) as { kind: string }).kind)).toEqual(["payment.charged"]);
    expect(resultOf(paid.event.id)).toHaveLength(1);
  }, 60_000);
});
