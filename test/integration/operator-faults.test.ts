/**
 * The operator under faults, on the real stack: Kafka stops answering (the
 * broker process is frozen) and comes back; the leading operator process is
 * SIGKILLed and a standby takes over.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import * as k8s from "@kubernetes/client-node";
import type { Orchestration } from "../../operator/crds/types.ts";
import { GROUP, VERSION } from "../../operator/crds/types.ts";
import {
  eventually,
  kubeConfig,
  kubectl,
  uniqueName,
  withKafkaFrozen,
  prepareNamespace,
} from "./support/stack.ts";
import { startOperator } from "./support/operator.ts";
import type { RunningOperator } from "./support/operator.ts";

const custom = kubeConfig().makeApiClient(k8s.CustomObjectsApi);

function orchestration(name: string): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name },
    spec: {
      steps: [{ name: "only", type: "com.example.only" }],
      topics: { partitions: 1 },
      deletionPolicy: "Delete",
      signing: { policy: "none" },
    },
  };
}

async function condition(namespace: string, name: string, type: string) {
  const o = (await custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: "orchestrations",
    namespace,
    name,
  })) as Orchestration;
  return o.status?.conditions?.find((c) => c.type === type);
}

async function apply(namespace: string, obj: object): Promise<void> {
  const res = await kubectl(["apply", "-n", namespace, "-f", "-"], JSON.stringify(obj));
  if (res.code !== 0) throw new Error(res.stderr);
}

describe("the operator under faults", () => {
  const ns = uniqueName("opfault");
  const running: RunningOperator[] = [];
  const start = (lease: string) => {
    const op = startOperator({
      EVENTLOOM_RESYNC: "2s",
      EVENTLOOM_LEASE_NAME: lease,
      EVENTLOOM_LEASE_NAMESPACE: ns,
      EVENTLOOM_WATCH_NAMESPACE: ns,
    });
    running.push(op);
    return op;
  };

  beforeAll(async () => {
    await prepareNamespace(ns);
  });

  afterAll(async () => {
    await Promise.all(running.map((op) => op.stop()));
  });

  function dumpOnFailure(): void {
    onTestFailed(() => {
      for (const [i, op] of running.entries())
        console.error(`--- operator ${i} log ---\n${op.logs().slice(-5000)}`);
    });
  }

  it("reports KafkaUnavailable without crashing while Kafka does not answer, and recovers when it returns", async () => {
    dumpOnFailure();
    const op = start(uniqueName("lease"));
    await eventually("leadership", async () => ((await op.isLeader()) ? true : undefined), {
      timeoutMs: 30_000,
    });
    await withKafkaFrozen(async () => {
      await apply(ns, orchestration("outage"));
      const c = await eventually(
        "TopicsReady=False KafkaUnavailable",
        async () => {
          const got = await condition(ns, "outage", "TopicsReady");
          return got?.reason === "KafkaUnavailable" ? got : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(c.status).toBe("False");
      expect(c.message).toContain("does not answer");
      expect(op.proc.exitCode).toBeNull();
    });
    const ready = await eventually(
      "recovery after Kafka returns",
      async () => {
        const got = await condition(ns, "outage", "TopicsReady");
        return got?.status === "True" ? got : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(ready.reason).toBe("TopicsReady");
    // A leader shut down by SIGTERM gives its lease up and exits cleanly (not as if it had lost the lease).
    await op.stop();
    expect(op.proc.exitCode).toBe(0);
  }, 240_000);

  it("fails over to a standby within the lease duration when the leader is SIGKILLed", async () => {
    dumpOnFailure();
    const lease = uniqueName("lease");
    const a = start(lease);
    const b = start(lease);
    const leader = await eventually(
      "one leader",
      async () => {
        const [la, lb] = await Promise.all([a.isLeader(), b.isLeader()]);
        if (la && lb) throw new Error("two leaders at once");
        return la ? a : lb ? b : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const standby = leader === a ? b : a;
    expect(await standby.isLeader()).toBe(false);
    await leader.kill();
    const killedAt = Date.now();
    await apply(ns, orchestration("after-failover"));
    await eventually(
      "the standby to reconcile",
      async () =>
        (await condition(ns, "after-failover", "TopicsReady"))?.status === "True" ? true : undefined,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    console.log(`failover: standby reconciled ${Date.now() - killedAt} ms after the leader was SIGKILLed`);
    expect(await standby.isLeader()).toBe(true);
  }, 120_000);
});
