/**
 * The Kafka topics an Orchestration needs, and what to change to get there.
 *
 * Topic budget (ARCHITECTURE.md): one topic per step (each Worker gets its own
 * lag to scale on), one results topic, retry tiers and the dead-letter topic
 * shared by all steps, no per-Orchestration state topic. An Orchestration with
 * n steps and the default retry policy needs n + 5 topics.
 */
import {
  DEFAULT_DEAD_LETTER,
  DEFAULT_PARTITIONS,
  DEFAULT_TOPIC_RETENTION,
  MAX_PARTITIONS,
  MAX_RETRY_TIERS,
} from "../crds/types.ts";
import type { Duration, Orchestration } from "../crds/types.ts";
import type { TopicSpec } from "../../services/kafka/client.ts";
import { parseDuration, retryDelaysMs, retryTiersMs } from "../../services/events/retry.ts";
import {
  deadLetterTopic,
  engineStateTopic,
  resultsTopic,
  retryTopic,
  stepTopic,
} from "../../services/events/topics.ts";
import type {
  OrchestrationTopicRef,
  TopicNamingOptions,
  TopicPurpose,
} from "../../services/events/topics.ts";
import { InvalidSpecError, specDuration } from "./errors.ts";
import { identify } from "./meta.ts";

/** Replication factor -1 asks the broker for its `default.replication.factor` (KIP-464). */
export const BROKER_DEFAULT_REPLICATION = -1;

/** A topic as the operator wants it: a `TopicSpec` for the Kafka admin plus why it exists. */
export interface DesiredTopic extends TopicSpec {
  /** `BROKER_DEFAULT_REPLICATION` (-1) when the spec leaves it to the broker. */
  replicationFactor: number;
  /** The configs the operator manages (`cleanup.policy`, `retention.ms`); others keep the broker's defaults. */
  configs: Record<string, string>;
  purpose: TopicPurpose;
  /** For `purpose: "step"`: the step whose commands it carries. */
  step?: string;
  /** For `purpose: "retry"`: the delay of this tier, ms. */
  delayMs?: number;
}

export type TopicBuildOptions = TopicNamingOptions;

/**
 * The topics `orchestration` needs, in a fixed order: step topics in spec
 * order, the results topic, retry tiers by ascending delay, the dead-letter
 * topic (unless `deadLetter.enabled` is false).
 *
 * @throws a spec error (see `isSpecError`) when a name, duration, retry policy or
 *   partition count is invalid, or the steps' retry policies need more than
 *   `MAX_RETRY_TIERS` distinct delays.
 */
