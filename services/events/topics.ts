/**
 * Kafka topic names, derived only from namespace, Orchestration and step names,
 * so the operator (which creates the topics) and the services (which produce
 * and consume) agree without talking to each other. See `docs/topics.md`.
 *
 *   step command topic   eventloom.<namespace>.<orchestration>.<step>
 *   results topic        eventloom.<namespace>.<orchestration>-results
 *   retry tier           eventloom.<namespace>.<orchestration>-retry-<ms>
 *   dead-letter topic    eventloom.<namespace>.<orchestration>-dlt
 *   engine state         eventloom-engine-state          (one per installation)
 *   consumer group       eventloom.<namespace>.<worker>  (a group, not a topic)
 *
 * Every part is a DNS-1123 label (the CRD schema requires it of Orchestration
 * and step names), so no part contains `.` and the scheme is injective: a step
 * topic has three dots, every other per-Orchestration topic two, with a suffix
 * no other kind ends in, and the engine state topic none. Kafka reports metrics
 * with `.` replaced by `_` and so refuses a topic whose name differs from an
 * existing one only in `.` versus `_`; these names never contain `_`, which
 * rules that clash out too. `detectCollisions` remains for what the scheme
 * cannot see: topics others created in the same Kafka cluster.
 */

/** Kafka refuses longer topic names (the log directory adds a partition suffix to it). */
export const KAFKA_MAX_TOPIC_NAME_LENGTH = 249;
/** First segment of every Eventloom topic. */
export const DEFAULT_TOPIC_PREFIX = "eventloom";

export const TOPIC_PURPOSES = ["step", "results", "retry", "dead-letter", "engine-state"] as const;
/** What a topic carries. */
export type TopicPurpose = (typeof TOPIC_PURPOSES)[number];

/** Identifies an Orchestration's topics. */
export interface OrchestrationTopicRef {
  namespace: string;
  orchestration: string;
}

export interface TopicNamingOptions {
  /**
   * First segment of every name; default `eventloom`. Give each installation
   * sharing one Kafka cluster its own prefix. A DNS-1123 label (no `.`, no `_`).
   */
  prefix?: string;
}

export type TopicNameErrorReason = "TopicNameTooLong" | "TopicNameInvalid";

/** A topic name Kafka would refuse. `reason` is ready to use as a condition reason. */
export class TopicNameError extends Error {
  override readonly name: string = "TopicNameError";
  constructor(
    readonly reason: TopicNameErrorReason,
    message: string,
    /** The offending name, when one could be built. */
    readonly topic?: string,
  ) {
    super(message);
  }
}

/** The name would be longer than Kafka's 249 characters. */
export class TopicNameTooLongError extends TopicNameError {
  override readonly name = "TopicNameTooLongError";
  constructor(
    message: string,
    topic: string,
    /** Characters to remove to fit. */
    readonly excess: number,
  ) {
    super("TopicNameTooLong", message, topic);
  }
}

const LEGAL_TOPIC = /^[a-zA-Z0-9._-]+$/;
const DNS_LABEL_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_HINT =
  'at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit';

function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL_PATTERN.test(value);
}

/** Why Kafka would refuse `name`, or undefined when it is a legal topic name. */
export function topicNameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name === "." || name === "..") return `"${name}" is reserved by Kafka`;
  if (name.length > KAFKA_MAX_TOPIC_NAME_LENGTH) {
    return `it is ${name.length} characters long, over Kafka's limit of ${KAFKA_MAX_TOPIC_NAME_LENGTH}`;
  }
  if (!LEGAL_TOPIC.test(name)) {
    const bad = [...new Set(name.replace(/[a-zA-Z0-9._-]/g, ""))].map((c) => JSON.stringify(c)).join(", ");
    return `it contains ${bad}; Kafka allows only letters, digits, ".", "_" and "-"`;
  }
  return undefined;
}

/**
 * Throws unless Kafka would accept `name`; returns it otherwise.
 * @param what describes the topic for the message, e.g. `topic of step "charge" of Orchestration shop/checkout`.
 * @param shorten what a person should shorten when the name is too long.
 */
