/**
 * The generated Eventloom CRDs against the real kube-apiserver, through the real
 * kubectl: the API server accepts them (structural, CEL cost within budget),
 * refuses every manifest in examples/bad/ with the human message its header
 * promises, accepts the good examples and fills in the documented defaults,
 * and serves kubectl explain, printer columns, short names, the category and
 * the Worker scale subresource.
 *
 * There is no controller-manager in the local stack, so the test namespace is
 * deleted without waiting (it stays Terminating) and the CRDs stay installed.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allCrds, REPO_ROOT } from "../../operator/crds/generate.ts";
import { EXAMPLES_DIR, loadBadManifests } from "../../operator/crds/manifests.ts";
import type { Orchestration, Worker } from "../../operator/crds/types.ts";
import {
  DEFAULT_DEAD_LETTER,
  DEFAULT_RETRY,
  DEFAULT_SCALING,
  DEFAULT_SIGNING_POLICY,
  DEFAULT_STEP_TIMEOUT,
  DEFAULT_TOPICS,
} from "../../operator/crds/types.ts";
import { eventually, kubectl, uniqueName } from "./support/stack.ts";
import type { CommandResult } from "./support/stack.ts";

const namespace = uniqueName("crds-test");
const bad = await loadBadManifests();

const example = (file: string): string => join(EXAMPLES_DIR, file);
const inNs = (...args: string[]): Promise<CommandResult> => kubectl([...args, "-n", namespace]);
const describeResult = (r: CommandResult): string =>
  `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

async function getJson<T>(...args: string[]): Promise<T> {
  const r = await inNs("get", ...args, "-o", "json");
  expect(r.code, describeResult(r)).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** Table output as rows of whitespace-separated cells (header first). */
function table(stdout: string): string[][] {
  return stdout
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/));
}

beforeAll(async () => {
  const applied = await kubectl(["apply", "-f", join(REPO_ROOT, "crds")]);
  expect(applied.code, describeResult(applied)).toBe(0);
  for (const crd of allCrds()) {
    await eventually(`CRD ${crd.metadata.name} to be Established`, async () => {
      const r = await kubectl(["get", "crd", crd.metadata.name, "-o", "json"]);
      if (r.code !== 0) throw new Error(r.stderr);
      const status = JSON.parse(r.stdout) as { status?: { conditions?: { type: string; status: string }[] } };
      const conditions = status.status?.conditions ?? [];
      return conditions.some((c) => c.type === "Established" && c.status === "True") ? true : undefined;
    });
  }
  const created = await kubectl(["create", "namespace", namespace]);
  expect(created.code, describeResult(created)).toBe(0);
  // Discovery of a new group can lag Established by a moment.
  for (const resource of ["orchestrations.eventloom.io", "workers.eventloom.io"]) {
    await eventually(`kubectl to discover ${resource}`, async () => {
      const r = await inNs("get", resource);
      if (r.code !== 0) throw new Error(r.stderr);
      return true;
    });
  }
});

afterAll(async () => {
  await kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]);
});

describe("the API server refuses the manifests in examples/bad", () => {
  it.each(bad)("$file: $whatIsWrong", async ({ file, expectedError }) => {
    const r = await inNs("apply", "-f", example(file));
    console.log(`kubectl apply -f examples/${file}\n${r.stderr.trim()}`);
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain(expectedError);
  });
});

describe("the good examples", () => {
  it("are accepted: tenant-creation with only create-realm's Worker, then create-client's Worker later", async () => {
    for (const file of ["tenant-creation/orchestration.yaml", "tenant-creation/worker-create-realm.yaml"]) {
      const r = await inNs("apply", "-f", example(file));
      expect(r.code, describeResult(r)).toBe(0);
    }
    const later = await inNs("apply", "-f", example("tenant-creation/worker-create-client.yaml"));
    expect(later.code, describeResult(later)).toBe(0);
    expect(later.stdout).toContain("worker.eventloom.io/client-service created");
  });

  it("are accepted: the order saga, orchestrated and choreographed", async () => {
    const r = await inNs("apply", "-f", example("order-saga"));
    expect(r.code, describeResult(r)).toBe(0);
    for (const name of ["order-saga", "order-saga-choreography"]) {
      expect(r.stdout).toContain(`orchestration.eventloom.io/${name} created`);
    }
    for (const name of ["order-service", "inventory-service", "payment-service", "choreo-payment-service"]) {
      expect(r.stdout).toContain(`worker.eventloom.io/${name} created`);
    }
  });

  it("get the documented defaults from the API server", async () => {
    const orch = await getJson<Orchestration>("orchestration", "tenant-creation");
    expect(orch.spec.mode).toBe("orchestrated");
    expect(orch.spec.steps[0]?.retry).toEqual(DEFAULT_RETRY);
    expect(orch.spec.steps[1]?.timeout).toBe(DEFAULT_STEP_TIMEOUT);
    expect(orch.spec.deadLetter).toEqual(DEFAULT_DEAD_LETTER);
    expect(orch.spec.signing).toEqual({ policy: DEFAULT_SIGNING_POLICY });
    expect(orch.spec.deletionPolicy).toBe("Delete");

    const saga = await getJson<Orchestration>("orchestration", "order-saga");
    expect(saga.spec.topics).toEqual(DEFAULT_TOPICS);
    expect(saga.spec.deletionPolicy).toBe("Retain");
    expect(saga.spec.steps[2]?.retry).toEqual({ ...DEFAULT_RETRY, tiers: ["1s", "2s", "4s"] });

    const worker = await getJson<Worker>("worker", "realm-service");
    expect(worker.spec.scaling).toEqual({ ...DEFAULT_SCALING, maxReplicas: 3, lagPerReplica: 50 });
    expect(worker.spec.replicas).toBe(1);
  });
});

