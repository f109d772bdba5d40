/**
 * Autoscaler benchmark on the real stack:
 *  1. reaction time from lag crossing a threshold to the Deployment's replicas
 *     patched, over 20 trials (`scale reaction p95 N s`);
 *  2. unnecessary replica changes during steady load just under a threshold
 *     (BENCH_STEADY_MINUTES, default 10);
 *  3. the cost of one poll per Worker (ms and Kafka requests) with 100 Workers,
 *     beside a bare Kafka offset fetch measured in the same run.
 *
 *   npm run bench:autoscaler
 */
import { spawn, execFileSync } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";
import type { Orchestration, Worker } from "../operator/crds/types.ts";
import { GROUP, VERSION } from "../operator/crds/types.ts";
import { KafkaClient } from "../services/kafka/client.ts";
import { machine, percentile, root, stackEnv, writeResult } from "./support.ts";

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20);
const STEADY_MINUTES = Number(process.env.BENCH_STEADY_MINUTES ?? 10);
const COST_WORKERS = Number(process.env.BENCH_COST_WORKERS ?? 100);

const env = stackEnv();
const kc = new k8s.KubeConfig();
kc.loadFromFile(env.KUBECONFIG ?? "");
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
execFileSync(env.KUBECTL ?? "kubectl", ["apply", "-f", `${root}/crds/`], { stdio: "ignore" });
const ns = `bench-scale-${Date.now().toString(36)}`;
await core.createNamespace({ body: { metadata: { name: ns } } });
const kafka = new KafkaClient({
  brokers: (env.KAFKA_BROKERS ?? "").split(","),
  clientId: "bench-autoscaler",
});
const admin = kafka.admin();
await admin.connect();
// Idempotent: a retried send under load must not write a record twice (that is real lag).
const producer = kafka.producer({ idempotent: true });
await producer.connect();

mkdirSync(`${root}/bench/results`, { recursive: true });
const log = createWriteStream(`${root}/bench/results/autoscaler-bench.log`);
const operator = spawn(process.execPath, ["--import", "tsx", `${root}/operator/main.ts`], {
  cwd: root,
  env: {
    ...process.env,
    HEALTH_PORT: "0",
    HEALTH_HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    EVENTLOOM_LEASE_NAME: ns,
    EVENTLOOM_LEASE_NAMESPACE: ns,
    EVENTLOOM_WATCH_NAMESPACE: ns,
  },
  stdio: ["ignore", "pipe", "pipe"],
});
let operatorOut = "";
operator.stdout.on("data", (d: Buffer) => {
  operatorOut += d.toString();
  log.write(d);
});
operator.stderr.pipe(log);