export function validateTopicName(
  name: string,
  what = "topic",
  shorten = "the names it is built from",
): string {
  if (name.length > KAFKA_MAX_TOPIC_NAME_LENGTH) {
    const excess = name.length - KAFKA_MAX_TOPIC_NAME_LENGTH;
    throw new TopicNameTooLongError(
      `The Kafka ${what} would be ${name.length} characters long, over Kafka's limit of ` +
        `${KAFKA_MAX_TOPIC_NAME_LENGTH}: "${elide(name)}". Shorten ${shorten} by at least ${excess} ` +
        `character${excess === 1 ? "" : "s"}.`,
      name,
      excess,
    );
  }
  const problem = topicNameProblem(name);
  if (problem !== undefined) {
    throw new TopicNameError(
      "TopicNameInvalid",
      `The Kafka ${what} "${name}" is not valid: ${problem}.`,
      name,
    );
  }
  return name;
}

/**
 * `<prefix>.<namespace>.<orchestration>`: the start of every topic of one
 * Orchestration. Not a topic itself.
 */
export function orchestrationTopicBase(ref: OrchestrationTopicRef, opts: TopicNamingOptions = {}): string {
  const prefix = checkPrefix(opts.prefix);
  if (!isDnsLabel(ref.namespace)) {
    throw new TopicNameError(
      "TopicNameInvalid",
      `Namespace "${ref.namespace}" is not a DNS-1123 label (${DNS_LABEL_HINT}), so no topic name can be built from it.`,
    );
  }
  if (!isDnsLabel(ref.orchestration)) {
    throw new TopicNameError(
      "TopicNameInvalid",
      `Orchestration name "${ref.orchestration}" is not a DNS-1123 label (${DNS_LABEL_HINT}); ` +
        `topic names are built from it, so rename the Orchestration.`,
    );
  }
  return `${prefix}.${ref.namespace}.${ref.orchestration}`;
}

/** Command topic of one step: `<base>.<step>`. The step name must be a DNS-1123 label. */
export function stepTopic(ref: OrchestrationTopicRef, step: string, opts: TopicNamingOptions = {}): string {
  if (!isDnsLabel(step)) {
    throw new TopicNameError(
      "TopicNameInvalid",
      `Step name "${step}" of Orchestration ${describe(ref)} is not a DNS-1123 label (${DNS_LABEL_HINT}); ` +
        `rename the step.`,
    );
  }
  const name = `${orchestrationTopicBase(ref, opts)}.${step}`;
  return validateTopicName(
    name,
    `topic of step "${step}" of Orchestration ${describe(ref)}`,
    `the Orchestration name (${ref.orchestration.length} characters) or the step name (${step.length})`,
  );
}

/** The Orchestration's results topic, `<base>-results`: workers publish step outcomes here. */
export function resultsTopic(ref: OrchestrationTopicRef, opts: TopicNamingOptions = {}): string {
  return validateTopicName(
    `${orchestrationTopicBase(ref, opts)}-results`,
    `results topic of Orchestration ${describe(ref)}`,
    shortenOrchestration(ref),
  );
}

/** The retry tier for one delay, `<base>-retry-<ms>`, shared by every step of the Orchestration. */
export function retryTopic(
  ref: OrchestrationTopicRef,
  delayMs: number,
  opts: TopicNamingOptions = {},
): string {
  if (!Number.isSafeInteger(delayMs) || delayMs < 1) {
    throw new TopicNameError(
      "TopicNameInvalid",
      `Retry delay ${delayMs} of Orchestration ${describe(ref)} is not a whole number of milliseconds of at least 1.`,
    );
  }
  return validateTopicName(
    `${orchestrationTopicBase(ref, opts)}-retry-${delayMs}`,
    `${delayMs}ms retry topic of Orchestration ${describe(ref)}`,
    shortenOrchestration(ref),
  );
}

/** The Orchestration's one dead-letter topic, `<base>-dlt`. */
export function deadLetterTopic(ref: OrchestrationTopicRef, opts: TopicNamingOptions = {}): string {
  return validateTopicName(
    `${orchestrationTopicBase(ref, opts)}-dlt`,
    `dead-letter topic of Orchestration ${describe(ref)}`,
    shortenOrchestration(ref),
  );
}

/**
 * The engine's compacted state topic, one per installation (not per
 * Orchestration: see "Topic budget" in ARCHITECTURE.md). Its `-` after the
 * prefix keeps it apart from every per-Orchestration name, which has a `.` there.
 */
export function engineStateTopic(opts: TopicNamingOptions = {}): string {
  return validateTopicName(`${checkPrefix(opts.prefix)}-engine-state`, "engine state topic");
}

/** Identifies a Worker, whose replicas share one consumer group. */
export interface WorkerGroupRef {
  namespace: string;
  worker: string;
}

/**
 * The consumer group of a Worker's replicas, `<prefix>.<namespace>.<worker>`:
 * the operator's autoscaler measures lag on it, so the two must agree.
 */
