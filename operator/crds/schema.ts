/**
 * OpenAPI v3 structural schemas of the Eventloom CRDs: the source of truth for
 * `crds/*.yaml` (see generate.ts). Every node carries a description, because
 * `kubectl explain` is how most people will discover these fields.
 *
 * CEL rules (`x-kubernetes-validations`) carry the cross-field checks. The API
 * server estimates each rule's worst-case cost from maxItems/maxLength and
 * refuses the CRD when it is too high, so every list and string a rule touches
 * is bounded.
 */
import {
  DEFAULT_ACTIVATION_LAG,
  DEFAULT_CONCURRENCY,
  DEFAULT_COOLDOWN,
  DEFAULT_DEAD_LETTER,
  DEFAULT_DELETION_POLICY,
  DEFAULT_LAG_PER_REPLICA,
  DEFAULT_MAX_REPLICAS,
  DEFAULT_MIN_REPLICAS,
  DEFAULT_MODE,
  DEFAULT_PARTITIONS,
  DEFAULT_POLL_INTERVAL,
  DEFAULT_REPLICAS,
  DEFAULT_RETRY,
  DEFAULT_SCALE_DOWN_STABILIZATION,
  DEFAULT_SCALING,
  DEFAULT_SIGNING_POLICY,
  DEFAULT_STEP_TIMEOUT,
  DEFAULT_TOPIC_RETENTION,
  DELETION_POLICIES,
  DURATION_PATTERN,
  MAX_DEPENDS_ON,
  MAX_DURATION_LENGTH,
  MAX_EVENT_TYPE_LENGTH,
  MAX_EVENT_TYPES_PER_STEP,
  MAX_PARTITIONS,
  MAX_RETRY_ATTEMPTS,
  MAX_RETRY_TIERS,
  MAX_STEPS,
  MAX_WORKER_STEPS,
  MAX_WORKER_SUBSCRIBES,
  MODES,
  SIGNING_POLICIES,
  STEP_NAME_PATTERN,
} from "./types.ts";

/** A CEL rule, as `x-kubernetes-validations` takes it. */
export interface ValidationRule {
  rule: string;
  message?: string;
  /** CEL expression producing the message; `message` is the fallback if it fails. */
  messageExpression?: string;
  // FieldValueDuplicate is left out on purpose: the API server drops the message for it.
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired";
  /** Path (relative to the node carrying the rule) reported as the error's field. */
  fieldPath?: string;
}

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps these CRDs use. */
export interface SchemaProps {
  /** Required on every node but the root `metadata` (the API server forbids it there); schema.test.ts checks. */
  description?: string;
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  format?: string;
  properties?: Record<string, SchemaProps>;
  required?: string[];
  items?: SchemaProps;
  enum?: readonly (string | number)[];
  default?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  "x-kubernetes-preserve-unknown-fields"?: true;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-validations"?: ValidationRule[];
}

type Extra = Omit<SchemaProps, "description" | "type">;

const str = (description: string, extra: Extra = {}): SchemaProps => ({ description, type: "string", ...extra });
const int = (description: string, extra: Extra = {}): SchemaProps => ({
  description,
  type: "integer",
  ...extra,
});
const bool = (description: string, extra: Extra = {}): SchemaProps => ({ description, type: "boolean", ...extra });
const obj = (description: string, properties: Record<string, SchemaProps>, extra: Extra = {}): SchemaProps => ({
  description,
  type: "object",
  properties,
  ...extra,
});
const arr = (description: string, items: SchemaProps, extra: Extra = {}): SchemaProps => ({
  description,
  type: "array",
  items,
  ...extra,
});
const duration = (description: string, extra: Extra = {}): SchemaProps =>
  str(`${description} A duration such as "500ms", "30s", "5m" or "1h30m" (units ms, s, m, h).`, {
    pattern: DURATION_PATTERN,
    maxLength: MAX_DURATION_LENGTH,
    ...extra,
  });

/** CEL: true when `field` (a CEL expression) is an absent or unparsable duration, so a rule can skip it. */
const notADuration = (field: string): string => `!${field}.matches('${DURATION_PATTERN}')`;

const DNS_LABEL_HINT = "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

