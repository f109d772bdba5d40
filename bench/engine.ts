/**
 * Engine benchmark (issue "Engine ... Benchmark"): step transitions per second end to end, latency added per
 * step, and memory per 10,000 active runs, on the real stack (Kafka broker + kube-apiserver).
 *
 *   tsx bench/engine.ts     (npm run bench:engine)
 *   BENCH_REPEATS=3 BENCH_RUNS=2000 BENCH_WARMUP_RUNS=300 BENCH_LATENCY_RUNS=150 BENCH_HOLD_RUNS=10000
 *   BENCH_PROFILE=1 (CPU profile of the engine during one extra signing-none run in the last repeat)
 *
 * What runs where (every process on this machine, all traffic on 127.0.0.1):
 * - the engine: `services/engine/main.ts` as a child process with production defaults (ENGINE_PARTITIONS 6,
 *   LOG_LEVEL info, tracing off), preloaded with a small control hook on stdin (full GC + memoryUsage, and
 *   start/stop of a V8 CPU profile through node:inspector) so that nothing in services/ changes;
 * - the workers: the engine's own test worker (`services/engine/testing/responder.ts`, a no-op handler that
 *   answers `completed`) in a second child process (`--worker` mode of this file), one Responder per
 *   Orchestration. It verifies every command (signature, source, destination), deduplicates on (source, id)
 *   and publishes one result per command (acks=all), signed with its Worker key. Under signing policy `none`
 *   it publishes unsigned results (a subclass passes an identity signer to `publish`), and the engine gets
 *   no signing key (its Secret is deleted, as the operator never creates one under `none`), so that no
 *   Ed25519 operation happens anywhere on the `none` path;
 * - this process: provisioning (services/engine/testing/provision.ts: Orchestration, Workers, keys, trust
 *   ConfigMap, topics, as the operator leaves them), the client (POST .../runs on the engine's HTTP run API,
 *   64 keep-alive connections), the baselines and the bookkeeping.
 *
 * Each repeat uses a fresh namespace, topic prefix, engine and worker (so the engine's view starts empty):
 *  1. baselines: raw Kafka produce→consume round trip (ping topic → echo in the worker process → pong topic,
 *     sequential), Kafka echo throughput (same path, pipelined), Signer.sign / Verifier.verify per event;
 *  2. warm-up runs of both Orchestrations;
 *  3. throughput: BENCH_RUNS runs of a 3-step chain, all submitted at once (the API accepts them as fast as
 *     it can), for signing `none` and `required` (order alternates between repeats). A transition = one
 *     step dispatched and its result applied; only runs that finished Succeeded count (3 transitions each).
 *     Window = first POST sent → last run finished (the engine's own "run finished" log line, timestamped
 *     after the final state write). CPU of every process over the window comes from /proc;
 *  4. latency under light load: runs one at a time; run latency (POST → finished) / 3, and each step's own
 *     dispatch → result-applied time from the run's attempts (GET /runs/:id);
 *  5. (last repeat) the profiled extra run;
 *  6. memory: full GC, then BENCH_HOLD_RUNS runs of an Orchestration whose worker holds every command (never
 *     answers; step timeout 30m, so nothing retries), wait until every run is Running with its first
 *     command sent, full GC again: the difference is the cost of the active runs. Then GET every run once
 *     (which releases the run API's in-memory copy of each accepted run) and measure again.
 */
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import {
  signingKeySecretName,
  signingKeysFromSecret,
  stepSource,
  orchestrationSource,
  trustConfigMapName,
  TRUST_FILE,
} from "../operator/builders/keys.ts";
import type { Orchestration, SigningPolicy } from "../operator/crds/types.ts";
import {
  API_VERSION,
  GROUP,
  ORCHESTRATION_KIND,
  ORCHESTRATION_PLURAL,
  VERSION,
  WORKER_KIND,
} from "../operator/crds/types.ts";
import { startRecord } from "../services/engine/inbox.ts";
import { inputHash } from "../services/engine/input-hash.ts";
import { applyResult, startRun } from "../services/engine/machine.ts";
import type { CommandSpec } from "../services/engine/machine.ts";
import type { RunState } from "../services/engine/model.ts";
import { RESULT_SIGNED_EXTENSIONS } from "../services/engine/results.ts";
import { newTrace } from "../services/engine/tracing.ts";
import { StateView } from "../services/engine/view.ts";
import { createLogger } from "../operator/runtime/log.ts";
import { deleteTopics, provisionOrchestration } from "../services/engine/testing/provision.ts";
import type { ProvisionedOrchestration } from "../services/engine/testing/provision.ts";
import { Responder } from "../services/engine/testing/responder.ts";
import type { Behaviour, ReceivedCommand } from "../services/engine/testing/responder.ts";
import { engineInboxTopic, engineStateTopic } from "../services/engine/topics.ts";
import { encodeRecord, decodeRecord } from "../services/events/binding.ts";
import type { CloudEvent } from "../services/events/cloudevent.ts";
import { Signer, Verifier } from "../services/events/signing.ts";
import { stepTopic } from "../services/events/topics.ts";
import { TrustStore } from "../services/events/trust-store.ts";
import { brokersFromEnv, KafkaClient } from "../services/kafka/client.ts";
import type { IncomingRecord, KafkaProducer, OutgoingRecord } from "../services/kafka/client.ts";
import { machine, percentile, pool, root, stackEnv, writeResult } from "./support.ts";

const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const RUNS = Number(process.env.BENCH_RUNS ?? 2000);
const WARMUP_RUNS = Number(process.env.BENCH_WARMUP_RUNS ?? 300);
const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 150);
const HOLD_RUNS = Number(process.env.BENCH_HOLD_RUNS ?? 10_000);
const PROFILE = (process.env.BENCH_PROFILE ?? "1") !== "0";
/**
 * Phases to run (comma-separated; default all): baseline (Kafka and crypto), api (one run per POST), batch
 * (POST .../runs/batch, BENCH_BATCH_SIZE runs per request, BENCH_BATCH_CONCURRENCY requests at a time), backlog, latency, memory
 * (memory, held runs, view scan). A partial run prints its figures but writes no result file or tables.
 */
const ALL_PHASES = ["baseline", "api", "batch", "backlog", "latency", "memory"] as const;
type Phase = (typeof ALL_PHASES)[number];
const PHASES = new Set<Phase>(
  (process.env.BENCH_PHASES ?? ALL_PHASES.join(","))
    .split(",")
    .map((p) => p.trim())
    .filter((p): p is Phase => (ALL_PHASES as readonly string[]).includes(p)),
);
const PARTIAL = ALL_PHASES.some((p) => !PHASES.has(p));
/** Signing policies measured (comma-separated; default `none,required`). */
const POLICIES = (process.env.BENCH_POLICIES ?? "none,required")
  .split(",")
  .map((p) => p.trim())
  .filter((p): p is "none" | "required" => p === "none" || p === "required");
const CLIENT_CONNECTIONS = 64;
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 100);
const BATCH_CONCURRENCY = Number(process.env.BENCH_BATCH_CONCURRENCY ?? 4);
const STEPS = ["reserve", "charge", "ship"] as const;
const CHAIN = STEPS.length;
const ORCH = { none: "chain-none", required: "chain-signed", hold: "chain-hold" } as const;
const WORKER = { none: "w-none", required: "w-signed", hold: "w-hold" } as const;
const nowMs = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const hex = (n: number) => randomBytes(n).toString("hex");

// =========================================================================================================
// Worker process (`--worker <config.json>`): the responders and the Kafka echo used by the baselines.
// =========================================================================================================

interface WorkerConfig {
  namespace: string;
  prefix: string;
  responders: Array<{
    orchestration: string;
    worker: string;
    behaviour: "complete" | "hold";
    unsigned: boolean;
  }>;
  echo: { ping: string; pong: string };
}

/** A Signer stand-in that leaves the event as it is: results go out unsigned (policy `none`). */
const identitySigner = { sign: (event: CloudEvent) => event } as unknown as Signer;

/** The test worker, publishing unsigned results (what a worker under signing policy `none` does). */
class UnsignedResponder extends Responder {
  override publish(
    command: Pick<ReceivedCommand, "id" | "runId" | "step" | "action" | "attempt">,
    behaviour: Exclude<Behaviour, { outcome: "silent" }>,
    opts: { signer?: Signer; source?: string } = {},
  ): Promise<void> {
    return super.publish(command, behaviour, { ...opts, signer: identitySigner });
  }
}

