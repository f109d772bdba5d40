import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { CloudEvent } from "./cloudevent.ts";
import { materialDigest } from "./material.ts";
import { anEvent } from "./test-fixtures.ts";

/** The layout of docs/signing.md, written out independently of material.ts. */
function expectedDigest(event: CloudEvent, names: string[]): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const field = (value: string | undefined) =>
    value === undefined
      ? Buffer.from([0])
      : Buffer.concat([Buffer.from([1]), u32(Buffer.byteLength(value)), Buffer.from(value)]);
  for (const name of [
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
  ] as const) {
    parts.push(field(event[name]));
  }
  parts.push(u32(names.length));
  for (const name of names) parts.push(u32(name.length), Buffer.from(name), field(event.extensions[name]));
  const data = event.data ?? Buffer.alloc(0);
  parts.push(u32(data.length), data);
  return createHash("sha256").update(Buffer.concat(parts)).digest();
}

describe("verification material", () => {
  it.each<[string, CloudEvent, string[]]>([
    ["a typical event", anEvent(), ["destination", "partitionkey"]],
    [
      "an event with no optional attributes or data",
      anEvent({ datacontenttype: undefined, subject: undefined, time: undefined, data: null }),
      [],
    ],
    ["non-ASCII attributes", anEvent({ subject: "Köln – 東京 🚚" }), ["partitionkey"]],
    [
      "data large enough to be streamed into the hash",
      anEvent({ data: Buffer.alloc(100_000, 7) }),
      ["partitionkey"],
    ],
    ["a listed extension that is absent", anEvent(), ["partitionkey", "missing"]],
  ])("follows the documented layout for %s", (_name, event, names) => {
    expect(materialDigest(event, names)).toEqual(expectedDigest(event, names));
  });

  it("matches the worked example in docs/signing.md (changing it needs a new payloadType)", () => {
    const example: CloudEvent = {
      id: "1",
      source: "/eventloom/shop/orders/payment",
      specversion: "1.0",
      type: "io.eventloom.step.completed",
      datacontenttype: "application/json",
      time: "2025-06-18T17:24:53Z",
      extensions: { partitionkey: "run-1", destination: "shop/orders/shipping" },
      data: Buffer.from('{"orderId":"42"}'),
    };
    expect(materialDigest(example, ["partitionkey", "destination"]).toString("hex")).toBe(
      "0b6e7cefde3dbf52c014637e3ece3ad7b333532f1ce408caf5a761b1be36ff1b",
    );
  });

  it.each<[string, CloudEvent, string[], CloudEvent, string[]]>([
    [
      "bytes moved from one attribute to the next",
      anEvent({ id: "ab", source: "c" }),
      [],
      anEvent({ id: "a", source: "bc" }),
      [],
    ],
    [
      "an absent attribute and an empty one",
      anEvent({ subject: undefined }),
      [],
      anEvent({ subject: "" }),
      [],
    ],
    [
      "an absent listed extension and an empty one",
      anEvent({ extensions: {} }),
      ["x"],
      anEvent({ extensions: { x: "" } }),
      ["x"],
    ],
    ["a listed extension and an unlisted one", anEvent(), ["partitionkey"], anEvent(), []],
    [
      "the same extensions listed in another order",
      anEvent(),
      ["partitionkey", "destination"],
      anEvent(),
      ["destination", "partitionkey"],
    ],
    [
      "an extension value and data with the same bytes",
      anEvent({ extensions: { x: "ab" }, data: null }),
      ["x"],
      anEvent({ extensions: {}, data: Buffer.from("ab") }),
      [],
    ],
    [
      "time written in two zones",
      anEvent({ time: "2025-06-18T17:24:53Z" }),
      [],
      anEvent({ time: "2025-06-18T19:24:53+02:00" }),
      [],
    ],
  ])("tells apart %s", (_name, a, aNames, b, bNames) => {
    expect(materialDigest(a, aNames)).not.toEqual(materialDigest(b, bNames));
  });

  it("treats no data and empty data alike, as Kafka clients often do", () => {
    expect(materialDigest(anEvent({ data: null }), [])).toEqual(
      materialDigest(anEvent({ data: Buffer.alloc(0) }), []),
    );
  });

  it("ignores extensions it is not asked to cover", () => {
    const traced = anEvent({
      extensions: {
        ...anEvent().extensions,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      },
    });
    expect(materialDigest(traced, ["partitionkey"])).toEqual(materialDigest(anEvent(), ["partitionkey"]));
  });
});
