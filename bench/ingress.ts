/**
 * Ingress benchmark (issue "Event plane benchmarks", part a): the real gateway (`services/gateway/main.ts`,
 * a child process, production defaults: token auth, LOG_LEVEL=info, tracing off) in front of the real Kafka
 * broker and the real kube-apiserver. Binary-mode CloudEvents with a unique ce-id each go to
 * `POST /namespaces/:ns/orchestrations/orders/events`; a 202 means Kafka acknowledged with acks=all and the
 * event was signed with the Orchestration's key (policy `required`).
 *
 *   tsx bench/ingress.ts          (BENCH_REPEATS=3, BENCH_STEP_SECONDS=10, BENCH_RATES=100,250,500,1000,...)
 *
 * Stands in for the operator: applies the CRDs, creates a namespace, the Orchestration, its signing-key
 * Secret (signingKeySecretFor + generateSigningKey), its trust ConfigMap (trustConfigMapFor) and its
 * results topic. Tokens come from a file, as in production; the gateway's rate limit
 * (EVENTLOOM_GATEWAY_RATE_LIMIT, default 100 req/s per token) is raised so that it never answers 429.
 *
 * Load generators (both in this process, with the gateway and the broker in their own processes):
 * - "paced": open loop, request i is sent at t0 + i/rate whatever happened to earlier ones, over up to 512
 *   keep-alive connections; latency runs from the scheduled send time (no coordinated omission). This is
 *   what "a fixed rate" means, and the result lines use it.
 * - "autocannon" with `overallRate`, as the issue asked, for comparison. autocannon enforces the rate per
 *   connection and per second: each connection sends its quota back to back at the start of every second
 *   and then waits, so the server sees a burst of `connections` concurrent requests each second rather
 *   than a steady stream. Its latencies are those of the burst.
 * Baselines in the same run: a bare fastify route answering 202 (no Kafka, no logging; `--serve-bare`
 * runs it as a child like the gateway) under the same generators, and raw kafkajs `send` of one record
 * with acks=all (the gateway's write) paced at the same rate.
 *
 * Phases (BENCH_PHASES, all by default), per repetition: `at1000` (1,000 and 500 req/s, both generators,
 * baselines), `idle` (CPU of the idle gateways), `coalesce` (gateway-like records sent one per `send` vs
 * coalesced per event-loop turn), `attribution` (300 req/s with and without signing and per-request log
 * lines; a second gateway runs with LOG_LEVEL=warn and an Orchestration `orders-unsigned` has policy `none`),
 * `steps` (the rate steps for the highest rate with p99 < 10 ms, gateway and bare route).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { createRequire } from "node:module";
import { Kafka, logLevel } from "kafkajs";
import { signingKeySecretFor, trustConfigMapFor } from "../operator/builders/keys.ts";
import type { Orchestration } from "../operator/crds/types.ts";
import { GROUP, ORCHESTRATION_PLURAL, VERSION } from "../operator/crds/types.ts";
import { generateSigningKey } from "../services/events/keys.ts";
import { resultsTopic } from "../services/events/topics.ts";
import { KafkaClient } from "../services/kafka/client.ts";
import {
  awaitQuiet,
  benchData,
  benchEvent,
  benchKeys,
  loadAverage,
  median,
  runTraceContext,
} from "./crypto.ts";
import { encodeRecord } from "../services/events/binding.ts";
import { injectTraceContext } from "../services/tracing/index.ts";
import { machine, percentile, root, rssMiB, stackEnv, writeResult } from "./support.ts";

// autocannon ships no type declarations; this is the part of its API used here.
interface AutocannonInstance extends PromiseLike<{
  errors: number;
  timeouts: number;
  requests: { sent: number };
}> {
  on(
    event: "response",
    listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void,
  ): void;
}
const autocannon = createRequire(import.meta.url)("autocannon") as (
  opts: Record<string, unknown>,
) => AutocannonInstance;

// kafkajs 2.2.4's idle 1 ms timer loop is fixed in services/kafka/client.ts (every process that loads the
// Kafka module, this one included, runs with the fix); the BENCH_KAFKAJS_IDLE_FIX knob measured it before.

const EVENT_PATH = (ns: string, name: string) => `/namespaces/${ns}/orchestrations/${name}/events`;

// ---------------------------------------------------------------------------------------------------------

interface RunStats {
  generator: "paced" | "autocannon" | "kafkajs";
  target: string;
  rate: number;
  seconds: number;
  sent: number;
  ok: number;
  errors: number;
  /** Responses per second actually achieved. */
  achieved: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** CPU µs per request of the server process (from /proc), when there is one. */
  serverCpuUsPerRequest?: number;
  /** CPU µs per request of this process (the load generator, or the raw kafkajs producer). */
  clientCpuUsPerRequest?: number;
  statuses: Record<string, number>;
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function summarize(
  generator: RunStats["generator"],
  target: string,
  rate: number,
  seconds: number,
  latencies: number[],
  sent: number,
  errors: number,
  elapsedMs: number,
  statuses: Record<string, number>,
): RunStats {
  return {
    generator,
    target,
    rate,
    seconds,
    sent,
    ok: latencies.length,
    errors,
    achieved: round((latencies.length * 1000) / elapsedMs, 0),
    p50: round(percentile(latencies, 50)),
    p95: round(percentile(latencies, 95)),
    p99: round(percentile(latencies, 99)),
    max: round(Math.max(0, ...latencies)),
    statuses,
  };
}

