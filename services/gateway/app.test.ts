/**
 * The gateway's HTTP contract with app.inject(): ingress in both content modes, routing, signing,
 * idempotency, and every error path of POST .../events as an RFC 9457 problem. Kafka and the
 * Orchestration registry are fakes here (integration tests use the real ones).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { decodeRecord } from "../events/binding.ts";
import { generateSigningKey } from "../events/keys.ts";
import { Verifier } from "../events/signing.ts";
import { KafkaUnavailableError } from "../kafka/client.ts";
import type { IncomingRecord } from "../kafka/client.ts";
import { build } from "./app.ts";
import type { BuildOptions } from "./app.ts";
import { derivedEventId } from "./ingress/ingress-event.ts";
import {
  CLICKS,
  entryOf,
  FakeDirectory,
  FakeKafka,
  ORDERS,
  SAGA,
  tokenTable,
  TOKENS,
  trustOf,
} from "./test-support.ts";
import type { SentBatch } from "./test-support.ts";

const ORDERS_URL = "/namespaces/shop/orchestrations/orders/events";
const SAGA_URL = "/namespaces/shop/orchestrations/saga/events";
const CLICKS_URL = "/namespaces/shop/orchestrations/clicks/events";

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

interface Setup {
  app: FastifyInstance;
  kafka: FakeKafka;
  directory: FakeDirectory;
  key: ReturnType<typeof generateSigningKey>;
}

async function setup(overrides: Partial<BuildOptions> = {}): Promise<Setup> {
  const key = generateSigningKey();
  const kafka = new FakeKafka();
  const directory = new FakeDirectory(entryOf(ORDERS, key), entryOf(SAGA, key), entryOf(CLICKS, null));
  app = await build({ kafka, orchestrations: directory, tokens: tokenTable(), ...overrides });
  return { app, kafka, directory, key };
}

const auth = (token: string = TOKENS.shop): Record<string, string> => ({ authorization: `Bearer ${token}` });

function binary(
  overrides: Record<string, string | undefined> = {},
  body = '{"orderId":"ORD-1","quantity":2}',
): InjectOptions {
  const headers: Record<string, string> = {
    ...auth(),
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": "evt-1",
    "ce-source": "/shop/web",
    "ce-type": "com.example.order.placed",
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  return { method: "POST", url: ORDERS_URL, headers, payload: body };
}

function structured(event: Record<string, unknown>, url = ORDERS_URL): InjectOptions {
  return {
    method: "POST",
    url,
    headers: { ...auth(), "content-type": "application/cloudevents+json" },
    payload: JSON.stringify({
      specversion: "1.0",
      id: "evt-s",
      source: "/shop/web",
      type: "com.example.order.placed",
      ...event,
    }),
  };
}

/** The records written, as a consumer reads them (header values as Buffers). */
function consumed(batch: SentBatch): IncomingRecord[] {
  return batch.records.map((r, i) => ({
    topic: batch.topic,
    partition: 0,
    offset: String(i),
    key: r.key === null || r.key === undefined ? null : Buffer.from(r.key),
    value: r.value === null ? null : Buffer.from(r.value),
    headers: Object.fromEntries(
      Object.entries(r.headers ?? {}).map(([k, v]) => [k, v === undefined ? undefined : Buffer.from(v)]),
    ),
    timestamp: "0",
  }));
}

function expectProblem(res: LightMyRequestResponse, status: number, kind: string): Record<string, unknown> {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const problem = res.json<Record<string, unknown>>();
  expect(problem).toMatchObject({ type: `urn:eventloom:problem:${kind}`, status });
  for (const member of ["type", "title", "status", "detail", "instance"])
    expect(problem).toHaveProperty(member);
  expect(typeof problem.detail).toBe("string");
  expect(problem.detail).not.toBe("");
  return problem;
}

