import Fastify from "fastify";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { anOrchestration, aStep } from "../../operator/builders/fixtures.ts";
import type { Orchestration } from "../../operator/crds/types.ts";
import { TrustStore } from "../events/trust-store.ts";
import type { IncomingRecord, OutgoingRecord } from "../kafka/client.ts";
import type { OrchestrationEntry } from "../runtime/registry.ts";
import { chunkByBytes, idempotentRunId, MAX_BATCH_RUNS, runApi } from "./api.ts";
import type { RunReader } from "./api.ts";
import { decodeInbox } from "./inbox.ts";
import { startRun } from "./machine.ts";
import type { RunState } from "./model.ts";

function entry(o: Orchestration): OrchestrationEntry {
  return {
    key: `${o.metadata.namespace}/${o.metadata.name}`,
    namespace: o.metadata.namespace ?? "",
    name: o.metadata.name ?? "",
    generation: o.metadata.generation ?? 1,
    orchestration: o,
    signer: undefined,
    trust: new TrustStore([]),
  };
}

const tenant = anOrchestration({
  name: "tenant-creation",
  namespace: "acme",
  spec: {
    steps: [aStep("create-realm"), aStep("create-client", { dependsOn: ["create-realm"] })],
    inputSchema: {
      type: "object",
      required: ["tenantId", "realmName"],
      properties: {
        tenantId: { type: "string", minLength: 1 },
        realmName: { type: "string", pattern: "^[a-z0-9-]+$" },
      },
      additionalProperties: false,
    },
  },
});
const plain = anOrchestration({ name: "plain", namespace: "acme", spec: { steps: [aStep("a")] } });
const choreo = anOrchestration({
  name: "saga",
  namespace: "acme",
  spec: { mode: "choreographed", steps: [{ name: "a", subscribes: ["x"] }] },
});

class FakeRuns implements RunReader {
  readonly runs = new Map<string, RunState>();
  ready = true;
  get(runId: string): RunState | undefined {
    return this.runs.get(runId);
  }
  list(): RunState[] {
    return [...this.runs.values()];
  }
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function build(
  opts: { fail?: boolean; slow?: boolean; failWrite?: (records: OutgoingRecord[]) => boolean } = {},
) {
  const written: Array<{ topic: string; records: OutgoingRecord[] }> = [];
  const runs = new FakeRuns();
  const entries = new Map(
    [tenant, plain, choreo].map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, entry(o)]),
  );
  app = Fastify();
  await app.register(runApi, {
    orchestrations: { get: (ns, name) => entries.get(`${ns}/${name}`) },
    runs,
    send: async (topic, records) => {
      if (opts.fail || opts.failWrite?.(records)) throw new Error("broker down");
      written.push({ topic, records });
      // A produce request takes a while (a broker round trip): requests arriving meanwhile queue up.
      if (opts.slow) await new Promise((r) => setTimeout(r, 5));
    },
    now: () => Date.UTC(2025, 5, 18),
  });
  return { app, written, runs };
}

function asIncoming(r: OutgoingRecord): IncomingRecord {
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) if (v !== undefined) headers[k] = Buffer.from(v);
  return {
    topic: "inbox",
    partition: 0,
    offset: "0",
    key: r.key === null || r.key === undefined ? null : Buffer.from(r.key),
    value: r.value === null ? null : Buffer.from(r.value),
    headers,
    timestamp: "0",
  };
}

const START = "/namespaces/acme/orchestrations/tenant-creation/runs";

