/**
 * The Deployment that runs a Worker (after kubebuilder's deploymentForMemcached).
 *
 * Pure and deterministic: the same Worker and Orchestration give a deep-equal
 * Deployment, so server-side apply is a no-op and pods never roll for nothing.
 * The Worker owns the Deployment (garbage collection removes it with the Worker).
 */
import type { V1Deployment, V1EnvVar, V1ResourceRequirements } from "@kubernetes/client-node";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_DEAD_LETTER,
  DEFAULT_REPLICAS,
  DEFAULT_SCALING,
  DEFAULT_SIGNING_POLICY,
} from "../crds/types.ts";
import type { Orchestration, Worker } from "../crds/types.ts";
import { consumerGroupFor, deadLetterTopic, resultsTopic, stepTopic } from "../../services/events/topics.ts";
import type { TopicNamingOptions } from "../../services/events/topics.ts";
import { InvalidSpecError } from "./errors.ts";
import { retryTopicsByStep } from "./topics.ts";
import { signingKeySecretName, trustConfigMapName, TRUST_FILE, PRIVATE_JWK_FILE } from "./keys.ts";
import {
  MANAGED_BY,
  ORCHESTRATION_LABEL,
  SPEC_HASH_ANNOTATION,
  WORKER_LABEL,
  controllerReference,
  identify,
  stableHash,
} from "./meta.ts";

/** `app.kubernetes.io/name` of every worker pod. */
export const WORKER_APP_NAME = "eventloom-worker";
/** The only container of a worker pod. */
export const WORKER_CONTAINER = "worker";
/** Non-root UID/GID of worker pods (the distroless `nonroot` user). */
export const WORKER_UID = 65532;
/** Where the Worker's signing-key Secret is mounted. */
export const SIGNING_KEY_DIR = "/var/run/eventloom/keys";
/** Where the Orchestration's trust ConfigMap is mounted. */
export const TRUST_DIR = "/var/run/eventloom/trust";
/** Requests and limits of a Worker that gives none. */
export const DEFAULT_WORKER_RESOURCES = {
  requests: { cpu: "50m", memory: "64Mi" },
  limits: { cpu: "500m", memory: "256Mi" },
} as const;

/**
 * Env names the operator sets and a Worker may not: the consumer group and
 * topics are a contract with the autoscaler and the engine. (`OTEL_*` may be
 * overridden: the Worker's value replaces the operator's.)
 */
export function isReservedEnvName(name: string): boolean {
  return name === "KAFKA_BROKERS" || name.startsWith("EVENTLOOM_");
}

export interface DeploymentOptions extends TopicNamingOptions {
  /** Bootstrap brokers for `KAFKA_BROKERS`, e.g. `kafka-bootstrap.kafka:9092`. */
  kafkaBrokers: string;
  /** OTLP endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`; the variable is left out when not given. */
  otlpEndpoint?: string;
  /** The steps bound to this Worker, when the caller already resolved them; default `workerSteps(worker, orchestration)`. */
  steps?: readonly string[];
}

/**
 * The steps of `orchestration` a Worker handles, in the Orchestration's order:
 * those it lists in `spec.steps` (orchestrated mode), or whose `subscribes`
 * types are all in its `spec.subscribes` (choreographed mode); in both cases
 * minus steps whose `worker` field names another Worker.
 */
export function workerSteps(worker: Worker, orchestration: Orchestration): string[] {
  const { name } = identify(worker);
  const listed = worker.spec.steps ? new Set(worker.spec.steps) : undefined;
  const subscribed = new Set(worker.spec.subscribes ?? []);
  return orchestration.spec.steps
    .filter((step) => step.worker === undefined || step.worker === name)
    .filter((step) =>
      listed !== undefined
        ? listed.has(step.name)
        : step.subscribes !== undefined &&
          step.subscribes.length > 0 &&
          step.subscribes.every((t) => subscribed.has(t)),
    )
    .map((step) => step.name);
}