describe("POST events, accepted", () => {
  it("writes a binary-mode event to the results topic of an orchestrated Orchestration, signed, and answers 202", async () => {
    const { app, kafka, key } = await setup();
    const res = await app.inject(
      binary({
        "ce-subject": "order ORD-1",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      }),
    );
    expect(res.statusCode, res.body).toBe(202);
    const answer = res.json<Record<string, unknown>>();
    const id = derivedEventId({ namespace: "shop", name: "orders" }, "/shop/web", "evt-1");
    expect(answer).toEqual({
      id,
      source: "/eventloom/shop/orders",
      type: "com.example.order.placed",
      specversion: "1.0",
      runid: id,
      orchestration: "shop/orders",
      originsource: "/shop/web",
      originid: "evt-1",
      signed: true,
      records: [{ topic: "eventloom.shop.orders-results", partition: 0, offset: "0" }],
    });
    expect(kafka.sent).toHaveLength(1);
    const [record] = consumed(kafka.sent[0]!);
    expect(record!.key?.toString()).toBe(id);
    expect(record!.value?.toString()).toBe('{"orderId":"ORD-1","quantity":2}');
    expect(record!.headers.traceparent?.toString()).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-/);
    const verified = await new Verifier(trustOf(ORDERS, key), {
      requiredExtensions: ["partitionkey", "destination"],
    }).verifyRecord(record!);
    expect(verified.ok, JSON.stringify(verified)).toBe(true);
    if (!verified.ok) return;
    expect(verified.event.subject).toBe("order ORD-1");
    expect(verified.event.extensions).toMatchObject({
      destination: "eventloom.shop.orders-results",
      partitionkey: id,
      runid: id,
      originsource: "/shop/web",
      originid: "evt-1",
    });
  });

  it("reads structured mode, keeping JSON data byte for byte", async () => {
    const { app, kafka } = await setup();
    const res = await app.inject({
      ...structured({}),
      payload:
        '{"specversion":"1.0","id":"evt-s","source":"/shop/web","type":"com.example.order.placed","data":{"orderId":"ORD-2", "quantity":1}}',
    });
    expect(res.statusCode, res.body).toBe(202);
    const decoded = decodeRecord(consumed(kafka.sent[0]!)[0]!);
    expect(decoded.ok).toBe(true);
    if (decoded.ok) expect(decoded.event.data?.toString()).toBe('{"orderId":"ORD-2", "quantity":1}');
  });

  it("routes a choreographed event to every step subscribing to its type, one signed copy per destination", async () => {
    const { app, kafka, key } = await setup();
    const res = await app.inject({ ...binary({}, '{"orderId":"ORD-3"}'), url: SAGA_URL });
    expect(res.statusCode, res.body).toBe(202);
    expect(kafka.sent.map((b) => b.topic).sort()).toEqual([
      "eventloom.shop.saga.notify",
      "eventloom.shop.saga.reserve-stock",
    ]);
    const verifier = new Verifier(trustOf(SAGA, key), { requiredExtensions: ["destination"] });
    for (const batch of kafka.sent) {
      const verified = verifier.verifyRecord(consumed(batch)[0]!);
      expect(verified.ok).toBe(true);
      if (verified.ok) expect(verified.event.extensions.destination).toBe(batch.topic);
    }
  });

  it("keeps a run id the client names with partitionkey", async () => {
    const { app, kafka } = await setup();
    const res = await app.inject({
      ...binary({ "ce-type": "com.example.payment.failed", "ce-partitionkey": "run-42" }, "{}"),
      url: SAGA_URL,
    });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json<{ runid: string }>().runid).toBe("run-42");
    expect(kafka.sent[0]!.records[0]!.key).toBe("run-42");
  });

  it("writes unsigned events when the Orchestration's signing policy is none", async () => {
    const { app, kafka } = await setup();
    const res = await app.inject({ ...binary({ "ce-type": "com.example.click" }, "{}"), url: CLICKS_URL });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json<{ signed: boolean }>().signed).toBe(false);
    expect(kafka.sent[0]!.records[0]!.headers?.ce_dssematerial).toBeUndefined();
  });

  it("accepts POST /events with the Orchestration in the Eventloom-Orchestration header", async () => {
    const { app, kafka } = await setup();
    const res = await app.inject({ ...binary({ "eventloom-orchestration": "shop/orders" }), url: "/events" });
    expect(res.statusCode, res.body).toBe(202);
    expect(kafka.sent).toHaveLength(1);
  });

  it("decodes percent-encoded ce- header values as UTF-8", async () => {
    const { app, kafka } = await setup();
    const res = await app.inject(binary({ "ce-subject": "Bestellung%20f%C3%BCr%20J%C3%BCrgen" }));
    expect(res.statusCode, res.body).toBe(202);
    const decoded = decodeRecord(consumed(kafka.sent[0]!)[0]!);
    expect(decoded.ok && decoded.event.subject).toBe("Bestellung für Jürgen");
  });
});

