/**
 * Dead-letter records the engine writes to an Orchestration's `<base>-dlt`:
 * the record's value and `ce_*` headers untouched (signatures still verify, a
 * replay sends the same event), plus seed 001's envelope as `eventloom-dlt-*`
 * headers (docs/events.md, "Retries and dead letters"). `originalMessage` is
 * the record value itself.
 */
import type { OutgoingRecord } from "../kafka/client.ts";
import { DEAD_LETTER_HEADERS } from "../sdk/delivery.ts";

/** The envelope's header names: the worker SDK's, so the gateway's dead-letter API reads both alike. */
export const DLT_HEADERS = DEAD_LETTER_HEADERS;

export interface DeadLetterInfo {
  errorType: string;
  errorMessage: string;
  retryCount: number;
  failedAttempts: number;
  firstFailure: Date;
  lastFailure: Date;
  originalTopic: string;
  /** -1 when the record never was on a topic (a command rebuilt from state). */
  originalPartition: number;
  originalOffset: string;
  consumerGroup: string;
}

/** The dead-letter record for `record`, keeping its key, value and headers and adding the envelope. */
export function deadLetterRecord(
  record: {
    key: Buffer | string | null;
    value: Buffer | string | null;
    headers: Record<string, Buffer | string | undefined>;
  },
  info: DeadLetterInfo,
): OutgoingRecord {
  const headers: Record<string, Buffer | string | undefined> = {};
  const ours = new Set<string>(Object.values(DLT_HEADERS));
  for (const [name, value] of Object.entries(record.headers)) if (!ours.has(name)) headers[name] = value;
  headers[DLT_HEADERS.errorMessage] = info.errorMessage;
  headers[DLT_HEADERS.errorType] = info.errorType;
  headers[DLT_HEADERS.retryCount] = String(info.retryCount);
  headers[DLT_HEADERS.failedAttempts] = String(info.failedAttempts);
  headers[DLT_HEADERS.firstFailureTimestamp] = info.firstFailure.toISOString();
  headers[DLT_HEADERS.lastFailureTimestamp] = info.lastFailure.toISOString();
  headers[DLT_HEADERS.originalTopic] = info.originalTopic;
  headers[DLT_HEADERS.originalPartition] = String(info.originalPartition);
  headers[DLT_HEADERS.originalOffset] = info.originalOffset;
  headers[DLT_HEADERS.consumerGroup] = info.consumerGroup;
  return { key: record.key, value: record.value, headers };
}
