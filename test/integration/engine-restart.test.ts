/**
 * Engine replicas sharing runs by partition, on the real stack: two replicas
 * split the inbox partitions; one stops mid-run and the other takes over its
 * runs; then the last one stops and a new one, started later, finishes them.
 * Runs are held mid-way by the in-test worker so they are in flight across
 * every hand-over.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import type { Orchestration } from "../../operator/crds/types.ts";
import { isTerminal } from "../../services/engine/model.ts";
import { startEngine } from "../../services/engine/testing/harness.ts";
import type { RunningEngine } from "../../services/engine/testing/harness.ts";
import { deleteTopics, provisionOrchestration } from "../../services/engine/testing/provision.ts";
import type { ProvisionedOrchestration } from "../../services/engine/testing/provision.ts";
import { Responder } from "../../services/engine/testing/responder.ts";
import { engineInboxTopic, engineStateTopic } from "../../services/engine/topics.ts";
import { StateView } from "../../services/engine/view.ts";
import { createLogger } from "../../operator/runtime/log.ts";
import { eventually, kafka, kubeClient, kubeConfig, kubectl, uniqueName } from "./support/stack.ts";

const kc = kubeConfig();
const client = kafka("engine-restart-test");
const namespace = uniqueName("engine-restart");
const naming = { prefix: uniqueName("el") };
const topics = [engineInboxTopic(naming), engineStateTopic(naming)];
const engines: RunningEngine[] = [];
let provisioned: ProvisionedOrchestration;
let worker: Responder;
let observer: StateView;
let release: () => void = () => undefined;
const held = new Promise<void>((resolve) => (release = resolve));

const manifest: Orchestration = {
  apiVersion: "eventloom.io/v1alpha1",
  kind: "Orchestration",
  metadata: { name: "handover" },
  spec: {
    mode: "orchestrated",
    topics: { partitions: 2 },
    deletionPolicy: "Delete",
    steps: [
      { name: "first", type: "com.example.first", compensation: "com.example.unfirst" },
      { name: "second", type: "com.example.second", dependsOn: ["first"], timeout: "2m" },
      { name: "third", type: "com.example.third", dependsOn: ["second"] },
    ],
  },
};

async function engine(id: string): Promise<RunningEngine> {
  const e = await startEngine({
    kafka: client,
    kube: kubeClient(),
    namespace,
    naming,
    partitions: 2,
    instanceId: id,
  });
  engines.push(e);
  return e;
}

beforeAll(async () => {
  expect((await kubectl(["apply", "-f", "crds/"])).code).toBe(0);
  await kubectl(["wait", "--for=condition=Established", "crd/orchestrations.eventloom.io", "--timeout=30s"]);
  expect((await kubectl(["create", "namespace", namespace])).code).toBe(0);
  provisioned = await provisionOrchestration(kc, client, {
    namespace,
    manifest,
    workers: [{ name: "handover-worker", steps: ["first", "second", "third"] }],
    naming,
  });
  topics.push(...provisioned.topics);
  const key = provisioned.workerKeys["handover-worker"];
  if (!key) throw new Error("no worker key");
  worker = new Responder({
    kafka: client,
    orchestration: provisioned.orchestration,
    naming,
    trust: provisioned.trust,
    key,
    behaviour: async (c) => {
      if (c.step === "second") await held;
      return { outcome: "completed", output: { step: c.step } };
    },
  });
  await worker.start();
});

afterAll(async () => {
  release();
  await worker?.stop();
  await Promise.allSettled(engines.map((e) => e.stop()));
  await observer?.stop();
  await deleteTopics(client, topics);
  await kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]);
});

describe("engine replicas hand runs over", () => {
  it("splits partitions between two replicas, survives one stopping, then a restart, and every run completes", async () => {
    onTestFailed(() => {
      console.error(
        "owned:",
        engines.map((e) => e.engine.ownedPartitions()),
      );
      console.error(
        "runs:",
        JSON.stringify(observer?.list().map((r) => [r.runId, r.status, r.steps.map((s) => s.status)])),
      );
      console.error("worker refused:", worker.refused, "errors:", worker.errors);
    });
    const a = await engine("a");
    const b = await engine("b");
    await eventually(
      "both replicas to own one partition each",
      async () =>
        a.engine.ownedPartitions().length === 1 && b.engine.ownedPartitions().length === 1 ? true : undefined,
      { timeoutMs: 30_000 },
    );

    const runIds: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await a.app.inject({
        method: "POST",
        url: `/namespaces/${namespace}/orchestrations/handover/runs`,
        payload: { n: i },
      });
      expect(res.statusCode, res.body).toBe(202);
      runIds.push((res.json() as { runId: string }).runId);
    }
    // Every run waits in step "second", in flight, on both replicas.
    await eventually("every run to reach step second", async () =>
      runIds.every((id) => worker.log(id).includes("second:do:1")) ? true : undefined,
    );
    // Both replicas drive some of them: each wrote run states for its own partition.
    const writes = async (e: RunningEngine) => (await e.metrics.stateWrites.get()).values[0]?.value ?? 0;
    expect(await writes(a)).toBeGreaterThan(0);
    expect(await writes(b)).toBeGreaterThan(0);

    await a.stop();
    engines.splice(engines.indexOf(a), 1);
    await eventually(
      "b to take over both partitions",
      async () => (b.engine.ownedPartitions().length === 2 ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );
    // b re-sent the in-flight commands of the runs it took over; the worker deduplicated them.
    await eventually("re-sent commands to be deduplicated", async () =>
      worker.duplicates > 0 ? true : undefined,
    );

    await b.stop();
    engines.splice(engines.indexOf(b), 1);
    // No engine runs now: the workers' answers wait in Kafka.
    release();
    await eventually("every run's step second to be answered", async () =>
      runIds.every((id) => worker.log(id).includes("second:do:1")) ? true : undefined,
    );

    const c = await engine("c");
    observer = c.view;
    const done = await eventually(
      "every run to succeed after the restart",
      async () => {
        const states = runIds.map((id) => c.view.get(id));
        return states.every((s) => s !== undefined && isTerminal(s.status)) ? states : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(done.map((s) => s?.status)).toEqual(runIds.map(() => "Succeeded"));
    for (const id of runIds) expect(worker.log(id)).toEqual(["first:do:1", "second:do:1", "third:do:1"]);
    for (const [key, count] of worker.effectCounts()) expect(count, key).toBe(1);
    // The runs kept the spec they started with.
    expect(done.every((s) => s?.generation === provisioned.orchestration.metadata.generation)).toBe(true);
  });

  it("restores from the state topic alone: a fresh view reads every run as the engines wrote it", async () => {
    const log = createLogger("engine-restart-observer", "warn");
    const fresh = new StateView(client, { topic: engineStateTopic(naming), log, sessionTimeoutMs: 6_000 });
    try {
      await fresh.start();
      await fresh.catchUp(2);
      const runs = fresh.list({ namespace, orchestration: "handover" });
      expect(runs).toHaveLength(12);
      expect(runs.every((r) => r.status === "Succeeded")).toBe(true);
    } finally {
      await fresh.stop();
    }
  });
});