describe("kubectl", () => {
  it("explains orchestration.spec.steps with field descriptions", async () => {
    // The API server publishes a new CRD's OpenAPI a moment after it is Established.
    const out = await eventually("kubectl explain to know the Orchestration schema", async () => {
      const r = await kubectl(["explain", "orchestration.spec.steps"]);
      return r.code === 0 && r.stdout.includes("dependsOn") ? r.stdout : undefined;
    });
    console.log(`kubectl explain orchestration.spec.steps\n${out}`);
    expect(out).toContain("One unit of work.");
    for (const field of [
      "name",
      "type",
      "dependsOn",
      "timeout",
      "retry",
      "compensation",
      "worker",
      "subscribes",
      "emits",
    ]) {
      expect(out).toMatch(new RegExp(`^\\s+${field}\\s`, "m"));
    }
    const retry = await kubectl(["explain", "orch.spec.steps.retry.initialBackoff"]);
    expect(retry.stdout).toContain("Delay before the first retry.");
    const scaling = await kubectl(["explain", "worker.spec.scaling.minReplicas"]);
    expect(scaling.stdout).toContain("0 lets an idle Worker scale to zero.");
  });

  it("gets orchestrations by short name with the Ready, Mode, Steps and Age columns", async () => {
    const before = await inNs("get", "orch");
    expect(before.code, describeResult(before)).toBe(0);
    expect(table(before.stdout)[0]).toEqual(["NAME", "READY", "MODE", "STEPS", "AGE"]);

    // Stand in for the operator: write the status the columns read.
    const status = {
      status: {
        stepCount: 2,
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "AllStepsBound",
            message: "every step has a Worker",
            lastTransitionTime: "2026-01-30T12:00:00Z",
          },
        ],
      },
    };
    const patched = await inNs(
      "patch",
      "orch",
      "tenant-creation",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify(status),
    );
    expect(patched.code, describeResult(patched)).toBe(0);

    const after = await inNs("get", "orchs", "tenant-creation", "-o", "wide");
    console.log(`kubectl get orchs tenant-creation -o wide\n${after.stdout}`);
    const [header, row] = table(after.stdout);
    expect(header).toEqual(["NAME", "READY", "MODE", "STEPS", "REASON", "AGE"]);
    expect(row?.slice(0, 5)).toEqual(["tenant-creation", "True", "orchestrated", "2", "AllStepsBound"]);
  });

  it("gets workers by short name with the Replicas, Lag and Ready columns", async () => {
    const r = await inNs("get", "wkr");
    console.log(`kubectl get wkr\n${r.stdout}`);
    expect(r.code, describeResult(r)).toBe(0);
    const [header, ...rows] = table(r.stdout);
    expect(header).toEqual(["NAME", "ORCHESTRATION", "REPLICAS", "DESIRED", "LAG", "READY", "AGE"]);
    expect(rows.map((cells) => cells[0])).toContain("realm-service");
  });

  it("lists both kinds under the eventloom category", async () => {
    const r = await inNs("get", "eventloom", "-o", "name");
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout).toContain("orchestration.eventloom.io/tenant-creation");
    expect(r.stdout).toContain("worker.eventloom.io/realm-service");
  });

  it("scales a Worker through the scale subresource, which sets spec.replicas", async () => {
    const r = await inNs("scale", "worker", "client-service", "--replicas=3");
    expect(r.code, describeResult(r)).toBe(0);
    const worker = await getJson<Worker>("worker", "client-service");
    expect(worker.spec.replicas).toBe(3);
    const scale = await getJson<{ spec: { replicas: number } }>(
      "worker",
      "client-service",
      "--subresource=scale",
    );
    expect(scale.spec.replicas).toBe(3);
  });

  it("ignores status in a spec update (status subresource)", async () => {
    const r = await inNs(
      "patch",
      "worker",
      "client-service",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { replicas: 7 } }),
    );
    expect(r.code, describeResult(r)).toBe(0);
    const worker = await getJson<Worker>("worker", "client-service");
    expect(worker.status?.replicas).toBeUndefined();
  });
});