async function workerMain(configPath: string): Promise<void> {
  const cfg = JSON.parse(readFileSync(configPath, "utf8")) as WorkerConfig;
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const kafka = new KafkaClient({ brokers: brokersFromEnv(), clientId: "bench-engine-worker" });
  const naming = { prefix: cfg.prefix };
  const responders: Responder[] = [];
  for (const r of cfg.responders) {
    const orchestration = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: cfg.namespace,
      plural: ORCHESTRATION_PLURAL,
      name: r.orchestration,
    })) as Orchestration;
    const secret = await core.readNamespacedSecret({
      namespace: cfg.namespace,
      name: signingKeySecretName({
        apiVersion: API_VERSION,
        kind: WORKER_KIND,
        metadata: { name: r.worker, namespace: cfg.namespace },
      }),
    });
    const [key] = signingKeysFromSecret(secret);
    if (!key) throw new Error(`no key for worker ${r.worker}`);
    const cm = await core.readNamespacedConfigMap({
      namespace: cfg.namespace,
      name: trustConfigMapName(orchestration),
    });
    const trust = TrustStore.fromDocument(JSON.parse(cm.data?.[TRUST_FILE] ?? "{}"));
    const Kind = r.unsigned ? UnsignedResponder : Responder;
    const responder = new Kind({
      kafka,
      orchestration,
      naming,
      trust,
      key,
      groupId: `bench-${r.worker}`,
      behaviour:
        r.behaviour === "hold"
          ? () => ({ outcome: "silent" })
          : (c) => ({ outcome: "completed", output: { step: c.step } }),
    });
    await responder.start();
    responders.push(responder);
  }
  // Echo: every ping comes back on the pong topic with the time it was read, one send per record, answered in
  // the background exactly as the Responder answers commands.
  const producer = kafka.producer();
  await producer.connect();
  const echo = kafka.consumer({ groupId: `bench-echo-${hex(4)}`, sessionTimeoutMs: 6_000 });
  await echo.connect();
  await echo.subscribe([cfg.echo.ping], true);
  const joined = echo.onceJoined();
  await echo.runEach(
    async (record) => {
      const readAt = nowMs();
      void producer
        .send(cfg.echo.pong, [
          { key: record.key, value: record.value, headers: { "bench-read-at": String(readAt) } },
        ])
        .catch((err: unknown) => process.stderr.write(`echo send failed: ${String(err)}\n`));
    },
    { partitionsConsumedConcurrently: 4 },
  );
  await joined;
  process.stdout.write("READY\n");
  const stop = async (): Promise<void> => {
    const errors = responders.flatMap((r) => [...r.refused, ...r.errors]);
    if (errors.length > 0) process.stderr.write(`worker refused/errors: ${errors.slice(0, 5).join("; ")}\n`);
    await Promise.allSettled([...responders.map((r) => r.stop()), echo.close(), producer.close()]);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
}

// =========================================================================================================
// Measuring helpers
// =========================================================================================================

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** CPU ms used by a process (all threads), or by one thread when `tid` is given. */
function procCpuMs(pid: number, tid?: number): number {
  try {
    const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
    const stat = readFileSync(path, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Busy and total CPU ms of the whole machine (every process, colleagues' included). */
function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: ((total - idle) * 1000) / CLK_TCK, total: (total * 1000) / CLK_TCK };
}

function load1(): number {
  return Math.round((loadavg()[0] ?? NaN) * 100) / 100;
}
function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
}

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? (v[mid] ?? NaN) : ((v[mid - 1] ?? NaN) + (v[mid] ?? NaN)) / 2;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: CLIENT_CONNECTIONS });

