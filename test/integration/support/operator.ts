/** Runs the real operator (`operator/main.ts`) as a child process against the stack. */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { stack, eventually } from "./stack.ts";

const root = fileURLToPath(new URL("../../..", import.meta.url));

export interface RunningOperator {
  proc: ChildProcess;
  /** Everything the process wrote, for failure dumps. */
  logs: () => string;
  healthPort: () => Promise<number>;
  isLeader: () => Promise<boolean>;
  metrics: () => Promise<string>;
  /** SIGTERM and wait for exit. */
  stop: () => Promise<void>;
  /** SIGKILL, no cleanup: what a node failure looks like. */
  kill: () => Promise<void>;
}

export function startOperator(env: Record<string, string> = {}): RunningOperator {
  const s = stack();
  const proc = spawn(process.execPath, ["--import", "tsx", `${root}/operator/main.ts`], {
    cwd: root,
    env: {
      ...process.env,
      KUBECONFIG: s.kubeconfig,
      KAFKA_BROKERS: s.kafkaBrokers,
      HEALTH_PORT: "0",
      HEALTH_HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));

  const healthPort = () =>
    eventually(
      "the operator to report its health port",
      async () => {
        const m = /"health":\{"port":(\d+)\}/.exec(out);
        if (proc.exitCode !== null)
          throw new Error(`operator exited with ${proc.exitCode}:\n${out.slice(-3000)}`);
        return m?.[1] ? Number(m[1]) : undefined;
      },
      { timeoutMs: 30_000 },
    );
  const metrics = async () => {
    const port = await healthPort();
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    return res.text();
  };
  return {
    proc,
    logs: () => out,
    healthPort,
    metrics,
    isLeader: async () => /^eventloom_operator_leader 1$/m.test(await metrics()),
    stop: async () => {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await exited;
    },
    kill: async () => {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}
