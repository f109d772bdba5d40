/**
 * Records on the engine inbox (see topics.ts). Two kinds, both keyed by run id:
 *
 * - requests from the run API, CloudEvents in binary mode with types
 *   `io.eventloom.engine.run.start|cancel|undo`, source `/eventloom/<ns>/<o>`,
 *   extensions `partitionkey` and `runid`, JSON data. They are not signed: the
 *   inbox is internal to the engine, writable only by the gateway and engine
 *   (Kafka ACLs, docs/engine.md);
 * - records forwarded from an Orchestration's results topic (or, in
 *   choreography, its step topics), byte for byte (value and `ce_*` headers
 *   untouched, so their signatures still verify), plus `eventloom-origin-*`
 *   headers saying where they came from.
 */
import { orchestrationSource } from "../../operator/builders/keys.ts";
import type { Mode, OrchestrationSpec } from "../../operator/crds/types.ts";
import { decodeRecord, encodeRecord } from "../events/binding.ts";
import type { CloudEvent } from "../events/cloudevent.ts";
import type { IncomingRecord, OutgoingRecord } from "../kafka/client.ts";
import type { StartRequest } from "./machine.ts";
import type { RunTrace } from "./model.ts";
import { specRef } from "./state-codec.ts";

export const START_TYPE = "io.eventloom.engine.run.start";
export const CANCEL_TYPE = "io.eventloom.engine.run.cancel";
export const UNDO_TYPE = "io.eventloom.engine.run.undo";

export const ORIGIN_TOPIC_HEADER = "eventloom-origin-topic";
export const ORIGIN_PARTITION_HEADER = "eventloom-origin-partition";
export const ORIGIN_OFFSET_HEADER = "eventloom-origin-offset";
/** `<namespace>/<orchestration>` whose topic the record came from. */
export const ORIGIN_ORCHESTRATION_HEADER = "eventloom-origin-orchestration";
export const ORIGIN_MODE_HEADER = "eventloom-origin-mode";

const ORIGIN_HEADERS = [
  ORIGIN_TOPIC_HEADER,
  ORIGIN_PARTITION_HEADER,
  ORIGIN_OFFSET_HEADER,
  ORIGIN_ORCHESTRATION_HEADER,
  ORIGIN_MODE_HEADER,
];

export interface Origin {
  topic: string;
  partition: number;
  offset: string;
  namespace: string;
  orchestration: string;
  mode: Mode;
}

/** A record as it was on the Orchestration's topic (the origin headers taken off again). */
export interface ForwardedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | undefined>;
}

export type InboxMessage =
  | {
      kind: "start";
      runId: string;
      requestId: string;
      request: StartRequest;
      /** `specRef` of the request's spec (state-codec.ts), as the writer computed it. */
      specRef?: string;
    }
  | { kind: "cancel" | "undo"; runId: string; requestId: string; namespace: string; orchestration: string }
  | { kind: "forwarded"; runId: string; origin: Origin; record: ForwardedRecord }
  | { kind: "invalid"; runId: string | undefined; message: string };

interface StartData {
  namespace: string;
  orchestration: string;
  generation: number;
  spec: OrchestrationSpec;
  input: unknown;
  inputHash: string;
  idempotencyKey?: string;
  trace: RunTrace;
  /** The spec's reference (state-codec.ts `specRef`): the engine shares the spec it holds under it. */
  specRef?: string;
}

function requestEvent(
  type: string,
  runId: string,
  requestId: string,
  namespace: string,
  orchestration: string,
  data: unknown,
  now: Date,
): CloudEvent {
  return {
    id: requestId,
    source: orchestrationSource(namespace, orchestration),
    specversion: "1.0",
    type,
    datacontenttype: "application/json",
    subject: runId,
    time: now.toISOString(),
    extensions: { partitionkey: runId, runid: runId },
    data: Buffer.from(JSON.stringify(data), "utf8"),
  };
}

function toOutgoing(event: CloudEvent): OutgoingRecord {
  const m = encodeRecord(event);
  return { key: m.key, value: m.value, headers: m.headers };
}

/** The inbox record asking the engine to start a run. */
export function startRecord(request: StartRequest, requestId: string, now = new Date()): OutgoingRecord {
  const data: StartData = {
    namespace: request.namespace,
    orchestration: request.orchestration,
    generation: request.generation,
    spec: request.spec,
    input: request.input,
    inputHash: request.inputHash,
    ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
    trace: request.trace,
    specRef: specRef(request),
  };
  return toOutgoing(
    requestEvent(START_TYPE, request.runId, requestId, request.namespace, request.orchestration, data, now),
  );
}

/** The inbox record asking the engine to cancel or undo a run. */
export function runRequestRecord(
  kind: "cancel" | "undo",
  target: { runId: string; namespace: string; orchestration: string },
  requestId: string,
  now = new Date(),
): OutgoingRecord {
  const type = kind === "cancel" ? CANCEL_TYPE : UNDO_TYPE;
  return toOutgoing(
    requestEvent(
      type,
      target.runId,
      requestId,
      target.namespace,
      target.orchestration,
      { namespace: target.namespace, orchestration: target.orchestration },
      now,
    ),
  );
}

