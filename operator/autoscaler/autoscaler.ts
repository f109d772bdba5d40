/**
 * The lag autoscaler (leader only). Every poll interval of each Worker with
 * scaling enabled it reads, through the Kafka admin API, the log start and end
 * of each partition of the Worker's step topics and the Worker's committed
 * offsets; decides (decide.ts); patches the Deployment's scale subresource;
 * and records the outcome on the Worker's status, as an Event and as metrics.
 */
import type { Orchestration, Worker } from "../crds/types.ts";
import { DEFAULT_SCALING, WORKER_CONDITIONS, WORKER_PLURAL } from "../crds/types.ts";
import { autoscalingEnabled, workerDeploymentName, workerSteps } from "../builders/deployment.ts";
import { setCondition } from "../conditions.ts";
import type { ConditionInput } from "../conditions.ts";
import { consumerGroupFor, stepTopic } from "../../services/events/topics.ts";
import { parseDuration } from "../../services/events/retry.ts";
import { KafkaUnavailableError } from "../../services/kafka/client.ts";
import { AUTOSCALER_FIELD_MANAGER } from "../kube.ts";
import type { Kube } from "../kube.ts";
import type { SharedKafkaAdmin } from "../kafka-admin.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { CachedDeployment } from "../runtime/informer.ts";
import type { Logger } from "../runtime/log.ts";
import type { OperatorMetrics } from "../runtime/metrics.ts";
import { decide, emptyMemory, partitionLag } from "./decide.ts";
import type { ScalerMemory, ScalingPolicy } from "./decide.ts";

export interface AutoscalerDeps {
  kube: Kube;
  kafka: SharedKafkaAdmin;
  workers: () => readonly Worker[];
  orchestration: (namespace: string, name: string) => Orchestration | undefined;
  deployment: (namespace: string, name: string) => CachedDeployment | undefined;
  recorder: EventRecorder;
  log: Logger;
  metrics: OperatorMetrics;
  topicPrefix?: string;
  /** How often due Workers are looked for; bounds the added reaction time. */
  tickMs?: number;
  /** Polls in flight at once (default 8). */
  maxConcurrentPolls?: number;
  /** Lag-only status updates are written at most this often (scale changes at once). */
  statusIntervalMs?: number;
  now?: () => number;
}

interface WorkerState {
  memory: ScalerMemory;
  /** spec.scaling.pollInterval as last parsed. */
  pollInterval?: { text: string; ms: number };
  lastPollMs: number;
  polling: boolean;
  lastWritten?: string;
  lastWrittenMs: number;
  lastScale?: { time: string; reason: string };
  /** Last committed offset believed per topic/partition, and a lower one seen once (unconfirmed). */
  committed?: Map<string, { value: bigint | null; lower?: bigint | null }>;
}

/**
 * A group's committed offset only moves back when someone resets it on
 * purpose. Under load an offset fetch has been seen to come back without a
 * partition's commit, which would read as a burst of lag and a needless scale
 * up (then down). So a lower (or missing) offset counts only when two polls
 * in a row report it; a real reset is followed one poll later.
 */
export function confirmCommitted(
  st: { committed?: Map<string, { value: bigint | null; lower?: bigint | null }> },
  key: string,
  observed: bigint | null,
): bigint | null {
  st.committed ??= new Map();
  const known = st.committed.get(key);
  const lowerThanKnown =
    known !== undefined && known.value !== null && (observed === null || observed < known.value);
  if (!lowerThanKnown) {
    st.committed.set(key, { value: observed });
    return observed;
  }
  if (known.lower !== undefined && known.lower === observed) {
    st.committed.set(key, { value: observed });
    return observed;
  }
  st.committed.set(key, { value: known.value, lower: observed });
  return known.value;
}

export interface PollOutcome {
  lag: number;
  partitions: number;
  desiredReplicas: number;
  scaled: boolean;
  reason: string;
}

export function scalingPolicy(worker: Worker): ScalingPolicy {
  const s = worker.spec.scaling ?? {};
  return {
    minReplicas: s.minReplicas ?? DEFAULT_SCALING.minReplicas,
    maxReplicas: s.maxReplicas ?? DEFAULT_SCALING.maxReplicas,
    lagPerReplica: s.lagPerReplica ?? DEFAULT_SCALING.lagPerReplica,
    activationLag: s.activationLag ?? DEFAULT_SCALING.activationLag,
    scaleDownStabilizationMs: parseDuration(
      s.scaleDownStabilization ?? DEFAULT_SCALING.scaleDownStabilization,
    ),
    cooldownMs: parseDuration(s.cooldown ?? DEFAULT_SCALING.cooldown),
  };
}

