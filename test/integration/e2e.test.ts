/**
 * End to end on the real stack: the operator reconciles the seeds' examples
 * (applied with the real kubectl), the kubelet stand-in runs the Workers'
 * Deployments as local processes (it says plainly it is not a kubelet), the
 * engine drives runs, the gateway takes requests. Nothing is faked but the
 * pods.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import * as k8s from "@kubernetes/client-node";
import type { Orchestration } from "../../operator/crds/types.ts";
import { GROUP, VERSION } from "../../operator/crds/types.ts";
import { KubeletStandIn } from "../kubelet/standin.ts";
import { eventually, kubeConfig, kubectl, stack, uniqueName, prepareNamespace } from "./support/stack.ts";
import { startOperator } from "./support/operator.ts";
import type { RunningOperator } from "./support/operator.ts";
import { freePort, startService } from "./support/processes.ts";
import type { Service } from "./support/processes.ts";

interface RunView {
  runId: string;
  state: string;
  traceId?: string;
  steps: Array<{
    name: string;
    status: string;
    completedAt?: string;
    compensatedAt?: string;
    error?: unknown;
  }>;
}

describe("Eventloom end to end", () => {
  const ns = uniqueName("e2e");
  const kc = kubeConfig();
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const workDir = mkdtempSync(`${tmpdir()}/eventloom-e2e-`);
  const workerLogs: string[] = [];
  let operator: RunningOperator;
  let engine: Service;
  let gateway: Service;
  let standIn: KubeletStandIn;
  let gatewayUrl = "";

  beforeAll(async () => {
    const s = stack();
    await prepareNamespace(ns);
    operator = startOperator({
      EVENTLOOM_RESYNC: "5s",
      EVENTLOOM_LEASE_NAME: uniqueName("lease"),
      EVENTLOOM_WATCH_NAMESPACE: ns,
    });
    const enginePort = await freePort();
    const gatewayPort = await freePort();
    const common = {
      KUBECONFIG: s.kubeconfig,
      KAFKA_BROKERS: s.kafkaBrokers,
      EVENTLOOM_NAMESPACE: ns,
      LOG_LEVEL: "warn",
      OTEL_TRACES_EXPORTER: "none",
    };
    engine = startService("engine", "services/engine/main.ts", {
      ...common,
      ENGINE_PORT: String(enginePort),
      ENGINE_HOST: "127.0.0.1",
    });
    gateway = startService("gateway", "services/gateway/main.ts", {
      ...common,
      PORT: String(gatewayPort),
      HOST: "127.0.0.1",
      EVENTLOOM_GATEWAY_AUTH: "none",
      EVENTLOOM_ENGINE_URL: `http://127.0.0.1:${enginePort}`,
    });
    gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    standIn = new KubeletStandIn(kc, {
      namespace: ns,
      workDir,
      extraEnv: {
        EXAMPLE_LEDGER_DIR: `${workDir}/ledger`,
        PAYMENT_LIMIT: "1000",
        LOG_LEVEL: "warn",
        OTEL_TRACES_EXPORTER: "none",
      },
      onLog: (d, i, line) => workerLogs.push(`${d}#${i}: ${line}`),
    });
    await standIn.start();
    await eventually(
      "the gateway and engine to be ready",
      async () => {
        const [g, e] = await Promise.all([
          fetch(`${gatewayUrl}/readyz`)
            .then((r) => r.status)
            .catch(() => 0),
          fetch(`http://127.0.0.1:${enginePort}/readyz`)
            .then((r) => r.status)
            .catch(() => 0),
        ]);
        return g === 200 && e === 200 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );
  }, 180_000);

  afterAll(async () => {
    await standIn?.stop();
    await Promise.all([gateway?.stop(), engine?.stop(), operator?.stop()]);
  }, 60_000);

  function dumpOnFailure(): void {
    onTestFailed(async () => {
      const events = await kubectl(["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]);
      console.error(
        [
          `--- operator ---\n${operator.logs().slice(-4000)}`,
          `--- engine ---\n${engine.logs().slice(-4000)}`,
          `--- gateway ---\n${gateway.logs().slice(-3000)}`,
          `--- workers (stand-in) ---\n${workerLogs.slice(-60).join("\n")}`,
          `--- events ---\n${events.stdout}`,
        ].join("\n"),
      );
    });
  }

  const ready = async (name: string) => {
    const o = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "orchestrations",
      namespace: ns,
      name,
    })) as Orchestration;
    return o.status?.conditions?.find((c) => c.type === "Ready");
  };
  const apply = async (file: string) => {
    const res = await kubectl(["apply", "-n", ns, "-f", file]);
    expect(res.code, res.stderr).toBe(0);
  };
  const startRun = async (orchestration: string, input: object, key: string) => {
    const res = await fetch(`${gatewayUrl}/namespaces/${ns}/orchestrations/${orchestration}/runs`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify(input),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    return ((await res.json()) as { runId: string }).runId;
  };
  const run = async (id: string) =>
    (await (await fetch(`${gatewayUrl}/namespaces/${ns}/runs/${id}`)).json()) as RunView;
  const runIn = (id: string, states: string[]) =>
    eventually(
      `run ${id} to reach ${states.join(" or ")}`,
      async () => {
        const r = await run(id);
        return states.includes(r.state) ? r : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    );

  it("self-heals seed 003's tenant creation when the missing Worker is applied", async () => {
    dumpOnFailure();
    await apply("examples/tenant-creation/orchestration.yaml");
    await apply("examples/tenant-creation/worker-create-realm.yaml");
    const missing = await eventually("MissingWorkers", async () => {
      const c = await ready("tenant-creation");
      return c?.reason === "MissingWorkers" ? c : undefined;
    });
    expect(missing.message).toContain("create-client");
    await apply("examples/tenant-creation/worker-create-client.yaml");
    await eventually("Ready", async () =>
      (await ready("tenant-creation"))?.status === "True" ? true : undefined,
    );
  });

  it("runs tenant creation step by step through Workers the stand-in runs from their Deployments, then undoes it", async () => {
    dumpOnFailure();
    const runId = await startRun(
      "tenant-creation",
      { tenantId: "acme", realmName: "acme-realm" },
      uniqueName("tenant"),
    );
    const done = await runIn(runId, ["Succeeded", "Failed", "CompensationFailed"]);
    expect(done.state).toBe("Succeeded");
    expect(done.traceId).toMatch(/^[0-9a-f]{32}$/);
    const [realm, client] = done.steps;
    expect(realm?.name).toBe("create-realm");
    expect(client?.name).toBe("create-client");
    expect(Date.parse(realm?.completedAt ?? "")).toBeLessThanOrEqual(Date.parse(client?.completedAt ?? ""));
    expect(standIn.running(ns, "client-service-worker")).toBeGreaterThan(0);

    const undo = await fetch(`${gatewayUrl}/namespaces/${ns}/runs/${runId}/undo`, { method: "POST" });
    expect(undo.status).toBe(202);
    const undone = await runIn(runId, ["Undone", "CompensationFailed"]);
    expect(undone.state).toBe("Undone");
    // Reverse order: the client is deleted before the realm.
    expect(Date.parse(undone.steps[1]?.compensatedAt ?? "")).toBeLessThanOrEqual(
      Date.parse(undone.steps[0]?.compensatedAt ?? ""),
    );
  });

  it("compensates seed 002's order saga in reverse when the payment is declined", async () => {
    dumpOnFailure();
    await apply("examples/order-saga/orchestration.yaml");
    await apply("examples/order-saga/workers.yaml");
    await eventually(
      "order-saga Ready",
      async () => ((await ready("order-saga"))?.status === "True" ? true : undefined),
      { timeoutMs: 30_000 },
    );
    const runId = await startRun(
      "order-saga",
      { orderId: "ORD-9", productId: "P-1", quantity: 2, amount: 5000 },
      uniqueName("order"),
    );
    const failed = await runIn(runId, ["Failed", "CompensationFailed", "Succeeded"]);
    expect(failed.state).toBe("Failed");
    const byName = Object.fromEntries(failed.steps.map((s) => [s.name, s]));
    expect(byName["process-payment"]?.error).toBeDefined();
    expect(byName["reserve-inventory"]?.compensatedAt).toBeDefined();
    expect(byName["create-order"]?.compensatedAt).toBeDefined();
    expect(Date.parse(byName["reserve-inventory"]?.compensatedAt ?? "")).toBeLessThanOrEqual(
      Date.parse(byName["create-order"]?.compensatedAt ?? ""),
    );
  });

  it("refuses a run whose input breaks the inputSchema with a problem document, and writes nothing", async () => {
    const res = await fetch(`${gatewayUrl}/namespaces/${ns}/orchestrations/order-saga/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ orderId: "ORD-X", quantity: 0 }),
    });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    const list = (await (
      await fetch(`${gatewayUrl}/namespaces/${ns}/runs?orchestration=order-saga`)
    ).json()) as { items?: unknown[] } | unknown[];
    const items = Array.isArray(list) ? list : (list.items ?? []);
    expect(items).toHaveLength(1);
  });
});
