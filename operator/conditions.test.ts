import { describe, expect, it } from "vitest";
import {
  InvalidConditionError,
  MAX_CONDITION_MESSAGE_LENGTH,
  conditionsEqual,
  formatConditionTime,
  getCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
  setConditions,
  statusChanged,
} from "./conditions.ts";
import type { ConditionInput } from "./conditions.ts";
import type { Condition, OrchestrationStatus } from "./crds/types.ts";

/** A clock that moves only when told to. */
function fakeClock(start = "2025-03-01T10:00:00Z") {
  let now = new Date(start).getTime();
  return {
    now: () => new Date(now),
    advance(seconds: number) {
      now += seconds * 1000;
    },
  };
}

const T0 = "2025-03-01T10:00:00Z";
const T1 = "2025-03-01T10:01:00Z";

function aCondition(overrides: Partial<Condition> = {}): Condition {
  return {
    type: "Ready",
    status: "True",
    observedGeneration: 1,
    lastTransitionTime: T0,
    reason: "AllStepsBound",
    message: "every step has a Worker",
    ...overrides,
  };
}

function anInput(overrides: Partial<ConditionInput> = {}): ConditionInput {
  const { lastTransitionTime: _t, ...input } = aCondition();
  return { ...input, ...overrides };
}

describe("setCondition", () => {
  it.each<[string, Condition[] | undefined, ConditionInput, Condition[]]>([
    [
      "appends a new type with now as its transition time",
      undefined,
      anInput(),
      [aCondition({ lastTransitionTime: T1 })],
    ],
    [
      "keeps the transition time when only the reason and message change",
      [aCondition()],
      anInput({ reason: "Reconciled", message: "still fine" }),
      [aCondition({ reason: "Reconciled", message: "still fine" })],
    ],
    [
      "keeps the transition time when only observedGeneration changes",
      [aCondition()],
      anInput({ observedGeneration: 2 }),
      [aCondition({ observedGeneration: 2 })],
    ],
    [
      "moves the transition time when the status flips",
      [aCondition()],
      anInput({ status: "False", reason: "WorkerMissing", message: "step charge has no Worker" }),
      [
        aCondition({
          status: "False",
          reason: "WorkerMissing",
          message: "step charge has no Worker",
          lastTransitionTime: T1,
        }),
      ],
    ],
    [
      "moves the transition time when the status becomes Unknown",
      [aCondition()],
      anInput({ status: "Unknown", reason: "KafkaUnavailable" }),
      [aCondition({ status: "Unknown", reason: "KafkaUnavailable", lastTransitionTime: T1 })],
    ],
    [
      "replaces in place and leaves other types alone",
      [aCondition({ type: "TopicsReady" }), aCondition(), aCondition({ type: "WorkersBound" })],
      anInput({ status: "False", reason: "TopicsMissing" }),
      [
        aCondition({ type: "TopicsReady" }),
        aCondition({ status: "False", reason: "TopicsMissing", lastTransitionTime: T1 }),
        aCondition({ type: "WorkersBound" }),
      ],
    ],
    [
      "omits observedGeneration when none is given",
      [],
      (({ observedGeneration: _g, ...rest }) => rest)(anInput()),
      [(({ observedGeneration: _g, ...rest }) => rest)(aCondition({ lastTransitionTime: T1 }))],
    ],
  ])("%s", (_name, before, next, after) => {
    const clock = fakeClock(T0);
    clock.advance(60);
    expect(setCondition(before, next, clock.now())).toEqual(after);
  });

  it("does not change the list it was given", () => {
    const before = [aCondition()];
    const snapshot = structuredClone(before);
    const after = setCondition(before, anInput({ status: "False" }), new Date(T1));
    expect(before).toEqual(snapshot);
    expect(after).not.toBe(before);
  });

  it("keeps the first transition time across a run of same-status updates", () => {
    const clock = fakeClock(T0);
    let conditions = setCondition(
      undefined,
      anInput({ status: "False", reason: "WorkerMissing" }),
      clock.now(),
    );
    for (const reason of ["WorkerMissing", "TopicsMissing", "WorkerMissing"]) {
      clock.advance(30);
      conditions = setCondition(conditions, anInput({ status: "False", reason }), clock.now());
    }
    expect(getCondition(conditions, "Ready")?.lastTransitionTime).toBe(T0);
    clock.advance(30);
    conditions = setCondition(conditions, anInput({ status: "True" }), clock.now());
    expect(getCondition(conditions, "Ready")?.lastTransitionTime).toBe("2025-03-01T10:02:00Z");
  });

  it("truncates a message over metav1's limit instead of failing the status write", () => {
    const [condition] = setCondition([], anInput({ message: "x".repeat(40_000) }), new Date(T0));
    expect(condition?.message).toHaveLength(MAX_CONDITION_MESSAGE_LENGTH);
    expect(condition?.message.endsWith("… (truncated)")).toBe(true);
  });

  it.each<[string, Partial<ConditionInput>, string]>([
    ["a lower-case reason", { reason: "workerMissing" }, "must be CamelCase"],
    ["a reason with spaces", { reason: "Worker Missing" }, "must be CamelCase"],
    ["an empty reason", { reason: "" }, "must be CamelCase"],
    [
      "a status outside True/False/Unknown",
      { status: "Yes" as Condition["status"] },
      'status "Yes" must be one of True, False, Unknown',
    ],
    ["a type with spaces", { type: "Topics Ready" }, "the type must be a qualified name"],
    ["a negative observedGeneration", { observedGeneration: -1 }, "observedGeneration -1"],
  ])("refuses %s", (_name, overrides, message) => {
    expect(() => setCondition([], anInput(overrides), new Date(T0))).toThrow(InvalidConditionError);
    expect(() => setCondition([], anInput(overrides), new Date(T0))).toThrow(message);
  });
});