async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`benchmark: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function orchestration(name: string, steps: string[], partitions: number): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name, namespace: ns },
    spec: {
      steps: steps.map((s) => ({ name: s, type: `com.example.${s}` })),
      topics: { partitions },
      deletionPolicy: "Delete",
      signing: { policy: "none" },
    },
  };
}
function worker(name: string, orch: string, step: string, scaling: Worker["spec"]["scaling"]): Worker {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Worker",
    metadata: { name, namespace: ns },
    spec: { orchestration: orch, steps: [step], image: "example:dev", scaling },
  };
}
const create = (plural: string, body: object) =>
  custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, body });

// Replica changes as the API server reports them, by polling (a watch can drop silently under load).
const apps = kc.makeApiClient(k8s.AppsV1Api);
const changes: Array<{ deployment: string; replicas: number; atMs: number }> = [];
const lastReplicas = new Map<string, number>();
let polling = true;
const poller = (async () => {
  while (polling) {
    try {
      const list = await apps.listNamespacedDeployment({ namespace: ns });
      const now = performance.now();
      for (const d of list.items) {
        const name = d.metadata?.name ?? "";
        const r = d.spec?.replicas ?? 0;
        if (lastReplicas.get(name) !== r) {
          lastReplicas.set(name, r);
          changes.push({ deployment: name, replicas: r, atMs: now });
        }
      }
    } catch {
      // transient: poll again
    }
    await new Promise((r) => setTimeout(r, 50));
  }
})();

// 1. Reaction time.
await create("orchestrations", orchestration("react", ["work"], 24));
await create(
  "workers",
  worker("react", "react", "work", {
    minReplicas: 0,
    maxReplicas: 24,
    lagPerReplica: 10,
    activationLag: 1,
    pollInterval: "2s",
    scaleDownStabilization: "600s",
    cooldown: "600s",
  }),
);
const reactTopic = `eventloom.${ns}.react.work`;
await waitUntil("the react Deployment at 0", () => lastReplicas.get("react-worker") === 0, 60_000);
await waitUntil(
  "the react topic",
  async () => (await admin.describeTopics([reactTopic])).length === 1,
  60_000,
);
const reactions: number[] = [];
for (let i = 0; i < TRIALS; i++) {
  // A random phase against the poll timer, as real bursts have.
  await new Promise((r) => setTimeout(r, Math.random() * 2000));
  await producer.send(
    reactTopic,
    Array.from({ length: 10 }, (_, j) => ({ value: `t${i}-${j}`, partition: (i * 10 + j) % 24 })),
  );
  const t0 = performance.now();
  await waitUntil(`replicas ${i + 1}`, () => lastReplicas.get("react-worker") === i + 1, 30_000);
  const change = changes.findLast((c) => c.deployment === "react-worker" && c.replicas === i + 1);
  reactions.push(((change?.atMs ?? performance.now()) - t0) / 1000);
}

// 3. Poll cost with many Workers (1 partition each).
const perOrch = 50;
const orchCount = Math.ceil(COST_WORKERS / perOrch);
for (let o = 0; o < orchCount; o++) {
  const steps = Array.from({ length: Math.min(perOrch, COST_WORKERS - o * perOrch) }, (_, i) => `s${i}`);
  await create("orchestrations", orchestration(`cost${o}`, steps, 1));
  for (const s of steps)
    await create(
      "workers",
      worker(`cost${o}-${s}`, `cost${o}`, s, { minReplicas: 0, maxReplicas: 1, pollInterval: "2s" }),
    );
}
const metrics = async () => {
  const port = Number(/"health":\{"port":(\d+)\}/.exec(operatorOut)?.[1]);
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
};
const metric = (text: string, name: string) =>
  Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? NaN);
await waitUntil(
  "all cost Workers polled",
  async () => metric(await metrics(), "eventloom_autoscaler_poll_duration_seconds_count") > COST_WORKERS * 3,
  180_000,
);
const m1 = await metrics();
await new Promise((r) => setTimeout(r, 20_000));
const m2 = await metrics();
const polls =
  metric(m2, "eventloom_autoscaler_poll_duration_seconds_count") -
  metric(m1, "eventloom_autoscaler_poll_duration_seconds_count");
const pollSeconds =
  metric(m2, "eventloom_autoscaler_poll_duration_seconds_sum") -
  metric(m1, "eventloom_autoscaler_poll_duration_seconds_sum");
const pollRequests =
  metric(m2, "eventloom_autoscaler_kafka_requests_total") -
  metric(m1, "eventloom_autoscaler_kafka_requests_total");
// Baseline: one bare committed-offsets fetch.
const bare: number[] = [];
for (let i = 0; i < 50; i++) {
  const t = performance.now();
  await admin.committedOffsetsOf(`eventloom.${ns}.react`, [reactTopic]);
  bare.push(performance.now() - t);
}

// 2. Steady load just under a threshold: lag held in [150, 199] with lagPerReplica 100 (threshold 200).
await create("orchestrations", orchestration("steady", ["work"], 4));
await create(
  "workers",
  worker("steady", "steady", "work", {
    minReplicas: 1,
    maxReplicas: 4,
    lagPerReplica: 100,
    pollInterval: "2s",
    scaleDownStabilization: "60s",
  }),
);
const steadyTopic = `eventloom.${ns}.steady.work`;
const steadyGroup = `eventloom.${ns}.steady`;
await waitUntil(
  "the steady topic",
  async () => (await admin.describeTopics([steadyTopic])).length === 1,
  60_000,
);
let end = 0n;
// Commit first, then produce: the lag never overshoots the target between the two writes
// (producing first would show lag + batch for a moment: a real crossing of the threshold).
const setLag = async (lag: number) => {
  const batch = 20;
  const committed = end + BigInt(batch) - BigInt(lag);
  await admin.setCommittedOffsets(steadyGroup, steadyTopic, [
    { partition: 0, offset: committed < 0n ? 0n : committed },
  ]);
  await producer.send(
    steadyTopic,
    Array.from({ length: batch }, (_, j) => ({ value: `s${j}`, partition: 0 })),
  );
  end += BigInt(batch);
};
await setLag(175);
const settleUntil = performance.now() + 30_000;
while (performance.now() < settleUntil) {
  await setLag(150 + Math.floor(Math.random() * 50));
  await new Promise((r) => setTimeout(r, 1000));
}
const steadyStart = performance.now();
const steadyEnd = steadyStart + STEADY_MINUTES * 60_000;
const lags: number[] = [];
while (performance.now() < steadyEnd) {
  const lag = 150 + Math.floor(Math.random() * 50);
  lags.push(lag);
  await setLag(lag);
  await new Promise((r) => setTimeout(r, 1000));
}
const steadyChanges = changes.filter((c) => c.deployment === "steady-worker" && c.atMs >= steadyStart).length;
const steadyReplicas = lastReplicas.get("steady-worker");

const round2 = (x: number) => Math.round(x * 100) / 100;
const result = {
  machine: machine(),
  command: "npm run bench:autoscaler",
  reaction: {
    trials: reactions.length,
    pollIntervalS: 2,
    p50S: round2(percentile(reactions, 50)),
    p95S: round2(percentile(reactions, 95)),
    maxS: round2(Math.max(...reactions)),
    line: `scale reaction p95 ${round2(percentile(reactions, 95))} s`,
  },
  steady: {
    minutes: STEADY_MINUTES,
    lagRange: [Math.min(...lags), Math.max(...lags)],
    lagPerReplica: 100,
    replicas: steadyReplicas,
    unnecessaryChanges: steadyChanges,
    perTenMinutes: round2((steadyChanges / STEADY_MINUTES) * 10),
  },
  pollCost: {
    workers: COST_WORKERS,
    pollsMeasured: polls,
    meanPollMs: round2((pollSeconds / polls) * 1000),
    kafkaRequestsPerPoll: round2(pollRequests / polls),
    baselineBareOffsetFetchMs: { p50: round2(percentile(bare, 50)), p95: round2(percentile(bare, 95)) },
  },
};
console.log(JSON.stringify(result, null, 2));
console.log(`results: ${writeResult("autoscaler", result)}`);
polling = false;
await poller;
operator.kill("SIGTERM");
await producer.close();
await admin.close();
process.exit(0);
