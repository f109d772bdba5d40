/**
 * The gateway against the real stack: the real kube-apiserver holds the Orchestrations, their signing-key
 * Secrets and trust ConfigMaps (built with the operator's builders; the operator itself is not running,
 * so the test creates the Kafka topics too), the real Kafka broker takes the writes, and requests go over
 * a real socket. Checked: a 202'd event is on its topic and verifies against the Orchestration's trust,
 * both content modes, fan-out in a choreography, an idempotent retry writes one record, a gateway whose
 * Kafka is unreachable answers 503 with Retry-After, and the dead-letter API lists, filters, shows,
 * replays (signature intact, replay counter raised, refused at maxReplays) and purges a real DLT topic
 * holding records in the worker SDK's format.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import * as k8s from "@kubernetes/client-node";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import {
  orchestrationSource,
  signingKeySecretFor,
  trustConfigMapFor,
  TRUST_FILE,
} from "../../operator/builders/keys.ts";
import type { Orchestration } from "../../operator/crds/types.ts";
import { GROUP, ORCHESTRATION_PLURAL, VERSION } from "../../operator/crds/types.ts";
import { encodeRecord } from "../../services/events/binding.ts";
import { generateSigningKey } from "../../services/events/keys.ts";
import type { SigningKey } from "../../services/events/keys.ts";
import { Signer, Verifier } from "../../services/events/signing.ts";
import { deadLetterTopic, resultsTopic, stepTopic } from "../../services/events/topics.ts";
import { TrustStore } from "../../services/events/trust-store.ts";
import { KafkaClient } from "../../services/kafka/client.ts";
import type { IncomingRecord, KafkaAdmin } from "../../services/kafka/client.ts";
import { OrchestrationRegistry } from "../../services/runtime/registry.ts";
import {
  deadLetterEnvelope,
  deadLetterHeaders,
  firstDelivery,
  afterFailure,
} from "../../services/sdk/delivery.ts";
import { build } from "../../services/gateway/app.ts";
import { TokenTable } from "../../services/gateway/auth.ts";
import { KafkaBackend } from "../../services/gateway/kafka-backend.ts";
import { RegistryDirectory } from "../../services/gateway/registry-directory.ts";
import { eventually, kafka, kubeClient, kubeConfig, kubectl, stack, uniqueName } from "./support/stack.ts";

const ns = uniqueName("gw");
const TOKEN = `gw-test-${"0123456789abcdef".repeat(3)}`;
const kc = kubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const core = kc.makeApiClient(k8s.CoreV1Api);

const ORDERS: Orchestration = {
  apiVersion: "eventloom.io/v1alpha1",
  kind: "Orchestration",
  metadata: { name: "orders" },
  spec: {
    mode: "orchestrated",
    steps: [
      { name: "create-order", type: "com.example.order.create", compensation: "com.example.order.cancel" },
      { name: "take-payment", type: "com.example.payment.take", dependsOn: ["create-order"] },
    ],
    inputSchema: { type: "object", required: ["orderId"], properties: { orderId: { type: "string" } } },
    topics: { partitions: 1 },
    deadLetter: { enabled: true, maxReplays: 1 },
  },
};

const SAGA: Orchestration = {
  apiVersion: "eventloom.io/v1alpha1",
  kind: "Orchestration",
  metadata: { name: "saga" },
  spec: {
    mode: "choreographed",
    steps: [
      {
        name: "reserve-stock",
        subscribes: ["com.example.order.placed"],
        emits: ["com.example.stock.reserved"],
      },
      { name: "notify", subscribes: ["com.example.order.placed"] },
      { name: "take-payment", subscribes: ["com.example.stock.reserved"] },
    ],
    topics: { partitions: 1 },
  },
};

const ref = (o: Orchestration) => ({ namespace: ns, orchestration: o.metadata.name ?? "" });
const TOPICS = {
  ordersResults: resultsTopic(ref(ORDERS)),
  ordersPayment: stepTopic(ref(ORDERS), "take-payment"),
  ordersCreate: stepTopic(ref(ORDERS), "create-order"),
  ordersDlt: deadLetterTopic(ref(ORDERS)),
  sagaReserve: stepTopic(ref(SAGA), "reserve-stock"),
  sagaNotify: stepTopic(ref(SAGA), "notify"),
  sagaPayment: stepTopic(ref(SAGA), "take-payment"),
  sagaResults: resultsTopic(ref(SAGA)),
  sagaDlt: deadLetterTopic(ref(SAGA)),
};

let admin: KafkaAdmin;
let app: FastifyInstance;
let base: string;
const keys = new Map<string, SigningKey>();
const created = new Map<string, Orchestration>();

/** Creates the Orchestration and what the operator would make for it: signing-key Secret and trust ConfigMap. */
async function provision(o: Orchestration): Promise<void> {
  const obj = (await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: ORCHESTRATION_PLURAL,
    body: { ...o, metadata: { ...o.metadata, namespace: ns } },
  })) as Orchestration;
  const key = generateSigningKey();
  keys.set(o.metadata.name ?? "", key);
  created.set(o.metadata.name ?? "", obj);
  await core.createNamespacedSecret({ namespace: ns, body: signingKeySecretFor(obj, key) });
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: trustConfigMapFor(obj, [{ role: "gateway", keys: [key] }]),
  });
}

