/**
 * TypeScript shape of Eventloom's custom resources (`eventloom.io/v1alpha1`).
 *
 * These interfaces and the OpenAPI schemas in `schema.ts` describe the same
 * objects; `schema.test.ts` checks that the defaults below match the schema
 * defaults so the two cannot drift. Optional spec fields are optional here
 * because users may omit them; the API server fills in the documented defaults
 * on write, and code reading objects should still fall back to the named
 * `DEFAULT_*` constants (objects written before a default existed lack it).
 */

/** API group of all Eventloom resources. */
export const GROUP = "eventloom.io";
/** The only served (and stored) version. */
export const VERSION = "v1alpha1";
/** `apiVersion` value for manifests. */
export const API_VERSION = `${GROUP}/${VERSION}`;

export const ORCHESTRATION_KIND = "Orchestration";
export const ORCHESTRATION_SINGULAR = "orchestration";
export const ORCHESTRATION_PLURAL = "orchestrations";
export const ORCHESTRATION_SHORT_NAMES = ["orch", "orchs"] as const;

export const WORKER_KIND = "Worker";
export const WORKER_SINGULAR = "worker";
export const WORKER_PLURAL = "workers";
export const WORKER_SHORT_NAMES = ["wkr"] as const;

/** `kubectl get eventloom` lists every Eventloom resource. */
export const CATEGORY = "eventloom";

/** A Go-style duration string such as `"500ms"`, `"30s"`, `"1h30m"` (units ms, s, m, h). */
export type Duration = string;

// ---------------------------------------------------------------------------
// Enumerations
// ---------------------------------------------------------------------------

export const MODES = ["orchestrated", "choreographed"] as const;
/** `orchestrated`: the engine sends each step's command in DAG order. `choreographed`: steps react to each other's events. */
export type Mode = (typeof MODES)[number];

export const SIGNING_POLICIES = ["required", "none"] as const;
export type SigningPolicy = (typeof SIGNING_POLICIES)[number];

export const DELETION_POLICIES = ["Retain", "Delete"] as const;
/** What happens to the Kafka topics when the Orchestration is deleted. */
export type DeletionPolicy = (typeof DELETION_POLICIES)[number];

export const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;
export type ConditionStatus = (typeof CONDITION_STATUSES)[number];

/** Condition types written on an Orchestration's status. */
export const ORCHESTRATION_CONDITIONS = {
  ready: "Ready",
  topicsReady: "TopicsReady",
  workersBound: "WorkersBound",
} as const;
export type OrchestrationConditionType = (typeof ORCHESTRATION_CONDITIONS)[keyof typeof ORCHESTRATION_CONDITIONS];

/** Condition types written on a Worker's status. */
export const WORKER_CONDITIONS = {
  ready: "Ready",
  bound: "Bound",
  scalingActive: "ScalingActive",
} as const;
export type WorkerConditionType = (typeof WORKER_CONDITIONS)[keyof typeof WORKER_CONDITIONS];

// ---------------------------------------------------------------------------
// Named defaults (mirrored by `default:` in schema.ts)
// ---------------------------------------------------------------------------

export const DEFAULT_MODE: Mode = "orchestrated";
/** How long one attempt of a step may run before it counts as failed. */
export const DEFAULT_STEP_TIMEOUT: Duration = "30s";
/** Seed 001: retry 3 times after 1 s, 2 s, 4 s, then dead-letter. */
export const DEFAULT_RETRY = {
  attempts: 3,
  initialBackoff: "1s",
  multiplier: 2,
  maxBackoff: "4s",
} as const satisfies Required<Omit<RetryPolicy, "tiers">>;
/** Small on purpose: see "Topic budget" in ARCHITECTURE.md. */
export const DEFAULT_PARTITIONS = 3;
/** Kafka's own default retention (7 days). */
export const DEFAULT_TOPIC_RETENTION: Duration = "168h";
export const DEFAULT_TOPICS = {
  partitions: DEFAULT_PARTITIONS,
  retention: DEFAULT_TOPIC_RETENTION,
} as const satisfies TopicSettings;
export const DEFAULT_DEAD_LETTER = {
  enabled: true,
  maxReplays: 3,
  retention: "336h",
} as const satisfies Required<DeadLetterSettings>;
export const DEFAULT_SIGNING_POLICY: SigningPolicy = "required";
export const DEFAULT_DELETION_POLICY: DeletionPolicy = "Retain";

