import { describe, expect, it } from "vitest";
import { decodeRecord, encodeRecord, type KafkaHeaderValue, type KafkaRecord } from "./binding.ts";
import { type CloudEvent, CloudEventError, type CloudEventErrorCode, isRfc3339 } from "./cloudevent.ts";
import { anEvent, asConsumed } from "./test-fixtures.ts";

/** Decodes and fails the test with the binding's own message when the record is refused. */
function decoded(record: KafkaRecord): { event: CloudEvent; mode: string } {
  const result = decodeRecord(record);
  if (!result.ok) throw result.error;
  return result;
}

/** Plain-object view of an event, so null-prototype extension maps compare equal. */
function plain(event: CloudEvent): unknown {
  return { ...event, extensions: { ...event.extensions } };
}

function binaryRecord(
  headers: Record<string, KafkaHeaderValue>,
  value: Buffer | null = Buffer.from("{}"),
): KafkaRecord {
  return {
    key: null,
    value,
    headers: { ce_id: "1", ce_source: "/s", ce_specversion: "1.0", ce_type: "t", ...headers },
  };
}

function structuredRecord(json: string | Buffer, contentType = "application/cloudevents+json"): KafkaRecord {
  return { key: null, value: Buffer.from(json), headers: { "content-type": Buffer.from(contentType) } };
}

const STRUCTURED_BASE = '"specversion":"1.0","id":"1","source":"/s","type":"t"';

