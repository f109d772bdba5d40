import { describe, expect, it } from "vitest";
import type { OrchestrationSpec, Step } from "../../operator/crds/types.ts";
import {
  applyResult,
  applyTimers,
  commandId,
  inFlightCommands,
  nextDueAt,
  requestCancel,
  requestUndo,
  startRun,
  transitiveDependents,
} from "./machine.ts";
import type { Effect, Readiness, StepResult, Transition } from "./machine.ts";
import type { RunState } from "./model.ts";

const READY: Readiness = { ready: true };
const T0 = Date.UTC(2025, 5, 18, 12, 0, 0);

function step(name: string, overrides: Partial<Step> = {}): Step {
  return { name, type: `com.example.${name}`, compensation: `com.example.undo-${name}`, ...overrides };
}

function start(steps: Step[], readiness: Readiness = READY): Transition {
  const spec: OrchestrationSpec = { mode: "orchestrated", steps };
  return startRun(
    {
      runId: "run-1",
      namespace: "shop",
      orchestration: "orders",
      generation: 3,
      spec,
      input: { orderId: "42" },
      inputHash: "h",
      trace: {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        traceId: "0af7651916cd43dd8448eb211c80319c",
      },
    },
    T0,
    readiness,
  );
}

/** `step:action:attempt` of every dispatch effect, in order. */
function dispatched(t: Transition | Effect[]): string[] {
  const effects = Array.isArray(t) ? t : t.effects;
  return effects.flatMap((e) =>
    e.kind === "dispatch" ? [`${e.command.step}:${e.command.action}:${e.command.attempt}`] : [],
  );
}

function ok(state: RunState, name: string, at = T0 + 1, output: unknown = { from: name }): Transition {
  const s = state.steps.find((x) => x.name === name);
  return applyResult(
    state,
    {
      step: name,
      action: s?.action ?? "do",
      attempt: s?.attempt ?? 1,
      outcome: "completed",
      output,
      eventId: `r-${name}-${at}`,
    },
    at,
  );
}

function fail(state: RunState, name: string, at = T0 + 1): Transition {
  const s = state.steps.find((x) => x.name === name);
  return applyResult(
    state,
    {
      step: name,
      action: s?.action ?? "do",
      attempt: s?.attempt ?? 1,
      outcome: "failed",
      error: { type: "PaymentDeclined", message: "card declined" },
      eventId: `f-${name}-${at}`,
    },
    at,
  );
}

function statuses(state: RunState): Record<string, string> {
  return Object.fromEntries(state.steps.map((s) => [s.name, s.status]));
}

/** Applies results one after another, collecting every dispatch. */
function chain(
  first: Transition,
  ...steps: Array<(s: RunState) => Transition>
): { state: RunState; log: string[] } {
  let state = first.state;
  const log = [...dispatched(first)];
  for (const f of steps) {
    const t = f(state);
    state = t.state;
    log.push(...dispatched(t));
  }
  return { state, log };
}

describe("an orchestrated run", () => {
  it("runs a chain one step at a time and succeeds (seed 003, sequential)", () => {
    const { state, log } = chain(
      start([step("create-realm"), step("create-client", { dependsOn: ["create-realm"] })]),
      (s) => ok(s, "create-realm"),
      (s) => ok(s, "create-client", T0 + 2),
    );
    expect(log).toEqual(["create-realm:do:1", "create-client:do:1"]);
    expect(state.status).toBe("Succeeded");
    expect(state.finishedAt).toBe(T0 + 2);
    expect(state.steps.map((s) => s.completionIndex)).toEqual([1, 2]);
  });

  it("fans out, joins, and dispatches the join only after every branch completed (seed 003, simultaneous)", () => {
    const steps = [
      step("a"),
      step("b", { dependsOn: ["a"] }),
      step("c", { dependsOn: ["a"] }),
      step("d", { dependsOn: ["b", "c"] }),
    ];
    const t0 = start(steps);
    expect(dispatched(t0)).toEqual(["a:do:1"]);
    const t1 = ok(t0.state, "a");
    expect(dispatched(t1)).toEqual(["b:do:1", "c:do:1"]);
    const t2 = ok(t1.state, "c");
    expect(dispatched(t2)).toEqual([]);
    const t3 = ok(t2.state, "b");
    expect(dispatched(t3)).toEqual(["d:do:1"]);
    const t4 = ok(t3.state, "d");
    expect(t4.state.status).toBe("Succeeded");
  });

  it("dispatches independent root steps together", () => {
    expect(dispatched(start([step("x"), step("y"), step("z", { dependsOn: ["x", "y"] })]))).toEqual([
      "x:do:1",
      "y:do:1",
    ]);
  });

  it("passes a stored snapshot of the spec and generation along with the run", () => {
    const t = start([step("a")]);
    expect(t.state.generation).toBe(3);
    expect(t.state.spec.steps.map((s) => s.name)).toEqual(["a"]);
    expect(t.state.version).toBe(1);
  });

  it("stays Pending while the engine cannot sign, and starts once it can", () => {
    const t0 = start([step("a")], { ready: false, reason: "no signing key yet" });
    expect(t0.state.status).toBe("Pending");
    expect(t0.state.waitingFor).toBe("no signing key yet");
    expect(dispatched(t0)).toEqual([]);
    const same = applyTimers(t0.state, T0 + 2000, { ready: false, reason: "no signing key yet" });
    expect(same.changed).toBe(false);
    const t1 = applyTimers(t0.state, T0 + 4000, READY);
    expect(t1.state.status).toBe("Running");
    expect(dispatched(t1)).toEqual(["a:do:1"]);
  });
});

