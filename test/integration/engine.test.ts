/**
 * The engine on the real stack (Kafka + kube-apiserver): an engine replica in
 * this process, Orchestrations provisioned as the operator leaves them, and
 * in-test workers (services/engine/testing/responder.ts) that verify commands,
 * deduplicate on (source, id) and answer with results signed by their Worker key.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import type { Orchestration, Step } from "../../operator/crds/types.ts";
import { orchestrationSource, stepSource } from "../../operator/builders/keys.ts";
import { encodeRecord } from "../../services/events/binding.ts";
import { Signer } from "../../services/events/signing.ts";
import { deadLetterTopic, resultsTopic, stepTopic } from "../../services/events/topics.ts";
import { idempotentRunId } from "../../services/engine/api.ts";
import type { RunState } from "../../services/engine/model.ts";
import { isTerminal } from "../../services/engine/model.ts";
import { startEngine } from "../../services/engine/testing/harness.ts";
import type { RunningEngine } from "../../services/engine/testing/harness.ts";
import { deleteTopics, provisionOrchestration } from "../../services/engine/testing/provision.ts";
import type { ProvisionedOrchestration, TestWorker } from "../../services/engine/testing/provision.ts";
import { Responder } from "../../services/engine/testing/responder.ts";
import type { Behaviour, ReceivedCommand } from "../../services/engine/testing/responder.ts";
import { Tail } from "../../services/engine/testing/tail.ts";
import { engineInboxTopic, engineStateTopic } from "../../services/engine/topics.ts";
import { eventually, kafka, kubeClient, kubeConfig, kubectl, uniqueName } from "./support/stack.ts";

const kc = kubeConfig();
const client = kafka("engine-test");
const namespace = uniqueName("engine");
const naming = { prefix: uniqueName("el") };
const topics: string[] = [engineInboxTopic(naming), engineStateTopic(naming)];
const responders: Responder[] = [];
const tails: Tail[] = [];
let running: RunningEngine;

function manifest(name: string, steps: Step[], extra: Partial<Orchestration["spec"]> = {}): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name },
    spec: { mode: "orchestrated", steps, topics: { partitions: 1 }, deletionPolicy: "Delete", ...extra },
  };
}

async function provision(m: Orchestration, workers: TestWorker[]): Promise<ProvisionedOrchestration> {
  const p = await provisionOrchestration(kc, client, { namespace, manifest: m, workers, naming });
  topics.push(...p.topics);
  return p;
}

async function respond(
  p: ProvisionedOrchestration,
  worker: string,
  behaviour?: (c: ReceivedCommand) => Behaviour | Promise<Behaviour>,
): Promise<Responder> {
  const key = p.workerKeys[worker];
  if (!key) throw new Error(`no worker ${worker}`);
  const steps = (p.orchestration.spec.steps ?? []).map((s) => s.name);
  const r = new Responder({
    kafka: client,
    orchestration: p.orchestration,
    naming,
    trust: p.trust,
    key,
    steps: workerSteps.get(`${p.name}/${worker}`) ?? steps,
    ...(behaviour ? { behaviour } : {}),
  });
  await r.start();
  responders.push(r);
  return r;
}
const workerSteps = new Map<string, string[]>();

async function startRun(
  orchestration: string,
  input: unknown,
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await running.app.inject({
    method: "POST",
    url: `/namespaces/${namespace}/orchestrations/${orchestration}/runs`,
    payload: input as object,
    headers,
  });
  expect(res.statusCode, res.body).toBe(202);
  const runId = (res.json() as { runId: string }).runId;
  started.push(runId);
  return runId;
}

async function finished(runId: string, timeoutMs = 30_000): Promise<RunState> {
  return eventually(
    `run ${runId} to finish`,
    async () => {
      const s = running.view.get(runId);
      return s && isTerminal(s.status) ? s : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

async function inStatus(runId: string, status: RunState["status"], timeoutMs = 30_000): Promise<RunState> {
  return eventually(
    `run ${runId} to be ${status}`,
    async () => {
      const s = running.view.get(runId);
      return s?.status === status ? s : undefined;
    },
    { timeoutMs },
  );
}

function statuses(s: RunState): Record<string, string> {
  return Object.fromEntries(s.steps.map((x) => [x.name, x.status]));
}

/** Writes a signed event as a gateway or a choreographed service would. */
async function publish(
  topic: string,
  signer: Signer,
  e: { id: string; source: string; type: string; extensions: Record<string, string>; data: unknown },
  traceparent?: string,
): Promise<void> {
  const m = encodeRecord(
    signer.sign({
      id: e.id,
      source: e.source,
      specversion: "1.0",
      type: e.type,
      datacontenttype: "application/json",
      time: new Date().toISOString(),
      extensions: e.extensions,
      data: Buffer.from(JSON.stringify(e.data)),
    }),
  );
  await running.producer.send(topic, [
    { key: m.key, value: m.value, headers: { ...m.headers, ...(traceparent ? { traceparent } : {}) } },
  ]);
}

