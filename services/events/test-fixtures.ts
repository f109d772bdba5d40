/**
 * Fixture builders for the event module's tests: events, keys, trust stores, and records as a Kafka
 * consumer (kafkajs) hands them over. Test-only.
 */
import type { KafkaHeaderValue, KafkaMessage, KafkaRecord } from "./binding.ts";
import type { CloudEvent } from "./cloudevent.ts";
import { generateSigningKey, type SigningKey } from "./keys.ts";
import { TrustStore, type KeyAllowance } from "./trust-store.ts";

/** The source prefix the fixture keys are allowed to sign. */
export const SOURCE_PREFIX = "/eventloom/shop/orders/";

/** A valid event with typical Eventloom attributes; override any field. */
export function anEvent(overrides: Partial<CloudEvent> = {}): CloudEvent {
  return {
    id: "0190f7a2-4b6e-7c41-9f1e-2a3b4c5d6e7f",
    source: `${SOURCE_PREFIX}payment`,
    specversion: "1.0",
    type: "io.eventloom.step.completed",
    datacontenttype: "application/json",
    subject: "order-42",
    time: "2025-06-18T19:24:53.123456+02:00",
    extensions: { partitionkey: "run-7f3a", destination: "shop/orders/shipping" },
    data: Buffer.from('{"orderId":"42", "amount":1999,"currency":"EUR"}'),
    ...overrides,
  };
}

/** Fresh keys for a test file (generating takes ~50 µs each). */
export function someKeys(): { current: SigningKey; previous: SigningKey; stranger: SigningKey } {
  return { current: generateSigningKey(), previous: generateSigningKey(), stranger: generateSigningKey() };
}

/** A trust store allowing each key the fixture source prefix and all `io.eventloom.` types, unless overridden. */
export function trustFor(keys: readonly SigningKey[], allowance: Partial<KeyAllowance> = {}): TrustStore {
  return new TrustStore(
    keys.map((key) => ({
      publicKey: key.publicKey,
      sources: allowance.sources ?? [`${SOURCE_PREFIX}*`],
      types: allowance.types ?? ["io.eventloom.*"],
    })),
  );
}

/**
 * What a consumer receives for a produced message: kafkajs hands header values and keys back as Buffers.
 * `edit` changes headers on the way (set a value, or `undefined` to drop the header).
 */
export function asConsumed(
  message: KafkaMessage,
  edit: { headers?: Record<string, KafkaHeaderValue>; key?: string | null; value?: Buffer | null } = {},
): KafkaRecord {
  const headers: Record<string, KafkaHeaderValue> = {};
  for (const [name, value] of Object.entries({ ...message.headers, ...edit.headers })) {
    if (value === undefined) continue;
    headers[name] = typeof value === "string" ? Buffer.from(value) : value;
  }
  const key = edit.key === undefined ? message.key : edit.key;
  return {
    key: key === null ? null : Buffer.from(key),
    value: edit.value === undefined ? message.value : edit.value,
    headers,
  };
}
