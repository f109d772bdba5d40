/**
 * Reading dead-letter records (docs/events.md, "Retries and dead letters"): the record's value and `ce_*`
 * headers are the failed event, untouched; seed 001's envelope fields travel as `eventloom-dlt-*`
 * headers, which describe the delivery and are not signed. The header names are the worker SDK's
 * (`DEAD_LETTER_HEADERS`), the one writer of these records.
 */
import { isUtf8 } from "node:buffer";
import type { IncomingRecord } from "../../kafka/client.ts";
import { DEAD_LETTER_HEADERS, RETRY_HEADERS } from "../../sdk/delivery.ts";

export type DltField = keyof typeof DEAD_LETTER_HEADERS;

/** Extension counting replays out of the dead-letter topic (header `ce_replaycount`; not signed). */
export const REPLAY_COUNT_HEADER = "ce_replaycount";

/** One dead letter, as the API shows it (seed 001's message shape plus where it sits and what it was). */
export interface DeadLetter {
  /** `<partition>-<offset>` in the dead-letter topic. */
  id: string;
  partition: number;
  offset: string;
  /** When the record was written to the dead-letter topic (Kafka timestamp), RFC 3339. */
  deadLetteredAt: string;
  /** The failed event's data: text when it is UTF-8, otherwise absent (see originalMessageBase64). */
  originalMessage?: string;
  originalMessageBase64?: string;
  errorMessage?: string;
  errorType?: string;
  retryCount?: number;
  failedAttempts?: number;
  firstFailureTimestamp?: string;
  lastFailureTimestamp?: string;
  originalTopic?: string;
  originalPartition?: number;
  originalOffset?: string;
  consumerGroup?: string;
  /** For SignatureError: the verifier's reason, e.g. `bad-signature`. */
  reason?: string;
  /** Every failed attempt (the SDK's `eventloom-errors` header), oldest first. */
  attempts?: Array<{ attempt: number; errorType: string; errorMessage: string; timestamp: string }>;
  /** How often this event was already replayed from a dead-letter topic. */
  replayCount: number;
  /** The failed event's CloudEvents attributes (`ce_*` headers and content-type), signature material left out. */
  event: Record<string, string>;
  key?: string;
}

function text(value: Buffer | undefined): string | undefined {
  return value === undefined ? undefined : value.toString("utf8");
}