/** The trust document the (stand-in) operator published for an Orchestration, read back from the API server. */
async function publishedTrust(name: string): Promise<TrustStore> {
  const cm = await core.readNamespacedConfigMap({ namespace: ns, name: `${name}-orchestration-trust` });
  return TrustStore.fromDocument(cm.data?.[TRUST_FILE] ?? "");
}

/** Every record of `topic` once there are at least `count`, read by a throwaway consumer. */
async function readTopic(topic: string, count: number): Promise<IncomingRecord[]> {
  const consumer = kafka("gw-test-reader").consumer({ groupId: uniqueName("gw-reader"), autoCommit: false });
  const records: IncomingRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe([topic], true);
    await consumer.runEach(async (r) => {
      records.push(r);
    });
    await eventually(
      `${count} record(s) on ${topic}`,
      async () => (records.length >= count ? true : undefined),
      { timeoutMs: 30_000 },
    );
    return records;
  } finally {
    await consumer.close();
  }
}

async function endOffset(topic: string): Promise<bigint> {
  return (await admin.partitionOffsets(topic)).reduce((sum, p) => sum + p.logEnd, 0n);
}

function post(
  path: string,
  init: { headers?: Record<string, string>; body?: string; token?: string | null } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
  return fetch(`${base}${path}`, {
    method: "POST",
    headers,
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
}

function binaryHeaders(id: string, type: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": id,
    "ce-source": "/shop/web",
    "ce-type": type,
    ...extra,
  };
}

const eventsPath = (name: string) => `/namespaces/${ns}/orchestrations/${name}/events`;
const deadLettersPath = `/namespaces/${ns}/orchestrations/orders/deadletters`;

beforeAll(async () => {
  stack();
  expect((await kubectl(["apply", "-f", "crds/"])).code).toBe(0);
  await kubectl(["wait", "--for=condition=Established", "crd/orchestrations.eventloom.io", "--timeout=30s"]);
  expect((await kubectl(["create", "namespace", ns])).code).toBe(0);
  await eventually("the Orchestration API to be served", async () => {
    await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: ORCHESTRATION_PLURAL,
    });
    return true;
  });
  admin = kafka("gw-test-admin").admin();
  await admin.connect();
  await admin.createTopics(
    Object.values(TOPICS).map((name) => ({
      name,
      partitions: name.endsWith("-dlt") ? 2 : 1,
      replicationFactor: 1,
    })),
  );
  await provision(ORDERS);
  await provision(SAGA);

  const backend = new KafkaBackend(
    new KafkaClient({
      brokers: stack().kafkaBrokers.split(","),
      clientId: "gw-test-gateway",
      retries: 2,
      connectionTimeoutMs: 2_000,
    }),
    { deadLetterMaxRecords: 1_000, deadLetterCatchUpTimeoutMs: 20_000, deadLetterIdleMs: 60_000 },
  );
  const directory = new RegistryDirectory(new OrchestrationRegistry(kubeClient(), { namespace: ns }));
  app = await build({
    kafka: backend,
    orchestrations: directory,
    tokens: TokenTable.parse(`tester ${TOKEN} ${ns}`),
  });
  backend.start();
  void directory.start();
  await app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await eventually(
    "the gateway to be ready with both Orchestrations' keys and trust",
    async () => {
      const ready = await fetch(`${base}/readyz`);
      const loaded = ["orders", "saga"].every((n) => {
        const e = directory.get(ns, n);
        return e?.signer !== undefined && e.trust.keyids.length > 0;
      });
      return ready.status === 200 && loaded ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
});

afterAll(async () => {
  await app?.close();
  await admin?.deleteTopics(Object.values(TOPICS)).catch(() => undefined);
  await admin?.close();
  await kubectl(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
});

describe("ingress on the real stack", () => {
  it("routes a binary-mode event of a choreography to every subscribed step topic, each copy verifying against the published trust", async () => {
    const res = await post(eventsPath("saga"), {
      headers: binaryHeaders("order-1", "com.example.order.placed"),
      body: '{"orderId":"ORD-1"}',
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const answer = (await res.json()) as { id: string; runid: string; records: Array<{ topic: string }> };
    expect(answer.records.map((r) => r.topic).sort()).toEqual([TOPICS.sagaNotify, TOPICS.sagaReserve].sort());
    const verifier = new Verifier(await publishedTrust("saga"), {
      requiredExtensions: ["partitionkey", "destination"],
    });
    for (const topic of [TOPICS.sagaReserve, TOPICS.sagaNotify]) {
      const [record] = await readTopic(topic, 1);
      const verified = verifier.verifyRecord(record!);
      expect(verified.ok, JSON.stringify(verified)).toBe(true);
      if (!verified.ok) continue;
      expect(verified.keyid).toBe(keys.get("saga")?.keyid);
      expect(verified.event).toMatchObject({
        id: answer.id,
        source: orchestrationSource(ns, "saga"),
        type: "com.example.order.placed",
      });
      expect(verified.event.extensions).toMatchObject({
        destination: topic,
        partitionkey: answer.runid,
        originsource: "/shop/web",
        originid: "order-1",
      });
      expect(verified.event.data?.toString()).toBe('{"orderId":"ORD-1"}');
      expect(record!.key?.toString()).toBe(answer.runid);
    }
  });

  it("writes a structured-mode run start of an orchestrated Orchestration to its results topic, data byte for byte, signed by its key", async () => {
    const envelope = `{"specversion":"1.0","id":"start-1","source":"/shop/web","type":"com.example.order.placed","subject":"ORD-2","data":{"orderId":"ORD-2",  "note":"kept as sent"}}`;
    const res = await post(eventsPath("orders"), {
      headers: { "content-type": "application/cloudevents+json" },
      body: envelope,
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const [record] = await readTopic(TOPICS.ordersResults, 1);
    // The published trust grants the Orchestration's key its step command types; a run start keeps the
    // client's type, so verify against a trust that lets the key sign any type from its source (see
    // docs/gateway.md, "Contract notes").
    const key = keys.get("orders")!;
    const trust = new TrustStore([
      { publicKey: key.publicKey, sources: [orchestrationSource(ns, "orders")], types: ["*"] },
    ]);
    const verified = new Verifier(trust, {
      requiredExtensions: ["partitionkey", "destination"],
    }).verifyRecord(record!);
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
    if (!verified.ok) return;
    expect(verified.mode).toBe("binary");
    expect(verified.event.subject).toBe("ORD-2");
    expect(verified.event.data?.toString()).toBe('{"orderId":"ORD-2",  "note":"kept as sent"}');
    expect(verified.event.extensions.destination).toBe(TOPICS.ordersResults);
  });

  it("writes one record for a request retried with the same ce-id and source", async () => {
    const before = await endOffset(TOPICS.ordersResults);
    const send = () =>
      post(eventsPath("orders"), {
        headers: binaryHeaders("retry-1", "com.example.order.placed"),
        body: '{"orderId":"ORD-3"}',
      });
    const first = await send();
    const second = await send();
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(await second.json()).toEqual(await first.json());
    expect((await endOffset(TOPICS.ordersResults)) - before).toBe(1n);
  });

  it("refuses data that breaks the inputSchema with 422 and writes nothing", async () => {
    const before = await endOffset(TOPICS.ordersResults);
    const res = await post(eventsPath("orders"), {
      headers: binaryHeaders("bad-1", "com.example.order.placed"),
      body: '{"orderId":42}',
    });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { errors: Array<{ instancePath: string }> }).errors[0]?.instancePath).toBe(
      "/orderId",
    );
    expect(await endOffset(TOPICS.ordersResults)).toBe(before);
  });

  it("answers 401 without a token and 403 for another namespace", async () => {
    expect(
      (await post(eventsPath("orders"), { token: null, headers: binaryHeaders("x", "t"), body: "{}" }))
        .status,
    ).toBe(401);
    expect(
      (
        await post("/namespaces/default/orchestrations/orders/events", {
          headers: binaryHeaders("x", "t"),
          body: "{}",
        })
      ).status,
    ).toBe(403);
  });
});

describe("a gateway whose Kafka is unreachable", () => {
  it("answers 503 with Retry-After, never 202, and says why on /readyz", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const backend = new KafkaBackend(
      new KafkaClient({
        brokers: [`127.0.0.1:${closedPort}`],
        clientId: "gw-test-down",
        retries: 0,
        connectionTimeoutMs: 500,
      }),
      {
        deadLetterMaxRecords: 10,
        deadLetterCatchUpTimeoutMs: 1_000,
        deadLetterIdleMs: 60_000,
        maxBackoffMs: 1_000,
      },
    );
    const directory = new RegistryDirectory(new OrchestrationRegistry(kubeClient(), { namespace: ns }));
    const down = await build({
      kafka: backend,
      orchestrations: directory,
      config: { auth: "none", retryAfterSeconds: 7 },
    });
    backend.start();
    await directory.start();
    try {
      await eventually("a failed connection attempt", async () =>
        backend.readinessDetail().includes("ECONNREFUSED") ? true : undefined,
      );
      const res = await down.inject({
        method: "POST",
        url: eventsPath("orders"),
        headers: binaryHeaders("down-1", "com.example.order.placed"),
        payload: '{"orderId":"ORD-4"}',
      });
      expect(res.statusCode, res.body).toBe(503);
      expect(res.headers["retry-after"]).toBe("7");
      expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ type: "urn:eventloom:problem:kafka-unavailable", status: 503 });
      const ready = await down.inject({ method: "GET", url: "/readyz" });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ checks: { kafka: { ok: false }, orchestrations: { ok: true } } });
      const dlq = await down.inject({ method: "GET", url: deadLettersPath });
      expect(dlq.statusCode).toBe(503);
    } finally {
      await down.close();
    }
  });
});

