/**
 * THIS IS NOT A KUBELET. Pods cannot run on the machines Eventloom is
 * developed and tested on (no container runtime), so this stands in for the
 * kubelet and the Deployment controller, for tests and the local demo only:
 *
 * - it watches the Deployments the operator wrote (label
 *   `app.kubernetes.io/managed-by=eventloom`);
 * - for each replica it runs the container's program as a local process:
 *   the image is mapped to a local command (see `IMAGES`), the container's
 *   env is passed as written, and Secret and ConfigMap volumes are written to
 *   a local directory, with env values that point into a mount rewritten to it;
 * - it starts and stops processes to match `spec.replicas` (so the lag
 *   autoscaler's decisions take effect), restarts a process that exits (as
 *   `restartPolicy: Always` would), replaces them when the pod template
 *   changes, and writes the Deployment's status (replicas, readyReplicas, …)
 *   the way the Deployment controller would.
 *
 * What it does not do: scheduling, probes, resource limits, security
 * contexts, image pulls, networking. Nothing in the product depends on it.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Image (without tag) → local program. `args` are the container's args. */
export const IMAGES: Record<string, (args: string[]) => { command: string; args: string[] }> = {
  "eventloom/example-workers": (args) => ({
    command: process.execPath,
    args: ["--import", "tsx", `${root}/services/examples/${args[0] ?? "missing-args"}.ts`, ...args.slice(1)],
  }),
};

export interface StandInOptions {
  /** Only Deployments in this namespace (default: all). */
  namespace?: string;
  /** Where volumes are written. */
  workDir: string;
  /** Extra env for every process (e.g. OTEL settings for the demo). */
  extraEnv?: Record<string, string>;
  onLog?: (deployment: string, replica: number, line: string) => void;
}

interface Replica {
  proc: ChildProcess;
  stopping: boolean;
}

interface Managed {
  key: string;
  templateHash: string;
  replicas: Replica[];
  deployment: k8s.V1Deployment;
}