describe("timeouts and retries", () => {
  const slow = step("charge", {
    timeout: "10s",
    retry: { attempts: 2, tiers: ["1s", "2s"] },
    compensation: undefined,
  });

  it("re-dispatches a timed-out step with attempt + 1 after the step's backoff", () => {
    const t0 = start([slow]);
    expect(nextDueAt(t0.state)).toBe(T0 + 10_000);
    expect(applyTimers(t0.state, T0 + 9_999, READY).changed).toBe(false);
    const t1 = applyTimers(t0.state, T0 + 10_000, READY);
    expect(dispatched(t1)).toEqual([]);
    expect(t1.state.steps[0]).toMatchObject({ status: "Running", waiting: "backoff", dueAt: T0 + 11_000 });
    const t2 = applyTimers(t1.state, T0 + 11_000, READY);
    expect(dispatched(t2)).toEqual(["charge:do:2"]);
    expect(t2.state.steps[0]?.attempts.map((a) => a.outcome)).toEqual(["timedOut", undefined]);
  });

  it("times out for good after retry.attempts re-dispatches, then compensates completed steps in reverse order", () => {
    const steps = [step("a"), step("b", { dependsOn: ["a"] }), { ...slow, dependsOn: ["b"] }];
    let { state } = chain(
      start(steps),
      (s) => ok(s, "a", T0),
      (s) => ok(s, "b", T0),
    );
    const log: string[] = [];
    // attempt 1 times out at +10 s, backoff 1 s, attempt 2 at +11 s times out at +21 s, backoff 2 s,
    // attempt 3 at +23 s times out at +33 s: no retry left.
    for (const at of [10_000, 11_000, 21_000, 23_000, 33_000]) {
      const t = applyTimers(state, T0 + at, READY);
      state = t.state;
      log.push(...dispatched(t));
    }
    expect(log).toEqual(["charge:do:2", "charge:do:3", "b:compensate:1"]);
    expect(state.status).toBe("Compensating");
    expect(state.steps[2]).toMatchObject({ status: "TimedOut", error: { type: "Timeout" } });
    const t1 = ok(state, "b", T0 + 34_000);
    expect(dispatched(t1)).toEqual(["a:compensate:1"]);
    const t2 = ok(t1.state, "a", T0 + 35_000);
    expect(t2.state.status).toBe("Failed");
    expect(statuses(t2.state)).toEqual({ a: "Compensated", b: "Compensated", charge: "TimedOut" });
    expect(t2.effects).toContainEqual(expect.objectContaining({ kind: "finished", status: "Failed" }));
  });

  it("compensates a timed-out step too, since its outcome is unknown", () => {
    const t0 = start([step("a", { timeout: "1s", retry: { attempts: 0 } })]);
    const t1 = applyTimers(t0.state, T0 + 1000, READY);
    expect(dispatched(t1)).toEqual(["a:compensate:1"]);
  });

  it("accepts a late result for the current attempt while waiting for the backoff", () => {
    const t0 = start([slow]);
    const t1 = applyTimers(t0.state, T0 + 10_000, READY);
    const t2 = ok(t1.state, "charge", T0 + 10_500);
    expect(t2.state.status).toBe("Succeeded");
  });

  it("ignores a result for a stale attempt and applies the one for the current attempt", () => {
    const t0 = start([slow]);
    const t1 = applyTimers(applyTimers(t0.state, T0 + 10_000, READY).state, T0 + 11_000, READY);
    const stale = applyResult(
      t1.state,
      { step: "charge", action: "do", attempt: 1, outcome: "completed", eventId: "late" },
      T0 + 12_000,
    );
    expect(stale.changed).toBe(false);
    expect(stale.state).toBe(t1.state);
    expect(stale.effects).toEqual([expect.objectContaining({ kind: "ignored", reason: "stale-attempt" })]);
    const current = applyResult(
      t1.state,
      { step: "charge", action: "do", attempt: 2, outcome: "completed", eventId: "now" },
      T0 + 12_000,
    );
    expect(current.state.status).toBe("Succeeded");
  });
});