function http(method: string, url: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      url,
      {
        method,
        agent,
        headers:
          payload === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// =========================================================================================================
// Child processes
// =========================================================================================================

/** Preloaded into the engine: a control channel on stdin (full GC + memory, CPU profile start/stop). */
const PRELOAD = `
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
const session = new Session();
session.connect();
createInterface({ input: process.stdin }).on("line", async (line) => {
  const [cmd, arg] = line.trim().split(" ");
  try {
    if (cmd === "gc") {
      for (let i = 0; i < 3; i++) globalThis.gc();
      await new Promise((r) => setTimeout(r, 300));
      globalThis.gc();
      process.stderr.write("BENCH_MEMORY " + JSON.stringify(process.memoryUsage()) + "\\n");
    } else if (cmd === "prof-start") {
      await session.post("Profiler.enable");
      await session.post("Profiler.setSamplingInterval", { interval: 500 });
      await session.post("Profiler.start");
      process.stderr.write("BENCH_PROF_STARTED\\n");
    } else if (cmd === "prof-stop") {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(arg, JSON.stringify(profile));
      process.stderr.write("BENCH_PROF_WRITTEN " + arg + "\\n");
    }
  } catch (err) {
    process.stderr.write("BENCH_CONTROL_ERROR " + (err && err.message) + "\\n");
  }
});
`;

function lines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  let buf = "";
  stream?.on("data", (d: Buffer) => {
    buf += d.toString("utf8");
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

interface Memory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

class EngineProcess {
  readonly finished = new Map<string, { at: number; status: string }>();
  private tail = "";
  private readonly controlWaiters: Array<{ prefix: string; resolve: (line: string) => void }> = [];

  private constructor(
    readonly proc: ChildProcess,
    readonly url: string,
  ) {
    lines(proc.stdout, (line) => {
      if (line.includes('"run finished"')) {
        try {
          const entry = JSON.parse(line) as { runId?: string; status?: string; time?: string };
          if (entry.runId)
            this.finished.set(entry.runId, { at: Date.parse(entry.time ?? ""), status: entry.status ?? "" });
          return;
        } catch {
          // not a log line of ours
        }
      }
      this.keep(line);
    });
    lines(proc.stderr, (line) => {
      const waiter = this.controlWaiters.find((w) => line.startsWith(w.prefix));
      if (waiter) {
        this.controlWaiters.splice(this.controlWaiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
      this.keep(line);
    });
  }

  private keep(line: string): void {
    this.tail = (this.tail + line + "\n").slice(-8000);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  output(): string {
    return this.tail;
  }

  static async start(args: { prefix: string; namespace: string; dir: string }): Promise<EngineProcess> {
    const port = await freePort();
    const preload = join(args.dir, "engine-preload.mjs");
    writeFileSync(preload, PRELOAD);
    const proc = spawn(
      process.execPath,
      ["--expose-gc", "--import", preload, "--import", "tsx", `${root}services/engine/main.ts`],
      {
        cwd: root,
        env: {
          ...process.env,
          ENGINE_PORT: String(port),
          ENGINE_HOST: "127.0.0.1",
          EVENTLOOM_TOPIC_PREFIX: args.prefix,
          EVENTLOOM_NAMESPACE: args.namespace,
          OTEL_SDK_DISABLED: "true",
          LOG_LEVEL: "info",
        },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    const engine = new EngineProcess(proc, `http://127.0.0.1:${port}`);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`engine exited with ${proc.exitCode}:\n${engine.output()}`);
      try {
        if ((await http("GET", `${engine.url}/readyz`)).status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`engine not ready after 120 s:\n${engine.output()}`);
      await sleep(250);
    }
    return engine;
  }

  private control(command: string, answerPrefix: string, timeoutMs = 60_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`engine did not answer "${command}"`)), timeoutMs);
      this.controlWaiters.push({
        prefix: answerPrefix,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      this.proc.stdin?.write(`${command}\n`);
    });
  }

  /** Full GC in the engine, then its process.memoryUsage(). */
  async memory(): Promise<Memory> {
    const line = await this.control("gc", "BENCH_MEMORY ");
    return JSON.parse(line.slice("BENCH_MEMORY ".length)) as Memory;
  }

  async profileStart(): Promise<void> {
    await this.control("prof-start", "BENCH_PROF_STARTED");
  }

  async profileStop(path: string): Promise<void> {
    await this.control(`prof-stop ${path}`, "BENCH_PROF_WRITTEN", 120_000);
  }

  async metrics(): Promise<Map<string, number>> {
    const res = await http("GET", `${this.url}/metrics`);
    const out = new Map<string, number>();
    for (const line of res.text.split("\n")) {
      if (line.startsWith("#") || line === "") continue;
      const i = line.lastIndexOf(" ");
      const name = line.slice(0, i);
      const base = name.replace(/\{.*\}$/, "");
      const v = Number(line.slice(i + 1));
      out.set(name, v);
      out.set(`${base}:sum`, (out.get(`${base}:sum`) ?? 0) + v);
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
    this.proc.kill("SIGTERM");
    const killer = setTimeout(() => this.proc.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(killer);
  }
}

class WorkerProcess {
  private tail = "";
  private constructor(readonly proc: ChildProcess) {}

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  static async start(cfg: WorkerConfig, dir: string): Promise<WorkerProcess> {
    const path = join(dir, "worker.json");
    writeFileSync(path, JSON.stringify(cfg));
    const proc = spawn(process.execPath, ["--import", "tsx", `${root}bench/engine.ts`, "--worker", path], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: "warn", OTEL_SDK_DISABLED: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const w = new WorkerProcess(proc);
    const ready = new Promise<void>((resolve, reject) => {
      lines(proc.stdout, (line) => {
        if (line === "READY") resolve();
        w.tail = (w.tail + line + "\n").slice(-4000);
      });
      lines(proc.stderr, (line) => (w.tail = (w.tail + line + "\n").slice(-4000)));
      proc.once("exit", (code) => reject(new Error(`worker exited with ${code}:\n${w.tail}`)));
    });
    const timeout = sleep(120_000).then(() => {
      throw new Error(`worker not ready after 120 s:\n${w.tail}`);
    });
    await Promise.race([ready, timeout]);
    return w;
  }

  output(): string {
    return this.tail;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once("exit", () => r()));
    this.proc.kill("SIGTERM");
    const killer = setTimeout(() => this.proc.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(killer);
  }
}

// =========================================================================================================
// Provisioning
// =========================================================================================================

function manifest(name: string, policy: SigningPolicy, timeout: string): Orchestration {
  return {
    apiVersion: API_VERSION,
    kind: ORCHESTRATION_KIND,
    metadata: { name },
    spec: {
      mode: "orchestrated",
      deletionPolicy: "Delete",
      signing: { policy },
      steps: STEPS.map((step, i) => ({
        name: step,
        type: `com.example.${step}`,
        timeout,
        ...(i > 0 ? { dependsOn: [STEPS[i - 1] as string] } : {}),
      })),
    },
  };
}

interface Setup {
  namespace: string;
  prefix: string;
  dir: string;
  kafka: KafkaClient;
  kc: k8s.KubeConfig;
  provisioned: Record<keyof typeof ORCH, ProvisionedOrchestration>;
  topics: string[];
  engine: EngineProcess;
  worker: WorkerProcess;
  echo: { ping: string; pong: string };
  brokerPid: number;
  /** Writes start records straight to the engine inbox (backlog mode). */
  producer: KafkaProducer;
}

function kubectl(args: string[]): void {
  execFileSync(process.env.KUBECTL ?? "kubectl", args, { stdio: ["ignore", "ignore", "inherit"] });
}

async function setUp(label: string): Promise<Setup> {
  const id = hex(4);
  const namespace = `bench-engine-${id}`;
  const prefix = `elb-${id}`;
  const dir = mkdtempSync(join(tmpdir(), "bench-engine-"));
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const kafka = new KafkaClient({ brokers: brokersFromEnv(), clientId: `bench-engine-${label}` });
  kubectl(["create", "namespace", namespace]);
  const naming = { prefix };
  const provisioned = {} as Record<keyof typeof ORCH, ProvisionedOrchestration>;
  for (const kind of ["none", "required", "hold"] as const) {
    const policy: SigningPolicy = kind === "none" ? "none" : "required";
    provisioned[kind] = await provisionOrchestration(kc, kafka, {
      namespace,
      manifest: manifest(ORCH[kind], policy, kind === "hold" ? "30m" : "2m"),
      workers: [{ name: WORKER[kind], steps: [...STEPS] }],
      naming,
    });
  }
  // Under policy `none` the operator creates no signing key: take the one provision made away from the engine.
  await kc.makeApiClient(k8s.CoreV1Api).deleteNamespacedSecret({
    namespace,
    name: signingKeySecretName(provisioned.none.orchestration),
  });
  const echo = { ping: `${prefix}.bench.ping`, pong: `${prefix}.bench.pong` };
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics([
    { name: echo.ping, partitions: 3, replicationFactor: 1 },
    { name: echo.pong, partitions: 3, replicationFactor: 1 },
  ]);
  await admin.close();
  const topics = [
    ...Object.values(provisioned).flatMap((p) => p.topics),
    engineInboxTopic(naming),
    engineStateTopic(naming),
    echo.ping,
    echo.pong,
  ];
  const worker = await WorkerProcess.start(
    {
      namespace,
      prefix,
      responders: [
        { orchestration: ORCH.none, worker: WORKER.none, behaviour: "complete", unsigned: true },
        { orchestration: ORCH.required, worker: WORKER.required, behaviour: "complete", unsigned: false },
        { orchestration: ORCH.hold, worker: WORKER.hold, behaviour: "hold", unsigned: false },
      ],
      echo,
    },
    dir,
  );
  const engine = await EngineProcess.start({ prefix, namespace, dir });
  const brokerPid = Number(readFileSync(`${process.env.EVENTLOOM_STACK_DIR}/kafka/pid`, "utf8").trim());
  const producer = kafka.producer();
  await producer.connect();
  return {
    namespace,
    prefix,
    dir,
    kafka,
    kc,
    provisioned,
    topics,
    engine,
    worker,
    echo,
    brokerPid,
    producer,
  };
}

async function tearDown(s: Setup): Promise<void> {
  await s.producer.close().catch(() => undefined);
  await s.engine.stop().catch(() => undefined);
  await s.worker.stop().catch(() => undefined);
  await deleteTopics(s.kafka, s.topics);
  try {
    kubectl(["delete", "namespace", s.namespace, "--wait=false", "--ignore-not-found"]);
  } catch {
    // best effort
  }
}

// =========================================================================================================
// Runs
// =========================================================================================================

interface Submitted {
  runId: string;
  postAt: number;
}

async function submit(s: Setup, orchestration: string, count: number, from = 0): Promise<Submitted[]> {
  const url = `${s.engine.url}/namespaces/${s.namespace}/orchestrations/${orchestration}/runs`;
  return pool(
    Array.from({ length: count }, (_, i) => from + i),
    CLIENT_CONNECTIONS,
    async (n) => {
      for (let attempt = 1; ; attempt++) {
        const postAt = Date.now();
        const res = await http("POST", url, { n });
        if (res.status === 202) return { runId: (JSON.parse(res.text) as { runId: string }).runId, postAt };
        if (attempt >= 5) throw new Error(`POST ${url} answered ${res.status}: ${res.text}`);
        await sleep(200);
      }
    },
  );
}

/** Batch mode: POST .../runs/batch with BATCH_SIZE runs each, BATCH_CONCURRENCY requests at a time. */
async function submitBatch(s: Setup, orchestration: string, count: number): Promise<Submitted[]> {
  const url = `${s.engine.url}/namespaces/${s.namespace}/orchestrations/${orchestration}/runs/batch`;
  const batches = Array.from({ length: Math.ceil(count / BATCH_SIZE) }, (_, b) =>
    Array.from({ length: Math.min(BATCH_SIZE, count - b * BATCH_SIZE) }, (_, i) => b * BATCH_SIZE + i),
  );
  const answers = await pool(batches, BATCH_CONCURRENCY, async (batch) => {
    const postAt = Date.now();
    const res = await http("POST", url, { runs: batch.map((n) => ({ input: { n } })) });
    if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${res.text}`);
    const body = JSON.parse(res.text) as { items: Array<{ status: number; runId?: string }> };
    const refused = body.items.filter((i) => i.status !== 202);
    if (refused.length > 0)
      throw new Error(`POST ${url}: ${refused.length} runs refused: ${res.text.slice(0, 500)}`);
    return body.items.map((i) => ({ runId: i.runId ?? "", postAt }));
  });
  return answers.flat();
}

/**
 * Backlog mode: the start records the run API would write (`startRecord`, same key, same content), written
 * straight to the engine inbox 250 per produce request, so the engine drains a backlog in large batches
 * without the HTTP API's per-run request and produce in front of it.
 */
async function submitToInbox(s: Setup, kind: keyof typeof ORCH, count: number): Promise<Submitted[]> {
  const p = s.provisioned[kind];
  const inbox = engineInboxTopic({ prefix: s.prefix });
  const out: Submitted[] = [];
  const records: OutgoingRecord[] = [];
  for (let i = 0; i < count; i++) {
    const input = { n: i };
    const runId = randomUUID();
    records.push(
      startRecord(
        {
          runId,
          namespace: s.namespace,
          orchestration: p.name,
          generation: p.orchestration.metadata.generation ?? 1,
          spec: p.orchestration.spec,
          input,
          inputHash: inputHash(input),
          trace: newTrace(),
        },
        randomUUID(),
      ),
    );
    out.push({ runId, postAt: 0 });
  }
  const t0 = Date.now();
  for (let i = 0; i < records.length; i += 250) await s.producer.send(inbox, records.slice(i, i + 250));
  for (const x of out) x.postAt = t0;
  return out;
}

/** Waits until the engine logged every run as finished; returns the detection time. */
async function waitFinished(s: Setup, runIds: string[], timeoutMs: number): Promise<number> {
  const pending = new Set(runIds);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const id of pending) if (s.engine.finished.has(id)) pending.delete(id);
    if (pending.size === 0) return Date.now();
    if (Date.now() > deadline) {
      console.error(`  ${pending.size} of ${runIds.length} runs did not finish within ${timeoutMs} ms`);
      return Date.now();
    }
    if (s.engine.proc.exitCode !== null) throw new Error(`engine died:\n${s.engine.output()}`);
    await sleep(20);
  }
}

interface CpuSnapshot {
  at: number;
  engine: number;
  engineMain: number;
  worker: number;
  broker: number;
  client: number;
  machine: { busy: number; total: number };
}

function cpuSnapshot(s: Setup): CpuSnapshot {
  const self = process.cpuUsage();
  return {
    at: Date.now(),
    engine: procCpuMs(s.engine.pid),
    engineMain: procCpuMs(s.engine.pid, s.engine.pid),
    worker: procCpuMs(s.worker.pid),
    broker: procCpuMs(s.brokerPid),
    client: (self.user + self.system) / 1000,
    machine: machineCpuMs(),
  };
}

interface CpuUse {
  /** CPU ms per transition, by process (`engineMainThread`: the engine's JavaScript thread alone). */
  msPerTransition: Record<"engine" | "engineMainThread" | "worker" | "broker" | "client", number>;
  /**
   * Transitions/s this work would reach with every core of the machine to itself (cores × 1000 / CPU ms per
   * transition summed over engine, worker, broker and client), and what the engine's single JavaScript thread
   * allows (1000 / its ms per transition).
   */
  capacityAllCores: number;
  capacityEngineThread: number;
  /** Cores in use over the window, by process, and by the whole machine (colleagues included). */
  cores: Record<"engine" | "engineMainThread" | "worker" | "broker" | "client" | "machine", number>;
}

function cpuUse(a: CpuSnapshot, b: CpuSnapshot, transitions: number): CpuUse {
  const wall = b.at - a.at;
  const d = (k: "engine" | "engineMain" | "worker" | "broker" | "client") => b[k] - a[k];
  const ncpu = cpus().length;
  return {
    capacityAllCores: Math.round(
      (ncpu * 1000) / ((d("engine") + d("worker") + d("broker") + d("client")) / transitions),
    ),
    capacityEngineThread: Math.round(1000 / (d("engineMain") / transitions)),
    msPerTransition: {
      engine: r2((d("engine") / transitions) * 1000) / 1000,
      engineMainThread: r2((d("engineMain") / transitions) * 1000) / 1000,
      worker: r2((d("worker") / transitions) * 1000) / 1000,
      broker: r2((d("broker") / transitions) * 1000) / 1000,
      client: r2((d("client") / transitions) * 1000) / 1000,
    },
    cores: {
      engine: r2(d("engine") / wall),
      engineMainThread: r2(d("engineMain") / wall),
      worker: r2(d("worker") / wall),
      broker: r2(d("broker") / wall),
      client: r2(d("client") / wall),
      machine: r2(((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * ncpu),
    },
  };
}

interface Throughput {
  policy: "none" | "required";
  /**
   * `api`: POST .../runs, 64 at a time. `batch`: POST .../runs/batch. `inbox`: start records written straight
   * to the inbox (backlog).
   */
  mode: "api" | "batch" | "inbox";
  runs: number;
  succeeded: number;
  transitions: number;
  windowMs: number;
  transitionsPerSecond: number;
  /** Completion rate between the 10th and 90th percentile finish times (steady state). */
  steadyTransitionsPerSecond: number;
  /** How long the API took to accept every run. */
  submitMs: number;
  runsAcceptedPerSecond: number;
  cpu: CpuUse;
  load1Before: number;
  load1After: number;
}

async function throughput(
  s: Setup,
  policy: "none" | "required",
  runs: number,
  label: string,
  mode: "api" | "batch" | "inbox" = "api",
): Promise<Throughput> {
  const load1Before = load1();
  const before = cpuSnapshot(s);
  const t0 = Date.now();
  const submitted =
    mode === "api"
      ? await submit(s, ORCH[policy], runs)
      : mode === "batch"
        ? await submitBatch(s, ORCH[policy], runs)
        : await submitToInbox(s, policy, runs);
  const submitEnd = Date.now();
  await waitFinished(
    s,
    submitted.map((x) => x.runId),
    300_000,
  );
  const after = cpuSnapshot(s);
  const finishes = submitted
    .map((x) => s.engine.finished.get(x.runId))
    .filter((f): f is { at: number; status: string } => f !== undefined && f.status === "Succeeded")
    .map((f) => f.at)
    .sort((a, b) => a - b);
  const succeeded = finishes.length;
  const last = finishes[finishes.length - 1] ?? after.at;
  const windowMs = Math.max(1, last - t0);
  const transitions = succeeded * CHAIN;
  const p10 = finishes[Math.floor(succeeded * 0.1)] ?? t0;
  const p90 = finishes[Math.floor(succeeded * 0.9)] ?? last;
  const result: Throughput = {
    policy,
    mode,
    runs,
    succeeded,
    transitions,
    windowMs,
    transitionsPerSecond: Math.round((transitions / windowMs) * 1000),
    steadyTransitionsPerSecond: Math.round(
      (((Math.floor(succeeded * 0.9) - Math.floor(succeeded * 0.1)) * CHAIN) / Math.max(1, p90 - p10)) * 1000,
    ),
    submitMs: submitEnd - t0,
    runsAcceptedPerSecond: Math.round((runs / Math.max(1, submitEnd - t0)) * 1000),
    cpu: cpuUse(before, after, Math.max(1, transitions)),
    load1Before,
    load1After: load1(),
  };
  console.log(
    `  ${label} signing ${policy.padEnd(8)} ${String(result.transitionsPerSecond).padStart(5)} transitions/s ` +
      `(steady ${result.steadyTransitionsPerSecond}/s; ${succeeded}/${runs} runs in ${(windowMs / 1000).toFixed(2)} s; ` +
      `${mode === "inbox" ? "written to the inbox at" : "API accepted"} ${result.runsAcceptedPerSecond} runs/s; cores: engine ${result.cpu.cores.engine} ` +
      `(main thread ${result.cpu.cores.engineMainThread}), worker ${result.cpu.cores.worker}, broker ${result.cpu.cores.broker}, ` +
      `client ${result.cpu.cores.client}, machine ${result.cpu.cores.machine}/${cpus().length}; load ${load1Before}→${result.load1After}; ` +
      `CPU µs/transition: engine ${r1(result.cpu.msPerTransition.engine * 1000)} (main thread ${r1(result.cpu.msPerTransition.engineMainThread * 1000)}), ` +
      `worker ${r1(result.cpu.msPerTransition.worker * 1000)}, broker ${r1(result.cpu.msPerTransition.broker * 1000)}, client ${r1(result.cpu.msPerTransition.client * 1000)} ` +
      `→ ${result.cpu.capacityAllCores}/s with the machine to itself, engine thread alone ${result.cpu.capacityEngineThread}/s)`,
  );
  return result;
}

interface Latency {
  policy: "none" | "required";
  runs: number;
  runP50Ms: number;
  runP99Ms: number;
  /** Run latency (POST → finished) divided by the chain length. */
  perStepFromRunP50Ms: number;
  perStepFromRunP99Ms: number;
  /** Each step's own time, dispatch decided → result applied (engine clock). */
  stepP50Ms: number;
  stepP99Ms: number;
  load1: number;
}

async function latency(s: Setup, policy: "none" | "required", runs: number): Promise<Latency> {
  const url = `${s.engine.url}/namespaces/${s.namespace}/orchestrations/${ORCH[policy]}/runs`;
  const runLatencies: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < runs; i++) {
    const postAt = Date.now();
    const res = await http("POST", url, { n: i });
    if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${res.text}`);
    const runId = (JSON.parse(res.text) as { runId: string }).runId;
    await waitFinished(s, [runId], 60_000);
    const f = s.engine.finished.get(runId);
    if (f?.status === "Succeeded") {
      runLatencies.push(f.at - postAt);
      ids.push(runId);
    }
  }
  const steps: number[] = [];
  await pool(ids, 8, async (id) => {
    const res = await http("GET", `${s.engine.url}/namespaces/${s.namespace}/runs/${id}`);
    const run = JSON.parse(res.text) as {
      steps: Array<{ attempts: Array<{ dispatchedAt: string; finishedAt?: string }> }>;
    };
    for (const st of run.steps) {
      const a = st.attempts[0];
      if (a?.finishedAt) steps.push(Date.parse(a.finishedAt) - Date.parse(a.dispatchedAt));
    }
  });
  const perStep = runLatencies.map((l) => l / CHAIN);
  const result: Latency = {
    policy,
    runs: runLatencies.length,
    runP50Ms: percentile(runLatencies, 50),
    runP99Ms: percentile(runLatencies, 99),
    perStepFromRunP50Ms: r1(percentile(perStep, 50)),
    perStepFromRunP99Ms: r1(percentile(perStep, 99)),
    stepP50Ms: percentile(steps, 50),
    stepP99Ms: percentile(steps, 99),
    load1: load1(),
  };
  console.log(
    `  latency signing ${policy}: run p50 ${result.runP50Ms} ms p99 ${result.runP99Ms} ms → per step p50 ${result.perStepFromRunP50Ms} ms ` +
      `p99 ${result.perStepFromRunP99Ms} ms; step dispatch→applied p50 ${result.stepP50Ms} ms p99 ${result.stepP99Ms} ms (load ${result.load1})`,
  );
  return result;
}

// =========================================================================================================
// Baselines
// =========================================================================================================

interface KafkaBaseline {
  rttP50Ms: number;
  rttP99Ms: number;
  oneWayP50Ms: number;
  oneWayP99Ms: number;
  /** Pipelined ping → echo (one acks=all send per record, like the worker) → pong, round trips per second. */
  echoRoundTripsPerSecond: number;
  load1: number;
}

async function kafkaBaseline(s: Setup): Promise<KafkaBaseline> {
  const producer = s.kafka.producer();
  await producer.connect();
  const waiters = new Map<string, (r: IncomingRecord) => void>();
  let pongs = 0;
  const consumer = s.kafka.consumer({
    groupId: `bench-pong-${hex(4)}`,
    sessionTimeoutMs: 6_000,
    autoCommit: false,
  });
  await consumer.connect();
  await consumer.subscribe([s.echo.pong], false);
  const joined = consumer.onceJoined();
  await consumer.runEach(
    async (record) => {
      pongs++;
      const key = record.key?.toString() ?? "";
      waiters.get(key)?.(record);
      waiters.delete(key);
    },
    { partitionsConsumedConcurrently: 3 },
  );
  await joined;
  const ping = async (key: string): Promise<{ rtt: number; oneWay: number }> => {
    const got = new Promise<IncomingRecord>((resolve) => waiters.set(key, resolve));
    const sentAt = nowMs();
    await producer.send(s.echo.ping, [{ key, value: key }]);
    const record = await Promise.race([
      got,
      sleep(30_000).then(() => {
        throw new Error("no pong within 30 s");
      }),
    ]);
    const doneAt = nowMs();
    return { rtt: doneAt - sentAt, oneWay: Number(record.headers["bench-read-at"]?.toString()) - sentAt };
  };
  // The echo's consumer group may still be joining: the first pings wait for it.
  for (let i = 0; i < 30; i++) await ping(`warm-${hex(6)}`);
  const rtts: number[] = [];
  const oneWays: number[] = [];
  for (let i = 0; i < 300; i++) {
    const r = await ping(`rtt-${hex(6)}`);
    rtts.push(r.rtt);
    oneWays.push(r.oneWay);
  }
  // Pipelined: 6000 pings in sends of 50, 8 sends in flight.
  const n = 6000;
  const start = pongs;
  const t0 = Date.now();
  await pool(
    Array.from({ length: n / 50 }, (_, i) => i),
    8,
    async (b) => {
      await producer.send(
        s.echo.ping,
        Array.from({ length: 50 }, (_, j) => ({ key: `tp-${b}-${j}`, value: "x" })),
      );
    },
  );
  const deadline = Date.now() + 120_000;
  while (pongs - start < n && Date.now() < deadline) await sleep(10);
  const seconds = (Date.now() - t0) / 1000;
  await consumer.close();
  await producer.close();
  const result: KafkaBaseline = {
    rttP50Ms: r2(percentile(rtts, 50)),
    rttP99Ms: r2(percentile(rtts, 99)),
    oneWayP50Ms: r2(percentile(oneWays, 50)),
    oneWayP99Ms: r2(percentile(oneWays, 99)),
    echoRoundTripsPerSecond: Math.round((pongs - start) / seconds),
    load1: load1(),
  };
  console.log(
    `  raw Kafka: produce→consume one way p50 ${result.oneWayP50Ms} ms p99 ${result.oneWayP99Ms} ms; round trip (ping→echo→pong) ` +
      `p50 ${result.rttP50Ms} ms p99 ${result.rttP99Ms} ms; pipelined echo ${result.echoRoundTripsPerSecond} round trips/s (load ${result.load1})`,
  );
  return result;
}

interface CryptoCost {
  /** Main-thread CPU µs per call (median of rounds). */
  signCommandUs: number;
  verifyCommandUs: number;
  signResultUs: number;
  verifyResultUs: number;
  /** Per step: 2 signs + 2 verifies. */
  perStepUs: number;
  /** Transitions/s the cryptography alone allows on one core, and on every core of this machine. */
  boundOneCore: number;
  boundAllCores: number;
  /** The same with the record encoding/decoding around them (sign + encodeRecord, verifyRecord). */
  perStepWithBindingUs: number;
  load1: number;
}

function cpuMicros(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

/** Median over rounds of main-thread CPU µs per call. */
function cost(fn: (i: number) => unknown, iterations = 1500, rounds = 7): number {
  const perCall: number[] = [];
  let sink = 0;
  for (let round = -1; round < rounds; round++) {
    const c0 = cpuMicros();
    for (let i = 0; i < iterations; i++) sink += fn((round + 1) * iterations + i) ? 1 : 0;
    const us = (cpuMicros() - c0) / iterations;
    if (round >= 0) perCall.push(us);
  }
  if (sink < 0) console.log(sink);
  return median(perCall);
}

function cryptoCost(s: Setup): CryptoCost {
  const p = s.provisioned.required;
  const workerKey = p.workerKeys[WORKER.required];
  if (!workerKey) throw new Error("no worker key");
  const ns = p.namespace;
  const o = p.name;
  const engineSigner = new Signer(p.engineKey);
  const workerSigner = new Signer(workerKey);
  // As the Responder verifies commands and the engine verifies results (results.ts).
  const workerVerifier = new Verifier(p.trust, {
    policy: "required",
    requiredExtensions: ["partitionkey", "step", "attempt", "action", "destination"],
  });
  const engineVerifier = new Verifier(p.trust, {
    policy: "required",
    requiredExtensions: RESULT_SIGNED_EXTENSIONS,
  });
  const topic = stepTopic({ namespace: ns, orchestration: o }, "charge", { prefix: s.prefix });
  const N = 64;
  const commands: CloudEvent[] = [];
  const results: CloudEvent[] = [];
  for (let i = 0; i < N; i++) {
    const runId = `${hex(4)}-${hex(2)}-${hex(2)}-${hex(2)}-${hex(6)}`;
    commands.push({
      id: `${runId}.charge.do.1`,
      source: orchestrationSource(ns, o),
      specversion: "1.0",
      type: "com.example.charge",
      datacontenttype: "application/json",
      subject: "charge",
      time: new Date().toISOString(),
      extensions: {
        partitionkey: runId,
        runid: runId,
        step: "charge",
        attempt: "1",
        action: "do",
        destination: topic,
      },
      data: Buffer.from(JSON.stringify({ input: { n: i }, steps: { reserve: { step: "reserve" } } })),
    });
    results.push({
      id: hex(16),
      source: stepSource(ns, o, "charge"),
      specversion: "1.0",
      type: "io.eventloom.step.completed",
      datacontenttype: "application/json",
      subject: "charge",
      time: new Date().toISOString(),
      extensions: {
        partitionkey: runId,
        runid: runId,
        step: "charge",
        attempt: "1",
        action: "do",
        causationid: `${runId}.charge.do.1`,
      },
      data: Buffer.from(JSON.stringify({ step: "charge" })),
    });
  }
  const signedCommands = commands.map((e) => engineSigner.sign(e));
  const signedResults = results.map((e) => workerSigner.sign(e));
  const commandRecords = signedCommands.map((e) => {
    const m = encodeRecord(e);
    return {
      key: Buffer.from(m.key ?? ""),
      value: m.value,
      headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)])),
    };
  });
  const resultRecords = signedResults.map((e) => {
    const m = encodeRecord(e);
    return {
      key: Buffer.from(m.key ?? ""),
      value: m.value,
      headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)])),
    };
  });
  for (const e of signedCommands)
    if (!workerVerifier.verify(e).ok) throw new Error("command does not verify");
  for (const e of signedResults) if (!engineVerifier.verify(e).ok) throw new Error("result does not verify");
  if (!decodeRecord(commandRecords[0] as never).ok) throw new Error("record does not decode");
  const at = <T>(a: T[], i: number): T => a[i % a.length] as T;
  const signCommandUs = cost((i) => engineSigner.sign(at(commands, i)));
  const verifyCommandUs = cost((i) => workerVerifier.verify(at(signedCommands, i)).ok);
  const signResultUs = cost((i) => workerSigner.sign(at(results, i)));
  const verifyResultUs = cost((i) => engineVerifier.verify(at(signedResults, i)).ok);
  const signEncodeCmd = cost((i) => encodeRecord(engineSigner.sign(at(commands, i))));
  const verifyRecordCmd = cost((i) => workerVerifier.verifyRecord(at(commandRecords, i)).ok);
  const signEncodeRes = cost((i) => encodeRecord(workerSigner.sign(at(results, i))));
  const verifyRecordRes = cost((i) => engineVerifier.verifyRecord(at(resultRecords, i)).ok);
  const perStepUs = signCommandUs + verifyCommandUs + signResultUs + verifyResultUs;
  const result: CryptoCost = {
    signCommandUs: r1(signCommandUs),
    verifyCommandUs: r1(verifyCommandUs),
    signResultUs: r1(signResultUs),
    verifyResultUs: r1(verifyResultUs),
    perStepUs: r1(perStepUs),
    boundOneCore: Math.round(1e6 / perStepUs),
    boundAllCores: Math.round((1e6 / perStepUs) * cpus().length),
    perStepWithBindingUs: r1(signEncodeCmd + verifyRecordCmd + signEncodeRes + verifyRecordRes),
    load1: load1(),
  };
  console.log(
    `  crypto (CPU µs): sign command ${result.signCommandUs}, verify command ${result.verifyCommandUs}, sign result ${result.signResultUs}, ` +
      `verify result ${result.verifyResultUs} → ${result.perStepUs} µs per step (with binding ${result.perStepWithBindingUs} µs); ` +
      `bound ${result.boundOneCore}/s per core, ${result.boundAllCores}/s on ${cpus().length} cores (load ${result.load1})`,
  );
  return result;
}

// =========================================================================================================
// The view scan after every commit (engine.ts `commit`: metrics.activeRuns.set(view.activeRuns()))
// =========================================================================================================

interface ViewScan {
  runs: number;
  /** Bytes of one finished 3-step run's state record value (JSON), and of the spec it carries. */
  stateBytes: number;
  specBytes: number;
  /** Main-thread CPU µs of one `StateView.activeRuns()` call. */
  us: number;
  nsPerRun: number;
}

/** A finished 3-step run as the engine keeps it (built with the engine's own state machine). */
function finishedRun(p: ProvisionedOrchestration): RunState {
  const t0 = Date.now();
  let t = startRun(
    {
      runId: randomUUID(),
      namespace: p.namespace,
      orchestration: p.name,
      generation: 1,
      spec: p.orchestration.spec,
      input: { n: 1 },
      inputHash: inputHash({ n: 1 }),
      trace: newTrace(),
    },
    t0,
    { ready: true },
  );
  for (const [i, step] of STEPS.entries()) {
    const dispatch = t.effects.find(
      (e): e is { kind: "dispatch"; command: CommandSpec } => e.kind === "dispatch",
    );
    t = applyResult(
      t.state,
      {
        step,
        action: "do",
        attempt: 1,
        eventId: randomUUID(),
        outcome: "completed",
        output: { step },
        ...(dispatch ? { causationId: dispatch.command.commandId } : {}),
      },
      t0 + i + 1,
    );
  }
  if (t.state.status !== "Succeeded") throw new Error(`synthetic run is ${t.state.status}`);
  return t.state;
}

/** `StateView.activeRuns()` over views holding `sizes` finished runs (each a separate object, as decoded). */
function viewScan(s: Setup, sizes: number[]): ViewScan[] {
  const template = JSON.stringify(finishedRun(s.provisioned.none));
  const out: ViewScan[] = [];
  for (const size of sizes) {
    const view = new StateView(s.kafka, { topic: "unused", log: createLogger("bench-view", "warn") });
    for (let i = 0; i < size; i++) {
      const state = JSON.parse(template) as RunState;
      state.runId = randomUUID();
      view.applyLocal(state, i % 6);
    }
    if (view.activeRuns() !== 0) throw new Error("synthetic runs are active");
    const iterations = Math.max(5, Math.round(2_000_000 / size));
    const us = cost(() => view.activeRuns(), iterations, 5);
    out.push({
      runs: size,
      stateBytes: Buffer.byteLength(template),
      specBytes: Buffer.byteLength(JSON.stringify(s.provisioned.none.orchestration.spec)),
      us: r1(us),
      nsPerRun: r1((us * 1000) / size),
    });
  }
  console.log(
    `  StateView.activeRuns() (called by every commit): ${out.map((v) => `${v.runs} runs ${v.us} µs`).join(", ")} (load ${load1()}); ` +
      `a finished run's state record: ${out[0]?.stateBytes} bytes of JSON, ${out[0]?.specBytes} of them the spec`,
  );
  return out;
}

// =========================================================================================================
// Memory
// =========================================================================================================

interface MemoryResult {
  runs: number;
  idle: Memory;
  loaded: Memory;
  drained: Memory;
  /** MiB for HOLD_RUNS active runs (loaded − idle). */
  heapMiB: number;
  rssMiB: number;
  /** Of which the run API's copies of accepted runs (loaded − drained, heap). */
  acceptedMapHeapMiB: number;
  /** After GET released those copies (drained − idle). */
  heapWithoutAcceptedMiB: number;
  rssWithoutAcceptedMiB: number;
  bytesPerRun: number;
  load1: number;
}

const MiB = 2 ** 20;

async function memoryTest(s: Setup, runs: number): Promise<MemoryResult> {
  const idle = await s.engine.memory();
  const m0 = await s.engine.metrics();
  const commands0 = m0.get("eventloom_engine_commands_sent_total:sum") ?? 0;
  const submitted = await submit(s, ORCH.hold, runs);
  const deadline = Date.now() + 300_000;
  for (;;) {
    const m = await s.engine.metrics();
    const active = m.get("eventloom_engine_active_runs") ?? 0;
    const sent = (m.get("eventloom_engine_commands_sent_total:sum") ?? 0) - commands0;
    if (active >= runs && sent >= runs) break;
    if (Date.now() > deadline) throw new Error(`only ${active} active runs and ${sent} commands after 300 s`);
    await sleep(500);
  }
  await sleep(2_000);
  const loaded = await s.engine.memory();
  // A GET of a run the view knows drops the API's copy of it (api.ts `lookup`).
  await pool(submitted, 16, async (x) => {
    await http("GET", `${s.engine.url}/namespaces/${s.namespace}/runs/${x.runId}`);
  });
  const drained = await s.engine.memory();
  const result: MemoryResult = {
    runs,
    idle,
    loaded,
    drained,
    heapMiB: r1((loaded.heapUsed - idle.heapUsed) / MiB),
    rssMiB: r1((loaded.rss - idle.rss) / MiB),
    acceptedMapHeapMiB: r1((loaded.heapUsed - drained.heapUsed) / MiB),
    heapWithoutAcceptedMiB: r1((drained.heapUsed - idle.heapUsed) / MiB),
    rssWithoutAcceptedMiB: r1((drained.rss - idle.rss) / MiB),
    bytesPerRun: Math.round((loaded.heapUsed - idle.heapUsed) / runs),
    load1: load1(),
  };
  console.log(
    `  memory, ${runs} active runs: heap +${result.heapMiB} MiB, RSS +${result.rssMiB} MiB (idle heap ${r1(idle.heapUsed / MiB)} MiB, ` +
      `RSS ${r1(idle.rss / MiB)} MiB); of it the API's accepted-run copies ${result.acceptedMapHeapMiB} MiB ` +
      `(after GETs: heap +${result.heapWithoutAcceptedMiB} MiB, RSS +${result.rssWithoutAcceptedMiB} MiB) (load ${result.load1})`,
  );
  return result;
}

// =========================================================================================================
// CPU profile
// =========================================================================================================

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, fn: string): string {
  if (url === "") return fn.startsWith("(") ? fn : `native ${fn}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] ?? url;
  const file = url.replace(/^file:\/\//, "");
  if (file.startsWith(root)) return file.slice(root.length);
  if (url.startsWith("node:"))
    return url
      .replace(/^node:internal\//, "node:")
      .split("/")
      .slice(0, 2)
      .join("/");
  return url;
}

interface ProfileSummary {
  sampledMs: number;
  idleMs: number;
  busyMs: number;
  topSelf: Array<{ frame: string; ms: number; pctOfBusy: number }>;
  byArea: Array<{ area: string; ms: number; pctOfBusy: number }>;
  inclusive: Array<{ frame: string; ms: number; pctOfBusy: number }>;
}

function summarizeProfile(path: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => {
    const f = n.callFrame;
    const where =
      f.url === "" ? "" : ` ${f.url.replace(/^file:\/\//, "").replace(root, "")}:${f.lineNumber + 1}`;
    return `${f.functionName || "(anonymous)"}${where}`;
  };
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const node = byId.get(profile.samples[i] ?? -1);
    if (!node) continue;
    total += dt;
    const fn = node.callFrame.functionName;
    if (fn === "(idle)") {
      idle += dt;
      continue;
    }
    const l = label(node);
    self.set(l, (self.get(l) ?? 0) + dt);
    const a = area(node.callFrame.url, fn);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n) break;
      const k = label(n);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const top = (m: Map<string, number>, k: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([frame, ms]) => ({ frame, ms: Math.round(ms), pctOfBusy: r1((ms / busy) * 100) }));
  return {
    sampledMs: Math.round(total),
    idleMs: Math.round(idle),
    busyMs: Math.round(busy),
    topSelf: top(self, 30),
    byArea: top(areas, 25).map(({ frame, ms, pctOfBusy }) => ({ area: frame, ms, pctOfBusy })),
    inclusive: top(inclusive, 60),
  };
}

