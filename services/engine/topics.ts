/**
 * The engine's own topics, one pair per installation (not per Orchestration,
 * see "Topic budget" in ARCHITECTURE.md):
 *
 *   <prefix>-engine-inbox   everything that can move a run: start, cancel and undo
 *                           requests from the run API, and worker results (and
 *                           choreography events) forwarded from the Orchestrations'
 *                           topics; keyed by run id
 *   <prefix>-engine-state   compacted, one record per run id (engineStateTopic())
 *
 * Both have the same number of partitions: partition p of the inbox and
 * partition p of the state topic belong to the same engine replica.
 */
import { DEFAULT_TOPIC_PREFIX, engineStateTopic, validateTopicName } from "../events/topics.ts";
import type { TopicNamingOptions } from "../events/topics.ts";

export { engineStateTopic };

/** The engine inbox topic, `<prefix>-engine-inbox`; like the state topic, it has no `.` after the prefix. */
export function engineInboxTopic(opts: TopicNamingOptions = {}): string {
  return validateTopicName(`${opts.prefix ?? DEFAULT_TOPIC_PREFIX}-engine-inbox`, "engine inbox topic");
}

/** Consumer group of the engine replicas on the inbox: partition ownership. */
export function engineGroupId(opts: TopicNamingOptions = {}): string {
  return `${opts.prefix ?? DEFAULT_TOPIC_PREFIX}-engine`;
}

/** Consumer group of the engine replicas forwarding results and choreography events to the inbox. */
export function routerGroupId(opts: TopicNamingOptions = {}): string {
  return `${opts.prefix ?? DEFAULT_TOPIC_PREFIX}-engine-router`;
}