describe("compensation", () => {
  it("releases the stock when the payment fails (seed 002 scenario 5)", () => {
    const steps = [
      step("create-order"),
      step("reserve-inventory", { dependsOn: ["create-order"] }),
      step("process-payment", { dependsOn: ["reserve-inventory"], compensation: undefined }),
    ];
    const { state, log } = chain(
      start(steps),
      (s) => ok(s, "create-order"),
      (s) => ok(s, "reserve-inventory"),
      (s) => fail(s, "process-payment"),
      (s) => ok(s, "reserve-inventory", T0 + 5),
      (s) => ok(s, "create-order", T0 + 6),
    );
    expect(log).toEqual([
      "create-order:do:1",
      "reserve-inventory:do:1",
      "process-payment:do:1",
      "reserve-inventory:compensate:1",
      "create-order:compensate:1",
    ]);
    expect(state.status).toBe("Failed");
    expect(state.reason).toBe("step process-payment failed: card declined");
    expect(statuses(state)).toEqual({
      "create-order": "Compensated",
      "reserve-inventory": "Compensated",
      "process-payment": "Failed",
    });
  });

  it("compensates parallel branches concurrently, then what they depend on", () => {
    const steps = [
      step("a"),
      step("b", { dependsOn: ["a"] }),
      step("c", { dependsOn: ["a"] }),
      step("d", { dependsOn: ["b", "c"] }),
    ];
    const { state, log } = chain(
      start(steps),
      (s) => ok(s, "a"),
      (s) => ok(s, "b"),
      (s) => ok(s, "c"),
      (s) => fail(s, "d"),
    );
    expect(log.slice(-2)).toEqual(["c:compensate:1", "b:compensate:1"]);
    const t1 = ok(state, "c");
    expect(dispatched(t1)).toEqual([]);
    const t2 = ok(t1.state, "b");
    expect(dispatched(t2)).toEqual(["a:compensate:1"]);
    expect(ok(t2.state, "a").state.status).toBe("Failed");
  });

  it("waits for a sibling still in flight before undoing what both depend on", () => {
    const steps = [step("a"), step("b", { dependsOn: ["a"] }), step("c", { dependsOn: ["a"] })];
    const { state } = chain(start(steps), (s) => ok(s, "a"));
    const t1 = fail(state, "b");
    expect(t1.state.status).toBe("Compensating");
    expect(dispatched(t1)).toEqual([]);
    const t2 = ok(t1.state, "c");
    expect(dispatched(t2)).toEqual(["c:compensate:1"]);
    const t3 = ok(t2.state, "c");
    expect(dispatched(t3)).toEqual(["a:compensate:1"]);
  });

  it("does not retry an in-flight step once the run is compensating", () => {
    const steps = [step("a", { timeout: "5s" }), step("b", { timeout: "5s" })];
    const t0 = start(steps);
    const t1 = fail(t0.state, "a");
    const t2 = applyTimers(t1.state, T0 + 5000, READY);
    expect(dispatched(t2)).toEqual(["b:compensate:1"]);
    expect(statuses(t2.state)).toEqual({ a: "Failed", b: "Compensating" });
  });

  it("retries a compensation by the step's own policy", () => {
    const steps = [
      step("a", { timeout: "2s", retry: { attempts: 1, tiers: ["500ms"] } }),
      step("b", { dependsOn: ["a"] }),
    ];
    const { state } = chain(
      start(steps),
      (s) => ok(s, "a"),
      (s) => fail(s, "b"),
    );
    expect(state.steps[0]).toMatchObject({ status: "Compensating", attempt: 1 });
    const t1 = applyTimers(state, T0 + 1 + 2000, READY);
    const t2 = applyTimers(t1.state, T0 + 1 + 2500, READY);
    expect(dispatched(t2)).toEqual(["a:compensate:2"]);
  });

  it.each([
    ["the worker reports it failed", (s: RunState) => fail(s, "b", T0 + 3)],
    [
      "every attempt times out",
      (s: RunState) => {
        let t = applyTimers(s, T0 + 1 + 30_000, READY); // default timeout 30 s, retries 1 s, 2 s, 4 s
        for (const at of [31_000, 61_000, 63_000, 93_000, 97_000, 127_000])
          t = applyTimers(t.state, T0 + 1 + at, READY);
        return t;
      },
    ],
  ])("ends CompensationFailed and reports it when %s", (_name, failCompensation) => {
    const steps = [step("a"), step("b", { dependsOn: ["a"] }), step("c", { dependsOn: ["b"] })];
    const { state } = chain(
      start(steps),
      (s) => ok(s, "a"),
      (s) => ok(s, "b"),
      (s) => fail(s, "c"),
    );
    expect(
      dispatched(inFlightCommands(state).map((command) => ({ kind: "dispatch", command }) as Effect)),
    ).toEqual(["b:compensate:1"]);
    const t = failCompensation(state);
    expect(t.state.status).toBe("CompensationFailed");
    expect(statuses(t.state)).toEqual({ a: "Succeeded", b: "CompensationFailed", c: "Failed" });
    expect(t.state.reason).toContain("compensation of b failed for good; left uncompensated: a");
    expect(t.effects).toContainEqual(expect.objectContaining({ kind: "compensationFailed", step: "b" }));
    expect(t.effects).toContainEqual(
      expect.objectContaining({ kind: "finished", status: "CompensationFailed" }),
    );
  });

  it("skips steps without a compensation", () => {
    const steps = [step("a", { compensation: undefined }), step("b", { dependsOn: ["a"] })];
    const { state } = chain(
      start(steps),
      (s) => ok(s, "a"),
      (s) => fail(s, "b"),
    );
    expect(state.status).toBe("Failed");
    expect(statuses(state)).toEqual({ a: "Succeeded", b: "Failed" });
  });
});