// =========================================================================================================
// Main
// =========================================================================================================

interface RepeatResult {
  repeat: number;
  kafka: KafkaBaseline;
  crypto: CryptoCost;
  throughput: Record<"none" | "required", Throughput>;
  /** Batch starts (POST .../runs/batch); absent in results saved before it existed. */
  batch?: Record<"none" | "required", Throughput>;
  /** Backlog mode (start records straight into the inbox). */
  backlog: Record<"none" | "required", Throughput>;
  latency: Record<"none" | "required", Latency>;
  memory: MemoryResult;
  viewScan: ViewScan[];
  /** Signing none through the API again, with the memory test's held runs still in the engine's view. */
  withHeldRuns: Throughput;
  idleAfterStart: Memory;
  profiled?: { throughput: Throughput; profile: ProfileSummary; path: string };
}

async function repeat(n: number, profile: boolean): Promise<RepeatResult> {
  console.log(`repeat ${n}/${REPEATS} (load ${loadText()})`);
  const s = await setUp(`r${n}`);
  try {
    const idleAfterStart = await s.engine.memory();
    const kafka = PHASES.has("baseline") ? await kafkaBaseline(s) : (undefined as unknown as KafkaBaseline);
    const crypto = PHASES.has("baseline") ? cryptoCost(s) : (undefined as unknown as CryptoCost);
    // Warm-up: JIT, connections, consumer fetch sessions of every topic.
    for (const policy of POLICIES) await throughput(s, policy, WARMUP_RUNS, "warm-up");
    const order = (n % 2 === 1 ? ["none", "required"] : ["required", "none"]).filter((p) =>
      POLICIES.includes(p as "none" | "required"),
    ) as Array<"none" | "required">;
    const tp = {} as Record<"none" | "required", Throughput>;
    if (PHASES.has("api"))
      for (const policy of order) tp[policy] = await throughput(s, policy, RUNS, "measured");
    const batch = {} as Record<"none" | "required", Throughput>;
    if (PHASES.has("batch"))
      for (const policy of order) batch[policy] = await throughput(s, policy, RUNS, "batch   ", "batch");
    const backlog = {} as Record<"none" | "required", Throughput>;
    if (PHASES.has("backlog"))
      for (const policy of order) backlog[policy] = await throughput(s, policy, RUNS, "backlog ", "inbox");
    const lat = {} as Record<"none" | "required", Latency>;
    if (PHASES.has("latency"))
      for (const policy of POLICIES) lat[policy] = await latency(s, policy, LATENCY_RUNS);
    let profiled: RepeatResult["profiled"];
    if (profile) {
      const path = join(s.dir, "engine.cpuprofile");
      await s.engine.profileStart();
      const t = await throughput(s, "none", RUNS, "profiled");
      await s.engine.profileStop(path);
      profiled = { throughput: t, profile: summarizeProfile(path), path };
      if (PARTIAL) printProfile(profiled.profile);
    }
    let memory = undefined as unknown as MemoryResult;
    let withHeldRuns = undefined as unknown as Throughput;
    let scan: ViewScan[] = [];
    if (PHASES.has("memory")) {
      memory = await memoryTest(s, HOLD_RUNS);
      withHeldRuns = await throughput(s, "none", RUNS, `+${HOLD_RUNS} held`);
      scan = viewScan(s, [5_000, 50_000]);
    }
    return {
      repeat: n,
      kafka,
      crypto,
      throughput: tp,
      batch,
      backlog,
      latency: lat,
      memory,
      viewScan: scan,
      withHeldRuns,
      idleAfterStart,
      ...(profiled ? { profiled } : {}),
    };
  } catch (err) {
    console.error(`engine output:\n${s.engine.output()}\nworker output:\n${s.worker.output()}`);
    throw err;
  } finally {
    await tearDown(s);
  }
}

