/**
 * Operator benchmark: apply → Ready latency for one Orchestration at a time and
 * for N (default 1,000) Orchestrations of 3 steps with their Workers applied
 * at once; operator RSS idle and loaded; the operator's Kubernetes API
 * requests by verb and resource. Baselines from the same run: a bare API
 * create round trip, the same 2 × N applies into a namespace no operator
 * watches, a bare Kafka topic creation and Kafka alone creating the N
 * Orchestrations' topics.
 *
 * The N objects are applied the way `kubectl apply --server-side` would, 32 at
 * a time over keep-alive connections (the operator's own lean client), and
 * "all Ready" is timed from the start of that apply.
 *
 *   npm run bench:operator            (BENCH_ORCHESTRATIONS=1000 by default)
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg } from "node:os";
import type { AddressInfo } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import type { Orchestration, Worker } from "../operator/crds/types.ts";
import { GROUP, VERSION } from "../operator/crds/types.ts";
import { KafkaClient } from "../services/kafka/client.ts";
import { CONTENT_TYPE, KubeClient } from "../operator/kube-client/client.ts";
import { loadKubeConnection } from "../operator/kube-client/config.ts";
import { machine, percentile, pool, root, rssMiB, stackEnv, writeResult } from "./support.ts";

const N = Number(process.env.BENCH_ORCHESTRATIONS ?? 1000);
const SINGLE_TRIALS = Number(process.env.BENCH_SINGLE_TRIALS ?? 20);
/** Applies in flight at once, as a parallel `kubectl apply` or a GitOps controller sends them. */
const APPLY_CONCURRENCY = Number(process.env.BENCH_APPLY_CONCURRENCY ?? 32);
/** 0 skips Kafka alone creating the N Orchestrations' topics (for quick iterations). */
const KAFKA_BASELINE = process.env.BENCH_KAFKA_BASELINE !== "0";
/** Extra node flags of the operator (e.g. the chart's heap bounds); a directory here gets a CPU profile. */
const OPERATOR_NODE_ARGS = (process.env.BENCH_OPERATOR_NODE_ARGS ?? "").split(" ").filter(Boolean);
const OPERATOR_PROFILE_DIR = process.env.BENCH_OPERATOR_PROFILE;

const env = stackEnv();
const kc = new k8s.KubeConfig();
kc.loadFromFile(env.KUBECONFIG ?? "");
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
execFileSync(env.KUBECTL ?? "kubectl", ["apply", "-f", `${root}/crds/`], { stdio: "ignore" });
const ns = `bench-${Date.now().toString(36)}`;
await core.createNamespace({ body: { metadata: { name: ns } } });
// Keep-alive connections, as kubectl (one process, HTTP/2) or a GitOps controller would use.
const lean = new KubeClient(await loadKubeConnection(), { maxSockets: APPLY_CONCURRENCY });
const plurals = { Orchestration: "orchestrations", Worker: "workers" } as const;
/** Server-side apply of one object, as `kubectl apply --server-side` sends it. */
async function apply(obj: Orchestration | Worker): Promise<void> {
  const { namespace = "", name = "" } = obj.metadata;
  await lean.request({
    method: "PATCH",
    path: `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plurals[obj.kind]}/${name}`,
    query: { fieldManager: "kubectl" },
    contentType: CONTENT_TYPE.apply,
    body: obj,
  });
}

function orchestration(name: string, namespace = ns): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name, namespace },
    spec: {
      steps: [
        { name: "reserve", type: "com.example.reserve", compensation: "com.example.release" },
        { name: "charge", type: "com.example.charge", dependsOn: ["reserve"] },
        { name: "ship", type: "com.example.ship", dependsOn: ["charge"] },
      ],
      topics: { partitions: 1 },
      deletionPolicy: "Delete",
    },
  };
}
function worker(name: string, namespace = ns): Worker {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Worker",
    metadata: { name, namespace },
    spec: {
      orchestration: name,
      steps: ["reserve", "charge", "ship"],
      image: "example:dev",
      scaling: { minReplicas: 0 },
    },
  };
}

