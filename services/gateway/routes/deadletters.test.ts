/**
 * The dead-letter API over a fake Kafka: seed 001's list and filters, show, replay (value and ce_*
 * headers byte for byte, replaycount raised, refused at maxReplays or for a foreign topic), purge.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { build } from "../app.ts";
import {
  CLICKS,
  deadLetterRecord,
  entryOf,
  FakeDirectory,
  FakeKafka,
  ORDERS,
  tokenTable,
  TOKENS,
} from "../test-support.ts";

const DLT = "eventloom.shop.orders-dlt";
const BASE = "/namespaces/shop/orchestrations/orders/deadletters";
const auth = { authorization: `Bearer ${TOKENS.shop}` };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function setup(): Promise<{ app: FastifyInstance; kafka: FakeKafka }> {
  const kafka = new FakeKafka();
  kafka.deadLetters.set(DLT, {
    logStart: 0n,
    records: [
      deadLetterRecord({
        topic: DLT,
        offset: 0,
        errorType: "ValueError",
        errorMessage: "Duplicate order ID: DUP-001",
        lastFailure: "2026-01-30T12:00:07Z",
      }),
      deadLetterRecord({
        topic: DLT,
        offset: 1,
        errorType: "ValueError",
        errorMessage: "Order ORD-999 not found",
        lastFailure: "2026-01-30T12:05:07Z",
      }),
      deadLetterRecord({
        topic: DLT,
        offset: 2,
        errorType: "SignatureError",
        lastFailure: "1769774520000" /* epoch ms: 12:02:00Z */,
        replayCount: 2,
        originalTopic: "eventloom.shop.orders.create-order",
      }),
      deadLetterRecord({
        topic: DLT,
        offset: 3,
        partition: 1,
        errorType: "ValueError",
        originalTopic: "eventloom.billing.other.step",
      }),
    ],
  });
  app = await build({
    kafka,
    orchestrations: new FakeDirectory(entryOf(ORDERS), entryOf(CLICKS, null)),
    tokens: tokenTable(),
  });
  return { app, kafka };
}

function expectProblem(res: LightMyRequestResponse, status: number, kind: string): Record<string, unknown> {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const problem = res.json<Record<string, unknown>>();
  expect(problem.type).toBe(`urn:eventloom:problem:${kind}`);
  return problem;
}

interface ListBody {
  total: number;
  complete: boolean;
  topic: string;
  messages: Array<Record<string, unknown>>;
  partitions: unknown[];
}

describe("GET deadletters", () => {
  it("lists seed 001's envelope fields, newest failure first", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "GET", url: BASE, headers: auth });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<ListBody>();
    expect(body).toMatchObject({ topic: DLT, total: 4, complete: true, orchestration: "shop/orders" });
    expect(body.messages.map((m) => m.id)).toEqual(["0-1", "0-2", "1-3", "0-0"]);
    expect(body.messages[0]).toEqual({
      id: "0-1",
      partition: 0,
      offset: "1",
      deadLetteredAt: "2026-01-30T12:00:08.000Z",
      originalMessage: '{"orderId":"ORD-999","status":"shipped"}',
      errorMessage: "Order ORD-999 not found",
      errorType: "ValueError",
      retryCount: 3,
      failedAttempts: 4,
      firstFailureTimestamp: "2026-01-30T12:00:00.000Z",
      lastFailureTimestamp: "2026-01-30T12:05:07.000Z",
      originalTopic: "eventloom.shop.orders.take-payment",
      originalPartition: 0,
      originalOffset: "456",
      consumerGroup: "eventloom.shop.payments",
      replayCount: 0,
      key: "run-1",
      event: {
        specversion: "1.0",
        id: "cmd-1",
        source: "/eventloom/shop/orders",
        type: "com.example.payment.take",
        partitionkey: "run-1",
        datacontenttype: "application/json",
      },
    });
  });

  it.each([
    ["errorType", "?errorType=SignatureError", ["0-2"]],
    ["original topic", "?topic=eventloom.shop.orders.create-order", ["0-2"]],
    ["since (inclusive)", "?since=2026-01-30T12:05:07Z", ["0-1"]],
    ["until (exclusive)", "?until=2026-01-30T12:00:07.001Z", ["1-3", "0-0"]],
    ["limit", "?limit=2", ["0-1", "0-2"]],
    ["errorType and limit", "?errorType=ValueError&limit=1", ["0-1"]],
  ])("filters by %s", async (_name, query, ids) => {
    const { app } = await setup();
    const body = (await app.inject({ method: "GET", url: BASE + query, headers: auth })).json<ListBody>();
    expect(body.messages.map((m) => m.id)).toEqual(ids);
  });

  it.each([
    ["since is not a time", "?since=yesterday", "bad-request"],
    ["limit is out of range", "?limit=5000", "bad-request"],
    ["an unknown parameter is given", "?color=red", "bad-request"],
  ])("400 when %s", async (_name, query, kind) => {
    const { app } = await setup();
    expectProblem(await app.inject({ method: "GET", url: BASE + query, headers: auth }), 400, kind);
  });

  it("401 without a token, 403 for another namespace's token", async () => {
    const { app } = await setup();
    expectProblem(await app.inject({ method: "GET", url: BASE }), 401, "unauthorized");
    const scoped = await app.inject({
      method: "GET",
      url: BASE,
      headers: { authorization: `Bearer ${TOKENS.checkoutOnly}` },
    });
    expect(scoped.statusCode).toBe(200);
    expectProblem(
      await app.inject({
        method: "GET",
        url: "/namespaces/billing/orchestrations/invoices/deadletters",
        headers: auth,
      }),
      403,
      "forbidden",
    );
  });

  it("404 for an Orchestration without dead-lettering, or an unknown one", async () => {
    const { app } = await setup();
    expectProblem(
      await app.inject({
        method: "GET",
        url: "/namespaces/shop/orchestrations/clicks/deadletters",
        headers: auth,
      }),
      404,
      "dead-letters-disabled",
    );
    expectProblem(
      await app.inject({
        method: "GET",
        url: "/namespaces/shop/orchestrations/nope/deadletters",
        headers: auth,
      }),
      404,
      "orchestration-not-found",
    );
  });

  it("503 with Retry-After while Kafka is unreachable", async () => {
    const { app, kafka } = await setup();
    kafka.isReady = false;
    const res = await app.inject({ method: "GET", url: BASE, headers: auth });
    expectProblem(res, 503, "kafka-unavailable");
    expect(res.headers["retry-after"]).toBeDefined();
  });

  it("shows one dead letter by <partition>-<offset>, and 404s an unknown one", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "GET", url: `${BASE}/1-3`, headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: "1-3", partition: 1, errorType: "ValueError" });
    expectProblem(
      await app.inject({ method: "GET", url: `${BASE}/0-99`, headers: auth }),
      404,
      "dead-letter-not-found",
    );
    expectProblem(
      await app.inject({ method: "GET", url: `${BASE}/zero`, headers: auth }),
      400,
      "bad-request",
    );
  });
});

