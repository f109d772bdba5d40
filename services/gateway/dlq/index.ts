/**
 * A materialized view of one dead-letter topic: a consumer in a throwaway group (no offsets committed)
 * reads the topic from its log start and keeps the records in memory, bounded by a record count. A request
 * captures the topic's end offsets, waits (bounded) until the view has reached them, and filters what it
 * holds to `[logStart, logEnd)`, so records purged or expired since are left out and records written
 * after the request began are not waited for.
 *
 * Why not a consumer per request: joining a group costs a round of rebalancing (3 s by default on a
 * production broker, `group.initial.rebalance.delay.ms`), and kafkajs has no group-less assign().
 * Dead-letter topics are small by nature (they hold failures), so keeping one in memory is cheap; views
 * not used for a while are dropped by their owner (`DeadLetterIndexes`).
 */
import { randomUUID } from "node:crypto";
import type { IncomingRecord, KafkaClient, KafkaConsumer, PartitionOffsets } from "../../kafka/client.ts";

export class DeadLetterIndex {
  /** By `<partition>-<offset>`, in arrival order (oldest first), which eviction relies on. */
  private readonly records = new Map<string, IncomingRecord>();
  /** Next offset to read, per partition. */
  private readonly positions = new Map<number, bigint>();
  private readonly waiters = new Set<() => void>();
  private consumer: KafkaConsumer | undefined;
  private evictedCount = 0;
  lastUsed = Date.now();

  constructor(
    private readonly client: KafkaClient,
    readonly topic: string,
    private readonly maxRecords: number,
  ) {}

  get evicted(): number {
    return this.evictedCount;
  }

  async start(): Promise<void> {
    const consumer = this.client.consumer({
      groupId: `eventloom-gateway-dlq-${randomUUID()}`,
      autoCommit: false,
      maxWaitTimeMs: 200,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe([this.topic], true);
    await consumer.runEach(async (record) => this.add(record));
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    for (const wake of this.waiters) wake();
    await consumer?.close();
  }

  /** Adds a consumed record (public for tests of the bookkeeping). */
  add(record: IncomingRecord): void {
    const offset = BigInt(record.offset);
    this.positions.set(record.partition, offset + 1n);
    this.records.set(`${record.partition}-${record.offset}`, record);
    while (this.records.size > this.maxRecords) {
      const oldest = this.records.keys().next().value;
      if (oldest === undefined) break;
      this.records.delete(oldest);
      this.evictedCount++;
    }
    for (const wake of this.waiters) wake();
  }

  /** True when every partition's records below `logEnd` have been read. */
  caughtUp(offsets: readonly PartitionOffsets[]): boolean {
    return offsets.every(
      (p) => p.logEnd <= p.logStart || (this.positions.get(p.partition) ?? -1n) >= p.logEnd,
    );
  }

  /** Waits until {@link caughtUp} or `timeoutMs` passed; answers whether it caught up. */
  async waitFor(offsets: readonly PartitionOffsets[], timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.caughtUp(offsets)) {
      const left = deadline - Date.now();
      if (left <= 0 || this.consumer === undefined) return false;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 250));
        this.waiters.add(done);
      });
    }
    return true;
  }

  /** The records within `[logStart, logEnd)` of each partition, in partition and offset order. */
  recordsWithin(offsets: readonly PartitionOffsets[]): IncomingRecord[] {
    const bounds = new Map(offsets.map((p) => [p.partition, p]));
    const out: IncomingRecord[] = [];
    for (const record of this.records.values()) {
      const p = bounds.get(record.partition);
      const offset = BigInt(record.offset);
      if (p !== undefined && offset >= p.logStart && offset < p.logEnd) out.push(record);
    }
    return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  }

  /** Forgets records below each partition's new log start (after a purge). */
  dropBelow(offsets: readonly PartitionOffsets[]): void {
    const starts = new Map(offsets.map((p) => [p.partition, p.logStart]));
    for (const [key, record] of this.records) {
      const start = starts.get(record.partition);
      if (start !== undefined && BigInt(record.offset) < start) this.records.delete(key);
    }
  }
}

/**
 * The dead-letter views of one gateway replica: created on a topic's first request, dropped after
 * `idleMs` without requests or when more than `maxIndexes` are open (least recently used first), and
 * restarted when one fails to catch up (its consumer may have died).
 */
export class DeadLetterIndexes {
  private readonly indexes = new Map<string, Promise<DeadLetterIndex>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly client: KafkaClient,
    private readonly opts: { maxRecords: number; idleMs: number; maxIndexes?: number },
  ) {
    this.sweeper = setInterval(() => void this.sweep(), Math.min(opts.idleMs, 60_000));
    this.sweeper.unref();
  }

  async get(topic: string): Promise<DeadLetterIndex> {
    let pending = this.indexes.get(topic);
    if (pending === undefined) {
      const index = new DeadLetterIndex(this.client, topic, this.opts.maxRecords);
      pending = index.start().then(
        () => index,
        async (err: unknown) => {
          this.indexes.delete(topic);
          await index.stop().catch(() => undefined);
          throw err;
        },
      );
      this.indexes.set(topic, pending);
      await this.evictLeastRecentlyUsed();
    }
    const index = await pending;
    index.lastUsed = Date.now();
    return index;
  }

  /** The topic's view when one is open (never opens one). */
  async peek(topic: string): Promise<DeadLetterIndex | undefined> {
    return this.indexes.get(topic)?.catch(() => undefined);
  }

  /** Stops and forgets a topic's view, e.g. after it failed to catch up. */
  async drop(topic: string): Promise<void> {
    const pending = this.indexes.get(topic);
    this.indexes.delete(topic);
    const index = await pending?.catch(() => undefined);
    await index?.stop().catch(() => undefined);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.indexes.keys()].map((topic) => this.drop(topic)));
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const [topic, pending] of this.indexes) {
      const index = await pending.catch(() => undefined);
      if (index !== undefined && now - index.lastUsed > this.opts.idleMs) await this.drop(topic);
    }
  }

  private async evictLeastRecentlyUsed(): Promise<void> {
    const max = this.opts.maxIndexes ?? 32;
    if (this.indexes.size <= max) return;
    let oldest: { topic: string; lastUsed: number } | undefined;
    for (const [topic, pending] of this.indexes) {
      const index = await pending.catch(() => undefined);
      if (index !== undefined && (oldest === undefined || index.lastUsed < oldest.lastUsed)) {
        oldest = { topic, lastUsed: index.lastUsed };
      }
    }
    if (oldest !== undefined) await this.drop(oldest.topic);
  }
}