describe("the run API", () => {
  it("starts a run: writes the start request to the inbox, answers 202 with the run id and where to find it", async () => {
    const { app, written } = await build();
    const res = await app.inject({ method: "POST", url: START, payload: { tenantId: "t", realmName: "r" } });
    expect(res.statusCode).toBe(202);
    const body = res.json() as { runId: string; location: string; state: string; traceId: string };
    expect(body.state).toBe("Pending");
    expect(body.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(res.headers.location).toBe(`/namespaces/acme/runs/${body.runId}`);
    expect(written).toHaveLength(1);
    expect(written[0]?.topic).toBe("eventloom-engine-inbox");
    const msg = decodeInbox(asIncoming(written[0]?.records[0] as OutgoingRecord));
    expect(msg).toMatchObject({
      kind: "start",
      runId: body.runId,
      request: {
        namespace: "acme",
        orchestration: "tenant-creation",
        generation: 1,
        input: { tenantId: "t", realmName: "r" },
        trace: { traceId: body.traceId },
      },
    });
    // Until the engine wrote the run, this process answers from what it accepted.
    const got = await app.inject({ method: "GET", url: body.location });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({
      runId: body.runId,
      state: "Pending",
      steps: [{ name: "create-realm", status: "Pending" }, { name: "create-client" }],
    });
  });

  it("refuses input that breaks the inputSchema with a 422 problem listing the violations", async () => {
    const { app, written } = await build();
    const res = await app.inject({
      method: "POST",
      url: START,
      payload: { tenantId: "", realmName: "Bad Name", extra: 1 },
    });
    expect(res.statusCode).toBe(422);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    const problem = res.json() as { type: string; errors: Array<{ instancePath: string; keyword: string }> };
    expect(problem.type).toBe("urn:eventloom:problem:schema-violation");
    expect(problem.errors.map((e) => e.keyword).sort()).toEqual([
      "additionalProperties",
      "minLength",
      "pattern",
    ]);
    expect(written).toHaveLength(0);
  });

  it.each([
    ["an unknown Orchestration", "/namespaces/acme/orchestrations/nope/runs", 404, "orchestration-not-found"],
    ["a choreographed Orchestration", "/namespaces/acme/orchestrations/saga/runs", 409, "not-orchestrated"],
    [
      "a namespace that is not a DNS label",
      "/namespaces/Bad_NS/orchestrations/saga/runs",
      400,
      "bad-request",
    ],
  ])("answers a problem for %s", async (_name, url, status, type) => {
    const { app } = await build();
    const res = await app.inject({ method: "POST", url, payload: {} });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ type: `urn:eventloom:problem:${type}`, status, instance: url });
  });

  it("answers 503 with Retry-After, and starts nothing, when Kafka does not take the request", async () => {
    const { app } = await build({ fail: true });
    const res = await app.inject({ method: "POST", url: START, payload: { tenantId: "t", realmName: "r" } });
    expect(res.statusCode).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    const list = await app.inject({ method: "GET", url: "/namespaces/acme/runs" });
    expect((list.json() as { count: number }).count).toBe(0);
  });

  it("returns the same run for the same Idempotency-Key, and 422 when the key comes back with another input", async () => {
    const { app, written, runs } = await build();
    const headers = { "idempotency-key": "order-42" };
    const first = await app.inject({
      method: "POST",
      url: START,
      payload: { tenantId: "t", realmName: "r" },
      headers,
    });
    const second = await app.inject({
      method: "POST",
      url: START,
      payload: { tenantId: "t", realmName: "r" },
      headers,
    });
    const runId = idempotentRunId("acme", "tenant-creation", "order-42");
    expect([first.json(), second.json()].map((b) => (b as { runId: string }).runId)).toEqual([runId, runId]);
    expect(written).toHaveLength(1);
    const other = await app.inject({
      method: "POST",
      url: START,
      payload: { tenantId: "t", realmName: "other" },
      headers,
    });
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({ type: "urn:eventloom:problem:idempotency-key-reused", runId });
    // Once the engine wrote it, the view answers.
    const msg = decodeInbox(asIncoming(written[0]?.records[0] as OutgoingRecord));
    if (msg.kind !== "start") throw new Error("not a start");
    runs.runs.set(runId, startRun(msg.request, 5, { ready: true }).state);
    const third = await app.inject({
      method: "POST",
      url: START,
      payload: { tenantId: "t", realmName: "r" },
      headers,
    });
    expect(third.json()).toMatchObject({ runId, state: "Running" });
  });

  it("undoes only a Succeeded run and cancels only a Pending or Running one (409 otherwise)", async () => {
    const { app, written, runs } = await build();
    const base = startRun(
      {
        runId: "r-1",
        namespace: "acme",
        orchestration: "tenant-creation",
        generation: 1,
        spec: tenant.spec,
        input: {},
        inputHash: "",
        trace: { traceparent: "", traceId: "" },
      },
      1,
      { ready: true },
    ).state;
    runs.runs.set("r-1", base);
    const undo = await app.inject({ method: "POST", url: "/namespaces/acme/runs/r-1/undo" });
    expect(undo.statusCode).toBe(409);
    expect(undo.json()).toMatchObject({ type: "urn:eventloom:problem:run-state-conflict", state: "Running" });
    const cancel = await app.inject({
      method: "POST",
      url: "/namespaces/acme/runs/r-1/cancel",
      headers: { "idempotency-key": "c" },
    });
    expect(cancel.statusCode).toBe(202);
    expect(decodeInbox(asIncoming(written[0]?.records[0] as OutgoingRecord))).toMatchObject({
      kind: "cancel",
      runId: "r-1",
    });
    runs.runs.set("r-1", { ...base, status: "Succeeded" });
    expect((await app.inject({ method: "POST", url: "/namespaces/acme/runs/r-1/undo" })).statusCode).toBe(
      202,
    );
    expect((await app.inject({ method: "POST", url: "/namespaces/acme/runs/r-1/cancel" })).statusCode).toBe(
      409,
    );
    expect((await app.inject({ method: "POST", url: "/namespaces/other/runs/r-1/undo" })).statusCode).toBe(
      404,
    );
  });

  it("shows a run with RFC 3339 times, every attempt, and its trace id", async () => {
    const { app, runs } = await build();
    const state = startRun(
      {
        runId: "r-2",
        namespace: "acme",
        orchestration: "tenant-creation",
        generation: 1,
        spec: tenant.spec,
        input: { tenantId: "t" },
        inputHash: "",
        trace: {
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          traceId: "0af7651916cd43dd8448eb211c80319c",
        },
      },
      Date.UTC(2025, 5, 18, 12),
      { ready: true },
    ).state;
    runs.runs.set("r-2", state);
    const res = await app.inject({ method: "GET", url: "/namespaces/acme/runs/r-2" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      runId: "r-2",
      state: "Running",
      traceId: "0af7651916cd43dd8448eb211c80319c",
      createdAt: "2025-06-18T12:00:00.000Z",
      input: { tenantId: "t" },
      steps: [
        {
          name: "create-realm",
          status: "Running",
          attempt: 1,
          waiting: "result",
          dueAt: "2025-06-18T12:00:30.000Z",
          attempts: [
            {
              action: "do",
              attempt: 1,
              commandId: "r-2.create-realm.do.1",
              dispatchedAt: "2025-06-18T12:00:00.000Z",
            },
          ],
        },
        { name: "create-client", status: "Pending", attempt: 0, attempts: [] },
      ],
    });
  });

  it("lists runs filtered by state, and is 503 until the view caught up", async () => {
    const { app, runs } = await build();
    runs.ready = false;
    expect((await app.inject({ method: "GET", url: "/namespaces/acme/runs" })).statusCode).toBe(503);
    runs.ready = true;
    const bad = await app.inject({ method: "GET", url: "/namespaces/acme/runs?state=Sideways" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ type: "urn:eventloom:problem:bad-request" });
  });
});