describe("binary and structured round trips", () => {
  it.each<[string, CloudEvent]>([
    ["a typical event with JSON data and extensions", anEvent()],
    [
      "an event with only the required attributes",
      anEvent({
        datacontenttype: undefined,
        subject: undefined,
        time: undefined,
        extensions: {},
        data: null,
      }),
    ],
    [
      "an event with binary data",
      anEvent({ datacontenttype: "application/octet-stream", data: Buffer.from([0, 255, 1, 254]) }),
    ],
    [
      "an event with text data",
      anEvent({ datacontenttype: "text/plain; charset=utf-8", data: Buffer.from("héllo ✓") }),
    ],
    ["an event with empty data", anEvent({ data: Buffer.alloc(0) })],
    ["JSON data with surrounding whitespace", anEvent({ data: Buffer.from('  {"a": 1}\n') })],
    ["data that claims JSON but is not", anEvent({ data: Buffer.from("{not json") })],
    [
      "a dataschema and a subject with non-ASCII text",
      anEvent({ dataschema: "https://schemas.example.com/order.json", subject: "Bestellung Nr. 42 – Köln" }),
    ],
  ])("%s survives both content modes byte for byte", (_name, event) => {
    for (const mode of ["binary", "structured"] as const) {
      const result = decoded(asConsumed(encodeRecord(event, mode)));
      expect(result.mode).toBe(mode);
      expect(plain(result.event)).toEqual(plain(event));
    }
  });

  it("binary mode puts attributes in ce_ headers, datacontenttype in content-type, partitionkey in the key, data in the value", () => {
    const event = anEvent({ dataschema: undefined });
    const message = encodeRecord(event);
    expect(message).toEqual({
      key: "run-7f3a",
      value: event.data,
      headers: {
        ce_id: event.id,
        ce_source: event.source,
        ce_specversion: "1.0",
        ce_type: event.type,
        "content-type": "application/json",
        ce_subject: "order-42",
        ce_time: "2025-06-18T19:24:53.123456+02:00",
        ce_partitionkey: "run-7f3a",
        ce_destination: "shop/orders/shipping",
      },
    });
    expect(message.value).toBe(event.data); // no copy, no re-serialization
  });

  it("encoding never emits an undefined header", () => {
    const message = encodeRecord(anEvent({ subject: undefined, time: undefined, dataschema: undefined }));
    expect(Object.values(message.headers).every((value) => typeof value === "string")).toBe(true);
  });

  it("structured mode embeds JSON data verbatim rather than re-serializing it", () => {
    const message = encodeRecord(anEvent(), "structured");
    expect(message.value?.toString()).toContain('"data":{"orderId":"42", "amount":1999,"currency":"EUR"}');
  });

  it("decoding keeps time exactly as sent instead of normalizing it", () => {
    const time = "2025-06-18T19:24:53.1234567+02:00";
    expect(decoded(binaryRecord({ ce_time: Buffer.from(time) })).event.time).toBe(time);
  });

  it("decoding binary mode hands back the record's value buffer itself", () => {
    const value = Buffer.from('{"x":1}');
    expect(decoded(binaryRecord({}, value)).event.data).toBe(value);
  });

  it.each<[string, string, Partial<CloudEvent>]>([
    [
      "text data under a non-JSON media type is the string's bytes",
      `{${STRUCTURED_BASE},"datacontenttype":"text/plain","data":"hi ✓"}`,
      { datacontenttype: "text/plain", data: Buffer.from("hi ✓") },
    ],
    [
      "JSON data without a datacontenttype is the raw JSON text",
      `{${STRUCTURED_BASE},"data": [1, 2 ,3] }`,
      { data: Buffer.from("[1, 2 ,3]") },
    ],
    [
      "a JSON string under a JSON media type keeps its quotes",
      `{${STRUCTURED_BASE},"datacontenttype":"application/json","data":"x"}`,
      { datacontenttype: "application/json", data: Buffer.from('"x"') },
    ],
    [
      "data_base64 is decoded to bytes",
      `{${STRUCTURED_BASE},"data_base64":"8J+koQ=="}`,
      { data: Buffer.from("8J+koQ==", "base64") },
    ],
    ["null data means no data", `{${STRUCTURED_BASE},"data":null}`, { data: null }],
    [
      "null optional attributes are absent",
      `{${STRUCTURED_BASE},"subject":null,"data":{}}`,
      { data: Buffer.from("{}") },
    ],
    [
      "boolean and integer extensions become their canonical strings",
      `{${STRUCTURED_BASE},"flag":true,"count":-7}`,
      { extensions: { flag: "true", count: "-7" }, data: null },
    ],
    [
      "an escaped member name is read as its value",
      `{${STRUCTURED_BASE},"d\\u0061ta":{"k":"v"}}`,
      { data: Buffer.from('{"k":"v"}') },
    ],
    [
      "strings with quotes and brackets inside data do not confuse the scanner",
      `{"data":{"s":"a\\"}]{["},${STRUCTURED_BASE}}`,
      { data: Buffer.from('{"s":"a\\"}]{["}') },
    ],
  ])("structured decoding: %s", (_name, json, expected) => {
    const event = decoded(structuredRecord(json)).event;
    expect(plain(event)).toEqual(
      plain({
        id: "1",
        source: "/s",
        specversion: "1.0",
        type: "t",
        extensions: {},
        ...expected,
      } as CloudEvent),
    );
  });

  it("accepts a structured content-type with parameters and odd casing", () => {
    const record = structuredRecord(`{${STRUCTURED_BASE}}`, "Application/CloudEvents+JSON; charset=UTF-8");
    expect(decoded(record).mode).toBe("structured");
  });

  it("accepts kafkajs single-element header arrays and string headers", () => {
    const record = binaryRecord({ ce_id: [Buffer.from("abc")], ce_subject: "plain string" });
    expect(decoded(record).event).toMatchObject({ id: "abc", subject: "plain string" });
  });
});