/** A profile summary on the console (partial runs, which render no tables). */
function printProfile(p: ProfileSummary): void {
  console.log(`  profile: ${p.busyMs} ms busy, ${p.idleMs} ms idle`);
  for (const a of p.byArea.slice(0, 20)) console.log(`    ${String(a.pctOfBusy).padStart(5)} %  ${a.area}`);
  console.log("  top self frames:");
  for (const f of p.topSelf.slice(0, 30)) console.log(`    ${String(f.pctOfBusy).padStart(5)} %  ${f.frame}`);
  console.log("  top inclusive frames:");
  for (const f of p.inclusive.slice(0, 60))
    console.log(`    ${String(f.pctOfBusy).padStart(5)} %  ${f.frame}`);
}

interface BenchResult {
  machine: string;
  loadAverage: { before: string; after: string };
  config: Record<string, unknown>;
  repeats: RepeatResult[];
  lines?: string[];
  markdown?: string;
}

/** The result lines and the BENCHMARKS.md tables, from the measurements (also `--report`, from the saved JSON). */
function render(result: BenchResult): { lines: string[]; markdown: string } {
  const repeats = result.repeats;
  const ncpu = Number(/^(\d+) cores/.exec(result.machine)?.[1] ?? cpus().length);
  const holdRuns = repeats[0]?.memory.runs ?? HOLD_RUNS;
  const runs = repeats[0]?.throughput.none.runs ?? RUNS;
  const med = (f: (r: RepeatResult) => number) => median(repeats.map(f));
  const each = (f: (r: RepeatResult) => number | string) => repeats.map(f).join(", ");
  const loadOf = (f: (r: RepeatResult) => number) => repeats.map((r) => f(r).toFixed(2)).join(" / ");
  const tpNone = Math.round(med((r) => r.throughput.none.transitionsPerSecond));
  const tpReq = Math.round(med((r) => r.throughput.required.transitionsPerSecond));
  const boundAll = Math.round(med((r) => r.crypto.boundAllCores));
  const boundOne = Math.round(med((r) => r.crypto.boundOneCore));
  const stepP99 = r1(med((r) => r.latency.none.perStepFromRunP99Ms));
  const rttP99 = r2(med((r) => r.kafka.rttP99Ms));
  const heap = r1(med((r) => r.memory.heapMiB));
  const rss = r1(med((r) => r.memory.rssMiB));
  const hasBatch = repeats.every((r) => r.batch?.none !== undefined);
  const batchSize = Number(result.config.batchSize ?? BATCH_SIZE);
  const batchOf = (r: RepeatResult, p: "none" | "required") => r.batch?.[p] as Throughput;
  const lines = [
    `engine, signing none, one run per POST: ${tpNone} transitions/s (load ${loadOf((r) => r.throughput.none.load1Before)})`,
    ...(hasBatch
      ? [
          `engine, signing none, batch starts (${batchSize} runs per POST): ${Math.round(med((r) => batchOf(r, "none").transitionsPerSecond))} transitions/s (load ${loadOf((r) => batchOf(r, "none").load1Before)})`,
        ]
      : []),
    `engine, signing required: ${tpReq} transitions/s; cryptography alone: ${boundAll} transitions/s on ${ncpu} cores, ${boundOne} on one (load ${loadOf((r) => r.throughput.required.load1Before)})`,
    `engine, p99 latency added per step: ${stepP99} ms; raw Kafka produce→consume round trip p99 ${rttP99} ms (load ${loadOf((r) => r.latency.none.load1)})`,
    `engine, memory per ${holdRuns.toLocaleString("en")} active runs: +${heap} MiB heap, +${rss} MiB RSS (load ${loadOf((r) => r.memory.load1)})`,
  ];
  const t = (label: string, pick: (r: RepeatResult) => Throughput, baseline: string) =>
    `| ${label} | **${Math.round(med((r) => pick(r).transitionsPerSecond))} transitions/s** | ${baseline} | ${each((r) => pick(r).transitionsPerSecond)} | ${loadOf((r) => pick(r).load1Before)} |`;
  const figures = [
    `| Figure (${repeats.length === 1 ? "1 repeat" : `median of ${repeats.length} repeats`}) | Engine | Baseline measured in the same repeat | Each repeat | Load (1 min) per repeat |`,
    "| --- | --- | --- | --- | --- |",
    t(
      `Signing none: ${runs} runs × ${CHAIN} steps through the run API`,
      (r) => r.throughput.none,
      `pipelined Kafka echo (one acks=all send per record, as the worker does): ${Math.round(med((r) => r.kafka.echoRoundTripsPerSecond))} round trips/s (${each((r) => r.kafka.echoRoundTripsPerSecond)})`,
    ),
    t(
      "Signing required, same",
      (r) => r.throughput.required,
      `cryptography alone: **${boundAll}/s** on ${ncpu} cores, ${boundOne}/s on one (2 signs + 2 verifies = ${r1(med((r) => r.crypto.perStepUs))} µs CPU per step)`,
    ),
    ...(hasBatch
      ? [
          t(
            `Signing none: ${runs} runs through the batch start, ${batchSize} per POST`,
            (r) => batchOf(r, "none"),
            `one run per POST: ${tpNone}; the API accepted ${Math.round(med((r) => batchOf(r, "none").runsAcceptedPerSecond))} runs/s (one per POST: ${Math.round(med((r) => r.throughput.none.runsAcceptedPerSecond))})`,
          ),
          t("Signing required, batch starts", (r) => batchOf(r, "required"), `one run per POST: ${tpReq}`),
        ]
      : []),
    t(
      `Signing none, backlog: ${runs} start records written straight to the inbox`,
      (r) => r.backlog.none,
      `through the API: ${tpNone}`,
    ),
    t("Signing required, backlog", (r) => r.backlog.required, `through the API: ${tpReq}`),
    t(
      `Signing none through the API, ${holdRuns.toLocaleString("en")} held runs in the engine's view`,
      (r) => r.withHeldRuns,
      `without them: ${tpNone}/s; engine thread ${r1(med((r) => r.withHeldRuns.cpu.msPerTransition.engineMainThread * 1000))} vs ${r1(med((r) => r.throughput.none.cpu.msPerTransition.engineMainThread * 1000))} µs CPU per transition`,
    ),
    `| p99 latency per step, light load (run latency / ${CHAIN}), signing none | **${stepP99} ms** (p50 ${r1(med((r) => r.latency.none.perStepFromRunP50Ms))}) | raw Kafka produce→consume round trip (ping → echo → pong) p99 **${rttP99} ms** (p50 ${r2(med((r) => r.kafka.rttP50Ms))}); one way p99 ${r2(med((r) => r.kafka.oneWayP99Ms))} ms (p50 ${r2(med((r) => r.kafka.oneWayP50Ms))}) | ${each((r) => r.latency.none.perStepFromRunP99Ms)} | ${loadOf((r) => r.latency.none.load1)} |`,
    `| p99 latency per step, light load, signing required | ${r1(med((r) => r.latency.required.perStepFromRunP99Ms))} ms (p50 ${r1(med((r) => r.latency.required.perStepFromRunP50Ms))}) | same | ${each((r) => r.latency.required.perStepFromRunP99Ms)} | ${loadOf((r) => r.latency.required.load1)} |`,
    `| p99 of each step's dispatch → result applied (engine clock), signing none | ${r1(med((r) => r.latency.none.stepP99Ms))} ms (p50 ${r1(med((r) => r.latency.none.stepP50Ms))}) | same | ${each((r) => r.latency.none.stepP99Ms)} | |`,
    `| Memory per ${holdRuns.toLocaleString("en")} active runs (full GC before and after) | **+${heap} MiB heap**, +${rss} MiB RSS (${Math.round(med((r) => r.memory.bytesPerRun))} B heap per run) | engine before them: heap ${r1(med((r) => r.memory.idle.heapUsed / MiB))} MiB, RSS ${r1(med((r) => r.memory.idle.rss / MiB))} MiB; just started, no run yet: heap ${r1(med((r) => r.idleAfterStart.heapUsed / MiB))} MiB, RSS ${r1(med((r) => r.idleAfterStart.rss / MiB))} MiB | ${each((r) => `${r.memory.heapMiB} / ${r.memory.rssMiB}`)} | ${loadOf((r) => r.memory.load1)} |`,
    `| … of which the run API's copy of each accepted run | ${r1(med((r) => r.memory.acceptedMapHeapMiB))} MiB heap | after one GET of each run: +${r1(med((r) => r.memory.heapWithoutAcceptedMiB))} MiB heap | ${each((r) => r.memory.acceptedMapHeapMiB)} | |`,
    ...(repeats[0]?.viewScan ?? []).map(
      (v, i) =>
        `| \`StateView.activeRuns()\`, run by every commit, ${v.runs.toLocaleString("en")} runs in the view | ${r1(med((r) => r.viewScan[i]?.us ?? NaN))} µs CPU per call (${r1(med((r) => r.viewScan[i]?.nsPerRun ?? NaN))} ns per run) | | ${each((r) => r.viewScan[i]?.us ?? NaN)} | |`,
    ),
  ];
  const cpuOf = (label: string, pick: (r: RepeatResult) => Throughput) => {
    const c = (k: keyof CpuUse["msPerTransition"]) =>
      Math.round(med((r) => pick(r).cpu.msPerTransition[k] * 1000));
    const cores = (k: keyof CpuUse["cores"]) => r2(med((r) => pick(r).cpu.cores[k]));
    return (
      `| ${label} | ${c("engine")} (${c("engineMainThread")}) | ${c("worker")} | ${c("broker")} | ${c("client")} | ` +
      `${cores("engine")} (${cores("engineMainThread")}) | ${cores("worker")} | ${cores("broker")} | ${cores("machine")} / ${ncpu} | ` +
      `${Math.round(med((r) => pick(r).cpu.capacityAllCores))} | ${Math.round(med((r) => pick(r).cpu.capacityEngineThread))} |`
    );
  };
  const cpuTable = [
    "| Run (medians) | Engine µs CPU per transition (main thread) | Worker | Broker | Client | Engine cores used (main thread) | Worker | Broker | Machine busy, all users | /s if the machine were ours | /s the engine thread allows |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    cpuOf("API, none", (r) => r.throughput.none),
    cpuOf("API, required", (r) => r.throughput.required),
    ...(hasBatch
      ? [
          cpuOf("batch, none", (r) => batchOf(r, "none")),
          cpuOf("batch, required", (r) => batchOf(r, "required")),
        ]
      : []),
    cpuOf("backlog, none", (r) => r.backlog.none),
    cpuOf("backlog, required", (r) => r.backlog.required),
    cpuOf(`API, none, +${holdRuns.toLocaleString("en")} held runs`, (r) => r.withHeldRuns),
  ];
  const cryptoTable = [
    "| Per event, main-thread CPU µs (medians) | Sign | Verify |",
    "| --- | --- | --- |",
    `| Command (engine signs, worker verifies) | ${r1(med((r) => r.crypto.signCommandUs))} | ${r1(med((r) => r.crypto.verifyCommandUs))} |`,
    `| Result (worker signs, engine verifies) | ${r1(med((r) => r.crypto.signResultUs))} | ${r1(med((r) => r.crypto.verifyResultUs))} |`,
    `| Per step: 2 signs + 2 verifies | ${r1(med((r) => r.crypto.perStepUs))} µs → ${boundOne}/s per core, ${boundAll}/s on ${ncpu} cores | with the Kafka binding (sign + encodeRecord, verifyRecord): ${r1(med((r) => r.crypto.perStepWithBindingUs))} µs |`,
  ];
  const prof = repeats.find((r) => r.profiled)?.profiled;
  const profileLines = prof
    ? [
        `Engine CPU profile (V8 sampling, 0.5 ms) of an extra signing-none run through the API in repeat ${repeats.findIndex((r) => r.profiled) + 1} ` +
          `(${prof.throughput.transitionsPerSecond} transitions/s while profiled, ${prof.throughput.succeeded} runs), main thread: ${prof.profile.busyMs} ms busy, ${prof.profile.idleMs} ms idle.`,
        "",
        "| Self time by module | % of busy |",
        "| --- | --- |",
        ...prof.profile.byArea.slice(0, 16).map((a) => `| ${a.area} | ${a.pctOfBusy} |`),
        "",
        "| Top self frames | % of busy |",
        "| --- | --- |",
        ...prof.profile.topSelf.slice(0, 20).map((f) => `| \`${f.frame}\` | ${f.pctOfBusy} |`),
      ]
    : [];
  const markdown = [...figures, "", ...cpuTable, "", ...cryptoTable, "", ...profileLines].join("\n");
  return { lines, markdown };
}

