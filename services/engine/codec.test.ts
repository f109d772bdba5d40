import { describe, expect, it } from "vitest";
import type { IncomingRecord, OutgoingRecord } from "../kafka/client.ts";
import { decodeInbox, forwardRecord, forwardedMessage, runRequestRecord, startRecord } from "./inbox.ts";
import { startRun } from "./machine.ts";
import type { StartRequest } from "./machine.ts";
import {
  decodeState,
  encodeSpec,
  encodeState,
  encodeTombstone,
  specRef,
  stateVersionOf,
} from "./state-codec.ts";

const request: StartRequest = {
  runId: "3f6c1f1e-0000-4000-8000-000000000001",
  namespace: "shop",
  orchestration: "orders",
  generation: 4,
  spec: { steps: [{ name: "a", type: "com.example.a" }] },
  input: { orderId: "42" },
  inputHash: "abc",
  idempotencyKey: "k-1",
  trace: {
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    traceId: "0af7651916cd43dd8448eb211c80319c",
  },
};

/** What a consumer gets back for a produced record. */
function consumed(r: OutgoingRecord, topic = "t", offset = "7"): IncomingRecord {
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(r.headers ?? {}))
    if (v !== undefined) headers[k] = Buffer.isBuffer(v) ? v : Buffer.from(v);
  const key =
    r.key === null || r.key === undefined ? null : Buffer.isBuffer(r.key) ? r.key : Buffer.from(r.key);
  const value = r.value === null ? null : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
  return { topic, partition: 1, offset, key, value, headers, timestamp: "0" };
}

describe("inbox records", () => {
  it("carry a start request keyed by run id, and read back the same", () => {
    const record = startRecord(request, "req-1", new Date(0));
    expect(record.key).toBe(request.runId);
    const msg = decodeInbox(consumed(record));
    expect(msg).toEqual({
      kind: "start",
      runId: request.runId,
      requestId: "req-1",
      request,
      specRef: specRef(request),
    });
  });

  it.each(["cancel", "undo"] as const)("carry a %s request", (kind) => {
    const msg = decodeInbox(consumed(runRequestRecord(kind, request, "req-2")));
    expect(msg).toEqual({
      kind,
      runId: request.runId,
      requestId: "req-2",
      namespace: "shop",
      orchestration: "orders",
    });
  });

  it("forward a worker's record byte for byte with where it came from", () => {
    const original = consumed(
      { key: "run-9", value: Buffer.from("{}"), headers: { ce_id: "x", traceparent: "tp" } },
      "eventloom.shop.orders-results",
      "12",
    );
    const forwarded = forwardRecord(original, {
      namespace: "shop",
      orchestration: "orders",
      mode: "orchestrated",
    });
    if (!forwarded) throw new Error("not forwarded");
    const msg = decodeInbox(consumed(forwarded, "inbox", "99"));
    expect(msg).toMatchObject({
      kind: "forwarded",
      runId: "run-9",
      origin: {
        topic: "eventloom.shop.orders-results",
        partition: 1,
        offset: "12",
        namespace: "shop",
        orchestration: "orders",
        mode: "orchestrated",
      },
    });
    if (msg.kind !== "forwarded") return;
    expect(msg.record.value).toEqual(original.value);
    expect(msg.record.headers).toEqual(original.headers);
  });

  it("do not forward a record without a key: it names no run", () => {
    expect(
      forwardRecord(consumed({ key: null, value: null }), {
        namespace: "a",
        orchestration: "b",
        mode: "orchestrated",
      }),
    ).toBeUndefined();
  });

  it("apply a result read from its topic exactly as the inbox copy of it would be applied", () => {
    const original = consumed(
      {
        key: "run-9",
        value: Buffer.from("{}"),
        // A worker setting origin headers itself must not pick where the engine thinks the record came from.
        headers: { ce_id: "x", traceparent: "tp", "eventloom-origin-topic": "elsewhere" },
      },
      "eventloom.shop.orders-results",
      "12",
    );
    const route = { namespace: "shop", orchestration: "orders", mode: "orchestrated" } as const;
    const forwarded = forwardRecord(original, route);
    if (!forwarded) throw new Error("not forwarded");
    const viaInbox = decodeInbox(consumed(forwarded, "inbox", "99"));
    const direct = forwardedMessage(original, route);
    expect(direct).toEqual(viaInbox);
    expect(direct?.record.headers).toEqual({ ce_id: Buffer.from("x"), traceparent: Buffer.from("tp") });
  });

  it("take no keyless record directly either", () => {
    expect(
      forwardedMessage(consumed({ key: null, value: null }), {
        namespace: "a",
        orchestration: "b",
        mode: "orchestrated",
      }),
    ).toBeUndefined();
  });

  it("report a record that is not a CloudEvent as invalid", () => {
    expect(decodeInbox(consumed({ key: "r", value: Buffer.from("x") })).kind).toBe("invalid");
  });
});

describe("state records", () => {
  it("round-trip a run through the state topic, its spec by reference", () => {
    const { state } = startRun(request, 1_000, { ready: true });
    const ref = specRef(state);
    expect(ref).toMatch(/^shop\/orders\/4\/[A-Za-z0-9_-]{22}$/);
    const specRecord = encodeSpec(ref, state.spec, 2);
    const record = encodeState(state, 2);
    expect(record.partition).toBe(2);
    expect(JSON.parse(String(record.value))).not.toHaveProperty("spec");
    expect(stateVersionOf(consumed(record))).toBe(state.version);
    const spec = decodeState(consumed(specRecord));
    expect(spec).toEqual({ kind: "spec", ref, spec: state.spec });
    expect(decodeState(consumed(record), (r) => (r === ref ? state.spec : undefined))).toEqual({
      kind: "run",
      runId: request.runId,
      state,
    });
  });

  it("hold a run whose spec was not read yet as unresolved", () => {
    const { state } = startRun(request, 1_000, { ready: true });
    const decoded = decodeState(consumed(encodeState(state, 0)));
    expect(decoded).toMatchObject({ kind: "unresolved", runId: request.runId, specRef: specRef(state) });
  });

  it("give another spec under the same generation another reference", () => {
    const a = startRun(request, 1_000, { ready: true }).state;
    const b = startRun({ ...request, spec: { steps: [{ name: "a", type: "com.example.other" }] } }, 1_000, {
      ready: true,
    }).state;
    expect(specRef(a)).not.toBe(specRef(b));
  });

  it("still read schema 1 records, which carry the whole spec", () => {
    const { state } = startRun(request, 1_000, { ready: true });
    const value = Buffer.from(JSON.stringify({ ...state, schema: 1 }));
    expect(decodeState({ key: Buffer.from(request.runId), value })).toEqual({
      kind: "run",
      runId: request.runId,
      state,
    });
  });

  it("read a tombstone as a forgotten run", () => {
    expect(decodeState(consumed(encodeTombstone("r-1", 0)))).toEqual({ kind: "tombstone", runId: "r-1" });
  });

  it.each([
    ["not JSON", Buffer.from("{")],
    ["another schema", Buffer.from(JSON.stringify({ schema: 99, runId: "r-1" }))],
    [
      "a state of another run",
      Buffer.from(JSON.stringify({ schema: 1, runId: "r-2", version: 1, status: "Running", steps: [] })),
    ],
  ])("refuse %s", (_name, value) => {
    expect(decodeState({ key: Buffer.from("r-1"), value }).kind).toBe("invalid");
  });
});