describe("setConditions", () => {
  it("sets several conditions at one time, in order", () => {
    const result = setConditions(
      [aCondition({ type: "TopicsReady" })],
      [
        anInput({ type: "TopicsReady", status: "False", reason: "KafkaUnavailable" }),
        anInput({ type: "WorkersBound" }),
      ],
      new Date(T1),
    );
    expect(result).toEqual([
      aCondition({
        type: "TopicsReady",
        status: "False",
        reason: "KafkaUnavailable",
        lastTransitionTime: T1,
      }),
      aCondition({ type: "WorkersBound", lastTransitionTime: T1 }),
    ]);
  });
});

describe("reading conditions", () => {
  const list = [aCondition(), aCondition({ type: "TopicsReady", status: "False" })];

  it.each<[string, Condition[] | undefined, string, boolean]>([
    ["a True condition is true", list, "Ready", true],
    ["a False condition is not true", list, "TopicsReady", false],
    ["a missing condition is not true", list, "WorkersBound", false],
    ["no list at all is not true", undefined, "Ready", false],
  ])("%s", (_name, conditions, type, expected) => {
    expect(isConditionTrue(conditions, type)).toBe(expected);
  });

  it("removeCondition drops only the named type, without changing the input", () => {
    expect(removeCondition(list, "Ready")).toEqual([list[1]]);
    expect(list).toHaveLength(2);
  });
});

describe("formatConditionTime", () => {
  it.each([
    ["drops milliseconds like metav1.Time", "2025-03-01T10:00:00.999Z", "2025-03-01T10:00:00Z"],
    ["keeps whole seconds", "2025-12-31T23:59:59Z", "2025-12-31T23:59:59Z"],
  ])("%s", (_name, input, expected) => {
    expect(formatConditionTime(new Date(input))).toBe(expected);
  });

  it("refuses an invalid date", () => {
    expect(() => formatConditionTime(new Date("nope"))).toThrow(InvalidConditionError);
  });
});

describe("conditionsEqual", () => {
  it.each<[string, Condition[] | undefined, Condition[] | undefined, boolean]>([
    ["identical lists are equal", [aCondition()], [aCondition()], true],
    [
      "a different lastTransitionTime alone is noise",
      [aCondition()],
      [aCondition({ lastTransitionTime: T1 })],
      true,
    ],
    [
      "a different order is noise",
      [aCondition(), aCondition({ type: "X" })],
      [aCondition({ type: "X" }), aCondition()],
      true,
    ],
    ["a missing list equals an empty one", undefined, [], true],
    ["a different status matters", [aCondition()], [aCondition({ status: "False" })], false],
    ["a different reason matters", [aCondition()], [aCondition({ reason: "Other" })], false],
    ["a different message matters", [aCondition()], [aCondition({ message: "other" })], false],
    [
      "a different observedGeneration matters",
      [aCondition()],
      [aCondition({ observedGeneration: 2 })],
      false,
    ],
    ["an extra condition matters", [aCondition()], [aCondition(), aCondition({ type: "X" })], false],
    ["a missing condition matters", [aCondition()], undefined, false],
  ])("%s", (_name, a, b, expected) => {
    expect(conditionsEqual(a, b)).toBe(expected);
    expect(conditionsEqual(b, a)).toBe(expected);
  });
});

describe("statusChanged", () => {
  function aStatus(overrides: Partial<OrchestrationStatus> = {}): OrchestrationStatus {
    return {
      observedGeneration: 1,
      conditions: [aCondition()],
      topics: ["eventloom.shop.checkout.charge"],
      missingWorkers: [],
      ...overrides,
    };
  }

  it.each<[string, OrchestrationStatus | undefined, OrchestrationStatus, boolean]>([
    ["no write when nothing changed", aStatus(), aStatus(), false],
    [
      "no write when only a condition's lastTransitionTime moved",
      aStatus(),
      aStatus({ conditions: [aCondition({ lastTransitionTime: T1 })] }),
      false,
    ],
    [
      "no write for an undefined field versus an absent one",
      aStatus(),
      { ...aStatus(), stepCount: undefined },
      false,
    ],
    [
      "no write for the same fields in another key order",
      aStatus(),
      {
        missingWorkers: [],
        topics: ["eventloom.shop.checkout.charge"],
        conditions: [aCondition()],
        observedGeneration: 1,
      },
      false,
    ],
    ["a write when no status is stored yet", undefined, aStatus(), true],
    ["a write when observedGeneration moved", aStatus(), aStatus({ observedGeneration: 2 }), true],
    [
      "a write when a condition flipped",
      aStatus(),
      aStatus({ conditions: [aCondition({ status: "False" })] }),
      true,
    ],
    ["a write when a list field changed", aStatus(), aStatus({ missingWorkers: ["charge"] }), true],
    ["a write when a field was dropped", aStatus(), (({ topics: _t, ...rest }) => rest)(aStatus()), true],
  ])("asks for %s", (_name, old, next, expected) => {
    expect(statusChanged(old, next)).toBe(expected);
  });

  it("reports no change after re-applying the same conditions a minute later", () => {
    const clock = fakeClock(T0);
    const stored = aStatus({ conditions: setCondition([], anInput(), clock.now()) });
    clock.advance(60);
    const next = { ...stored, conditions: setCondition(stored.conditions, anInput(), clock.now()) };
    expect(statusChanged(stored, next)).toBe(false);
  });
});
