/**
 * `npm run demo`: the full local demo, on the real local stack.
 *
 * Starts Kafka, etcd, kube-apiserver and Jaeger (cached builds), installs the
 * CRDs, runs the operator, the engine and the gateway, and the kubelet
 * stand-in (test/kubelet/standin.ts: it runs the Workers' Deployments as local
 * processes, because pods cannot run on this machine). Then it walks through
 * the seeds' scenarios, printing what a user would type and what comes back:
 *
 *   1. seed 003 tenant creation: applied without its create-client Worker
 *      (Ready=False, MissingWorkers), then healed by applying the Worker;
 *   2. a tenant-creation run through the gateway, then a manual undo;
 *   3. seed 002's order saga: a declined payment compensated in reverse;
 *   4. each run's trace in Jaeger.
 *
 * It keeps running so you can explore (Ctrl-C stops everything it started);
 * `npm run demo -- --once` exits after the walkthrough (non-zero if a step failed).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as k8s from "@kubernetes/client-node";
import type { Orchestration } from "../operator/crds/types.ts";
import { GROUP, VERSION } from "../operator/crds/types.ts";
import { KubeletStandIn } from "../test/kubelet/standin.ts";
import { freePort, startService } from "../test/integration/support/processes.ts";
import type { Service } from "../test/integration/support/processes.ts";
import { root } from "../bench/support.ts";

const once = process.argv.includes("--once");
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => console.log(`\n${bold(`▶ ${s}`)}`);
const show = (s: string) => console.log(s.replace(/^/gm, "    "));

say(
  "Starting the local stack (Kafka, etcd, kube-apiserver, Jaeger); the first run builds them, later runs reuse the cache",
);
execFileSync("bash", [`${root}/scripts/stack/stack.sh`, "up", "--with-jaeger"], {
  stdio: ["ignore", "inherit", "inherit"],
});
const env: Record<string, string> = {};
for (const line of execFileSync("bash", [`${root}/scripts/stack/stack.sh`, "env"], {
  encoding: "utf8",
}).split("\n")) {
  const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
  if (m?.[1] && m[2] !== undefined && m[1] !== "PATH") env[m[1]] = m[2];
}
const kubectlBin = env.KUBECTL ?? "kubectl";
const kubectl = (...args: string[]) =>
  execFileSync(kubectlBin, args, { encoding: "utf8", env: { ...process.env, KUBECONFIG: env.KUBECONFIG } });
const kc = new k8s.KubeConfig();
kc.loadFromFile(env.KUBECONFIG ?? "");
const custom = kc.makeApiClient(k8s.CustomObjectsApi);

const ns = `demo-${Date.now().toString(36).slice(-5)}`;
const otlp = env.EVENTLOOM_OTLP_ENDPOINT ?? "";
const jaegerUi = env.EVENTLOOM_JAEGER_UI ?? "";
kubectl("apply", "-f", `${root}/crds/`);
kubectl(
  "wait",
  "--for=condition=Established",
  "crd/orchestrations.eventloom.io",
  "crd/workers.eventloom.io",
  "--timeout=60s",
);
kubectl("create", "namespace", ns);

say(`Starting the operator, engine and gateway (namespace ${ns}), tracing to Jaeger`);
const enginePort = await freePort();
const gatewayPort = Number(process.env.PORT ?? (await freePort()));
const common = {
  KUBECONFIG: env.KUBECONFIG ?? "",
  KAFKA_BROKERS: env.KAFKA_BROKERS ?? "",
  LOG_LEVEL: "warn",
  OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
};
const services: Service[] = [
  startService("operator", "operator/main.ts", {
    ...common,
    HEALTH_PORT: "0",
    HEALTH_HOST: "127.0.0.1",
    EVENTLOOM_WATCH_NAMESPACE: ns,
    EVENTLOOM_LEASE_NAMESPACE: ns,
    EVENTLOOM_WORKER_OTLP_ENDPOINT: otlp,
    EVENTLOOM_RESYNC: "10s",
  }),
  startService("engine", "services/engine/main.ts", {
    ...common,
    EVENTLOOM_NAMESPACE: ns,
    ENGINE_PORT: String(enginePort),
    ENGINE_HOST: "127.0.0.1",
    OTEL_SERVICE_NAME: "eventloom-engine",
  }),
  startService("gateway", "services/gateway/main.ts", {
    ...common,
    EVENTLOOM_NAMESPACE: ns,
    PORT: String(gatewayPort),
    HOST: "127.0.0.1",
    EVENTLOOM_GATEWAY_AUTH: "none",
    EVENTLOOM_ENGINE_URL: `http://127.0.0.1:${enginePort}`,
    OTEL_SERVICE_NAME: "eventloom-gateway",
  }),
];
const workDir = mkdtempSync(`${tmpdir()}/eventloom-demo-`);
const standIn = new KubeletStandIn(kc, {
  namespace: ns,
  workDir,
  extraEnv: {
    EXAMPLE_LEDGER_DIR: `${workDir}/ledger`,
    PAYMENT_LIMIT: "1000",
    LOG_LEVEL: "warn",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
  },
});
await standIn.start();
const gateway = `http://127.0.0.1:${gatewayPort}`;

let stopping = false;
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log("\nstopping the demo's processes (the stack keeps running: npm run stack -- down stops it)");
    await standIn.stop();
    await Promise.all(services.map((s) => s.stop()));
  }
  process.exit(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      console.error(`\nthe demo timed out waiting for ${what}. Recent logs:`);
      for (const s of services) console.error(`--- ${s.name} ---\n${s.logs().slice(-2000)}`);
      return stopAll(1);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const readyOf = async (name: string) =>
  (
    (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "orchestrations",
      namespace: ns,
      name,
    })) as Orchestration
  ).status?.conditions?.find((c) => c.type === "Ready");
interface Run {
  runId: string;
  state: string;
  traceId?: string;
  steps: Array<{ name: string; status: string; error?: { errorMessage?: string } | string }>;
}
const getRun = async (id: string) =>
  (await (await fetch(`${gateway}/namespaces/${ns}/runs/${id}`)).json()) as Run;
const waitRun = (id: string, states: string[]) =>
  until(`run ${id} to be ${states.join("/")}`, async () => {
    const r = await getRun(id);
    return states.includes(r.state) ? r : undefined;
  });
const printRun = (r: Run) => {
  show(`run ${r.runId}: ${bold(r.state)}`);
  for (const s of r.steps)
    show(
      `  ${s.name.padEnd(20)} ${s.status}${s.error ? `  (${typeof s.error === "string" ? s.error : (s.error.errorMessage ?? JSON.stringify(s.error))})` : ""}`,
    );
  if (r.traceId) show(`  trace: ${jaegerUi}/trace/${r.traceId}`);
};
async function startRun(orch: string, input: object): Promise<string> {
  show(
    `$ curl -X POST ${gateway}/namespaces/${ns}/orchestrations/${orch}/runs -H 'content-type: application/json' -d '${JSON.stringify(input)}'`,
  );
  const res = await fetch(`${gateway}/namespaces/${ns}/orchestrations/${orch}/runs`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": `${orch}-${Date.now()}` },
    body: JSON.stringify(input),
  });
  const body = await res.text();
  show(`${res.status} ${body}`);
  if (res.status !== 202) return stopAll(1);
  return (JSON.parse(body) as { runId: string }).runId;
}

await until(
  "the gateway and engine to be ready",
  async () => {
    // The gateway forwards the run API to the engine, which is ready later (it creates and reads its
    // state topic first): wait for both.
    const [g, e] = await Promise.all([
      fetch(`${gateway}/readyz`),
      fetch(`http://127.0.0.1:${enginePort}/readyz`),
    ]);
    return g.status === 200 && e.status === 200 ? true : undefined;
  },
  120_000,
);

say("Seed 003: apply the tenant-creation Orchestration and only its create-realm Worker");
show(
  `$ kubectl apply -n ${ns} -f examples/tenant-creation/orchestration.yaml -f examples/tenant-creation/worker-create-realm.yaml`,
);
show(
  kubectl(
    "apply",
    "-n",
    ns,
    "-f",
    `${root}/examples/tenant-creation/orchestration.yaml`,
    "-f",
    `${root}/examples/tenant-creation/worker-create-realm.yaml`,
  ),
);
const missing = await until("MissingWorkers", async () => {
  const c = await readyOf("tenant-creation");
  return c?.reason === "MissingWorkers" ? c : undefined;
});
show(`$ kubectl get orch -n ${ns}`);
show(kubectl("get", "orch", "-n", ns));
show(`Ready=False: ${missing.message}`);

say("Apply the missing create-client Worker: the operator heals the Orchestration from the watch");
const t0 = Date.now();
show(kubectl("apply", "-n", ns, "-f", `${root}/examples/tenant-creation/worker-create-client.yaml`));
await until("Ready", async () => ((await readyOf("tenant-creation"))?.status === "True" ? true : undefined));
show(`Ready=True ${Date.now() - t0} ms after the apply`);
show(kubectl("get", "orch,wkr,deploy", "-n", ns));

say("Start a tenant-creation run through the gateway (the Workers are scaled from zero by their lag)");
const tenantRun = await startRun("tenant-creation", { tenantId: "acme", realmName: "acme" });
printRun(await waitRun(tenantRun, ["Succeeded", "Failed", "CompensationFailed"]));

say("Undo it (seed 003's manual undo): compensations run in reverse completion order");
show(`$ curl -X POST ${gateway}/namespaces/${ns}/runs/${tenantRun}/undo`);
show(String((await fetch(`${gateway}/namespaces/${ns}/runs/${tenantRun}/undo`, { method: "POST" })).status));
printRun(await waitRun(tenantRun, ["Undone", "CompensationFailed"]));

say("Seed 002: the order saga, with a payment above the limit the payment service accepts");
show(
  kubectl(
    "apply",
    "-n",
    ns,
    "-f",
    `${root}/examples/order-saga/orchestration.yaml`,
    "-f",
    `${root}/examples/order-saga/workers.yaml`,
  ),
);
await until("order-saga Ready", async () =>
  (await readyOf("order-saga"))?.status === "True" ? true : undefined,
);
const orderRun = await startRun("order-saga", {
  orderId: "ORD-1001",
  productId: "LAPTOP",
  quantity: 1,
  amount: 4999,
});
printRun(await waitRun(orderRun, ["Failed", "Succeeded", "CompensationFailed"]));

say("Bad input is refused with a problem document, and nothing is written");
const bad = await fetch(`${gateway}/namespaces/${ns}/orchestrations/order-saga/runs`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ orderId: "ORD-1002", quantity: 0 }),
});
show(`${bad.status} ${bad.headers.get("content-type")}\n${JSON.stringify(await bad.json(), null, 2)}`);

say("Explore");
show(`eval "$(npm run -s stack -- env)"   # kubectl and helm on PATH, KUBECONFIG set`);
show(`kubectl get eventloom -n ${ns}         # Orchestrations and Workers`);
show(`kubectl describe orch order-saga -n ${ns}`);
show(`curl ${gateway}/namespaces/${ns}/runs       # runs; ${gateway}/docs/json is the OpenAPI`);
show(`curl ${gateway}/namespaces/${ns}/orchestrations/order-saga/deadletters`);
show(`${jaegerUi}                          # Jaeger: one trace per run`);
if (once) await stopAll(0);
console.log("\nThe demo keeps running; Ctrl-C stops it.");
