/**
 * Delivery bookkeeping of the worker SDK: the retry headers a record carries through the retry tiers,
 * the decision what to do with a failed attempt, and seed 001's dead-letter envelope.
 *
 * Pure functions over header maps (docs/events.md "Retries and dead letters"); the runner does the I/O.
 * Delivery headers describe the delivery, not the event, so they are not signed: a retried or
 * dead-lettered record keeps its value and its `ce_*` headers byte for byte and still verifies.
 */
import type { RecordHeaders } from "../kafka/client.ts";
import type { RetryTier } from "./env.ts";

/** Headers of a record on a retry tier. */
export const RETRY_HEADERS = {
  count: "eventloom-retry-count",
  due: "eventloom-retry-due",
  originalTopic: "eventloom-original-topic",
  originalPartition: "eventloom-original-partition",
  originalOffset: "eventloom-original-offset",
  firstFailure: "eventloom-first-failure",
  errors: "eventloom-errors",
} as const;

/** Headers of a record on the dead-letter topic: seed 001's envelope, one header per field. */
export const DEAD_LETTER_HEADERS = {
  errorMessage: "eventloom-dlt-error-message",
  errorType: "eventloom-dlt-error-type",
  retryCount: "eventloom-dlt-retry-count",
  failedAttempts: "eventloom-dlt-failed-attempts",
  firstFailureTimestamp: "eventloom-dlt-first-failure-timestamp",
  lastFailureTimestamp: "eventloom-dlt-last-failure-timestamp",
  originalTopic: "eventloom-dlt-original-topic",
  originalPartition: "eventloom-dlt-original-partition",
  originalOffset: "eventloom-dlt-original-offset",
  consumerGroup: "eventloom-dlt-consumer-group",
  /** Machine-readable cause for SignatureError records: the verifier's reason, e.g. `bad-signature`. */
  reason: "eventloom-dlt-reason",
} as const;

/** `errorType` of records that failed verification (never retried, never shown to a handler). */
export const SIGNATURE_ERROR = "SignatureError";
/** `errorType` of records that are not CloudEvents at all (poison records). */
export const INVALID_CLOUD_EVENT = "InvalidCloudEvent";

/** Prefix of every header the SDK owns; such headers are never copied from one hop to the next. */
const OWN_PREFIX = "eventloom-";
const TRACE_HEADERS = new Set(["traceparent", "tracestate"]);
/** Bounds on what a failure may add to a record's headers (a long stack could exceed the broker's limit). */
export const MAX_ERROR_MESSAGE_LENGTH = 2048;
export const MAX_RECORDED_ATTEMPTS = 20;

/** One failed attempt, as listed in `eventloom-errors`. */
export interface FailedAttempt {
  /** 1-based delivery attempt. */
  readonly attempt: number;
  readonly errorType: string;
  readonly errorMessage: string;
  /** ISO 8601. */
  readonly timestamp: string;
}

/** Where a record came from and how often it failed so far. */
export interface Delivery {
  /** Retries already made: 0 for a record read from its step topic. */
  readonly retryCount: number;
  /** Epoch ms before which a retry-tier record must not be processed; undefined on a step topic. */
  readonly dueMs: number | undefined;
  readonly originalTopic: string;
  readonly originalPartition: number;
  readonly originalOffset: string;
  /** Epoch ms of the first failure; undefined before any. */
  readonly firstFailureMs: number | undefined;
  readonly errors: readonly FailedAttempt[];
}

type Headers = Readonly<Record<string, Buffer | string | undefined>>;

function text(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return v === undefined ? undefined : typeof v === "string" ? v : v.toString("utf8");
}

function wholeNumber(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,16}$/.test(value)) return undefined;
  return Number(value);
}

/** The delivery of a record read from its own step topic. */
export function firstDelivery(record: { topic: string; partition: number; offset: string }): Delivery {
  return {
    retryCount: 0,
    dueMs: undefined,
    originalTopic: record.topic,
    originalPartition: record.partition,
    originalOffset: record.offset,
    firstFailureMs: undefined,
    errors: [],
  };
}

/**
 * The delivery a retry-tier record describes, or undefined when its headers are missing or malformed
 * (such a record cannot be attributed to a step; the runner logs and skips it).
 */
export function retryDelivery(headers: Headers): Delivery | undefined {
  const retryCount = wholeNumber(text(headers, RETRY_HEADERS.count));
  const dueMs = wholeNumber(text(headers, RETRY_HEADERS.due));
  const originalTopic = text(headers, RETRY_HEADERS.originalTopic);
  const originalPartition = wholeNumber(text(headers, RETRY_HEADERS.originalPartition));
  const originalOffset = text(headers, RETRY_HEADERS.originalOffset);
  if (
    retryCount === undefined ||
    retryCount < 1 ||
    dueMs === undefined ||
    !originalTopic ||
    originalPartition === undefined ||
    originalOffset === undefined ||
    wholeNumber(originalOffset) === undefined
  ) {
    return undefined;
  }
  return {
    retryCount,
    dueMs,
    originalTopic,
    originalPartition,
    originalOffset,
    firstFailureMs: wholeNumber(text(headers, RETRY_HEADERS.firstFailure)),
    errors: parseErrors(text(headers, RETRY_HEADERS.errors)),
  };
}

