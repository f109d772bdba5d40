/**
 * Reconciles one Orchestration: its Kafka topics, its signing key, its trust
 * document, the binding of its steps to Workers, and its status. Level
 * triggered: the input is only the key; everything is re-read and recomputed.
 *
 * Order: get → gone? forget → deleting? finalize → ensure finalizer → topics →
 * key → workers and trust → status (written once, only when it changed).
 */
import type * as k8s from "@kubernetes/client-node";
import type { Condition, Orchestration, OrchestrationStatus, StepBinding, Worker } from "./crds/types.ts";
import {
  DEFAULT_DELETION_POLICY,
  DEFAULT_SIGNING_POLICY,
  ORCHESTRATION_CONDITIONS,
  ORCHESTRATION_PLURAL,
} from "./crds/types.ts";
import type { ConditionInput } from "./conditions.ts";
import { setConditions, statusChanged, getCondition } from "./conditions.ts";
import { diffTopics, topicsFor } from "./builders/topics.ts";
import type { DesiredTopic } from "./builders/topics.ts";
import { workerSteps } from "./builders/deployment.ts";
import {
  signingKeySecretFor,
  signingKeySecretName,
  signingKeysFromSecret,
  trustConfigMapFor,
} from "./builders/keys.ts";
import type { TrustEntry } from "./builders/keys.ts";
import { isSpecError } from "./builders/errors.ts";
import { generateSigningKey } from "../services/events/keys.ts";
import type { SigningKey } from "../services/events/keys.ts";
import { KafkaUnavailableError } from "../services/kafka/client.ts";
import type { Kube } from "./kube.ts";
import type { SharedKafkaAdmin } from "./kafka-admin.ts";
import type { EventRecorder } from "./runtime/events.ts";
import type { Logger } from "./runtime/log.ts";
import type { ReconcileResult } from "./runtime/queue.ts";
import { isConflict } from "./runtime/errors.ts";

/** Finalizer that lets the operator delete (or deliberately keep) the topics before the object goes. */
export const TOPICS_FINALIZER = "eventloom.io/topics";

const MANAGED_CONFIGS = ["cleanup.policy", "retention.ms"];
const TRUST_REAPPLY_MS = 5 * 60_000;
/**
 * How old the shared list of the cluster's topics may be. One metadata request
 * over every topic serves all reconciles; demanding a fresher one made each
 * reconcile wait for the next request (seconds apart with 8,000 topics on a
 * busy broker) while holding its place in the queue.
 */
const TOPICS_MAX_AGE_MS = 5000;
/**
 * How old the list may be for an Orchestration with no topics yet. With
 * thousands of topics a fresh list takes seconds, and 1,000 new Orchestrations
 * each waiting for a fresher one than the last held the queue.
 */
const NEW_TOPICS_MAX_AGE_MS = 30_000;
/** How long the trust document and status wait for a new bound Worker to create its signing key. */
const KEY_GRACE_MS = 30_000;
/** When topics Kafka accepted but does not list yet are looked at again (their configs then). */
const PENDING_RECHECK_MS = 5000;

export interface OrchestrationReconcilerDeps {
  kube: Kube;
  /** The Orchestration from the watch cache (authoritative once synced); the API is read when absent. */
  cached?: (namespace: string, name: string) => Orchestration | undefined;
  kafka: SharedKafkaAdmin;
  /** Workers from the watch cache. */
  workersIn: (namespace: string) => readonly Worker[];
  /** Signing-key Secrets from the watch cache, by namespace/name. */
  secret: (namespace: string, name: string) => k8s.V1Secret | undefined;
  recorder: EventRecorder;
  log: Logger;
  topicPrefix?: string;
  /**
   * How long the finalizer keeps trying to delete topics while Kafka does not
   * answer before it gives up, lets the Orchestration go and records a
   * Warning Event naming the topics left behind.
   */
  finalizerTimeoutMs: number;
  now?: () => Date;
  generateKey?: () => SigningKey;
  /** Reports how long a step of the reconcile took (metrics). */
  observePhase?: (phase: string, seconds: number) => void;
}

interface TopicsOutcome {
  condition: ConditionInput;
  topics: string[];
  /** A transient failure to surface after the status is written (so the queue backs off). */
  retry?: Error;
  /** Topics Kafka accepted are not listed yet: look again after this long. */
  requeueAfterMs?: number;
}

export class OrchestrationReconciler {
  /** Which Orchestration claimed which topic, to refuse a second claimant with a clear condition. */
  private readonly claims = new Map<string, string>();
  /** The topics each Orchestration claimed (the reverse of `claims`). */
  private readonly claimed = new Map<string, string[]>();
  private readonly appliedTrust = new Map<string, { content: string; atMs: number }>();

