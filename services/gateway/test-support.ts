/**
 * Fakes and fixture builders for the gateway's unit tests: an in-memory Kafka and Orchestration
 * directory behind the gateway's ports, real signing keys and trust. Test-only.
 */
import { orchestrationSource } from "../../operator/builders/keys.ts";
import type { Orchestration } from "../../operator/crds/types.ts";
import { generateSigningKey } from "../events/keys.ts";
import type { SigningKey } from "../events/keys.ts";
import { Signer } from "../events/signing.ts";
import { TrustStore } from "../events/trust-store.ts";
import { KafkaUnavailableError } from "../kafka/client.ts";
import type {
  IncomingRecord,
  OutgoingRecord,
  PartitionOffsets,
  SentRecordMetadata,
} from "../kafka/client.ts";
import type { OrchestrationEntry } from "../runtime/registry.ts";
import { TokenTable } from "./auth.ts";
import type { DeadLetterSnapshot, GatewayKafka, OrchestrationDirectory, PurgedPartition } from "./ports.ts";

export const TOKENS = {
  shop: "shop-token-0123456789abcdef0123456789abcdef",
  ops: "ops-token-0123456789abcdef0123456789abcdef",
  checkoutOnly: "checkout-token-0123456789abcdef0123456789abcdef",
} as const;

export function tokenTable(): TokenTable {
  return TokenTable.parse(
    [
      `shop-web ${TOKENS.shop} shop`,
      `ops ${TOKENS.ops} *`,
      `checkout-job ${TOKENS.checkoutOnly} shop/orders`,
    ].join("\n"),
  );
}

export function orchestration(name: string, spec: Orchestration["spec"], namespace = "shop"): Orchestration {
  return {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name, namespace, uid: `uid-${name}`, generation: 1 },
    spec,
  };
}

/** Seed 002's order saga, orchestrated, with an inputSchema. */
export const ORDERS = orchestration("orders", {
  mode: "orchestrated",
  steps: [
    { name: "create-order", type: "com.example.order.create", compensation: "com.example.order.cancel" },
    { name: "take-payment", type: "com.example.payment.take", dependsOn: ["create-order"] },
  ],
  inputSchema: {
    type: "object",
    required: ["orderId", "quantity"],
    properties: { orderId: { type: "string" }, quantity: { type: "integer", minimum: 1, maximum: 100 } },
  },
  deadLetter: { enabled: true, maxReplays: 2 },
});

/** Seed 002's saga, choreographed: order.placed fans out to two steps. */
export const SAGA = orchestration("saga", {
  mode: "choreographed",
  steps: [
    {
      name: "reserve-stock",
      subscribes: ["com.example.order.placed"],
      emits: ["com.example.stock.reserved"],
    },
    { name: "notify", subscribes: ["com.example.order.placed", "com.example.payment.failed"] },
    {
      name: "take-payment",
      subscribes: ["com.example.stock.reserved"],
      emits: ["com.example.payment.failed"],
    },
  ],
  inputSchema: { type: "object", required: ["orderId"] },
});

/** High-volume, unsigned (seed 002's click tracking). */
export const CLICKS = orchestration("clicks", {
  mode: "orchestrated",
  steps: [{ name: "count", type: "com.example.click.count" }],
  signing: { policy: "none" },
  deadLetter: { enabled: false },
});

/** The trust an operator would publish for the Orchestration's own key (any type from its source). */
export function trustOf(orch: Orchestration, key: SigningKey): TrustStore {
  return new TrustStore([
    {
      publicKey: key.publicKey,
      sources: [orchestrationSource(orch.metadata.namespace ?? "", orch.metadata.name ?? "")],
      types: ["*"],
    },
  ]);
}

/** The registry entry of `orch`, signing with `key` (null: the operator has not created the key yet). */
export function entryOf(
  orch: Orchestration,
  key: SigningKey | null = generateSigningKey(),
): OrchestrationEntry {
  const namespace = orch.metadata.namespace ?? "";
  const name = orch.metadata.name ?? "";
  return {
    key: `${namespace}/${name}`,
    namespace,
    name,
    generation: orch.metadata.generation ?? 1,
    orchestration: orch,
    signer: key ? new Signer(key) : undefined,
    trust: key ? trustOf(orch, key) : new TrustStore([]),
  };
}

export class FakeDirectory implements OrchestrationDirectory {
  readonly entries = new Map<string, OrchestrationEntry>();
  isSynced = true;
  reloads = 0;
  /** What reload() finds (e.g. the key appearing); default: the current entry. */
  onReload: ((entry: OrchestrationEntry | undefined) => OrchestrationEntry | undefined) | undefined;

  constructor(...entries: OrchestrationEntry[]) {
    for (const e of entries) this.entries.set(e.key, e);
  }

  get(namespace: string, name: string): OrchestrationEntry | undefined {
    return this.entries.get(`${namespace}/${name}`);
  }

  async reload(namespace: string, name: string): Promise<OrchestrationEntry | undefined> {
    this.reloads++;
    const key = `${namespace}/${name}`;
    const found = this.onReload ? this.onReload(this.entries.get(key)) : this.entries.get(key);
    if (found) this.entries.set(key, found);
    return found;
  }

  synced(): boolean {
    return this.isSynced;
  }

  async close(): Promise<void> {}
}