// Ready times, from a watch (no polling load on the API server). A watch the API server ends (it
// does, under load or after its timeout) is started again; its initial events replay every object.
const readyAt = new Map<string, number>();
let watch: { abort: () => void } | undefined;
let watching = true;
async function startWatch(): Promise<void> {
  watch = await new k8s.Watch(kc).watch(
    `/apis/${GROUP}/${VERSION}/namespaces/${ns}/orchestrations`,
    {},
    (_type, obj: Orchestration) => {
      const name = obj.metadata.name ?? "";
      if (
        !readyAt.has(name) &&
        obj.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
      )
        readyAt.set(name, performance.now());
    },
    () => {
      if (watching) setTimeout(() => void startWatch().catch(() => undefined), 100);
    },
  );
}
await startWatch();

// Baseline: the same 2 × N applies, same concurrency, into a namespace no operator watches (before the
// operator starts, so it competes with nothing of ours), then deleted.
const applyOnlyNs = `${ns}-apply`;
await core.createNamespace({ body: { metadata: { name: applyOnlyNs } } });
const applyOnlyStart = performance.now();
await pool(
  Array.from({ length: 2 * N }, (_, i) =>
    i % 2 === 0 ? orchestration(`many-${i / 2}`, applyOnlyNs) : worker(`many-${(i - 1) / 2}`, applyOnlyNs),
  ),
  APPLY_CONCURRENCY,
  apply,
);
const applyOnlyMs = performance.now() - applyOnlyStart;
for (const plural of Object.values(plurals)) {
  await lean.request({
    method: "DELETE",
    path: `/apis/${GROUP}/${VERSION}/namespaces/${applyOnlyNs}/${plural}`,
  });
}
await core.deleteNamespace({ name: applyOnlyNs }).catch(() => undefined);
console.error(`baseline: ${2 * N} applies alone in ${Math.round(applyOnlyMs)} ms`);

const freePort = await new Promise<number>((resolve, reject) => {
  const srv = createServer();
  srv.once("error", reject);
  srv.listen(0, "127.0.0.1", () => {
    const { port } = srv.address() as AddressInfo;
    srv.close(() => resolve(port));
  });
});
/** The operator's Kubernetes API requests so far, by "verb resource". */
async function kubeRequests(): Promise<Record<string, number>> {
  const text = await fetch(`http://127.0.0.1:${freePort}/metrics`)
    .then((r) => r.text())
    .catch(() => "");
  const out: Record<string, number> = {};
  for (const m of text.matchAll(
    /^eventloom_operator_kube_requests_total\{verb="([^"]+)",resource="([^"]+)"\} (\d+)/gm,
  ))
    out[`${m[1]} ${m[2]}`] = Number(m[3]);
  return out;
}
/** Reconciles and their summed duration so far, by kind, and by kind/step. */
async function reconcileStats(): Promise<Record<string, { count: number; seconds: number }>> {
  const text = await fetch(`http://127.0.0.1:${freePort}/metrics`)
    .then((r) => r.text())
    .catch(() => "");
  const out: Record<string, { count: number; seconds: number }> = {};
  for (const m of text.matchAll(
    /^eventloom_operator_reconcile(?:_phase)?_(?:duration_)?seconds_(sum|count)\{kind="([^"]+)"(?:,phase="([^"]+)")?\} ([\d.e+-]+)/gm,
  )) {
    const key = m[3] ? `${m[2]}/${m[3]}` : (m[2] ?? "");
    const entry = (out[key] ??= { count: 0, seconds: 0 });
    if (m[1] === "sum") entry.seconds = Math.round(Number(m[4]) * 10) / 10;
    else entry.count = Number(m[4]);
  }
  return out;
}
function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

