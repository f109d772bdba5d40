import { describe, expect, it } from "vitest";
import type { V1Container, V1Deployment } from "@kubernetes/client-node";
import {
  DEFAULT_WORKER_RESOURCES,
  autoscalingEnabled,
  deploymentFor,
  isReservedEnvName,
  workerSelector,
  workerSteps,
  workerDeploymentName,
} from "./deployment.ts";
import type { DeploymentOptions } from "./deployment.ts";
import { aStep, aWorker, anOrchestration } from "./fixtures.ts";
import type { OrchestrationOverrides, WorkerOverrides } from "./fixtures.ts";
import { isSpecError } from "./errors.ts";
import { SPEC_HASH_ANNOTATION } from "./meta.ts";

const OPTS: DeploymentOptions = { kafkaBrokers: "kafka:9092", otlpEndpoint: "http://otel-collector:4318" };

function build(
  worker: WorkerOverrides = {},
  orchestration: OrchestrationOverrides = {},
  opts: Partial<DeploymentOptions> = {},
) {
  return deploymentFor(aWorker(worker), anOrchestration(orchestration), { ...OPTS, ...opts });
}

function container(d: V1Deployment): V1Container {
  const c = d.spec?.template.spec?.containers[0];
  if (!c) throw new Error("no container");
  return c;
}

function env(d: V1Deployment): Record<string, string | undefined> {
  return Object.fromEntries((container(d).env ?? []).map((e) => [e.name, e.value]));
}

function envNames(d: V1Deployment): string[] {
  return (container(d).env ?? []).map((e) => e.name);
}