export const DEFAULT_CONCURRENCY = 1;
/** Replica count used when `scaling.enabled` is false and `replicas` is omitted. */
export const DEFAULT_REPLICAS = 1;
export const DEFAULT_MIN_REPLICAS = 0;
export const DEFAULT_MAX_REPLICAS = 10;
/** Unprocessed records one replica is expected to absorb; desired = ceil(lag / lagPerReplica). */
export const DEFAULT_LAG_PER_REPLICA = 100;
/** Lag at which a Worker scaled to zero gets its first replica. */
export const DEFAULT_ACTIVATION_LAG = 1;
export const DEFAULT_POLL_INTERVAL: Duration = "2s";
export const DEFAULT_SCALE_DOWN_STABILIZATION: Duration = "60s";
/** How long lag must stay at zero before scaling to zero (KEDA's cooldownPeriod). */
export const DEFAULT_COOLDOWN: Duration = "300s";
export const DEFAULT_SCALING = {
  enabled: true,
  minReplicas: DEFAULT_MIN_REPLICAS,
  maxReplicas: DEFAULT_MAX_REPLICAS,
  lagPerReplica: DEFAULT_LAG_PER_REPLICA,
  activationLag: DEFAULT_ACTIVATION_LAG,
  pollInterval: DEFAULT_POLL_INTERVAL,
  scaleDownStabilization: DEFAULT_SCALE_DOWN_STABILIZATION,
  cooldown: DEFAULT_COOLDOWN,
} as const satisfies Required<ScalingSpec>;

// ---------------------------------------------------------------------------
// Limits (bound the API server's CEL cost estimate; also sane product limits)
// ---------------------------------------------------------------------------

export const MAX_STEPS = 64;
export const MAX_DEPENDS_ON = 16;
export const MAX_EVENT_TYPES_PER_STEP = 16;
export const MAX_RETRY_ATTEMPTS = 20;
export const MAX_RETRY_TIERS = 20;
export const MAX_PARTITIONS = 1000;
export const MAX_WORKER_STEPS = 64;
export const MAX_WORKER_SUBSCRIBES = 64;
export const MAX_EVENT_TYPE_LENGTH = 253;
export const MAX_DURATION_LENGTH = 32;

/** DNS-1123 label: step names become part of Kafka topic names and Kubernetes labels. */
export const STEP_NAME_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** Duration syntax accepted by every duration field (a subset of Go's time.ParseDuration). */
export const DURATION_PATTERN = "^([0-9]+(ms|s|m|h))+$";

// ---------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------

/** Minimal ObjectMeta; the fields Eventloom reads or writes. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
}

/** The `metav1.Condition` shape. */
export interface Condition {
  /** CamelCase condition type, e.g. `Ready`. */
  type: string;
  status: ConditionStatus;
  /** Generation of the object the condition was computed from. */
  observedGeneration?: number;
  /** RFC 3339 time the status last changed (not when the condition was last written). */
  lastTransitionTime: string;
  /** CamelCase machine-readable reason, e.g. `WorkerMissing`. */
  reason: string;
  /** Human-readable explanation: what happened and what to do. */
  message: string;
}

// ---------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------

/** Retry behaviour of a step: non-blocking retry topics, then the dead-letter topic. */
export interface RetryPolicy {
  /** Retries after the first failure (0 = dead-letter at once). Default 3. */
  attempts?: number;
  /** Delay before the first retry. Default "1s". */
  initialBackoff?: Duration;
  /** Each next delay = previous × multiplier, capped at maxBackoff. Default 2. */
  multiplier?: number;
  /** Upper bound of a computed delay. Default "4s". */
  maxBackoff?: Duration;
  /** Explicit delays, one per attempt; overrides initialBackoff/multiplier/maxBackoff. Length must equal attempts. */
  tiers?: Duration[];
}

/** One unit of work in an Orchestration. */
export interface Step {
  /** DNS-1123 label, unique within the Orchestration. */
  name: string;
  /** CloudEvent type of the command the engine sends (orchestrated mode; required there, forbidden in choreographed mode). */
  type?: string;
  /** Steps that must complete first (orchestrated mode only). No entries = starts with the run. */
  dependsOn?: string[];
  /** Event types that trigger this step (choreographed mode only; required there). */
  subscribes?: string[];
  /** Event types this step publishes when done (choreographed mode only). */
  emits?: string[];
  /** Per-attempt timeout. Default "30s". */
  timeout?: Duration;
  retry?: RetryPolicy;
  /** CloudEvent type that undoes this step, sent in reverse completion order when a run is compensated. */
  compensation?: string;
  /** Name of the Worker (same namespace) that must handle this step; otherwise any Worker listing the step binds. */
  worker?: string;
}

/** Kafka settings for the Orchestration's topics. */
export interface TopicSettings {
  /** Partitions per topic; bounds a Worker's useful replicas. Default 3. */
  partitions?: number;
  /** Replication factor; omitted = the broker's default.replication.factor. */
  replicationFactor?: number;
  /** Topic retention. Default "168h". */
  retention?: Duration;
}

export interface DeadLetterSettings {
  /** Send exhausted records to `<topic>-dlt` (otherwise they are logged and dropped). Default true. */
  enabled?: boolean;
  /** How many times one record may be replayed from the dead-letter topic. Default 3. */
  maxReplays?: number;
  /** Dead-letter topic retention. Default "336h". */
  retention?: Duration;
}

export interface SigningSettings {
  /** `required` (default): unsigned or badly signed events are dead-lettered. `none`: no signing. */
  policy?: SigningPolicy;
}

export interface OrchestrationSpec {
  /** Default "orchestrated". */
  mode?: Mode;
  steps: Step[];
  /** JSON Schema the run input must satisfy; checked by the gateway at ingress. */
  inputSchema?: Record<string, unknown>;
  topics?: TopicSettings;
  deadLetter?: DeadLetterSettings;
  signing?: SigningSettings;
  /** Default "Retain". */
  deletionPolicy?: DeletionPolicy;
}

/** Where a step ended up: which Worker handles it and which topic carries its commands. */
export interface StepBinding {
  name: string;
  /** Bound Worker; absent while no Worker declares the step. */
  worker?: string;
  /** Kafka topic of the step. */
  topic?: string;
}

export interface OrchestrationStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** Kafka topics the operator created for this Orchestration. */
  topics?: string[];
  steps?: StepBinding[];
  /** Number of steps (shown by `kubectl get orch`). */
  stepCount?: number;
  /** Steps no Worker handles yet. */
  missingWorkers?: string[];
}

