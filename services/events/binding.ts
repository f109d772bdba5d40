/**
 * CloudEvents 1.0 Kafka protocol binding
 * (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md).
 *
 * Hand-written rather than the `cloudevents` npm package: that package re-parses JSON data and rewrites
 * `time` (both break signatures over raw bytes), expects string headers where kafkajs delivers Buffers, and
 * emits `undefined` headers. This module never touches data bytes, keeps every attribute string exactly as
 * received, and costs a few microseconds per record.
 *
 * Binary mode (the default): attributes travel as `ce_<name>` headers, `datacontenttype` as `content-type`,
 * the value is the raw data, the key is `partitionkey`. Structured mode (`content-type:
 * application/cloudevents+json`) is accepted on decode and can be written for tests and egress.
 */
import { isUtf8 } from "node:buffer";
import {
  type CloudEvent,
  type CoreAttribute,
  CloudEventError,
  attributeProblem,
  cloudEventProblem,
  CORE_ORDER,
  eventOfShape,
  isCoreAttribute,
  REQUIRED_ATTRIBUTES,
} from "./cloudevent.ts";
import { formatStructured, parseStructured, STRUCTURED_CONTENT_TYPE } from "./structured.ts";

/** A header value as kafkajs delivers it (an array when the header name repeats). */
export type KafkaHeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** The parts of a consumed Kafka record the binding reads (kafkajs `KafkaMessage` fits). */
export interface KafkaRecord {
  readonly key: Buffer | string | null;
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, KafkaHeaderValue>>;
}

/** A record ready to produce (kafkajs `Message` fits): no `undefined` headers, data bytes untouched. */
export interface KafkaMessage {
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** How the event is laid out in the record. */
export type ContentMode = "binary" | "structured";

/** The outcome of {@link decodeRecord}: a valid event, or why the record is not one. */
export type DecodeResult =
  | { readonly ok: true; readonly event: CloudEvent; readonly mode: ContentMode }
  | { readonly ok: false; readonly error: CloudEventError };

/** Header prefix of binary-mode attributes. */
export const HEADER_PREFIX = "ce_";
/** Header carrying `datacontenttype` in binary mode and the event format in structured mode. */
export const CONTENT_TYPE_HEADER = "content-type";

/**
 * Encodes `event` as a Kafka record. Throws {@link CloudEventError} if the event itself is invalid, since
 * producing one is a bug in the caller, not a condition of the wire.
 */
export function encodeRecord(event: CloudEvent, mode: ContentMode = "binary"): KafkaMessage {
  const problem = cloudEventProblem(event);
  if (problem !== undefined) throw problem;
  const key = Object.hasOwn(event.extensions, "partitionkey")
    ? (event.extensions.partitionkey ?? null)
    : null;
  if (mode === "structured") {
    return {
      key,
      value: formatStructured(event),
      headers: { [CONTENT_TYPE_HEADER]: STRUCTURED_CONTENT_TYPE },
    };
  }
  if (event.datacontenttype?.toLowerCase().startsWith("application/cloudevents")) {
    // In binary mode that content-type would make every consumer read the data as a structured envelope.
    throw new CloudEventError(
      "invalid-attribute",
      `datacontenttype "${event.datacontenttype}" names a CloudEvents envelope; encode the event in structured mode instead`,
      { attribute: "datacontenttype" },
    );
  }
  const headers: Record<string, string> = {};
  for (const name of CORE_ORDER) {
    const value = event[name];
    if (value === undefined) continue;
    headers[name === "datacontenttype" ? CONTENT_TYPE_HEADER : HEADER_PREFIX + name] = value;
  }
  for (const [name, value] of Object.entries(event.extensions)) headers[HEADER_PREFIX + name] = value;
  return { key, value: event.data, headers };
}

/**
 * Decodes a consumed Kafka record into a validated CloudEvent without parsing binary-mode data, so signature
 * verification can run before anything looks inside the payload.
 */
export function decodeRecord(record: KafkaRecord): DecodeResult {
  try {
    const headers = record.headers ?? {};
    const contentType = headerText(headers, CONTENT_TYPE_HEADER);
    const mediaType = contentType?.split(";", 1)[0]?.trim().toLowerCase();
    let event: CloudEvent;
    let mode: ContentMode;
    if (mediaType === STRUCTURED_CONTENT_TYPE) {
      event = parseStructured(record.value);
      mode = "structured";
    } else if (mediaType?.startsWith("application/cloudevents")) {
      throw new CloudEventError(
        "unsupported-content-mode",
        `content-type "${contentType}" is not supported; use binary mode or ${STRUCTURED_CONTENT_TYPE}`,
      );
    } else {
      event = decodeBinary(headers, contentType, record.value);
      mode = "binary";
    }
    checkPartitionKey(event, record.key);
    return { ok: true, event, mode };
  } catch (error) {
    if (error instanceof CloudEventError) return { ok: false, error };
    throw error;
  }
}

function decodeBinary(
  headers: Readonly<Record<string, KafkaHeaderValue>>,
  contentType: string | undefined,
  value: Buffer | null,
): CloudEvent {
  const attributes: Partial<Record<CoreAttribute, string>> = {};
  const extensions: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const header in headers) {
    if (!hasCePrefix(header)) continue;
    const text = headerText(headers, header);
    if (text === undefined) continue;
    const name = header.slice(3);
    // Any capitalisation of the prefix is refused rather than ignored: a consumer that matched it
    // case-insensitively would otherwise see attributes that the signature never covered.
    if (!header.startsWith(HEADER_PREFIX)) {
      throw new CloudEventError(
        "invalid-attribute-name",
        `header "${header}" must be spelled with a lower-case "ce_"`,
        { attribute: name },
      );
    }
    if (name === "datacontenttype") {
      throw new CloudEventError(
        "invalid-attribute",
        `binary mode carries datacontenttype in the "${CONTENT_TYPE_HEADER}" header, not "${header}"`,
        { attribute: name },
      );
    }
    const problem = attributeProblem(name, text);
    if (problem !== undefined) throw problem;
    if (isCoreAttribute(name)) attributes[name] = text;
    else extensions[name] = text;
  }
  for (const name of REQUIRED_ATTRIBUTES) {
    if (attributes[name] === undefined) {
      throw new CloudEventError("missing-attribute", `required header "${HEADER_PREFIX}${name}" is missing`, {
        attribute: name,
      });
    }
  }
  if (contentType !== undefined) {
    const problem = attributeProblem("datacontenttype", contentType);
    if (problem !== undefined) throw problem;
    attributes.datacontenttype = contentType;
  }
  return eventOfShape(attributes, extensions, value);
}

