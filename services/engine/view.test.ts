import { describe, expect, it } from "vitest";
import { createLogger } from "../../operator/runtime/log.ts";
import type { IncomingRecord, KafkaClient, OutgoingRecord } from "../kafka/client.ts";
import { applyResult, startRun } from "./machine.ts";
import type { StartRequest } from "./machine.ts";
import type { RunState } from "./model.ts";
import { encodeState, encodeTombstone, specRef } from "./state-codec.ts";
import { StateView } from "./view.ts";

const request: StartRequest = {
  runId: "3f6c1f1e-0000-4000-8000-000000000001",
  namespace: "shop",
  orchestration: "orders",
  generation: 4,
  spec: { steps: [{ name: "a", type: "com.example.a" }] },
  input: {},
  inputHash: "",
  trace: { traceparent: "", traceId: "" },
};

function newView(): StateView {
  return new StateView({} as KafkaClient, { topic: "state", log: createLogger("view-test", "error") });
}

function consumed(r: OutgoingRecord, partition: number): IncomingRecord {
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) if (v !== undefined) headers[k] = Buffer.from(v);
  return {
    topic: "state",
    partition,
    offset: "0",
    key: r.key === null || r.key === undefined ? null : Buffer.from(r.key),
    value: r.value === null ? null : Buffer.from(r.value),
    headers,
    timestamp: "0",
  };
}

/** Feeds records to the view as its consumer would. */
function read(view: StateView, records: OutgoingRecord[], partition = 0): void {
  const apply = (view as unknown as { apply(r: IncomingRecord): void }).apply.bind(view);
  for (const r of records) apply(consumed(r, partition));
}

function run(runId: string, spec = request.spec): RunState {
  return startRun({ ...request, runId, spec }, 1_000, { ready: true }).state;
}

describe("the state view", () => {
  it("counts unfinished runs as they change, without scanning", () => {
    const view = newView();
    const a = run("a");
    view.applyLocal(a, 0);
    view.applyLocal(run("b"), 1);
    expect(view.activeRuns()).toBe(2);
    const done = applyResult(
      a,
      { step: "a", action: "do", attempt: 1, outcome: "completed", eventId: "e1" },
      2_000,
    ).state;
    expect(done.status).toBe("Succeeded");
    view.applyLocal(done, 0);
    expect(view.activeRuns()).toBe(1);
    view.applyLocal(a, 0); // an older version changes nothing
    expect(view.activeRuns()).toBe(1);
    view.forget("b");
    expect(view.activeRuns()).toBe(0);
    read(view, [encodeTombstone("a", 0)]);
    expect(view.get("a")).toBeUndefined();
  });

  it("writes a spec to a partition once, and every run read back shares it", () => {
    const writer = newView();
    const states = [run("a"), run("b")];
    const specRecords = writer.specRecordsFor(states, 3);
    expect(specRecords).toHaveLength(1);
    writer.specsWritten(states, 3);
    expect(writer.specRecordsFor([run("c")], 3)).toHaveLength(0);
    expect(writer.specRecordsFor([run("c")], 4)).toHaveLength(1);

    const reader = newView();
    read(reader, [...specRecords, ...states.map((s) => encodeState(s, 3))], 3);
    expect(reader.get("a")).toEqual(states[0]);
    expect(reader.get("a")?.spec).toBe(reader.get("b")?.spec);
    expect(reader.activeRuns()).toBe(2);
    // A restarted engine knows the partition holds the spec: it does not write it again.
    expect(reader.specRecordsFor([run("c")], 3)).toHaveLength(0);
    // Starts carry their own copy of the spec: the view gives back its shared one.
    expect(reader.internSpec({ ...request, spec: structuredClone(request.spec) })).toBe(
      reader.get("a")?.spec,
    );
  });

  it("holds a run read before its spec until the spec comes", () => {
    const view = newView();
    const state = run("a");
    const [spec] = newView().specRecordsFor([state], 0);
    read(view, [encodeState(state, 0)]);
    expect(view.get("a")).toBeUndefined();
    read(view, [spec as OutgoingRecord]);
    expect(view.get("a")).toEqual(state);
    expect(view.activeRuns()).toBe(1);
  });

  it("skips a record whose version it holds already (its own write read back)", () => {
    const view = newView();
    const state = run("a");
    view.applyLocal(state, 0);
    // Not even parsed: a record with this version header and a broken body changes nothing.
    const record = { ...encodeState(state, 0), value: Buffer.from("{") };
    read(view, [record]);
    expect(view.get("a")).toBe(state);
    expect(specRef(state)).toContain("shop/orders/4/");
  });
});