describe("POST events, idempotency on (source, id)", () => {
  it("answers a retry with the same answer and writes nothing the second time", async () => {
    const { app, kafka } = await setup();
    const first = await app.inject(binary());
    const retry = await app.inject(binary());
    expect(first.statusCode).toBe(202);
    expect(retry.statusCode).toBe(202);
    expect(retry.json()).toEqual(first.json());
    expect(retry.headers["idempotent-replayed"]).toBe("true");
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    expect(kafka.sent).toHaveLength(1);
  });

  it("shares one write between concurrent duplicates", async () => {
    const { app, kafka } = await setup();
    let release!: () => void;
    kafka.hang = new Promise<void>((r) => (release = r));
    const both = Promise.all([app.inject(binary()), app.inject(binary())]);
    await new Promise((r) => setTimeout(r, 20));
    kafka.hang = undefined;
    release();
    const [a, b] = await both;
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    expect(kafka.sent).toHaveLength(1);
  });

  it("writes once for concurrent duplicates that both had to wait for the signing key", async () => {
    const { app, kafka, directory } = await setup();
    directory.entries.set("shop/orders", entryOf(ORDERS, null));
    const signed = entryOf(ORDERS);
    directory.onReload = () => signed;
    const [a, b] = await Promise.all([app.inject(binary()), app.inject(binary())]);
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    expect(kafka.sent).toHaveLength(1);
  });

  it("writes again after the window has passed", async () => {
    let now = 1_000_000;
    const { app, kafka } = await setup({
      now: () => now,
      config: { auth: "token", idempotencyWindowMs: 60_000 },
    });
    await app.inject(binary());
    now += 60_001;
    const again = await app.inject(binary());
    expect(again.statusCode).toBe(202);
    expect(kafka.sent).toHaveLength(2);
    // Same derived id both times, so consumers' dedupe on (source, id) still drops the copy.
    expect(kafka.sent[0]!.records[0]!.headers?.ce_id).toBe(kafka.sent[1]!.records[0]!.headers?.ce_id);
  });

  it("writes on the retry of a request that failed", async () => {
    const { app, kafka } = await setup();
    kafka.failWith = new KafkaUnavailableError("broker down");
    expect((await app.inject(binary())).statusCode).toBe(503);
    kafka.failWith = undefined;
    expect((await app.inject(binary())).statusCode).toBe(202);
    expect(kafka.sent).toHaveLength(1);
  });

  it("does not mistake the same id from another source for a retry", async () => {
    const { app, kafka } = await setup();
    await app.inject(binary());
    const other = await app.inject(binary({ "ce-source": "/shop/mobile" }));
    expect(other.statusCode).toBe(202);
    expect(kafka.sent).toHaveLength(2);
    expect(kafka.sent[0]!.records[0]!.headers?.ce_id).not.toBe(kafka.sent[1]!.records[0]!.headers?.ce_id);
  });
});

