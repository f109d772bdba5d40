import { describe, expect, it } from "vitest";
import {
  afterFailure,
  DEAD_LETTER_HEADERS,
  deadLetterEnvelope,
  deadLetterHeaders,
  decideFailure,
  describeError,
  eventHeaders,
  firstDelivery,
  MAX_ERROR_MESSAGE_LENGTH,
  readDeadLetterEnvelope,
  RETRY_HEADERS,
  retryDelivery,
  retryHeaders,
} from "./delivery.ts";
import type { Delivery } from "./delivery.ts";
import { NonRetryableError } from "./errors.ts";

const TIERS = [
  { topic: "eventloom.shop.orders-retry-1000", delayMs: 1000 },
  { topic: "eventloom.shop.orders-retry-2000", delayMs: 2000 },
  { topic: "eventloom.shop.orders-retry-4000", delayMs: 4000 },
];
const T0 = Date.parse("2026-01-30T12:00:00Z");
const record = { topic: "eventloom.shop.orders.create-order", partition: 0, offset: "456" };
const eventHeadersOnWire = {
  ce_id: Buffer.from("e-1"),
  ce_source: Buffer.from("/eventloom/shop/orders"),
  ce_dssematerial: Buffer.from("eyJwYXlsb2FkIjoi"),
  "content-type": Buffer.from("application/json"),
  traceparent: Buffer.from("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
};
const duplicate = { errorType: "ValueError", errorMessage: "Duplicate order ID: ORD-123 already exists." };

/** Plays seed 001's timeline: a handler failing at 0 s, 1 s, 3 s and 7 s. */
function failFourTimes(): { decisions: ReturnType<typeof decideFailure>[]; last: Delivery; lastAt: number } {
  let delivery = firstDelivery(record);
  let now = T0;
  const decisions: ReturnType<typeof decideFailure>[] = [];
  for (;;) {
    const decision = decideFailure(delivery, TIERS, true, now);
    decisions.push(decision);
    const failed = afterFailure(delivery, duplicate, now);
    if (decision.kind !== "retry") return { decisions, last: failed, lastAt: now };
    // The next attempt reads the record back from the tier once it is due.
    const parsed = retryDelivery(
      retryHeaders(eventHeadersOnWire, failed, decision) as Record<string, string>,
    );
    if (parsed === undefined) throw new Error("retry headers did not parse");
    delivery = parsed;
    now = decision.dueMs;
  }
}

describe("retry scheduling", () => {
  it("follows seed 001: retry after 1 s, 2 s, 4 s, then dead-letter 7 s after the first failure", () => {
    const { decisions, last, lastAt } = failFourTimes();
    expect(decisions.map((d) => (d.kind === "retry" ? `${d.tier.topic}@${d.dueMs - T0}` : d.why))).toEqual([
      "eventloom.shop.orders-retry-1000@1000",
      "eventloom.shop.orders-retry-2000@3000",
      "eventloom.shop.orders-retry-4000@7000",
      "exhausted",
    ]);
    expect(lastAt - T0).toBe(7000);
    expect(last.retryCount).toBe(3);
    expect(last.errors.map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    expect(last.firstFailureMs).toBe(T0);
  });

  it.each([
    ["a non-retryable error", 0, false, "dead-letter"],
    ["no retry tiers", 0, true, "dead-letter"],
  ])("dead-letters at once on %s", (_what, retryCount, retryable, kind) => {
    const tiers = _what === "no retry tiers" ? [] : TIERS;
    expect(decideFailure({ retryCount }, tiers, retryable, T0).kind).toBe(kind);
  });

  it("keeps the event's headers byte for byte and replaces trace context and earlier delivery headers", () => {
    const { decisions } = failFourTimes();
    const first = decisions[0];
    if (first?.kind !== "retry") throw new Error("expected a retry");
    const headers = retryHeaders(
      { ...eventHeadersOnWire, [RETRY_HEADERS.count]: "7" },
      afterFailure(firstDelivery(record), duplicate, T0),
      first,
    );
    expect(headers.ce_id).toBe(eventHeadersOnWire.ce_id);
    expect(headers.ce_dssematerial).toBe(eventHeadersOnWire.ce_dssematerial);
    expect(headers["content-type"]).toBe(eventHeadersOnWire["content-type"]);
    expect(headers.traceparent).toBeUndefined();
    expect(headers).toMatchObject({
      [RETRY_HEADERS.count]: "1",
      [RETRY_HEADERS.due]: String(T0 + 1000),
      [RETRY_HEADERS.originalTopic]: record.topic,
      [RETRY_HEADERS.originalPartition]: "0",
      [RETRY_HEADERS.originalOffset]: "456",
      [RETRY_HEADERS.firstFailure]: String(T0),
    });
  });

  it.each([
    ["no retry count", { [RETRY_HEADERS.count]: undefined }],
    ["a retry count of 0", { [RETRY_HEADERS.count]: "0" }],
    ["no due time", { [RETRY_HEADERS.due]: undefined }],
    ["a negative offset", { [RETRY_HEADERS.originalOffset]: "-1" }],
    ["no original topic", { [RETRY_HEADERS.originalTopic]: "" }],
  ])("does not read a retry record with %s", (_what, edit) => {
    const headers: Record<string, string | undefined> = {
      [RETRY_HEADERS.count]: "1",
      [RETRY_HEADERS.due]: "1",
      [RETRY_HEADERS.originalTopic]: "t",
      [RETRY_HEADERS.originalPartition]: "0",
      [RETRY_HEADERS.originalOffset]: "3",
      ...edit,
    };
    expect(retryDelivery(headers)).toBeUndefined();
  });

  it("survives a garbled error list", () => {
    const parsed = retryDelivery({
      [RETRY_HEADERS.count]: "1",
      [RETRY_HEADERS.due]: "1",
      [RETRY_HEADERS.originalTopic]: "t",
      [RETRY_HEADERS.originalPartition]: "0",
      [RETRY_HEADERS.originalOffset]: "3",
      [RETRY_HEADERS.errors]: "{not json",
    });
    expect(parsed?.errors).toEqual([]);
  });
});

describe("dead-letter envelope", () => {
  it("has seed 001's fields after three retries and four failed attempts", () => {
    const { last, lastAt } = failFourTimes();
    const value = Buffer.from('{"orderId":"ORD-123","customerId":"CUST-001"}');
    const envelope = deadLetterEnvelope({
      value,
      delivery: last,
      error: duplicate,
      consumerGroup: "order-service-group",
      nowMs: lastAt,
    });
    expect(envelope).toEqual({
      originalMessage: '{"orderId":"ORD-123","customerId":"CUST-001"}',
      errorMessage: "Duplicate order ID: ORD-123 already exists.",
      errorType: "ValueError",
      retryCount: 3,
      failedAttempts: 4,
      firstFailureTimestamp: "2026-01-30T12:00:00.000Z",
      lastFailureTimestamp: "2026-01-30T12:00:07.000Z",
      originalTopic: "eventloom.shop.orders.create-order",
      originalPartition: 0,
      originalOffset: 456,
      consumerGroup: "order-service-group",
    });
  });

  it("travels as headers next to the untouched event and reads back the same", () => {
    const { last, lastAt } = failFourTimes();
    const value = Buffer.from('{"orderId":"ORD-123"}');
    const envelope = deadLetterEnvelope({
      value,
      delivery: last,
      error: duplicate,
      consumerGroup: "g",
      nowMs: lastAt,
    });
    const headers = deadLetterHeaders(eventHeadersOnWire, envelope, { errors: last.errors });
    expect(headers.ce_dssematerial).toBe(eventHeadersOnWire.ce_dssematerial);
    expect(headers[DEAD_LETTER_HEADERS.errorType]).toBe("ValueError");
    expect(headers[DEAD_LETTER_HEADERS.reason]).toBeUndefined();
    const wire = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v ?? "")]));
    expect(readDeadLetterEnvelope({ value, headers: wire })).toEqual(envelope);
  });

  it("records a signature failure on the first delivery as zero retries and one failed attempt", () => {
    const failed = afterFailure(
      firstDelivery(record),
      { errorType: "SignatureError", errorMessage: "bad" },
      T0,
    );
    const envelope = deadLetterEnvelope({
      value: null,
      delivery: failed,
      error: { errorType: "SignatureError", errorMessage: "bad" },
      consumerGroup: "g",
      nowMs: T0,
    });
    expect(envelope).toMatchObject({
      retryCount: 0,
      failedAttempts: 1,
      originalMessage: "",
      firstFailureTimestamp: envelope.lastFailureTimestamp,
    });
    expect(
      deadLetterHeaders({}, envelope, { errors: failed.errors, reason: "bad-signature" })[
        DEAD_LETTER_HEADERS.reason
      ],
    ).toBe("bad-signature");
  });

  it("is not read from a record without the headers", () => {
    expect(readDeadLetterEnvelope({ value: null, headers: eventHeadersOnWire })).toBeUndefined();
  });
});

describe("describeError", () => {
  it.each([
    [
      "an Error subclass",
      new NonRetryableError("declined", { name: "PaymentDeclined" }),
      "PaymentDeclined",
      "declined",
    ],
    ["a plain Error", new Error("boom"), "Error", "boom"],
    ["a string", "just text", "Error", "just text"],
    ["an object", { code: 7 }, "Error", '{"code":7}'],
  ])("describes %s", (_what, err, errorType, errorMessage) => {
    expect(describeError(err)).toEqual({ errorType, errorMessage });
  });

  it("bounds a long message", () => {
    expect(describeError(new Error("x".repeat(10_000))).errorMessage).toHaveLength(MAX_ERROR_MESSAGE_LENGTH);
  });

  it("keeps only the error headers out of the event headers", () => {
    expect(
      Object.keys(eventHeaders({ ...eventHeadersOnWire, "eventloom-retry-count": "2", tracestate: "a=b" })),
    ).toEqual(["ce_id", "ce_source", "ce_dssematerial", "content-type"]);
  });
});
