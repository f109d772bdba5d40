/**
 * Wires the operator together: watches (Orchestrations, Workers, owned
 * Deployments and Secrets), one work queue per kind, the reconcilers, leader
 * election, probes and metrics. Every replica keeps its caches warm; only the
 * leader reconciles, so a standby takes over with nothing to load.
 */
import type * as k8s from "@kubernetes/client-node";
import type { Server } from "node:http";
import type { Orchestration, Worker } from "./crds/types.ts";
import {
  GROUP,
  ORCHESTRATION_KIND,
  ORCHESTRATION_PLURAL,
  VERSION,
  WORKER_KIND,
  WORKER_PLURAL,
} from "./crds/types.ts";
import { MANAGED_BY } from "./builders/meta.ts";
import { Kube } from "./kube.ts";
import { KubeClient } from "./kube-client/client.ts";
import { SharedKafkaAdmin } from "./kafka-admin.ts";
import { OrchestrationReconciler } from "./orchestration-reconciler.ts";
import { WorkerReconciler } from "./worker-reconciler.ts";
import { Watcher, objectKey, slimDeployment } from "./runtime/informer.ts";
import type { CachedDeployment } from "./runtime/informer.ts";
import { WorkQueue } from "./runtime/queue.ts";
import { LeaderElector } from "./runtime/leader.ts";
import { EventRecorder } from "./runtime/events.ts";
import { createOperatorMetrics } from "./runtime/metrics.ts";
import { startHealthServer } from "./runtime/health.ts";
import type { Logger } from "./runtime/log.ts";
import { KafkaClient } from "../services/kafka/client.ts";
import { Autoscaler } from "./autoscaler/autoscaler.ts";
import { apiMessage, isNamespaceTerminating } from "./runtime/errors.ts";

