/**
 * The operator against the real kube-apiserver and the real Kafka broker:
 * manifests applied with the real kubectl, topics checked through the Kafka
 * admin API, Deployments, Secrets, status and Events read back from the API.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import * as k8s from "@kubernetes/client-node";
import type { Orchestration, Worker } from "../../operator/crds/types.ts";
import { GROUP, VERSION } from "../../operator/crds/types.ts";
import { eventually, kafka, kubeConfig, kubectl, uniqueName, prepareNamespace } from "./support/stack.ts";
import { startOperator } from "./support/operator.ts";
import type { RunningOperator } from "./support/operator.ts";
import type { KafkaAdmin } from "../../services/kafka/client.ts";

const kc = kubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);

async function apply(namespace: string, ...objects: object[]): Promise<void> {
  for (const obj of objects) {
    const res = await kubectl(["apply", "-n", namespace, "-f", "-"], JSON.stringify(obj));
    if (res.code !== 0) throw new Error(`kubectl apply failed: ${res.stderr}`);
  }
}

async function getOrch(namespace: string, name: string): Promise<Orchestration | undefined> {
  try {
    return (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "orchestrations",
      namespace,
      name,
    })) as Orchestration;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

async function getWorker(namespace: string, name: string): Promise<Worker> {
  return (await custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: "workers",
    namespace,
    name,
  })) as Worker;
}

function condition(
  obj:
    | { status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> } }
    | undefined,
  type: string,
) {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

function orchestration(name: string, spec: Partial<Orchestration["spec"]> = {}): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name },
    spec: {
      steps: [
        {
          name: "create-realm",
          type: "com.example.tenant.createRealm",
          compensation: "com.example.tenant.deleteRealm",
        },
        { name: "create-client", type: "com.example.tenant.createClient", dependsOn: ["create-realm"] },
      ],
      topics: { partitions: 3, retention: "24h" },
      deletionPolicy: "Delete",
      ...spec,
    },
  };
}

function worker(name: string, orch: string, steps: string[], spec: Partial<Worker["spec"]> = {}): Worker {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Worker",
    metadata: { name },
    spec: { orchestration: orch, steps, image: "eventloom/example-workers:dev", ...spec },
  };
}

describe("the operator", () => {
  const ns = uniqueName("op");
  let operator: RunningOperator;
  let admin: KafkaAdmin;

  beforeAll(async () => {
    await prepareNamespace(ns);
    operator = startOperator({
      EVENTLOOM_RESYNC: "2s",
      EVENTLOOM_LEASE_NAME: uniqueName("lease"),
      EVENTLOOM_FINALIZER_TIMEOUT: "20s",
      EVENTLOOM_WATCH_NAMESPACE: ns,
    });
    admin = kafka("operator-test").admin();
    await admin.connect();
  });

  afterAll(async () => {
    await operator?.stop();
    await admin?.close();
  });

  function dumpOnFailure(): void {
    onTestFailed(async () => {
      const events = await kubectl(["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]);
      const objects = await kubectl(["get", "orchestrations,workers,deployments", "-n", ns, "-o", "yaml"]);
      console.error(
        `--- operator log ---\n${operator.logs().slice(-6000)}\n--- events ---\n${events.stdout}\n--- objects ---\n${objects.stdout.slice(-6000)}`,
      );
    });
  }

  it("creates the topics with the right partitions and configs, and reports the missing worker", async () => {
    dumpOnFailure();
    await apply(
      ns,
      orchestration("tenant"),
      worker("realm", "tenant", ["create-realm"], { scaling: { minReplicas: 0 } }),
    );
    const orch = await eventually("Orchestration status", async () => {
      const o = await getOrch(ns, "tenant");
      return condition(o, "WorkersBound")?.status === "False" &&
        condition(o, "TopicsReady")?.status === "True"
        ? o
        : undefined;
    });
    expect(condition(orch, "TopicsReady")).toMatchObject({ status: "True", reason: "TopicsReady" });
    expect(condition(orch, "Ready")).toMatchObject({ status: "False", reason: "MissingWorkers" });
    expect(condition(orch, "Ready")?.message).toContain("create-client");
    expect(orch?.status?.missingWorkers).toEqual(["create-client"]);
    expect(orch?.status?.stepCount).toBe(2);
    expect(orch?.status?.observedGeneration).toBe(orch?.metadata.generation);

    const base = `eventloom.${ns}.tenant`;
    const expected = [
      `${base}.create-realm`,
      `${base}.create-client`,
      `${base}-results`,
      `${base}-retry-1000`,
      `${base}-retry-2000`,
      `${base}-retry-4000`,
      `${base}-dlt`,
    ];
    expect(orch?.status?.topics).toEqual(expected);
    const described = await admin.describeTopics(expected);
    expect(described.map((t) => t.partitions)).toEqual(expected.map(() => 3));
    const configs = await admin.configsOf(expected, ["retention.ms", "cleanup.policy"]);
    expect(configs.get(`${base}.create-realm`)).toEqual({
      "retention.ms": String(24 * 3600 * 1000),
      "cleanup.policy": "delete",
    });
    expect(Number(configs.get(`${base}-dlt`)?.["retention.ms"])).toBeGreaterThan(24 * 3600 * 1000);

    const printed = await kubectl(["get", "orch", "-n", ns, "tenant"]);
    expect(printed.stdout).toMatch(/tenant\s+False\s+orchestrated\s+2/);
  });

  it("turns Ready when the missing Worker is applied (self-heal by watch)", async () => {
    dumpOnFailure();
    const applied = Date.now();
    await apply(
      ns,
      worker("client", "tenant", ["create-client"], { scaling: { enabled: false }, replicas: 2 }),
    );
    const orch = await eventually(
      "the Orchestration to turn Ready",
      async () => {
        const o = await getOrch(ns, "tenant");
        return condition(o, "Ready")?.status === "True" ? o : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    console.log(`self-heal: Ready ${Date.now() - applied} ms after kubectl apply of the missing Worker`);
    expect(orch?.status?.missingWorkers).toEqual([]);
    expect(orch?.status?.steps).toEqual([
      { name: "create-realm", worker: "realm", topic: `eventloom.${ns}.tenant.create-realm` },
      { name: "create-client", worker: "client", topic: `eventloom.${ns}.tenant.create-client` },
    ]);
    // Events are recorded in the background: poll for them.
    const wanted = ["TopicsCreated", "SigningKeyCreated", "MissingWorkers", "Ready"];
    const reasons = await eventually("the Events", async () => {
      const events = await kubectl([
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        "involvedObject.name=tenant",
        "-o",
        "jsonpath={.items[*].reason}",
      ]);
      const got = events.stdout.split(" ");
      return wanted.every((w) => got.includes(w)) ? got : undefined;
    });
    expect(reasons).toEqual(expect.arrayContaining(wanted));
  });

  it("builds each Worker's Deployment: owned, restricted, wired to its topics and key, replicas per scaling mode", async () => {
    dumpOnFailure();
    const realm = await eventually("the realm Deployment", async () =>
      apps.readNamespacedDeployment({ namespace: ns, name: "realm-worker" }),
    );
    const w = await getWorker(ns, "realm");
    expect(realm.metadata?.ownerReferences).toEqual([
      {
        apiVersion: "eventloom.io/v1alpha1",
        kind: "Worker",
        name: "realm",
        uid: w.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(realm.spec?.replicas).toBe(0); // scaling enabled with minReplicas 0: starts at zero
    const pod = realm.spec?.template.spec;
    const container = pod?.containers[0];
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container?.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(container?.resources?.requests).toBeDefined();
    const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      EVENTLOOM_TOPICS: `eventloom.${ns}.tenant.create-realm`,
      EVENTLOOM_CONSUMER_GROUP: `eventloom.${ns}.realm`,
      EVENTLOOM_RESULTS_TOPIC: `eventloom.${ns}.tenant-results`,
      EVENTLOOM_DLT_TOPIC: `eventloom.${ns}.tenant-dlt`,
      EVENTLOOM_SIGNING_POLICY: "required",
    });
    expect(pod?.volumes?.map((v) => v.secret?.secretName ?? v.configMap?.name)).toEqual(
      expect.arrayContaining(["realm-worker-signing-key", "tenant-orchestration-trust"]),
    );
    const client = await eventually("the client Deployment", async () =>
      apps.readNamespacedDeployment({ namespace: ns, name: "client-worker" }),
    );
    expect(client.spec?.replicas).toBe(2); // scaling disabled: spec.replicas rules

    // Trust lists the engine key and both worker keys, each worker for its own step only.
    const trust = await eventually("the trust document to list both workers", async () => {
      const cm = await core.readNamespacedConfigMap({ namespace: ns, name: "tenant-orchestration-trust" });
      const doc = JSON.parse(cm.data?.["trust.json"] ?? "{}") as { keys: Array<Record<string, string[]>> };
      return doc.keys.length === 3 ? doc : undefined;
    });
    const workerSources = trust.keys
      .map((k) => k["eventloom.io/sources"])
      .flat()
      .sort();
    expect(workerSources).toEqual([
      `/eventloom/${ns}/tenant`,
      `/eventloom/${ns}/tenant/create-client`,
      `/eventloom/${ns}/tenant/create-realm`,
    ]);

    const ws = await eventually("worker status", async () => {
      const got = await getWorker(ns, "realm");
      return got.status?.selector ? got : undefined;
    });
    expect(ws.status?.selector).toBe("app.kubernetes.io/name=eventloom-worker,eventloom.io/worker=realm");
    expect(condition(ws, "Bound")).toMatchObject({ status: "True" });
  });

  it("reverts a hand edit to a managed Deployment field, and kubectl scale works with scaling disabled", async () => {
    dumpOnFailure();
    await kubectl(["set", "image", "-n", ns, "deployment/client-worker", "worker=evil:latest"]);
    await eventually("the image to be reverted", async () => {
      const d = await apps.readNamespacedDeployment({ namespace: ns, name: "client-worker" });
      return d.spec?.template.spec?.containers[0]?.image === "eventloom/example-workers:dev"
        ? true
        : undefined;
    });
    const scaled = await kubectl(["scale", "worker", "client", "-n", ns, "--replicas=4"]);
    expect(scaled.code, scaled.stderr).toBe(0);
    await eventually("the Deployment to follow kubectl scale", async () => {
      const d = await apps.readNamespacedDeployment({ namespace: ns, name: "client-worker" });
      return d.spec?.replicas === 4 ? true : undefined;
    });
  });

  it("raises partitions, converges retention, refuses a partition decrease, and recreates a topic deleted by hand", async () => {
    dumpOnFailure();
    const base = `eventloom.${ns}.tenant`;
    await apply(ns, orchestration("tenant", { topics: { partitions: 4, retention: "48h" } }));
    await eventually("4 partitions and 48h retention", async () => {
      const [t] = await admin.describeTopics([`${base}.create-realm`]);
      const c = (await admin.configsOf([`${base}.create-realm`], ["retention.ms"])).get(
        `${base}.create-realm`,
      );
      return t?.partitions === 4 && c?.["retention.ms"] === String(48 * 3600 * 1000) ? true : undefined;
    });

    await apply(ns, orchestration("tenant", { topics: { partitions: 2, retention: "48h" } }));
    const refused = await eventually("a refused decrease", async () => {
      const o = await getOrch(ns, "tenant");
      return condition(o, "TopicsReady")?.reason === "PartitionDecreaseRefused" ? o : undefined;
    });
    expect(condition(refused, "TopicsReady")?.message).toContain("cannot remove partitions");
    expect((await admin.describeTopics([`${base}.create-realm`]))[0]?.partitions).toBe(4);
    await apply(ns, orchestration("tenant", { topics: { partitions: 4, retention: "48h" } }));

    await admin.deleteTopics([`${base}.create-client`]);
    await eventually(
      "the deleted topic to be recreated on resync",
      async () =>
        (await admin.describeTopics([`${base}.create-client`]))[0]?.partitions === 4 ? true : undefined,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  });

  it("refuses a topic that collides with an existing one in Kafka's metric names", async () => {
    dumpOnFailure();
    const foreign = `eventloom_${ns.replace(/-/g, "-")}_clash.create-realm`;
    await admin.createTopics([{ name: foreign, partitions: 1, replicationFactor: 1 }]);
    try {
      await apply(ns, orchestration("clash"));
      const o = await eventually("a collision condition", async () => {
        const got = await getOrch(ns, "clash");
        return condition(got, "TopicsReady")?.reason === "TopicCollision" ? got : undefined;
      });
      expect(condition(o, "TopicsReady")?.message).toContain(foreign);
    } finally {
      await kubectl(["delete", "orch", "clash", "-n", ns, "--wait=false"]);
      await admin.deleteTopics([foreign]);
    }
  });

  it.each([
    ["Delete", false],
    ["Retain", true],
  ] as const)(
    "with deletionPolicy %s deletes the Orchestration and leaves its topics: %s",
    async (policy, kept) => {
      dumpOnFailure();
      const name = `del-${policy.toLowerCase()}`;
      await apply(ns, orchestration(name, { deletionPolicy: policy }));
      const topic = `eventloom.${ns}.${name}.create-realm`;
      await eventually("the topics", async () =>
        (await admin.describeTopics([topic])).length === 1 ? true : undefined,
      );
      await eventually("the finalizer", async () =>
        (await getOrch(ns, name))?.metadata.finalizers?.includes("eventloom.io/topics") ? true : undefined,
      );
      const del = await kubectl(["delete", "orch", name, "-n", ns, "--wait=false"]);
      expect(del.code, del.stderr).toBe(0);
      await eventually("the Orchestration to be gone", async () =>
        (await getOrch(ns, name)) === undefined ? true : undefined,
      );
      expect((await admin.describeTopics([topic])).length).toBe(kept ? 1 : 0);
      const events = await kubectl([
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        `involvedObject.name=${name}`,
        "-o",
        "jsonpath={.items[*].reason}",
      ]);
      expect(events.stdout).toContain(kept ? "TopicsRetained" : "TopicsDeleted");
      if (kept)
        await admin.deleteTopics(
          (await admin.listTopics()).filter((t) => t.startsWith(`eventloom.${ns}.${name}`)),
        );
    },
  );

  it("serves health, readiness and metrics", async () => {
    const port = await operator.healthPort();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const metrics = await operator.metrics();
    expect(metrics).toMatch(
      /eventloom_operator_reconciles_total\{kind="Orchestration",outcome="success"\} \d+/,
    );
    expect(metrics).toContain("eventloom_operator_reconcile_duration_seconds_bucket");
    expect(metrics).toContain("eventloom_operator_queue_depth");
    expect(metrics).toMatch(/^eventloom_operator_leader 1$/m);
  });
});
