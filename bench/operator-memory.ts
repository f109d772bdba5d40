/**
 * Operator memory benchmark: RSS of the operator process idle (connected,
 * watching, leading, no objects) and in steady state with N Orchestrations
 * and N Workers (default 1,000 each), for one or more operator checkouts in
 * the same run, so "before" and "after" see the same machine and the same
 * objects.
 *
 *   tsx bench/operator-memory.ts
 *   OPERATOR_VARIANTS="before=/tmp/eventloom-base,after=." tsx bench/operator-memory.ts
 *   OPERATOR_VARIANTS="plain=.,capped=.:--max-old-space-size=128" BENCH_MEMORY_OBJECTS=0 \
 *     BENCH_MEMORY_NAMESPACE=<a namespace already holding the objects> tsx bench/operator-memory.ts
 *
 * Each variant runs as the image runs it (`node dist/operator/main.js`, the
 * bundle `npm run build` makes, or `node --experimental-transform-types
 * operator/main.ts` from a checkout; OPERATOR_NODE_FLAGS adds flags, e.g. V8 heap sizes),
 * scoped to the benchmark's namespace. Idle: a fresh namespace, RSS sampled
 * once a second for 10 s after 10 s of leadership; the median is reported.
 * Loaded: the N + N objects are created once (the first variant reconciles
 * them), then each variant is restarted on them in turn and measured the same
 * way once its queues are empty (every object reconciled, caches full).
 * With BENCH_MEMORY_NAMESPACE, "loaded" is measured on that namespace's
 * objects, which are neither created nor deleted.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import * as k8s from "@kubernetes/client-node";
import type { Orchestration, Worker } from "../operator/crds/types.ts";
import { GROUP, VERSION } from "../operator/crds/types.ts";
import { KafkaClient } from "../services/kafka/client.ts";
import { machine, percentile, pool, root, rssMiB, stackEnv, writeResult } from "./support.ts";

const N = Number(process.env.BENCH_MEMORY_OBJECTS ?? 1000);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 2);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 10_000);
const READY_TIMEOUT_MS = Number(process.env.BENCH_READY_TIMEOUT_MS ?? 900_000);
const NODE_FLAGS = (process.env.OPERATOR_NODE_FLAGS ?? "").split(" ").filter(Boolean);
/**
 * `name=path[:node flags and NAME=value environment]`, comma-separated, e.g. `lean=.,capped=.:--max-old-space-size=128`. A path is a
 * checkout (its `operator/main.ts` runs under Node's TypeScript transform) or a built `.js` entry (run as
 * plain JavaScript from the repository root), e.g. `built=dist/operator/main.js` after `npm run build`.
 */
const variants = (process.env.OPERATOR_VARIANTS ?? "current=.").split(",").map((v) => {
  const eq = v.indexOf("=");
  const name = eq < 0 ? v : v.slice(0, eq);
  const rest = eq < 0 ? "." : v.slice(eq + 1);
  const colon = rest.indexOf(":");
  const dir = colon < 0 ? rest : rest.slice(0, colon);
  const flags = colon < 0 ? "" : rest.slice(colon + 1);
  return { name, dir: resolve(root, dir || "."), flags: flags.split(" ").filter(Boolean) };
});
/** Measure "loaded" on this namespace's existing objects (created earlier, left in place). */
const EXISTING_NS = process.env.BENCH_MEMORY_NAMESPACE;

const env = stackEnv();
const kc = new k8s.KubeConfig();
kc.loadFromFile(env.KUBECONFIG ?? "");
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
execFileSync(env.KUBECTL ?? "kubectl", ["apply", "-f", `${root}/crds/`], { stdio: "ignore" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).split(" ").slice(0, 3).join(" ");

async function waitUntil(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) {
      console.error(`benchmark: timed out waiting for ${what}`);
      return false;
    }
    await sleep(250);
  }
  return true;
}

