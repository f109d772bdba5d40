/**
 * The kill test: many runs in flight while the engine process (`services/engine/main.ts`,
 * spawned as a child) is SIGKILLed twice and restarted. Runs are submitted through the
 * engine's HTTP run API with Idempotency-Keys, and a submission that hit a dying engine is
 * retried against the next one. Afterwards every run is finished, the counts are exact (one
 * run per key, the expected number Succeeded and Failed), and the in-test worker applied no
 * side effect twice: each (run, step, action) exactly once.
 *
 * ENGINE_KILL_RUNS (default 1000, as the issue asks; about 70 s here) sets the number of runs.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import type { Orchestration } from "../../operator/crds/types.ts";
import { createLogger } from "../../operator/runtime/log.ts";
import { idempotentRunId } from "../../services/engine/api.ts";
import { isTerminal } from "../../services/engine/model.ts";
import { deleteTopics, provisionOrchestration } from "../../services/engine/testing/provision.ts";
import { Responder } from "../../services/engine/testing/responder.ts";
import { engineInboxTopic, engineStateTopic } from "../../services/engine/topics.ts";
import { StateView } from "../../services/engine/view.ts";
import { eventually, kafka, kubeConfig, kubectl, stack, uniqueName } from "./support/stack.ts";

const RUNS = Number(process.env.ENGINE_KILL_RUNS ?? "1000");
const FAIL_EVERY = 5; // every 5th run's last step fails, so its two completed steps are compensated
const root = fileURLToPath(new URL("../..", import.meta.url));
const kc = kubeConfig();
const client = kafka("engine-kill-test");
const namespace = uniqueName("engine-kill");
const naming = { prefix: uniqueName("el") };
const topics = [engineInboxTopic(naming), engineStateTopic(naming)];
const children: Array<{ proc: ChildProcess; out: () => string }> = [];
let worker: Responder;
let view: StateView;

const manifest: Orchestration = {
  apiVersion: "eventloom.io/v1alpha1",
  kind: "Orchestration",
  metadata: { name: "kill-chain" },
  spec: {
    mode: "orchestrated",
    topics: { partitions: 2 },
    deletionPolicy: "Delete",
    steps: [
      { name: "reserve", type: "com.example.reserve", compensation: "com.example.release", timeout: "2m" },
      {
        name: "charge",
        type: "com.example.charge",
        dependsOn: ["reserve"],
        compensation: "com.example.refund",
        timeout: "2m",
      },
      { name: "ship", type: "com.example.ship", dependsOn: ["charge"], timeout: "2m" },
    ],
  },
};

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

interface EngineProcess {
  proc: ChildProcess;
  url: string;
  out: () => string;
}

async function spawnEngine(): Promise<EngineProcess> {
  const s = stack();
  const port = await freePort();
  const proc = spawn(process.execPath, ["--import", "tsx", `${root}/services/engine/main.ts`], {
    cwd: root,
    env: {
      ...process.env,
      KAFKA_BROKERS: s.kafkaBrokers,
      KUBECONFIG: s.kubeconfig,
      ENGINE_PORT: String(port),
      ENGINE_HOST: "127.0.0.1",
      ENGINE_PARTITIONS: "3",
      ENGINE_SESSION_TIMEOUT: "6s",
      ENGINE_RESTORE_GRACE: "1s",
      EVENTLOOM_TOPIC_PREFIX: naming.prefix,
      EVENTLOOM_NAMESPACE: namespace,
      OTEL_SDK_DISABLED: "true",
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  proc.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const child = { proc, url: `http://127.0.0.1:${port}`, out: () => out };
  children.push(child);
  await eventually(
    "the engine process to be ready",
    async () => {
      if (proc.exitCode !== null)
        throw new Error(`engine exited with ${proc.exitCode}:\n${out.slice(-3000)}`);
      const res = await fetch(`${child.url}/readyz`);
      return res.ok ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  return child;
}

function kill(engine: EngineProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => engine.proc.once("exit", () => resolve()));
  engine.proc.kill("SIGKILL");
  return exited;
}

beforeAll(async () => {
  expect((await kubectl(["apply", "-f", "crds/"])).code).toBe(0);
  await kubectl(["wait", "--for=condition=Established", "crd/orchestrations.eventloom.io", "--timeout=30s"]);
  expect((await kubectl(["create", "namespace", namespace])).code).toBe(0);
  const p = await provisionOrchestration(kc, client, {
    namespace,
    manifest,
    workers: [{ name: "kill-worker", steps: ["reserve", "charge", "ship"] }],
    naming,
  });
  topics.push(...p.topics);
  const key = p.workerKeys["kill-worker"];
  if (!key) throw new Error("no worker key");
  worker = new Responder({
    kafka: client,
    orchestration: p.orchestration,
    naming,
    trust: p.trust,
    key,
    behaviour: (c) =>
      c.step === "ship" && (c.data.input as { fail?: boolean }).fail
        ? { outcome: "failed", errorType: "ShippingUnavailable", errorMessage: "no courier" }
        : { outcome: "completed", output: { step: c.step, n: (c.data.input as { n: number }).n } },
  });
  await worker.start();
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  await worker?.stop();
  await view?.stop();
  await deleteTopics(client, topics);
  await kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]);
});

describe("the engine killed with SIGKILL while runs are in flight", () => {
  it(
    `loses no run and applies no side effect twice (${RUNS} runs, two kills)`,
    { timeout: 300_000 },
    async () => {
      onTestFailed(() => {
        for (const [i, c] of children.entries())
          console.error(`--- engine ${i} output ---\n${c.out().slice(-4000)}`);
        const runs = view?.list({ namespace }) ?? [];
        const open = runs.filter((r) => !isTerminal(r.status));
        console.error(
          `runs: ${runs.length}, open: ${open.length}`,
          JSON.stringify(open.slice(0, 3), null, 2),
        );
        console.error("worker refused:", worker.refused.slice(0, 5), "errors:", worker.errors.slice(0, 5));
      });
      let current = await spawnEngine();
      const log = createLogger("engine-kill-observer", "warn");
      view = new StateView(client, { topic: engineStateTopic(naming), log, sessionTimeoutMs: 6_000 });
      await view.start();
      const inFlight = (): number => view.list({ namespace }).filter((r) => !isTerminal(r.status)).length;
      const inFlightAtKill: number[] = [];
      const accepted = new Set<number>();
      let submitted = 0;

      /** Submits run i until some engine accepts it, following `current` across kills. */
      const submit = async (i: number): Promise<void> => {
        for (let attempt = 0; attempt < 200; attempt++) {
          try {
            const res = await fetch(`${current.url}/namespaces/${namespace}/orchestrations/kill-chain/runs`, {
              method: "POST",
              headers: { "content-type": "application/json", "idempotency-key": `kill-${i}` },
              body: JSON.stringify({ n: i, fail: i % FAIL_EVERY === 0 }),
            });
            if (res.status === 202) {
              accepted.add(i);
              return;
            }
          } catch {
            // The engine died under the request, or a new one is starting: try again.
          }
          await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`run ${i} was never accepted`);
      };
      const submitting = (async () => {
        const queue = Array.from({ length: RUNS }, (_, i) => i);
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
              submitted++;
              await submit(i);
            }
          }),
        );
      })();

      // Kill 1: a third of the runs accepted, many in flight.
      await eventually(
        "a third of the runs to be accepted",
        async () => (accepted.size >= RUNS / 3 ? true : undefined),
        {
          timeoutMs: 120_000,
          intervalMs: 20,
        },
      );
      inFlightAtKill.push(inFlight());
      await kill(current);
      current = await spawnEngine();

      // Kill 2: the replacement has taken over and some runs are finishing.
      await eventually(
        "more runs to finish under the second engine",
        async () =>
          view.list({ namespace }).filter((r) => isTerminal(r.status)).length >= RUNS / 2 ? true : undefined,
        { timeoutMs: 120_000, intervalMs: 50 },
      );
      inFlightAtKill.push(inFlight());
      await kill(current);
      current = await spawnEngine();

      await submitting;
      expect(submitted).toBe(RUNS);
      const runs = await eventually(
        "every run to finish",
        async () => {
          const all = view.list({ namespace, orchestration: "kill-chain" });
          return all.length >= RUNS && all.every((r) => isTerminal(r.status)) ? all : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 250 },
      );

      // Exactly one run per Idempotency-Key.
      expect(runs).toHaveLength(RUNS);
      const byKey = new Map(runs.map((r) => [r.idempotencyKey, r]));
      expect(byKey.size).toBe(RUNS);
      for (let i = 0; i < RUNS; i++) {
        const run = byKey.get(`kill-${i}`);
        expect(run?.runId).toBe(idempotentRunId(namespace, "kill-chain", `kill-${i}`));
      }
      // Exact counts.
      const failing = Array.from({ length: RUNS }, (_, i) => i).filter((i) => i % FAIL_EVERY === 0).length;
      const count = (status: string) => runs.filter((r) => r.status === status).length;
      expect({
        Succeeded: count("Succeeded"),
        Failed: count("Failed"),
        other: RUNS - count("Succeeded") - count("Failed"),
      }).toEqual({
        Succeeded: RUNS - failing,
        Failed: failing,
        other: 0,
      });
      // No side effect twice: every (run, step, action) was applied exactly once, and only the expected ones.
      const counts = worker.effectCounts();
      for (const [key, n] of counts) expect(n, key).toBe(1);
      const expectedEffects = RUNS * 3 + failing * 2;
      expect(counts.size).toBe(expectedEffects);
      for (const run of runs) {
        const fail = (run.input as { fail: boolean }).fail;
        expect(worker.log(run.runId)).toEqual(
          fail
            ? ["reserve:do:1", "charge:do:1", "ship:do:1", "charge:compensate:1", "reserve:compensate:1"]
            : ["reserve:do:1", "charge:do:1", "ship:do:1"],
        );
      }
      // The kills hit runs in flight, and commands re-sent on restore were deduplicated by the worker.
      console.info(
        `runs in flight at each kill: ${inFlightAtKill.join(", ")}; re-sent commands deduplicated: ${worker.duplicates}`,
      );
      expect(inFlightAtKill.every((n) => n > 0)).toBe(true);
      // Every command attempt was 1: no timeout fired, so nothing was re-dispatched with a new id.
      expect(worker.applied.every((c) => c.attempt === 1)).toBe(true);
    },
  );
});
