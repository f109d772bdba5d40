/**
 * Reconciles one Worker: its signing key, its Deployment (from the pure
 * builder, server-side applied so hand edits to managed fields are reverted),
 * and its status. The replica count belongs to the lag autoscaler while
 * scaling is enabled, and to `spec.replicas` (and `kubectl scale`) otherwise.
 */
import type * as k8s from "@kubernetes/client-node";
import type { Condition, Orchestration, Worker, WorkerStatus } from "./crds/types.ts";
import {
  DEFAULT_SCALING,
  DEFAULT_SIGNING_POLICY,
  DEFAULT_REPLICAS,
  WORKER_CONDITIONS,
  WORKER_PLURAL,
} from "./crds/types.ts";
import type { ConditionInput } from "./conditions.ts";
import { getCondition, setConditions, statusChanged } from "./conditions.ts";
import {
  autoscalingEnabled,
  deploymentFor,
  workerDeploymentName,
  workerSelector,
  workerSteps,
} from "./builders/deployment.ts";
import { signingKeySecretFor, signingKeySecretName } from "./builders/keys.ts";
import { isSpecError } from "./builders/errors.ts";
import { SPEC_HASH_ANNOTATION } from "./builders/meta.ts";
import { generateSigningKey } from "../services/events/keys.ts";
import type { SigningKey } from "../services/events/keys.ts";
import { FIELD_MANAGER } from "./kube.ts";
import type { Kube } from "./kube.ts";
import type { EventRecorder } from "./runtime/events.ts";
import type { CachedDeployment } from "./runtime/informer.ts";
import type { Logger } from "./runtime/log.ts";
import type { ReconcileResult } from "./runtime/queue.ts";
import { isConflict } from "./runtime/errors.ts";

/**
 * How long a new Worker (no status yet) whose Orchestration is not there waits
 * for it before its status says OrchestrationNotFound.
 */
export const ORCHESTRATION_GRACE_MS = 5000;

export interface WorkerReconcilerDeps {
  kube: Kube;
  /** Objects from the watch caches (authoritative once synced); the API is read when absent. */
  cachedWorker?: (namespace: string, name: string) => Worker | undefined;
  cachedOrchestration?: (namespace: string, name: string) => Orchestration | undefined;
  cachedDeployment?: (namespace: string, name: string) => CachedDeployment | undefined;
  recorder: EventRecorder;
  log: Logger;
  kafkaBrokers: string;
  otlpEndpoint?: string;
  topicPrefix?: string;
  /** Signing-key Secrets from the watch cache. */
  secret: (namespace: string, name: string) => k8s.V1Secret | undefined;
  /** Asks for the Orchestration to be reconciled (its trust document lists this Worker's key). */
  enqueueOrchestration: (namespace: string, name: string) => void;
  now?: () => Date;
  generateKey?: () => SigningKey;
  /** Reports how long a step of the reconcile took (metrics). */
  observePhase?: (phase: string, seconds: number) => void;
}

export class WorkerReconciler {
  /** What this process last applied per Deployment, to skip no-op applies. */
  private readonly applied = new Map<string, { hash: string | undefined; generation: number | undefined }>();

  constructor(private readonly deps: WorkerReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = "", name = ""] = key.split("/");
    const worker =
      this.deps.cachedWorker?.(namespace, name) ?? (await this.deps.kube.getWorker(namespace, name));
    // Gone: its Deployment and Secret go with it through their ownerReferences.
    if (!worker || worker.metadata.deletionTimestamp) return;
    const generation = worker.metadata.generation ?? 0;
    const orch =
      this.deps.cachedOrchestration?.(namespace, worker.spec.orchestration) ??
      (await this.deps.kube.getOrchestration(namespace, worker.spec.orchestration));
    if (!orch) {
      // A Worker applied together with its Orchestration is often seen first: give the Orchestration a
      // moment to arrive (its arrival queues this Worker) rather than write a status that is stale at once.
      const now = (this.deps.now ?? (() => new Date()))().getTime();
      const ageMs = now - Date.parse(worker.metadata.creationTimestamp ?? "");
      if (!worker.status && ageMs >= 0 && ageMs < ORCHESTRATION_GRACE_MS) {
        return { requeueAfterMs: ORCHESTRATION_GRACE_MS - ageMs };
      }
      const missing: ConditionInput = {
        type: WORKER_CONDITIONS.bound,
        status: "False",
        reason: "OrchestrationNotFound",
        message: `Orchestration ${namespace}/${worker.spec.orchestration} does not exist; apply it (or fix spec.orchestration)`,
        observedGeneration: generation,
      };
      await this.writeStatus(worker, { selector: workerSelector(worker) }, [
        missing,
        { ...missing, type: WORKER_CONDITIONS.ready },
      ]);
      return;
    }

