/**
 * JSON Schemas of the gateway's requests and responses. They drive validation, response serialization
 * (fast-json-stringify drops anything a schema does not list, so these are complete) and the OpenAPI
 * document at /docs/json.
 */

/** DNS-1123 label: namespaces and Orchestration names. */
const DNS_LABEL = { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 } as const;

export const orchestrationParams = {
  type: "object",
  required: ["namespace", "name"],
  properties: {
    namespace: { ...DNS_LABEL, description: "Namespace of the Orchestration." },
    name: { ...DNS_LABEL, description: "Name of the Orchestration." },
  },
} as const;

export const deadLetterParams = {
  type: "object",
  required: ["namespace", "name", "id"],
  properties: {
    ...orchestrationParams.properties,
    id: {
      type: "string",
      pattern: "^[0-9]{1,9}-[0-9]{1,19}$",
      description: "`<partition>-<offset>` in the dead-letter topic.",
    },
  },
} as const;

/** Request headers of POST .../events, for documentation (the body and ce-* headers are checked in code). */
export const eventHeaders = {
  type: "object",
  properties: {
    "content-type": {
      type: "string",
      description:
        "Binary mode: the data's media type (datacontenttype). Structured mode: application/cloudevents+json.",
    },
    "ce-specversion": { type: "string", description: "Binary mode: 1.0." },
    "ce-id": {
      type: "string",
      description: "Binary mode: unique per source; a retry with the same id and source is idempotent.",
    },
    "ce-source": { type: "string", description: "Binary mode: URI reference of the producer." },
    "ce-type": {
      type: "string",
      description: "Binary mode: event type; routes the event in choreographed Orchestrations.",
    },
    "ce-subject": { type: "string" },
    "ce-time": { type: "string", description: "RFC 3339." },
    "ce-partitionkey": { type: "string", description: "Run id of an existing run; omit to start a new run." },
    traceparent: {
      type: "string",
      description: "W3C trace context; the written records continue this trace.",
    },
  },
} as const;

/** POST /events additionally names the Orchestration in a header. */
export const routedEventHeaders = {
  type: "object",
  required: ["eventloom-orchestration"],
  properties: {
    ...eventHeaders.properties,
    "eventloom-orchestration": {
      type: "string",
      pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
      description: "`<namespace>/<orchestration>` the event is for.",
    },
  },
} as const;

/** The request body, documented per content mode (never validated by schema: it is raw bytes). */
export const eventBody = {
  content: {
    "application/cloudevents+json": {
      schema: {
        type: "object",
        description: "Structured mode: a CloudEvent in the JSON event format.",
        required: ["specversion", "id", "source", "type"],
        properties: {
          specversion: { type: "string", enum: ["1.0"] },
          id: { type: "string" },
          source: { type: "string" },
          type: { type: "string" },
          datacontenttype: { type: "string" },
          dataschema: { type: "string" },
          subject: { type: "string" },
          time: { type: "string" },
          data: { description: "The data (JSON)." },
          data_base64: { type: "string", description: "The data, base64-encoded (binary data)." },
        },
        additionalProperties: { description: "Extension attributes." },
      },
    },
    "*/*": {
      schema: {
        type: "string",
        format: "binary",
        description: "Binary mode: the event's data, byte for byte.",
      },
    },
  },
} as const;

export const acceptedSchema = {
  type: "object",
  description: "The event was written to Kafka and acknowledged by every in-sync replica.",
  required: [
    "id",
    "source",
    "type",
    "specversion",
    "runid",
    "orchestration",
    "originsource",
    "originid",
    "signed",
    "records",
  ],
  properties: {
    id: {
      type: "string",
      description:
        "Id of the written event, derived from the client's source and id (stable across retries).",
    },
    source: {
      type: "string",
      description: "Source of the written event: /eventloom/<namespace>/<orchestration>.",
    },
    type: { type: "string" },
    specversion: { type: "string" },
    runid: {
      type: "string",
      description: "The run this event belongs to (also its partitionkey and Kafka key).",
    },
    orchestration: { type: "string" },
    originsource: { type: "string", description: "The source the client sent." },
    originid: { type: "string", description: "The id the client sent." },
    signed: { type: "boolean" },
    records: {
      type: "array",
      items: {
        type: "object",
        required: ["topic", "partition", "offset"],
        properties: { topic: { type: "string" }, partition: { type: "integer" }, offset: { type: "string" } },
      },
    },
  },
} as const;

