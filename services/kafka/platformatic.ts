/**
 * The @platformatic/kafka producer behind the Kafka module's `KafkaProducer` (see client.ts and
 * docs/kafka-client.md). Loaded only when a process connects a producer with this implementation, so
 * processes that never produce (the operator) do not pay its import cost.
 *
 * It keeps the module's contract: acks=all, explicit partitions honoured, keyed records on the
 * Java-compatible murmur2 partition (the same partition kafkajs's default partitioner and the Java
 * client choose), keyless records round robin, and the partition of every record known after the
 * write so the coalescer can give each caller its exact offset. Errors are classified as the kafkajs
 * path's are: the cluster not answering is a `KafkaUnavailableError`, anything else a refusal.
 */
import { Producer, ProduceAcks, murmur2 } from "@platformatic/kafka";
import type { MessageToProduce } from "@platformatic/kafka";
import type { CoalescedMessage, PartitionAck } from "./coalesce.ts";

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

export interface PlatformaticProducerOptions {
  brokers: string[];
  clientId: string;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  retries: number;
  idempotent: boolean;
}

/** Header names repeat on every record (ce-id, ce-source, traceparent, …): encode each once. */
const headerKeys = new Map<string, Buffer>();
function headerKey(name: string): Buffer {
  let b = headerKeys.get(name);
  if (b === undefined) {
    b = Buffer.from(name);
    if (headerKeys.size < 1024) headerKeys.set(name, b);
  }
  return b;
}

function bytes(v: Buffer | string | null | undefined): Buffer | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === "string" ? Buffer.from(v) : v;
}

/** Kafka's Java client's partition for a key: `toPositive(murmur2(key)) % partitions`. */
export function javaPartition(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

export class PlatformaticProducerBackend {
  private readonly producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  /** Where the partitioner sent each message of the last writes, before the modulo. */
  private readonly raw = new WeakMap<object, number>();
  /** Partition chosen for each caller's message (the coalescer asks after the write). */
  private readonly chosen = new WeakMap<object, number>();
  private roundRobin = 0;

  constructor(private readonly opts: PlatformaticProducerOptions) {
    this.producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
      clientId: opts.clientId,
      bootstrapBrokers: opts.brokers,
      acks: ProduceAcks.ALL,
      idempotent: opts.idempotent,
      autocreateTopics: false,
      connectTimeout: opts.connectionTimeoutMs,
      timeout: opts.requestTimeoutMs,
      retries: opts.retries,
      retryDelay: 100,
      // Keyed: murmur2 as Java does, reduced modulo the partition count by the client. Keyless: round
      // robin. Explicit partitions never reach the partitioner.
      partitioner: (message, key) => {
        const p =
          key !== undefined && key !== null
            ? murmur2(key) & 0x7fffffff
            : (this.roundRobin = (this.roundRobin + 1) & 0x7fffffff);
        this.raw.set(message, p);
        return p;
      },
    });
  }

  /** Resolves once a broker answered (fails when none does, like kafkajs's connect). */
  async connect(): Promise<void> {
    await this.producer.listApis();
  }

  async close(): Promise<void> {
    await this.producer.close();
  }

  partitionOf(message: object): number | undefined {
    return this.chosen.get(message);
  }

  async write(topic: string, messages: CoalescedMessage[]): Promise<PartitionAck[]> {
    const out: Message[] = new Array<Message>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as CoalescedMessage;
      const headers = new Map<Buffer, Buffer>();
      const h = m.headers;
      if (h) {
        for (const name in h) {
          const v = h[name];
          if (v === undefined) continue;
          // Kafka allows a header name more than once; the module's callers send one value each.
          const one = Array.isArray(v) ? v[v.length - 1] : v;
          if (one !== undefined) headers.set(headerKey(name), bytes(one) as Buffer);
        }
      }
      const msg: Message = { topic, value: bytes(m.value) as Buffer, headers };
      const key = bytes(m.key);
      if (key !== undefined) msg.key = key;
      if (m.partition !== undefined) msg.partition = m.partition;
      out[i] = msg;
    }
    const result = await this.producer.send({ messages: out, acks: ProduceAcks.ALL });
    const count = this.producer.currentMetadata?.topics.get(topic)?.partitionsCount;
    if (count !== undefined) {
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i] as CoalescedMessage;
        if (m.partition !== undefined) continue;
        const p = this.raw.get(out[i] as object);
        if (p !== undefined) this.chosen.set(m, p % count);
      }
    }
    const acks: PartitionAck[] = [];
    for (const o of result.offsets ?? []) {
      if (o.topic === topic) acks.push({ partition: o.partition, baseOffset: o.offset.toString() });
    }
    return acks;
  }
}