describe("records that are not valid CloudEvents", () => {
  const notUtf8 = Buffer.from([0x66, 0x6f, 0xc3, 0x28]);

  it.each<[string, KafkaRecord, CloudEventErrorCode, string]>([
    [
      "a missing ce_id",
      binaryRecord({ ce_id: undefined }),
      "missing-attribute",
      'required header "ce_id" is missing',
    ],
    ["a missing ce_source", binaryRecord({ ce_source: undefined }), "missing-attribute", "ce_source"],
    ["a missing ce_type", binaryRecord({ ce_type: undefined }), "missing-attribute", "ce_type"],
    [
      "a missing ce_specversion",
      binaryRecord({ ce_specversion: undefined }),
      "missing-attribute",
      "ce_specversion",
    ],
    [
      "specversion 0.3",
      binaryRecord({ ce_specversion: "0.3" }),
      "unsupported-specversion",
      'specversion "0.3" is not supported',
    ],
    [
      "an empty ce_source",
      binaryRecord({ ce_source: Buffer.alloc(0) }),
      "invalid-attribute",
      '"source" is present but empty',
    ],
    ["an empty ce_id", binaryRecord({ ce_id: "" }), "invalid-attribute", '"id" is present but empty'],
    [
      "a time that is not RFC 3339",
      binaryRecord({ ce_time: "18/06/2025 17:24" }),
      "invalid-attribute",
      "not an RFC 3339 timestamp",
    ],
    [
      "a time on a day that does not exist",
      binaryRecord({ ce_time: "2025-02-29T10:00:00Z" }),
      "invalid-attribute",
      "RFC 3339",
    ],
    [
      "a relative dataschema",
      binaryRecord({ ce_dataschema: "schemas/order.json" }),
      "invalid-attribute",
      "not an absolute URI",
    ],
    [
      "an upper-case attribute name",
      binaryRecord({ ce_runId: "r1" }),
      "invalid-attribute-name",
      'attribute name "runId" is not allowed',
    ],
    ["an upper-case prefix", binaryRecord({ CE_subject: "x" }), "invalid-attribute-name", 'lower-case "ce_"'],
    [
      "an extension name over 20 characters",
      binaryRecord({ ce_averyveryverylongname1: "x" }),
      "invalid-attribute-name",
      "1 to 20",
    ],
    [
      "an extension name with a separator",
      binaryRecord({ "ce_run-id": "x" }),
      "invalid-attribute-name",
      "run-id",
    ],
    ["an empty attribute name", binaryRecord({ ce_: "x" }), "invalid-attribute-name", "not allowed"],
    ["the reserved name data", binaryRecord({ ce_data: "x" }), "invalid-attribute-name", "reserved"],
    [
      "datacontenttype in a ce_ header",
      binaryRecord({ ce_datacontenttype: "application/json" }),
      "invalid-attribute",
      '"content-type" header',
    ],
    [
      "a repeated ce_ header",
      binaryRecord({ ce_id: [Buffer.from("1"), Buffer.from("2")] }),
      "duplicate-attribute",
      "appears 2 times",
    ],
    [
      "a header that is not UTF-8",
      binaryRecord({ ce_subject: notUtf8 }),
      "invalid-attribute",
      "not valid UTF-8",
    ],
    [
      "a key that disagrees with ce_partitionkey",
      { ...binaryRecord({ ce_partitionkey: "run-1" }), key: Buffer.from("run-2") },
      "partitionkey-mismatch",
      'record key "run-2" differs',
    ],
    [
      "batch mode",
      structuredRecord(`[{${STRUCTURED_BASE}}]`, "application/cloudevents-batch+json"),
      "unsupported-content-mode",
      "not supported",
    ],
    [
      "structured mode with bad JSON",
      structuredRecord(`{${STRUCTURED_BASE},}`),
      "invalid-json",
      "not valid JSON",
    ],
    [
      "structured mode that is not UTF-8",
      structuredRecord(
        Buffer.concat([Buffer.from(`{${STRUCTURED_BASE},"subject":"`), notUtf8, Buffer.from('"}')]),
      ),
      "invalid-json",
      "UTF-8",
    ],
    [
      "structured mode with a JSON array",
      structuredRecord(`[{${STRUCTURED_BASE}}]`),
      "invalid-structured-event",
      "batch mode",
    ],
    [
      "structured mode with no value",
      { key: null, value: null, headers: { "content-type": "application/cloudevents+json" } },
      "invalid-structured-event",
      "no value",
    ],
    [
      "structured mode without an id",
      structuredRecord('{"specversion":"1.0","source":"/s","type":"t"}'),
      "missing-attribute",
      '"id" is missing',
    ],
    [
      "structured mode with specversion 1.1",
      structuredRecord('{"specversion":"1.1","id":"1","source":"/s","type":"t"}'),
      "unsupported-specversion",
      "1.1",
    ],
    [
      "structured mode with a numeric source",
      structuredRecord('{"specversion":"1.0","id":"1","source":7,"type":"t"}'),
      "invalid-attribute",
      '"source" must be a string',
    ],
    [
      "structured mode with an object extension",
      structuredRecord(`{${STRUCTURED_BASE},"ext":{"a":1}}`),
      "invalid-attribute",
      "boolean or 32-bit integer",
    ],
    [
      "structured mode with an upper-case member",
      structuredRecord(`{${STRUCTURED_BASE},"runId":"r"}`),
      "invalid-attribute-name",
      "runId",
    ],
    [
      "structured mode with data and data_base64",
      structuredRecord(`{${STRUCTURED_BASE},"data":1,"data_base64":"AA=="}`),
      "invalid-structured-event",
      "both",
    ],
    [
      "structured mode with bad base64",
      structuredRecord(`{${STRUCTURED_BASE},"data_base64":"not base64!"}`),
      "invalid-structured-event",
      "not a base64",
    ],
    [
      "structured mode with an unpaired surrogate in an attribute",
      structuredRecord(`{${STRUCTURED_BASE},"subject":"\\ud800"}`),
      "invalid-attribute",
      "unpaired UTF-16 surrogate",
    ],
    [
      "structured mode with an unpaired surrogate in text data",
      structuredRecord(`{${STRUCTURED_BASE},"datacontenttype":"text/plain","data":"\\udc00"}`),
      "invalid-structured-event",
      "unpaired",
    ],
    [
      "structured mode with a repeated member",
      structuredRecord(`{${STRUCTURED_BASE},"id":"2"}`),
      "invalid-structured-event",
      '"id" appears more than once',
    ],
  ])("refuses %s", (_name, record, code, message) => {
    const result = decodeRecord(record);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toBeInstanceOf(CloudEventError);
    expect(result.error.code).toBe(code);
    expect(result.error.message).toContain(message);
  });

  it.each<[string, CloudEvent, CloudEventErrorCode]>([
    ["a missing id", { ...anEvent(), id: undefined as unknown as string }, "missing-attribute"],
    ["an invalid time", anEvent({ time: "yesterday" }), "invalid-attribute"],
    [
      "a core attribute among the extensions",
      anEvent({ extensions: { subject: "x" } }),
      "invalid-attribute-name",
    ],
    [
      "a CloudEvents envelope as datacontenttype in binary mode",
      anEvent({ datacontenttype: "application/cloudevents+json" }),
      "invalid-attribute",
    ],
  ])("encoding throws on an event with %s", (_name, event, code) => {
    expect(() => encodeRecord(event)).toThrow(expect.objectContaining({ code }));
  });
});

describe("RFC 3339 timestamps", () => {
  it.each([
    ["2025-06-18T17:24:53Z", true],
    ["2025-06-18t17:24:53.123456789z", true],
    ["2025-06-18T19:24:53+02:00", true],
    ["2024-02-29T00:00:00Z", true],
    ["2016-12-31T23:59:60Z", true],
    ["2025-02-29T00:00:00Z", false],
    ["2025-13-01T00:00:00Z", false],
    ["2025-06-18T24:00:00Z", false],
    ["2025-06-18T17:24:53", false],
    ["2025-06-18 17:24:53Z", false],
    ["2025-06-18T17:24:53+2:00", false],
    ["2025-06-18T17:24:53+24:00", false],
  ])("%s is valid: %s", (value, valid) => {
    expect(isRfc3339(value)).toBe(valid);
  });
});