/** `record` from an Orchestration's topic, ready to forward to the inbox (its run id as key). */
export function forwardRecord(
  record: IncomingRecord,
  origin: Omit<Origin, "topic" | "partition" | "offset">,
): OutgoingRecord | undefined {
  if (record.key === null || record.key.length === 0) return undefined;
  const headers: Record<string, Buffer | string | undefined> = {};
  for (const [name, value] of Object.entries(record.headers)) {
    if (!ORIGIN_HEADERS.includes(name)) headers[name] = value;
  }
  headers[ORIGIN_TOPIC_HEADER] = record.topic;
  headers[ORIGIN_PARTITION_HEADER] = String(record.partition);
  headers[ORIGIN_OFFSET_HEADER] = record.offset;
  headers[ORIGIN_ORCHESTRATION_HEADER] = `${origin.namespace}/${origin.orchestration}`;
  headers[ORIGIN_MODE_HEADER] = origin.mode;
  return { key: record.key, value: record.value, headers };
}

/** A forwarded input as the engine applies it. */
export type ForwardedMessage = Extract<InboxMessage, { kind: "forwarded" }>;

/**
 * `record` from an Orchestration's topic as the engine applies it, without the trip through the inbox:
 * exactly what `decodeInbox` gives for the inbox record `forwardRecord` makes of it (origin headers a
 * worker may have set are dropped the same way). Undefined for a record without a key (run id).
 */
export function forwardedMessage(
  record: IncomingRecord,
  origin: Omit<Origin, "topic" | "partition" | "offset">,
): ForwardedMessage | undefined {
  if (record.key === null || record.key.length === 0) return undefined;
  const headers: Record<string, Buffer | undefined> = {};
  for (const [name, value] of Object.entries(record.headers)) {
    if (!ORIGIN_HEADERS.includes(name)) headers[name] = value;
  }
  return {
    kind: "forwarded",
    runId: record.key.toString("utf8"),
    origin: {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      namespace: origin.namespace,
      orchestration: origin.orchestration,
      mode: origin.mode,
    },
    record: { key: record.key, value: record.value, headers },
  };
}

function text(headers: Record<string, Buffer | undefined>, name: string): string | undefined {
  return headers[name]?.toString("utf8");
}

export function decodeInbox(record: IncomingRecord): InboxMessage {
  const runId = record.key?.toString("utf8");
  if (runId === undefined || runId === "")
    return { kind: "invalid", runId: undefined, message: "inbox record without a key (run id)" };
  const originTopic = text(record.headers, ORIGIN_TOPIC_HEADER);
  if (originTopic !== undefined) {
    const [namespace, orchestration] = (text(record.headers, ORIGIN_ORCHESTRATION_HEADER) ?? "").split("/");
    const mode = text(record.headers, ORIGIN_MODE_HEADER);
    if (!namespace || !orchestration || (mode !== "orchestrated" && mode !== "choreographed")) {
      return {
        kind: "invalid",
        runId,
        message: `forwarded record from ${originTopic} lacks its origin headers`,
      };
    }
    const headers: Record<string, Buffer | undefined> = {};
    for (const [name, value] of Object.entries(record.headers))
      if (!ORIGIN_HEADERS.includes(name)) headers[name] = value;
    return {
      kind: "forwarded",
      runId,
      origin: {
        topic: originTopic,
        partition: Number(text(record.headers, ORIGIN_PARTITION_HEADER) ?? "-1"),
        offset: text(record.headers, ORIGIN_OFFSET_HEADER) ?? "-1",
        namespace,
        orchestration,
        mode,
      },
      record: { key: record.key, value: record.value, headers },
    };
  }
  const decoded = decodeRecord(record);
  if (!decoded.ok)
    return { kind: "invalid", runId, message: `inbox record is not a CloudEvent: ${decoded.error.message}` };
  const event = decoded.event;
  let data: unknown;
  try {
    data = JSON.parse(event.data?.toString("utf8") ?? "null");
  } catch {
    return { kind: "invalid", runId, message: `inbox request ${event.id} has no JSON data` };
  }
  if (event.type === START_TYPE) {
    const d = data as Partial<StartData> | null;
    if (
      !d ||
      typeof d.namespace !== "string" ||
      typeof d.orchestration !== "string" ||
      !d.spec ||
      !d.trace ||
      typeof d.generation !== "number"
    ) {
      return { kind: "invalid", runId, message: `start request ${event.id} is incomplete` };
    }
    return {
      kind: "start",
      runId,
      requestId: event.id,
      request: {
        runId,
        namespace: d.namespace,
        orchestration: d.orchestration,
        generation: d.generation,
        spec: d.spec,
        input: d.input ?? null,
        inputHash: d.inputHash ?? "",
        ...(d.idempotencyKey !== undefined ? { idempotencyKey: d.idempotencyKey } : {}),
        trace: d.trace,
      },
      ...(typeof d.specRef === "string" ? { specRef: d.specRef } : {}),
    };
  }
  if (event.type === CANCEL_TYPE || event.type === UNDO_TYPE) {
    const d = data as { namespace?: unknown; orchestration?: unknown } | null;
    if (typeof d?.namespace !== "string" || typeof d.orchestration !== "string") {
      return { kind: "invalid", runId, message: `request ${event.id} names no namespace and orchestration` };
    }
    return {
      kind: event.type === CANCEL_TYPE ? "cancel" : "undo",
      runId,
      requestId: event.id,
      namespace: d.namespace,
      orchestration: d.orchestration,
    };
  }
  return { kind: "invalid", runId, message: `inbox record of unknown type ${event.type}` };
}