interface Running {
  proc: ChildProcess;
  metrics: () => Promise<string>;
  stop: () => Promise<void>;
}

function startOperator(dir: string, ns: string, variantFlags: string[] = []): Running {
  const built = dir.endsWith(".js");
  // `NAME=value` among a variant's flags sets the operator's environment (e.g. MALLOC_ARENA_MAX=2).
  const envOf = variantFlags.filter((f) => /^[A-Z_][A-Z0-9_]*=/.test(f));
  const flags = variantFlags.filter((f) => !envOf.includes(f));
  const proc = spawn(
    process.execPath,
    [
      ...(built ? [] : ["--experimental-transform-types", "--disable-warning=ExperimentalWarning"]),
      ...NODE_FLAGS,
      ...flags,
      built ? dir : "operator/main.ts",
    ],
    {
      cwd: built ? root : dir,
      env: {
        ...process.env,
        HEALTH_PORT: "0",
        HEALTH_HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        EVENTLOOM_LEASE_NAME: ns,
        EVENTLOOM_LEASE_NAMESPACE: ns,
        EVENTLOOM_WATCH_NAMESPACE: ns,
        ...Object.fromEntries(envOf.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const metrics = async () => {
    const port = /"health":\{"port":(\d+)\}/.exec(out)?.[1];
    if (!port) throw new Error("no health port yet");
    return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  };
  return {
    proc,
    metrics,
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await exited;
      if (proc.exitCode !== 0 && proc.exitCode !== null) console.error(out.slice(-3000));
    },
  };
}

/** Starts a variant on `ns`, waits for leadership and empty queues, samples RSS; returns the median. */
async function measure(
  dir: string,
  ns: string,
  flags: string[],
): Promise<{
  medianMiB: number;
  maxMiB: number;
  load: string;
  heapUsedMiB?: number;
  heapTotalMiB?: number;
  externalMiB?: number;
}> {
  const op = startOperator(dir, ns, flags);
  try {
    const leading = await waitUntil(
      "leadership",
      async () => /^eventloom_operator_leader 1$/m.test(await op.metrics()),
      60_000,
    );
    if (!leading) throw new Error("operator did not lead");
    await waitUntil(
      "empty queues",
      async () => {
        const m = await op.metrics();
        return [...m.matchAll(/^eventloom_operator_queue_depth\{[^}]*\} (\d+)$/gm)].every(
          (x) => x[1] === "0",
        );
      },
      READY_TIMEOUT_MS,
    );
    await sleep(SETTLE_MS);
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      samples.push(rssMiB(op.proc.pid ?? 0));
      await sleep(1000);
    }
    // Where the memory is, as the operator's own metrics see it at the end of the samples.
    const m = await op.metrics().catch(() => "");
    const mib = (name: string) => {
      const v = new RegExp(`^eventloom_operator_${name} ([\\d.e+]+)`, "m").exec(m)?.[1];
      return v === undefined ? NaN : Math.round((Number(v) / 2 ** 20) * 10) / 10;
    };
    return {
      medianMiB: percentile(samples, 50),
      maxMiB: Math.max(...samples),
      load: load(),
      heapUsedMiB: mib("nodejs_heap_size_used_bytes"),
      heapTotalMiB: mib("nodejs_heap_size_total_bytes"),
      externalMiB: mib("nodejs_external_memory_bytes"),
    };
  } finally {
    await op.stop();
  }
}

async function namespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${Date.now().toString(36)}`;
  await core.createNamespace({ body: { metadata: { name: ns } } });
  return ns;
}

function orchestration(ns: string, name: string): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name, namespace: ns },
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
function worker(ns: string, name: string): Worker {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Worker",
    metadata: { name, namespace: ns },
    spec: {
      orchestration: name,
      steps: ["reserve", "charge", "ship"],
      image: "example:dev",
      scaling: { minReplicas: 0 },
    },
  };
}

async function readyCount(ns: string): Promise<number> {
  const list = (await custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: "orchestrations",
  })) as { items: Orchestration[] };
  return list.items.filter((o) =>
    o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  ).length;
}

const result: Record<string, unknown> = {
  machine: machine(),
  command: "tsx bench/operator-memory.ts",
  variants,
  nodeFlags: NODE_FLAGS,
  objects: N,
  loadBefore: load(),
};

// Idle: alternate the variants, REPEATS times, each in a fresh empty namespace.
const idle: Record<string, Array<{ medianMiB: number; maxMiB: number; load: string }>> = {};
for (let r = 0; r < REPEATS; r++) {
  for (const v of variants) {
    const ns = await namespace("memidle");
    (idle[v.name] ??= []).push(await measure(v.dir, ns, v.flags));
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
  }
}
result.idleRssMiB = Object.fromEntries(
  Object.entries(idle).map(([k, runs]) => [
    k,
    {
      median: percentile(
        runs.map((x) => x.medianMiB),
        50,
      ),
      runs,
    },
  ]),
);
console.log(JSON.stringify(result.idleRssMiB, null, 2));

/** Every variant's RSS with the objects of `ns` loaded, REPEATS times, into `result`; prints the medians. */
async function measureLoaded(ns: string): Promise<void> {
  const loaded: Record<string, Array<{ medianMiB: number; maxMiB: number; load: string }>> = {};
  for (let r = 0; r < REPEATS; r++) {
    for (const v of variants) (loaded[v.name] ??= []).push(await measure(v.dir, ns, v.flags));
  }
  result.loadedRssMiB = Object.fromEntries(
    Object.entries(loaded).map(([k, runs]) => [
      k,
      {
        median: percentile(
          runs.map((x) => x.medianMiB),
          50,
        ),
        runs,
      },
    ]),
  );
  result.readyAtEnd = await readyCount(ns);
  console.log(JSON.stringify(result.loadedRssMiB, null, 2));
}

if (EXISTING_NS) {
  result.namespace = EXISTING_NS;
  await measureLoaded(EXISTING_NS);
} else if (N > 0) {
  const ns = await namespace("memload");
  const first = variants[0];
  if (!first) throw new Error("no variant");
  // Create everything with the first variant running, wait for it to reconcile.
  const creator = startOperator(first.dir, ns, first.flags);
  const createStart = performance.now();
  await pool(
    Array.from({ length: N }, (_, i) => `m-${i}`),
    32,
    async (name) => {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: "orchestrations",
        body: orchestration(ns, name),
      });
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: "workers",
        body: worker(ns, name),
      });
    },
  );
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(creator.proc.pid ?? 0))), 1000);
  await waitUntil(`${N} Ready`, async () => (await readyCount(ns)) >= N, READY_TIMEOUT_MS);
  clearInterval(sampler);
  result.creation = {
    variant: first.name,
    readyAfterMs: Math.round(performance.now() - createStart),
    ready: await readyCount(ns),
    peakRssMiB: peak,
  };
  await creator.stop();
  console.log(JSON.stringify(result.creation));

  await measureLoaded(ns);

  // Teardown with the last variant running: deletionPolicy Delete makes it delete the topics.
  const last = variants[variants.length - 1] ?? first;
  const cleaner = startOperator(last.dir, ns, last.flags);
  const names = Array.from({ length: N }, (_, i) => `m-${i}`);
  await pool(names, 32, (name) =>
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
  const admin = new KafkaClient({ brokers: (env.KAFKA_BROKERS ?? "").split(","), clientId: "bench" }).admin();
  await admin.connect();
  await waitUntil(
    "the operator to delete the topics",
    async () => (await admin.listTopics()).every((t) => !t.startsWith(`eventloom.${ns}.`)),
    900_000,
  );
  await admin.close();
  await cleaner.stop();
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
}

result.loadAfter = load();
console.log(`results: ${writeResult("operator-memory", result)}`);
process.exit(0);