// "ce_" in any capitalisation, checked without allocating (this runs for every header of every record).
function hasCePrefix(header: string): boolean {
  return (
    header.length >= 3 &&
    (header.charCodeAt(0) | 0x20) === 0x63 &&
    (header.charCodeAt(1) | 0x20) === 0x65 &&
    header.charCodeAt(2) === 0x5f
  );
}

/** One header's value as text; repeated headers and invalid UTF-8 are refused, since either is ambiguous. */
function headerText(headers: Readonly<Record<string, KafkaHeaderValue>>, name: string): string | undefined {
  let raw = headers[name];
  if (Array.isArray(raw)) {
    if (raw.length > 1) {
      throw new CloudEventError(
        "duplicate-attribute",
        `header "${name}" appears ${raw.length} times; send it once`,
        { attribute: name },
      );
    }
    raw = raw[0];
  }
  if (raw === undefined || typeof raw === "string") return raw;
  const text = raw.toString("utf8");
  // Decoding replaces invalid sequences with U+FFFD, so only then is the exact check needed.
  if (text.includes("\uFFFD") && !isUtf8(raw)) {
    throw new CloudEventError("invalid-attribute", `header "${name}" is not valid UTF-8`, {
      attribute: name,
    });
  }
  return text;
}

// The key decides the partition, and so the order a run's events are seen in: it must agree with the
// (signed) partitionkey attribute, or a record could be moved between partitions unnoticed.
function checkPartitionKey(event: CloudEvent, key: Buffer | string | null): void {
  if (key === null || !Object.hasOwn(event.extensions, "partitionkey")) return;
  const partitionkey = event.extensions.partitionkey ?? "";
  const same = typeof key === "string" ? key === partitionkey : key.equals(Buffer.from(partitionkey, "utf8"));
  if (!same) {
    throw new CloudEventError(
      "partitionkey-mismatch",
      `record key "${key.toString()}" differs from the partitionkey attribute "${partitionkey}"`,
      { attribute: "partitionkey" },
    );
  }
}