describe("POST events, errors as application/problem+json", () => {
  it.each([
    ["a required attribute is missing", binary({ "ce-id": undefined }), "invalid-cloudevent", /ce-id/],
    ["the source is missing", binary({ "ce-source": undefined }), "invalid-cloudevent", /ce-source/],
    [
      "no ce- header is there at all",
      binary({
        "ce-id": undefined,
        "ce-source": undefined,
        "ce-type": undefined,
        "ce-specversion": undefined,
      }),
      "invalid-cloudevent",
      /binary mode/,
    ],
    ["specversion is 0.3", binary({ "ce-specversion": "0.3" }), "unsupported-specversion", /0\.3/],
    ["time is not RFC 3339", binary({ "ce-time": "yesterday" }), "invalid-cloudevent", /RFC 3339/],
    [
      "an extension name is not lower-case alphanumeric",
      binary({ "ce-run-id": "x" }),
      "invalid-cloudevent",
      /run-id/,
    ],
    [
      "ce-datacontenttype is sent next to Content-Type",
      binary({ "ce-datacontenttype": "application/json" }),
      "invalid-cloudevent",
      /Content-Type/,
    ],
    [
      "a percent-encoded value is not UTF-8",
      binary({ "ce-subject": "%FF%FE" }),
      "invalid-cloudevent",
      /UTF-8/,
    ],
    ["a stray percent sign", binary({ "ce-subject": "100%" }), "invalid-cloudevent", /hex/],
    [
      "the client sets a reserved extension",
      binary({ "ce-destination": "eventloom.shop.orders.take-payment" }),
      "reserved-attribute",
      /destination/,
    ],
    [
      "the client brings its own signature",
      binary({ "ce-dssematerial": "abc" }),
      "reserved-attribute",
      /dssematerial/,
    ],
    [
      "partitionkey and runid differ",
      binary({ "ce-partitionkey": "a", "ce-runid": "b" }),
      "invalid-cloudevent",
      /differ/,
    ],
    ["structured mode is not JSON", { ...structured({}), payload: "{not json" }, "invalid-json", /JSON/],
    ["structured mode lacks the type", structured({ type: undefined }), "invalid-cloudevent", /type/],
    [
      "structured mode repeats a member",
      { ...structured({}), payload: '{"specversion":"1.0","id":"a","id":"b","source":"/s","type":"t"}' },
      "invalid-cloudevent",
      /more than once/,
    ],
    [
      "structured mode has specversion 0.3",
      structured({ specversion: "0.3" }),
      "unsupported-specversion",
      /0\.3/,
    ],
    [
      "the data is not JSON though the Orchestration has an inputSchema",
      binary({}, "{oops"),
      "invalid-json",
      /not valid JSON/,
    ],
  ])("400 when %s", async (_name, request, kind, detail) => {
    const { app, kafka } = await setup();
    const problem = expectProblem(await app.inject(request), 400, kind);
    expect(problem.detail).toMatch(detail);
    expect(problem.instance).toBe(request.url);
    expect(kafka.sent).toHaveLength(0);
  });

  it("400 when a ce- header is repeated", async () => {
    const { app } = await setup();
    // inject merges repeated headers; a raw request keeps them, as a socket would.
    const res = await app.inject({
      ...binary(),
      headers: { ...binary().headers, "ce-id": ["a", "b"] } as never,
    });
    expectProblem(res, 400, "invalid-cloudevent");
  });

  it("400 for POST /events without the Eventloom-Orchestration header", async () => {
    const { app } = await setup();
    const problem = expectProblem(await app.inject({ ...binary(), url: "/events" }), 400, "bad-request");
    expect(problem.errors).toBeInstanceOf(Array);
  });

  it("401 without a token, with WWW-Authenticate", async () => {
    const { app } = await setup();
    const res = await app.inject(binary({ authorization: undefined }));
    expectProblem(res, 401, "unauthorized");
    expect(res.headers["www-authenticate"]).toBe('Bearer realm="eventloom"');
  });

  it("401 for an unknown token, before the body is read", async () => {
    const { app, kafka } = await setup();
    const res = await app.inject(binary({ authorization: "Bearer not-a-real-token-0123456789abcdef0123" }));
    expectProblem(res, 401, "unauthorized");
    expect(res.headers["www-authenticate"]).toMatch(/invalid_token/);
    expect(kafka.sent).toHaveLength(0);
  });

  it("401 for another authentication scheme", async () => {
    const { app } = await setup();
    expectProblem(await app.inject(binary({ authorization: "Basic dXNlcjpwYXNz" })), 401, "unauthorized");
  });

  it.each([
    [
      "a namespace-scoped token on another namespace",
      TOKENS.shop,
      "/namespaces/billing/orchestrations/invoices/events",
    ],
    ["an Orchestration-scoped token on another Orchestration", TOKENS.checkoutOnly, SAGA_URL],
  ])("403 for %s", async (_name, token, url) => {
    const { app } = await setup();
    const problem = expectProblem(
      await app.inject({ ...binary({ authorization: `Bearer ${token}` }), url }),
      403,
      "forbidden",
    );
    expect(problem.detail).toMatch(/may act on/);
  });

  it("403 on POST /events for an Orchestration the token may not touch", async () => {
    const { app } = await setup();
    const res = await app.inject({
      ...binary({ authorization: `Bearer ${TOKENS.checkoutOnly}`, "eventloom-orchestration": "shop/saga" }),
      url: "/events",
    });
    expectProblem(res, 403, "forbidden");
  });

  it("404 for an unknown Orchestration", async () => {
    const { app } = await setup();
    const problem = expectProblem(
      await app.inject({ ...binary(), url: "/namespaces/shop/orchestrations/nope/events" }),
      404,
      "orchestration-not-found",
    );
    expect(problem.detail).toMatch(/kubectl get orchestrations -n shop/);
  });

  it("404 for an unknown route", async () => {
    const { app } = await setup();
    expectProblem(await app.inject({ method: "GET", url: "/nope" }), 404, "not-found");
  });

  it("409 when the same (source, id) comes back with different content", async () => {
    const { app, kafka } = await setup();
    await app.inject(binary());
    const problem = expectProblem(
      await app.inject(binary({}, '{"orderId":"ORD-1","quantity":3}')),
      409,
      "idempotency-conflict",
    );
    expect(problem.detail).toMatch(/new id/);
    expect(kafka.sent).toHaveLength(1);
  });

  it("413 for a body over the limit", async () => {
    const { app, kafka } = await setup({ config: { auth: "token", bodyLimitBytes: 1024 } });
    const problem = expectProblem(
      await app.inject(binary({}, JSON.stringify({ orderId: "x".repeat(2000), quantity: 1 }))),
      413,
      "payload-too-large",
    );
    expect(problem.detail).toMatch(/1024 bytes/);
    expect(kafka.sent).toHaveLength(0);
  });

  it("413 over the default limit of 1 MiB", async () => {
    const { app } = await setup();
    expectProblem(await app.inject(binary({}, "x".repeat(1024 * 1024 + 1))), 413, "payload-too-large");
  });

  it.each([
    ["batch mode", { "content-type": "application/cloudevents-batch+json" }, "[]", /one event per request/],
    ["another structured format", { "content-type": "application/cloudevents+xml" }, "<e/>", /does not read/],
    ["an unparseable media type", { "content-type": "not a media type" }, "x", /not a valid media type/],
    [
      "non-JSON data for an Orchestration with an inputSchema",
      { "content-type": "text/plain" },
      "ORD-1",
      /must be JSON/,
    ],
  ])("415 for %s", async (_name, headers, body, detail) => {
    const { app } = await setup();
    const problem = expectProblem(await app.inject(binary(headers, body)), 415, "unsupported-media-type");
    expect(problem.detail).toMatch(detail);
  });

  it("422 listing every schema violation when the data breaks the inputSchema", async () => {
    const { app, kafka } = await setup();
    const problem = expectProblem(await app.inject(binary({}, '{"quantity":0}')), 422, "schema-violation");
    expect(problem.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          keyword: "required",
          instancePath: "",
          params: { missingProperty: "orderId" },
        }),
        expect.objectContaining({ keyword: "minimum", instancePath: "/quantity" }),
      ]),
    );
    expect(problem.detail).toMatch(/inputSchema of Orchestration shop\/orders/);
    expect(kafka.sent).toHaveLength(0);
  });

  it("422 when the data is missing and the inputSchema wants an object", async () => {
    const { app } = await setup();
    expectProblem(await app.inject(binary({}, "")), 422, "schema-violation");
  });

  it("checks the inputSchema only on a choreography's entry types", async () => {
    const { app } = await setup();
    expectProblem(await app.inject({ ...binary({}, "{}"), url: SAGA_URL }), 422, "schema-violation");
    // payment.failed is emitted by a step: an inner event, not a run's input.
    const inner = await app.inject({
      ...binary({ "ce-type": "com.example.payment.failed", "ce-partitionkey": "run-1" }, "{}"),
      url: SAGA_URL,
    });
    expect(inner.statusCode, inner.body).toBe(202);
  });

  it("422 for a type no step of a choreography subscribes to, naming the types it takes", async () => {
    const { app } = await setup();
    const problem = expectProblem(
      await app.inject({ ...binary({ "ce-type": "com.example.unknown" }), url: SAGA_URL }),
      422,
      "unroutable-event",
    );
    expect(problem.acceptedTypes).toEqual([
      "com.example.order.placed",
      "com.example.payment.failed",
      "com.example.stock.reserved",
    ]);
  });

  it("429 with Retry-After once a token used up its budget, counted per token", async () => {
    const { app } = await setup({ config: { auth: "token", rateLimitMax: 2, rateLimitWindowMs: 60_000 } });
    for (const id of ["r1", "r2"]) expect((await app.inject(binary({ "ce-id": id }))).statusCode).toBe(202);
    const limited = await app.inject(binary({ "ce-id": "r3" }));
    const problem = expectProblem(limited, 429, "rate-limited");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect(problem.detail).toMatch(/shop-web/);
    // Another token has its own budget.
    expect(
      (await app.inject(binary({ "ce-id": "r4", authorization: `Bearer ${TOKENS.ops}` }))).statusCode,
    ).toBe(202);
  });

  it("503 with Retry-After and nothing written while Kafka is unreachable", async () => {
    const { app, kafka } = await setup();
    kafka.isReady = false;
    const res = await app.inject(binary());
    const problem = expectProblem(res, 503, "kafka-unavailable");
    expect(res.headers["retry-after"]).toBe("5");
    expect(problem.detail).toMatch(/ECONNREFUSED/);
    expect(kafka.sent).toHaveLength(0);
  });

  it("503 when the write itself fails", async () => {
    const { app } = await setup();
    const { kafka } = { kafka: app.gateway.kafka as FakeKafka };
    kafka.failWith = new KafkaUnavailableError("Kafka did not answer while trying to write 1 record(s)");
    const res = await app.inject(binary());
    expectProblem(res, 503, "kafka-unavailable");
    expect(res.headers["retry-after"]).toBeDefined();
  });

  it("503 when the topic does not exist yet", async () => {
    const { app, kafka } = await setup();
    kafka.failWith = new Error(
      "Kafka refused to write 1 record(s): This server does not host this topic-partition",
    );
    const problem = expectProblem(await app.inject(binary()), 503, "kafka-unavailable");
    expect(problem.detail).toMatch(/does not exist \(yet\)/);
  });

  it("503 when Kafka does not acknowledge within the produce timeout; a retry gets the late answer", async () => {
    const { app, kafka } = await setup({ config: { auth: "token", produceTimeoutMs: 50 } });
    let release!: () => void;
    kafka.hang = new Promise<void>((r) => (release = r));
    const res = await app.inject(binary());
    expectProblem(res, 503, "kafka-unavailable");
    kafka.hang = undefined;
    release();
    await new Promise((r) => setTimeout(r, 10));
    const retry = await app.inject(binary());
    expect(retry.statusCode).toBe(202);
    expect(retry.headers["idempotent-replayed"]).toBe("true");
    expect(kafka.sent).toHaveLength(1);
  });

  it("503 when the Orchestration's signing key is not there yet, after one reload", async () => {
    const { app, kafka, directory } = await setup();
    directory.entries.set("shop/orders", entryOf(ORDERS, null));
    const res = await app.inject(binary());
    const problem = expectProblem(res, 503, "signing-key-unavailable");
    expect(problem.detail).toMatch(/orders-orchestration-signing-key/);
    expect(res.headers["retry-after"]).toBeDefined();
    expect(directory.reloads).toBe(1);
    expect(kafka.sent).toHaveLength(0);
  });

  it("signs once the reload finds the key the operator just created", async () => {
    const { app, kafka, directory } = await setup();
    directory.entries.set("shop/orders", entryOf(ORDERS, null));
    directory.onReload = () => entryOf(ORDERS);
    expect((await app.inject(binary())).statusCode).toBe(202);
    expect(kafka.sent[0]!.records[0]!.headers?.ce_dssematerial).toBeDefined();
  });

  it("503 before the Orchestrations are loaded", async () => {
    const { app, directory } = await setup();
    directory.isSynced = false;
    expectProblem(await app.inject(binary()), 503, "not-ready");
  });

  it("500 with a readable detail when the Orchestration's inputSchema does not compile", async () => {
    const key = generateSigningKey();
    const broken = {
      ...ORDERS,
      spec: { ...ORDERS.spec, inputSchema: { type: "object", properties: { a: { $ref: "#/nowhere" } } } },
    };
    const kafka = new FakeKafka();
    app = await build({
      kafka,
      orchestrations: new FakeDirectory(entryOf(broken, key)),
      tokens: tokenTable(),
    });
    const problem = expectProblem(await app.inject(binary()), 500, "invalid-input-schema");
    expect(problem.detail).toMatch(/spec\.inputSchema/);
  });
});

