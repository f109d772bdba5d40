/**
 * The lag autoscaler on the real stack: records produced to the real broker,
 * offsets committed by real consumers, replicas read from the Deployment the
 * operator patched through the scale subresource.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import * as k8s from "@kubernetes/client-node";
import type { Orchestration, Worker } from "../../operator/crds/types.ts";
import { GROUP, VERSION } from "../../operator/crds/types.ts";
import { eventually, kafka, kubeConfig, kubectl, uniqueName, prepareNamespace } from "./support/stack.ts";
import { startOperator } from "./support/operator.ts";
import type { RunningOperator } from "./support/operator.ts";
import type { KafkaAdmin, KafkaProducer } from "../../services/kafka/client.ts";

const kc = kubeConfig();
const apps = kc.makeApiClient(k8s.AppsV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);

const fast = { pollInterval: "1s", scaleDownStabilization: "3s", cooldown: "3s", activationLag: 1 };

function orchestration(name: string, partitions: number): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name },
    spec: {
      steps: [{ name: "work", type: "com.example.work" }],
      topics: { partitions },
      deletionPolicy: "Delete",
      signing: { policy: "none" },
    },
  };
}

function worker(name: string, orch: string, scaling: Worker["spec"]["scaling"]): Worker {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Worker",
    metadata: { name },
    spec: { orchestration: orch, steps: ["work"], image: "example:dev", scaling },
  };
}

describe("the lag autoscaler", () => {
  const ns = uniqueName("scale");
  let operator: RunningOperator;
  let admin: KafkaAdmin;
  let producer: KafkaProducer;
  const client = kafka("autoscaler-test");

  const replicas = async (workerName: string) =>
    (await apps.readNamespacedDeployment({ namespace: ns, name: `${workerName}-worker` })).spec?.replicas;
  const status = async (workerName: string) =>
    (
      (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: "workers",
        namespace: ns,
        name: workerName,
      })) as Worker
    ).status;
  const waitReplicas = (workerName: string, want: number, timeoutMs = 15_000) =>
    eventually(
      `${workerName} to have ${want} replicas`,
      async () => ((await replicas(workerName)) === want ? true : undefined),
      { timeoutMs, intervalMs: 100 },
    );
  const produce = (topic: string, count: number, partition = 0) =>
    producer.send(
      topic,
      Array.from({ length: count }, (_, i) => ({ value: `r${i}`, partition })),
    );
  const topicOf = (orch: string) => `eventloom.${ns}.${orch}.work`;

  beforeAll(async () => {
    await prepareNamespace(ns);
    operator = startOperator({
      EVENTLOOM_RESYNC: "60s",
      EVENTLOOM_LEASE_NAME: uniqueName("lease"),
      EVENTLOOM_WATCH_NAMESPACE: ns,
    });
    admin = client.admin();
    await admin.connect();
    producer = client.producer();
    await producer.connect();
  });

  afterAll(async () => {
    await operator?.stop();
    await producer?.close();
    await admin?.close();
  });

  function dumpOnFailure(): void {
    onTestFailed(async () => {
      const events = await kubectl(["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]);
      console.error(
        `--- operator log ---\n${operator.logs().slice(-5000)}\n--- events ---\n${events.stdout}`,
      );
    });
  }

  async function applyAndWait(...objects: object[]): Promise<void> {
    for (const o of objects) {
      const res = await kubectl(["apply", "-n", ns, "-f", "-"], JSON.stringify(o));
      expect(res.code, res.stderr).toBe(0);
    }
  }

  it("raises replicas from zero to ceil(lag / lagPerReplica) for a burst with no consumer, counting from log start", async () => {
    dumpOnFailure();
    await applyAndWait(
      orchestration("burst", 4),
      worker("burst", "burst", { minReplicas: 0, maxReplicas: 3, lagPerReplica: 10, ...fast }),
    );
    await waitReplicas("burst", 0);
    await eventually("the step topic", async () =>
      (await admin.describeTopics([topicOf("burst")])).length === 1 ? true : undefined,
    );
    await produce(topicOf("burst"), 25);
    await waitReplicas("burst", 3);
    const s = await eventually("status", async () => {
      const got = await status("burst");
      return got?.lag === 25 && got.desiredReplicas === 3 ? got : undefined;
    });
    expect(s.lastScaleReason).toContain("lag 25");
    expect(s.lastScaleTime).toBeDefined();
    expect(s.conditions?.find((c) => c.type === "ScalingActive")).toMatchObject({
      status: "True",
      reason: "LagAutoscaling",
    });
    const events = await kubectl([
      "get",
      "events",
      "-n",
      ns,
      "--field-selector",
      "involvedObject.name=burst,reason=Scaled",
      "-o",
      "jsonpath={.items[*].message}",
    ]);
    expect(events.stdout).toContain("scaled from 0 to 3");
    const metrics = await operator.metrics();
    expect(
      metrics
        .split("\n")
        .filter((l) => l.startsWith("eventloom_worker_desired_replicas") && l.includes(`worker="burst"`)),
    ).toEqual([`eventloom_worker_desired_replicas{namespace="${ns}",worker="burst"} 3`]);
  });

  it("falls back after the stabilization window and to zero after the cooldown once consumers drain the lag", async () => {
    dumpOnFailure();
    const consumer = client.consumer({ groupId: `eventloom.${ns}.burst` });
    await consumer.connect();
    await consumer.subscribe([topicOf("burst")]);
    let seen = 0;
    await consumer.runEach(async () => {
      seen++;
    });
    try {
      await eventually("the consumer to drain", async () => (seen >= 25 ? true : undefined));
      await eventually(
        "lag 0 in status",
        async () => ((await status("burst"))?.lag === 0 ? true : undefined),
        { timeoutMs: 20_000 },
      );
    } finally {
      await consumer.close();
    }
    await waitReplicas("burst", 0, 30_000);
    const reason = await eventually("the reason in status", async () => {
      const r = (await status("burst"))?.lastScaleReason;
      return r?.includes("scaled to zero") ? r : undefined;
    });
    expect(reason).toMatch(/lag below 1 for \d+s/);
  });

  it("wakes a Worker at zero when lag reaches activationLag", async () => {
    dumpOnFailure();
    await produce(topicOf("burst"), 1, 2);
    await waitReplicas("burst", 1);
  });

  it("caps replicas at the partition count", async () => {
    dumpOnFailure();
    await applyAndWait(
      orchestration("capped", 2),
      worker("capped", "capped", { minReplicas: 0, maxReplicas: 10, lagPerReplica: 1, ...fast }),
    );
    await eventually("the step topic", async () =>
      (await admin.describeTopics([topicOf("capped")])).length === 1 ? true : undefined,
    );
    await waitReplicas("capped", 0);
    await produce(topicOf("capped"), 50);
    await waitReplicas("capped", 2);
  });

  it("counts lag from log start when the committed offset fell below it", async () => {
    dumpOnFailure();
    await applyAndWait(
      orchestration("retained", 1),
      worker("retained", "retained", { minReplicas: 0, maxReplicas: 5, lagPerReplica: 100, ...fast }),
    );
    await eventually("the step topic", async () =>
      (await admin.describeTopics([topicOf("retained")])).length === 1 ? true : undefined,
    );
    await produce(topicOf("retained"), 30);
    await admin.setCommittedOffsets(`eventloom.${ns}.retained`, topicOf("retained"), [
      { partition: 0, offset: 5n },
    ]);
    await admin.deleteRecordsBefore(topicOf("retained"), [{ partition: 0, offset: 20n }]);
    const s = await eventually("lag from log start", async () => {
      const got = await status("retained");
      return got?.lag === 10 ? got : undefined;
    });
    expect(s.desiredReplicas).toBe(1);
  });

  it("reports a deleted step topic as a condition and keeps running", async () => {
    dumpOnFailure();
    await admin.deleteTopics([topicOf("capped")]);
    const s = await eventually("TopicMissing", async () => {
      const got = await status("capped");
      const c = got?.conditions?.find((x) => x.type === "ScalingActive");
      return c?.reason === "TopicMissing" ? c : undefined;
    });
    expect(s.status).toBe("False");
    expect(s.message).toContain(topicOf("capped"));
    expect(operator.proc.exitCode).toBeNull();
    expect(await replicas("capped")).toBe(2);
  });
});