export function consumerGroupFor(ref: WorkerGroupRef, opts: TopicNamingOptions = {}): string {
  const prefix = checkPrefix(opts.prefix);
  for (const [what, value] of [
    ["Namespace", ref.namespace],
    ["Worker name", ref.worker],
  ] as const) {
    if (!isDnsLabel(value)) {
      throw new TopicNameError(
        "TopicNameInvalid",
        `${what} "${value}" is not a DNS-1123 label (${DNS_LABEL_HINT}), so no consumer group name can be built from it.`,
      );
    }
  }
  return `${prefix}.${ref.namespace}.${ref.worker}`;
}

/**
 * Kafka's metric form of a topic name (`.` → `_`). Kafka refuses to create a
 * topic whose metric form equals an existing topic's.
 */
export function topicMetricName(name: string): string {
  return name.replaceAll(".", "_");
}

/** Topics one resource wants, for `detectCollisions`. */
export interface TopicOwnership {
  /** Who wants the topics, as a person reads it, e.g. `Orchestration shop/checkout`. */
  owner: string;
  topics: readonly string[];
}

/** Two or more owners (or spellings) that would land on one Kafka topic. */
export interface TopicCollision {
  /** The shared metric form (`.` replaced by `_`). */
  metricName: string;
  /** The distinct names wanted, sorted; more than one means a `.`/`_` clash. */
  topics: string[];
  /** Everyone wanting one of `topics`, sorted. */
  owners: string[];
  /** What clashes and what to do, for a condition message. */
  message: string;
}

/**
 * Which owners would share a topic, by exact name or by Kafka's metric form.
 * One owner listing the same name twice is not a collision; one owner listing
 * two names that clash only in `.` versus `_` is. Output is sorted and stable.
 *
 * Names built here cannot clash with each other (see the top of this file);
 * what can clash is a topic someone else created. So besides the Orchestrations,
 * pass the existing Kafka topics that are not among the desired ones as one more
 * owner (`{ owner: "the existing Kafka topic", topics: existing.filter((t) => !desired.has(t)) }`):
 * a collision then is a clash Kafka would refuse inside CreateTopics, reported
 * on a condition with a message a person can act on instead.
 */
export function detectCollisions(ownerships: readonly TopicOwnership[]): TopicCollision[] {
  const byMetric = new Map<string, { topics: Set<string>; owners: Set<string> }>();
  for (const { owner, topics } of ownerships) {
    for (const topic of topics) {
      const key = topicMetricName(topic);
      let entry = byMetric.get(key);
      if (!entry) byMetric.set(key, (entry = { topics: new Set(), owners: new Set() }));
      entry.topics.add(topic);
      entry.owners.add(owner);
    }
  }
  const collisions: TopicCollision[] = [];
  for (const [metricName, entry] of byMetric) {
    if (entry.owners.size < 2 && entry.topics.size < 2) continue;
    const topics = [...entry.topics].sort();
    const owners = [...entry.owners].sort();
    const message =
      topics.length === 1
        ? `Kafka topic "${topics[0]}" would be shared by ${listing(owners)}. Rename one of them so their topics differ.`
        : `Kafka topics ${listing(topics.map((t) => `"${t}"`))} differ only in "." versus "_", which Kafka treats as ` +
          `the same name and refuses; they are wanted by ${listing(owners)}. Rename one of them.`;
    collisions.push({ metricName, topics, owners, message });
  }
  return collisions.sort((a, b) => (a.metricName < b.metricName ? -1 : a.metricName > b.metricName ? 1 : 0));
}

function checkPrefix(prefix: string | undefined): string {
  const p = prefix ?? DEFAULT_TOPIC_PREFIX;
  if (!isDnsLabel(p)) {
    throw new TopicNameError(
      "TopicNameInvalid",
      `Topic prefix "${p}" is not a DNS-1123 label (${DNS_LABEL_HINT}); choose another prefix.`,
    );
  }
  return p;
}

function shortenOrchestration(ref: OrchestrationTopicRef): string {
  return `the Orchestration name (${ref.orchestration.length} characters)`;
}

function describe(ref: OrchestrationTopicRef): string {
  return `${ref.namespace}/${ref.orchestration}`;
}

function elide(name: string): string {
  return name.length <= 80 ? name : `${name.slice(0, 60)}…${name.slice(-19)}`;
}

function listing(items: readonly string[]): string {
  if (items.length <= 2) return items.join(" and ");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