mkdirSync(`${root}/bench/results`, { recursive: true });
const log = createWriteStream(`${root}/bench/results/operator-bench.log`);
const operatorArgs = [
  ...OPERATOR_NODE_ARGS,
  ...(OPERATOR_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${OPERATOR_PROFILE_DIR}`] : []),
  "--import",
  "tsx",
  `${root}/operator/main.ts`,
];
const operator = spawn(process.execPath, operatorArgs, {
  cwd: root,
  env: {
    ...process.env,
    HEALTH_PORT: String(freePort),
    HEALTH_HOST: "127.0.0.1",
    LOG_LEVEL: "warn",
    EVENTLOOM_LEASE_NAME: ns,
    EVENTLOOM_LEASE_NAMESPACE: ns,
    EVENTLOOM_WATCH_NAMESPACE: ns,
  },
  stdio: ["ignore", "pipe", "pipe"],
});
operator.stdout.pipe(log);
operator.stderr.pipe(log);
const operatorPid = operator.pid ?? 0;
// The operator exits when it loses its lease (as designed; its Deployment would restart it). The run
// records when, and goes on to clean up.
const benchStart = performance.now();
let operatorExitedAtS: number | undefined;
operator.on("exit", () => {
  operatorExitedAtS = Math.round((performance.now() - benchStart) / 1000);
  console.error(
    `the operator exited ${operatorExitedAtS} s into the run (see bench/results/operator-bench.log)`,
  );
});
/** CPU seconds (user + system) a process has used so far; NaN when it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}
/** The stack's processes (and the operator), whose CPU the N-at-once phase is charged with. */
function stackPids(): Record<string, number> {
  const find = (pattern: string) => {
    try {
      return Number(execFileSync("pgrep", ["-o", "-f", pattern], { encoding: "utf8" }).trim().split("\n")[0]);
    } catch {
      return NaN;
    }
  };
  return {
    "kube-apiserver": find("kube-apiserver --etcd-servers"),
    etcd: find("etcd --name stack"),
    kafka: find("java .*kafka"),
    operator: operatorPid,
  };
}
const rss = (pid: number): number => {
  try {
    return rssMiB(pid);
  } catch {
    return NaN;
  }
};

async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`benchmark: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Leadership: the first Orchestration turning Ready proves the operator reconciles.
await custom.createNamespacedCustomObject({
  group: GROUP,
  version: VERSION,
  namespace: ns,
  plural: "orchestrations",
  body: orchestration("warmup"),
});
await custom.createNamespacedCustomObject({
  group: GROUP,
  version: VERSION,
  namespace: ns,
  plural: "workers",
  body: worker("warmup"),
});
await waitUntil("the operator to reconcile", () => readyAt.has("warmup"), 60_000);
await new Promise((r) => setTimeout(r, 3000));
const rssIdle = rss(operatorPid);

// Baseline 1: bare API create round trip.
const apiRtt: number[] = [];
for (let i = 0; i < 50; i++) {
  const t = performance.now();
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: `rtt-${i}` }, data: { a: "b" } },
  });
  apiRtt.push(performance.now() - t);
}
// Baseline 2: bare topic creation through the same Kafka module.
const admin = new KafkaClient({ brokers: (env.KAFKA_BROKERS ?? "").split(","), clientId: "bench" }).admin();
await admin.connect();
const topicCreate: number[] = [];
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  await admin.createTopics([{ name: `${ns}-baseline-${i}`, partitions: 1, replicationFactor: 1 }]);
  topicCreate.push(performance.now() - t);
}
await admin.deleteTopics(Array.from({ length: 20 }, (_, i) => `${ns}-baseline-${i}`));

// Single applies, one after another.
const single: number[] = [];
for (let i = 0; i < SINGLE_TRIALS; i++) {
  const name = `single-${i}`;
  const t = performance.now();
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: "orchestrations",
    body: orchestration(name),
  });
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: "workers",
    body: worker(name),
  });
  // A miss is reported, not fatal: the run still cleans up after itself.
  await waitUntil(`${name} Ready`, () => readyAt.has(name), 30_000).catch((err: unknown) =>
    console.error(String(err)),
  );
  if (!readyAt.has(name)) continue;
  single.push((readyAt.get(name) ?? 0) - t);
}