/** Only the original topic of a retry-tier record (cheap: the runner's "is it mine?" check). */
export function retryOriginalTopic(headers: Headers): string | undefined {
  return text(headers, RETRY_HEADERS.originalTopic);
}

/** Only the due time of a retry-tier record, epoch ms. */
export function retryDueMs(headers: Headers): number | undefined {
  return wholeNumber(text(headers, RETRY_HEADERS.due));
}

function parseErrors(raw: string | undefined): FailedAttempt[] {
  if (raw === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(
      (e): e is FailedAttempt =>
        typeof e === "object" &&
        e !== null &&
        typeof (e as FailedAttempt).attempt === "number" &&
        typeof (e as FailedAttempt).errorType === "string" &&
        typeof (e as FailedAttempt).errorMessage === "string" &&
        typeof (e as FailedAttempt).timestamp === "string",
    );
  } catch {
    return [];
  }
}

/** The error's type and message as recorded: `name` (or "Error") and a bounded message. */
export function describeError(err: unknown): { errorType: string; errorMessage: string } {
  const e =
    err instanceof Error
      ? err
      : new Error(typeof err === "string" ? err : (JSON.stringify(err) ?? String(err)));
  const message = e.message || String(e);
  return {
    errorType: e.name || "Error",
    errorMessage:
      message.length > MAX_ERROR_MESSAGE_LENGTH
        ? `${message.slice(0, MAX_ERROR_MESSAGE_LENGTH - 1)}…`
        : message,
  };
}

/** The delivery after one more failed attempt at `nowMs`. */
export function afterFailure(
  delivery: Delivery,
  error: { errorType: string; errorMessage: string },
  nowMs: number,
): Delivery {
  const attempt: FailedAttempt = {
    attempt: delivery.retryCount + 1,
    errorType: error.errorType,
    errorMessage: error.errorMessage,
    timestamp: new Date(nowMs).toISOString(),
  };
  return {
    ...delivery,
    firstFailureMs: delivery.firstFailureMs ?? nowMs,
    errors: [...delivery.errors, attempt].slice(-MAX_RECORDED_ATTEMPTS),
  };
}

/** What to do with a record whose attempt just failed. */
export type FailureDecision =
  | { readonly kind: "retry"; readonly tier: RetryTier; readonly dueMs: number; readonly retryCount: number }
  | { readonly kind: "dead-letter"; readonly why: "exhausted" | "non-retryable" };

/**
 * Retry through the next tier (the k-th retry goes to `tiers[k-1]`, due `delayMs` after the failure),
 * or dead-letter when the error is not retryable or the tiers are used up. `delivery.retryCount` is the
 * number of retries made before this failed attempt.
 */
export function decideFailure(
  delivery: Pick<Delivery, "retryCount">,
  tiers: readonly RetryTier[],
  retryable: boolean,
  nowMs: number,
): FailureDecision {
  if (!retryable) return { kind: "dead-letter", why: "non-retryable" };
  const tier = tiers[delivery.retryCount];
  if (tier === undefined) return { kind: "dead-letter", why: "exhausted" };
  return { kind: "retry", tier, dueMs: nowMs + tier.delayMs, retryCount: delivery.retryCount + 1 };
}

/**
 * The headers of the record's event, byte for byte: everything except the SDK's own delivery headers and
 * trace context (which the next hop writes afresh).
 */