/** Labels selecting a Worker's pods; never change them (a Deployment's selector is immutable). */
export function workerSelectorLabels(worker: Worker): Record<string, string> {
  return { "app.kubernetes.io/name": WORKER_APP_NAME, [WORKER_LABEL]: identify(worker).name };
}

/** The selector in string form, for the Worker's `status.selector` (scale subresource). */
export function workerSelector(worker: Worker): string {
  return Object.entries(workerSelectorLabels(worker))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/** `<worker>-worker`. */
export function workerDeploymentName(worker: Worker): string {
  return `${identify(worker).name}-worker`;
}

/** Whether the lag autoscaler owns the replica count (then the Deployment leaves `replicas` unset). */
export function autoscalingEnabled(worker: Worker): boolean {
  return worker.spec.scaling?.enabled ?? DEFAULT_SCALING.enabled;
}

/**
 * The apps/v1 Deployment of `worker`, bound to `orchestration`.
 * @throws InvalidSpecError when the two are not in the same namespace, the Worker
 *   names another Orchestration, or its env sets a reserved name; TopicNameError
 *   for names Kafka would refuse.
 */
export function deploymentFor(
  worker: Worker,
  orchestration: Orchestration,
  opts: DeploymentOptions,
): V1Deployment {
  const { name, namespace } = identify(worker);
  const orch = identify(orchestration);
  if (orch.namespace !== namespace || worker.spec.orchestration !== orch.name) {
    throw new InvalidSpecError(
      "OrchestrationMismatch",
      `Worker ${namespace}/${name} belongs to Orchestration ${namespace}/${worker.spec.orchestration}, ` +
        `not ${orch.namespace}/${orch.name}; this is a bug in the caller`,
    );
  }
  for (const env of worker.spec.env ?? []) {
    if (isReservedEnvName(env.name)) {
      throw new InvalidSpecError(
        "ReservedEnvName",
        `Worker ${namespace}/${name} sets env ${env.name}, which the operator sets itself (KAFKA_BROKERS and ` +
          `EVENTLOOM_*); remove it from spec.env`,
      );
    }
  }

  const ref = { namespace, orchestration: orch.name };
  const steps = opts.steps ? [...opts.steps] : workerSteps(worker, orchestration);
  const signing = (orchestration.spec.signing?.policy ?? DEFAULT_SIGNING_POLICY) === "required";
  const deadLetter = orchestration.spec.deadLetter?.enabled ?? DEFAULT_DEAD_LETTER.enabled;

  const env: V1EnvVar[] = [
    { name: "KAFKA_BROKERS", value: opts.kafkaBrokers },
    { name: "EVENTLOOM_NAMESPACE", value: namespace },
    { name: "EVENTLOOM_ORCHESTRATION", value: orch.name },
    { name: "EVENTLOOM_WORKER", value: name },
    { name: "EVENTLOOM_STEPS", value: steps.join(",") },
    { name: "EVENTLOOM_TOPICS", value: steps.map((s) => stepTopic(ref, s, opts)).join(",") },
    ...(worker.spec.subscribes
      ? [{ name: "EVENTLOOM_SUBSCRIBES", value: worker.spec.subscribes.join(",") }]
      : []),
    { name: "EVENTLOOM_CONSUMER_GROUP", value: consumerGroupFor({ namespace, worker: name }, opts) },
    { name: "EVENTLOOM_RETRY_TOPICS", value: JSON.stringify(retryTopicsByStep(orchestration, steps, opts)) },
    ...(deadLetter ? [{ name: "EVENTLOOM_DLT_TOPIC", value: deadLetterTopic(ref, opts) }] : []),
    { name: "EVENTLOOM_RESULTS_TOPIC", value: resultsTopic(ref, opts) },
    { name: "EVENTLOOM_CONCURRENCY", value: String(worker.spec.concurrency ?? DEFAULT_CONCURRENCY) },
    { name: "EVENTLOOM_SIGNING_POLICY", value: signing ? "required" : "none" },
    ...(signing
      ? [
          { name: "EVENTLOOM_SIGNING_KEY_PATH", value: `${SIGNING_KEY_DIR}/${PRIVATE_JWK_FILE}` },
          { name: "EVENTLOOM_TRUST_PATH", value: `${TRUST_DIR}/${TRUST_FILE}` },
        ]
      : []),
    ...(opts.otlpEndpoint ? [{ name: "OTEL_EXPORTER_OTLP_ENDPOINT", value: opts.otlpEndpoint }] : []),
    { name: "OTEL_SERVICE_NAME", value: name },
  ];
  // The Worker's own variables come last; one it shares with ours (OTEL_*) replaces ours,
  // because server-side apply refuses duplicate names in a list keyed by name.
  const userEnv = (worker.spec.env ?? []).map((e) => ({ ...e }) as V1EnvVar);
  const overridden = new Set(userEnv.map((e) => e.name));
  const allEnv = [...env.filter((e) => !overridden.has(e.name)), ...userEnv];

  const selector = workerSelectorLabels(worker);
  const labels = {
    ...selector,
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/component": "worker",
    "app.kubernetes.io/part-of": "eventloom",
    "app.kubernetes.io/managed-by": MANAGED_BY,
    [ORCHESTRATION_LABEL]: orch.name,
  };
  const resources = hasResources(worker.spec.resources)
    ? (structuredClone(worker.spec.resources) as V1ResourceRequirements)
    : (structuredClone(DEFAULT_WORKER_RESOURCES) as unknown as V1ResourceRequirements);

  const spec: NonNullable<V1Deployment["spec"]> = {
    ...(autoscalingEnabled(worker) ? {} : { replicas: worker.spec.replicas ?? DEFAULT_REPLICAS }),
    selector: { matchLabels: selector },
    template: {
      metadata: { labels },
      spec: {
        ...(worker.spec.serviceAccountName
          ? { serviceAccountName: worker.spec.serviceAccountName }
          : { automountServiceAccountToken: false }),
        enableServiceLinks: false,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: WORKER_UID,
          runAsGroup: WORKER_UID,
          fsGroup: WORKER_UID,
          seccompProfile: { type: "RuntimeDefault" },
        },
        containers: [
          {
            name: WORKER_CONTAINER,
            image: worker.spec.image,
            ...(worker.spec.command ? { command: [...worker.spec.command] } : {}),
            ...(worker.spec.args ? { args: [...worker.spec.args] } : {}),
            env: allEnv,
            resources,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: WORKER_UID,
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ["ALL"] },
              seccompProfile: { type: "RuntimeDefault" },
            },
            volumeMounts: [
              { name: "tmp", mountPath: "/tmp" },
              ...(signing
                ? [
                    { name: "signing-key", mountPath: SIGNING_KEY_DIR, readOnly: true },
                    { name: "trust", mountPath: TRUST_DIR, readOnly: true },
                  ]
                : []),
            ],
          },
        ],
        volumes: [
          { name: "tmp", emptyDir: {} },
          ...(signing
            ? [
                // 0440 + fsGroup: readable by the worker's group only.
                {
                  name: "signing-key",
                  secret: { secretName: signingKeySecretName(worker), defaultMode: 0o440 },
                },
                { name: "trust", configMap: { name: trustConfigMapName(orchestration), defaultMode: 0o444 } },
              ]
            : []),
        ],
      },
    },
  };

  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: workerDeploymentName(worker),
      namespace,
      labels,
      annotations: { [SPEC_HASH_ANNOTATION]: stableHash(spec) },
      ownerReferences: [controllerReference(worker)],
    },
    spec,
  };
}

function hasResources(resources: Record<string, unknown> | undefined): resources is Record<string, unknown> {
  return resources !== undefined && Object.keys(resources).length > 0;
}