describe("the run API under concurrent starts", () => {
  // Coalescing the starts into fewer produce requests is the Kafka module's (services/kafka/coalesce.ts,
  // tested there and against the real broker in stack.test.ts); this is the run API's part of it.
  it("answers each concurrent start with a 202 only for a start request it wrote", async () => {
    const { app, written } = await build({ slow: true });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        app.inject({ method: "POST", url: START, payload: { tenantId: `t${i}`, realmName: "r" } }),
      ),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(202));
    const records = written.flatMap((w) => w.records);
    const runIds = new Set(records.map((r) => decodeInbox(asIncoming(r)).runId));
    expect(runIds).toEqual(new Set(answers.map((a) => (a.json() as { runId: string }).runId)));
    expect(records).toHaveLength(20);
  });
});

const BATCH = `${START}/batch`;
const good = (i: number) => ({ tenantId: `t${i}`, realmName: "r" });
type BatchItem = {
  status: number;
  runId?: string;
  state?: string;
  location?: string;
  traceId?: string;
  problem?: { type: string; status: number; instance: string; errors?: unknown[] };
};
type BatchBody = { accepted: number; failed: number; items: BatchItem[] };

describe("the run API's batch start", () => {
  it("writes every run of a batch in one request and answers each, in order, with 202 once it is written", async () => {
    const { app, written } = await build();
    const res = await app.inject({
      method: "POST",
      url: BATCH,
      payload: { runs: [0, 1, 2].map((i) => ({ input: good(i) })) },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json() as BatchBody;
    expect(body).toMatchObject({ accepted: 3, failed: 0 });
    expect(body.items.map((i) => [i.status, i.state])).toEqual(Array(3).fill([202, "Pending"]));
    expect(written).toHaveLength(1);
    const messages = (written[0]?.records ?? []).map((r) => decodeInbox(asIncoming(r)));
    expect(messages.map((m) => m.runId)).toEqual(body.items.map((i) => i.runId));
    expect(messages.map((m) => (m.kind === "start" ? m.request.input : undefined))).toEqual(
      [0, 1, 2].map(good),
    );
    const got = await app.inject({ method: "GET", url: body.items[1]?.location ?? "" });
    expect(got.json()).toMatchObject({ runId: body.items[1]?.runId, state: "Pending" });
  });

  it("answers a problem per run it refuses and starts the others", async () => {
    const { app, written } = await build();
    const res = await app.inject({
      method: "POST",
      url: BATCH,
      payload: {
        runs: [
          { input: good(0) },
          { input: { tenantId: "" } },
          { input: good(2), idempotencyKey: "k" },
          { input: good(2), idempotencyKey: "k" },
          { input: good(4), idempotencyKey: "k" },
        ],
      },
    });
    const body = res.json() as BatchBody;
    expect(body).toMatchObject({ accepted: 3, failed: 2 });
    expect(body.items.map((i) => i.status)).toEqual([202, 422, 202, 202, 422]);
    expect(body.items[1]?.problem).toMatchObject({
      type: "urn:eventloom:problem:schema-violation",
      instance: `${BATCH}#/runs/1`,
    });
    expect(body.items[1]?.problem?.errors?.length).toBeGreaterThan(0);
    // The same key twice with the same input is one run, written once; with another input it is refused.
    const keyed = idempotentRunId("acme", "tenant-creation", "k");
    expect([body.items[2]?.runId, body.items[3]?.runId]).toEqual([keyed, keyed]);
    expect(body.items[4]?.problem?.type).toBe("urn:eventloom:problem:idempotency-key-reused");
    expect(written.flatMap((w) => w.records)).toHaveLength(2);
  });

  it("answers 503 problems for the runs whose write failed, and remembers none of them", async () => {
    const { app } = await build({ fail: true });
    const res = await app.inject({
      method: "POST",
      url: BATCH,
      payload: { runs: [{ input: good(0) }, { input: good(1) }] },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json() as BatchBody;
    expect(body).toMatchObject({ accepted: 0, failed: 2 });
    expect(body.items.map((i) => i.problem?.type)).toEqual(
      Array(2).fill("urn:eventloom:problem:kafka-unavailable"),
    );
    const list = await app.inject({ method: "GET", url: "/namespaces/acme/runs" });
    expect((list.json() as { count: number }).count).toBe(0);
  });

  it("answers 202 only the runs of the requests that were written when a batch needs several", async () => {
    // 450 runs with 1.9 KB inputs (under the 1 MiB body limit) make over 1 MB of start records: more than one
    // request; the second one fails.
    let writes = 0;
    const { app, written } = await build({ failWrite: () => ++writes === 2 });
    const big = "x".repeat(1_900);
    const res = await app.inject({
      method: "POST",
      url: "/namespaces/acme/orchestrations/plain/runs/batch",
      payload: { runs: Array.from({ length: 450 }, (_, i) => ({ input: { i, big } })) },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json() as BatchBody;
    expect(writes).toBeGreaterThanOrEqual(2);
    const writtenIds = new Set(
      written.flatMap((w) => w.records.map((r) => decodeInbox(asIncoming(r)).runId)),
    );
    const ok = body.items.filter((i) => i.status === 202);
    expect(new Set(ok.map((i) => i.runId))).toEqual(writtenIds);
    expect(body).toMatchObject({ accepted: writtenIds.size, failed: 450 - writtenIds.size });
    // The failed request's runs are one contiguous stretch of the batch, each with its own problem.
    const failed = body.items.flatMap((item, i) => (item.status === 503 ? [i] : []));
    expect(failed.length).toBeGreaterThan(0);
    expect(failed).toEqual(Array.from({ length: failed.length }, (_, k) => (failed[0] ?? 0) + k));
  });

  it.each([
    [
      "an unknown Orchestration",
      "/namespaces/acme/orchestrations/nope/runs/batch",
      { runs: [{}] },
      404,
      "orchestration-not-found",
    ],
    [
      "a choreographed Orchestration",
      "/namespaces/acme/orchestrations/saga/runs/batch",
      { runs: [{}] },
      409,
      "not-orchestrated",
    ],
    ["an empty batch", BATCH, { runs: [] }, 400, "bad-request"],
    [
      "a batch of more than the most runs",
      BATCH,
      { runs: Array(MAX_BATCH_RUNS + 1).fill({}) },
      400,
      "bad-request",
    ],
    ["a run with an unknown field", BATCH, { runs: [{ inputs: {} }] }, 400, "bad-request"],
  ])("answers one problem for %s, and writes nothing", async (_name, url, payload, status, type) => {
    const { app, written } = await build();
    const res = await app.inject({ method: "POST", url, payload });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ type: `urn:eventloom:problem:${type}`, status });
    expect(written).toHaveLength(0);
  });
});

describe("chunkByBytes", () => {
  it.each([
    [
      "keeps order and fills chunks up to the bound",
      [3, 3, 3, 3],
      6,
      [
        [3, 3],
        [3, 3],
      ],
    ],
    ["puts an item bigger than the bound alone", [2, 9, 2], 6, [[2], [9], [2]]],
    ["makes no chunk of nothing", [], 6, []],
  ])("%s", (_name, sizes, max, chunks) => {
    expect(chunkByBytes(sizes, (n) => n, max)).toEqual(chunks);
  });
});