const eventType = (description: string): SchemaProps =>
  str(description, { minLength: 1, maxLength: MAX_EVENT_TYPE_LENGTH, pattern: "^\\S+$" });

const stepName = (description: string): SchemaProps =>
  str(`${description} A DNS-1123 label: ${DNS_LABEL_HINT}.`, { maxLength: 63, pattern: STEP_NAME_PATTERN });

// ---------------------------------------------------------------------------
// Shared nodes
// ---------------------------------------------------------------------------

const apiVersionField = str(
  "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
);
const kindField = str(
  "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
);

/**
 * Names end up in Kafka topic names and label values, so they are DNS labels
 * (max 63). The API server allows nothing on `metadata` itself but `type` and
 * restrictions of name/generateName: hence no description on this node.
 */
const metadataField = (what: string, usedIn: string): SchemaProps => ({
  type: "object",
  properties: {
    name: str(
      `Name of the ${what}, unique in its namespace. It becomes part of ${usedIn}, so it must be a DNS-1123 label: ${DNS_LABEL_HINT}.`,
      { maxLength: 63, pattern: STEP_NAME_PATTERN },
    ),
  },
});

export const conditionSchema: SchemaProps = obj(
  "Condition is one aspect of the object's current state, in the standard metav1.Condition shape.",
  {
    type: str("Type of the condition in CamelCase, e.g. Ready.", {
      maxLength: 316,
      pattern: "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    }),
    status: str("Status of the condition: True, False or Unknown.", { enum: ["True", "False", "Unknown"] }),
    observedGeneration: int(
      "The metadata.generation the condition was computed from. If it is older than the object's current generation, the condition is out of date.",
      { format: "int64", minimum: 0 },
    ),
    lastTransitionTime: str("Last time the condition's status changed (RFC 3339).", { format: "date-time" }),
    reason: str("Machine-readable CamelCase reason for the condition's last transition, e.g. WorkerMissing.", {
      maxLength: 1024,
      minLength: 1,
      pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    }),
    message: str("Human-readable explanation: what happened and what to do about it.", { maxLength: 32768 }),
  },
  { required: ["type", "status", "lastTransitionTime", "reason", "message"] },
);

const conditionsField = (types: string): SchemaProps =>
  arr(`Current state of the object as standard conditions (${types}).`, conditionSchema, {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
    maxItems: 16,
  });

const observedGenerationField = int(
  "The metadata.generation the operator last acted on. When it is lower than metadata.generation, the status does not reflect the latest spec yet.",
  { format: "int64", minimum: 0 },
);

// ---------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------

export const retryPolicySchema: SchemaProps = obj(
  "How a failed attempt of this step is retried. Retries go through shared non-blocking retry topics (<topic>-retry-<ms>), so a slow retry never blocks other runs; after the last retry the record goes to the dead-letter topic. Defaults: 3 retries after 1s, 2s, 4s.",
  {
    attempts: int("Retries after the first failed attempt. 0 sends a failed record straight to the dead-letter topic.", {
      minimum: 0,
      maximum: MAX_RETRY_ATTEMPTS,
      default: DEFAULT_RETRY.attempts,
    }),
    initialBackoff: duration("Delay before the first retry.", { default: DEFAULT_RETRY.initialBackoff }),
    multiplier: {
      description: "Each further delay is the previous delay times this factor, capped at maxBackoff. 1 gives a constant delay.",
      type: "number",
      minimum: 1,
      maximum: 10,
      default: DEFAULT_RETRY.multiplier,
    },
    maxBackoff: duration("Upper bound for a computed delay; must be at least initialBackoff.", {
      default: DEFAULT_RETRY.maxBackoff,
    }),
    tiers: arr(
      "Explicit delays, one per retry, used instead of initialBackoff/multiplier/maxBackoff. Its length must equal attempts. Each distinct delay is one shared retry topic, so prefer a few reused values.",
      duration("Delay before this retry."),
      { maxItems: MAX_RETRY_TIERS, "x-kubernetes-list-type": "atomic" },
    ),
  },
  {
    default: {},
    "x-kubernetes-validations": [
      {
        rule: `!has(self.initialBackoff) || !has(self.maxBackoff) || ${notADuration("self.initialBackoff")} || ${notADuration("self.maxBackoff")} || duration(self.maxBackoff) >= duration(self.initialBackoff)`,
        message: "retry.maxBackoff must be at least retry.initialBackoff",
        messageExpression:
          "'retry.maxBackoff (' + self.maxBackoff + ') must be at least retry.initialBackoff (' + self.initialBackoff + ')'",
        fieldPath: ".maxBackoff",
      },
      {
        rule: "!has(self.tiers) || !has(self.attempts) || size(self.tiers) == self.attempts",
        message: "retry.tiers must list exactly one delay per retry attempt; set retry.attempts to the number of tiers",
        messageExpression:
          "'retry.tiers lists %d delays but retry.attempts is %d; list exactly one delay per retry attempt (set attempts to %d)'.format([size(self.tiers), self.attempts, size(self.tiers)])",
        fieldPath: ".tiers",
      },
    ],
  },
);

export const stepSchema: SchemaProps = obj(
  "One unit of work. In orchestrated mode the engine sends the step's command event (type) once every step in dependsOn has completed; in choreographed mode the step runs when one of the events it subscribes to arrives.",
  {
    name: stepName("Name of the step, unique within the Orchestration. Workers refer to steps by this name."),
    type: eventType(
      "Orchestrated mode (required there): the CloudEvent type of the command the engine sends to this step's topic, e.g. com.example.tenant.createRealm. Not allowed in choreographed mode, where steps are triggered by subscribes.",
    ),
    dependsOn: arr(
      "Orchestrated mode: steps that must complete before this one starts. Steps with no dependsOn start when the run starts; two steps depending on the same step run in parallel. Each entry must name a step listed earlier in spec.steps, which keeps the graph free of cycles. Not allowed in choreographed mode.",
      stepName("Name of a step listed earlier in spec.steps."),
      { maxItems: MAX_DEPENDS_ON, "x-kubernetes-list-type": "set" },
    ),
    subscribes: arr(
      "Choreographed mode (required there): CloudEvent types that trigger this step, e.g. com.example.order.created. Not allowed in orchestrated mode.",
      eventType("A CloudEvent type."),
      { minItems: 1, maxItems: MAX_EVENT_TYPES_PER_STEP, "x-kubernetes-list-type": "set" },
    ),
    emits: arr(
      "Choreographed mode: CloudEvent types this step may publish, including failure events such as com.example.payment.failed. The engine uses them to follow a run across steps. Not allowed in orchestrated mode.",
      eventType("A CloudEvent type."),
      { maxItems: MAX_EVENT_TYPES_PER_STEP, "x-kubernetes-list-type": "set" },
    ),
    timeout: duration("How long one attempt may run before it counts as failed and is retried.", {
      default: DEFAULT_STEP_TIMEOUT,
    }),
    retry: retryPolicySchema,
    compensation: eventType(
      "CloudEvent type that undoes this step (e.g. com.example.inventory.release). When a run fails or is undone, the engine sends the compensation of every completed step, in reverse completion order. Omit for steps with nothing to undo.",
    ),
    worker: stepName(
      "Name of the Worker (same namespace) that must handle this step. When omitted, the step is bound to whichever Worker lists it in spec.steps.",
    ),
  },
  {
    required: ["name"],
    "x-kubernetes-validations": [
      {
        rule: "!has(self.dependsOn) || !(self.name in self.dependsOn)",
        message: "a step cannot depend on itself",
        messageExpression: "'step ' + self.name + ' lists itself in dependsOn: a step cannot depend on itself'",
        fieldPath: ".dependsOn",
      },
      {
        rule: `!has(self.timeout) || ${notADuration("self.timeout")} || duration(self.timeout) > duration('0s')`,
        message: "timeout must be greater than 0",
        fieldPath: ".timeout",
      },
    ],
  },
);

export const topicSettingsSchema: SchemaProps = obj(
  "Kafka settings for this Orchestration's step topics. Changing partitions later only grows topics (Kafka cannot shrink them).",
  {
    partitions: int(
      "Partitions per step topic. A Worker never runs more replicas than its topic has partitions, so this caps its scaling. Keep it small: every partition costs broker memory.",
      { minimum: 1, maximum: MAX_PARTITIONS, default: DEFAULT_PARTITIONS },
    ),
    replicationFactor: int(
      "Copies of each partition across brokers. When omitted, the broker's default.replication.factor applies. Must not exceed the number of brokers.",
      { minimum: 1, maximum: 32 },
    ),
    retention: duration("How long records are kept in the step topics.", { default: DEFAULT_TOPIC_RETENTION }),
  },
  { default: {} },
);

export const deadLetterSchema: SchemaProps = obj(
  "Dead-letter handling: records that failed every retry (or failed signature verification) land in a dead-letter topic shared by the Orchestration's steps, where they can be listed and replayed through the gateway's DLQ API.",
  {
    enabled: bool("Keep failed records in the dead-letter topic. When false they are logged and dropped.", {
      default: DEFAULT_DEAD_LETTER.enabled,
    }),
    maxReplays: int(
      "How many times one record may be replayed from the dead-letter topic; stops replay loops of records that can never succeed.",
      { minimum: 0, maximum: 100, default: DEFAULT_DEAD_LETTER.maxReplays },
    ),
    retention: duration("How long records are kept in the dead-letter topic.", {
      default: DEFAULT_DEAD_LETTER.retention,
    }),
  },
  { default: {} },
);

export const signingSchema: SchemaProps = obj(
  "Event signing for this Orchestration's events (CloudEvents verifiability extension, Ed25519).",
  {
    policy: str(
      "required: every command and result is signed, and events without a valid signature go straight to the dead-letter topic. none: no signing, for high-volume, low-value streams.",
      { enum: SIGNING_POLICIES, default: DEFAULT_SIGNING_POLICY },
    ),
  },
  { default: {} },
);

/**
 * A CEL messageExpression: `message`, then the names of the steps matching
 * `condition`. It uses format() rather than `+`/join(): the API server's cost
 * estimator treats their results as unbounded strings and refuses the CRD.
 */
const listingSteps = (message: string, label: string, condition: string): string =>
  `'${message}; ${label}: %s'.format([self.steps.filter(s, ${condition}).map(s, s.name)])`;

/**
 * CEL: step `t` is one of step `s`'s dependencies but is listed at or after `s`.
 * Looping over steps (not over dependsOn entries) and comparing positions with
 * indexOf on the steps list keeps the cost estimate within budget; mapping the
 * steps to their names first does not (the estimator cannot bound map()).
 */
const dependencyListedLater =
  "t.name != s.name && t.name in s.dependsOn && self.steps.indexOf(t) >= self.steps.indexOf(s)";

export const orchestrationSpecSchema: SchemaProps = obj(
  "The desired workflow: its steps and how their events are carried.",
  {
    mode: str(
      "orchestrated: the engine drives each run, sending step commands in dependsOn order and compensating on failure. choreographed: steps react to each other's events (subscribes/emits) and the engine only follows runs.",
      { enum: MODES, default: DEFAULT_MODE },
    ),
    steps: arr("The workflow's steps. Names are unique; dependsOn forms a graph that must be free of cycles.", stepSchema, {
      minItems: 1,
      maxItems: MAX_STEPS,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    }),
    inputSchema: {
      description:
        "JSON Schema (draft 2020-12) the data of a run's start event must satisfy. The gateway checks it at ingress and answers 400 with the schema errors. Omit to accept any input.",
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    },
    topics: topicSettingsSchema,
    deadLetter: deadLetterSchema,
    signing: signingSchema,
    deletionPolicy: str(
      "What happens to the Kafka topics when this Orchestration is deleted. Retain (default) keeps them and their records; Delete removes them.",
      { enum: DELETION_POLICIES, default: DEFAULT_DELETION_POLICY },
    ),
  },
  {
    required: ["steps"],
    "x-kubernetes-validations": [
      {
        rule: "self.steps.all(s, self.steps.exists_one(t, t.name == s.name))",
        message: "step names must be unique",
        messageExpression: listingSteps(
          "step names must be unique",
          "repeated",
          "!self.steps.exists_one(t, t.name == s.name)",
        ),
        fieldPath: ".steps",
      },
      {
        rule: "self.steps.all(s, !has(s.dependsOn) || s.dependsOn.all(d, self.steps.exists(t, t.name == d)))",
        message: "dependsOn must name steps of this Orchestration",
        messageExpression: listingSteps(
          "dependsOn must name steps of this Orchestration",
          "steps with an unknown dependsOn entry",
          "has(s.dependsOn) && s.dependsOn.exists(d, !self.steps.exists(t, t.name == d))",
        ),
        fieldPath: ".steps",
      },
      {
        rule: `self.steps.all(s, !has(s.dependsOn) || !self.steps.exists(t, ${dependencyListedLater}))`,
        message:
          "each step must be listed after the steps in its dependsOn (this keeps the graph free of cycles); reorder spec.steps",
        messageExpression: listingSteps(
          "each step must be listed after the steps in its dependsOn (this keeps the graph free of cycles); reorder spec.steps",
          "steps listed before one of their dependencies",
          `has(s.dependsOn) && self.steps.exists(t, ${dependencyListedLater})`,
        ),
        fieldPath: ".steps",
      },
      {
        rule: "self.mode != 'orchestrated' || self.steps.all(s, has(s.type))",
        message: "in orchestrated mode every step needs a type (the CloudEvent type of its command)",
        messageExpression: listingSteps(
          "in orchestrated mode every step needs a type (the CloudEvent type of its command)",
          "missing on",
          "!has(s.type)",
        ),
        fieldPath: ".steps",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.mode != 'orchestrated' || self.steps.all(s, !has(s.subscribes) && !has(s.emits))",
        message:
          "subscribes and emits are for choreographed mode; in orchestrated mode steps are ordered by dependsOn (or set mode: choreographed)",
        messageExpression: listingSteps(
          "subscribes and emits are for choreographed mode; in orchestrated mode steps are ordered by dependsOn (or set mode: choreographed)",
          "found on",
          "has(s.subscribes) || has(s.emits)",
        ),
        fieldPath: ".steps",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.mode != 'choreographed' || self.steps.all(s, has(s.subscribes))",
        message: "in choreographed mode every step needs subscribes (the event types that trigger it)",
        messageExpression: listingSteps(
          "in choreographed mode every step needs subscribes (the event types that trigger it)",
          "missing on",
          "!has(s.subscribes)",
        ),
        fieldPath: ".steps",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.mode != 'choreographed' || self.steps.all(s, !has(s.dependsOn) && !has(s.type))",
        message:
          "in choreographed mode steps are triggered by the events they subscribe to: remove dependsOn and type (or set mode: orchestrated)",
        messageExpression: listingSteps(
          "in choreographed mode steps are triggered by the events they subscribe to: remove dependsOn and type (or set mode: orchestrated)",
          "found on",
          "has(s.dependsOn) || has(s.type)",
        ),
        fieldPath: ".steps",
        reason: "FieldValueForbidden",
      },
    ],
  },
);

export const stepBindingSchema: SchemaProps = obj(
  "Where one step ended up: the Worker that handles it and the Kafka topic that carries its commands.",
  {
    name: str("Name of the step.", { maxLength: 63 }),
    worker: str("Name of the Worker bound to the step; absent while no Worker handles it.", { maxLength: 63 }),
    topic: str("Kafka topic carrying the step's command events.", { maxLength: 249 }),
  },
  { required: ["name"] },
);

export const orchestrationStatusSchema: SchemaProps = obj(
  "Observed state, written by the operator.",
  {
    observedGeneration: observedGenerationField,
    conditions: conditionsField(
      "Ready: topics exist and every step has a Worker; TopicsReady: the Kafka topics match spec.topics; WorkersBound: every step is bound to a Worker",
    ),
    topics: arr("Kafka topics the operator manages for this Orchestration.", str("A Kafka topic name.", { maxLength: 249 }), {
      maxItems: 256,
      "x-kubernetes-list-type": "atomic",
    }),
    steps: arr("Per-step binding to a Worker and a topic.", stepBindingSchema, {
      maxItems: MAX_STEPS,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    }),
    stepCount: int("Number of steps in spec.steps (shown by kubectl get).", { minimum: 0 }),
    missingWorkers: arr(
      "Steps that no Worker handles yet. Runs cannot start until this is empty: apply a Worker that lists these steps.",
      str("Name of a step without a Worker.", { maxLength: 63 }),
      { maxItems: MAX_STEPS, "x-kubernetes-list-type": "atomic" },
    ),
  },
);

export const orchestrationSchema: SchemaProps = obj(
  "Orchestration is an event-driven workflow: a set of steps carried as CloudEvents over Kafka, either driven by the Eventloom engine (orchestrated) or reacting to each other's events (choreographed). The operator creates the Kafka topics and binds each step to a Worker.",
  {
    apiVersion: apiVersionField,
    kind: kindField,
    metadata: metadataField("Orchestration", "Kafka topic names and label values"),
    spec: orchestrationSpecSchema,
    status: orchestrationStatusSchema,
  },
  { required: ["spec"] },
);

// ---------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------

export const scalingSchema: SchemaProps = obj(
  "Autoscaling from consumer lag. Every pollInterval: desired = ceil(lag / lagPerReplica), clamped to [minReplicas, maxReplicas] and to the topic's partition count; a Worker at 0 replicas gets 1 once lag reaches activationLag. Scale-up is immediate; scale-down waits for scaleDownStabilization.",
  {
    enabled: bool("Scale the Worker from lag. When false, spec.replicas is used as is.", {
      default: DEFAULT_SCALING.enabled,
    }),
    minReplicas: int("Fewest replicas. 0 lets an idle Worker scale to zero.", {
      minimum: 0,
      maximum: 1000,
      default: DEFAULT_MIN_REPLICAS,
    }),
    maxReplicas: int(
      "Most replicas. Replicas beyond the topic's partition count would sit idle, so the operator never goes past it.",
      { minimum: 1, maximum: 1000, default: DEFAULT_MAX_REPLICAS },
    ),
    lagPerReplica: int("Unprocessed records one replica is expected to absorb.", {
      format: "int64",
      minimum: 1,
      default: DEFAULT_LAG_PER_REPLICA,
    }),
    activationLag: int("Lag at which a Worker at zero replicas gets its first replica.", {
      format: "int64",
      minimum: 1,
      default: DEFAULT_ACTIVATION_LAG,
    }),
    pollInterval: duration("How often lag is measured. At least 1s.", { default: DEFAULT_POLL_INTERVAL }),
    scaleDownStabilization: duration(
      "Scale down only to the highest replica count desired during this window, so brief dips in lag do not cause churn.",
      { default: DEFAULT_SCALE_DOWN_STABILIZATION },
    ),
    cooldown: duration("How long lag must stay at zero before an idle Worker is scaled to zero (only when minReplicas is 0).", {
      default: DEFAULT_COOLDOWN,
    }),
  },
  {
    default: {},
    "x-kubernetes-validations": [
      {
        rule: "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
        message: "scaling.minReplicas must not be greater than scaling.maxReplicas",
        messageExpression:
          "'scaling.minReplicas (%d) must not be greater than scaling.maxReplicas (%d)'.format([self.minReplicas, self.maxReplicas])",
        fieldPath: ".minReplicas",
      },
      {
        rule: `!has(self.pollInterval) || ${notADuration("self.pollInterval")} || duration(self.pollInterval) >= duration('1s')`,
        message: "scaling.pollInterval must be at least 1s",
        fieldPath: ".pollInterval",
      },
    ],
  },
);

const envVarSchema: SchemaProps = {
  description:
    "An environment variable (a Kubernetes EnvVar: name with value or valueFrom), copied into the Worker's container.",
  type: "object",
  required: ["name"],
  properties: {
    name: str("Name of the variable.", { minLength: 1 }),
    value: str("Literal value of the variable."),
    valueFrom: {
      description: "Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef), as in a Pod spec.",
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    },
  },
};

export const workerSpecSchema: SchemaProps = obj(
  "The desired worker service: which steps it handles and how its pods run.",
  {
    orchestration: str(
      "Name of the Orchestration (in the same namespace) whose steps this Worker handles. The Worker may be applied before or after the Orchestration; the binding happens when both exist.",
      { maxLength: 63, pattern: STEP_NAME_PATTERN },
    ),
    steps: arr(
      "Names of the Orchestration's steps this Worker handles; it consumes each step's topic. Set steps or subscribes, not both.",
      stepName("Name of a step of the Orchestration."),
      { minItems: 1, maxItems: MAX_WORKER_STEPS, "x-kubernetes-list-type": "set" },
    ),
    subscribes: arr(
      "Choreographed Orchestrations only: CloudEvent types this Worker consumes. The Worker is bound to every step whose subscribes list is contained in this list; when two Workers match one step, name the Worker in that step's worker field. Set steps or subscribes, not both.",
      eventType("A CloudEvent type."),
      { minItems: 1, maxItems: MAX_WORKER_SUBSCRIBES, "x-kubernetes-list-type": "set" },
    ),
    image: str("Container image of the worker, e.g. registry.example.com/realm-worker:1.4.2.", { minLength: 1 }),
    command: arr(
      "Entrypoint of the container. When omitted, the image's ENTRYPOINT is used.",
      str("One element of the command."),
      { "x-kubernetes-list-type": "atomic" },
    ),
    args: arr("Arguments to the entrypoint. When omitted, the image's CMD is used.", str("One argument."), {
      "x-kubernetes-list-type": "atomic",
    }),
    env: arr("Environment variables for the worker container, as in a Pod spec.", envVarSchema, {
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    }),
    resources: {
      description:
        "Compute resources of the worker container (requests and limits), as in a Pod spec. More info: https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/",
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    },
    serviceAccountName: str("ServiceAccount the worker pods run as. When omitted, the namespace's default.", {
      maxLength: 253,
    }),
    concurrency: int("Records each replica processes in parallel (across partitions of the same topic).", {
      minimum: 1,
      maximum: 1000,
      default: DEFAULT_CONCURRENCY,
    }),
    replicas: int(
      "Replica count used when scaling.enabled is false. This is the field kubectl scale sets; while scaling is enabled the autoscaler owns the replica count and this value is ignored.",
      { minimum: 0, maximum: 1000, default: DEFAULT_REPLICAS },
    ),
    scaling: scalingSchema,
  },
  {
    required: ["orchestration", "image"],
    "x-kubernetes-validations": [
      {
        rule: "has(self.steps) != has(self.subscribes)",
        message:
          "set exactly one of steps (the Orchestration steps this Worker handles) or subscribes (event types, for choreographed Orchestrations)",
      },
    ],
  },
);

export const workerStatusSchema: SchemaProps = obj("Observed state, written by the operator.", {
  observedGeneration: observedGenerationField,
  replicas: int("Replicas of the Worker's Deployment right now.", { minimum: 0 }),
  desiredReplicas: int("Replicas the autoscaler (or spec.replicas, when scaling is disabled) asks for.", {
    minimum: 0,
  }),
  lag: int("Records not yet processed, summed over the Worker's topics and partitions, at the last poll.", {
    format: "int64",
    minimum: 0,
  }),
  lastScaleTime: str("When the replica count last changed (RFC 3339).", { format: "date-time" }),
  lastScaleReason: str("Why the replica count last changed, e.g. \"lag 420 > 4 x lagPerReplica 100\".", {
    maxLength: 1024,
  }),
  selector: str("Label selector of the Worker's pods in string form; used by the scale subresource.", {
    maxLength: 1024,
  }),
  conditions: conditionsField(
    "Ready: the Deployment has the desired replicas available; Bound: the Worker's steps exist in its Orchestration; ScalingActive: lag could be measured",
  ),
});

export const workerSchema: SchemaProps = obj(
  "Worker is a service that handles an Orchestration's steps (or, in choreography, consumes event types). The operator runs it as a Deployment and scales it from the lag of its Kafka topics.",
  {
    apiVersion: apiVersionField,
    kind: kindField,
    metadata: metadataField("Worker", "Deployment, consumer group and label values"),
    spec: workerSpecSchema,
    status: workerStatusSchema,
  },
  { required: ["spec"] },
);