/** utime + stime of a process, in µs (from /proc/<pid>/stat; clock ticks are 100 Hz here). */
function processCpuMicros(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return NaN;
  }
}

interface Target {
  name: string;
  port: number;
  path: string;
  pid: number | undefined;
  headers: Record<string, string>;
  body: Buffer;
}

let idCounter = 0;
const runTag = Date.now().toString(36);
const nextId = () => `bench-${runTag}-${++idCounter}`;

/** Open-loop load at a fixed rate; latency from each request's scheduled time. */
async function paced(target: Target, rate: number, seconds: number): Promise<RunStats> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let sent = 0;
  let done = 0;
  const cpu0 = processCpuMicros(target.pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now() + 20;
  let lastEnd = t0;
  await new Promise<void>((resolve) => {
    const finishOne = () => {
      if (++done === total) resolve();
    };
    const fire = (scheduled: number) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port: target.port,
          path: target.path,
          method: "POST",
          agent,
          headers: { ...target.headers, "ce-id": nextId(), "content-length": String(target.body.length) },
          timeout: 15_000,
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            const end = performance.now();
            lastEnd = Math.max(lastEnd, end);
            const code = String(res.statusCode);
            statuses[code] = (statuses[code] ?? 0) + 1;
            if (res.statusCode === 202) latencies.push(end - scheduled);
            else errors++;
            finishOne();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => {
        errors++;
        statuses.error = (statuses.error ?? 0) + 1;
        finishOne();
      });
      req.end(target.body);
    };
    // A 1 ms tick sends every request whose time has come (bounded: `total` requests, then stop).
    const timer = setInterval(() => {
      const now = performance.now();
      while (sent < total && t0 + sent * interval <= now) {
        fire(t0 + sent * interval);
        sent++;
      }
      if (sent >= total) clearInterval(timer);
    }, 1);
  });
  agent.destroy();
  const elapsed = lastEnd - t0;
  const stats = summarize("paced", target.name, rate, seconds, latencies, sent, errors, elapsed, statuses);
  const client = process.cpuUsage(client0);
  stats.clientCpuUsPerRequest = round((client.user + client.system) / sent, 0);
  const cpu = processCpuMicros(target.pid) - cpu0;
  if (Number.isFinite(cpu)) stats.serverCpuUsPerRequest = round(cpu / sent, 0);
  return stats;
}