export function topicsFor(orchestration: Orchestration, opts: TopicBuildOptions = {}): DesiredTopic[] {
  const { name, namespace } = identify(orchestration);
  const ref: OrchestrationTopicRef = { namespace, orchestration: name };
  const spec = orchestration.spec;
  const partitions = spec.topics?.partitions ?? DEFAULT_PARTITIONS;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new InvalidSpecError(
      "InvalidTopicSettings",
      `spec.topics.partitions is ${partitions}; use a whole number from 1 to ${MAX_PARTITIONS}`,
    );
  }
  const replicationFactor = spec.topics?.replicationFactor ?? BROKER_DEFAULT_REPLICATION;
  if (
    replicationFactor !== BROKER_DEFAULT_REPLICATION &&
    (!Number.isInteger(replicationFactor) || replicationFactor < 1)
  ) {
    throw new InvalidSpecError(
      "InvalidTopicSettings",
      `spec.topics.replicationFactor is ${replicationFactor}; use a whole number of at least 1, or omit it for the broker's default`,
    );
  }
  const retention = spec.topics?.retention ?? DEFAULT_TOPIC_RETENTION;
  const retentionMs = retentionOf(retention, "spec.topics.retention");
  const deadLetterEnabled = spec.deadLetter?.enabled ?? DEFAULT_DEAD_LETTER.enabled;
  const deadLetterRetentionMs = retentionOf(
    spec.deadLetter?.retention ?? DEFAULT_DEAD_LETTER.retention,
    "spec.deadLetter.retention",
  );

  const tiers = retryTiersMs(
    spec.steps.map((step) => ({ policy: step.retry, context: `spec.steps[${step.name}].retry` })),
  );
  if (tiers.length > MAX_RETRY_TIERS) {
    throw new InvalidSpecError(
      "TooManyRetryTiers",
      `the steps' retry policies use ${tiers.length} distinct delays, and each needs its own retry topic; the limit ` +
        `is ${MAX_RETRY_TIERS}. Give the steps the same retry delays (or fewer attempts) so they share tiers.`,
    );
  }
  const longest = tiers[tiers.length - 1];
  if (longest !== undefined && longest >= retentionMs) {
    throw new InvalidSpecError(
      "InvalidTopicSettings",
      `spec.topics.retention (${retention}) is not longer than the longest retry delay (${longest}ms): records ` +
        `would expire before their retry. Raise the retention or shorten the retry delays.`,
    );
  }

  const topic = (
    topicName: string,
    purpose: TopicPurpose,
    ms: number,
    extra: Pick<DesiredTopic, "step" | "delayMs"> = {},
  ): DesiredTopic => ({
    name: topicName,
    partitions,
    replicationFactor,
    configs: { "cleanup.policy": "delete", "retention.ms": String(ms) },
    purpose,
    ...extra,
  });
  const seen = new Set<string>();
  const steps = spec.steps.map((step) => {
    if (seen.has(step.name)) {
      throw new InvalidSpecError(
        "DuplicateStep",
        `step "${step.name}" is listed twice in spec.steps; step names must be unique`,
      );
    }
    seen.add(step.name);
    return topic(stepTopic(ref, step.name, opts), "step", retentionMs, { step: step.name });
  });
  return [
    ...steps,
    topic(resultsTopic(ref, opts), "results", retentionMs),
    ...tiers.map((delayMs) => topic(retryTopic(ref, delayMs, opts), "retry", retentionMs, { delayMs })),
    ...(deadLetterEnabled ? [topic(deadLetterTopic(ref, opts), "dead-letter", deadLetterRetentionMs)] : []),
  ];
}

/**
 * The retry topic for each retry of each step, in order: `retry k` of step s
 * goes to `retryTopicsByStep(...)[s][k]`; after the last, the dead-letter topic.
 */
export function retryTopicsByStep(
  orchestration: Orchestration,
  steps: readonly string[],
  opts: TopicNamingOptions = {},
): Record<string, string[]> {
  const { name, namespace } = identify(orchestration);
  const ref = { namespace, orchestration: name };
  const out: Record<string, string[]> = {};
  for (const stepName of steps) {
    const step = orchestration.spec.steps.find((s) => s.name === stepName);
    if (!step) continue;
    out[stepName] = retryDelaysMs(step.retry, `spec.steps[${stepName}].retry`).map((ms) =>
      retryTopic(ref, ms, opts),
    );
  }
  return out;
}

export interface EngineStateTopicOptions extends TopicNamingOptions {
  /** Engine replicas share the work by partition; default `DEFAULT_PARTITIONS`. */
  partitions?: number;
  replicationFactor?: number;
}

/** The installation's compacted engine state topic (not per Orchestration). */
export function engineStateTopicFor(opts: EngineStateTopicOptions = {}): DesiredTopic {
  return {
    name: engineStateTopic(opts),
    partitions: opts.partitions ?? DEFAULT_PARTITIONS,
    replicationFactor: opts.replicationFactor ?? BROKER_DEFAULT_REPLICATION,
    // Compaction keeps the latest state of every run key; no time-based deletion.
    configs: { "cleanup.policy": "compact" },
    purpose: "engine-state",
  };
}

/** A topic as it exists in Kafka (from `KafkaAdmin.describeTopics` and `topicConfigs`). */
export interface ActualTopic {
  name: string;
  partitions: number;
  replicationFactor?: number;
  /** Current values of (at least) the managed configs; omit when not fetched, and they are not compared. */
  configs?: Record<string, string | null>;
}

export interface PartitionIncrease {
  name: string;
  from: number;
  to: number;
}

