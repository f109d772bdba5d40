/**
 * CloudEvents 1.0 HTTP protocol binding, reading side
 * (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md).
 *
 * Binary mode: attributes in `ce-<name>` headers (percent-encoded), `datacontenttype` in `Content-Type`,
 * the body is the data, byte for byte. Structured mode: `Content-Type: application/cloudevents+json`, the
 * body is the JSON envelope, parsed by the event module's structured parser (which keeps JSON `data` as
 * its exact text, so the bytes signed are the bytes sent). Batch mode is refused with 415.
 *
 * The same rules as the Kafka binding apply, so an event means one thing to every parser: repeated `ce-`
 * headers are refused, `ce-datacontenttype` is refused next to `Content-Type`, and invalid UTF-8 in a
 * percent-encoded value is refused.
 */
import { isUtf8 } from "node:buffer";
import {
  type CloudEvent,
  type CoreAttribute,
  CloudEventError,
  attributeProblem,
  eventOfShape,
  isCoreAttribute,
  REQUIRED_ATTRIBUTES,
} from "../../events/cloudevent.ts";
import { parseStructured, STRUCTURED_CONTENT_TYPE } from "../../events/structured.ts";

export const BATCH_CONTENT_TYPE = "application/cloudevents-batch+json";
const HEADER_PREFIX = "ce-";

export type HttpContentMode = "binary" | "structured";

/** Why a request is not a CloudEvent the gateway reads, as the HTTP status class it maps to. */
export class UnsupportedContentModeError extends Error {
  override readonly name = "UnsupportedContentModeError";
}

export interface HttpRequestParts {
  /** Lower-cased header names (Node's `request.headers`). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Raw header list `[name, value, name, value, ...]` (Node's `rawHeaders`), to spot repeated names. */
  rawHeaders: readonly string[];
  body: Buffer | undefined;
}

/**
 * Reads a CloudEvent from an HTTP request.
 * @throws CloudEventError when the request is not a valid CloudEvent (answer 400).
 * @throws UnsupportedContentModeError for batch mode or a non-JSON event format (answer 415).
 */
export function readHttpEvent(req: HttpRequestParts): { event: CloudEvent; mode: HttpContentMode } {
  const contentType = single(req.headers["content-type"]);
  const mediaType = contentType?.split(";", 1)[0]?.trim().toLowerCase();
  if (mediaType === STRUCTURED_CONTENT_TYPE) {
    return { event: parseStructured(req.body ?? null), mode: "structured" };
  }
  if (mediaType === BATCH_CONTENT_TYPE) {
    throw new UnsupportedContentModeError(
      `Batched CloudEvents (${BATCH_CONTENT_TYPE}) are not accepted; send one event per request`,
    );
  }
  if (mediaType?.startsWith("application/cloudevents")) {
    throw new UnsupportedContentModeError(
      `Content-Type "${contentType}" is a CloudEvents format this gateway does not read; use ${STRUCTURED_CONTENT_TYPE} or binary mode (ce-* headers)`,
    );
  }
  return { event: readBinary(req, contentType), mode: "binary" };
}

function readBinary(req: HttpRequestParts, contentType: string | undefined): CloudEvent {
  rejectRepeatedCeHeaders(req.rawHeaders);
  const attributes: Partial<Record<CoreAttribute, string>> = {};
  const extensions = Object.create(null) as Record<string, string>;
  for (const [header, raw] of Object.entries(req.headers)) {
    if (!header.startsWith(HEADER_PREFIX) || raw === undefined) continue;
    const name = header.slice(HEADER_PREFIX.length);
    if (name === "datacontenttype") {
      throw new CloudEventError(
        "invalid-attribute",
        'binary mode carries datacontenttype in the "Content-Type" header, not "ce-datacontenttype"',
        { attribute: name },
      );
    }
    const value = percentDecode(name, single(raw) ?? "");
    const problem = attributeProblem(name, value);
    if (problem !== undefined) throw problem;
    if (isCoreAttribute(name)) attributes[name] = value;
    else extensions[name] = value;
  }
  if (
    attributes.specversion === undefined &&
    Object.keys(attributes).length === 0 &&
    Object.keys(extensions).length === 0
  ) {
    throw new CloudEventError(
      "missing-attribute",
      `the request carries no CloudEvent: send binary mode (ce-specversion, ce-id, ce-source, ce-type headers and the data as the body) or structured mode (Content-Type: ${STRUCTURED_CONTENT_TYPE})`,
      { attribute: "specversion" },
    );
  }
  for (const name of REQUIRED_ATTRIBUTES) {
    if (attributes[name] === undefined) {
      throw new CloudEventError("missing-attribute", `required header "ce-${name}" is missing`, {
        attribute: name,
      });
    }
  }
  if (contentType !== undefined) {
    const problem = attributeProblem("datacontenttype", contentType);
    if (problem !== undefined) throw problem;
    attributes.datacontenttype = contentType;
  }
  const data = req.body === undefined || req.body.length === 0 ? null : req.body;
  return eventOfShape(attributes, extensions, data);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

function rejectRepeatedCeHeaders(rawHeaders: readonly string[]): void {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? "").toLowerCase();
    if (!name.startsWith(HEADER_PREFIX) && name !== "content-type") continue;
    if (seen.has(name)) {
      throw new CloudEventError(
        "duplicate-attribute",
        `header "${name}" appears more than once; send it once`,
        {
          attribute: name.startsWith(HEADER_PREFIX) ? name.slice(HEADER_PREFIX.length) : "datacontenttype",
        },
      );
    }
    seen.add(name);
  }
}

const PERCENT = /%(?![0-9A-Fa-f]{2})/;
// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/**
 * The HTTP binding percent-encodes header values outside printable ASCII (and space, `"`, `%`) as UTF-8
 * bytes. Decoding them back must yield valid UTF-8; a stray `%` is refused rather than guessed at.
 */
function percentDecode(name: string, value: string): string {
  if (!value.includes("%") && ASCII.test(value)) return value;
  if (PERCENT.test(value)) {
    throw new CloudEventError(
      "invalid-attribute",
      `header "ce-${name}" has a "%" that is not followed by two hex digits`,
      {
        attribute: name,
      },
    );
  }
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    if (ch === 0x25 /* % */) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (ch < 0x80) {
      bytes.push(ch);
    } else {
      // Node hands non-ASCII header bytes over as latin1 characters; they are the raw bytes.
      bytes.push(ch & 0xff);
    }
  }
  const buf = Buffer.from(bytes);
  if (!isUtf8(buf)) {
    throw new CloudEventError("invalid-attribute", `header "ce-${name}" does not decode to valid UTF-8`, {
      attribute: name,
    });
  }
  return buf.toString("utf8");
}