/** autocannon with overallRate (bursty per second, see the header). */
async function cannon(target: Target, rate: number, seconds: number, connections: number): Promise<RunStats> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const cpu0 = processCpuMicros(target.pid);
  const started = performance.now();
  const instance = autocannon({
    url: `http://127.0.0.1:${target.port}`,
    connections,
    overallRate: rate,
    amount: Math.round(rate * seconds),
    timeout: 15,
    ignoreCoordinatedOmission: true,
    requests: [
      {
        method: "POST",
        path: target.path,
        headers: { ...target.headers, "ce-id": "placeholder" },
        body: target.body,
        setupRequest: (req: { headers?: Record<string, string> }) => ({
          ...req,
          headers: { ...req.headers, "ce-id": nextId() },
        }),
      },
    ],
  });
  instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    statuses[String(statusCode)] = (statuses[String(statusCode)] ?? 0) + 1;
    if (statusCode === 202) latencies.push(responseTime);
    else errors++;
  });
  const result = await instance;
  errors += result.errors + result.timeouts;
  const elapsed = performance.now() - started;
  const stats = summarize(
    "autocannon",
    target.name,
    rate,
    seconds,
    latencies,
    result.requests.sent,
    errors,
    elapsed,
    statuses,
  );
  const cpu = processCpuMicros(target.pid) - cpu0;
  if (Number.isFinite(cpu)) stats.serverCpuUsPerRequest = round(cpu / Math.max(1, result.requests.sent), 0);
  return stats;
}

/**
 * Raw kafkajs with acks=all, paced like the HTTP load: the gateway's write alone. `coalesce` sends every
 * record that arrived during one event-loop turn in one `send` (what a micro-batching producer would do)
 * instead of one `send` per record. `records` are the messages to cycle through (key set per send).
 */
async function rawKafka(
  brokers: string[],
  topic: string,
  rate: number,
  seconds: number,
  records: Array<{ value: Buffer; headers: Record<string, string> }>,
  opts: { coalesce?: boolean; label?: string } = {},
): Promise<RunStats> {
  const kafka = new Kafka({ clientId: "bench-ingress-raw", brokers, logLevel: logLevel.NOTHING });
  // The producer settings of services/kafka/client.ts.
  const producer = kafka.producer({
    idempotent: false,
    allowAutoTopicCreation: false,
    maxInFlightRequests: 5,
  });
  await producer.connect();
  const first = records[0] as (typeof records)[number];
  // Warm the connection and metadata.
  await producer.send({
    topic,
    acks: -1,
    messages: [{ key: "warm", value: first.value, headers: first.headers }],
  });
  type Message = { key: string; value: Buffer; headers: Record<string, string> };
  let queue: Array<{ message: Message; settle: (ok: boolean) => void }> = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    const batch = queue;
    queue = [];
    producer.send({ topic, acks: -1, messages: batch.map((q) => q.message) }).then(
      () => batch.forEach((q) => q.settle(true)),
      () => batch.forEach((q) => q.settle(false)),
    );
  };
  const send = (message: Message): Promise<boolean> =>
    opts.coalesce
      ? new Promise((settle) => {
          queue.push({ message, settle });
          if (!flushScheduled) {
            flushScheduled = true;
            setImmediate(flush);
          }
        })
      : producer.send({ topic, acks: -1, messages: [message] }).then(
          () => true,
          () => false,
        );
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  let done = 0;
  const t0 = performance.now() + 20;
  let lastEnd = t0;
  const client0 = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      while (sent < total && t0 + sent * interval <= now) {
        const scheduled = t0 + sent * interval;
        const record = records[sent % records.length] as (typeof records)[number];
        sent++;
        void send({ key: nextId(), value: record.value, headers: record.headers }).then((ok) => {
          const end = performance.now();
          lastEnd = Math.max(lastEnd, end);
          if (ok) latencies.push(end - scheduled);
          else errors++;
          if (++done === total) resolve();
        });
      }
      if (sent >= total) clearInterval(timer);
    }, 1);
  });
  const client = process.cpuUsage(client0);
  await producer.disconnect();
  const label =
    opts.label ?? `raw kafkajs send, ${opts.coalesce ? "coalesced per turn" : "1 record"}, acks=all`;
  const stats = summarize("kafkajs", label, rate, seconds, latencies, sent, errors, lastEnd - t0, {});
  stats.clientCpuUsPerRequest = round((client.user + client.system) / sent, 0);
  return stats;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function getStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method: "GET" }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
    }, 5000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

