/**
 * The admission policies in policies/admission/ against the real kube-apiserver (ValidatingAdmissionPolicy,
 * admissionregistration.k8s.io/v1): the API server refuses a Worker whose image is not from an allowed
 * registry, a Worker above the replica ceiling and an unsigned Orchestration in a namespace not labelled
 * eventloom.io/allow-unsigned=true, each with the policy's own message, and admits the good ones. The
 * example NetworkPolicies in policies/network/ are accepted and select the pods the operator creates.
 *
 * The shipped policies are applied as they are, except what keeps this run from touching anyone else on
 * the shared API server: policy and binding names get a unique suffix, and each binding's namespaceSelector
 * (`{}`, every namespace, in the shipped files) is narrowed to this run's two namespaces. The parameter
 * ConfigMap is the shipped one, in this run's namespace instead of eventloom-system.
 *
 * kube-apiserver bug (kubernetes/kubernetes#130887, #133827): once no binding uses a built-in paramKind
 * such as ConfigMap, the API server stops that param informer for good, and every later binding with
 * ConfigMap params fails with "no params found" until the API server restarts. So this file keeps one
 * inert anchor binding with ConfigMap params installed for good (ANCHOR), and deletes its own bindings
 * only with the anchor in place. An API server already broken by an earlier run is reported as such.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKER_APP_NAME } from "../../operator/builders/deployment.ts";
import { eventually, kubectl, uniqueName } from "./support/stack.ts";
import type { CommandResult } from "./support/stack.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ADMISSION_DIR = join(REPO_ROOT, "policies", "admission");
const NETWORK_DIR = join(REPO_ROOT, "policies", "network");

const run = uniqueName("vap");
const RUN_LABEL = "eventloom.io/policy-test";
/** Never deleted: keeps the API server's ConfigMap param informer alive (see the file comment). Matches nothing. */
const ANCHOR = "eventloom-test-configmap-param-anchor";
const anchor = [
  {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: ANCHOR, labels: { "app.kubernetes.io/part-of": "eventloom-tests" } },
    spec: {
      failurePolicy: "Ignore",
      paramKind: { apiVersion: "v1", kind: "ConfigMap" },
      matchConstraints: {
        resourceRules: [
          { apiGroups: ["eventloom.io"], apiVersions: ["*"], operations: ["CREATE"], resources: ["workers"] },
        ],
      },
      validations: [{ expression: "true" }],
    },
  },
  {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: ANCHOR, labels: { "app.kubernetes.io/part-of": "eventloom-tests" } },
    spec: {
      policyName: ANCHOR,
      validationActions: ["Audit"],
      paramRef: { name: ANCHOR, namespace: "default", parameterNotFoundAction: "Allow" },
      matchResources: { namespaceSelector: { matchLabels: { [`${ANCHOR}/never`]: "never" } } },
    },
  },
];
/** Unlabelled for signing: unsigned Orchestrations must be refused here. Also holds the parameter ConfigMap. */
const strictNs = `${run}-strict`;
/** Labelled eventloom.io/allow-unsigned=true. */
const unsignedNs = `${run}-unsigned`;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