describe("undo and cancel", () => {
  const chainSteps = [step("a"), step("b", { dependsOn: ["a"] }), step("c", { dependsOn: ["b"] })];

  it("undoes a succeeded run in reverse order and ends Undone (seed 003, manual undo)", () => {
    const done = chain(
      start(chainSteps),
      (s) => ok(s, "a"),
      (s) => ok(s, "b"),
      (s) => ok(s, "c"),
    );
    const { state, log } = chain(
      requestUndo(done.state, "undo-1", T0 + 10),
      (s) => ok(s, "c", T0 + 11),
      (s) => ok(s, "b", T0 + 12),
      (s) => ok(s, "a", T0 + 13),
    );
    expect(log).toEqual(["c:compensate:1", "b:compensate:1", "a:compensate:1"]);
    expect(state.status).toBe("Undone");
    expect(state.requests).toEqual([{ kind: "undo", id: "undo-1", at: T0 + 10, accepted: true }]);
  });

  it.each([
    [
      "undo of a running run",
      (s: RunState) => requestUndo(s, "u", T0 + 5),
      "only a Succeeded run can be undone",
    ],
    [
      "cancel of a succeeded run",
      (s: RunState) => requestCancel(ok(ok(ok(s, "a").state, "b").state, "c").state, "x", T0 + 5),
      "only a Pending or Running run can be cancelled",
    ],
  ])("refuses %s and records why", (_name, act, message) => {
    const t = act(start(chainSteps).state);
    expect(dispatched(t)).toEqual([]);
    expect(t.state.requests.at(-1)).toMatchObject({
      accepted: false,
      reason: expect.stringContaining(message),
    });
  });

  it("cancels a running run: waits for the step in flight, compensates what completed, ends Cancelled", () => {
    const { state } = chain(start(chainSteps), (s) => ok(s, "a"));
    const t1 = requestCancel(state, "cancel-1", T0 + 5);
    expect(t1.state.status).toBe("Compensating");
    expect(dispatched(t1)).toEqual([]);
    expect(statuses(t1.state)).toEqual({ a: "Succeeded", b: "Running", c: "Skipped" });
    const { state: end, log } = chain(
      t1,
      (s) => ok(s, "b", T0 + 6),
      (s) => ok(s, "b", T0 + 7),
      (s) => ok(s, "a", T0 + 8),
    );
    expect(log).toEqual(["b:compensate:1", "a:compensate:1"]);
    expect(end.status).toBe("Cancelled");
  });

  it("cancels a pending run at once", () => {
    const t = requestCancel(start(chainSteps, { ready: false, reason: "no key" }).state, "c1", T0 + 1);
    expect(t.state.status).toBe("Cancelled");
  });

  it("handles a repeated request once", () => {
    const t1 = requestCancel(start(chainSteps).state, "c1", T0 + 1);
    const t2 = requestCancel(t1.state, "c1", T0 + 2);
    expect(t2.changed).toBe(false);
    expect(t2.effects).toEqual([expect.objectContaining({ reason: "duplicate-request" })]);
  });
});