export interface Orchestration {
  apiVersion: typeof API_VERSION;
  kind: typeof ORCHESTRATION_KIND;
  metadata: ObjectMeta;
  spec: OrchestrationSpec;
  status?: OrchestrationStatus;
}

// ---------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------

/** Lag-driven autoscaling of a Worker's Deployment. */
export interface ScalingSpec {
  /** Default true. When false, `spec.replicas` is used as is. */
  enabled?: boolean;
  /** Default 0 (scale to zero when idle). */
  minReplicas?: number;
  /** Default 10. Also clamped to the step topics' partition count. */
  maxReplicas?: number;
  /** Default 100. */
  lagPerReplica?: number;
  /** Default 1. */
  activationLag?: number;
  /** Default "2s". */
  pollInterval?: Duration;
  /** Default "60s". */
  scaleDownStabilization?: Duration;
  /** Default "300s". */
  cooldown?: Duration;
}

/** A Kubernetes EnvVar; passed through to the Deployment untouched. */
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

export interface WorkerSpec {
  /** Orchestration (same namespace) whose steps this Worker handles. */
  orchestration: string;
  /** Step names handled (orchestrated mode). Exactly one of steps / subscribes. */
  steps?: string[];
  /**
   * Event types consumed (choreographed Orchestrations only). Binds the Worker to every step whose
   * `subscribes` is contained in this list. Exactly one of steps / subscribes.
   */
  subscribes?: string[];
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  /** Kubernetes ResourceRequirements; passed through to the container. */
  resources?: Record<string, unknown>;
  serviceAccountName?: string;
  /** Records processed in parallel per replica. Default 1. */
  concurrency?: number;
  /** Replicas when scaling is disabled; target of `kubectl scale`. Default 1. */
  replicas?: number;
  scaling?: ScalingSpec;
}

export interface WorkerStatus {
  observedGeneration?: number;
  /** Replicas of the Worker's Deployment. */
  replicas?: number;
  /** Replicas the autoscaler (or spec.replicas) asks for. */
  desiredReplicas?: number;
  /** Records not yet processed, summed over the Worker's topics and partitions. */
  lag?: number;
  lastScaleTime?: string;
  lastScaleReason?: string;
  /** Label selector of the Worker's pods, in string form (scale subresource). */
  selector?: string;
  conditions?: Condition[];
}

export interface Worker {
  apiVersion: typeof API_VERSION;
  kind: typeof WORKER_KIND;
  metadata: ObjectMeta;
  spec: WorkerSpec;
  status?: WorkerStatus;
}