export class Autoscaler {
  private readonly state = new Map<string, WorkerState>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly now: () => number;

  constructor(private readonly deps: AutoscalerDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.deps.tickMs ?? 250);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private tick(): void {
    const now = this.now();
    const live = new Set<string>();
    const due: Array<{ worker: Worker; key: string; st: WorkerState; overdueMs: number }> = [];
    for (const worker of this.deps.workers()) {
      if (!autoscalingEnabled(worker) || worker.metadata.deletionTimestamp) continue;
      const key = `${worker.metadata.namespace}/${worker.metadata.name}`;
      live.add(key);
      let st = this.state.get(key);
      if (!st)
        this.state.set(
          key,
          (st = { memory: emptyMemory(), lastPollMs: 0, polling: false, lastWrittenMs: 0 }),
        );
      // Parsed once per value: the tick runs 4 times a second over every Worker.
      const pollInterval = worker.spec.scaling?.pollInterval ?? DEFAULT_SCALING.pollInterval;
      if (st.pollInterval?.text !== pollInterval)
        st.pollInterval = { text: pollInterval, ms: parseDuration(pollInterval) };
      const interval = st.pollInterval.ms;
      if (st.polling || now - st.lastPollMs < interval) continue;
      due.push({ worker, key, st, overdueMs: now - st.lastPollMs - interval });
    }
    for (const key of this.state.keys()) if (!live.has(key)) this.state.delete(key);
    // Bounded work per tick: with many Workers, unbounded concurrent polls starved the process
    // (leader-election renewals included). The most overdue go first, so none starves.
    due.sort((a, b) => b.overdueMs - a.overdueMs);
    for (const { worker, key, st } of due) {
      if (this.inFlight >= (this.deps.maxConcurrentPolls ?? 8)) break;
      this.inFlight++;
      st.polling = true;
      st.lastPollMs = now;
      this.poll(worker, st)
        .catch((err: unknown) =>
          this.deps.log.warn({ worker: key, err: (err as Error).message }, "autoscaler poll failed"),
        )
        .finally(() => {
          st.polling = false;
          this.inFlight--;
        });
    }
  }

  /** The topic list is shared by all polls; a deleted topic shows within this age. */
  private topicListMaxAgeMs(): number {
    return 2000;
  }

  /** One poll of one Worker. */
  async poll(worker: Worker, st: WorkerState): Promise<PollOutcome | undefined> {
    const started = performance.now();
    try {
      return await this.pollOnce(worker, st);
    } finally {
      this.deps.metrics.autoscalerPollDuration.observe((performance.now() - started) / 1000);
    }
  }