// N at once.
let peakRss = rssIdle;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, rss(operatorPid) || 0);
}, 500);
const created = new Map<string, number>();
const pids = stackPids();
const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
const loadBefore = loadavg()[0];
const requestsBefore = await kubeRequests();
const reconcilesBefore = await reconcileStats();
const start = performance.now();
// Each Orchestration and its Worker one after the other in the list, applied 32 at a time.
await pool(
  Array.from({ length: 2 * N }, (_, i) =>
    i % 2 === 0 ? orchestration(`many-${i / 2}`) : worker(`many-${(i - 1) / 2}`),
  ),
  APPLY_CONCURRENCY,
  async (obj) => {
    if (obj.kind === "Orchestration") created.set(obj.metadata.name ?? "", performance.now());
    await apply(obj);
  },
);
const appliedAllMs = performance.now() - start;
const readyCounts: Array<[number, number]> = [];
const counter = setInterval(() => {
  const ready = [...created.keys()].filter((n) => readyAt.has(n)).length;
  readyCounts.push([Math.round((performance.now() - start) / 1000), ready]);
}, 10_000);
await waitUntil(
  `all ${N} Ready`,
  () => [...created.keys()].every((n) => readyAt.has(n)),
  Number(process.env.BENCH_MANY_TIMEOUT_MS ?? 600_000),
  200,
).catch((err: unknown) => console.error(String(err)));
clearInterval(counter);
const cpuMany = Object.fromEntries(
  Object.entries(pids).map(([k, pid]) => [
    k,
    Math.round((cpuSeconds(pid) - (cpuBefore[k] ?? NaN)) * 10) / 10,
  ]),
);
const loadAfter = loadavg()[0];
const readyNames = [...created.keys()].filter((n) => readyAt.has(n));
const allReadyMs =
  readyNames.length === created.size
    ? Math.max(...readyNames.map((n) => (readyAt.get(n) ?? 0) - start))
    : NaN;
const many = readyNames.map((n) => (readyAt.get(n) ?? 0) - (created.get(n) ?? 0));
await new Promise((r) => setTimeout(r, 3000));
clearInterval(sampler);
const rssLoaded = rss(operatorPid);
peakRss = Math.max(peakRss, rssLoaded || 0);
const requestsMany = diff(await kubeRequests(), requestsBefore);
const reconcilesAfter = await reconcileStats();
const reconcilesMany = Object.fromEntries(
  Object.entries(reconcilesAfter).map(([kind, r]) => [
    kind,
    {
      count: r.count - (reconcilesBefore[kind]?.count ?? 0),
      seconds: Math.round((r.seconds - (reconcilesBefore[kind]?.seconds ?? 0)) * 10) / 10,
    },
  ]),
);
const writeVerbs = new Set(["create", "update", "patch", "apply", "delete"]);
const writesMany = Object.entries(requestsMany)
  .filter(([k]) => writeVerbs.has(k.split(" ")[0] ?? ""))
  .reduce((a, [, v]) => a + v, 0);

const round = (x: number) => Math.round(x);
const result = {
  machine: machine(),
  command: "npm run bench:operator",
  orchestrations: N,
  topicsPerOrchestration: 8,
  operatorNodeArgs: OPERATOR_NODE_ARGS,
  applyConcurrency: APPLY_CONCURRENCY,
  baseline: {
    applyAloneMs: round(applyOnlyMs),
    apiCreateMs: { p50: round(percentile(apiRtt, 50)), p95: round(percentile(apiRtt, 95)) },
    topicCreateMs: { p50: round(percentile(topicCreate, 50)), p95: round(percentile(topicCreate, 95)) },
  },
  singleApplyToReadyMs: {
    p50: round(percentile(single, 50)),
    p95: round(percentile(single, 95)),
    trials: single.length,
  },
  manyApplyToReadyMs: {
    p50: round(percentile(many, 50)),
    p95: round(percentile(many, 95)),
    appliedAllMs: round(appliedAllMs),
    allReadyMs: round(allReadyMs),
    ready: readyNames.length,
    readyBy10s: readyCounts,
    /** CPU seconds each process used from the first apply until all were Ready (or the bound). */
    cpuSeconds: cpuMany,
    loadAverage1m: { before: loadBefore, after: loadAfter },
    /** The operator's API requests while the N were applied and turned Ready, by "verb resource". */
    kubeRequests: requestsMany,
    kubeWritesPerPair: Math.round((writesMany / N) * 10) / 10,
    reconciles: reconcilesMany,
  },
  operatorRssMiB: { idle: rssIdle, loaded: rssLoaded, peak: peakRss },
  ...(operatorExitedAtS !== undefined ? { operatorExitedAtS } : {}),
};
console.log(JSON.stringify(result, null, 2));
console.log(`results: ${writeResult("operator", result)}`);