const describeResult = (r: CommandResult): string =>
  `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

async function loadManifests(dir: string): Promise<Manifest[]> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const docs: Manifest[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
      const value = doc.toJS() as Manifest | null;
      if (value) docs.push(value);
    }
  }
  return docs;
}

const shipped = await loadManifests(ADMISSION_DIR);
const policies = shipped.filter((m) => m.kind === "ValidatingAdmissionPolicy");
const bindings = shipped.filter((m) => m.kind === "ValidatingAdmissionPolicyBinding");
const params = shipped.find((m) => m.kind === "ConfigMap");
const policyName = (shippedName: string): string => `${shippedName}-${run}`;

/** The shipped objects, made private to this run (see the file comment). */
function forThisRun(): Manifest[] {
  if (!params) throw new Error(`no parameter ConfigMap in ${ADMISSION_DIR}`);
  return [
    { ...params, metadata: { ...params.metadata, namespace: strictNs } },
    ...policies.map((p) => ({ ...p, metadata: { ...p.metadata, name: policyName(p.metadata.name) } })),
    ...bindings.map((b) => {
      const spec = structuredClone(b.spec) as {
        policyName: string;
        paramRef?: { namespace?: string };
        matchResources?: { namespaceSelector?: unknown };
      };
      spec.policyName = policyName(spec.policyName);
      if (spec.paramRef) spec.paramRef.namespace = strictNs;
      spec.matchResources = {
        ...spec.matchResources,
        namespaceSelector: { matchLabels: { [RUN_LABEL]: run } },
      };
      return { ...b, metadata: { ...b.metadata, name: policyName(b.metadata.name) }, spec };
    }),
  ];
}

function worker(name: string, spec: Record<string, unknown> = {}): object {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Worker",
    metadata: { name },
    spec: {
      orchestration: "order-saga",
      steps: ["create-order"],
      image: "ghcr.io/eventloom/example-workers:1.0.0",
      ...spec,
    },
  };
}

function orchestration(name: string, signing?: "required" | "none"): object {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name },
    spec: {
      steps: [{ name: "create-order", type: "com.example.order.create" }],
      deletionPolicy: "Delete",
      ...(signing ? { signing: { policy: signing } } : {}),
    },
  };
}

const create = (namespace: string, obj: object, ...extra: string[]): Promise<CommandResult> =>
  kubectl(["create", "-n", namespace, "-f", "-", ...extra], JSON.stringify(obj));

/** The denial as the API server words it: which policy and binding, then the policy's message. */
function deniedBy(shippedPolicy: string): string {
  return `ValidatingAdmissionPolicy '${policyName(shippedPolicy)}' with binding '${policyName(shippedPolicy)}' denied request:`;
}

beforeAll(async () => {
  const crds = await kubectl(["apply", "-f", join(REPO_ROOT, "crds")]);
  expect(crds.code, describeResult(crds)).toBe(0);
  for (const crd of ["orchestrations.eventloom.io", "workers.eventloom.io"]) {
    const established = await kubectl(["wait", "--for=condition=Established", "--timeout=30s", `crd/${crd}`]);
    expect(established.code, describeResult(established)).toBe(0);
  }
  for (const [ns, labels] of [
    [strictNs, { [RUN_LABEL]: run }],
    [unsignedNs, { [RUN_LABEL]: run, "eventloom.io/allow-unsigned": "true" }],
  ] as const) {
    const r = await kubectl(
      ["create", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels } }),
    );
    expect(r.code, describeResult(r)).toBe(0);
  }
  const anchored = await kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: anchor }),
  );
  expect(anchored.code, describeResult(anchored)).toBe(0);
  const applied = await kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: forThisRun() }),
  );
  expect(applied.code, describeResult(applied)).toBe(0);

  // A binding is enforced once the API server's policy informers have it (a moment after the apply).
  // Poll with server-side dry runs, which run admission but store nothing; until then say what came back.
  const enforced = (what: string, ns: string, obj: object, policy: string, message: string) =>
    eventually(
      what,
      async () => {
        const r = await create(ns, obj, "--dry-run=server");
        if (r.code !== 0 && r.stderr.includes(deniedBy(policy)) && r.stderr.includes(message)) return true;
        if (r.stderr.includes("no params found for policy binding")) {
          // Briefly normal while the param informer syncs; if it lasts until the timeout, this is the cause.
          throw new Error(
            `the API server does not find ConfigMap ${strictNs}/eventloom-admission although it exists. If this ` +
              "persists, its ConfigMap param informer was stopped when some earlier client removed the last binding " +
              "with ConfigMap params (kubernetes/kubernetes#130887); only restarting kube-apiserver recovers " +
              `(npm run stack -- down && npm run stack -- up, when nobody else uses the stack). ${describeResult(r)}`,
          );
        }
        throw new Error(describeResult(r));
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  await enforced(
    "the registry policy to refuse a Worker",
    strictNs,
    worker("probe", { image: "docker.io/library/busybox:1" }),
    "eventloom-worker-allowed-registries",
    "is not from an allowed registry",
  );
  await enforced(
    "the replica ceiling policy to refuse a Worker",
    strictNs,
    worker("probe", { scaling: { maxReplicas: 51 } }),
    "eventloom-worker-max-replicas",
    "is above the ceiling",
  );
  await enforced(
    "the signing policy to refuse an unsigned Orchestration",
    strictNs,
    orchestration("probe", "none"),
    "eventloom-orchestration-signing",
    "is not labelled",
  );
});

afterAll(async () => {
  // Cluster-scoped: remove them, or they would outlive the run.
  for (const b of bindings)
    await kubectl([
      "delete",
      "validatingadmissionpolicybinding",
      policyName(b.metadata.name),
      "--ignore-not-found",
    ]);
  for (const p of policies)
    await kubectl(["delete", "validatingadmissionpolicy", policyName(p.metadata.name), "--ignore-not-found"]);
  for (const ns of [strictNs, unsignedNs]) {
    // Nothing finalizes namespaces here (no controller-manager); delete what this run created explicitly.
    await kubectl([
      "delete",
      "workers.eventloom.io,orchestrations.eventloom.io",
      "--all",
      "-n",
      ns,
      "--wait=false",
    ]);
    await kubectl(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
  }
});

describe("the shipped admission policies", () => {
  it("are what the tests apply: three policies, a binding for each, one parameter ConfigMap, bound to every namespace", () => {
    expect(policies.map((p) => p.metadata.name).sort()).toEqual([
      "eventloom-orchestration-signing",
      "eventloom-worker-allowed-registries",
      "eventloom-worker-max-replicas",
    ]);
    expect(bindings.map((b) => (b.spec as { policyName: string }).policyName).sort()).toEqual(
      policies.map((p) => p.metadata.name).sort(),
    );
    for (const b of bindings) {
      expect((b.spec as { validationActions: string[] }).validationActions).toEqual(["Deny"]);
      expect(
        (b.spec as { matchResources: { namespaceSelector: object } }).matchResources.namespaceSelector,
      ).toEqual({});
    }
    expect(params?.metadata).toMatchObject({ name: "eventloom-admission", namespace: "eventloom-system" });
    expect(params?.data?.allowedRegistries).toBe("ghcr.io/eventloom,registry.example.com/platform");
    expect(params?.data?.maxReplicasCeiling).toBe("50");
  });

  it("compile: the API server accepted them, and it refuses a policy whose CEL does not compile", async () => {
    for (const p of policies) {
      const r = await kubectl([
        "get",
        "validatingadmissionpolicy",
        policyName(p.metadata.name),
        "-o",
        "name",
      ]);
      expect(r.code, describeResult(r)).toBe(0);
    }
    // The control: the same policy with a broken expression never gets in. (Type-checking warnings are
    // written to status by kube-controller-manager, which the local stack does not run.)
    const [first] = policies;
    if (!first) throw new Error("no policies");
    const broken = structuredClone(first) as Manifest & {
      spec: { validations: Array<{ expression: string }> };
    };
    broken.metadata.name = policyName("broken");
    broken.spec.validations[0]!.expression = "object.spec.image.startsWith(";
    const r = await kubectl(["create", "--dry-run=server", "-f", "-"], JSON.stringify(broken));
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain("compilation failed");
  });
});

describe("Worker images must come from an allowed registry", () => {
  it.each([
    ["a Docker Hub image", "docker.io/someone/miner:latest"],
    ["a short name (implicitly Docker Hub)", "busybox:1.37"],
    ["a registry whose name only starts like an allowed one", "ghcr.io/eventloom-evil/worker:1.0.0"],
  ])("refuses %s, with the policy's message", async (_what, image) => {
    const r = await create(strictNs, worker("bad-image", { image }));
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain(deniedBy("eventloom-worker-allowed-registries"));
    expect(r.stderr).toContain(
      `Worker bad-image: image "${image}" is not from an allowed registry (ghcr.io/eventloom/, registry.example.com/platform/)`,
    );
    expect(r.stderr).toContain(`ConfigMap ${strictNs}/eventloom-admission (key allowedRegistries)`);
    const stored = await kubectl([
      "get",
      "-n",
      strictNs,
      "workers.eventloom.io",
      "bad-image",
      "--ignore-not-found",
      "-o",
      "name",
    ]);
    expect(stored.stdout.trim()).toBe("");
  });

  it.each([
    ["the eventloom registry", "ghcr.io/eventloom/example-workers:1.0.0", "good-ghcr"],
    [
      "a repository prefix listed with its path",
      "registry.example.com/platform/payments@sha256:" + "a".repeat(64),
      "good-platform",
    ],
  ])("admits an image from %s", async (_what, image, name) => {
    const r = await create(strictNs, worker(name, { image }));
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout).toContain(`worker.eventloom.io/${name} created`);
  });

  it("checks updates too: switching an admitted Worker to a disallowed image is refused", async () => {
    const r = await kubectl([
      "patch",
      "-n",
      strictNs,
      "workers.eventloom.io",
      "good-ghcr",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { image: "quay.io/someone/worker:2" } }),
    ]);
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain(deniedBy("eventloom-worker-allowed-registries"));
    expect(r.stderr).toContain('image "quay.io/someone/worker:2" is not from an allowed registry');
  });
});

describe("Workers may not exceed the replica ceiling", () => {
  it("refuses spec.scaling.maxReplicas above it, with the policy's message", async () => {
    const r = await create(strictNs, worker("too-wide", { scaling: { maxReplicas: 200 } }));
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain(deniedBy("eventloom-worker-max-replicas"));
    expect(r.stderr).toContain("Worker too-wide: spec.scaling.maxReplicas 200 is above the ceiling of 50");
  });

  it("refuses spec.replicas above it on a Worker without autoscaling", async () => {
    const r = await create(strictNs, worker("too-many", { scaling: { enabled: false }, replicas: 80 }));
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain("Worker too-many: 80 replicas is above the ceiling of 50");
  });

  it("admits the ceiling itself", async () => {
    const r = await create(strictNs, worker("at-ceiling", { scaling: { maxReplicas: 50 } }));
    expect(r.code, describeResult(r)).toBe(0);
  });

  it("refuses kubectl scale past it (the scale subresource), and allows it below", async () => {
    const over = await kubectl(["scale", "-n", strictNs, "workers.eventloom.io/at-ceiling", "--replicas=51"]);
    expect(over.code, describeResult(over)).not.toBe(0);
    expect(over.stderr).toContain(deniedBy("eventloom-worker-max-replicas"));
    expect(over.stderr).toContain("51 replicas is above the ceiling of 50");
    const under = await kubectl(["scale", "-n", strictNs, "workers.eventloom.io/at-ceiling", "--replicas=3"]);
    expect(under.code, describeResult(under)).toBe(0);
  });
});

describe("unsigned Orchestrations need a namespace labelled eventloom.io/allow-unsigned=true", () => {
  it("refuses signing.policy: none in an unlabelled namespace, with the policy's message", async () => {
    const r = await create(strictNs, orchestration("firehose", "none"));
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain(deniedBy("eventloom-orchestration-signing"));
    expect(r.stderr).toContain(
      `Orchestration ${strictNs}/firehose sets spec.signing.policy: none, but namespace ${strictNs} is not labelled eventloom.io/allow-unsigned=true`,
    );
  });

  it("admits signed Orchestrations there, explicit or by default", async () => {
    const explicit = await create(strictNs, orchestration("signed", "required"));
    expect(explicit.code, describeResult(explicit)).toBe(0);
    const byDefault = await create(strictNs, orchestration("signed-by-default"));
    expect(byDefault.code, describeResult(byDefault)).toBe(0);
  });

  it("refuses turning signing off on an admitted Orchestration (UPDATE)", async () => {
    const r = await kubectl([
      "patch",
      "-n",
      strictNs,
      "orchestrations.eventloom.io",
      "signed",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { signing: { policy: "none" } } }),
    ]);
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain(deniedBy("eventloom-orchestration-signing"));
  });

  it("admits signing.policy: none in a labelled namespace", async () => {
    const r = await create(unsignedNs, orchestration("firehose", "none"));
    expect(r.code, describeResult(r)).toBe(0);
    const stored = await kubectl([
      "get",
      "-n",
      unsignedNs,
      "orchestrations.eventloom.io",
      "firehose",
      "-o",
      "jsonpath={.spec.signing.policy}",
    ]);
    expect(stored.stdout).toBe("none");
  });

  it("keeps an admitted unsigned Orchestration updatable after its namespace loses the label (its finalizer can go)", async () => {
    const unlabelled = await kubectl(["label", "namespace", unsignedNs, "eventloom.io/allow-unsigned-"]);
    expect(unlabelled.code, describeResult(unlabelled)).toBe(0);
    // The policy reads namespaces from an informer: wait until it refuses new unsigned Orchestrations there.
    await eventually("the signing policy to see the label removed", async () => {
      const r = await create(unsignedNs, orchestration("firehose-2", "none"), "--dry-run=server");
      if (r.code !== 0 && r.stderr.includes(deniedBy("eventloom-orchestration-signing"))) return true;
      throw new Error(describeResult(r));
    });
    // What the operator does on delete: add, then remove its finalizer (an UPDATE that leaves spec.signing alone).
    for (const finalizers of [["eventloom.io/topics"], null]) {
      const r = await kubectl([
        "patch",
        "-n",
        unsignedNs,
        "orchestrations.eventloom.io",
        "firehose",
        "--type=merge",
        "-p",
        JSON.stringify({ metadata: { finalizers } }),
      ]);
      expect(r.code, describeResult(r)).toBe(0);
    }
  });
});

describe("the example NetworkPolicies", () => {
  it("are accepted by the API server and select the worker pods the operator creates", async () => {
    const manifests = await loadManifests(NETWORK_DIR);
    expect(manifests.length).toBeGreaterThan(0);
    for (const m of manifests) {
      expect(m.kind).toBe("NetworkPolicy");
      const r = await create(strictNs, { ...m, metadata: { ...m.metadata, namespace: strictNs } });
      expect(r.code, describeResult(r)).toBe(0);
    }
    const workerPolicies = manifests.filter(
      (m) =>
        (m.spec as { podSelector?: { matchLabels?: Record<string, string> } }).podSelector?.matchLabels?.[
          "app.kubernetes.io/name"
        ] === WORKER_APP_NAME,
    );
    expect(workerPolicies.map((m) => m.metadata.name)).toContain("eventloom-workers-egress");
    const stored = await kubectl([
      "get",
      "-n",
      strictNs,
      "networkpolicy",
      "eventloom-workers-egress",
      "-o",
      "json",
    ]);
    expect(stored.code, describeResult(stored)).toBe(0);
    const spec = (JSON.parse(stored.stdout) as { spec: { policyTypes: string[]; ingress?: unknown[] } }).spec;
    expect(spec.policyTypes.sort()).toEqual(["Egress", "Ingress"]);
    expect(spec.ingress ?? []).toEqual([]);
  });
});
