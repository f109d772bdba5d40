/**
 * The gateway's Kafka: one producer (acks=all), one admin client, and the dead-letter views. Connecting
 * happens in the background with backoff, so the gateway starts (and answers /healthz, and 503 with
 * Retry-After on writes) while Kafka is unreachable, and becomes ready when it answers.
 */
import { KafkaUnavailableError } from "../kafka/client.ts";
import type {
  KafkaAdmin,
  KafkaClient,
  KafkaProducer,
  OutgoingRecord,
  SentRecordMetadata,
} from "../kafka/client.ts";
import { DeadLetterIndexes } from "./dlq/index.ts";
import type { DeadLetterSnapshot, GatewayKafka, PurgedPartition } from "./ports.ts";

export interface KafkaBackendOptions {
  deadLetterMaxRecords: number;
  deadLetterCatchUpTimeoutMs: number;
  deadLetterIdleMs: number;
  onError?: (what: string, err: unknown) => void;
  /** Longest pause between connection attempts. */
  maxBackoffMs?: number;
}

export class KafkaBackend implements GatewayKafka {
  private readonly producer: KafkaProducer;
  private readonly admin: KafkaAdmin;
  private readonly deadLetters: DeadLetterIndexes;
  private connected = false;
  /** False after a write failed because Kafka was unreachable, until a probe gets an answer. */
  private healthy = true;
  private lastError = "connecting to Kafka";
  private closed = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly client: KafkaClient,
    private readonly opts: KafkaBackendOptions,
  ) {
    this.producer = client.producer();
    this.admin = client.admin();
    this.deadLetters = new DeadLetterIndexes(client, {
      maxRecords: opts.deadLetterMaxRecords,
      idleMs: opts.deadLetterIdleMs,
    });
  }

  /** Starts connecting in the background; resolves at once. */
  start(): void {
    this.loop ??= this.connectLoop();
  }

  /** Resolves once connected (for main and tests that want to wait). */
  async waitUntilReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready() && Date.now() < deadline && !this.closed) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.ready();
  }

  ready(): boolean {
    return this.connected && this.healthy;
  }

  readinessDetail(): string {
    return this.ready() ? "Kafka producer connected" : `Kafka is not reachable: ${this.lastError}`;
  }

  async send(topic: string, records: OutgoingRecord[]): Promise<SentRecordMetadata[]> {
    if (!this.connected) throw new KafkaUnavailableError(`the producer is not connected (${this.lastError})`);
    try {
      const sent = await this.producer.send(topic, records);
      this.healthy = true;
      return sent;
    } catch (err) {
      if (err instanceof KafkaUnavailableError) this.markUnhealthy(err);
      throw err;
    }
  }

  async topicExists(topic: string): Promise<boolean> {
    this.requireConnected();
    return (await this.guard(() => this.admin.describeTopics([topic]))).length > 0;
  }

  async readDeadLetters(topic: string): Promise<DeadLetterSnapshot> {
    this.requireConnected();
    const partitions = await this.guard(() => this.admin.partitionOffsets(topic));
    const index = await this.deadLetters.get(topic);
    const complete = await index.waitFor(partitions, this.opts.deadLetterCatchUpTimeoutMs);
    const snapshot = {
      records: index.recordsWithin(partitions),
      partitions,
      complete,
      evicted: index.evicted,
    };
    // A view that cannot catch up may have lost its consumer: start afresh on the next request.
    if (!complete) await this.deadLetters.drop(topic);
    return snapshot;
  }

  async purge(topic: string): Promise<PurgedPartition[]> {
    this.requireConnected();
    const partitions = await this.guard(() => this.admin.partitionOffsets(topic));
    const toDelete = partitions.filter((p) => p.logEnd > p.logStart);
    if (toDelete.length === 0) return [];
    await this.guard(() =>
      this.admin.deleteRecordsBefore(
        topic,
        toDelete.map((p) => ({ partition: p.partition, offset: p.logEnd })),
      ),
    );
    const index = await this.deadLetters.peek(topic);
    index?.dropBelow(partitions.map((p) => ({ ...p, logStart: p.logEnd })));
    return toDelete.map((p) => ({
      partition: p.partition,
      from: p.logStart.toString(),
      to: p.logEnd.toString(),
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.loop;
    await this.deadLetters.close();
    await Promise.allSettled([this.producer.close(), this.admin.close()]);
  }

  private requireConnected(): void {
    if (!this.connected) throw new KafkaUnavailableError(`not connected (${this.lastError})`);
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof KafkaUnavailableError) this.markUnhealthy(err);
      throw err;
    }
  }

  private markUnhealthy(err: Error): void {
    this.lastError = err.message;
    if (!this.healthy) return;
    this.healthy = false;
    this.wake?.();
  }

  /** Connects, then probes while unhealthy; sleeps while all is well. */
  private async connectLoop(): Promise<void> {
    let backoff = 250;
    const max = this.opts.maxBackoffMs ?? 10_000;
    while (!this.closed) {
      try {
        if (!this.connected) {
          await this.producer.connect();
          await this.admin.connect();
          this.connected = true;
          this.healthy = true;
        } else if (!this.healthy) {
          await this.admin.brokers();
          this.healthy = true;
        }
        backoff = 250;
      } catch (err) {
        this.lastError = (err as Error).message;
        this.opts.onError?.("connect to Kafka", err);
      }
      if (this.closed) break;
      const sleepMs = this.ready() ? 60_000 : backoff;
      if (!this.ready()) backoff = Math.min(backoff * 2, max);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        timer.unref();
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
