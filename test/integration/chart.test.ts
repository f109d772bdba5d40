/**
 * The Helm chart (charts/eventloom) with the real helm against the real kube-apiserver: it lints, refuses
 * bad values with a message that says what to do, renders Deployments whose environment the services'
 * own config parsers accept, installs (twice at once, into two namespaces, without cluster-scoped name
 * clashes) into namespaces that enforce the "restricted" Pod Security Standard, grants exactly the RBAC
 * the components need (asked of the API server's authorizer with `kubectl auth can-i --as`), and
 * uninstalls.
 *
 * Pods never run here (no kubelet, scheduler or controller-manager), so nothing waits for them: the pod
 * templates are checked by creating Pods from them with a server-side dry run in a namespace whose Pod
 * Security admission enforces "restricted". The CRDs are applied from crds/ first (the chart's crds/
 * are identical copies) and the chart is installed with --skip-crds, since other suites share them.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFromEnv as engineConfigFromEnv } from "../../services/engine/config.ts";
import { configFromEnv as gatewayConfigFromEnv } from "../../services/gateway/config.ts";
import { parseDuration } from "../../services/events/retry.ts";
import { kubectl, stack, uniqueName } from "./support/stack.ts";
import type { CommandResult } from "./support/stack.ts";

const execFileAsync = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHART = join(REPO_ROOT, "charts", "eventloom");

const describeResult = (r: CommandResult): string =>
  `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** Runs the real helm against the stack; never throws on a non-zero exit. */