describe("POST deadletters/:id/replay", () => {
  it("writes value and ce_* headers byte for byte to the original topic, with replaycount raised and delivery headers dropped", async () => {
    const { app, kafka } = await setup();
    const res = await app.inject({ method: "POST", url: `${BASE}/0-1/replay`, headers: auth });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toEqual({
      id: "0-1",
      replayCount: 1,
      maxReplays: 2,
      topic: "eventloom.shop.orders.take-payment",
      partition: 0,
      offset: "0",
    });
    expect(kafka.sent).toHaveLength(1);
    const original = deadLetterRecord({ topic: DLT, offset: 1 });
    const [written] = kafka.sent[0]!.records;
    expect(kafka.sent[0]!.topic).toBe("eventloom.shop.orders.take-payment");
    expect(Buffer.from(written!.value as Buffer).equals(original.value!)).toBe(true);
    expect(written!.key).toEqual(original.key);
    const headers = written!.headers as Record<string, Buffer>;
    for (const name of [
      "ce_specversion",
      "ce_id",
      "ce_source",
      "ce_type",
      "ce_partitionkey",
      "ce_dssematerial",
      "ce_signedextattrs",
      "content-type",
    ]) {
      expect(Buffer.from(headers[name]!).equals(original.headers[name]!), name).toBe(true);
    }
    expect(headers.ce_replaycount?.toString()).toBe("1");
    expect(Object.keys(headers).filter((h) => h.startsWith("eventloom-"))).toEqual([]);
    // Same trace as the failed event.
    expect(headers.traceparent?.toString()).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-/);
  });

  it("409 once replaycount reached deadLetter.maxReplays", async () => {
    const { app, kafka } = await setup();
    const problem = expectProblem(
      await app.inject({ method: "POST", url: `${BASE}/0-2/replay`, headers: auth }),
      409,
      "replay-limit-reached",
    );
    expect(problem).toMatchObject({ replayCount: 2, maxReplays: 2 });
    expect(kafka.sent).toHaveLength(0);
  });

  it("422 for a dead letter whose original topic is not the Orchestration's", async () => {
    const { app, kafka } = await setup();
    const problem = expectProblem(
      await app.inject({ method: "POST", url: `${BASE}/1-3/replay`, headers: auth }),
      422,
      "not-replayable",
    );
    expect(problem.detail).toMatch(/eventloom\.billing\.other\.step/);
    expect(kafka.sent).toHaveLength(0);
  });
});

describe("DELETE deadletters", () => {
  it("purges up to the end offsets captured at request time", async () => {
    const { app } = await setup();
    const res = await app.inject({ method: "DELETE", url: BASE, headers: auth });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ topic: DLT, purged: expect.any(Number) });
    const after = (await app.inject({ method: "GET", url: BASE, headers: auth })).json<ListBody>();
    expect(after.total).toBe(0);
  });
});
