import { describe, expect, it } from "vitest";
import type { CloudEvent } from "../events/cloudevent.ts";
import { checkCommand, orchestrationSource, parseCommandData, stepSource } from "./command.ts";

const TOPIC = "eventloom.shop.orders.create-order";
const SOURCE = orchestrationSource("shop", "orders");

function command(extensions: Record<string, string> = {}, overrides: Partial<CloudEvent> = {}): CloudEvent {
  return {
    id: "e-1",
    source: SOURCE,
    specversion: "1.0",
    type: "com.example.order.create",
    extensions: {
      partitionkey: "run-1",
      runid: "run-1",
      step: "create-order",
      attempt: "2",
      action: "do",
      destination: TOPIC,
      ...extensions,
    },
    data: Buffer.from('{"input":{"orderId":"ORD-1"}}'),
    ...overrides,
  };
}

const ALL_SIGNED = ["action", "attempt", "destination", "partitionkey", "runid", "step"];

describe("checkCommand", () => {
  it("accepts a signed command for this topic and reads its signed facts", () => {
    const check = checkCommand({
      event: command(),
      keyid: "k",
      signedExtensions: ALL_SIGNED,
      orchestrationSource: SOURCE,
      topic: TOPIC,
      step: "create-order",
    });
    expect(check).toEqual({
      ok: true,
      facts: {
        id: "e-1",
        runId: "run-1",
        step: "create-order",
        attempt: "2",
        action: "do",
        replayCount: undefined,
      },
    });
  });

  it("ignores extension values the signature does not cover", () => {
    const check = checkCommand({
      event: command({ action: "compensate", replaycount: "1" }),
      keyid: "k",
      signedExtensions: ["destination", "partitionkey"],
      orchestrationSource: SOURCE,
      topic: TOPIC,
      step: "create-order",
    });
    expect(check.ok && check.facts).toEqual({
      id: "e-1",
      runId: "run-1",
      step: "create-order",
      attempt: undefined,
      action: "do",
      replayCount: "1",
    });
  });

  it("takes an unsigned command's extensions as they are (policy none)", () => {
    const check = checkCommand({
      event: command({ action: "compensate" }),
      keyid: null,
      signedExtensions: [],
      orchestrationSource: SOURCE,
      topic: TOPIC,
      step: "create-order",
    });
    expect(check.ok && check.facts.action).toBe("compensate");
  });

  it.each([
    [
      "a step's source",
      command({}, { source: stepSource("shop", "orders", "create-order") }),
      "k",
      "not-authorized",
    ],
    [
      "another topic as destination",
      command({ destination: "eventloom.shop.orders.ship" }),
      "k",
      "wrong-destination",
    ],
    ["no destination on a signed command", command({ destination: "" }, {}), "k", "wrong-destination"],
    ["an unknown action", command({ action: "undo" }), "k", "invalid-command"],
    [
      "another topic as destination, unsigned",
      command({ destination: "elsewhere" }),
      null,
      "wrong-destination",
    ],
  ])("refuses a command with %s", (_what, event, keyid, reason) => {
    const check = checkCommand({
      event,
      keyid,
      signedExtensions: ALL_SIGNED,
      orchestrationSource: SOURCE,
      topic: TOPIC,
      step: "create-order",
    });
    expect(check.ok ? "ok" : check.reason).toBe(reason);
  });

  it("refuses a signed command whose destination is not signed", () => {
    const check = checkCommand({
      event: command(),
      keyid: "k",
      signedExtensions: ["partitionkey"],
      orchestrationSource: SOURCE,
      topic: TOPIC,
      step: "create-order",
    });
    expect(check.ok ? "ok" : check.reason).toBe("wrong-destination");
  });
});

describe("parseCommandData", () => {
  it.each([
    ["JSON", Buffer.from('{"a":1}'), { a: 1 }],
    ["no data", null, null],
    ["empty data", Buffer.alloc(0), null],
  ])("parses %s", (_what, data, expected) => {
    expect(parseCommandData(command({}, { data }))).toEqual(expected);
  });

  it("throws on data that is not JSON", () => {
    expect(() => parseCommandData(command({}, { data: Buffer.from("<xml/>") }))).toThrow(SyntaxError);
  });
});