// Clean up: deletionPolicy Delete makes the operator remove the topics.
const teardownStart = performance.now();
await pool(
  [...created.keys(), ...Array.from({ length: SINGLE_TRIALS }, (_, i) => `single-${i}`), "warmup"],
  32,
  (name) =>
    custom
      .deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: "orchestrations",
        name,
      })
      .catch(() => undefined),
);
const topicsLeft = async () =>
  (await admin.listTopics().catch(() => [`eventloom.${ns}.`])).filter((t) =>
    t.startsWith(`eventloom.${ns}.`),
  );
if (operatorExitedAtS === undefined) {
  await waitUntil(
    "the operator to delete the topics",
    async () => (await topicsLeft()).length === 0,
    600_000,
    500,
  ).catch((err: unknown) => console.error(String(err)));
}
// Without an operator (it exited), or what it left: deleted here, until Kafka lists none for a while
// (topics it had created may be listed only later).
for (let quiet = 0; quiet < 3;) {
  const left = await topicsLeft();
  if (left.length === 0) quiet++;
  else quiet = 0;
  for (let i = 0; i < left.length; i += 500) {
    await admin
      .deleteTopics(left.slice(i, i + 500))
      .catch((err: unknown) => console.error(String(err).slice(0, 200)));
  }
  await new Promise((r) => setTimeout(r, 2000));
}
console.log(
  `teardown: topics of ${N + SINGLE_TRIALS + 1} Orchestrations deleted in ${round(performance.now() - teardownStart)} ms`,
);
if (KAFKA_BASELINE) {
  // Baseline 3: Kafka alone creates as many topics as the N Orchestrations have (8 each), in requests of
  // 1,000 as the operator batches them, timed until its metadata lists them all (what Ready waits for).
  const bulkNames = Array.from({ length: N * 8 }, (_, i) => `${ns}-bulk-${i}`);
  const bulkStart = performance.now();
  for (let i = 0; i < bulkNames.length; i += 1000) {
    await admin.createTopics(
      bulkNames.slice(i, i + 1000).map((name) => ({ name, partitions: 1, replicationFactor: 1 })),
    );
  }
  const bulkAcceptedMs = performance.now() - bulkStart;
  await waitUntil(
    "Kafka to list the baseline's topics",
    async () => {
      const listed = new Set(await admin.listTopics().catch(() => [] as string[]));
      return bulkNames.every((n) => listed.has(n));
    },
    600_000,
    250,
  ).catch((err: unknown) => console.error(String(err)));
  const bulkListedMs = performance.now() - bulkStart;
  console.log(
    JSON.stringify({
      baselineKafkaBulkCreate: {
        topics: bulkNames.length,
        acceptedMs: round(bulkAcceptedMs),
        allListedMs: round(bulkListedMs),
      },
    }),
  );
  writeResult("operator-kafka-baseline", {
    topics: bulkNames.length,
    acceptedMs: round(bulkAcceptedMs),
    allListedMs: round(bulkListedMs),
  });
  for (let i = 0; i < bulkNames.length; i += 1000) {
    await admin
      .deleteTopics(bulkNames.slice(i, i + 1000))
      .catch((err: unknown) => console.error(String(err).slice(0, 200)));
  }
  await waitUntil(
    "Kafka to drop the baseline's topics",
    async () => (await admin.listTopics().catch(() => [ns])).every((t) => !t.startsWith(`${ns}-bulk-`)),
    300_000,
    500,
  ).catch((err: unknown) => console.error(String(err)));
}
watching = false;
watch?.abort();
lean.close();
await admin.close();
operator.kill("SIGTERM");
await core.deleteNamespace({ name: ns }).catch(() => undefined);
process.exit(0);