export interface SentBatch {
  topic: string;
  records: OutgoingRecord[];
}

export class FakeKafka implements GatewayKafka {
  isReady = true;
  readonly sent: SentBatch[] = [];
  /** Makes the next sends fail or hang. */
  failWith: Error | undefined;
  hang: Promise<void> | undefined;
  readonly topics = new Set<string>();
  readonly deadLetters = new Map<string, { records: IncomingRecord[]; logStart: bigint }>();
  closed = false;
  private offsets = new Map<string, number>();

  ready(): boolean {
    return this.isReady;
  }

  readinessDetail(): string {
    return this.isReady
      ? "Kafka producer connected"
      : "Kafka is not reachable: connect ECONNREFUSED 127.0.0.1:1";
  }

  async send(topic: string, records: OutgoingRecord[]): Promise<SentRecordMetadata[]> {
    if (this.hang) await this.hang;
    if (this.failWith) throw this.failWith;
    if (!this.isReady) throw new KafkaUnavailableError("not connected");
    this.sent.push({ topic, records });
    const offset = this.offsets.get(topic) ?? 0;
    this.offsets.set(topic, offset + records.length);
    return records.map((_, i) => ({ topic, partition: 0, offset: String(offset + i) }));
  }

  async topicExists(topic: string): Promise<boolean> {
    return this.topics.has(topic) || this.deadLetters.has(topic);
  }

  private bounds(topic: string): PartitionOffsets[] {
    const dlt = this.deadLetters.get(topic);
    const partitions = new Set(dlt?.records.map((r) => r.partition) ?? [0]);
    return [...partitions].map((partition) => {
      const offsets = (dlt?.records ?? [])
        .filter((r) => r.partition === partition)
        .map((r) => BigInt(r.offset));
      const end = offsets.length === 0 ? 0n : offsets.reduce((a, b) => (a > b ? a : b)) + 1n;
      return {
        partition,
        logStart: dlt?.logStart ?? 0n,
        logEnd: end < (dlt?.logStart ?? 0n) ? (dlt?.logStart ?? 0n) : end,
      };
    });
  }

  async readDeadLetters(topic: string): Promise<DeadLetterSnapshot> {
    const dlt = this.deadLetters.get(topic);
    const records = (dlt?.records ?? []).filter((r) => BigInt(r.offset) >= (dlt?.logStart ?? 0n));
    return { records, partitions: this.bounds(topic), complete: true, evicted: 0 };
  }

  async purge(topic: string): Promise<PurgedPartition[]> {
    const bounds = this.bounds(topic);
    const dlt = this.deadLetters.get(topic);
    if (dlt) {
      const end = bounds.reduce((max, p) => (p.logEnd > max ? p.logEnd : max), 0n);
      dlt.logStart = end;
    }
    return bounds
      .filter((p) => p.logEnd > p.logStart)
      .map((p) => ({ partition: p.partition, from: p.logStart.toString(), to: p.logEnd.toString() }));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A dead-letter record as the worker SDK writes it (docs/events.md), as a consumer reads it back. */
export function deadLetterRecord(opts: {
  topic: string;
  offset: number;
  partition?: number;
  originalTopic?: string;
  errorType?: string;
  errorMessage?: string;
  lastFailure?: string;
  replayCount?: number;
  value?: string;
}): IncomingRecord {
  const headers: Record<string, Buffer> = {
    ce_specversion: Buffer.from("1.0"),
    ce_id: Buffer.from(`cmd-${opts.offset}`),
    ce_source: Buffer.from("/eventloom/shop/orders"),
    ce_type: Buffer.from("com.example.payment.take"),
    ce_partitionkey: Buffer.from("run-1"),
    ce_dssematerial: Buffer.from("ZW52ZWxvcGU="),
    ce_signedextattrs: Buffer.from("partitionkey"),
    "content-type": Buffer.from("application/json"),
    traceparent: Buffer.from("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    "eventloom-dlt-error-type": Buffer.from(opts.errorType ?? "ValueError"),
    "eventloom-dlt-error-message": Buffer.from(opts.errorMessage ?? "Order ORD-999 not found"),
    "eventloom-dlt-retry-count": Buffer.from("3"),
    "eventloom-dlt-failed-attempts": Buffer.from("4"),
    "eventloom-dlt-first-failure-timestamp": Buffer.from("2026-01-30T12:00:00Z"),
    "eventloom-dlt-last-failure-timestamp": Buffer.from(opts.lastFailure ?? "2026-01-30T12:00:07Z"),
    "eventloom-dlt-original-topic": Buffer.from(opts.originalTopic ?? "eventloom.shop.orders.take-payment"),
    "eventloom-dlt-original-partition": Buffer.from("0"),
    "eventloom-dlt-original-offset": Buffer.from("456"),
    "eventloom-dlt-consumer-group": Buffer.from("eventloom.shop.payments"),
  };
  if (opts.replayCount !== undefined) headers.ce_replaycount = Buffer.from(String(opts.replayCount));
  return {
    topic: opts.topic,
    partition: opts.partition ?? 0,
    offset: String(opts.offset),
    key: Buffer.from("run-1"),
    value: Buffer.from(opts.value ?? '{"orderId":"ORD-999","status":"shipped"}'),
    headers,
    timestamp: String(Date.parse("2026-01-30T12:00:08Z")),
  };
}