export class KubeletStandIn {
  private readonly apps: k8s.AppsV1Api;
  private readonly core: k8s.CoreV1Api;
  private readonly managed = new Map<string, Managed>();
  private informer: k8s.Informer<k8s.V1Deployment> | undefined;
  private stopped = false;
  private refresher: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly opts: StandInOptions,
  ) {
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** Local processes running for a Deployment. */
  running(namespace: string, name: string): number {
    return (
      this.managed
        .get(`${namespace}/${name}`)
        ?.replicas.filter((r) => r.proc.exitCode === null && !r.stopping).length ?? 0
    );
  }

  async start(): Promise<void> {
    const selector = "app.kubernetes.io/managed-by=eventloom";
    const ns = this.opts.namespace;
    const path = ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : "/apis/apps/v1/deployments";
    this.informer = k8s.makeInformer<k8s.V1Deployment>(
      this.kc,
      path,
      () =>
        ns
          ? this.apps.listNamespacedDeployment({ namespace: ns, labelSelector: selector })
          : this.apps.listDeploymentForAllNamespaces({ labelSelector: selector }),
      selector,
    );
    const enqueue = (d: k8s.V1Deployment, gone = false) => {
      // One change at a time, in order: simple and enough for tests and demos.
      this.chain = this.chain
        .then(() => this.sync(d, gone))
        .catch((err: unknown) => this.opts.onLog?.(key(d), -1, `stand-in error: ${String(err)}`));
    };
    this.informer.on("add", (d) => enqueue(d));
    this.informer.on("update", (d) => enqueue(d));
    this.informer.on("delete", (d) => enqueue(d, true));
    this.informer.on("error", () => {
      if (!this.stopped) setTimeout(() => void this.informer?.start(), 1000);
    });
    await this.informer.start();
    // Like the kubelet, refresh mounted Secrets and ConfigMaps (e.g. a trust document that
    // gained a Worker's key) while replicas run.
    this.refresher = setInterval(() => {
      for (const m of this.managed.values()) {
        if (m.replicas.length > 0) void this.materializeVolumes(m.deployment, m.key).catch(() => undefined);
      }
    }, 1000);
    this.refresher.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refresher) clearInterval(this.refresher);
    await this.informer?.stop();
    await this.chain;
    await Promise.all([...this.managed.values()].map((m) => this.scaleTo(m, 0)));
  }

  private async sync(d: k8s.V1Deployment, gone: boolean): Promise<void> {
    const k = key(d);
    let m = this.managed.get(k);
    const desired = gone || this.stopped ? 0 : (d.spec?.replicas ?? 1);
    const hash = JSON.stringify(d.spec?.template);
    if (m && m.templateHash !== hash) {
      await this.scaleTo(m, 0); // the pod template changed: replace every replica
      m.templateHash = hash;
    }
    if (!m) {
      m = { key: k, templateHash: hash, replicas: [], deployment: d };
      this.managed.set(k, m);
    }
    m.deployment = d;
    await this.scaleTo(m, desired);
    if (!gone) await this.writeStatus(m);
    else this.managed.delete(k);
  }

  private async scaleTo(m: Managed, desired: number): Promise<void> {
    const live = m.replicas.filter((r) => !r.stopping && r.proc.exitCode === null);
    for (let i = live.length; i < desired; i++) live.push(await this.spawnReplica(m, i));
    const extra = live.splice(desired);
    await Promise.all(extra.map((r) => terminate(r)));
    m.replicas = live;
  }

  private async spawnReplica(m: Managed, index: number): Promise<Replica> {
    const d = m.deployment;
    const container = d.spec?.template.spec?.containers[0];
    if (!container) throw new Error(`Deployment ${m.key} has no container`);
    const image = (container.image ?? "").replace(/:[^/:]+$/, "");
    const program = IMAGES[image];
    if (!program)
      throw new Error(
        `Deployment ${m.key}: no local program for image ${container.image}; add it to IMAGES in test/kubelet/standin.ts`,
      );
    const mounts = await this.materializeVolumes(d, m.key);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      ...this.opts.extraEnv,
    };
    for (const e of container.env ?? []) {
      if (e.value === undefined) continue;
      let value = e.value;
      for (const [mountPath, local] of mounts)
        if (value.startsWith(mountPath)) value = local + value.slice(mountPath.length);
      env[e.name] = value;
    }
    const { command, args } = program(container.args ?? []);
    const proc = spawn(command, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    const replica: Replica = { proc, stopping: false };
    const onLine = (data: Buffer) => {
      for (const line of data.toString().split("\n")) if (line) this.opts.onLog?.(m.key, index, line);
    };
    proc.stdout?.on("data", onLine);
    proc.stderr?.on("data", onLine);
    proc.once("exit", (code) => {
      if (replica.stopping || this.stopped) return;
      // restartPolicy: Always, with a short back-off.
      this.opts.onLog?.(m.key, index, `exited with ${code}; restarting`);
      setTimeout(() => {
        this.chain = this.chain.then(() => this.sync(m.deployment, false)).catch(() => undefined);
      }, 1000);
    });
    return replica;
  }

  /** Writes Secret and ConfigMap volumes to disk; returns mountPath → local directory. */
  private async materializeVolumes(d: k8s.V1Deployment, k: string): Promise<Map<string, string>> {
    const ns = d.metadata?.namespace ?? "default";
    const podSpec = d.spec?.template.spec;
    const out = new Map<string, string>();
    for (const vm of podSpec?.containers[0]?.volumeMounts ?? []) {
      const volume = podSpec?.volumes?.find((v) => v.name === vm.name);
      if (!volume) continue;
      const dir = `${this.opts.workDir}/${k}/${vm.name}`;
      mkdirSync(dir, { recursive: true });
      if (volume.secret?.secretName) {
        const s = await this.core.readNamespacedSecret({ namespace: ns, name: volume.secret.secretName });
        for (const [f, v] of Object.entries(s.data ?? {}))
          writeIfChanged(`${dir}/${f}`, Buffer.from(v, "base64"), 0o600);
      } else if (volume.configMap?.name) {
        const c = await this.core.readNamespacedConfigMap({ namespace: ns, name: volume.configMap.name });
        for (const [f, v] of Object.entries(c.data ?? {}))
          writeIfChanged(`${dir}/${f}`, Buffer.from(v), 0o644);
      }
      out.set(vm.mountPath, dir);
    }
    return out;
  }

  private async writeStatus(m: Managed): Promise<void> {
    const d = m.deployment;
    const n = m.replicas.filter((r) => r.proc.exitCode === null).length;
    try {
      await this.apps.patchNamespacedDeploymentStatus(
        {
          namespace: d.metadata?.namespace ?? "",
          name: d.metadata?.name ?? "",
          body: {
            status: {
              observedGeneration: d.metadata?.generation,
              replicas: n,
              readyReplicas: n,
              availableReplicas: n,
              updatedReplicas: n,
            },
          },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    } catch {
      // The Deployment may be gone; the next event corrects the status.
    }
  }
}

function key(d: k8s.V1Deployment): string {
  return `${d.metadata?.namespace ?? ""}/${d.metadata?.name ?? ""}`;
}

function terminate(r: Replica): Promise<void> {
  r.stopping = true;
  if (r.proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => r.proc.kill("SIGKILL"), 10_000);
    r.proc.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    r.proc.kill("SIGTERM");
  });
}

/** Writes only when the content differs, so file watchers see real changes only. */
function writeIfChanged(path: string, content: Buffer, mode: number): void {
  if (existsSync(path) && readFileSync(path).equals(content)) return;
  writeFileSync(`${path}.tmp`, content, { mode });
  // rename is atomic: a reader never sees half a file.
  renameSync(`${path}.tmp`, path);
}