async function main(): Promise<void> {
  stackEnv();
  kubectl(["apply", "-f", `${root}crds/`]);
  kubectl([
    "wait",
    "--for=condition=Established",
    "crd/orchestrations.eventloom.io",
    "crd/workers.eventloom.io",
    "--timeout=60s",
  ]);
  const machineLine = machine();
  const loadBefore = loadText();
  console.log(`machine: ${machineLine}\nload average (1, 5, 15 min): ${loadBefore}`);
  const repeats: RepeatResult[] = [];
  for (let n = 1; n <= REPEATS; n++) repeats.push(await repeat(n, PROFILE && n === REPEATS));
  if (PARTIAL) {
    console.log(
      `\npartial run (BENCH_PHASES=${[...PHASES].join(",")}, BENCH_POLICIES=${POLICIES.join(",")}): no result file, no tables` +
        `\nload average (1, 5, 15 min): before ${loadBefore}; after ${loadText()}`,
    );
    return;
  }
  const result: BenchResult = {
    machine: machineLine,
    loadAverage: { before: loadBefore, after: loadText() },
    config: {
      repeats: REPEATS,
      runs: RUNS,
      warmupRuns: WARMUP_RUNS,
      latencyRuns: LATENCY_RUNS,
      holdRuns: HOLD_RUNS,
      chain: CHAIN,
      clientConnections: CLIENT_CONNECTIONS,
      batchSize: BATCH_SIZE,
      batchConcurrency: BATCH_CONCURRENCY,
      worker: "services/engine/testing/responder.ts, no-op (answers completed), in its own process",
    },
    repeats,
  };
  const { lines, markdown } = render(result);
  const path = writeResult("engine", { ...result, lines, markdown });
  console.log(`\n${lines.join("\n")}\n\n${markdown}`);
  console.log(
    `\nresults: ${path}\nload average (1, 5, 15 min): before ${loadBefore}; after ${result.loadAverage.after}`,
  );
}

if (process.argv.includes("--worker")) {
  const cfg = process.argv[process.argv.indexOf("--worker") + 1];
  if (!cfg) throw new Error("--worker needs a config path");
  await workerMain(cfg);
} else if (process.argv.includes("--report")) {
  // Re-renders the lines and tables from bench/results/engine.json (no measuring).
  const saved = JSON.parse(readFileSync(`${root}bench/results/engine.json`, "utf8")) as BenchResult;
  const result: BenchResult = {
    machine: saved.machine,
    loadAverage: saved.loadAverage,
    config: saved.config,
    repeats: saved.repeats,
  };
  const { lines, markdown } = render(result);
  writeResult("engine", { ...result, lines, markdown });
  console.log(
    `machine: ${result.machine}\nload average (1, 5, 15 min): before ${result.loadAverage.before}; after ${result.loadAverage.after}\n\n${lines.join("\n")}\n\n${markdown}`,
  );
} else {
  await main();
  process.exit(0);
}
