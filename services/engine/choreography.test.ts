import { describe, expect, it } from "vitest";
import type { OrchestrationSpec } from "../../operator/crds/types.ts";
import { observeEvent } from "./choreography.ts";
import type { ObservedInput } from "./choreography.ts";
import type { RunState } from "./model.ts";

const spec: OrchestrationSpec = {
  mode: "choreographed",
  steps: [
    { name: "create-order", subscribes: ["order.placed"], emits: ["order.created"] },
    { name: "reserve-inventory", subscribes: ["order.created"], emits: ["stock.reserved", "stock.failed"] },
    {
      name: "process-payment",
      subscribes: ["stock.reserved"],
      emits: ["payment.completed", "payment.failed"],
    },
    { name: "release-inventory", subscribes: ["payment.failed"], emits: ["stock.released"] },
    { name: "cancel-order", subscribes: ["payment.failed", "stock.failed"], emits: ["order.cancelled"] },
  ],
};

const T0 = Date.UTC(2025, 5, 18);

function input(id: string, from: string | undefined, type: string): ObservedInput {
  return {
    runId: "run-7",
    namespace: "shop",
    orchestration: "saga",
    generation: 2,
    spec,
    event: { id, source: from ? `/eventloom/shop/saga/${from}` : "/eventloom/shop/saga", type },
  };
}

function fold(events: Array<[string, string | undefined, string]>): RunState {
  let state: RunState | undefined;
  events.forEach(([id, from, type], i) => {
    state = observeEvent(state, input(id, from, type), T0 + i).state;
  });
  if (!state) throw new Error("no events");
  return state;
}

const statuses = (s: RunState) => Object.fromEntries(s.steps.map((x) => [x.name, x.status]));

describe("observing a choreography", () => {
  it("creates the run on its first event and marks the subscribed step Running", () => {
    const s = fold([["e1", undefined, "order.placed"]]);
    expect(s).toMatchObject({
      runId: "run-7",
      mode: "choreographed",
      status: "Running",
      generation: 2,
      version: 1,
    });
    expect(statuses(s)).toMatchObject({ "create-order": "Running", "reserve-inventory": "Pending" });
  });

  it("follows the happy path to Succeeded once every started step has emitted", () => {
    const s = fold([
      ["e1", undefined, "order.placed"],
      ["e2", "create-order", "order.created"],
      ["e3", "reserve-inventory", "stock.reserved"],
      ["e4", "process-payment", "payment.completed"],
    ]);
    expect(s.status).toBe("Succeeded");
    expect(statuses(s)).toEqual({
      "create-order": "Succeeded",
      "reserve-inventory": "Succeeded",
      "process-payment": "Succeeded",
      "release-inventory": "Pending",
      "cancel-order": "Pending",
    });
  });

  it("is Compensating between a failure and the compensating steps' answers, then Failed (seed 002 scenario 5)", () => {
    const failing: Array<[string, string | undefined, string]> = [
      ["e1", undefined, "order.placed"],
      ["e2", "create-order", "order.created"],
      ["e3", "reserve-inventory", "stock.reserved"],
      ["e4", "process-payment", "payment.failed"],
    ];
    const mid = fold(failing);
    expect(mid.status).toBe("Compensating");
    expect(statuses(mid)).toMatchObject({
      "process-payment": "Failed",
      "release-inventory": "Running",
      "cancel-order": "Running",
    });
    const end = fold([
      ...failing,
      ["e5", "release-inventory", "stock.released"],
      ["e6", "cancel-order", "order.cancelled"],
    ]);
    expect(end.status).toBe("Failed");
    expect(end.reason).toBe("step process-payment failed");
  });

  it("ignores the second copy of an event fanned out to two step topics", () => {
    const first = observeEvent(undefined, input("e1", undefined, "order.placed"), T0);
    const again = observeEvent(first.state, input("e1", undefined, "order.placed"), T0 + 1);
    expect(again.changed).toBe(false);
    expect(again.state.events).toHaveLength(1);
  });

  it("reports a step failure from a worker's io.eventloom.step.failed result", () => {
    const s = fold([
      ["e1", undefined, "order.placed"],
      ["e2", "create-order", "io.eventloom.step.failed"],
    ]);
    expect(s.status).toBe("Failed");
    expect(s.steps[0]?.error?.type).toBe("io.eventloom.step.failed");
  });
});

describe("choreography state copies", () => {
  it("share the spec and leave the input state untouched", () => {
    const first = observeEvent(undefined, input("e1", undefined, "order.placed"), T0).state;
    const before = structuredClone(first);
    const next = observeEvent(first, input("e2", "create-order", "order.created"), T0 + 1).state;
    expect(next.spec).toBe(first.spec);
    expect(next.version).toBe(first.version + 1);
    expect(first).toEqual(before);
  });
});
