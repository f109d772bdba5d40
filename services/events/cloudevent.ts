/**
 * CloudEvents 1.0 context attributes: the event type shared by the Kafka binding and signing, and the
 * attribute rules of the spec (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md).
 */

/** The only CloudEvents spec version this module reads or writes. */
export const SPEC_VERSION = "1.0";

/**
 * A CloudEvent whose data is kept as the raw bytes that travelled on the wire.
 *
 * Data is never parsed or re-serialized here: the bytes are what signatures cover, and parsing them is the
 * handler's job after verification. Attribute values are the exact strings carried on the wire (`time` is
 * never normalized), for the same reason.
 */
export interface CloudEvent {
  readonly id: string;
  readonly source: string;
  readonly specversion: typeof SPEC_VERSION;
  readonly type: string;
  readonly datacontenttype?: string;
  readonly dataschema?: string;
  readonly subject?: string;
  readonly time?: string;
  /**
   * Extension attributes by name. The Kafka binding carries every value as a string, so they are strings
   * here too. Decoded events use a null-prototype object, so look names up with `Object.hasOwn` or `in`.
   */
  readonly extensions: Readonly<Record<string, string>>;
  /** The raw data bytes; `null` when the event carries no data. */
  readonly data: Buffer | null;
}

/** Context attributes every event must carry, in the order the verification material covers them. */
export const REQUIRED_ATTRIBUTES = ["id", "source", "specversion", "type"] as const;
/** Optional context attributes defined by the spec, in the order the verification material covers them. */
export const OPTIONAL_ATTRIBUTES = ["datacontenttype", "dataschema", "subject", "time"] as const;

/** A context attribute defined by the CloudEvents spec itself (not an extension). */
export type CoreAttribute = (typeof REQUIRED_ATTRIBUTES)[number] | (typeof OPTIONAL_ATTRIBUTES)[number];

/** All core attributes, in the order the verification material covers them. */
export const CORE_ORDER: readonly CoreAttribute[] = [...REQUIRED_ATTRIBUTES, ...OPTIONAL_ATTRIBUTES];

const CORE_ATTRIBUTES: ReadonlySet<string> = new Set(CORE_ORDER);

/** True for the spec's own context attributes, which can never be used as extension names. */
export function isCoreAttribute(name: string): name is CoreAttribute {
  return CORE_ATTRIBUTES.has(name);
}

/** What went wrong with an event, so callers can route on it (e.g. everything here goes to the dead-letter topic). */
export type CloudEventErrorCode =
  | "missing-attribute"
  | "invalid-attribute"
  | "invalid-attribute-name"
  | "unsupported-specversion"
  | "duplicate-attribute"
  | "invalid-json"
  | "invalid-structured-event"
  | "unsupported-content-mode"
  | "partitionkey-mismatch";

/** An event that breaks the CloudEvents spec or the Kafka binding; `code` says how, `message` says what to fix. */
export class CloudEventError extends Error {
  override readonly name = "CloudEventError";
  readonly code: CloudEventErrorCode;
  /** The offending attribute, when there is one. */
  readonly attribute: string | undefined;

  constructor(code: CloudEventErrorCode, message: string, options?: { attribute?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.attribute = options?.attribute;
  }
}

// The spec: lower-case letters and digits only; names SHOULD NOT exceed 20 characters, which we enforce so
// every attribute fits any binding (and no header name can smuggle separators or case variants).
const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;

/** True when `name` is a legal CloudEvents attribute name (lower-case alphanumeric, 1 to 20 characters). */
export function isValidAttributeName(name: string): boolean {
  return ATTRIBUTE_NAME.test(name);
}

/**
 * Names the JSON event format reserves for the payload. `data_base64` is not a legal attribute name anyway;
 * `data` is, so it is refused explicitly.
 */
const RESERVED_NAMES: ReadonlySet<string> = new Set(["data"]);

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** True when `value` is an RFC 3339 date-time (`2025-06-18T17:24:53.123Z`, `...+02:00`), calendar included. */
export function isRfc3339(value: string): boolean {
  const m = RFC3339.exec(value);
  if (m === null) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const daysInMonth =
    month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  const offsetOk = m[7] === undefined || (Number(m[7]) <= 23 && Number(m[8]) <= 59);
  // Second 60 is a leap second, which RFC 3339 allows.
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    Number(m[4]) <= 23 &&
    Number(m[5]) <= 59 &&
    Number(m[6]) <= 60 &&
    offsetOk
  );
}

// dataschema is an absolute URI: a scheme is the one thing we can check cheaply and meaningfully.
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/;

/**
 * Checks one attribute value against the spec and returns the problem, or `undefined` when it is fine.
 * Extension values may be any string; the spec's own attributes must be non-empty and well-formed.
 */
