import { describe, expect, it } from "vitest";
import type * as k8s from "@kubernetes/client-node";
import { OrchestrationReconciler } from "./orchestration-reconciler.ts";
import { SharedKafkaAdmin } from "./kafka-admin.ts";
import { fakeKafka } from "./fake-kafka.ts";
import { anOrchestration, aWorker } from "./builders/fixtures.ts";
import { signingKeySecretFor, signingKeySecretName } from "./builders/keys.ts";
import { generateSigningKey } from "../services/events/keys.ts";
import type { Orchestration, OrchestrationStatus, Worker } from "./crds/types.ts";
import type { Kube } from "./kube.ts";
import type { EventRecorder } from "./runtime/events.ts";
import type { Logger } from "./runtime/log.ts";

/** The reconciler against fake Kubernetes calls and the real shared admin over a fake cluster. */
function setup(names: string[], opts: { workers?: Worker[]; now?: () => Date } = {}) {
  const { client, state } = fakeKafka();
  const kafka = new SharedKafkaAdmin(client, { batchWindowMs: 5, minTopicsIntervalMs: 0 });
  const orchestrations = new Map<string, Orchestration>(
    names.map((n) => [n, anOrchestration({ name: n, uid: `uid-${n}` })]),
  );
  const secrets = new Map<string, k8s.V1Secret>();
  const statuses = new Map<string, OrchestrationStatus>();
  const writes = { finalizers: 0, secrets: 0, applies: 0, statuses: 0 };
  const kube = {
    async setFinalizers(_plural: string, obj: Orchestration, finalizers: string[]) {
      writes.finalizers++;
      const next = { ...obj, metadata: { ...obj.metadata, finalizers } };
      orchestrations.set(obj.metadata.name ?? "", next);
      return next;
    },
    async getOrchestration() {
      return undefined;
    },
    async readSecret() {
      return undefined;
    },
    core: {
      async createNamespacedSecret({ body }: { body: k8s.V1Secret }) {
        writes.secrets++;
        secrets.set(body.metadata?.name ?? "", body);
        return body;
      },
    },
    async apply<T>(obj: T) {
      writes.applies++;
      return obj;
    },
    async patchStatus(_plural: string, _ns: string, name: string, status: OrchestrationStatus) {
      writes.statuses++;
      statuses.set(name, status);
      const o = orchestrations.get(name);
      if (o) orchestrations.set(name, { ...o, status });
    },
  } as unknown as Kube;
  const silent = () => undefined;
  const reconciler = new OrchestrationReconciler({
    kube,
    cached: (_ns, name) => orchestrations.get(name),
    kafka,
    workersIn: () => opts.workers ?? [],
    secret: (_ns, name) => secrets.get(name),
    recorder: { record: async () => undefined } as unknown as EventRecorder,
    log: { debug: silent, info: silent, warn: silent, error: silent } as unknown as Logger,
    finalizerTimeoutMs: 60_000,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const topicsReady = (name: string) => statuses.get(name)?.conditions?.find((c) => c.type === "TopicsReady");
  const reconcileAll = () => Promise.allSettled(names.map((n) => reconciler.reconcile(`shop/${n}`)));
  return { state, kafka, reconciler, statuses, secrets, writes, topicsReady, reconcileAll };
}

describe("OrchestrationReconciler with the shared Kafka admin", () => {
  it("creates the topics of Orchestrations reconciled at once in one CreateTopics", async () => {
    const t = setup(["a", "b", "c"]);
    const outcomes = await t.reconcileAll();
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    expect(t.state.calls.create).toHaveLength(1);
    expect(t.state.calls.create[0]).toHaveLength(24);
    for (const n of ["a", "b", "c"]) expect(t.topicsReady(n)).toMatchObject({ status: "True" });
    // Created but not listed yet: looked at again shortly.
    expect((outcomes[0] as PromiseFulfilledResult<unknown>).value).toEqual({ requeueAfterMs: 5000 });
  });

  it("neither creates again nor describes topics Kafka accepted but does not list yet, and writes no status again", async () => {
    const t = setup(["a"]);
    await t.reconcileAll();
    const statusWrites = t.writes.statuses;
    await t.reconcileAll();
    expect(t.state.calls.create).toHaveLength(1);
    expect(t.state.calls.configs.flat()).toEqual([]);
    expect(t.topicsReady("a")).toMatchObject({ status: "True", reason: "TopicsReady" });
    expect(t.writes.statuses).toBe(statusWrites);
    // Listed now: their configs are read and nothing is left to look at.
    t.state.unlisted.clear();
    t.kafka.invalidateTopics(); // (time passes: the next look asks the cluster again)
    await expect(t.reconciler.reconcile("shop/a")).resolves.toBeUndefined();
    expect(t.state.calls.configs.flat()).toHaveLength(8);
    expect(t.state.calls.create).toHaveLength(1);
  });

  it("reports a refused topic on its own Orchestration only", async () => {
    const t = setup(["a", "bad", "c"]);
    const outcomes = await t.reconcileAll();
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(t.topicsReady("bad")).toMatchObject({ status: "False", reason: "KafkaError" });
    expect(t.topicsReady("bad")?.message).toContain("is invalid");
    expect(t.topicsReady("a")).toMatchObject({ status: "True" });
    expect(t.topicsReady("c")).toMatchObject({ status: "True" });
  });

  it("reports KafkaUnavailable on every Orchestration while Kafka does not answer, and recovers", async () => {
    const t = setup(["a", "b"]);
    t.state.setDown(true);
    const outcomes = await t.reconcileAll();
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected"]);
    for (const n of ["a", "b"]) expect(t.topicsReady(n)).toMatchObject({ reason: "KafkaUnavailable" });
    t.state.setDown(false);
    await t.reconcileAll();
    for (const n of ["a", "b"]) expect(t.topicsReady(n)).toMatchObject({ status: "True" });
  });

  it("refuses a topic that collides in Kafka's metric names with one in the cluster", async () => {
    const t = setup(["a"]);
    const twin = "eventloom_shop_a.reserve";
    t.state.cluster.set(twin, { name: twin, partitions: 1, replicationFactor: 1 });
    await t.reconcileAll();
    expect(t.topicsReady("a")).toMatchObject({ status: "False", reason: "TopicCollision" });
    expect(t.topicsReady("a")?.message).toContain(twin);
    expect(t.state.calls.create).toEqual([]);
  });

  it("waits for a new bound Worker's key before writing the trust document and the status, then writes each once", async () => {
    let now = Date.parse("2026-11-22T06:00:01Z");
    const worker = aWorker({
      name: "payments",
      metadata: { creationTimestamp: "2026-11-22T06:00:00Z" } as never,
      spec: { orchestration: "a", steps: ["charge"] },
    });
    const t = setup(["a"], { workers: [worker], now: () => new Date(now) });
    const secretsAfterReconcile = async () => {
      await t.reconciler.reconcile("shop/a");
      return t.secrets.size;
    };
    // The Worker is a second old and has no key yet: neither trust nor status, a look again within 29 s.
    await expect(secretsAfterReconcile()).resolves.toBe(1); // the Orchestration's own key
    expect(t.writes.applies).toBe(0);
    expect(t.writes.statuses).toBe(0);
    const deferred = await t.reconciler.reconcile("shop/a");
    expect(deferred).toEqual({ requeueAfterMs: 29_000 });
    // Its key appears: the trust document (with both keys) and the status are written once.
    t.secrets.set(signingKeySecretName(worker), signingKeySecretFor(worker, generateSigningKey()));
    await t.reconciler.reconcile("shop/a");
    expect(t.writes.applies).toBe(1);
    expect(t.writes.statuses).toBe(1);
    // A Worker that never creates its key holds the trust back for at most 30 s from its creation.
    const stuck = setup(["a"], { workers: [worker], now: () => new Date(now) });
    now = Date.parse("2026-11-22T06:00:31Z");
    await stuck.reconciler.reconcile("shop/a");
    expect(stuck.writes.applies).toBe(1);
    expect(stuck.writes.statuses).toBe(1);
  });
});