/** A promise resolved from outside: holds a worker's answer until the test lets go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

beforeAll(async () => {
  const crds = await kubectl(["apply", "-f", "crds/"]);
  expect(crds.code, crds.stderr).toBe(0);
  await kubectl([
    "wait",
    "--for=condition=Established",
    "crd/orchestrations.eventloom.io",
    "crd/workers.eventloom.io",
    "--timeout=30s",
  ]);
  expect((await kubectl(["create", "namespace", namespace])).code).toBe(0);
  running = await startEngine({ kafka: client, kube: kubeClient(), namespace, naming, partitions: 2 });
  await eventually(
    "the engine to own its partitions",
    async () => (running.engine.ownedPartitions().length === 2 ? true : undefined),
    {
      timeoutMs: 30_000,
    },
  );
});

afterAll(async () => {
  await Promise.allSettled(responders.map((r) => r.stop()));
  await Promise.allSettled(tails.map((t) => t.stop()));
  await running?.stop();
  await deleteTopics(client, topics);
  await kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]);
});

const started: string[] = [];

/** On failure, prints the runs the test started and what the workers refused. */
function dumpOnFailure(): void {
  const from = started.length;
  onTestFailed(() => {
    for (const id of started.slice(from))
      console.error(`run ${id}:`, JSON.stringify(running.view.get(id), null, 2));
    for (const r of responders)
      if (r.refused.length || r.errors.length)
        console.error("responder refused/errors:", r.refused, r.errors);
  });
}