export interface ConfigChange {
  name: string;
  /**
   * The whole desired set of managed configs: `KafkaAdmin.setTopicConfigs` is
   * the non-incremental AlterConfigs, which resets configs it is not given.
   */
  configs: Record<string, string>;
  /** The configs whose values differ, with their current values (null = unset). */
  changed: Record<string, { from: string | null; to: string }>;
}

export interface RefusedChange {
  name: string;
  current: number;
  desired: number;
  /** What is wrong and what a person can do, for a condition or Event. */
  message: string;
}

/** What to do to Kafka to make `actual` look like `desired`. */
export interface TopicDiff {
  create: DesiredTopic[];
  increasePartitions: PartitionIncrease[];
  alterConfigs: ConfigChange[];
  /** Kafka cannot remove partitions; reported, never attempted. */
  refusedDecreases: RefusedChange[];
  /** Changing the replication factor needs a partition reassignment; reported, never attempted. */
  refusedReplicationChanges: RefusedChange[];
}

/**
 * Compares desired and actual topics. Only desired topics are looked at:
 * topics in `actual` that are not desired are left alone (deleting topics is
 * the finalizer's job, under `deletionPolicy`). Output follows `desired`'s order.
 */
export function diffTopics(desired: readonly DesiredTopic[], actual: readonly ActualTopic[]): TopicDiff {
  const existing = new Map(actual.map((t) => [t.name, t]));
  const diff: TopicDiff = {
    create: [],
    increasePartitions: [],
    alterConfigs: [],
    refusedDecreases: [],
    refusedReplicationChanges: [],
  };
  for (const want of desired) {
    const have = existing.get(want.name);
    if (!have) {
      diff.create.push(want);
      continue;
    }
    if (want.partitions > have.partitions) {
      diff.increasePartitions.push({ name: want.name, from: have.partitions, to: want.partitions });
    } else if (want.partitions < have.partitions) {
      diff.refusedDecreases.push({
        name: want.name,
        current: have.partitions,
        desired: want.partitions,
        message:
          `Kafka topic ${want.name} has ${have.partitions} partitions and the spec asks for ${want.partitions}, but ` +
          `Kafka cannot remove partitions. Set spec.topics.partitions to ${have.partitions} or more; to really ` +
          `shrink it, delete the topic (its records are lost) and let the operator recreate it.`,
      });
    }
    if (
      want.replicationFactor !== BROKER_DEFAULT_REPLICATION &&
      have.replicationFactor !== undefined &&
      have.replicationFactor !== want.replicationFactor
    ) {
      diff.refusedReplicationChanges.push({
        name: want.name,
        current: have.replicationFactor,
        desired: want.replicationFactor,
        message:
          `Kafka topic ${want.name} has replication factor ${have.replicationFactor} and the spec asks for ` +
          `${want.replicationFactor}; the operator does not reassign partitions. Reassign them with Kafka's ` +
          `tools (kafka-reassign-partitions.sh) or set spec.topics.replicationFactor to ${have.replicationFactor}.`,
      });
    }
    if (have.configs !== undefined) {
      const changed: ConfigChange["changed"] = {};
      for (const [key, value] of Object.entries(want.configs)) {
        const current = have.configs[key] ?? null;
        if (current !== value) changed[key] = { from: current, to: value };
      }
      if (Object.keys(changed).length > 0) {
        diff.alterConfigs.push({ name: want.name, configs: { ...want.configs }, changed });
      }
    }
  }
  return diff;
}

/** True when `diff` asks for no action (refusals alone are not actions, but they are problems). */
export function diffIsEmpty(diff: TopicDiff): boolean {
  return diff.create.length === 0 && diff.increasePartitions.length === 0 && diff.alterConfigs.length === 0;
}

function retentionOf(value: Duration, field: string): number {
  const ms = specDuration("InvalidTopicSettings", () => parseDuration(value, field));
  if (ms < 1) {
    throw new InvalidSpecError(
      "InvalidTopicSettings",
      `${field} is "${value}"; a retention must be longer than 0`,
    );
  }
  return ms;
}