export interface OperatorConfig {
  kafkaBrokers: string[];
  /** Watch and manage one namespace only (a namespace-scoped install); default all. */
  watchNamespace?: string;
  /** Brokers as the worker pods reach them (default: the operator's). */
  workerKafkaBrokers?: string;
  workerOtlpEndpoint?: string;
  topicPrefix?: string;
  leaseNamespace: string;
  leaseName: string;
  healthPort: number;
  healthHost: string;
  resyncMs: number;
  finalizerTimeoutMs: number;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

type Obj<T> = T & k8s.KubernetesObject;

const MANAGED_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY}`;
/**
 * Keys reconciled at once per kind. A reconcile mostly waits on the API server
 * and Kafka (Kafka work is batched across reconciles, so more in flight means
 * fuller batches, not more requests).
 */
const QUEUE_CONCURRENCY: Record<string, number> = {
  // An Orchestration reconcile mostly waits (on Kafka's shared, batched requests and the API server):
  // with 16 in flight, 1,000 new Orchestrations took ~2 s each and the queue drained at ~8 per second.
  // Waiting costs the operator nothing, and more in flight fills the same Kafka batches.
  [ORCHESTRATION_KIND]: 64,
  [WORKER_KIND]: 64,
};

export class Operator {
  readonly metrics = createOperatorMetrics();
  private readonly kube: Kube;
  private readonly kafka: SharedKafkaAdmin;
  private readonly recorder: EventRecorder;
  private readonly elector: LeaderElector;
  private readonly leaseClient: KubeClient;
  private readonly orchestrations: Watcher<Obj<Orchestration>>;
  private readonly workers: Watcher<Obj<Worker>>;
  private readonly deployments: Watcher<CachedDeployment>;
  private readonly secrets: Watcher<k8s.V1Secret>;
  private orchQueue: WorkQueue | undefined;
  private workerQueue: WorkQueue | undefined;
  private autoscaler: Autoscaler | undefined;
  private server: Server | undefined;
  private synced = false;
  private readonly seen = new Map<string, string>();
  private depthTimer: NodeJS.Timeout | undefined;

  constructor(
    client: KubeClient,
    private readonly config: OperatorConfig,
    private readonly log: Logger,
    private readonly onLostLeadership: () => void,
  ) {
    this.kube = new Kube(client);
    client.onRequest = (verb, resource) => this.metrics.kubeRequests.inc({ verb, resource });
    const kafkaClient = (requestTimeoutMs: number) =>
      new KafkaClient({
        brokers: config.kafkaBrokers,
        clientId: "eventloom-operator",
        // Fail fast: a reconcile that waits on a dead broker holds its key; the queue retries with backoff.
        retries: 1,
        connectionTimeoutMs: 2000,
        requestTimeoutMs,
        onLog: (level, message) =>
          level === "error" ? log.debug({ kafka: message }, "kafka client") : undefined,
      });
    // Batched topic work carries many Orchestrations per request, and the metadata of every topic
    // takes seconds on a busy broker with thousands of topics: it gets longer than single requests.
    this.kafka = new SharedKafkaAdmin(kafkaClient(5_000), { bulkClient: kafkaClient(20_000) });
    this.recorder = new EventRecorder(this.kube.events, "eventloom-operator", log);
    const onError = (kind: string, err: unknown, retryInMs: number) =>
      log.warn({ kind, err: apiMessage(err), retryInMs }, "watch failed; restarting");
    const base = `/apis/${GROUP}/${VERSION}`;
    const ns = config.watchNamespace;
    const scoped = (group: string, plural: string) =>
      ns ? `${group}/namespaces/${ns}/${plural}` : `${group}/${plural}`;
    this.orchestrations = new Watcher(client, {
      kind: ORCHESTRATION_KIND,
      apiVersion: `${GROUP}/${VERSION}`,
      path: scoped(base, ORCHESTRATION_PLURAL),
      list: () => this.kube.listOrchestrations(ns),
      resyncMs: config.resyncMs,
      onEvent: (t, o) => {
        if (this.specChanged(t, o)) this.onOrchestration(o);
      },
      onError,
    });
    this.workers = new Watcher(client, {
      kind: WORKER_KIND,
      apiVersion: `${GROUP}/${VERSION}`,
      path: scoped(base, WORKER_PLURAL),
      list: () => this.kube.listWorkers(ns),
      resyncMs: config.resyncMs,
      onEvent: (t, w) => {
        if (this.specChanged(t, w)) this.onWorker(w);
      },
      onError,
    });
    this.deployments = new Watcher(client, {
      kind: "Deployment",
      apiVersion: "apps/v1",
      path: scoped("/apis/apps/v1", "deployments"),
      labelSelector: MANAGED_SELECTOR,
      list: () => this.kube.listDeployments(ns, MANAGED_SELECTOR),
      transform: slimDeployment,
      resyncMs: config.resyncMs * 10,
      onEvent: (_t, d) => this.onOwned(d),
      onError,
    });
    this.secrets = new Watcher(client, {
      kind: "Secret",
      apiVersion: "v1",
      path: scoped("/api/v1", "secrets"),
      labelSelector: MANAGED_SELECTOR,
      list: () => this.kube.listSecrets(ns, MANAGED_SELECTOR),
      resyncMs: config.resyncMs * 10,
      onEvent: (_t, s) => this.onOwned(s),
      onError,
    });
    // The lease gets a connection of its own: behind a backlog of reconcile writes on the shared
    // sockets, a renewal could miss its deadline and cost the lease (seen at 1,000 Orchestrations).
    this.leaseClient = new KubeClient(client.connection, {
      maxSockets: 1,
      userAgent: "eventloom-operator/leader",
    });
    this.leaseClient.onRequest = client.onRequest;
    this.elector = new LeaderElector(new Kube(this.leaseClient).leases, {
      namespace: config.leaseNamespace,
      name: config.leaseName,
      ...(config.leaseDurationMs ? { leaseDurationMs: config.leaseDurationMs } : {}),
      ...(config.renewDeadlineMs ? { renewDeadlineMs: config.renewDeadlineMs } : {}),
      ...(config.retryPeriodMs ? { retryPeriodMs: config.retryPeriodMs } : {}),
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => {
        this.metrics.isLeader.set(0);
        log.warn({ identity: this.elector.identity }, "lost leadership");
        this.onLostLeadership();
      },
      onError: (err) => log.warn({ err: apiMessage(err) }, "leader election request failed"),
    });
  }

  get identity(): string {
    return this.elector.identity;
  }

  get healthAddress(): { port: number } | undefined {
    const addr = this.server?.address();
    return addr && typeof addr === "object" ? { port: addr.port } : undefined;
  }

  async start(): Promise<void> {
    this.server = await startHealthServer(
      this.config.healthPort,
      this.config.healthHost,
      { live: () => true, ready: () => this.synced },
      this.metrics.registry,
    );
    await Promise.all([
      this.orchestrations.start(),
      this.workers.start(),
      this.deployments.start(),
      this.secrets.start(),
    ]);
    this.synced = true;
    this.log.info(
      { identity: this.elector.identity, health: this.healthAddress },
      "caches synced; campaigning for leadership",
    );
    this.elector.start();
  }

  async stop(): Promise<void> {
    if (this.depthTimer) clearInterval(this.depthTimer);
    this.orchQueue?.stop();
    this.workerQueue?.stop();
    this.autoscaler?.stop();
    await this.elector.stop();
    await Promise.all([
      this.orchestrations.stop(),
      this.workers.stop(),
      this.deployments.stop(),
      this.secrets.stop(),
    ]);
    await this.kafka.close();
    this.kube.client.close();
    this.leaseClient.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private startLeading(): void {
    this.metrics.isLeader.set(1);
    this.log.info({ identity: this.elector.identity }, "became leader; reconciling");
    const secret = (ns: string, name: string) => this.secrets.get(ns, name);
    const orchReconciler = new OrchestrationReconciler({
      kube: this.kube,
      cached: (ns, name) => this.orchestrations.get(ns, name),
      kafka: this.kafka,
      workersIn: (ns) => this.workers.list(ns),
      secret,
      recorder: this.recorder,
      log: this.log,
      finalizerTimeoutMs: this.config.finalizerTimeoutMs,
      observePhase: (phase, s) => this.metrics.reconcilePhase.observe({ kind: ORCHESTRATION_KIND, phase }, s),
      ...(this.config.topicPrefix !== undefined ? { topicPrefix: this.config.topicPrefix } : {}),
    });
    const workerReconciler = new WorkerReconciler({
      kube: this.kube,
      cachedWorker: (ns, name) => this.workers.get(ns, name),
      cachedOrchestration: (ns, name) => this.orchestrations.get(ns, name),
      cachedDeployment: (ns, name) => this.deployments.get(ns, name),
      recorder: this.recorder,
      log: this.log,
      kafkaBrokers: this.config.workerKafkaBrokers ?? this.config.kafkaBrokers.join(","),
      ...(this.config.workerOtlpEndpoint ? { otlpEndpoint: this.config.workerOtlpEndpoint } : {}),
      ...(this.config.topicPrefix !== undefined ? { topicPrefix: this.config.topicPrefix } : {}),
      secret,
      enqueueOrchestration: (ns, name) => this.orchQueue?.add(`${ns}/${name}`),
      observePhase: (phase, s) => this.metrics.reconcilePhase.observe({ kind: WORKER_KIND, phase }, s),
    });
    this.orchQueue = this.makeQueue(ORCHESTRATION_KIND, (k) => orchReconciler.reconcile(k));
    this.workerQueue = this.makeQueue(WORKER_KIND, (k) => workerReconciler.reconcile(k));
    for (const o of this.orchestrations.list()) this.orchQueue.add(objectKey(o));
    for (const w of this.workers.list()) this.workerQueue.add(objectKey(w));
    this.autoscaler = new Autoscaler({
      kube: this.kube,
      kafka: this.kafka,
      workers: () => this.workers.list(),
      orchestration: (ns, name) => this.orchestrations.get(ns, name),
      deployment: (ns, name) => this.deployments.get(ns, name),
      recorder: this.recorder,
      log: this.log,
      metrics: this.metrics,
      ...(this.config.topicPrefix !== undefined ? { topicPrefix: this.config.topicPrefix } : {}),
    });
    this.autoscaler.start();
    this.depthTimer = setInterval(() => {
      this.metrics.queueDepth.set({ kind: ORCHESTRATION_KIND }, this.orchQueue?.depth ?? 0);
      this.metrics.queueDepth.set({ kind: WORKER_KIND }, this.workerQueue?.depth ?? 0);
    }, 1000);
    this.depthTimer.unref();
  }

  private makeQueue(
    kind: string,
    reconcile: (key: string) => Promise<{ requeueAfterMs?: number } | void>,
  ): WorkQueue {
    const guarded = async (key: string) => {
      try {
        return await reconcile(key);
      } catch (err) {
        if (isNamespaceTerminating(err)) {
          this.log.debug({ kind, key }, "namespace is terminating; not retrying");
          return;
        }
        throw err;
      }
    };
    return new WorkQueue(guarded, {
      concurrency: QUEUE_CONCURRENCY[kind] ?? 16,
      onProcessed: (_key, ms, outcome) => {
        this.metrics.reconciles.inc({ kind, outcome });
        this.metrics.reconcileDuration.observe({ kind }, ms / 1000);
      },
      onError: (key, err, retryInMs) => {
        this.metrics.reconcileErrors.inc({ kind });
        this.log.warn({ kind, key, err: apiMessage(err), retryInMs }, "reconcile failed");
      },
    });
  }

  /**
   * Status writes (ours, the autoscaler's) come back as update events; like
   * controller-runtime's GenerationChangedPredicate, those do not queue a
   * reconcile. Adds, deletes, resyncs and changes of generation, deletion
   * timestamp or finalizers do.
   */
  private specChanged(type: string, obj: k8s.KubernetesObject): boolean {
    const key = `${obj.kind}/${objectKey(obj)}`;
    if (type === "delete") {
      this.seen.delete(key);
      return true;
    }
    const m = obj.metadata;
    const fingerprint = `${m?.generation}|${m?.deletionTimestamp ?? ""}|${(m?.finalizers ?? []).join(",")}`;
    const changed = type !== "update" || this.seen.get(key) !== fingerprint;
    this.seen.set(key, fingerprint);
    return changed;
  }

  private onOrchestration(o: Obj<Orchestration>): void {
    if (!this.orchQueue) return;
    this.orchQueue.add(objectKey(o));
    const ns = o.metadata.namespace ?? "";
    for (const w of this.workers.list(ns)) {
      if (w.spec.orchestration === o.metadata.name) this.workerQueue?.add(objectKey(w));
    }
  }

  private onWorker(w: Obj<Worker>): void {
    if (!this.workerQueue) return;
    this.workerQueue.add(objectKey(w));
    // A Worker appearing, changing or going changes its Orchestration's binding: self-heal by watch.
    this.orchQueue?.add(`${w.metadata.namespace ?? ""}/${w.spec.orchestration}`);
  }

  private onOwned(child: k8s.KubernetesObject): void {
    const ns = child.metadata?.namespace ?? "";
    for (const ref of child.metadata?.ownerReferences ?? []) {
      if (ref.kind === WORKER_KIND) {
        this.workerQueue?.add(`${ns}/${ref.name}`);
        const worker = this.workers.get(ns, ref.name);
        if (worker && child.kind !== "Deployment") this.orchQueue?.add(`${ns}/${worker.spec.orchestration}`);
      } else if (ref.kind === ORCHESTRATION_KIND) {
        this.orchQueue?.add(`${ns}/${ref.name}`);
      }
    }
  }
}