async function helm(args: string[]): Promise<CommandResult> {
  const env = stack();
  try {
    const { stdout, stderr } = await execFileAsync(env.helm, args, {
      env: { ...process.env, KUBECONFIG: env.kubeconfig },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  image: string;
  args: string[];
  env: EnvVar[];
  ports: Array<{ name: string; containerPort: number }>;
  securityContext: Record<string, unknown>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  startupProbe?: { httpGet: { path: string; port: string } };
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: Array<{
    name: string;
    secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  }>;
}
interface Deployment extends K8sObject {
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const envOf = (c: Container): NodeJS.ProcessEnv =>
  Object.fromEntries(c.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));

/** The restricted Pod Security Standard, as the chart must set it on every pod and container. */
const RESTRICTED_POD = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  seccompProfile: { type: "RuntimeDefault" },
};
const RESTRICTED_CONTAINER = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

let serverVersion = "";
let workDir = "";

beforeAll(async () => {
  const version = await kubectl(["version", "-o", "json"]);
  expect(version.code, describeResult(version)).toBe(0);
  serverVersion = (JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } }).serverVersion
    .gitVersion;
  workDir = await mkdtemp(join(tmpdir(), "eventloom-chart-"));
});

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** `helm template` as the API server in use would see it (this helm's built-in default is older). */
const template = (...args: string[]): Promise<CommandResult> =>
  helm([
    "template",
    "eventloom",
    CHART,
    "--namespace",
    "eventloom-system",
    "--kube-version",
    serverVersion,
    ...args,
  ]);

describe("helm lint and values validation", () => {
  it("lints clean with the default values", async () => {
    const r = await helm(["lint", CHART]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
  });

  it.each([
    {
      what: "empty kafka.brokers",
      values: 'kafka:\n  brokers: ""\n',
      message:
        "kafka.brokers is empty: set it to your Kafka bootstrap brokers, e.g. --set kafka.brokers=my-cluster-kafka-bootstrap.kafka.svc:9092",
    },
    {
      what: "token auth without a tokens Secret",
      values: 'gateway:\n  auth: token\n  tokens:\n    existingSecret: ""\n',
      message:
        "gateway.tokens.existingSecret is empty while gateway.auth is token: create the tokens Secret (docs/gateway.md)",
    },
    {
      what: "a broker without a port",
      values: "kafka:\n  brokers: kafka.kafka.svc\n",
      message: "at '/kafka/brokers': 'kafka.kafka.svc' does not match pattern",
    },
    {
      what: "a key the chart does not have",
      values: "operator:\n  replicaCount: 3\n",
      message: "at '/operator': additional properties 'replicaCount' not allowed",
    },
  ])("lint fails on $what, saying what to set", async ({ values, message }) => {
    const file = join(workDir, `bad-${uniqueName("values")}.yaml`);
    await writeFile(file, values);
    const r = await helm(["lint", CHART, "-f", file]);
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stdout + r.stderr).toContain(message);
    expect(r.stdout + r.stderr).toContain("1 chart(s) linted, 1 chart(s) failed");
  });

  it("template and install stop on values that only fit together badly, with the _validations.tpl message", async () => {
    const r = await template("--set", "operator.leaderElection.renewDeadline=12s");
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toContain(
      "Leader election needs retryPeriod < renewDeadline < leaseDuration (got 2s < 12s < 10s)",
    );
  });

  it("refuses a ServiceMonitor when the cluster has no Prometheus Operator CRDs, and renders it when it has", async () => {
    const missing = await template("--set", "metrics.serviceMonitor.enabled=true");
    expect(missing.code, describeResult(missing)).not.toBe(0);
    expect(missing.stderr).toContain("no monitoring.coreos.com/v1 ServiceMonitor");
    const present = await template(
      "--set",
      "metrics.serviceMonitor.enabled=true",
      "--api-versions",
      "monitoring.coreos.com/v1/ServiceMonitor",
    );
    expect(present.code, describeResult(present)).toBe(0);
    expect(
      parseManifests(present.stdout)
        .filter((o) => o.kind === "ServiceMonitor")
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(["eventloom-engine", "eventloom-gateway", "eventloom-operator"]);
  });
});

describe("helm template", () => {
  let objects: K8sObject[] = [];
  const deployment = (component: string): Deployment => {
    const d = objects.find((o) => o.kind === "Deployment" && o.metadata.name === `eventloom-${component}`);
    if (!d)
      throw new Error(
        `no Deployment eventloom-${component} in ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`,
      );
    return d as Deployment;
  };
  const container = (component: string): Container => deployment(component).spec.template.spec.containers[0]!;

  beforeAll(async () => {
    const r = await template(
      "--set",
      "kafka.brokers=kafka-0.kafka:9092\\,kafka-1.kafka:9092",
      "--set",
      "tracing.otlpEndpoint=http://jaeger.observability:4318",
    );
    expect(r.code, describeResult(r)).toBe(0);
    objects = parseManifests(r.stdout);
  });

  it("renders the three components from one image, each with its own entry file", () => {
    for (const [component, entry] of [
      ["operator", "dist/operator/main.js"],
      ["gateway", "services/gateway/main.ts"],
      ["engine", "services/engine/main.ts"],
    ] as const) {
      const c = container(component);
      expect(c.image).toBe("ghcr.io/eventloom/eventloom:0.1.0");
      // The operator's own node flags bound V8's heap (values.yaml, operator.nodeArgs).
      expect(c.args).toEqual(
        component === "operator" ? ["--max-semi-space-size=2", "--max-old-space-size=128", entry] : [entry],
      );
      expect(deployment(component).spec.template.metadata.labels).toMatchObject({
        "app.kubernetes.io/name": "eventloom",
        "app.kubernetes.io/instance": "eventloom",
        "app.kubernetes.io/component": component,
        // Not "eventloom": the operator watches Deployments labelled managed-by=eventloom as its own children.
        "app.kubernetes.io/managed-by": "Helm",
      });
    }
  });

  it("sets the restricted security context on every pod and container", () => {
    for (const component of ["operator", "gateway", "engine"]) {
      const spec = deployment(component).spec.template.spec;
      expect(spec.securityContext).toMatchObject(RESTRICTED_POD);
      for (const c of spec.containers)
        expect(c.securityContext, `${component}/${c.name}`).toMatchObject(RESTRICTED_CONTAINER);
    }
  });

  it("gives the operator leader election (2 replicas, POD_NAMESPACE from the downward API) and probes on its health port", () => {
    const d = deployment("operator");
    expect(d.spec.replicas).toBe(2);
    const c = container("operator");
    const env = envOf(c);
    expect(env).toMatchObject({
      KAFKA_BROKERS: "kafka-0.kafka:9092,kafka-1.kafka:9092",
      EVENTLOOM_WORKER_OTLP_ENDPOINT: "http://jaeger.observability:4318",
      EVENTLOOM_TOPIC_PREFIX: "eventloom",
      EVENTLOOM_LEASE_NAME: "eventloom-operator",
      HEALTH_PORT: "8081",
    });
    expect(c.env.find((e) => e.name === "POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath).toBe(
      "metadata.namespace",
    );
    for (const name of [
      "EVENTLOOM_LEASE_DURATION",
      "EVENTLOOM_RENEW_DEADLINE",
      "EVENTLOOM_RETRY_PERIOD",
      "EVENTLOOM_RESYNC",
      "EVENTLOOM_FINALIZER_TIMEOUT",
    ]) {
      expect(() => parseDuration(env[name] ?? "", name), name).not.toThrow();
    }
    expect(c.ports).toEqual([expect.objectContaining({ name: "health", containerPort: 8081 })]);
    expect(c.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "health" });
    expect(c.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "health" });
    // The Role may update only the Lease the operator is told to use.
    const role = objects.find((o) => o.kind === "Role") as K8sObject & {
      rules: Array<{ resourceNames?: string[]; verbs: string[] }>;
    };
    expect(role.rules.find((r) => r.verbs.includes("update"))?.resourceNames).toEqual([
      env.EVENTLOOM_LEASE_NAME,
    ]);
  });

  it("gives the gateway an environment its own config parser accepts, with the tokens file where the Secret is mounted", () => {
    const c = container("gateway");
    const config = gatewayConfigFromEnv(envOf(c));
    expect(config).toMatchObject({
      port: 8080,
      auth: "token",
      topicPrefix: "eventloom",
      rateLimitMax: 100,
      rateLimitWindowMs: 1000,
    });
    expect(envOf(c).KAFKA_BROKERS).toBe("kafka-0.kafka:9092,kafka-1.kafka:9092");
    expect(envOf(c).OTEL_EXPORTER_OTLP_ENDPOINT).toBe("http://jaeger.observability:4318");
    const mount = c.volumeMounts.find((m) => m.name === "tokens");
    const volume = deployment("gateway").spec.template.spec.volumes.find((v) => v.name === "tokens");
    expect(volume?.secret?.secretName).toBe("eventloom-gateway-tokens");
    expect(`${mount?.mountPath}/${volume?.secret?.items?.[0]?.path}`).toBe(config.tokensFile);
    expect(c.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "http" });
    const service = objects.find(
      (o) => o.kind === "Service" && o.metadata.name === "eventloom-gateway",
    ) as K8sObject & { spec: { ports: Array<{ port: number }> } };
    expect(service.spec.ports[0]?.port).toBe(8080);
  });

  it("gives the engine an environment its own config parser accepts, and a startup probe for its restore", () => {
    const c = container("engine");
    expect(engineConfigFromEnv(envOf(c))).toMatchObject({
      brokers: ["kafka-0.kafka:9092", "kafka-1.kafka:9092"],
      port: 8081,
      partitions: 6,
      replicationFactor: undefined,
      sessionTimeoutMs: 10_000,
    });
    expect(c.startupProbe?.httpGet).toEqual({ path: "/healthz", port: "http" });
  });

  it("names cluster-scoped objects after the release and its namespace", () => {
    const clusterScoped = objects.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding");
    expect(clusterScoped.length).toBeGreaterThan(0);
    for (const o of clusterScoped)
      expect(o.metadata.name, `${o.kind}`).toMatch(/^eventloom-eventloom-system-/);
  });

  it("ships the same CRDs as crds/, which helm show crds lists", async () => {
    const chartCrds = (await readdir(join(CHART, "crds"))).sort();
    expect(chartCrds).toEqual((await readdir(join(REPO_ROOT, "crds"))).sort());
    for (const file of chartCrds) {
      expect(await readFile(join(CHART, "crds", file), "utf8"), file).toBe(
        await readFile(join(REPO_ROOT, "crds", file), "utf8"),
      );
    }
    const r = await helm(["show", "crds", CHART]);
    expect(r.code, describeResult(r)).toBe(0);
    for (const name of ["orchestrations.eventloom.io", "workers.eventloom.io"])
      expect(r.stdout).toContain(`name: ${name}`);
  });
});