function integer(value: string | undefined): number | undefined {
  if (value === undefined || !/^-?[0-9]+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** Accepts RFC 3339 text or epoch milliseconds; answers RFC 3339 (or the raw text if neither). */
function timestamp(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  const ms = /^[0-9]+$/.test(trimmed) ? Number(trimmed) : Date.parse(trimmed);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : trimmed;
}

/** The envelope fields of a dead-letter record, by field name, as text. */
export function envelopeFields(headers: IncomingRecord["headers"]): Partial<Record<DltField, string>> {
  const out: Partial<Record<DltField, string>> = {};
  for (const field of Object.keys(DEAD_LETTER_HEADERS) as DltField[]) {
    const v = text(headers[DEAD_LETTER_HEADERS[field]]);
    if (v !== undefined) out[field] = v;
  }
  return out;
}

/** The failed attempts listed by the SDK (at most 20 there); anything unreadable is left out. */
function attemptsOf(headers: IncomingRecord["headers"]): DeadLetter["attempts"] {
  const raw = text(headers[RETRY_HEADERS.errors]);
  if (raw === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return undefined;
    return parsed.slice(0, 50).flatMap((a: unknown) => {
      const o = a as Record<string, unknown>;
      return typeof o === "object" && o !== null && typeof o.attempt === "number"
        ? [
            {
              attempt: o.attempt,
              errorType: String(o.errorType ?? ""),
              errorMessage: String(o.errorMessage ?? ""),
              timestamp: String(o.timestamp ?? ""),
            },
          ]
        : [];
    });
  } catch {
    return undefined;
  }
}

/** The replay counter of a record (0 when it was never replayed, or the header is not a number). */
export function replayCountOf(headers: IncomingRecord["headers"]): number {
  const n = integer(text(headers[REPLAY_COUNT_HEADER]));
  return n !== undefined && n > 0 ? n : 0;
}

const HIDDEN_ATTRIBUTES = new Set(["dssematerial", "signedextattrs", "replaycount"]);

export function deadLetterOf(record: IncomingRecord): DeadLetter {
  const fields = envelopeFields(record.headers);
  const event: Record<string, string> = {};
  for (const [name, value] of Object.entries(record.headers)) {
    if (value === undefined) continue;
    if (name === "content-type") event.datacontenttype = value.toString("utf8");
    else if (name.startsWith("ce_") && !HIDDEN_ATTRIBUTES.has(name.slice(3)))
      event[name.slice(3)] = value.toString("utf8");
  }
  const value = record.value;
  const letter: DeadLetter = {
    id: `${record.partition}-${record.offset}`,
    partition: record.partition,
    offset: record.offset,
    deadLetteredAt: new Date(Number(record.timestamp)).toISOString(),
    replayCount: replayCountOf(record.headers),
    event,
  };
  if (value !== null && value.length > 0) {
    if (isUtf8(value)) letter.originalMessage = value.toString("utf8");
    else letter.originalMessageBase64 = value.toString("base64");
  }
  if (fields.errorMessage !== undefined) letter.errorMessage = fields.errorMessage;
  if (fields.errorType !== undefined) letter.errorType = fields.errorType;
  const retryCount = integer(fields.retryCount);
  if (retryCount !== undefined) letter.retryCount = retryCount;
  const failedAttempts = integer(fields.failedAttempts);
  if (failedAttempts !== undefined) letter.failedAttempts = failedAttempts;
  const first = timestamp(fields.firstFailureTimestamp);
  if (first !== undefined) letter.firstFailureTimestamp = first;
  const last = timestamp(fields.lastFailureTimestamp);
  if (last !== undefined) letter.lastFailureTimestamp = last;
  if (fields.originalTopic !== undefined) letter.originalTopic = fields.originalTopic;
  const originalPartition = integer(fields.originalPartition);
  if (originalPartition !== undefined) letter.originalPartition = originalPartition;
  if (fields.originalOffset !== undefined) letter.originalOffset = fields.originalOffset.trim();
  if (fields.consumerGroup !== undefined) letter.consumerGroup = fields.consumerGroup;
  if (fields.reason !== undefined) letter.reason = fields.reason;
  const attempts = attemptsOf(record.headers);
  if (attempts !== undefined) letter.attempts = attempts;
  if (record.key !== null) letter.key = record.key.toString("utf8");
  return letter;
}

/** When the record failed for the last time: the envelope's lastFailureTimestamp, else the Kafka timestamp. */
export function failedAt(letter: DeadLetter): number {
  const last =
    letter.lastFailureTimestamp === undefined ? Number.NaN : Date.parse(letter.lastFailureTimestamp);
  return Number.isFinite(last) ? last : Date.parse(letter.deadLetteredAt);
}

/**
 * The headers a replayed record carries: the failed event's `ce_*` headers and `content-type` byte for
 * byte (so its signature still verifies), trace context, and `ce_replaycount` raised by one. Delivery
 * headers (`eventloom-dlt-*`, retry bookkeeping) are dropped: the replay is a fresh delivery.
 */
export function replayHeaders(record: IncomingRecord, replayCount: number): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(record.headers)) {
    if (value === undefined || name === REPLAY_COUNT_HEADER) continue;
    if (
      name.startsWith("ce_") ||
      name === "content-type" ||
      name === "traceparent" ||
      name === "tracestate"
    ) {
      out[name] = value;
    }
  }
  out[REPLAY_COUNT_HEADER] = Buffer.from(String(replayCount));
  return out;
}