export const deadLetterSchema = {
  $id: "DeadLetter",
  type: "object",
  required: ["id", "partition", "offset", "deadLetteredAt", "replayCount", "event"],
  properties: {
    id: { type: "string", description: "`<partition>-<offset>` in the dead-letter topic." },
    partition: { type: "integer" },
    offset: { type: "string" },
    deadLetteredAt: { type: "string", description: "Kafka timestamp of the dead-letter record (RFC 3339)." },
    originalMessage: { type: "string", description: "The failed event's data, when it is text." },
    originalMessageBase64: {
      type: "string",
      description: "The failed event's data, base64, when it is not UTF-8 text.",
    },
    errorMessage: { type: "string" },
    errorType: { type: "string" },
    retryCount: { type: "integer" },
    failedAttempts: { type: "integer" },
    firstFailureTimestamp: { type: "string" },
    lastFailureTimestamp: { type: "string" },
    originalTopic: { type: "string" },
    originalPartition: { type: "integer" },
    originalOffset: { type: "string" },
    consumerGroup: { type: "string" },
    reason: {
      type: "string",
      description: "For errorType SignatureError: the verifier's reason, e.g. bad-signature.",
    },
    attempts: {
      type: "array",
      description: "Every failed attempt, oldest first.",
      items: {
        type: "object",
        required: ["attempt", "errorType", "errorMessage", "timestamp"],
        properties: {
          attempt: { type: "integer" },
          errorType: { type: "string" },
          errorMessage: { type: "string" },
          timestamp: { type: "string" },
        },
      },
    },
    replayCount: {
      type: "integer",
      description: "Times this event was already replayed out of a dead-letter topic.",
    },
    event: {
      type: "object",
      description: "The failed event's CloudEvents attributes (signature material left out).",
      additionalProperties: { type: "string" },
    },
    key: { type: "string", description: "Kafka record key (the run id)." },
  },
} as const;

export const deadLetterQuery = {
  type: "object",
  properties: {
    errorType: { type: "string", description: "Only dead letters with this errorType (exact match)." },
    topic: { type: "string", description: "Only dead letters whose originalTopic is this topic." },
    since: { type: "string", description: "Only those that last failed at or after this time (RFC 3339)." },
    until: { type: "string", description: "Only those that last failed before this time (RFC 3339)." },
    limit: {
      type: "integer",
      minimum: 1,
      maximum: 1000,
      default: 100,
      description: "Most dead letters returned, newest first.",
    },
  },
  additionalProperties: false,
} as const;

const partitionBounds = {
  type: "array",
  items: {
    type: "object",
    required: ["partition", "logStart", "logEnd"],
    properties: { partition: { type: "integer" }, logStart: { type: "string" }, logEnd: { type: "string" } },
  },
} as const;

export const deadLetterListSchema = {
  type: "object",
  required: ["orchestration", "topic", "total", "complete", "evicted", "partitions", "messages"],
  properties: {
    orchestration: { type: "string" },
    topic: { type: "string", description: "The dead-letter topic read." },
    total: { type: "integer", description: "Dead letters matching the filters (before limit)." },
    complete: {
      type: "boolean",
      description:
        "False when the gateway could not read up to the topic's end in time: the list may miss recent records; retry.",
    },
    evicted: {
      type: "integer",
      description: "Oldest records the gateway's in-memory view dropped to stay bounded.",
    },
    partitions: {
      ...partitionBounds,
      description: "The offsets read: [logStart, logEnd) per partition, captured at request time.",
    },
    messages: { type: "array", items: { $ref: "DeadLetter#" } },
  },
} as const;

export const replaySchema = {
  type: "object",
  required: ["id", "replayCount", "maxReplays", "topic", "partition", "offset"],
  properties: {
    id: { type: "string", description: "The dead letter replayed." },
    replayCount: { type: "integer", description: "replaycount carried by the replayed record." },
    maxReplays: { type: "integer" },
    topic: { type: "string", description: "The original topic the record was written back to." },
    partition: { type: "integer" },
    offset: { type: "string" },
  },
} as const;

export const purgeSchema = {
  type: "object",
  required: ["topic", "purged", "partitions"],
  properties: {
    topic: { type: "string" },
    purged: { type: "integer", description: "Records deleted." },
    partitions: {
      type: "array",
      items: {
        type: "object",
        required: ["partition", "from", "to"],
        properties: {
          partition: { type: "integer" },
          from: { type: "string", description: "Log start offset before the purge." },
          to: {
            type: "string",
            description: "Log start offset after it (the end offset captured at request time).",
          },
        },
      },
    },
  },
} as const;

export const healthSchema = {
  type: "object",
  required: ["status"],
  properties: {
    status: { type: "string", enum: ["ok", "unavailable"] },
    checks: {
      type: "object",
      additionalProperties: {
        type: "object",
        required: ["ok", "detail"],
        properties: { ok: { type: "boolean" }, detail: { type: "string" } },
      },
    },
  },
} as const;