    const steps = workerSteps(worker, orch);
    const bound: ConditionInput =
      steps.length > 0
        ? {
            type: WORKER_CONDITIONS.bound,
            status: "True",
            reason: "Bound",
            message: `handles step(s) ${steps.join(", ")} of ${orch.metadata.name}`,
            observedGeneration: generation,
          }
        : {
            type: WORKER_CONDITIONS.bound,
            status: "False",
            reason: "NoSteps",
            message: `none of the steps this Worker lists (${(worker.spec.steps ?? worker.spec.subscribes ?? []).join(", ")}) is a step of Orchestration ${orch.metadata.name} that it may handle; check spec.steps and each step's worker field`,
            observedGeneration: generation,
          };

    let last = performance.now();
    const phase = (name: string) => {
      const now = performance.now();
      this.deps.observePhase?.(name, (now - last) / 1000);
      last = now;
    };
    // The key and the Deployment are written side by side: the pod template names the key's Secret,
    // and its pods wait for it (the kubelet retries the volume) if the Deployment lands first.
    const signingKey =
      (orch.spec.signing?.policy ?? DEFAULT_SIGNING_POLICY) === "required"
        ? this.ensureSigningKey(worker, orch)
        : Promise.resolve();
    let deployment: k8s.V1Deployment;
    try {
      deployment = deploymentFor(worker, orch, {
        kafkaBrokers: this.deps.kafkaBrokers,
        ...(this.deps.otlpEndpoint ? { otlpEndpoint: this.deps.otlpEndpoint } : {}),
        ...(this.deps.topicPrefix !== undefined ? { prefix: this.deps.topicPrefix } : {}),
        steps,
      });
    } catch (err) {
      if (!isSpecError(err)) {
        await signingKey.catch(() => undefined); // (its own failure is not the one to report)
        throw err;
      }
      await signingKey;
      const invalid: ConditionInput = {
        type: WORKER_CONDITIONS.ready,
        status: "False",
        reason: err.reason,
        message: err.message,
        observedGeneration: generation,
      };
      await this.writeStatus(worker, { selector: workerSelector(worker) }, [bound, invalid]);
      return;
    }

    const [, applied] = await Promise.all([signingKey, this.applyDeployment(worker, deployment)]);
    phase("key-and-deployment");
    const specReplicas = applied.spec?.replicas ?? DEFAULT_REPLICAS;
    const readyReplicas = applied.status?.readyReplicas ?? 0;
    const ready: ConditionInput =
      specReplicas === 0
        ? {
            type: WORKER_CONDITIONS.ready,
            status: "True",
            reason: "ScaledToZero",
            message: "no replicas wanted: nothing to process",
            observedGeneration: generation,
          }
        : readyReplicas >= specReplicas
          ? {
              type: WORKER_CONDITIONS.ready,
              status: "True",
              reason: "Available",
              message: `${readyReplicas}/${specReplicas} replicas ready`,
              observedGeneration: generation,
            }
          : {
              type: WORKER_CONDITIONS.ready,
              status: "False",
              reason: "ReplicasNotReady",
              message: `${readyReplicas}/${specReplicas} replicas ready`,
              observedGeneration: generation,
            };
    // With scaling on, ScalingActive belongs to the autoscaler, which knows whether lag can be read.
    const scaling: ConditionInput[] = autoscalingEnabled(worker)
      ? []
      : [
          {
            type: WORKER_CONDITIONS.scalingActive,
            status: "False",
            reason: "ScalingDisabled",
            message: "replicas follow spec.replicas",
            observedGeneration: generation,
          },
        ];