export function eventHeaders(headers: Headers): RecordHeaders {
  const out: RecordHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(OWN_PREFIX) || TRACE_HEADERS.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Headers of the record to write to a retry tier: the event's headers untouched plus the delivery. */
export function retryHeaders(
  headers: Headers,
  delivery: Delivery,
  decision: Extract<FailureDecision, { kind: "retry" }>,
): RecordHeaders {
  return {
    ...eventHeaders(headers),
    [RETRY_HEADERS.count]: String(decision.retryCount),
    [RETRY_HEADERS.due]: String(decision.dueMs),
    [RETRY_HEADERS.originalTopic]: delivery.originalTopic,
    [RETRY_HEADERS.originalPartition]: String(delivery.originalPartition),
    [RETRY_HEADERS.originalOffset]: delivery.originalOffset,
    ...(delivery.firstFailureMs !== undefined
      ? { [RETRY_HEADERS.firstFailure]: String(delivery.firstFailureMs) }
      : {}),
    [RETRY_HEADERS.errors]: JSON.stringify(delivery.errors),
  };
}

/** Seed 001's dead-letter envelope (`originalMessage` is the record's value). */
export interface DeadLetterEnvelope {
  originalMessage: string;
  errorMessage: string;
  errorType: string;
  retryCount: number;
  failedAttempts: number;
  /** ISO 8601. */
  firstFailureTimestamp: string;
  /** ISO 8601. */
  lastFailureTimestamp: string;
  originalTopic: string;
  originalPartition: number;
  originalOffset: number;
  consumerGroup: string;
}

/**
 * The envelope of a record about to be dead-lettered. `delivery` must already include the last failure
 * (see {@link afterFailure}); retryCount counts retries made, failedAttempts the failed attempts
 * (retries + 1, as in seed 001: 3 retries, 4 failed attempts).
 */
export function deadLetterEnvelope(args: {
  value: Buffer | null;
  delivery: Delivery;
  error: { errorType: string; errorMessage: string };
  consumerGroup: string;
  nowMs: number;
}): DeadLetterEnvelope {
  const { delivery, nowMs } = args;
  return {
    originalMessage: args.value?.toString("utf8") ?? "",
    errorMessage: args.error.errorMessage,
    errorType: args.error.errorType,
    retryCount: delivery.retryCount,
    failedAttempts: delivery.retryCount + 1,
    firstFailureTimestamp: new Date(delivery.firstFailureMs ?? nowMs).toISOString(),
    lastFailureTimestamp: new Date(nowMs).toISOString(),
    originalTopic: delivery.originalTopic,
    originalPartition: delivery.originalPartition,
    originalOffset: Number(delivery.originalOffset),
    consumerGroup: args.consumerGroup,
  };
}

/**
 * Headers of the dead-letter record: the event's headers untouched, the envelope's fields (all but
 * `originalMessage`, which is the value itself) and the list of failed attempts.
 */
export function deadLetterHeaders(
  headers: Headers,
  envelope: DeadLetterEnvelope,
  extra: { errors: readonly FailedAttempt[]; reason?: string },
): RecordHeaders {
  return {
    ...eventHeaders(headers),
    [DEAD_LETTER_HEADERS.errorMessage]: envelope.errorMessage,
    [DEAD_LETTER_HEADERS.errorType]: envelope.errorType,
    [DEAD_LETTER_HEADERS.retryCount]: String(envelope.retryCount),
    [DEAD_LETTER_HEADERS.failedAttempts]: String(envelope.failedAttempts),
    [DEAD_LETTER_HEADERS.firstFailureTimestamp]: envelope.firstFailureTimestamp,
    [DEAD_LETTER_HEADERS.lastFailureTimestamp]: envelope.lastFailureTimestamp,
    [DEAD_LETTER_HEADERS.originalTopic]: envelope.originalTopic,
    [DEAD_LETTER_HEADERS.originalPartition]: String(envelope.originalPartition),
    [DEAD_LETTER_HEADERS.originalOffset]: String(envelope.originalOffset),
    [DEAD_LETTER_HEADERS.consumerGroup]: envelope.consumerGroup,
    ...(extra.reason !== undefined ? { [DEAD_LETTER_HEADERS.reason]: extra.reason } : {}),
    [RETRY_HEADERS.errors]: JSON.stringify(extra.errors),
  };
}

/**
 * Reads seed 001's envelope back from a dead-letter record (for the DLQ API, replay, and tests), or
 * undefined when the record lacks the headers.
 */
export function readDeadLetterEnvelope(record: {
  value: Buffer | null;
  headers: Headers;
}): DeadLetterEnvelope | undefined {
  const h = record.headers;
  const get = (name: string) => text(h, name);
  const retryCount = wholeNumber(get(DEAD_LETTER_HEADERS.retryCount));
  const failedAttempts = wholeNumber(get(DEAD_LETTER_HEADERS.failedAttempts));
  const originalPartition = wholeNumber(get(DEAD_LETTER_HEADERS.originalPartition));
  const originalOffset = wholeNumber(get(DEAD_LETTER_HEADERS.originalOffset));
  const errorMessage = get(DEAD_LETTER_HEADERS.errorMessage);
  const errorType = get(DEAD_LETTER_HEADERS.errorType);
  const first = get(DEAD_LETTER_HEADERS.firstFailureTimestamp);
  const last = get(DEAD_LETTER_HEADERS.lastFailureTimestamp);
  const originalTopic = get(DEAD_LETTER_HEADERS.originalTopic);
  const consumerGroup = get(DEAD_LETTER_HEADERS.consumerGroup);
  if (
    retryCount === undefined ||
    failedAttempts === undefined ||
    originalPartition === undefined ||
    originalOffset === undefined ||
    errorMessage === undefined ||
    errorType === undefined ||
    first === undefined ||
    last === undefined ||
    originalTopic === undefined ||
    consumerGroup === undefined
  ) {
    return undefined;
  }
  return {
    originalMessage: record.value?.toString("utf8") ?? "",
    errorMessage,
    errorType,
    retryCount,
    failedAttempts,
    firstFailureTimestamp: first,
    lastFailureTimestamp: last,
    originalTopic,
    originalPartition,
    originalOffset,
    consumerGroup,
  };
}
