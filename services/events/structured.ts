/**
 * The CloudEvents JSON event format (structured content mode), reading and writing data as raw bytes.
 *
 * JSON `data` is taken as the exact text slice of the envelope, not `JSON.stringify(JSON.parse(...))`: the
 * bytes a producer signed must come out byte for byte, and a binary-mode record carrying the same value must
 * yield the same data (so a signature survives a change of content mode).
 */
import { isUtf8 } from "node:buffer";
import {
  type CloudEvent,
  type CoreAttribute,
  CloudEventError,
  attributeProblem,
  eventOfShape,
  isCoreAttribute,
  isJsonContentType,
  REQUIRED_ATTRIBUTES,
} from "./cloudevent.ts";

/** The media type of a structured-mode CloudEvent in JSON. */
export const STRUCTURED_CONTENT_TYPE = "application/cloudevents+json";

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Parses a structured-mode event; throws {@link CloudEventError}. */
export function parseStructured(value: Buffer | null): CloudEvent {
  if (value === null || value.length === 0) {
    throw new CloudEventError("invalid-structured-event", "structured-mode record has no value to parse");
  }
  const text = utf8Text(value);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CloudEventError(
      "invalid-json",
      `structured-mode record is not valid JSON (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CloudEventError(
      "invalid-structured-event",
      Array.isArray(parsed)
        ? "structured-mode record is a JSON array; batch mode (application/cloudevents-batch+json) is not supported"
        : "structured-mode record must be a JSON object",
    );
  }
  const members = scanTopLevelMembers(text);

  const attributes: Partial<Record<CoreAttribute, string>> = {};
  const extensions: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "data" || name === "data_base64" || raw === null) continue;
    const value = attributeText(name, raw);
    const problem = attributeProblem(name, value);
    if (problem !== undefined) throw problem;
    if (isCoreAttribute(name)) attributes[name] = value;
    else extensions[name] = value;
  }
  for (const name of REQUIRED_ATTRIBUTES) {
    if (attributes[name] === undefined) {
      throw new CloudEventError("missing-attribute", `required attribute "${name}" is missing`, {
        attribute: name,
      });
    }
  }
  const data = readData(
    parsed as Record<string, unknown>,
    text,
    members.dataSpan,
    attributes.datacontenttype,
  );
  return eventOfShape(attributes, extensions, data);
}

/**
 * Writes `event` as a structured-mode JSON envelope. JSON data that can be embedded verbatim is embedded as
 * `data`; anything else goes to `data_base64`, so the bytes always round-trip exactly.
 */
export function formatStructured(event: CloudEvent): Buffer {
  const envelope: Record<string, string> = {
    specversion: event.specversion,
    id: event.id,
    source: event.source,
    type: event.type,
  };
  for (const name of ["datacontenttype", "dataschema", "subject", "time"] as const) {
    const value = event[name];
    if (value !== undefined) envelope[name] = value;
  }
  Object.assign(envelope, event.extensions);
  if (event.data === null) return Buffer.from(JSON.stringify(envelope));
  if (isJsonContentType(event.datacontenttype ?? "application/json") && isVerbatimJson(event.data)) {
    const head = JSON.stringify(envelope);
    return Buffer.concat([Buffer.from(`${head.slice(0, -1)},"data":`), event.data, Buffer.from("}")]);
  }
  envelope.data_base64 = event.data.toString("base64");
  return Buffer.from(JSON.stringify(envelope));
}

function utf8Text(value: Buffer): string {
  const text = value.toString("utf8");
  // Decoding replaces invalid sequences with U+FFFD, so only then is the (slower) exact check needed.
  if (text.includes("\uFFFD") && !isUtf8(value)) {
    throw new CloudEventError("invalid-json", "structured-mode record is not valid UTF-8");
  }
  return text;
}

// The JSON format allows extension values of the CloudEvents Boolean and Integer types too; the Kafka binary
// binding (and the verification material) carry them as their canonical string form.
function attributeText(name: string, raw: unknown): string {
  if (typeof raw === "string") return raw;
  if (!isCoreAttribute(name)) {
    if (typeof raw === "boolean") return String(raw);
    if (typeof raw === "number" && Number.isInteger(raw) && raw >= -(2 ** 31) && raw < 2 ** 31) {
      return String(raw);
    }
  }
  throw new CloudEventError(
    "invalid-attribute",
    `attribute "${name}" must be a string${isCoreAttribute(name) ? "" : ", boolean or 32-bit integer"}, got ${JSON.stringify(raw)}`,
    { attribute: name },
  );
}

function readData(
  parsed: Record<string, unknown>,
  text: string,
  dataSpan: readonly [number, number] | undefined,
  datacontenttype: string | undefined,
): Buffer | null {
  const hasData = Object.hasOwn(parsed, "data") && parsed.data !== null;
  const base64 = Object.hasOwn(parsed, "data_base64") ? parsed.data_base64 : null;
  if (hasData && base64 !== null) {
    throw new CloudEventError(
      "invalid-structured-event",
      'event carries both "data" and "data_base64"; keep one',
    );
  }
  if (base64 !== null) {
    if (typeof base64 !== "string" || !STRICT_BASE64.test(base64)) {
      throw new CloudEventError(
        "invalid-structured-event",
        '"data_base64" is not a base64 string (RFC 4648, padded)',
      );
    }
    return Buffer.from(base64, "base64");
  }
  if (!hasData || dataSpan === undefined) return null;
  // A JSON string under a non-JSON media type is text data (e.g. text/plain): its bytes are the string's.
  if (
    typeof parsed.data === "string" &&
    datacontenttype !== undefined &&
    !isJsonContentType(datacontenttype)
  ) {
    if (!parsed.data.isWellFormed()) {
      throw new CloudEventError("invalid-structured-event", '"data" contains an unpaired UTF-16 surrogate');
    }
    return Buffer.from(parsed.data, "utf8");
  }
  return Buffer.from(text.slice(dataSpan[0], dataSpan[1]), "utf8");
}

// Verbatim embedding needs valid JSON with no surrounding whitespace (the decoder's slice would drop it).
function isVerbatimJson(data: Buffer): boolean {
  if (
    data.length === 0 ||
    isJsonWhitespace(data[0]) ||
    isJsonWhitespace(data[data.length - 1]) ||
    !isUtf8(data)
  ) {
    return false;
  }
  try {
    JSON.parse(data.toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

function isJsonWhitespace(code: number | undefined): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/**
 * Walks the top-level members of a JSON object that `JSON.parse` already accepted, returning where the
 * `data` value's text lies. Duplicate member names are refused: `JSON.parse` keeps the last one but other
 * parsers keep the first, and a signature must never mean two different events.
 */
function scanTopLevelMembers(text: string): { dataSpan: [number, number] | undefined } {
  const seen = new Set<string>();
  let dataSpan: [number, number] | undefined;
  let i = skipWhitespace(text, 0) + 1; // past "{"
  for (;;) {
    i = skipWhitespace(text, i);
    if (text.charCodeAt(i) === 0x7d /* } */) break;
    const keyEnd = skipString(text, i);
    const rawKey = text.slice(i + 1, keyEnd - 1);
    const key = rawKey.includes("\\") ? (JSON.parse(text.slice(i, keyEnd)) as string) : rawKey;
    if (seen.has(key)) {
      throw new CloudEventError("invalid-structured-event", `member "${key}" appears more than once`, {
        attribute: key,
      });
    }
    seen.add(key);
    i = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1); // past ":"
    const valueEnd = skipValue(text, i);
    if (key === "data") dataSpan = [i, valueEnd];
    i = skipWhitespace(text, valueEnd);
    if (text.charCodeAt(i) === 0x2c /* , */) i++;
  }
  return { dataSpan };
}

function skipWhitespace(text: string, i: number): number {
  while (isJsonWhitespace(text.charCodeAt(i))) i++;
  return i;
}

// `i` is at the opening quote; returns the index after the closing quote.
function skipString(text: string, i: number): number {
  for (i++; ; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5c /* \ */) i++;
    else if (code === 0x22 /* " */) return i + 1;
  }
}

// Returns the index just after the JSON value starting at `i` (the text is known to be valid JSON).
function skipValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === 0x22) return skipString(text, i);
  if (first !== 0x7b /* { */ && first !== 0x5b /* [ */) {
    while (i < text.length && !",}] \t\n\r".includes(text.charAt(i))) i++;
    return i;
  }
  let depth = 0;
  for (;;) {
    const code = text.charCodeAt(i);
    if (code === 0x22) {
      i = skipString(text, i);
      continue;
    }
    if (code === 0x7b || code === 0x5b) depth++;
    else if (code === 0x7d || code === 0x5d) depth--;
    i++;
    if (depth === 0) return i;
  }
}
