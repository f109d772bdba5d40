import { describe, expect, it } from "vitest";
import { cloudEventProblem } from "../events/cloudevent.ts";
import { resultEvent, STEP_COMPLETED, STEP_FAILED } from "./results.ts";
import type { CommandFacts } from "./results.ts";

const facts: CommandFacts = {
  id: "cmd-1",
  runId: "run-1",
  step: "reserve-inventory",
  attempt: "1",
  action: "do",
  replayCount: undefined,
};
const SOURCE = "/eventloom/shop/orders/reserve-inventory";
const time = new Date("2026-01-30T12:00:00Z");

describe("resultEvent", () => {
  it("builds step.completed with the handler's output and the command's run, step, attempt, action and causation", () => {
    const event = resultEvent({
      source: SOURCE,
      command: facts,
      outcome: { ok: true, output: { reserved: 2 } },
      id: "r-1",
      time,
    });
    expect(cloudEventProblem(event)).toBeUndefined();
    expect(event).toMatchObject({
      id: "r-1",
      source: SOURCE,
      type: STEP_COMPLETED,
      datacontenttype: "application/json",
      subject: "reserve-inventory",
      time: "2026-01-30T12:00:00.000Z",
      extensions: {
        partitionkey: "run-1",
        runid: "run-1",
        step: "reserve-inventory",
        attempt: "1",
        action: "do",
        causationid: "cmd-1",
      },
    });
    expect(event.data?.toString()).toBe('{"reserved":2}');
  });

  it("builds step.failed with errorType, errorMessage and attempts", () => {
    const event = resultEvent({
      source: SOURCE,
      command: { ...facts, action: "compensate", replayCount: "1" },
      outcome: { ok: false, errorType: "OutOfStock", errorMessage: "no stock for P-1", attempts: 4 },
    });
    expect(event.type).toBe(STEP_FAILED);
    expect(event.extensions).toMatchObject({ action: "compensate", replaycount: "1" });
    expect(JSON.parse(event.data?.toString() ?? "")).toEqual({
      errorType: "OutOfStock",
      errorMessage: "no stock for P-1",
      attempts: 4,
    });
  });

  it("encodes an undefined output as null", () => {
    expect(
      resultEvent({
        source: SOURCE,
        command: facts,
        outcome: { ok: true, output: undefined },
      }).data?.toString(),
    ).toBe("null");
  });

  it("throws a TypeError for an output JSON cannot encode", () => {
    expect(() =>
      resultEvent({ source: SOURCE, command: facts, outcome: { ok: true, output: { n: 1n } } }),
    ).toThrow(TypeError);
  });
});