export function attributeProblem(name: string, value: string): CloudEventError | undefined {
  // A lone surrogate has no UTF-8 form (it would be signed as U+FFFD), so it could mean two strings at once.
  if (!value.isWellFormed()) {
    return new CloudEventError(
      "invalid-attribute",
      `attribute "${name}" contains an unpaired UTF-16 surrogate`,
      {
        attribute: name,
      },
    );
  }
  if (!isCoreAttribute(name)) {
    if (!isValidAttributeName(name)) {
      return new CloudEventError(
        "invalid-attribute-name",
        `attribute name "${name}" is not allowed: CloudEvents attribute names are 1 to 20 lower-case letters or digits`,
        { attribute: name },
      );
    }
    if (RESERVED_NAMES.has(name)) {
      return new CloudEventError("invalid-attribute-name", `"${name}" is reserved for the event payload`, {
        attribute: name,
      });
    }
    return undefined;
  }
  if (value === "") {
    return new CloudEventError(
      "invalid-attribute",
      `attribute "${name}" is present but empty; omit it or give it a value`,
      {
        attribute: name,
      },
    );
  }
  if (name === "specversion" && value !== SPEC_VERSION) {
    return new CloudEventError(
      "unsupported-specversion",
      `specversion "${value}" is not supported; this binding reads CloudEvents ${SPEC_VERSION} only`,
      { attribute: name },
    );
  }
  if (name === "time" && !isRfc3339(value)) {
    return new CloudEventError(
      "invalid-attribute",
      `time "${value}" is not an RFC 3339 timestamp such as 2025-06-18T17:24:53.123Z`,
      { attribute: name },
    );
  }
  if (name === "dataschema" && !ABSOLUTE_URI.test(value)) {
    return new CloudEventError("invalid-attribute", `dataschema "${value}" is not an absolute URI`, {
      attribute: name,
    });
  }
  return undefined;
}

/**
 * Events this module produced from an event it had just validated (a signer's output): encoding one
 * need not validate it again (~5 µs of regular expressions per event on the signed hot path).
 */
const knownValid = new WeakSet<CloudEvent>();

/** Marks an event built by our own code from a validated event, with only valid attributes added. */
export function markValid(event: CloudEvent): CloudEvent {
  knownValid.add(event);
  return event;
}

/**
 * Validates a whole event (e.g. one built by application code before encoding or signing) and returns the
 * first problem, or `undefined` when the event is valid.
 */
export function cloudEventProblem(event: CloudEvent): CloudEventError | undefined {
  if (knownValid.has(event)) return undefined;
  for (const name of REQUIRED_ATTRIBUTES) {
    const value: unknown = event[name];
    if (typeof value !== "string") {
      return new CloudEventError("missing-attribute", `required attribute "${name}" is missing`, {
        attribute: name,
      });
    }
  }
  for (const name of CORE_ORDER) {
    const value: unknown = event[name];
    if (value === undefined) continue;
    if (typeof value !== "string") {
      return new CloudEventError("invalid-attribute", `attribute "${name}" must be a string`, {
        attribute: name,
      });
    }
    const problem = attributeProblem(name, value);
    if (problem !== undefined) return problem;
  }
  for (const name in event.extensions) {
    const value: unknown = event.extensions[name];
    if (isCoreAttribute(name)) {
      return new CloudEventError(
        "invalid-attribute-name",
        `"${name}" is a core CloudEvents attribute; set it on the event, not in extensions`,
        { attribute: name },
      );
    }
    if (typeof value !== "string") {
      return new CloudEventError("invalid-attribute", `extension "${name}" must be a string`, {
        attribute: name,
      });
    }
    const problem = attributeProblem(name, value);
    if (problem !== undefined) return problem;
  }
  if (event.data !== null && !Buffer.isBuffer(event.data)) {
    return new CloudEventError("invalid-attribute", "event data must be a Buffer (raw bytes) or null");
  }
  return undefined;
}

/**
 * Assembles a decoded event. Does not validate. Every decoded event gets this one object shape (absent
 * attributes as explicit `undefined`), so property reads in validation, signing and handlers stay
 * monomorphic.
 */
export function eventOfShape(
  attributes: Partial<Record<CoreAttribute, string>>,
  extensions: Record<string, string>,
  data: Buffer | null,
): CloudEvent {
  return {
    id: attributes.id,
    source: attributes.source,
    specversion: attributes.specversion,
    type: attributes.type,
    datacontenttype: attributes.datacontenttype,
    dataschema: attributes.dataschema,
    subject: attributes.subject,
    time: attributes.time,
    extensions,
    data,
  } as CloudEvent;
}

/** A short, human-readable handle on an event for error messages. */
export function describeEvent(event: Pick<CloudEvent, "id" | "source" | "type">): string {
  return `event "${event.id}" from source "${event.source}" (type "${event.type}")`;
}

/** `application/json`, `text/json` and any `+json` media type: the data is JSON text. */
export function isJsonContentType(contentType: string): boolean {
  const semicolon = contentType.indexOf(";");
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return mediaType === "application/json" || mediaType === "text/json" || mediaType.endsWith("+json");
}