    await this.writeStatus(
      worker,
      {
        selector: workerSelector(worker),
        replicas: applied.status?.replicas ?? 0,
        ...(autoscalingEnabled(worker) ? {} : { desiredReplicas: specReplicas }),
      },
      [bound, ready, ...scaling],
    );
    phase("status");
    return;
  }

  /**
   * Server-side applies the Deployment: one write, creation included. While
   * autoscaling is on, the first apply sets the starting replica count
   * (minReplicas) and later applies send the current count back for as long as
   * the operator's apply still owns it (nobody scaled since), so the field is
   * never dropped (which would reset it to 1). The autoscaler's (or `kubectl
   * scale`'s) first change of the count moves its ownership away from the
   * operator, whose applies then leave it alone and never fight the autoscaler.
   */
  private async applyDeployment(worker: Worker, deployment: k8s.V1Deployment): Promise<CachedDeployment> {
    const namespace = worker.metadata.namespace ?? "";
    const name = workerDeploymentName(worker);
    // The watch cache is authoritative once synced: absent means not created yet (the apply creates it).
    const existing = this.deps.cachedDeployment?.(namespace, name);
    // Unchanged since our last apply (same spec hash, no one else bumped its generation): nothing to do.
    const hash = deployment.metadata?.annotations?.[SPEC_HASH_ANNOTATION];
    const last = this.applied.get(`${namespace}/${name}`);
    if (
      existing &&
      last &&
      last.hash === hash &&
      existing.metadata?.generation === last.generation &&
      existing.metadata?.annotations?.[SPEC_HASH_ANNOTATION] === hash
    ) {
      return existing;
    }
    const ownsReplicas = !existing || (existing.replicasOwners ?? []).includes(`${FIELD_MANAGER}/Apply`);
    const body =
      autoscalingEnabled(worker) && ownsReplicas
        ? {
            ...deployment,
            spec: {
              ...deployment.spec!,
              replicas:
                existing?.spec?.replicas ?? worker.spec.scaling?.minReplicas ?? DEFAULT_SCALING.minReplicas,
            },
          }
        : deployment;
    const applied = await this.deps.kube.apply(body);
    if (!existing) {
      await this.deps.recorder.record(worker, "Normal", "DeploymentCreated", `created Deployment ${name}`);
    }
    this.applied.set(`${namespace}/${name}`, { hash, generation: applied.metadata?.generation });
    return applied;
  }

  private async ensureSigningKey(worker: Worker, orch: Orchestration): Promise<void> {
    const namespace = worker.metadata.namespace ?? "";
    const secretName = signingKeySecretName(worker);
    // As for the Orchestration's key: the cache decides, a create of one that exists answers 409.
    if (this.deps.secret(namespace, secretName)) return;
    const key = (this.deps.generateKey ?? generateSigningKey)();
    try {
      await this.deps.kube.core.createNamespacedSecret({ namespace, body: signingKeySecretFor(worker, key) });
      await this.deps.recorder.record(
        worker,
        "Normal",
        "SigningKeyCreated",
        `created Ed25519 signing key ${key.keyid} in Secret ${secretName}`,
      );
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    // Its trust document must now list this key.
    this.deps.enqueueOrchestration(namespace, orch.metadata.name ?? "");
  }

  private async writeStatus(
    worker: Worker,
    fields: Omit<WorkerStatus, "conditions" | "observedGeneration">,
    conditions: ConditionInput[],
  ): Promise<void> {
    const now = (this.deps.now ?? (() => new Date()))();
    // Only this reconciler's fields are compared and written: lag, desiredReplicas and lastScale*
    // belong to the autoscaler, and a merge patch leaves fields it does not name alone.
    const status: WorkerStatus = {
      ...fields,
      observedGeneration: worker.metadata.generation ?? 0,
      // Only the condition types this reconciler owns (transition times kept from the stored ones).
      conditions: setConditions(ownConditions(worker.status?.conditions, conditions), conditions, now),
    };
    const mine = (s: WorkerStatus | undefined): WorkerStatus => ({
      ...(s?.selector !== undefined ? { selector: s.selector } : {}),
      ...(s?.replicas !== undefined ? { replicas: s.replicas } : {}),
      ...(fields.desiredReplicas !== undefined && s?.desiredReplicas !== undefined
        ? { desiredReplicas: s.desiredReplicas }
        : {}),
      ...(s?.observedGeneration !== undefined ? { observedGeneration: s.observedGeneration } : {}),
      ...(s?.conditions ? { conditions: ownConditions(s.conditions, conditions) } : {}),
    });
    if (!statusChanged(mine(worker.status), status)) return;
    await this.deps.kube.applyStatus(WORKER_PLURAL, worker, status, FIELD_MANAGER);
    for (const next of status.conditions ?? []) {
      const before = getCondition(worker.status?.conditions, next.type);
      const problem =
        next.status === "False" &&
        next.type !== WORKER_CONDITIONS.scalingActive &&
        next.reason !== "ReplicasNotReady";
      if (problem && (before?.status !== "False" || before.reason !== next.reason)) {
        await this.deps.recorder.record(worker, "Warning", next.reason, next.message);
      }
    }
  }
}

function ownConditions(
  stored: readonly Condition[] | undefined,
  mine: readonly ConditionInput[],
): Condition[] {
  const types = new Set(mine.map((c) => c.type));
  return (stored ?? []).filter((c) => types.has(c.type));
}