  private async pollOnce(worker: Worker, st: WorkerState): Promise<PollOutcome | undefined> {
    const namespace = worker.metadata.namespace ?? "";
    const name = worker.metadata.name ?? "";
    const orch = this.deps.orchestration(namespace, worker.spec.orchestration);
    const deployment = this.deps.deployment(namespace, workerDeploymentName(worker));
    if (!orch || !deployment) return undefined;
    const prefix = this.deps.topicPrefix !== undefined ? { prefix: this.deps.topicPrefix } : {};
    const topics = workerSteps(worker, orch).map((s) =>
      stepTopic({ namespace, orchestration: orch.metadata.name ?? "" }, s, prefix),
    );
    const group = consumerGroupFor({ namespace, worker: name }, prefix);
    const generation = worker.metadata.generation ?? 0;

    let lag = 0;
    let partitions = 0;
    try {
      const existing = await this.deps.kafka.topicNames(this.topicListMaxAgeMs());
      await this.deps.kafka.use(async (admin) => {
        const before = admin.requests;
        const missing = topics.filter((t) => !existing.has(t));
        if (missing.length > 0) throw new TopicMissingError(missing);
        const committed = await admin.committedOffsetsOf(group, topics);
        for (const topic of topics) {
          const offsets = await admin.partitionOffsets(topic);
          const commits = new Map((committed.get(topic) ?? []).map((c) => [c.partition, c.offset]));
          for (const p of offsets) {
            const observed = commits.get(p.partition) ?? null;
            const l = partitionLag(
              p.logStart,
              p.logEnd,
              confirmCommitted(st, `${topic}/${p.partition}`, observed),
            );
            this.deps.metrics.workerLag.set(
              { namespace, worker: name, topic, partition: String(p.partition) },
              l,
            );
            lag += l;
            partitions++;
          }
        }
        this.deps.metrics.autoscalerKafkaRequests.inc(admin.requests - before);
      });
    } catch (err) {
      const condition: ConditionInput =
        err instanceof TopicMissingError
          ? {
              type: WORKER_CONDITIONS.scalingActive,
              status: "False",
              reason: "TopicMissing",
              message: `${err.message}; replicas are left as they are until the Orchestration's operator recreates it`,
              observedGeneration: generation,
            }
          : {
              type: WORKER_CONDITIONS.scalingActive,
              status: "False",
              reason: err instanceof KafkaUnavailableError ? "KafkaUnavailable" : "LagUnavailable",
              message: `cannot read lag: ${(err as Error).message}; replicas are left as they are`,
              observedGeneration: generation,
            };
      await this.writeStatus(worker, st, {}, condition, true);
      return undefined;
    }

    const current = deployment.spec?.replicas ?? 1;
    const decision = decide(
      scalingPolicy(worker),
      { lag, partitions, currentReplicas: current, nowMs: this.now() },
      st.memory,
    );
    st.memory = decision.memory;
    this.deps.metrics.workerDesiredReplicas.set({ namespace, worker: name }, decision.desiredReplicas);
    const scaled = decision.desiredReplicas !== current;
    if (scaled) {
      await this.deps.kube.scaleDeployment(
        namespace,
        workerDeploymentName(worker),
        decision.desiredReplicas,
        AUTOSCALER_FIELD_MANAGER,
      );
      // Keep the cached Deployment consistent until the watch delivers the change.
      if (deployment.spec) deployment.spec.replicas = decision.desiredReplicas;
      this.deps.log.info(
        { worker: `${namespace}/${name}`, from: current, to: decision.desiredReplicas, lag },
        "scaled",
      );
      await this.deps.recorder.record(
        worker,
        "Normal",
        "Scaled",
        `scaled from ${current} to ${decision.desiredReplicas}: ${decision.reason}`,
      );
    }
    await this.writeStatus(
      worker,
      st,
      {
        lag,
        desiredReplicas: decision.desiredReplicas,
        ...(scaled
          ? {
              lastScaleTime: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
              lastScaleReason: decision.reason,
            }
          : {}),
      },
      {
        type: WORKER_CONDITIONS.scalingActive,
        status: "True",
        reason: "LagAutoscaling",
        message: `lag ${lag} over ${partitions} partitions`,
        observedGeneration: generation,
      },
      scaled,
    );
    return { lag, partitions, desiredReplicas: decision.desiredReplicas, scaled, reason: decision.reason };
  }

  private async writeStatus(
    worker: Worker,
    st: WorkerState,
    fields: Record<string, unknown>,
    condition: ConditionInput,
    urgent: boolean,
  ): Promise<void> {
    const now = this.now();
    const previous = worker.status?.conditions?.filter((c) => c.type === condition.type);
    const conditions = setCondition(previous, condition, new Date(now));
    // Server-side apply drops owned fields that are left out: always send the last scale.
    if (fields.lastScaleTime !== undefined) {
      st.lastScale = { time: String(fields.lastScaleTime), reason: String(fields.lastScaleReason) };
    } else if (st.lastScale ?? worker.status?.lastScaleTime) {
      st.lastScale ??= {
        time: worker.status?.lastScaleTime ?? "",
        reason: worker.status?.lastScaleReason ?? "",
      };
      fields = { ...fields, lastScaleTime: st.lastScale.time, lastScaleReason: st.lastScale.reason };
    }
    const fingerprint = JSON.stringify({ ...fields, lag: undefined, c: condition.status + condition.reason });
    const changed = fingerprint !== st.lastWritten;
    const stale =
      now - st.lastWrittenMs >= (this.deps.statusIntervalMs ?? 10_000) && fields.lag !== worker.status?.lag;
    if (!urgent && !changed && !stale) return;
    await this.deps.kube.applyStatus(
      WORKER_PLURAL,
      worker,
      { ...fields, conditions },
      AUTOSCALER_FIELD_MANAGER,
    );
    st.lastWritten = fingerprint;
    st.lastWrittenMs = now;
  }
}

class TopicMissingError extends Error {
  constructor(readonly topics: string[]) {
    super(`topic(s) ${topics.join(", ")} do not exist in Kafka`);
  }
}