  constructor(private readonly deps: OrchestrationReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = "", name = ""] = key.split("/");
    let orch =
      this.deps.cached?.(namespace, name) ?? (await this.deps.kube.getOrchestration(namespace, name));
    if (!orch) {
      this.release(key);
      return;
    }
    if (orch.metadata.deletionTimestamp) return this.finalize(key, orch);
    const finalizers = orch.metadata.finalizers ?? [];
    // The signing key does not wait for the finalizer (its Secret goes with the Orchestration through
    // its ownerReference); the topics do, so that a deletion always finds the finalizer to remove them.
    const withFinalizer = finalizers.includes(TOPICS_FINALIZER)
      ? Promise.resolve(orch)
      : (this.deps.kube.setFinalizers(ORCHESTRATION_PLURAL, orch, [
          ...finalizers,
          TOPICS_FINALIZER,
        ]) as Promise<Orchestration>);
    const phase = this.phaseTimer();
    const [patched, engineKeys] = await Promise.all([withFinalizer, this.reconcileSigningKey(orch)]);
    orch = patched;
    phase("finalizer-and-key");

    const generation = orch.metadata.generation ?? 0;
    const topics = await this.reconcileTopics(key, orch, generation);
    phase("topics");
    const { steps, missing, trust, keyless } = this.bindWorkers(orch, engineKeys);
    if (engineKeys.length > 0) {
      // A bound Worker whose key is not there yet is about to create it (and then queues this
      // Orchestration): the trust document would be written now and again in a moment, and Ready would
      // be reported before the Worker's key is trusted. So both wait for it, for a bounded time.
      const waitMs = topics.retry ? 0 : this.keyWaitMs(keyless);
      if (waitMs > 0) return { requeueAfterMs: waitMs };
      await this.applyTrust(key, trustConfigMapFor(orch, trust));
      phase("trust");
    }

    const workersBound: ConditionInput =
      missing.length === 0
        ? {
            type: ORCHESTRATION_CONDITIONS.workersBound,
            status: "True",
            reason: "AllStepsBound",
            message: `all ${steps.length} steps have a Worker`,
            observedGeneration: generation,
          }
        : {
            type: ORCHESTRATION_CONDITIONS.workersBound,
            status: "False",
            reason: "MissingWorkers",
            message: `no Worker handles step(s) ${missing.join(", ")}: apply a Worker with spec.orchestration: ${name} and spec.steps listing them`,
            observedGeneration: generation,
          };
    const ready: ConditionInput =
      topics.condition.status === "True" && workersBound.status === "True"
        ? {
            type: ORCHESTRATION_CONDITIONS.ready,
            status: "True",
            reason: "Ready",
            message: "topics exist and every step has a Worker",
            observedGeneration: generation,
          }
        : topics.condition.status !== "True"
          ? { ...topics.condition, type: ORCHESTRATION_CONDITIONS.ready, status: "False" }
          : { ...workersBound, type: ORCHESTRATION_CONDITIONS.ready };