describe("deploymentFor", () => {
  it("is deterministic: two calls give deep-equal Deployments", () => {
    expect(build()).toEqual(build());
    expect(JSON.stringify(build())).toBe(JSON.stringify(build()));
  });

  it("names, labels and owns the Deployment", () => {
    const d = build();
    expect(d.apiVersion).toBe("apps/v1");
    expect(d.kind).toBe("Deployment");
    expect(d.metadata).toMatchObject({
      name: "payments-worker",
      namespace: "shop",
      labels: {
        "app.kubernetes.io/name": "eventloom-worker",
        "app.kubernetes.io/instance": "payments",
        "app.kubernetes.io/managed-by": "eventloom",
        "eventloom.io/worker": "payments",
        "eventloom.io/orchestration": "checkout",
      },
      ownerReferences: [
        {
          apiVersion: "eventloom.io/v1alpha1",
          kind: "Worker",
          name: "payments",
          uid: "5a1e5a1e-0000-4000-8000-00000000beef",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
  });

  it("selects pods with a minimal label set that the pod template carries", () => {
    const d = build();
    expect(d.spec?.selector.matchLabels).toEqual({
      "app.kubernetes.io/name": "eventloom-worker",
      "eventloom.io/worker": "payments",
    });
    expect(d.spec?.template.metadata?.labels).toMatchObject(d.spec?.selector.matchLabels ?? {});
    expect(workerSelector(aWorker())).toBe(
      "app.kubernetes.io/name=eventloom-worker,eventloom.io/worker=payments",
    );
  });

  it.each<[string, WorkerOverrides, number | undefined]>([
    ["leaves replicas to the autoscaler by default", {}, undefined],
    [
      "leaves replicas to the autoscaler when scaling is enabled, whatever spec.replicas says",
      { spec: { replicas: 4, scaling: { enabled: true } } },
      undefined,
    ],
    [
      "uses spec.replicas when scaling is disabled",
      { spec: { replicas: 4, scaling: { enabled: false } } },
      4,
    ],
    [
      "keeps zero replicas when scaling is disabled",
      { spec: { replicas: 0, scaling: { enabled: false } } },
      0,
    ],
    [
      "defaults to one replica when scaling is disabled and replicas is omitted",
      { spec: { scaling: { enabled: false } } },
      1,
    ],
  ])("%s", (_name, worker, replicas) => {
    const spec: NonNullable<V1Deployment["spec"]> | Record<string, never> = build(worker).spec ?? {};
    if (replicas === undefined) expect(spec).not.toHaveProperty("replicas");
    else expect(spec.replicas).toBe(replicas);
    expect(autoscalingEnabled(aWorker(worker))).toBe(replicas === undefined);
  });

  it("runs as the restricted pod security standard requires", () => {
    const pod = build().spec?.template.spec;
    expect(pod?.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container(build()).securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.enableServiceLinks).toBe(false);
  });

  it("mounts the service account token only for a Worker that names its service account", () => {
    const pod = build({ spec: { serviceAccountName: "payments" } }).spec?.template.spec;
    expect(pod?.serviceAccountName).toBe("payments");
    expect(pod).not.toHaveProperty("automountServiceAccountToken");
  });

  it.each<[string, Record<string, unknown> | undefined, unknown]>([
    ["uses the default resources when the Worker gives none", undefined, DEFAULT_WORKER_RESOURCES],
    ["uses the default resources when the Worker gives an empty object", {}, DEFAULT_WORKER_RESOURCES],
    [
      "passes the Worker's resources through untouched",
      { limits: { memory: "1Gi" } },
      { limits: { memory: "1Gi" } },
    ],
  ])("%s", (_name, resources, expected) => {
    expect(container(build({ spec: { resources } })).resources).toEqual(expected);
  });

  it("mounts a writable /tmp, the signing key and the trust document read-only", () => {
    const d = build();
    expect(container(d).volumeMounts).toEqual([
      { name: "tmp", mountPath: "/tmp" },
      { name: "signing-key", mountPath: "/var/run/eventloom/keys", readOnly: true },
      { name: "trust", mountPath: "/var/run/eventloom/trust", readOnly: true },
    ]);
    expect(d.spec?.template.spec?.volumes).toEqual([
      { name: "tmp", emptyDir: {} },
      { name: "signing-key", secret: { secretName: "payments-worker-signing-key", defaultMode: 0o440 } },
      { name: "trust", configMap: { name: "checkout-orchestration-trust", defaultMode: 0o444 } },
    ]);
  });

  it("tells the worker everything it needs through the environment, in a fixed order", () => {
    expect(container(build()).env).toEqual([
      { name: "KAFKA_BROKERS", value: "kafka:9092" },
      { name: "EVENTLOOM_NAMESPACE", value: "shop" },
      { name: "EVENTLOOM_ORCHESTRATION", value: "checkout" },
      { name: "EVENTLOOM_WORKER", value: "payments" },
      { name: "EVENTLOOM_STEPS", value: "charge" },
      { name: "EVENTLOOM_TOPICS", value: "eventloom.shop.checkout.charge" },
      { name: "EVENTLOOM_CONSUMER_GROUP", value: "eventloom.shop.payments" },
      {
        name: "EVENTLOOM_RETRY_TOPICS",
        value:
          '{"charge":["eventloom.shop.checkout-retry-1000","eventloom.shop.checkout-retry-2000","eventloom.shop.checkout-retry-4000"]}',
      },
      { name: "EVENTLOOM_DLT_TOPIC", value: "eventloom.shop.checkout-dlt" },
      { name: "EVENTLOOM_RESULTS_TOPIC", value: "eventloom.shop.checkout-results" },
      { name: "EVENTLOOM_CONCURRENCY", value: "1" },
      { name: "EVENTLOOM_SIGNING_POLICY", value: "required" },
      { name: "EVENTLOOM_SIGNING_KEY_PATH", value: "/var/run/eventloom/keys/private.jwk" },
      { name: "EVENTLOOM_TRUST_PATH", value: "/var/run/eventloom/trust/trust.json" },
      { name: "OTEL_EXPORTER_OTLP_ENDPOINT", value: "http://otel-collector:4318" },
      { name: "OTEL_SERVICE_NAME", value: "payments" },
    ]);
  });

  it.each<
    [
      string,
      WorkerOverrides,
      OrchestrationOverrides,
      Partial<DeploymentOptions>,
      Record<string, string | undefined>,
    ]
  >([
    [
      "lists several steps in the orchestration's order",
      { spec: { steps: ["ship", "reserve"] } },
      {},
      {},
      {
        EVENTLOOM_STEPS: "reserve,ship",
        EVENTLOOM_TOPICS: "eventloom.shop.checkout.reserve,eventloom.shop.checkout.ship",
      },
    ],
    [
      "takes the bound steps from the caller when given",
      {},
      {},
      { steps: ["ship"] },
      { EVENTLOOM_STEPS: "ship", EVENTLOOM_TOPICS: "eventloom.shop.checkout.ship" },
    ],
    [
      "carries the Worker's concurrency",
      { spec: { concurrency: 8 } },
      {},
      {},
      { EVENTLOOM_CONCURRENCY: "8" },
    ],
    [
      "uses the topic prefix for topics and the consumer group",
      {},
      {},
      { prefix: "staging" },
      { EVENTLOOM_TOPICS: "staging.shop.checkout.charge", EVENTLOOM_CONSUMER_GROUP: "staging.shop.payments" },
    ],
    [
      "gives each step its own retry schedule",
      { spec: { steps: ["reserve", "charge"] } },
      {
        spec: {
          steps: [
            aStep("reserve", { retry: { attempts: 0 } }),
            aStep("charge", { retry: { tiers: ["30s"] } }),
          ],
        },
      },
      {},
      { EVENTLOOM_RETRY_TOPICS: '{"reserve":[],"charge":["eventloom.shop.checkout-retry-30000"]}' },
    ],
    [
      "leaves out the dead-letter topic when dead-lettering is disabled",
      {},
      { spec: { deadLetter: { enabled: false } } },
      {},
      { EVENTLOOM_DLT_TOPIC: undefined },
    ],
    [
      "leaves out the OTLP endpoint when none is configured",
      {},
      {},
      { otlpEndpoint: undefined },
      { OTEL_EXPORTER_OTLP_ENDPOINT: undefined },
    ],
    [
      "leaves out keys and trust when the orchestration does not sign",
      {},
      { spec: { signing: { policy: "none" } } },
      {},
      {
        EVENTLOOM_SIGNING_POLICY: "none",
        EVENTLOOM_SIGNING_KEY_PATH: undefined,
        EVENTLOOM_TRUST_PATH: undefined,
      },
    ],
    [
      "passes a choreographed Worker's subscriptions",
      { spec: { steps: undefined, subscribes: ["order.placed"] } },
      { spec: { mode: "choreographed", steps: [{ name: "notify", subscribes: ["order.placed"] }] } },
      {},
      { EVENTLOOM_STEPS: "notify", EVENTLOOM_SUBSCRIBES: "order.placed" },
    ],
  ])("%s", (_name, worker, orchestration, opts, expected) => {
    const actual = env(build(worker, orchestration, opts));
    for (const [name, value] of Object.entries(expected)) {
      if (value === undefined) expect(actual).not.toHaveProperty(name);
      else expect(actual[name]).toBe(value);
    }
  });

  it("drops the key and trust volumes when the orchestration does not sign", () => {
    const d = build({}, { spec: { signing: { policy: "none" } } });
    expect(d.spec?.template.spec?.volumes?.map((v) => v.name)).toEqual(["tmp"]);
    expect(container(d).volumeMounts?.map((m) => m.name)).toEqual(["tmp"]);
  });

  it("appends the Worker's env after the operator's, valueFrom included", () => {
    const d = build({
      spec: {
        env: [
          { name: "LOG_LEVEL", value: "debug" },
          { name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } },
        ],
      },
    });
    expect(container(d).env?.slice(-2)).toEqual([
      { name: "LOG_LEVEL", value: "debug" },
      { name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } },
    ]);
  });

  it("lets the Worker's OTEL_* replace the operator's instead of duplicating it", () => {
    const d = build({ spec: { env: [{ name: "OTEL_SERVICE_NAME", value: "billing" }] } });
    expect(envNames(d).filter((n) => n === "OTEL_SERVICE_NAME")).toHaveLength(1);
    expect(envNames(d).at(-1)).toBe("OTEL_SERVICE_NAME");
    expect(env(d).OTEL_SERVICE_NAME).toBe("billing");
  });

  it.each([["KAFKA_BROKERS"], ["EVENTLOOM_CONSUMER_GROUP"], ["EVENTLOOM_ANYTHING"]])(
    "refuses a Worker that sets the reserved env %s",
    (name) => {
      expect(isReservedEnvName(name)).toBe(true);
      expect(() => build({ spec: { env: [{ name, value: "x" }] } })).toThrow(
        expect.objectContaining({ reason: "ReservedEnvName" }),
      );
      expect(() => build({ spec: { env: [{ name, value: "x" }] } })).toThrow(
        `sets env ${name}, which the operator sets itself`,
      );
    },
  );

  it("passes image, command and args through", () => {
    const c = container(build({ spec: { image: "example/w:2", command: ["node"], args: ["main.js"] } }));
    expect(c).toMatchObject({ name: "worker", image: "example/w:2", command: ["node"], args: ["main.js"] });
  });

  it("leaves command and args out when the Worker gives none", () => {
    expect(container(build())).not.toHaveProperty("command");
    expect(container(build())).not.toHaveProperty("args");
  });

  it.each<[string, WorkerOverrides, boolean]>([
    ["keeps the spec hash when nothing changes", {}, true],
    [
      "keeps the spec hash when only Worker metadata changes",
      { metadata: { labels: { team: "payments" } } },
      true,
    ],
    [
      "changes the spec hash when the image changes",
      { spec: { image: "registry.example.com/payments:1.4.3" } },
      false,
    ],
    ["changes the spec hash when the env changes", { spec: { env: [{ name: "A", value: "1" }] } }, false],
  ])("%s", (_name, worker, same) => {
    const before = build().metadata?.annotations?.[SPEC_HASH_ANNOTATION];
    const after = build(worker).metadata?.annotations?.[SPEC_HASH_ANNOTATION];
    expect(before).toMatch(/^[0-9a-f]{16}$/);
    expect(after === before).toBe(same);
  });

  it("does not change the Worker it was given", () => {
    const worker = aWorker({
      spec: { resources: { limits: { cpu: "1" } }, env: [{ name: "A", value: "1" }] },
    });
    const snapshot = structuredClone(worker);
    const d = deploymentFor(worker, anOrchestration(), OPTS);
    (container(d).resources?.limits as Record<string, string>).cpu = "2";
    expect(worker).toEqual(snapshot);
  });

  it.each<[string, () => unknown, string, RegExp]>([
    ["a Worker without a uid", () => build({ uid: "" }), "MissingMetadata", /has no uid/],
    [
      "a Worker of another orchestration",
      () => build({ spec: { orchestration: "refund" } }),
      "OrchestrationMismatch",
      /belongs to Orchestration shop\/refund/,
    ],
    [
      "an orchestration in another namespace",
      () => build({}, { namespace: "eu" }),
      "OrchestrationMismatch",
      /not eu\/checkout/,
    ],
  ])("refuses %s with a spec error", (_name, run, reason, message) => {
    let caught: unknown;
    try {
      run();
    } catch (err) {
      caught = err;
    }
    expect(isSpecError(caught)).toBe(true);
    expect(caught).toMatchObject({ reason });
    expect((caught as Error).message).toMatch(message);
  });

  it("names the Deployment after the Worker", () => {
    expect(workerDeploymentName(aWorker({ name: "realm" }))).toBe("realm-worker");
  });
});

describe("workerSteps", () => {
  const choreography: OrchestrationOverrides = {
    spec: {
      mode: "choreographed",
      steps: [
        { name: "notify", subscribes: ["order.placed"] },
        { name: "invoice", subscribes: ["order.placed", "payment.captured"] },
        { name: "audit", subscribes: ["order.placed"], worker: "auditor" },
      ],
    },
  };

  it.each<[string, WorkerOverrides, OrchestrationOverrides, string[]]>([
    ["binds the listed steps", { spec: { steps: ["charge"] } }, {}, ["charge"]],
    [
      "returns them in the orchestration's order",
      { spec: { steps: ["ship", "reserve"] } },
      {},
      ["reserve", "ship"],
    ],
    [
      "ignores steps the orchestration does not have",
      { spec: { steps: ["charge", "gift-wrap"] } },
      {},
      ["charge"],
    ],
    [
      "skips a step pinned to another Worker",
      { spec: { steps: ["charge"] } },
      { spec: { steps: [aStep("charge", { worker: "billing" })] } },
      [],
    ],
    [
      "keeps a step pinned to this Worker",
      { spec: { steps: ["charge"] } },
      { spec: { steps: [aStep("charge", { worker: "payments" })] } },
      ["charge"],
    ],
    [
      "binds choreographed steps whose subscriptions it covers",
      { spec: { steps: undefined, subscribes: ["order.placed"] } },
      choreography,
      ["notify"],
    ],
    [
      "binds a step needing several types only when all are covered",
      { spec: { steps: undefined, subscribes: ["order.placed", "payment.captured"] } },
      choreography,
      ["notify", "invoice"],
    ],
    [
      "leaves a choreographed step pinned elsewhere",
      { name: "someone", spec: { steps: undefined, subscribes: ["order.placed"] } },
      choreography,
      ["notify"],
    ],
    [
      "takes a choreographed step pinned to it",
      { name: "auditor", spec: { steps: undefined, subscribes: ["order.placed"] } },
      choreography,
      ["notify", "audit"],
    ],
  ])("%s", (_name, worker, orchestration, steps) => {
    expect(workerSteps(aWorker(worker), anOrchestration(orchestration))).toEqual(steps);
  });
});