describe("the dead-letter API on a real DLT topic", () => {
  const payment = (offset: number) => ({ topic: TOPICS.ordersPayment, partition: 0, offset: String(offset) });

  /** A signed command of step take-payment, dead-lettered by the worker SDK's own envelope code. */
  async function deadLetter(opts: {
    id: string;
    errorType: string;
    originalTopic: string;
    replayCount?: number;
    partition: number;
  }): Promise<void> {
    const signer = new Signer(keys.get("orders")!);
    const command = signer.sign({
      id: opts.id,
      source: orchestrationSource(ns, "orders"),
      specversion: "1.0",
      type:
        opts.originalTopic === TOPICS.ordersPayment ? "com.example.payment.take" : "com.example.order.create",
      datacontenttype: "application/json",
      time: "2026-01-30T12:00:00Z",
      extensions: {
        partitionkey: "run-dlq",
        runid: "run-dlq",
        destination: opts.originalTopic,
        step: "take-payment",
        action: "do",
        attempt: "1",
      },
      data: Buffer.from(`{"input":{"orderId":"${opts.id}"}}`),
    });
    const message = encodeRecord(command);
    const headers: Record<string, string> = { ...message.headers };
    if (opts.replayCount !== undefined) headers.ce_replaycount = String(opts.replayCount);
    let delivery = firstDelivery({ ...payment(40), topic: opts.originalTopic });
    const error = { errorType: opts.errorType, errorMessage: `${opts.errorType} on ${opts.id}` };
    // Seed 001: a first attempt and three retries fail (a signature failure is not retried).
    const attempts = opts.errorType === "SignatureError" ? 1 : 4;
    for (let i = 0; i < attempts; i++)
      delivery = afterFailure(
        { ...delivery, retryCount: i },
        error,
        Date.parse("2026-01-30T12:00:00Z") + i * 1000,
      );
    const envelope = deadLetterEnvelope({
      value: message.value,
      delivery,
      error,
      consumerGroup: `eventloom.${ns}.payments`,
      nowMs: Date.parse("2026-01-30T12:00:07Z"),
    });
    const producer = kafka("gw-test-sdk").producer();
    await producer.connect();
    try {
      await producer.send(TOPICS.ordersDlt, [
        {
          key: message.key,
          value: message.value,
          partition: opts.partition,
          headers: deadLetterHeaders(headers, envelope, { errors: delivery.errors }),
        },
      ]);
    } finally {
      await producer.close();
    }
  }

  async function get<T>(path: string): Promise<{ status: number; body: T }> {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, body: (await res.json()) as T };
  }

  interface ListBody {
    total: number;
    complete: boolean;
    messages: Array<{
      id: string;
      errorType: string;
      originalTopic: string;
      failedAttempts: number;
      retryCount: number;
      replayCount: number;
      originalMessage: string;
    }>;
  }

  beforeAll(async () => {
    await deadLetter({
      id: "dl-1",
      errorType: "ValueError",
      originalTopic: TOPICS.ordersPayment,
      partition: 0,
    });
    await deadLetter({
      id: "dl-2",
      errorType: "ValueError",
      originalTopic: TOPICS.ordersPayment,
      partition: 1,
    });
    await deadLetter({
      id: "dl-3",
      errorType: "SignatureError",
      originalTopic: TOPICS.ordersCreate,
      partition: 0,
    });
    await deadLetter({
      id: "dl-4",
      errorType: "ValueError",
      originalTopic: TOPICS.ordersPayment,
      replayCount: 1,
      partition: 1,
    });
  });

  it("lists the dead letters with seed 001's envelope, and filters them", async () => {
    onTestFailed(() => console.error(`dead-letter topic ${TOPICS.ordersDlt}`));
    const all = await get<ListBody>(deadLettersPath);
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect(all.body).toMatchObject({ total: 4, complete: true });
    const dl1 = all.body.messages.find((m) => m.originalMessage.includes("dl-1"));
    expect(dl1).toMatchObject({
      errorType: "ValueError",
      retryCount: 3,
      failedAttempts: 4,
      originalTopic: TOPICS.ordersPayment,
      replayCount: 0,
    });
    const signature = await get<ListBody>(`${deadLettersPath}?errorType=SignatureError`);
    expect(signature.body.messages.map((m) => m.originalTopic)).toEqual([TOPICS.ordersCreate]);
    const byTopic = await get<ListBody>(`${deadLettersPath}?topic=${TOPICS.ordersPayment}&limit=2`);
    expect(byTopic.body.total).toBe(3);
    expect(byTopic.body.messages).toHaveLength(2);
  });

  it("shows one dead letter by id", async () => {
    const { body } = await get<ListBody>(`${deadLettersPath}?errorType=SignatureError`);
    const id = body.messages[0]!.id;
    const one = await get<{ id: string; errorMessage: string; event: Record<string, string> }>(
      `${deadLettersPath}/${id}`,
    );
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      id,
      errorMessage: "SignatureError on dl-3",
      event: { id: "dl-3", type: "com.example.order.create" },
    });
  });

  it("replays a dead letter to its original topic, signature intact and replaycount raised", async () => {
    const { body } = await get<ListBody>(deadLettersPath);
    const target = body.messages.find((m) => m.originalMessage.includes("dl-1"))!;
    const before = await endOffset(TOPICS.ordersPayment);
    const res = await post(`${deadLettersPath}/${target.id}/replay`);
    expect(res.status, await res.clone().text()).toBe(202);
    expect(await res.json()).toMatchObject({
      id: target.id,
      replayCount: 1,
      maxReplays: 1,
      topic: TOPICS.ordersPayment,
    });
    expect((await endOffset(TOPICS.ordersPayment)) - before).toBe(1n);
    const records = await readTopic(TOPICS.ordersPayment, 1);
    const replayed = records.find((r) => r.headers.ce_id?.toString() === "dl-1")!;
    expect(replayed.headers.ce_replaycount?.toString()).toBe("1");
    expect(Object.keys(replayed.headers).filter((h) => h.startsWith("eventloom-"))).toEqual([]);
    const verified = new Verifier(await publishedTrust("orders"), {
      requiredExtensions: ["partitionkey", "destination"],
    }).verifyRecord(replayed);
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
    if (verified.ok) expect(verified.event.extensions.replaycount).toBe("1");
  });

  it("refuses with 409 to replay a dead letter whose replaycount reached maxReplays", async () => {
    const { body } = await get<ListBody>(deadLettersPath);
    const exhausted = body.messages.find((m) => m.originalMessage.includes("dl-4"))!;
    expect(exhausted.replayCount).toBe(1);
    const before = await endOffset(TOPICS.ordersPayment);
    const res = await post(`${deadLettersPath}/${exhausted.id}/replay`);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({
      type: "urn:eventloom:problem:replay-limit-reached",
      replayCount: 1,
      maxReplays: 1,
    });
    expect(await endOffset(TOPICS.ordersPayment)).toBe(before);
  });

  it("purges the topic up to the end captured at request time", async () => {
    const res = await fetch(`${base}${deadLettersPath}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ topic: TOPICS.ordersDlt, purged: 4 });
    for (const p of await admin.partitionOffsets(TOPICS.ordersDlt)) expect(p.logStart).toBe(p.logEnd);
    const after = await get<ListBody>(deadLettersPath);
    expect(after.body).toMatchObject({ total: 0, complete: true });
    // Records dead-lettered after the purge are listed again.
    await deadLetter({
      id: "dl-5",
      errorType: "ValueError",
      originalTopic: TOPICS.ordersPayment,
      partition: 0,
    });
    await eventually("the new dead letter to be listed", async () => {
      const listed = await get<ListBody>(deadLettersPath);
      return listed.body.total === 1 ? listed : undefined;
    });
  });
});