describe("without authentication (EVENTLOOM_GATEWAY_AUTH=none)", () => {
  it("accepts requests without a token", async () => {
    const { app } = await setup({ config: { auth: "none" }, tokens: undefined });
    expect((await app.inject(binary({ authorization: undefined }))).statusCode).toBe(202);
  });

  it("rate-limits per client address", async () => {
    const { app } = await setup({
      config: { auth: "none", rateLimitMax: 1, rateLimitWindowMs: 60_000 },
      tokens: undefined,
    });
    expect((await app.inject(binary({ authorization: undefined, "ce-id": "a" }))).statusCode).toBe(202);
    expectProblem(await app.inject(binary({ authorization: undefined, "ce-id": "b" })), 429, "rate-limited");
  });

  it("refuses to build with authentication on but no tokens", async () => {
    await expect(build({ kafka: new FakeKafka(), orchestrations: new FakeDirectory() })).rejects.toThrow(
      /no tokens/,
    );
  });
});

describe("operations endpoints", () => {
  it("/healthz answers ok without a token", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("/readyz says what is missing", async () => {
    const { app, kafka, directory } = await setup();
    expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    kafka.isReady = false;
    directory.isSynced = false;
    const res = await app.inject({ method: "GET", url: "/readyz" });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      status: "unavailable",
      checks: {
        kafka: { ok: false, detail: expect.stringMatching(/ECONNREFUSED/) },
        orchestrations: { ok: false },
      },
    });
  });

  it("/metrics counts requests by route and status and times produces", async () => {
    const { app } = await setup();
    await app.inject(binary());
    await app.inject(binary({ authorization: undefined }));
    const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toMatch(
      /eventloom_gateway_http_requests_total\{method="POST",route="\/namespaces\/:namespace\/orchestrations\/:name\/events",status="202"\} 1/,
    );
    expect(text).toMatch(/eventloom_gateway_http_requests_total\{[^}]*status="401"\} 1/);
    expect(text).toMatch(/eventloom_gateway_produce_duration_seconds_count\{outcome="acknowledged"\} 1/);
    expect(text).toMatch(/eventloom_gateway_events_total\{outcome="accepted"\} 1/);
  });

  it("/docs/json is an OpenAPI document with a request and a response schema on every route", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "GET", url: "/docs/json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{
      openapi: string;
      paths: Record<
        string,
        Record<string, { responses: Record<string, unknown>; parameters?: unknown[]; requestBody?: unknown }>
      >;
    }>();
    expect(doc.openapi).toBe("3.1.0");
    const paths = Object.keys(doc.paths).sort();
    expect(paths).toEqual([
      "/events",
      "/healthz",
      "/metrics",
      "/namespaces/{namespace}/orchestrations/{name}/deadletters",
      "/namespaces/{namespace}/orchestrations/{name}/deadletters/{id}",
      "/namespaces/{namespace}/orchestrations/{name}/deadletters/{id}/replay",
      "/namespaces/{namespace}/orchestrations/{name}/events",
      "/readyz",
    ]);
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(Object.keys(op.responses), `${method} ${path}`).not.toHaveLength(0);
      }
    }
    const post = doc.paths["/namespaces/{namespace}/orchestrations/{name}/events"]!.post!;
    expect(post.requestBody).toMatchObject({ content: { "application/cloudevents+json": {}, "*/*": {} } });
    expect(post.responses).toHaveProperty("202");
    expect(post.responses).toHaveProperty("422");
    expect((await app.inject({ method: "GET", url: "/docs" })).headers["content-type"]).toMatch(/text\/html/);
  });

  it("closes the shared clients when the app closes", async () => {
    const { app: built, kafka } = await setup();
    await built.close();
    app = undefined;
    expect(kafka.closed).toBe(true);
  });
});
