import { describe, expect, it } from "vitest";
import type { IncomingRecord } from "../../kafka/client.ts";
import { deadLetterOf, envelopeFields, replayCountOf, replayHeaders } from "./envelope.ts";

function record(
  headers: Record<string, string | Buffer>,
  value: Buffer | null = Buffer.from("{}"),
): IncomingRecord {
  return {
    topic: "t-dlt",
    partition: 2,
    offset: "17",
    key: null,
    value,
    headers: Object.fromEntries(
      Object.entries(headers).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)]),
    ),
    timestamp: "1769774400000",
  };
}

describe("envelopeFields", () => {
  it("reads the worker SDK's eventloom-dlt-* headers and ignores others", () => {
    const r = record({
      "eventloom-dlt-error-type": "ValueError",
      "eventloom-dlt-reason": "bad-signature",
      "eventloom-dlt-color": "red",
      "eventloom-retry-count": "2",
    });
    expect(envelopeFields(r.headers)).toEqual({ errorType: "ValueError", reason: "bad-signature" });
  });
});

describe("deadLetterOf", () => {
  it("lists the failed attempts the SDK recorded, skipping garbage", () => {
    const errors = [
      { attempt: 1, errorType: "ValueError", errorMessage: "no", timestamp: "2026-01-30T12:00:00.000Z" },
      "garbage",
      {
        attempt: 2,
        errorType: "ValueError",
        errorMessage: "still no",
        timestamp: "2026-01-30T12:00:01.000Z",
      },
    ];
    expect(
      deadLetterOf(record({ "eventloom-errors": JSON.stringify(errors) })).attempts?.map((a) => a.attempt),
    ).toEqual([1, 2]);
    expect(deadLetterOf(record({ "eventloom-errors": "{not json" })).attempts).toBeUndefined();
  });

  it("reads timestamps as RFC 3339 or epoch ms, and binary data as base64", () => {
    const letter = deadLetterOf(
      record(
        {
          "eventloom-dlt-first-failure-timestamp": "1769774400000",
          "eventloom-dlt-last-failure-timestamp": "2026-01-30T12:00:07+01:00",
          ce_id: "x",
        },
        Buffer.from([0xff, 0x00, 0x01]),
      ),
    );
    expect(letter).toMatchObject({
      id: "2-17",
      firstFailureTimestamp: "2026-01-30T12:00:00.000Z",
      lastFailureTimestamp: "2026-01-30T11:00:07.000Z",
      originalMessageBase64: "/wAB",
      replayCount: 0,
      event: { id: "x" },
    });
    expect(letter.originalMessage).toBeUndefined();
  });
});

describe("replay headers", () => {
  it("keep ce_* and content-type byte for byte, drop delivery headers, and raise replaycount", () => {
    const raw = Buffer.from([0x63, 0xc3, 0xa9]);
    const r = record({
      ce_id: "x",
      ce_subject: raw,
      "content-type": "application/json",
      ce_replaycount: "1",
      "eventloom-dlt-error-type": "E",
      "eventloom-retry-count": "3",
    });
    expect(replayCountOf(r.headers)).toBe(1);
    const headers = replayHeaders(r, 2);
    expect(Object.keys(headers).sort()).toEqual(["ce_id", "ce_replaycount", "ce_subject", "content-type"]);
    expect(headers.ce_subject!.equals(raw)).toBe(true);
    expect(headers.ce_replaycount!.toString()).toBe("2");
  });

  it("treat a garbled replaycount as 0", () => {
    expect(replayCountOf(record({ ce_replaycount: "lots" }).headers)).toBe(0);
  });
});