describe("helm install against the real API server", () => {
  const releases = [
    { release: "eventloom", namespace: uniqueName("chart") },
    // Same release name in another namespace, installed at the same time: cluster-scoped names must not clash.
    { release: "eventloom", namespace: uniqueName("chart") },
  ] as const;
  const [first] = releases;
  const ns = first.namespace;
  let installed: CommandResult[] = [];

  beforeAll(async () => {
    const crds = await kubectl(["apply", "-f", join(REPO_ROOT, "crds")]);
    expect(crds.code, describeResult(crds)).toBe(0);
    for (const { namespace } of releases) {
      const created = await kubectl(
        ["create", "-f", "-"],
        JSON.stringify({
          apiVersion: "v1",
          kind: "Namespace",
          metadata: {
            name: namespace,
            labels: {
              "pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/warn": "restricted",
            },
          },
        }),
      );
      expect(created.code, describeResult(created)).toBe(0);
    }
    installed = await Promise.all(
      releases.map(({ release, namespace }) =>
        // --no-hooks and no --wait: pods never run here. --skip-crds: applied above from crds/.
        helm([
          "install",
          release,
          CHART,
          "--namespace",
          namespace,
          "--skip-crds",
          "--no-hooks",
          "--set",
          "kafka.brokers=kafka.kafka.svc:9092",
        ]),
      ),
    );
  });

  afterAll(async () => {
    for (const { release, namespace } of releases) {
      await helm(["uninstall", release, "--namespace", namespace, "--ignore-not-found"]);
      await kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]);
    }
  });

  it("installs two releases at once without a clash, and without Pod Security warnings", () => {
    for (const r of installed) {
      expect(r.code, describeResult(r)).toBe(0);
      expect(r.stdout).toContain("STATUS: deployed");
      expect(r.stderr).not.toMatch(/PodSecurity/);
    }
  });

  it("creates the Deployments, ServiceAccounts, Services, RBAC and PodDisruptionBudgets", async () => {
    const r = await kubectl([
      "get",
      "deployments,serviceaccounts,services,roles,rolebindings,poddisruptionbudgets",
      "-n",
      ns,
      "-l",
      "app.kubernetes.io/instance=eventloom",
      "-o",
      "json",
    ]);
    expect(r.code, describeResult(r)).toBe(0);
    const names = (JSON.parse(r.stdout) as { items: K8sObject[] }).items
      .map((o) => `${o.kind}/${o.metadata.name}`)
      .sort();
    expect(names).toEqual([
      "Deployment/eventloom-engine",
      "Deployment/eventloom-gateway",
      "Deployment/eventloom-operator",
      "PodDisruptionBudget/eventloom-engine",
      "PodDisruptionBudget/eventloom-gateway",
      "PodDisruptionBudget/eventloom-operator",
      "Role/eventloom-operator-leader-election",
      "RoleBinding/eventloom-operator-leader-election",
      "Service/eventloom-engine",
      "Service/eventloom-gateway",
      "Service/eventloom-operator-metrics",
      "ServiceAccount/eventloom-engine",
      "ServiceAccount/eventloom-gateway",
      "ServiceAccount/eventloom-operator",
    ]);
    for (const { namespace } of releases) {
      const cluster = await kubectl(["get", "clusterroles,clusterrolebindings", "-o", "name"]);
      expect(
        cluster.stdout
          .split("\n")
          .filter((n) => n.includes(`/eventloom-${namespace}-`))
          .sort(),
      ).toEqual([
        `clusterrole.rbac.authorization.k8s.io/eventloom-${namespace}-edit`,
        `clusterrole.rbac.authorization.k8s.io/eventloom-${namespace}-engine`,
        `clusterrole.rbac.authorization.k8s.io/eventloom-${namespace}-gateway`,
        `clusterrole.rbac.authorization.k8s.io/eventloom-${namespace}-operator`,
        `clusterrole.rbac.authorization.k8s.io/eventloom-${namespace}-view`,
        `clusterrolebinding.rbac.authorization.k8s.io/eventloom-${namespace}-engine`,
        `clusterrolebinding.rbac.authorization.k8s.io/eventloom-${namespace}-gateway`,
        `clusterrolebinding.rbac.authorization.k8s.io/eventloom-${namespace}-operator`,
      ]);
    }
  });

  it("stores the restricted security context on every Deployment", async () => {
    for (const component of ["operator", "gateway", "engine"]) {
      const r = await kubectl(["get", "deployment", `eventloom-${component}`, "-n", ns, "-o", "json"]);
      expect(r.code, describeResult(r)).toBe(0);
      const spec = (JSON.parse(r.stdout) as Deployment).spec.template.spec;
      expect(spec.serviceAccountName).toBe(`eventloom-${component}`);
      expect(spec.securityContext).toMatchObject(RESTRICTED_POD);
      expect(spec.containers[0]?.securityContext).toMatchObject(RESTRICTED_CONTAINER);
    }
  });

  it("has pod templates that Pod Security admission ('restricted', enforced) accepts as Pods", async () => {
    for (const component of ["operator", "gateway", "engine"]) {
      const r = await kubectl(["get", "deployment", `eventloom-${component}`, "-n", ns, "-o", "json"]);
      const template = (JSON.parse(r.stdout) as Deployment).spec.template;
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `psa-${component}`, labels: template.metadata.labels },
        spec: template.spec,
      };
      const created = await kubectl(["create", "-n", ns, "--dry-run=server", "-f", "-"], JSON.stringify(pod));
      expect(created.code, describeResult(created)).toBe(0);
    }
    // The control: the same namespace refuses a Pod without the restricted settings.
    const bare = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "psa-control" },
      spec: {
        serviceAccountName: "eventloom-operator",
        containers: [{ name: "c", image: "ghcr.io/eventloom/eventloom:0.1.0" }],
      },
    };
    const refused = await kubectl(["create", "-n", ns, "--dry-run=server", "-f", "-"], JSON.stringify(bare));
    expect(refused.code, describeResult(refused)).not.toBe(0);
    expect(refused.stderr).toContain('violates PodSecurity "restricted:latest"');
  });

  it("has local-development pods (tilt/kafka.yaml, tilt/jaeger.yaml, the chart with tilt/values-dev.yaml) that pass 'restricted' too", async () => {
    // No controller-manager here makes the namespace's default ServiceAccount; the dev manifests use it.
    await kubectl(["create", "serviceaccount", "default", "-n", ns]);
    const dev = await template("-f", join(REPO_ROOT, "tilt", "values-dev.yaml"), "--namespace", ns);
    expect(dev.code, describeResult(dev)).toBe(0);
    const workloads = [
      ...parseManifests(await readFile(join(REPO_ROOT, "tilt", "kafka.yaml"), "utf8")),
      ...parseManifests(await readFile(join(REPO_ROOT, "tilt", "jaeger.yaml"), "utf8")),
      ...parseManifests(dev.stdout).map((o) =>
        o.kind === "Deployment" ? { ...o, metadata: { ...o.metadata, name: `dev-${o.metadata.name}` } } : o,
      ),
    ].filter((o): o is Deployment => o.kind === "Deployment" || o.kind === "StatefulSet");
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual([
      "dev-eventloom-engine",
      "dev-eventloom-gateway",
      "dev-eventloom-operator",
      "jaeger",
      "kafka",
    ]);
    for (const w of workloads) {
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `psa-${w.metadata.name}` },
        spec: w.spec.template.spec,
      };
      const created = await kubectl(["create", "-n", ns, "--dry-run=server", "-f", "-"], JSON.stringify(pod));
      expect(created.code, `${w.metadata.name}: ${describeResult(created)}`).toBe(0);
    }
  });

  it("renders NetworkPolicies (networkPolicy.enabled) that the API server accepts, one per component", async () => {
    const r = await template(
      "--namespace",
      ns,
      "--set",
      "networkPolicy.enabled=true",
      "--set",
      "networkPolicy.kafkaPeers[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=kafka",
      "--show-only",
      "templates/networkpolicies.yaml",
    );
    expect(r.code, describeResult(r)).toBe(0);
    const policies = parseManifests(r.stdout);
    expect(policies.map((p) => p.metadata.name).sort()).toEqual([
      "eventloom-engine",
      "eventloom-gateway",
      "eventloom-operator",
    ]);
    const applied = await kubectl(["create", "-n", ns, "--dry-run=server", "-f", "-"], r.stdout);
    expect(applied.code, describeResult(applied)).toBe(0);
    expect(applied.stdout.match(/created \(server dry run\)/g)).toHaveLength(3);
  });

  const canI = async (component: string, ...query: string[]): Promise<string> => {
    const r = await kubectl([
      "auth",
      "can-i",
      ...query,
      `--as=system:serviceaccount:${ns}:eventloom-${component}`,
    ]);
    return r.stdout.trim();
  };

  it.each([
    ["operator", ["create", "deployments", "-n", "shop"], "yes"],
    ["operator", ["patch", "deployments", "--subresource=scale", "-n", "shop"], "yes"],
    ["operator", ["delete", "deployments", "-n", "shop"], "no"],
    ["operator", ["create", "secrets", "-n", "shop"], "yes"],
    ["operator", ["update", "secrets", "-n", "shop"], "no"],
    ["operator", ["delete", "secrets", "-n", "shop"], "no"],
    ["operator", ["patch", "configmaps", "-n", "shop"], "yes"],
    ["operator", ["patch", "orchestrations.eventloom.io", "--subresource=status", "-n", "shop"], "yes"],
    ["operator", ["delete", "orchestrations.eventloom.io", "-n", "shop"], "no"],
    ["operator", ["create", "events", "-n", "shop"], "yes"],
    ["operator", ["create", "pods", "-n", "shop"], "no"],
    ["operator", ["update", "leases/eventloom-operator", "-n", "<release-namespace>"], "yes"],
    ["operator", ["update", "leases/someone-elses-lease", "-n", "<release-namespace>"], "no"],
    ["operator", ["create", "leases", "-n", "kube-system"], "no"],
    ["gateway", ["list", "orchestrations.eventloom.io", "--all-namespaces"], "yes"],
    ["gateway", ["get", "secrets", "-n", "shop"], "yes"],
    ["gateway", ["list", "secrets", "-n", "shop"], "no"],
    ["gateway", ["create", "orchestrations.eventloom.io", "-n", "shop"], "no"],
    ["gateway", ["create", "events", "-n", "shop"], "no"],
    ["engine", ["watch", "configmaps", "--all-namespaces"], "yes"],
    ["engine", ["create", "events", "-n", "shop"], "yes"],
    ["engine", ["create", "deployments", "-n", "shop"], "no"],
  ] as const)("RBAC: %s may %j: %s", async (component, query, expected) => {
    const args = query.map((a) => (a === "<release-namespace>" ? ns : a));
    expect(await canI(component, ...args)).toBe(expected);
  });

  it("uninstalls: the release's objects go (cluster-scoped ones too), the CRDs stay", async () => {
    const r = await helm(["uninstall", "eventloom", "--namespace", ns]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout).toContain('release "eventloom" uninstalled');
    const left = await kubectl([
      "get",
      "deployments,serviceaccounts,roles",
      "-n",
      ns,
      "-l",
      "app.kubernetes.io/instance=eventloom",
      "-o",
      "name",
    ]);
    expect(left.stdout.trim()).toBe("");
    const cluster = await kubectl(["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    expect(cluster.stdout).not.toContain(`eventloom-${ns}-`);
    // The other release is untouched.
    expect(cluster.stdout).toContain(
      `clusterrole.rbac.authorization.k8s.io/eventloom-${releases[1].namespace}-operator`,
    );
    const crds = await kubectl([
      "get",
      "crd",
      "orchestrations.eventloom.io",
      "workers.eventloom.io",
      "-o",
      "name",
    ]);
    expect(crds.code, describeResult(crds)).toBe(0);
  });
});
