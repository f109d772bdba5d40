/**
 * Integration global setup: make sure the real local stack (Kafka broker,
 * etcd + kube-apiserver, kubectl, helm) runs, starting it when it does not and
 * reusing it when it does. Nothing here is faked: if the stack cannot start,
 * the suite fails loudly with the step that failed and its log tail.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import type { StackEnv } from "./support/stack.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const stackScript = `${root}/scripts/stack/stack.sh`;

function parseExports(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}

export default function setup(project: TestProject): void {
  const up = spawnSync("bash", [stackScript, "up"], { stdio: ["ignore", "inherit", "inherit"] });
  if (up.status !== 0) {
    throw new Error(
      `The local stack did not start (scripts/stack/stack.sh up exited ${up.status}); its output above names the failed step and log file.`,
    );
  }
  const exports = parseExports(execFileSync("bash", [stackScript, "env"], { encoding: "utf8" }));
  const env: StackEnv = {
    kafkaBrokers: exports.KAFKA_BROKERS ?? "",
    kubeconfig: exports.KUBECONFIG ?? "",
    kubectl: exports.KUBECTL ?? "",
    helm: exports.HELM ?? "",
    stateDir: exports.EVENTLOOM_STACK_DIR ?? "",
  };
  for (const [k, v] of Object.entries(env)) {
    if (!v) throw new Error(`stack.sh env did not print ${k}`);
  }
  process.env.KAFKA_BROKERS = env.kafkaBrokers;
  process.env.KUBECONFIG = env.kubeconfig;
  process.env.KUBECTL = env.kubectl;
  process.env.HELM = env.helm;
  project.provide("stack", env);
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackEnv;
  }
}