describe("orchestrated runs on the real stack", () => {
  it("seed 002 scenario 5: order → reserve stock → payment fails → stock released, run Failed", async () => {
    dumpOnFailure();
    const p = await provision(
      manifest(
        "order-saga",
        [
          {
            name: "create-order",
            type: "com.example.order.create",
            compensation: "com.example.order.cancel",
          },
          {
            name: "reserve-inventory",
            type: "com.example.inventory.reserve",
            dependsOn: ["create-order"],
            compensation: "com.example.inventory.release",
          },
          {
            name: "process-payment",
            type: "com.example.payment.process",
            dependsOn: ["reserve-inventory"],
            timeout: "10s",
          },
        ],
        {
          inputSchema: {
            type: "object",
            required: ["orderId", "productId", "quantity", "amount"],
            properties: {
              orderId: { type: "string" },
              productId: { type: "string" },
              quantity: { type: "integer", minimum: 1 },
              amount: { type: "number" },
            },
          },
        },
      ),
      [{ name: "shop", steps: ["create-order", "reserve-inventory", "process-payment"] }],
    );
    const stock = new Map<string, number>([["p-1", 10]]);
    const worker = await respond(p, "shop", (c) => {
      const input = c.data.input as { productId: string; quantity: number };
      if (c.step === "reserve-inventory") {
        stock.set(
          input.productId,
          (stock.get(input.productId) ?? 0) + (c.action === "do" ? -input.quantity : input.quantity),
        );
        return { outcome: "completed", output: { reserved: input.quantity } };
      }
      if (c.step === "process-payment")
        return { outcome: "failed", errorType: "PaymentDeclined", errorMessage: "card declined" };
      return {
        outcome: "completed",
        output: {
          orderId: (c.data.input as { orderId: string }).orderId,
          status: c.action === "do" ? "pending" : "failed",
        },
      };
    });

    const runId = await startRun("order-saga", {
      orderId: "456",
      productId: "p-1",
      quantity: 1,
      amount: 9.99,
    });
    const end = await finished(runId);

    expect(end.status).toBe("Failed");
    expect(end.reason).toBe("step process-payment failed: card declined");
    expect(statuses(end)).toEqual({
      "create-order": "Compensated",
      "reserve-inventory": "Compensated",
      "process-payment": "Failed",
    });
    expect(worker.log(runId)).toEqual([
      "create-order:do:1",
      "reserve-inventory:do:1",
      "process-payment:do:1",
      "reserve-inventory:compensate:1",
      "create-order:compensate:1",
    ]);
    expect(stock.get("p-1")).toBe(10);
    // One run = one trace: every command, compensations included, carries the run's trace id.
    const traceIds = worker.received
      .filter((c) => c.runId === runId)
      .map((c) => c.traceparent?.split("-")[1]);
    expect(new Set(traceIds)).toEqual(new Set([end.trace.traceId]));
    // The reserve step's compensation got what it must undo.
    const release = worker.applied.find(
      (c) => c.runId === runId && c.step === "reserve-inventory" && c.action === "compensate",
    );
    expect(release?.data.steps["reserve-inventory"]).toEqual({ reserved: 1 });
    expect(release?.data.steps["create-order"]).toEqual({ orderId: "456", status: "pending" });
    // One replica owns every partition: its router applied the five results itself, copying none to the inbox.
    const counter = async (c: typeof running.metrics.forwarded) => (await c.get()).values[0]?.value ?? 0;
    expect(await counter(running.metrics.appliedDirectly)).toBeGreaterThanOrEqual(5);
    expect(await counter(running.metrics.forwarded)).toBe(0);
  });

  describe("seed 003 tenantCreation", () => {
    let p: ProvisionedOrchestration;
    let realm: Responder;
    let dlt: Tail;
    const forgeFor = new Set<string>();

    beforeAll(async () => {
      p = await provision(
        manifest(
          "tenant-creation",
          [
            {
              name: "create-realm",
              type: "com.example.tenant.createRealm",
              timeout: "30s",
              compensation: "com.example.tenant.deleteRealm",
            },
            {
              name: "create-client",
              type: "com.example.tenant.createClient",
              dependsOn: ["create-realm"],
              timeout: "30s",
              compensation: "com.example.tenant.deleteClient",
            },
          ],
          {
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
        ),
        [
          { name: "realm-service", steps: ["create-realm"] },
          { name: "client-service", steps: ["create-client"] },
        ],
      );
      workerSteps.set("tenant-creation/realm-service", ["create-realm"]);
      workerSteps.set("tenant-creation/client-service", ["create-client"]);
      const clientKey = p.workerKeys["client-service"];
      if (!clientKey) throw new Error("no client-service key");
      const forger = new Signer(clientKey);
      [realm, dlt] = await Promise.all([
        respond(p, "realm-service", async (c) => {
          const input = c.data.input as { realmName: string };
          if (c.action === "do" && forgeFor.has(c.runId)) {
            // Another Worker's key tries to answer for create-realm: the engine must refuse it.
            await realm.publish(
              c,
              { outcome: "completed", output: { realmId: "forged" } },
              { signer: forger, source: stepSource(namespace, "tenant-creation", "create-realm") },
            );
            await realm.publish(
              c,
              { outcome: "completed", output: { realmId: "forged-2" } },
              { signer: forger, source: stepSource(namespace, "tenant-creation", "create-client") },
            );
            await new Promise((r) => setTimeout(r, 300));
          }
          return { outcome: "completed", output: { realmId: `realm-${input.realmName}` } };
        }),
        Tail.start(client, [deadLetterTopic({ namespace, orchestration: "tenant-creation" }, naming)]),
        respond(p, "client-service", (c) => ({
          outcome: "completed",
          output: { clientId: `client-of-${(c.data.steps["create-realm"] as { realmId: string }).realmId}` },
        })),
      ]);
      tails.push(dlt);
    });

    it("runs createRealm then createClient, then a manual undo compensates in reverse order → Undone", async () => {
      dumpOnFailure();
      const runId = await startRun("tenant-creation", { tenantId: "test-tenant", realmName: "test-realm" });
      const done = await inStatus(runId, "Succeeded");
      expect(done.steps.map((s) => s.output)).toEqual([
        { realmId: "realm-test-realm" },
        { clientId: "client-of-realm-test-realm" },
      ]);
      const got = await running.app.inject({ method: "GET", url: `/namespaces/${namespace}/runs/${runId}` });
      expect(got.statusCode).toBe(200);
      expect(got.json()).toMatchObject({
        state: "Succeeded",
        traceId: done.trace.traceId,
        steps: [{ name: "create-realm", attempts: [{ outcome: "completed" }] }, { name: "create-client" }],
      });

      const undo = await running.app.inject({
        method: "POST",
        url: `/namespaces/${namespace}/runs/${runId}/undo`,
      });
      expect(undo.statusCode, undo.body).toBe(202);
      const undone = await inStatus(runId, "Undone");
      expect(statuses(undone)).toEqual({ "create-realm": "Compensated", "create-client": "Compensated" });
      const order = responders
        .flatMap((r) => r.applied)
        .filter((c) => c.runId === runId && c.action === "compensate")
        .sort((a, b) => a.receivedAt - b.receivedAt)
        .map((c) => c.type);
      expect(order).toEqual(["com.example.tenant.deleteClient", "com.example.tenant.deleteRealm"]);

      const again = await running.app.inject({
        method: "POST",
        url: `/namespaces/${namespace}/runs/${runId}/undo`,
      });
      expect(again.statusCode).toBe(409);
      expect(again.headers["content-type"]).toContain("application/problem+json");
    });

    it("refuses input that does not match the inputSchema with a 422 problem", async () => {
      const res = await running.app.inject({
        method: "POST",
        url: `/namespaces/${namespace}/orchestrations/tenant-creation/runs`,
        payload: { tenantId: "t", realmName: "Not Valid!" },
      });
      expect(res.statusCode).toBe(422);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({ type: "urn:eventloom:problem:schema-violation", status: 422 });
    });

    it("returns the same run for a retried Idempotency-Key, and refuses the key with another input", async () => {
      const headers = { "idempotency-key": uniqueName("key") };
      const first = await startRun("tenant-creation", { tenantId: "idem", realmName: "idem" }, headers);
      const second = await startRun("tenant-creation", { tenantId: "idem", realmName: "idem" }, headers);
      expect(second).toBe(first);
      await inStatus(first, "Succeeded");
      const third = await startRun("tenant-creation", { tenantId: "idem", realmName: "idem" }, headers);
      expect(third).toBe(first);
      const other = await running.app.inject({
        method: "POST",
        url: `/namespaces/${namespace}/orchestrations/tenant-creation/runs`,
        payload: { tenantId: "idem", realmName: "other" },
        headers,
      });
      expect(other.statusCode).toBe(422);
      expect(
        running.view
          .list({ namespace, orchestration: "tenant-creation" })
          .filter((r) => r.idempotencyKey === headers["idempotency-key"]),
      ).toHaveLength(1);
    });

    it("refuses and dead-letters results signed by a key not allowed for the step (SignatureError)", async () => {
      dumpOnFailure();
      const key = uniqueName("forged");
      // The run id of an Idempotency-Key is known before the run starts, so the worker knows which run to forge for.
      forgeFor.add(idempotentRunId(namespace, "tenant-creation", key));
      const runId = await startRun(
        "tenant-creation",
        { tenantId: key, realmName: "forged-test" },
        { "idempotency-key": key },
      );
      expect(forgeFor.has(runId)).toBe(true);
      const done = await inStatus(runId, "Succeeded");
      expect(done.steps[0]?.output).toEqual({ realmId: "realm-forged-test" });
      const dead = await eventually("two SignatureError dead letters", async () => {
        const mine = dlt.records.filter((r) => r.key?.toString() === runId);
        return mine.length >= 2 ? mine : undefined;
      });
      expect(dead.map((r) => dlt.header(r, "eventloom-dlt-error-type"))).toEqual([
        "SignatureError",
        "SignatureError",
      ]);
      expect(dead.map((r) => dlt.header(r, "eventloom-dlt-original-topic"))).toEqual([
        `${naming.prefix}.${namespace}.tenant-creation-results`,
        `${naming.prefix}.${namespace}.tenant-creation-results`,
      ]);
      // The record is kept byte for byte: still the forged result, still signed.
      expect(JSON.parse(dead[0]?.value?.toString() ?? "{}")).toEqual({ realmId: "forged" });
      expect(dead[0]?.headers.ce_dssematerial).toBeDefined();
    });
  });

  it("fans out to parallel branches and joins them (seed 003, simultaneous)", async () => {
    dumpOnFailure();
    const p = await provision(
      manifest("fan-out", [
        { name: "prepare", type: "com.example.prepare" },
        { name: "left", type: "com.example.left", dependsOn: ["prepare"] },
        { name: "right", type: "com.example.right", dependsOn: ["prepare"] },
        { name: "join", type: "com.example.join", dependsOn: ["left", "right"] },
      ]),
      [{ name: "fan", steps: ["prepare", "left", "right", "join"] }],
    );
    const rightSeen = gate();
    const worker = await respond(p, "fan", async (c) => {
      if (c.step === "right") rightSeen.open();
      // left answers only once right was dispatched too: the branches run at the same time.
      if (c.step === "left") await rightSeen.promise;
      return { outcome: "completed", output: { by: c.step } };
    });
    const runId = await startRun("fan-out", {});
    const end = await finished(runId);
    expect(end.status).toBe("Succeeded");
    const log = worker.log(runId);
    expect(log[0]).toBe("prepare:do:1");
    expect(new Set(log.slice(1, 3))).toEqual(new Set(["left:do:1", "right:do:1"]));
    expect(log[3]).toBe("join:do:1");
    const join = worker.applied.find((c) => c.runId === runId && c.step === "join");
    expect(join?.data.steps).toEqual({
      prepare: { by: "prepare" },
      left: { by: "left" },
      right: { by: "right" },
    });
  });

  it("times a step out, re-dispatches it with attempt + 1, and ignores the late answer to the first attempt", async () => {
    dumpOnFailure();
    const p = await provision(
      manifest("slow", [
        {
          name: "slow-step",
          type: "com.example.slow",
          timeout: "1s",
          retry: { attempts: 2, tiers: ["200ms", "200ms"] },
        },
      ]),
      [{ name: "slowpoke", steps: ["slow-step"] }],
    );
    const late: ReceivedCommand[] = [];
    const worker = await respond(p, "slowpoke", (c) => {
      if (c.attempt === 1) {
        late.push(c);
        return { outcome: "silent" };
      }
      return { outcome: "completed", output: { attempt: c.attempt } };
    });
    const runId = await startRun("slow", {});
    const end = await finished(runId);
    expect(end.status).toBe("Succeeded");
    const step = end.steps[0];
    expect(step?.attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, "timedOut"],
      [2, "completed"],
    ]);
    expect(step?.output).toEqual({ attempt: 2 });
    expect(worker.log(runId)).toEqual(["slow-step:do:1", "slow-step:do:2"]);
    expect(
      (step?.attempts[1]?.dispatchedAt ?? 0) - (step?.attempts[0]?.dispatchedAt ?? 0),
    ).toBeGreaterThanOrEqual(1_000);

    const stale = late.find((c) => c.runId === runId);
    if (!stale) throw new Error("attempt 1 was not received");
    const version = end.version;
    const ignoredBefore =
      (await running.metrics.inputsIgnored.get()).values.find((v) => v.labels.reason === "run-finished")
        ?.value ?? 0;
    await worker.publish(stale, { outcome: "failed", errorMessage: "too late" });
    await eventually("the late result to be seen and ignored", async () => {
      const now =
        (await running.metrics.inputsIgnored.get()).values.find((v) => v.labels.reason === "run-finished")
          ?.value ?? 0;
      return now > ignoredBefore ? true : undefined;
    });
    expect(running.view.get(runId)?.version).toBe(version);
    expect(running.view.get(runId)?.status).toBe("Succeeded");
  });

  it("cancels a running run: the step in flight finishes, completed steps are compensated → Cancelled", async () => {
    dumpOnFailure();
    const p = await provision(
      manifest("cancellable", [
        { name: "first", type: "com.example.first", compensation: "com.example.unfirst" },
        {
          name: "second",
          type: "com.example.second",
          dependsOn: ["first"],
          compensation: "com.example.unsecond",
        },
        { name: "third", type: "com.example.third", dependsOn: ["second"] },
      ]),
      [{ name: "canceller", steps: ["first", "second", "third"] }],
    );
    const hold = gate();
    const worker = await respond(p, "canceller", async (c) => {
      if (c.step === "second" && c.action === "do") await hold.promise;
      return { outcome: "completed" };
    });
    const runId = await startRun("cancellable", {});
    await eventually("second to be dispatched", async () =>
      worker.log(runId).includes("second:do:1") ? true : undefined,
    );
    const cancel = await running.app.inject({
      method: "POST",
      url: `/namespaces/${namespace}/runs/${runId}/cancel`,
    });
    expect(cancel.statusCode, cancel.body).toBe(202);
    await inStatus(runId, "Compensating");
    hold.open();
    const end = await finished(runId);
    expect(end.status).toBe("Cancelled");
    expect(statuses(end)).toEqual({ first: "Compensated", second: "Compensated", third: "Skipped" });
    expect(worker.log(runId)).toEqual([
      "first:do:1",
      "second:do:1",
      "second:compensate:1",
      "first:compensate:1",
    ]);
    expect(end.requests).toMatchObject([{ kind: "cancel", accepted: true }]);
  });

  it("ends CompensationFailed when a compensation fails for good: dead letter, Kubernetes Event, metric", async () => {
    dumpOnFailure();
    const p = await provision(
      manifest("fragile", [
        {
          name: "book",
          type: "com.example.book",
          compensation: "com.example.unbook",
          timeout: "5s",
          retry: { attempts: 1, tiers: ["100ms"] },
        },
        { name: "pay", type: "com.example.pay", dependsOn: ["book"] },
      ]),
      [{ name: "fragile-worker", steps: ["book", "pay"] }],
    );
    const [dlt] = await Promise.all([
      Tail.start(client, [deadLetterTopic({ namespace, orchestration: "fragile" }, naming)]),
      respond(p, "fragile-worker", (c) =>
        c.step === "pay" || c.action === "compensate"
          ? { outcome: "failed", errorType: "Broken", errorMessage: `${c.step} ${c.action} is broken` }
          : { outcome: "completed" },
      ),
    ]);
    tails.push(dlt);
    const runId = await startRun("fragile", {});
    const end = await finished(runId);
    expect(end.status).toBe("CompensationFailed");
    expect(statuses(end)).toEqual({ book: "CompensationFailed", pay: "Failed" });
    const dead = await eventually("the CompensationFailed dead letter", async () =>
      dlt.records.find(
        (r) =>
          r.key?.toString() === runId && dlt.header(r, "eventloom-dlt-error-type") === "CompensationFailed",
      ),
    );
    expect(dlt.header(dead, "ce_type")).toBe("com.example.unbook");
    expect(dlt.header(dead, "eventloom-dlt-original-topic")).toBe(
      `${naming.prefix}.${namespace}.fragile.book`,
    );
    const event = await eventually("a CompensationFailed Kubernetes Event", async () => {
      const r = await kubectl([
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "reason=CompensationFailed",
        "-o",
        "json",
      ]);
      const items =
        (
          JSON.parse(r.stdout || "{}") as {
            items?: Array<{ message: string; involvedObject: { kind: string; name: string } }>;
          }
        ).items ?? [];
      return items.find((e) => e.message.includes(runId));
    });
    expect(event.involvedObject).toMatchObject({ kind: "Orchestration", name: "fragile" });
    const failures = (await running.metrics.compensationFailures.get()).values.find(
      (v) => v.labels.orchestration === "fragile",
    );
    expect(failures?.value).toBe(1);
  });

  it("starts a run from an event the gateway wrote to the results topic (CloudEvents ingress)", async () => {
    dumpOnFailure();
    const p = await provision(manifest("ingress", [{ name: "only", type: "com.example.only" }]), [
      { name: "ingress-worker", steps: ["only"] },
    ]);
    const worker = await respond(p, "ingress-worker", (c) => ({
      outcome: "completed",
      output: { got: c.data.input },
    }));
    const runId = uniqueName("ingress-run");
    const results = resultsTopic({ namespace, orchestration: "ingress" }, naming);
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    // What the gateway writes: the client's type, the Orchestration's source, signed with the Orchestration's key.
    await publish(
      results,
      new Signer(p.engineKey),
      {
        id: `ingress-${runId}`,
        source: orchestrationSource(namespace, "ingress"),
        type: "com.example.order.placed",
        extensions: { partitionkey: runId, runid: runId, destination: results },
        data: { orderId: "o-1" },
      },
      `00-${traceId}-00f067aa0ba902b7-01`,
    );
    started.push(runId);
    const end = await finished(runId);
    expect(end.status).toBe("Succeeded");
    expect(end.input).toEqual({ orderId: "o-1" });
    expect(end.trace.traceId).toBe(traceId);
    expect(worker.applied.find((c) => c.runId === runId)?.traceparent?.split("-")[1]).toBe(traceId);
    expect(end.steps[0]?.output).toEqual({ got: { orderId: "o-1" } });
  });

  it("observes a choreographed saga into a run view without dispatching anything (seed 002 choreography)", async () => {
    dumpOnFailure();
    const p = await provision(
      {
        apiVersion: "eventloom.io/v1alpha1",
        kind: "Orchestration",
        metadata: { name: "order-choreo" },
        spec: {
          mode: "choreographed",
          topics: { partitions: 1 },
          deletionPolicy: "Delete",
          steps: [
            {
              name: "create-order",
              subscribes: ["com.example.order.placed"],
              emits: ["com.example.order.created"],
            },
            {
              name: "reserve-inventory",
              subscribes: ["com.example.order.created"],
              emits: ["com.example.stock.reserved", "com.example.stock.failed"],
            },
            {
              name: "process-payment",
              subscribes: ["com.example.stock.reserved"],
              emits: ["com.example.payment.completed", "com.example.payment.failed"],
            },
            {
              name: "release-inventory",
              subscribes: ["com.example.payment.failed"],
              emits: ["com.example.stock.released"],
            },
            {
              name: "cancel-order",
              subscribes: ["com.example.payment.failed", "com.example.stock.failed"],
              emits: ["com.example.order.cancelled"],
            },
          ],
        },
      },
      [
        {
          name: "choreo-services",
          steps: [
            "create-order",
            "reserve-inventory",
            "process-payment",
            "release-inventory",
            "cancel-order",
          ],
        },
      ],
    );
    const servicesKey = p.workerKeys["choreo-services"];
    if (!servicesKey) throw new Error("no key");
    const services = new Signer(servicesKey);
    const gateway = new Signer(p.engineKey);
    const runId = uniqueName("choreo-run");
    started.push(runId);
    const ref = { namespace, orchestration: "order-choreo" };
    const ev = (id: string, from: string | undefined, type: string, to: string) => ({
      id,
      source: from
        ? stepSource(namespace, "order-choreo", from)
        : orchestrationSource(namespace, "order-choreo"),
      type,
      extensions: { partitionkey: runId, runid: runId, destination: to },
      data: { orderId: runId },
    });
    const topicOf = (step: string) => stepTopic(ref, step, naming);
    await publish(
      topicOf("create-order"),
      gateway,
      ev("e1", undefined, "com.example.order.placed", topicOf("create-order")),
    );
    await eventually("the run to be observed", async () => running.view.get(runId));
    await publish(
      topicOf("reserve-inventory"),
      services,
      ev("e2", "create-order", "com.example.order.created", topicOf("reserve-inventory")),
    );
    await publish(
      topicOf("process-payment"),
      services,
      ev("e3", "reserve-inventory", "com.example.stock.reserved", topicOf("process-payment")),
    );
    // The failure fans out to both compensating steps: two copies of one event.
    for (const step of ["release-inventory", "cancel-order"]) {
      await publish(
        topicOf(step),
        services,
        ev("e4", "process-payment", "com.example.payment.failed", topicOf(step)),
      );
    }
    const mid = await inStatus(runId, "Compensating");
    expect(statuses(mid)).toMatchObject({
      "process-payment": "Failed",
      "release-inventory": "Running",
      "cancel-order": "Running",
    });
    const results = resultsTopic(ref, naming);
    await publish(results, services, ev("e5", "release-inventory", "io.eventloom.step.completed", results));
    await publish(results, services, ev("e6", "cancel-order", "io.eventloom.step.completed", results));
    const end = await inStatus(runId, "Failed");
    expect(end.mode).toBe("choreographed");
    expect(statuses(end)).toEqual({
      "create-order": "Succeeded",
      "reserve-inventory": "Succeeded",
      "process-payment": "Failed",
      "release-inventory": "Succeeded",
      "cancel-order": "Succeeded",
    });
    // Events on different topics reach the engine in no guaranteed order; the view does not depend on it.
    expect(end.events?.map((e) => e.id).sort()).toEqual(["e1", "e2", "e3", "e4", "e5", "e6"]);
    const got = await running.app.inject({ method: "GET", url: `/namespaces/${namespace}/runs/${runId}` });
    const body = got.json() as {
      mode: string;
      state: string;
      events: Array<{ type: string; step?: string }>;
    };
    expect(body).toMatchObject({ mode: "choreographed", state: "Failed" });
    expect(body.events).toHaveLength(6);
    expect(body.events.find((e) => e.type === "com.example.order.created")).toMatchObject({
      step: "create-order",
    });
  });

  it("answers 404 problems for unknown Orchestrations and runs", async () => {
    const start = await running.app.inject({
      method: "POST",
      url: `/namespaces/${namespace}/orchestrations/nope/runs`,
      payload: {},
    });
    expect(start.statusCode).toBe(404);
    expect(start.json()).toMatchObject({ type: "urn:eventloom:problem:orchestration-not-found" });
    const get = await running.app.inject({
      method: "GET",
      url: `/namespaces/${namespace}/runs/00000000-0000-4000-8000-000000000000`,
    });
    expect(get.statusCode).toBe(404);
    const list = await running.app.inject({
      method: "GET",
      url: `/namespaces/${namespace}/runs?orchestration=order-saga&state=Failed`,
    });
    expect(list.statusCode).toBe(200);
    expect(
      (list.json() as { items: Array<{ state: string }> }).items.every((r) => r.state === "Failed"),
    ).toBe(true);
  });
});