    const now = (this.deps.now ?? (() => new Date()))();
    const status: OrchestrationStatus = {
      observedGeneration: generation,
      conditions: setConditions(orch.status?.conditions, [topics.condition, workersBound, ready], now),
      topics: topics.topics,
      steps,
      stepCount: orch.spec.steps.length,
      missingWorkers: missing,
    };
    await this.writeStatus(orch, status);
    phase("status");
    if (topics.retry) throw topics.retry;
    if (topics.requeueAfterMs !== undefined) return { requeueAfterMs: topics.requeueAfterMs };
    return;
  }

  /** Returns a function that reports the time since its last call (or this one) under a phase name. */
  private phaseTimer(): (name: string) => void {
    let last = performance.now();
    return (name) => {
      const now = performance.now();
      this.deps.observePhase?.(name, (now - last) / 1000);
      last = now;
    };
  }

  private async writeStatus(orch: Orchestration, status: OrchestrationStatus): Promise<void> {
    if (!statusChanged(orch.status, status)) return;
    const { namespace = "", name = "" } = orch.metadata;
    await this.deps.kube.patchStatus(ORCHESTRATION_PLURAL, namespace, name, status);
    for (const next of status.conditions ?? []) {
      const before = getCondition(orch.status?.conditions, next.type);
      if (before?.status === next.status && before.reason === next.reason) continue;
      if (next.type === ORCHESTRATION_CONDITIONS.ready) {
        await this.event(orch, next.status === "True" ? "Normal" : "Warning", next.reason, next.message);
      } else if (next.status === "False") {
        await this.event(orch, "Warning", next.reason, next.message);
      }
    }
  }

  private async reconcileTopics(
    key: string,
    orch: Orchestration,
    generation: number,
  ): Promise<TopicsOutcome> {
    const type = ORCHESTRATION_CONDITIONS.topicsReady;
    /** TopicsReady=False for a reason that no topic work can fix: nothing is created. */
    const notReady = (reason: string, message: string): TopicsOutcome => ({
      condition: { type, status: "False", reason, message, observedGeneration: generation },
      topics: [],
    });
    let desired: DesiredTopic[];
    try {
      desired = topicsFor(orch, this.deps.topicPrefix !== undefined ? { prefix: this.deps.topicPrefix } : {});
    } catch (err) {
      if (!isSpecError(err)) throw err;
      return notReady(err.reason, err.message);
    }
    const names = desired.map((t) => t.name);
    const taken = names.filter((t) => {
      const owner = this.claims.get(t);
      return owner !== undefined && owner !== key;
    });
    if (taken.length > 0) {
      const message = `topic(s) ${taken.join(", ")} already belong to Orchestration ${taken.map((t) => this.claims.get(t)).join(", ")}; rename this Orchestration or its steps`;
      return notReady("TopicCollision", message);
    }
    this.claim(key, names);

    try {
      const kafka = this.deps.kafka;
      // A few seconds old is fine: a topic deleted by hand shows up on the next look, and a collision
      // the list did not show yet is refused by Kafka (which drops the list, see below).
      // An Orchestration that has no topics yet (new) takes any recent list: what it would create and
      // what exists after all is sorted out by Kafka (creating an existing topic is a no-op) and by the
      // look after creation, which asks for a fresh list again.
      const cluster = await kafka.topics(
        (orch.status?.topics ?? []).length > 0 ? TOPICS_MAX_AGE_MS : NEW_TOPICS_MAX_AGE_MS,
      );
      // Kafka treats '.' and '_' alike in metric names and refuses a topic that would clash.
      const clashes = names.filter((n) => !cluster.has(n) && cluster.metricTwin(n) !== undefined);
      if (clashes.length > 0) {
        const message = `Kafka already has topic(s) ${clashes.map((c) => cluster.metricTwin(c)).join(", ")}, which collide with ${clashes.join(", ")} (Kafka treats '.' and '_' as the same); rename this Orchestration or delete the other topic`;
        return notReady("TopicCollision", message);
      }
      const present = names.filter((n) => cluster.has(n));
      const configs = await kafka.topicConfigs(present, MANAGED_CONFIGS);
      const diff = diffTopics(
        desired,
        present.map((n) => ({
          ...(cluster.get(n) as { name: string; partitions: number; replicationFactor: number }),
          configs: configs.get(n) ?? {},
        })),
      );
      // Created a moment ago and not listed yet: on its way, not created again.
      const create = diff.create.filter((t) => !kafka.isPending(t.name));
      if (create.length > 0) {
        await kafka.createTopics(
          create.map((t) => ({
            name: t.name,
            partitions: t.partitions,
            replicationFactor: t.replicationFactor,
            configs: t.configs,
          })),
        );
        await this.event(
          orch,
          "Normal",
          "TopicsCreated",
          `created Kafka topic(s) ${create.map((t) => t.name).join(", ")}`,
        );
      }
      if (diff.increasePartitions.length + diff.alterConfigs.length > 0) {
        await kafka.use(async (admin) => {
          for (const inc of diff.increasePartitions) {
            await admin.increasePartitions(inc.name, inc.to);
            await this.event(
              orch,
              "Normal",
              "PartitionsIncreased",
              `raised partitions of ${inc.name} from ${inc.from} to ${inc.to}`,
            );
          }
          for (const change of diff.alterConfigs) {
            await admin.setTopicConfigs(change.name, change.configs);
            const what = Object.entries(change.changed)
              .map(([k, v]) => `${k} ${v.from ?? "unset"} → ${v.to}`)
              .join(", ");
            await this.event(orch, "Normal", "TopicConfigUpdated", `updated ${change.name}: ${what}`);
          }
        });
      }
      const refused = [...diff.refusedDecreases, ...diff.refusedReplicationChanges];
      if (refused.length > 0) {
        const reason =
          diff.refusedDecreases.length > 0 ? "PartitionDecreaseRefused" : "ReplicationChangeRefused";
        return {
          condition: {
            type,
            status: "False",
            reason,
            message: refused.map((r) => r.message).join(" "),
            observedGeneration: generation,
          },
          topics: names,
        };
      }
      // Accepted by Kafka (now or a moment ago) but not listed by its metadata yet: they exist as far as
      // Kafka's controller is concerned; they are looked at again shortly, once listed (configs, partitions).
      const onTheirWay = diff.create.length > 0;
      return {
        condition: {
          type,
          status: "True",
          reason: "TopicsReady",
          message: `${names.length} topics exist with the desired partitions and configs`,
          observedGeneration: generation,
        },
        topics: names,
        ...(onTheirWay ? { requeueAfterMs: PENDING_RECHECK_MS } : {}),
      };
    } catch (err) {
      const unavailable = err instanceof KafkaUnavailableError;
      // Refused (a collision with a topic the list did not show, say): the next look asks Kafka again.
      if (!unavailable) this.deps.kafka.invalidateTopics();
      const condition: ConditionInput = {
        type,
        status: "False",
        reason: unavailable ? "KafkaUnavailable" : "KafkaError",
        message: unavailable
          ? `Kafka at ${process.env.KAFKA_BROKERS ?? "the configured brokers"} does not answer; retrying with backoff (${(err as Error).message})`
          : (err as Error).message,
        observedGeneration: generation,
      };
      return { condition, topics: orch.status?.topics ?? [], retry: err as Error };
    }
  }

  private async reconcileSigningKey(orch: Orchestration): Promise<SigningKey[]> {
    if ((orch.spec.signing?.policy ?? DEFAULT_SIGNING_POLICY) !== "required") return [];
    const namespace = orch.metadata.namespace ?? "";
    const name = signingKeySecretName(orch);
    // The watch cache is authoritative once synced: a Secret missing from it is created without a read
    // first (one that exists after all, created a moment ago, answers 409 and is read then).
    const cached = this.deps.secret(namespace, name);
    if (cached) return signingKeysFromSecret(cached);
    const key = (this.deps.generateKey ?? generateSigningKey)();
    try {
      await this.deps.kube.core.createNamespacedSecret({ namespace, body: signingKeySecretFor(orch, key) });
    } catch (err) {
      // Another writer created it first: use theirs (never two keys by accident).
      if (!isConflict(err)) throw err;
      const theirs = await this.deps.kube.readSecret(namespace, name);
      return theirs ? signingKeysFromSecret(theirs) : [];
    }
    await this.event(
      orch,
      "Normal",
      "SigningKeyCreated",
      `created Ed25519 signing key ${key.keyid} in Secret ${name}`,
    );
    return [key];
  }

  private bindWorkers(
    orch: Orchestration,
    engineKeys: SigningKey[],
  ): { steps: StepBinding[]; missing: string[]; trust: TrustEntry[]; keyless: Worker[] } {
    const namespace = orch.metadata.namespace ?? "";
    const name = orch.metadata.name ?? "";
    const workers = this.deps
      .workersIn(namespace)
      .filter((w) => w.spec.orchestration === name && !w.metadata.deletionTimestamp)
      .slice()
      .sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
    const boundTo = new Map<string, string>();
    const trust: TrustEntry[] = engineKeys.length > 0 ? [{ role: "engine", keys: engineKeys }] : [];
    const keyless: Worker[] = [];
    for (const worker of workers) {
      const claimed = workerSteps(worker, orch).filter((s) => !boundTo.has(s));
      for (const s of claimed) boundTo.set(s, worker.metadata.name ?? "");
      const secret = this.deps.secret(namespace, signingKeySecretName(worker));
      if (claimed.length > 0 && secret) {
        trust.push({
          role: "worker",
          worker: worker.metadata.name ?? "",
          steps: claimed,
          keys: signingKeysFromSecret(secret),
        });
      } else if (claimed.length > 0) {
        keyless.push(worker);
      }
    }
    const prefix = this.deps.topicPrefix !== undefined ? { prefix: this.deps.topicPrefix } : {};
    const stepTopics = new Map(
      (() => {
        try {
          return topicsFor(orch, prefix)
            .filter((t) => t.purpose === "step")
            .map((t) => [t.step ?? "", t.name] as const);
        } catch {
          return [];
        }
      })(),
    );
    const steps: StepBinding[] = orch.spec.steps.map((s) => {
      const worker = boundTo.get(s.name);
      const topic = stepTopics.get(s.name);
      return { name: s.name, ...(worker ? { worker } : {}), ...(topic ? { topic } : {}) };
    });
    const missing = orch.spec.steps.filter((s) => !boundTo.has(s.name)).map((s) => s.name);
    return { steps, missing, trust, keyless };
  }

  private async finalize(key: string, orch: Orchestration): Promise<ReconcileResult> {
    const finalizers = orch.metadata.finalizers ?? [];
    if (!finalizers.includes(TOPICS_FINALIZER)) {
      this.release(key);
      return;
    }
    const policy = orch.spec.deletionPolicy ?? DEFAULT_DELETION_POLICY;
    const topics = new Set(orch.status?.topics ?? []);
    try {
      for (const t of topicsFor(
        orch,
        this.deps.topicPrefix !== undefined ? { prefix: this.deps.topicPrefix } : {},
      ))
        topics.add(t.name);
    } catch {
      // An invalid spec has no derivable topics; status.topics still lists what was created.
    }
    if (policy === "Delete" && topics.size > 0) {
      try {
        const kafka = this.deps.kafka;
        const existing = await kafka.topics(1000);
        // Created but not listed yet still counts (however long Kafka takes to list it): deleting it fails
        // until Kafka lists it, and is retried.
        const deleted = [...topics].filter((t) => existing.has(t) || kafka.createdUnlisted(t));
        await kafka.deleteTopics(deleted);
        await this.event(
          orch,
          "Normal",
          "TopicsDeleted",
          `deleted Kafka topic(s) ${deleted.join(", ") || "(none existed)"} (deletionPolicy: Delete)`,
        );
      } catch (err) {
        const since = Date.parse(orch.metadata.deletionTimestamp ?? "");
        const waited = Date.now() - (Number.isNaN(since) ? Date.now() : since);
        if (waited < this.deps.finalizerTimeoutMs) {
          await this.event(
            orch,
            "Warning",
            "TopicDeletionFailed",
            `could not delete topics yet, retrying until ${Math.round(this.deps.finalizerTimeoutMs / 1000)}s after deletion: ${(err as Error).message}`,
          );
          throw err;
        }
        await this.event(
          orch,
          "Warning",
          "TopicsOrphaned",
          `gave up deleting Kafka topics after ${Math.round(waited / 1000)}s (${(err as Error).message}); delete them by hand: ${[...topics].join(", ")}`,
        );
      }
    } else {
      await this.event(
        orch,
        "Normal",
        "TopicsRetained",
        `kept Kafka topic(s) ${[...topics].join(", ")} (deletionPolicy: Retain)`,
      );
    }
    await this.deps.kube.setFinalizers(
      ORCHESTRATION_PLURAL,
      orch,
      finalizers.filter((f) => f !== TOPICS_FINALIZER),
    );
    this.release(key);
    return;
  }

  /**
   * How much longer the trust document waits for the keys of these bound
   * Workers: up to `KEY_GRACE_MS` from each Worker's creation (with 1,000 new
   * Workers queued, 5 s expired before many were reconciled, and the trust was
   * written twice after all). A Worker that has not created its key by then
   * (its reconcile fails) does not hold up the trust of the others.
   */
  private keyWaitMs(keyless: readonly Worker[]): number {
    const now = (this.deps.now ?? (() => new Date()))().getTime();
    let wait = 0;
    for (const w of keyless) {
      const age = now - Date.parse(w.metadata.creationTimestamp ?? "");
      if (age >= 0 && age < KEY_GRACE_MS) wait = Math.max(wait, KEY_GRACE_MS - age);
    }
    return wait;
  }

  /**
   * Applies the trust ConfigMap when its content changed, and at least every
   * `TRUST_REAPPLY_MS` (which also repairs hand edits): a no-op apply per
   * reconcile would cost an API write per Orchestration per resync.
   */
  private async applyTrust(key: string, cm: k8s.V1ConfigMap): Promise<void> {
    const content = JSON.stringify(cm);
    const last = this.appliedTrust.get(key);
    if (last && last.content === content && Date.now() - last.atMs < TRUST_REAPPLY_MS) return;
    await this.deps.kube.apply(cm);
    this.appliedTrust.set(key, { content, atMs: Date.now() });
  }

  private claim(key: string, topics: string[]): void {
    for (const t of this.claimed.get(key) ?? []) {
      if (!topics.includes(t) && this.claims.get(t) === key) this.claims.delete(t);
    }
    for (const t of topics) this.claims.set(t, key);
    this.claimed.set(key, topics);
  }

  private release(key: string): void {
    this.appliedTrust.delete(key);
    for (const t of this.claimed.get(key) ?? []) if (this.claims.get(t) === key) this.claims.delete(t);
    this.claimed.delete(key);
  }

  private event(
    orch: Orchestration,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void> {
    return this.deps.recorder.record(orch, type, reason, message);
  }
}

/** Conditions as last written, for tests and the CLI. */
export function readyCondition(orch: Orchestration): Condition | undefined {
  return getCondition(orch.status?.conditions, ORCHESTRATION_CONDITIONS.ready);
}