describe("results that must not move the run", () => {
  const steps = [step("a"), step("b", { dependsOn: ["a"] })];

  it.each<[string, (s: RunState) => StepResult, string]>([
    [
      "a duplicate of an applied result",
      () => ({ step: "a", action: "do", attempt: 1, outcome: "completed", eventId: "again" }),
      "duplicate",
    ],
    [
      "a result for a step not dispatched yet (out of order)",
      () => ({ step: "b", action: "do", attempt: 1, outcome: "completed", eventId: "early" }),
      "not-in-flight",
    ],
    [
      "a result for a step the run does not have",
      () => ({ step: "zzz", action: "do", attempt: 1, outcome: "completed", eventId: "x" }),
      "unknown-step",
    ],
    [
      "a compensation result while the step is running",
      () => ({ step: "b", action: "compensate", attempt: 1, outcome: "completed", eventId: "x" }),
      "not-in-flight",
    ],
    [
      "a result for a future attempt",
      () => ({ step: "b", action: "do", attempt: 2, outcome: "completed", eventId: "x" }),
      "stale-attempt",
    ],
    [
      "a result answering another command",
      () => ({
        step: "b",
        action: "do",
        attempt: 1,
        outcome: "completed",
        eventId: "x",
        causationId: "run-9.b.do.1",
      }),
      "causation-mismatch",
    ],
  ])("ignores %s", (_name, result, reason) => {
    const base = ok(start(steps).state, "a").state;
    const r = result(base);
    const state = r.eventId === "early" ? start(steps).state : base;
    const t = applyResult(state, r, T0 + 9);
    expect(t.changed).toBe(false);
    expect(t.state).toBe(state);
    expect(t.effects).toEqual([expect.objectContaining({ kind: "ignored", reason })]);
  });

  it("ignores a late result once the run finished", () => {
    const done = chain(
      start(steps),
      (s) => ok(s, "a"),
      (s) => ok(s, "b"),
    ).state;
    const t = applyResult(
      done,
      { step: "b", action: "do", attempt: 1, outcome: "failed", eventId: "late" },
      T0 + 100,
    );
    expect(t.changed).toBe(false);
    expect(t.state.status).toBe("Succeeded");
  });
});

describe("crash safety helpers", () => {
  it("derives the same command id from the same run, step, action and attempt", () => {
    expect(commandId("run-1", "a", "do", 2)).toBe("run-1.a.do.2");
    expect(commandId("run-1", "a", "compensate", 2)).not.toBe(commandId("run-1", "a", "do", 2));
  });

  it("rebuilds the in-flight commands, identical to the first dispatch, from the state alone", () => {
    const t = start([step("a"), step("b")]);
    const first = t.effects.flatMap((e) => (e.kind === "dispatch" ? [e.command] : []));
    const restored = structuredClone(t.state);
    expect(inFlightCommands(restored)).toEqual(first);
  });

  it("lists every transitive dependent of a step", () => {
    const deps = transitiveDependents([
      step("a"),
      step("b", { dependsOn: ["a"] }),
      step("c", { dependsOn: ["b"] }),
    ]);
    expect(deps.get("a")).toEqual(["b", "c"]);
    expect(deps.get("c")).toEqual([]);
  });
});
