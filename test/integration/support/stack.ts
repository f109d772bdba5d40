/** Access to the real local stack from integration tests. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { inject } from "vitest";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { KafkaClient } from "../../../services/kafka/client.ts";
import { KubeClient } from "../../../operator/kube-client/client.ts";
import { connectionFromKubeconfig } from "../../../operator/kube-client/config.ts";

const execFileAsync = promisify(execFile);

export interface StackEnv {
  kafkaBrokers: string;
  kubeconfig: string;
  kubectl: string;
  helm: string;
  /** Running state of the stack (pids, logs, data). */
  stateDir: string;
}

export function stack(): StackEnv {
  const env = inject("stack");
  // Child processes (kubectl, operator) find the stack through the environment too.
  process.env.KAFKA_BROKERS = env.kafkaBrokers;
  process.env.KUBECONFIG = env.kubeconfig;
  return env;
}

export function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(stack().kubeconfig);
  return kc;
}

/** The operator's own lean client on the stack (what the operator, gateway and engine use). */
export function kubeClient(): KubeClient {
  const path = stack().kubeconfig;
  return new KubeClient(connectionFromKubeconfig(parseYaml(readFileSync(path, "utf8")), { path }));
}

export function kafka(clientId = "eventloom-test"): KafkaClient {
  return new KafkaClient({ brokers: stack().kafkaBrokers.split(","), clientId });
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real kubectl against the stack; never throws on a non-zero exit. */
export async function kubectl(args: string[], input?: string): Promise<CommandResult> {
  const env = stack();
  const child = execFileAsync(env.kubectl, args, {
    env: { ...process.env, KUBECONFIG: env.kubeconfig },
    maxBuffer: 16 * 1024 * 1024,
  });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** A name unique to this run, valid as a namespace and a topic fragment. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/**
 * Polls `probe` until it returns a value that is not undefined, or fails after
 * `timeoutMs` with the last error or value in the message. No fixed sleeps.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 20_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = "no value yet";
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : String(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Freezes the Kafka broker (SIGSTOP) while `fn` runs, then thaws it (SIGCONT):
 * to clients the broker stops answering, as when a network partition or a
 * long GC pause hits, and comes back with its data intact.
 */
export async function withKafkaFrozen<T>(fn: () => Promise<T>): Promise<T> {
  const { readFile } = await import("node:fs/promises");
  const pid = Number((await readFile(`${stack().stateDir}/kafka/pid`, "utf8")).trim());
  process.kill(pid, "SIGSTOP");
  try {
    return await fn();
  } finally {
    process.kill(pid, "SIGCONT");
  }
}

/** Applies the generated CRDs with the real kubectl, waits until they are served, and creates `namespace`. */
export async function prepareNamespace(namespace: string): Promise<void> {
  const applied = await kubectl(["apply", "-f", "crds/"]);
  if (applied.code !== 0) throw new Error(`kubectl apply -f crds/ failed: ${applied.stderr}`);
  const established = await kubectl([
    "wait",
    "--for=condition=Established",
    "crd/orchestrations.eventloom.io",
    "crd/workers.eventloom.io",
    "--timeout=60s",
  ]);
  if (established.code !== 0) throw new Error(`the CRDs were not Established: ${established.stderr}`);
  const created = await kubectl(["create", "namespace", namespace]);
  if (created.code !== 0) throw new Error(`kubectl create namespace ${namespace} failed: ${created.stderr}`);
}
