/**
 * From a client's CloudEvent to the event the gateway writes, following the contract in docs/events.md:
 * the gateway speaks for the Orchestration (`source` `/eventloom/<ns>/<o>`, signed with the
 * Orchestration's key), so it re-sources the event and keeps the client's own `source` and `id` in the
 * signed extensions `originsource` and `originid`.
 *
 * The written `id` is derived from (Orchestration, client source, client id), so every retry of one
 * client event, on any replica and at any time, carries the same id and consumers' deduplication on
 * `(source, id)` drops copies; and two clients that happen to use the same id never collide.
 */
import { createHash } from "node:crypto";
import type { CloudEvent } from "../../events/cloudevent.ts";
import { CloudEventError } from "../../events/cloudevent.ts";
import { materialDigest } from "../../events/material.ts";
import { orchestrationSource } from "../../../operator/builders/keys.ts";
import { ProblemError } from "../problem.ts";

/** Extensions the gateway (or engine, or worker SDK) sets; a client sending one gets 400. */
export const RESERVED_EXTENSIONS: ReadonlySet<string> = new Set([
  "destination",
  "replaycount",
  "step",
  "attempt",
  "action",
  "causationid",
  "originsource",
  "originid",
  "dssematerial",
  "signedextattrs",
]);

/** Trace context travels as plain Kafka headers, never as (signed) attributes. */
const TRACE_EXTENSIONS: ReadonlySet<string> = new Set(["traceparent", "tracestate"]);

export interface OrchestrationRef {
  namespace: string;
  name: string;
}

/** Throws a `reserved-attribute` problem (400) naming the first reserved extension the client set. */
export function checkReservedExtensions(event: CloudEvent): void {
  for (const name of Object.keys(event.extensions)) {
    if (RESERVED_EXTENSIONS.has(name)) {
      throw new ProblemError(
        "reserved-attribute",
        `Extension "${name}" is set by Eventloom itself (the gateway signs and routes events); remove it from the event.`,
        { extensions: { attribute: name } },
      );
    }
  }
}

/** The id the gateway writes for a client's `(source, id)` in one Orchestration: a UUIDv8 from SHA-256. */
export function derivedEventId(orch: OrchestrationRef, source: string, id: string): string {
  const digest = createHash("sha256")
    .update(`eventloom-gateway/v1\0${orch.namespace}/${orch.name}\0${source}\0${id}`, "utf8")
    .digest();
  const b = digest.subarray(0, 16);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x80; // version 8: custom
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80; // RFC 9562 variant
  const hex = b.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Digest of what the client sent (attributes, extensions except trace context, data): two requests with
 * the same `(source, id)` and the same fingerprint are the same event.
 */
export function fingerprintOf(event: CloudEvent): string {
  const names = Object.keys(event.extensions)
    .filter((n) => !TRACE_EXTENSIONS.has(n))
    .sort();
  return materialDigest(event, names).toString("base64url");
}

/** The run id of the event: `partitionkey`, else `runid`, else the derived event id (a new run). */
export function runIdOf(event: CloudEvent, derivedId: string): string {
  const partitionkey = Object.hasOwn(event.extensions, "partitionkey")
    ? event.extensions.partitionkey
    : undefined;
  const runid = Object.hasOwn(event.extensions, "runid") ? event.extensions.runid : undefined;
  if (partitionkey !== undefined && runid !== undefined && partitionkey !== runid) {
    throw new CloudEventError(
      "invalid-attribute",
      `extensions partitionkey "${partitionkey}" and runid "${runid}" differ; both name the run, so send one, or the same value`,
      { attribute: "runid" },
    );
  }
  const chosen = partitionkey ?? runid ?? derivedId;
  if (chosen === "") {
    throw new CloudEventError(
      "invalid-attribute",
      "partitionkey/runid is empty; omit it to start a new run",
      {
        attribute: partitionkey !== undefined ? "partitionkey" : "runid",
      },
    );
  }
  return chosen;
}

/** The event as the gateway writes it, before `destination` and signing are added per target topic. */
export function ingressEvent(client: CloudEvent, orch: OrchestrationRef): CloudEvent {
  const id = derivedEventId(orch, client.source, client.id);
  const runId = runIdOf(client, id);
  const extensions = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(client.extensions)) {
    if (!TRACE_EXTENSIONS.has(name)) extensions[name] = value;
  }
  extensions.originsource = client.source;
  extensions.originid = client.id;
  extensions.partitionkey = runId;
  extensions.runid = runId;
  return { ...client, id, source: orchestrationSource(orch.namespace, orch.name), extensions };
}

/** A copy of `event` bound to one topic through the signed `destination` extension. */
export function forDestination(event: CloudEvent, topic: string): CloudEvent {
  const extensions = Object.create(null) as Record<string, string>;
  Object.assign(extensions, event.extensions);
  extensions.destination = topic;
  return { ...event, extensions };
}