async function main(): Promise<void> {
  const repeats = Number(process.env.BENCH_REPEATS ?? 3);
  const stepSeconds = Number(process.env.BENCH_STEP_SECONDS ?? 10);
  const rates = (process.env.BENCH_RATES ?? "100,250,500,1000,1500,2000,2500,3000,4000,5000")
    .split(",")
    .map(Number)
    .filter((n) => n > 0);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const withCannonSteps = (process.env.BENCH_AUTOCANNON_STEPS ?? "1") !== "0";
  const logLevelOfGateway = process.env.BENCH_GATEWAY_LOG_LEVEL ?? "info";
  const P99_LIMIT_MS = 10;
  const attributionRate = Number(process.env.BENCH_ATTRIBUTION_RATE ?? 300);
  // BENCH_PHASES: which parts to run (all by default); e.g. "attribution" alone while profiling.
  const phases = (process.env.BENCH_PHASES ?? "at1000,idle,coalesce,attribution,steps").split(",");

  const env = stackEnv();
  const loadBefore = loadAverage();
  const kubectl = env.KUBECTL ?? "kubectl";
  execFileSync(kubectl, ["apply", "-f", `${root}/crds/`], { stdio: "ignore" });
  execFileSync(
    kubectl,
    ["wait", "--for=condition=Established", "crd/orchestrations.eventloom.io", "--timeout=60s"],
    { stdio: "ignore" },
  );
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(env.KUBECONFIG ?? "");
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const ns = `bench-ingress-${runTag}`;
  const name = "orders";
  await core.createNamespace({ body: { metadata: { name: ns } } });

  const brokers = (env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(",");
  const admin = new KafkaClient({ brokers, clientId: "bench-ingress-admin" }).admin();
  await admin.connect();
  const unsignedName = "orders-unsigned";
  const rawTopic = `bench.ingress.raw.${runTag}`;
  const topics: string[] = [rawTopic];
  const partitions = 3;

  let gateway: ChildProcess | undefined;
  let bare: ChildProcess | undefined;
  const children: ChildProcess[] = [];
  // Leaves nothing behind, also when interrupted. An operator started by someone else's test run may have
  // reconciled the bench's Orchestrations (adding its topic finalizer and topics), and this stack has no
  // kube-controller-manager to finish a namespace deletion, so both are undone here.
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      for (const child of children) await stop(child);
      for (const o of [name, unsignedName]) {
        try {
          execFileSync(
            kubectl,
            ["patch", "orchestration", o, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'],
            { stdio: "ignore" },
          );
        } catch {
          // not there
        }
      }
      try {
        execFileSync(
          kubectl,
          ["delete", "orchestrations,secrets,configmaps", "--all", "-n", ns, "--wait=false"],
          { stdio: "ignore" },
        );
      } catch {
        // already gone
      }
      await core.deleteNamespace({ name: ns }).catch(() => undefined);
      await core
        .replaceNamespaceFinalize({ name: ns, body: { metadata: { name: ns }, spec: { finalizers: [] } } })
        .catch(() => undefined);
      const leftovers = await admin
        .listTopics()
        .then((all) => all.filter((t) => topics.includes(t) || t.startsWith(`eventloom.${ns}.`)))
        .catch(() => topics);
      await admin.deleteTopics(leftovers).catch(() => undefined);
      await admin.close();
    })());
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    // Two Orchestrations: `orders` (signing policy `required`, the default) and `orders-unsigned` (`none`).
    const provision = async (orchestration: string, signing: "required" | "none"): Promise<string> => {
      const spec: Orchestration = {
        apiVersion: "eventloom.io/v1alpha1",
        kind: "Orchestration",
        metadata: { name: orchestration, namespace: ns },
        spec: {
          mode: "orchestrated",
          steps: [
            { name: "reserve", type: "com.example.stock.reserve", compensation: "com.example.stock.release" },
            { name: "charge", type: "com.example.payment.charge", dependsOn: ["reserve"] },
          ],
          inputSchema: {
            type: "object",
            required: ["orderId", "quantity"],
            properties: { orderId: { type: "string" }, quantity: { type: "integer", minimum: 1 } },
          },
          topics: { partitions },
          signing: { policy: signing },
        },
      };
      const created = (await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: ORCHESTRATION_PLURAL,
        body: spec,
      })) as Orchestration;
      const key = generateSigningKey();
      await core.createNamespacedSecret({ namespace: ns, body: signingKeySecretFor(created, key) });
      await core.createNamespacedConfigMap({
        namespace: ns,
        body: trustConfigMapFor(created, [{ role: "gateway", keys: [key] }]),
      });
      const t = resultsTopic({ namespace: ns, orchestration });
      topics.push(t);
      return t;
    };
    await provision(name, "required");
    await provision(unsignedName, "none");
    await admin.createTopics(topics.map((t) => ({ name: t, partitions, replicationFactor: 1 })));
    await waitFor(
      "topics with leaders",
      async () => (await admin.describeTopics(topics)).length === topics.length,
      30_000,
    );

    // Token file, as mounted from a Secret in production.
    const dir = mkdtempSync(join(tmpdir(), "bench-ingress-"));
    const token = `bench-${"0123456789abcdef".repeat(3)}`;
    writeFileSync(join(dir, "tokens"), `bench-client ${token} ${ns}\n`);

    const startGateway = async (
      logLevel: string,
      profileDir?: string,
    ): Promise<{ child: ChildProcess; port: number }> => {
      const port = await freePort();
      // BENCH_GATEWAY_PROFILE=<dir>: write a V8 CPU profile of the gateway there (node --cpu-prof).
      const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
      const child = spawn(
        process.execPath,
        [...profile, "--import", "tsx", `${root}/services/gateway/main.ts`],
        {
          cwd: root,
          env: {
            ...process.env,
            PORT: String(port),
            HOST: "127.0.0.1",
            KAFKA_BROKERS: brokers.join(","),
            KUBECONFIG: env.KUBECONFIG ?? "",
            EVENTLOOM_NAMESPACE: ns,
            EVENTLOOM_GATEWAY_TOKENS_FILE: join(dir, "tokens"),
            EVENTLOOM_GATEWAY_RATE_LIMIT: "1000000",
            LOG_LEVEL: logLevel,
            OTEL_EXPORTER_OTLP_ENDPOINT: "",
            OTEL_TRACES_EXPORTER: "none",
          },
          // Logs go where a container's would (a file, here /dev/null): pino still formats and writes every line.
          stdio: ["ignore", "ignore", "inherit"],
        },
      );
      children.push(child);
      await waitFor("the gateway's /readyz", async () => (await getStatus(port, "/readyz")) === 200, 90_000);
      return { child, port };
    };
    const primary = await startGateway(logLevelOfGateway, process.env.BENCH_GATEWAY_PROFILE);
    gateway = primary.child;
    const gatewayPort = primary.port;

    bare = spawn(process.execPath, ["--import", "tsx", `${root}/bench/ingress.ts`, "--serve-bare"], {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.push(bare);
    const barePort = await new Promise<number>((resolve, reject) => {
      bare?.once("message", (m: { port: number }) => resolve(m.port));
      bare?.once("exit", (code) => reject(new Error(`bare server exited with ${code}`)));
    });

    const body = benchData(1);
    const { signer } = benchKeys();
    const gatewayRecords = Array.from({ length: 256 }, (_, i) => {
      const m = encodeRecord(
        signer.sign(benchEvent(i, resultsTopic({ namespace: ns, orchestration: name }))),
      );
      return {
        value: m.value ?? Buffer.alloc(0),
        headers: injectTraceContext({ ...m.headers }, runTraceContext(i)),
      };
    });
    const headers = {
      "content-type": "application/json",
      "ce-specversion": "1.0",
      "ce-source": "/shop/web",
      "ce-type": "com.example.order.placed",
      "ce-time": "2026-01-30T12:00:00.000Z",
      authorization: `Bearer ${token}`,
    };
    const gw: Target = {
      name: "gateway",
      port: gatewayPort,
      path: EVENT_PATH(ns, name),
      pid: gateway.pid,
      headers,
      body,
    };
    const bareTarget: Target = {
      name: "bare fastify",
      port: barePort,
      path: EVENT_PATH(ns, name),
      pid: bare.pid,
      headers,
      body,
    };

    const gwUnsigned: Target = { ...gw, name: "gateway, policy none", path: EVENT_PATH(ns, unsignedName) };
    // A second gateway with LOG_LEVEL=warn (no per-request log lines), for the CPU attribution below.
    const quiet = await startGateway("warn");
    const gwQuiet: Target = {
      ...gw,
      name: "gateway, LOG_LEVEL=warn",
      port: quiet.port,
      pid: quiet.child.pid,
    };
    const gwQuietUnsigned: Target = {
      ...gwQuiet,
      name: "gateway, LOG_LEVEL=warn, policy none",
      path: EVENT_PATH(ns, unsignedName),
    };

    // Warm-up (JIT, connections, metadata, key load): not recorded.
    for (const t of [gw, gwUnsigned, gwQuiet, gwQuietUnsigned]) {
      await paced(t, 200, 3);
      const warm = await paced(t, 400, 4);
      if (warm.ok === 0)
        throw new Error(`${t.name} accepted nothing during warm-up: ${JSON.stringify(warm.statuses)}`);
      console.error(`warm-up: ${t.name} ${JSON.stringify(warm.statuses)} p99 ${warm.p99} ms`);
    }
    await paced(bareTarget, 500, 3);

    const reps: Array<{
      at1000: Record<string, RunStats>;
      idle: Record<string, number>;
      coalesce: RunStats[];
      attribution: RunStats[];
      steps: RunStats[];
      cannonSteps: RunStats[];
      highest: number;
      highestCannon: number;
      highestBare: number;
      bareSteps: RunStats[];
    }> = [];
    const log = (s: RunStats) =>
      console.error(
        `  ${s.generator.padEnd(10)} ${s.target.padEnd(36)} ${String(s.rate).padStart(5)}/s: p50 ${s.p50} p95 ${s.p95} p99 ${s.p99} ms, ` +
          `${s.ok}/${s.sent} ok, achieved ${s.achieved}/s${s.serverCpuUsPerRequest !== undefined ? `, server CPU ${s.serverCpuUsPerRequest} µs/req` : ""} ` +
          `(load ${loadAverage()})`,
      );
    const holds = (s: RunStats) => s.errors === 0 && s.p99 < P99_LIMIT_MS && s.achieved >= 0.95 * s.rate;

    for (let r = 0; r < repeats; r++) {
      await awaitQuiet(`repetition ${r + 1}/${repeats}`);
      const at1000: Record<string, RunStats> = {};
      for (const [label, run] of !phases.includes("at1000")
        ? []
        : ([
            ["bare fastify, paced", () => paced(bareTarget, 1000, stepSeconds)],
            [
              "raw kafkajs send, paced",
              () =>
                rawKafka(brokers, rawTopic, 1000, stepSeconds, [{ value: body, headers: { ce_id: "x" } }]),
            ],
            ["gateway, paced", () => paced(gw, 1000, stepSeconds)],
            ["gateway at 500 req/s, paced", () => paced(gw, 500, stepSeconds)],
            ["bare fastify, autocannon", () => cannon(bareTarget, 1000, stepSeconds, connections)],
            ["gateway, autocannon", () => cannon(gw, 1000, stepSeconds, connections)],
          ] as const)) {
        const s = await run();
        at1000[label] = s;
        log(s);
      }
      // Step the rate up until p99 >= 10 ms, errors, or the rate is not achieved.
      const stepUp = async (
        target: Target,
        generator: "paced" | "autocannon",
      ): Promise<{ steps: RunStats[]; highest: number }> => {
        const steps: RunStats[] = [];
        let highest = 0;
        for (const rate of phases.includes("steps") ? rates : []) {
          const s =
            generator === "paced"
              ? await paced(target, rate, stepSeconds)
              : await cannon(target, rate, stepSeconds, connections);
          steps.push(s);
          log(s);
          if (!holds(s)) break;
          highest = rate;
        }
        return { steps, highest };
      };
      // CPU an idle gateway burns (ms of CPU per second, no traffic): it adds to every request's share at
      // low rates.
      const idle: Record<string, number> = {};
      if (phases.includes("idle")) {
        const procs = {
          gateway: gateway.pid,
          "gateway, LOG_LEVEL=warn": quiet.child.pid,
          "bare fastify": bare.pid,
        };
        const before = Object.fromEntries(
          Object.entries(procs).map(([k, pid]) => [k, processCpuMicros(pid)]),
        );
        await new Promise((r) => setTimeout(r, stepSeconds * 1000));
        for (const [k, pid] of Object.entries(procs))
          idle[k] = round((processCpuMicros(pid) - (before[k] ?? NaN)) / 1000 / stepSeconds, 1);
        console.error(`  idle CPU, ms per second: ${JSON.stringify(idle)}`);
      }
      // The gateway's write alone, with records like the gateway's (signed, traced, ~1.1 KB): one send per
      // record, as the gateway does, against sends coalesced per event-loop turn.
      const coalesce: RunStats[] = [];
      if (phases.includes("coalesce")) {
        for (const opts of [{ coalesce: false }, { coalesce: true }]) {
          const s = await rawKafka(brokers, rawTopic, 1000, stepSeconds, gatewayRecords, opts);
          coalesce.push(s);
          log(s);
        }
      }
      // Where the gateway's CPU goes: the same moderate rate with and without signing and per-request logs.
      const attribution: RunStats[] = [];
      for (const t of !phases.includes("attribution")
        ? []
        : [gw, gwUnsigned, gwQuiet, gwQuietUnsigned, bareTarget]) {
        const s = await paced(t, attributionRate, stepSeconds);
        attribution.push(s);
        log(s);
      }
      const gwSteps = await stepUp(gw, "paced");
      const cannonSteps = withCannonSteps ? await stepUp(gw, "autocannon") : { steps: [], highest: NaN };
      const bareSteps = await stepUp(bareTarget, "paced");
      reps.push({
        at1000,
        idle,
        coalesce,
        attribution,
        steps: gwSteps.steps,
        highest: gwSteps.highest,
        cannonSteps: cannonSteps.steps,
        highestCannon: cannonSteps.highest,
        bareSteps: bareSteps.steps,
        highestBare: bareSteps.highest,
      });
    }
    const loadAfter = loadAverage();
    const gatewayRss = gateway.pid ? rssMiB(gateway.pid) : NaN;

    const med = (f: (rep: (typeof reps)[number]) => number) => round(median(reps.map(f)));
    const at = (label: string, field: keyof RunStats) =>
      med((rep) => Number(rep.at1000[label]?.[field] ?? NaN));
    const step500 = (rep: (typeof reps)[number]) => rep.at1000["gateway at 500 req/s, paced"];
    const summary = {
      gatewayP50At1000: at("gateway, paced", "p50"),
      gatewayP99At1000: at("gateway, paced", "p99"),
      bareP50At1000: at("bare fastify, paced", "p50"),
      bareP99At1000: at("bare fastify, paced", "p99"),
      kafkaP50At1000: at("raw kafkajs send, paced", "p50"),
      kafkaP99At1000: at("raw kafkajs send, paced", "p99"),
      gatewayCpuUsPerRequest: at("gateway, paced", "serverCpuUsPerRequest"),
      bareCpuUsPerRequest: at("bare fastify, paced", "serverCpuUsPerRequest"),
      cannonGatewayP50At1000: at("gateway, autocannon", "p50"),
      cannonGatewayP99At1000: at("gateway, autocannon", "p99"),
      cannonBareP50At1000: at("bare fastify, autocannon", "p50"),
      cannonBareP99At1000: at("bare fastify, autocannon", "p99"),
      highestRate: med((rep) => rep.highest),
      highestRateAutocannon: med((rep) => rep.highestCannon),
      highestRateBare: med((rep) => rep.highestBare),
      gatewayP95At500: med((rep) => step500(rep)?.p95 ?? NaN),
      gatewayP99At500: med((rep) => step500(rep)?.p99 ?? NaN),
      gatewayRssMiB: gatewayRss,
      attributionRate,
      attribution: Object.fromEntries(
        (reps[0]?.attribution ?? []).map((a, i) => [
          a.target,
          {
            serverCpuUsPerRequest: med((rep) => rep.attribution[i]?.serverCpuUsPerRequest ?? NaN),
            p50: med((rep) => rep.attribution[i]?.p50 ?? NaN),
            p99: med((rep) => rep.attribution[i]?.p99 ?? NaN),
          },
        ]),
      ),
      kafkaClientCpuUsPerSend: at("raw kafkajs send, paced", "clientCpuUsPerRequest"),
      idleCpuMsPerSecond: Object.fromEntries(
        Object.keys(reps[0]?.idle ?? {}).map((k) => [k, med((rep) => rep.idle[k] ?? NaN)]),
      ),
      coalesce: Object.fromEntries(
        (reps[0]?.coalesce ?? []).map((c, i) => [
          c.target,
          {
            p50: med((rep) => rep.coalesce[i]?.p50 ?? NaN),
            p99: med((rep) => rep.coalesce[i]?.p99 ?? NaN),
            achieved: med((rep) => rep.coalesce[i]?.achieved ?? NaN),
            clientCpuUsPerRecord: med((rep) => rep.coalesce[i]?.clientCpuUsPerRequest ?? NaN),
          },
        ]),
      ),
    };
    const line = `ingress p99 ${summary.gatewayP99At1000} ms at 1000 req/s; highest rate with p99 < 10 ms: ${summary.highestRate} req/s`;
    const seedLine = `seed target p95 < 100 ms at 500 req/s: p95 ${summary.gatewayP95At500} ms (${summary.gatewayP95At500 < 100 ? "met" : "missed"})`;
    const cannonLine = `autocannon overallRate (per-second bursts over ${connections} connections): gateway p99 ${summary.cannonGatewayP99At1000} ms at 1000 req/s (bare fastify ${summary.cannonBareP99At1000} ms); highest rate with p99 < 10 ms: ${summary.highestRateAutocannon} req/s`;
    console.log(`\nmachine: ${machine()}`);
    console.log(`load average: before ${loadBefore}; after ${loadAfter}`);
    console.log(JSON.stringify(summary, null, 2));
    console.log(line);
    console.log(seedLine);
    console.log(cannonLine);
    // A run of some phases only gets its own file, so it does not replace a full run's.
    const partial = !phases.includes("at1000") || !phases.includes("steps");
    const path = writeResult(partial ? `ingress-${phases.join("-")}` : "ingress", {
      benchmark: "ingress",
      machine: machine(),
      loadAverage: { before: loadBefore, after: loadAfter },
      settings: {
        repeats,
        stepSeconds,
        rates,
        connections,
        partitions,
        gatewayLogLevel: logLevelOfGateway,
        p99LimitMs: P99_LIMIT_MS,
      },
      summary,
      line,
      seedLine,
      cannonLine,
      repetitions: reps,
    });
    console.log(`wrote ${path}`);
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Child mode: the bare fastify baseline.
async function serveBare(): Promise<void> {
  const { default: Fastify } = await import("fastify");
  const app = Fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  // An answer of the gateway's size, so the bytes on the wire match.
  const answer = {
    id: "c4e1410d-25f3-81d5-9920-84b9d7292f70",
    source: "/eventloom/bench/orders",
    type: "com.example.order.placed",
    specversion: "1.0",
    runid: "c4e1410d-25f3-81d5-9920-84b9d7292f70",
    orchestration: "bench/orders",
    originsource: "/shop/web",
    originid: "7d2a4c1e-0b7f-4c55-9c43-5d4a0f1e2b3c",
    signed: true,
    records: [{ topic: "eventloom.bench.orders-results", partition: 2, offset: "1041" }],
  };
  app.post("/namespaces/:namespace/orchestrations/:name/events", async (_req, reply) =>
    reply.code(202).send(answer),
  );
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  process.send?.({ port: typeof address === "object" && address ? address.port : 0 });
  process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
}

if (process.argv.includes("--serve-bare")) await serveBare();
else await main();
