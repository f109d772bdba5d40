/**
 * The one Kafka module. Every Kafka access in Eventloom goes through here, so
 * the client libraries can be swapped without touching callers: nothing outside
 * this folder imports a Kafka library, and no library type leaks out. Admin
 * sessions and consumers use kafkajs; producers use @platformatic/kafka by
 * default (platformatic.ts; `EVENTLOOM_KAFKA_PRODUCER=kafkajs` for the fallback).
 *
 * kafkajs has had no release since 2023 and has open consumer and transaction
 * bugs; this module uses no transactions. Producers write with
 * `acks=all` (-1) so a resolved `send` means the record is durably replicated.
 */
import { createRequire } from "node:module";
import { Kafka, logLevel as KafkaLogLevel, CompressionTypes, Partitioners } from "kafkajs";
import type { Admin, Consumer, IHeaders, KafkaMessage, LogEntry, Message, ICustomPartitioner } from "kafkajs";
import { SendCoalescer } from "./coalesce.ts";
import type { CoalescedMessage, PartitionAck } from "./coalesce.ts";
import type { PlatformaticProducerBackend, PlatformaticProducerOptions } from "./platformatic.ts";
import { platformaticDetail, platformaticUnavailable } from "./platformatic-errors.ts";

/**
 * kafkajs 2.2.4 (its last release) re-arms a timer forever once a broker connection has completed a
 * request: `RequestQueue.scheduleCheckPendingRequests` schedules `checkPendingRequests` with
 * `throttledUntil - now` (negative, so 1 ms) even when nothing is pending, and that check schedules
 * the next one (tulios/kafkajs#1556 and #1704; the fixes were never merged; Node 24 prints a
 * TimeoutNegativeWarning for it). Every idle producer, consumer and admin burned ~60 ms of CPU per
 * second on it (BENCHMARKS.md, "Event plane"). With nothing pending and no throttle there is nothing
 * to check: a request that gets queued schedules its own check, and a completed request checks the
 * queue. Exported for its unit test.
 */
export const kafkajsRequestQueue = createRequire(import.meta.url)(
  "kafkajs/src/network/requestQueue/index.js",
) as { prototype: { scheduleCheckPendingRequests(this: RequestQueueState): void } };
interface RequestQueueState {
  pending: unknown[];
  throttledUntil: number;
}
const originalScheduleCheck = kafkajsRequestQueue.prototype.scheduleCheckPendingRequests;
if (!(originalScheduleCheck as { eventloomPatched?: boolean }).eventloomPatched) {
  const patched = function scheduleCheckPendingRequests(this: RequestQueueState): void {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    originalScheduleCheck.call(this);
  };
  (patched as { eventloomPatched?: boolean }).eventloomPatched = true;
  kafkajsRequestQueue.prototype.scheduleCheckPendingRequests = patched;
}

export interface KafkaConfig {
  /** Bootstrap brokers, e.g. `["127.0.0.1:19092"]`. */
  brokers: string[];
  clientId: string;
  /** How long to wait for a TCP connection to a broker, ms. */
  connectionTimeoutMs?: number;
  /** How long a single request may take, ms. */
  requestTimeoutMs?: number;
  /** Retries of a failed request before an error surfaces to the caller. */
  retries?: number;
  /** Receives the client's warnings and errors (defaults to silence). */
  onLog?: (level: "error" | "warn" | "info", message: string, extra: Record<string, unknown>) => void;
}

/** Header values as they travel on the wire: raw bytes, or strings on the way in. */
export type RecordHeaders = Record<string, Buffer | string | undefined>;

export interface OutgoingRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: RecordHeaders;
  partition?: number;
}

export interface IncomingRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Raw header bytes exactly as produced (verification runs on these). */
  headers: Record<string, Buffer | undefined>;
  timestamp: string;
}

export interface SentRecordMetadata {
  topic: string;
  partition: number;
  /** Base offset assigned by the broker. */
  offset: string;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs?: Record<string, string>;
}

export interface TopicDescription {
  name: string;
  partitions: number;
  replicationFactor: number;
}

export interface PartitionOffsets {
  partition: number;
  /** First offset still in the log (raised by retention). */
  logStart: bigint;
  /** Offset the next record will get. */
  logEnd: bigint;
}

export interface CommittedOffset {
  partition: number;
  /** null when the group never committed on this partition. */
  offset: bigint | null;
}

/** Thrown when the cluster cannot be reached or did not answer in time. */
export class KafkaUnavailableError extends Error {
  override readonly name = "KafkaUnavailableError";
}

const TRANSIENT_ERROR_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSRequestTimeoutError",
  "KafkaJSBrokerNotFound",
  "KafkaJSLockTimeout",
  "KafkaJSNonRetriableError",
]);

/** Wraps a client error so callers can tell "Kafka is down" from "you asked for something invalid". */
export function classifyKafkaError(err: unknown, what: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (e instanceof KafkaUnavailableError) return e;
  const cause = (e as { cause?: { name?: string; message?: string } }).cause;
  const unreachable =
    platformaticUnavailable(e) ||
    TRANSIENT_ERROR_NAMES.has(e.name) ||
    (cause?.name !== undefined && TRANSIENT_ERROR_NAMES.has(cause.name)) ||
    // kafkajs reports a lost connection as a plain KafkaJSError with this text.
    /not connected|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|timed? ?out|Connection error/i.test(
      `${e.message} ${cause?.message ?? ""}`,
    );
  const detail = platformaticDetail(e) ?? e.message;
  if (unreachable) {
    return new KafkaUnavailableError(`Kafka did not answer while trying to ${what}: ${detail}`, {
      cause: e,
    });
  }
  return new Error(`Kafka refused to ${what}: ${detail}`, { cause: e });
}

function allAlreadyExist(err: unknown): boolean {
  const errors = (err as { errors?: Array<{ type?: string }> }).errors;
  if (Array.isArray(errors) && errors.length > 0)
    return errors.every((e) => e.type === "TOPIC_ALREADY_EXISTS");
  return (err as { type?: string }).type === "TOPIC_ALREADY_EXISTS";
}

function leaderNotYetElected(err: unknown): boolean {
  const type = (err as { type?: string }).type;
  return type === "UNKNOWN_TOPIC_OR_PARTITION" || type === "LEADER_NOT_AVAILABLE";
}

function toHeaders(headers: RecordHeaders | undefined): IHeaders | undefined {
  if (!headers) return undefined;
  // Hot path (every record written): plain loops, and no copy when no value is undefined.
  for (const k in headers) {
    if (headers[k] === undefined) {
      const out: IHeaders = {};
      for (const key in headers) {
        const v = headers[key];
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
  }
  return headers as IHeaders;
}

function fromHeaders(headers: IHeaders | undefined): Record<string, Buffer | undefined> {
  const out: Record<string, Buffer | undefined> = {};
  if (!headers) return out;
  for (const k in headers) {
    const v = headers[k];
    // Kafka allows repeated header keys; CloudEvents does not, the last one wins.
    const one = Array.isArray(v) ? v[v.length - 1] : v;
    out[k] = one === undefined ? undefined : Buffer.isBuffer(one) ? one : Buffer.from(one);
  }
  return out;
}

function toIncoming(topic: string, partition: number, m: KafkaMessage): IncomingRecord {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key,
    value: m.value,
    headers: fromHeaders(m.headers),
    timestamp: m.timestamp,
  };
}

export class KafkaClient {
  private readonly kafka: Kafka;

  constructor(readonly config: KafkaConfig) {
    if (config.brokers.length === 0) throw new Error("KafkaConfig.brokers is empty: set KAFKA_BROKERS");
    const onLog = config.onLog;
    this.kafka = new Kafka({
      clientId: config.clientId,
      brokers: config.brokers,
      connectionTimeout: config.connectionTimeoutMs ?? 3000,
      requestTimeout: config.requestTimeoutMs ?? 30000,
      retry: { retries: config.retries ?? 5, initialRetryTime: 100, maxRetryTime: 2000 },
      logLevel: onLog ? KafkaLogLevel.WARN : KafkaLogLevel.NOTHING,
      logCreator: () => (entry: LogEntry) => {
        if (!onLog) return;
        const level =
          entry.level === KafkaLogLevel.ERROR
            ? "error"
            : entry.level === KafkaLogLevel.WARN
              ? "warn"
              : "info";
        const { message, ...extra } = entry.log;
        onLog(level, `${entry.namespace}: ${message}`, extra);
      },
    });
  }

  /** An admin session; connect() before use and close() after. */
  admin(): KafkaAdmin {
    return new KafkaAdmin(this.kafka.admin());
  }

  /**
   * A producer (acks=all). Records written to one topic in the same event-loop turn, or while the
   * topic's previous request is in flight, go out in one request, in call order (see coalesce.ts);
   * `coalesce: false` sends each `send` call on its own at once.
   */
  producer(
    opts: { idempotent?: boolean; coalesce?: boolean; implementation?: ProducerImplementation } = {},
  ): KafkaProducer {
    const implementation = opts.implementation ?? producerImplementationFromEnv();
    const idempotent = opts.idempotent ?? false;
    const backend: ProducerBackend =
      implementation === "platformatic"
        ? lazyPlatformaticBackend({
            brokers: this.config.brokers,
            clientId: this.config.clientId,
            connectionTimeoutMs: this.config.connectionTimeoutMs ?? 3000,
            requestTimeoutMs: this.config.requestTimeoutMs ?? 30000,
            retries: this.config.retries ?? 5,
            idempotent,
          })
        : this.kafkajsBackend(idempotent);
    return new KafkaProducer(backend, implementation, opts.coalesce ?? true);
  }

  private kafkajsBackend(idempotent: boolean): ProducerBackend {
    // The partitioner is kafkajs's default (Java-compatible murmur2 on the key, round robin without
    // one); the wrapper only records its choice so a coalesced request can give each caller its offset.
    const chosen = new WeakMap<object, number>();
    const createPartitioner: ICustomPartitioner = () => {
      const partition = Partitioners.DefaultPartitioner();
      return (args) => {
        const p = partition(args);
        chosen.set(args.message, p);
        return p;
      };
    };
    const producer = this.kafka.producer({
      idempotent,
      allowAutoTopicCreation: false,
      // Idempotent producers must keep one request in flight per connection in kafkajs.
      maxInFlightRequests: idempotent ? 1 : 5,
      createPartitioner,
    });
    return {
      connect: () => producer.connect(),
      close: () => producer.disconnect(),
      partitionOf: (m) => chosen.get(m),
      write: async (topic, messages) => {
        const res = await producer.send({
          topic,
          acks: -1,
          compression: CompressionTypes.None,
          messages: messages as Message[],
        });
        return res.map((m) => ({ partition: m.partition, baseOffset: m.baseOffset ?? "0" }));
      },
    };
  }

  consumer(opts: {
    groupId: string;
    sessionTimeoutMs?: number;
    heartbeatIntervalMs?: number;
    maxWaitTimeMs?: number;
    /**
     * Commit resolved offsets after each batch (default true). Readers that replay a topic from the
     * start on every run (the worker SDK's dedupe log) turn it off so their throwaway group stores nothing.
     */
    autoCommit?: boolean;
  }): KafkaConsumer {
    return new KafkaConsumer(
      this.kafka.consumer({
        groupId: opts.groupId,
        allowAutoTopicCreation: false,
        sessionTimeout: opts.sessionTimeoutMs ?? 10_000,
        heartbeatInterval: opts.heartbeatIntervalMs ?? 1_000,
        maxWaitTimeInMs: opts.maxWaitTimeMs ?? 100,
        retry: { retries: 10 },
      }),
      { autoCommit: opts.autoCommit ?? true },
    );
  }
}

export class KafkaAdmin {
  /** Requests sent to brokers by this admin session (for cost accounting). */
  requests = 0;

  constructor(private readonly admin: Admin) {
    admin.on(admin.events.REQUEST, () => {
      this.requests++;
    });
  }

  async connect(): Promise<void> {
    try {
      await this.admin.connect();
    } catch (err) {
      throw classifyKafkaError(err, "connect the admin client");
    }
  }

  async close(): Promise<void> {
    await this.admin.disconnect();
  }

  async brokers(): Promise<Array<{ nodeId: number; host: string; port: number }>> {
    try {
      return (await this.admin.describeCluster()).brokers;
    } catch (err) {
      throw classifyKafkaError(err, "describe the cluster");
    }
  }

  async listTopics(): Promise<string[]> {
    try {
      return await this.admin.listTopics();
    } catch (err) {
      throw classifyKafkaError(err, "list topics");
    }
  }

  /**
   * Describes the named topics that exist; missing names are left out. Pass
   * `existing` (a recent topic list) to skip listing every topic of the cluster.
   */
  async describeTopics(names: string[], existing?: ReadonlySet<string>): Promise<TopicDescription[]> {
    if (names.length === 0) return [];
    const known = existing ?? new Set(await this.listTopics());
    const wanted = names.filter((n) => known.has(n));
    if (wanted.length === 0) return [];
    try {
      const { topics } = await this.admin.fetchTopicMetadata({ topics: wanted });
      return topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.length,
        replicationFactor: t.partitions[0]?.replicas.length ?? 0,
      }));
    } catch (err) {
      throw classifyKafkaError(err, `describe topics ${wanted.join(", ")}`);
    }
  }

  /**
   * Every topic of the cluster with its partition count and replication
   * factor, in one metadata request (what `listTopics` sends, keeping the
   * partitions it drops). Cheaper than a list followed by a describe.
   */
  async describeAllTopics(): Promise<TopicDescription[]> {
    try {
      const { topics } = await this.admin.fetchTopicMetadata();
      return topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.length,
        replicationFactor: t.partitions[0]?.replicas.length ?? 0,
      }));
    } catch (err) {
      throw classifyKafkaError(err, "describe the cluster's topics");
    }
  }

  /** Current values of the named configs of a topic (only those asked for). */
  async topicConfigs(topic: string, names: string[]): Promise<Record<string, string | null>> {
    try {
      const res = await this.admin.describeConfigs({
        resources: [{ type: 2 /* TOPIC */, name: topic, configNames: names }],
        includeSynonyms: false,
      });
      const out: Record<string, string | null> = {};
      for (const entry of res.resources[0]?.configEntries ?? []) out[entry.configName] = entry.configValue;
      return out;
    } catch (err) {
      throw classifyKafkaError(err, `describe configs of topic ${topic}`);
    }
  }

  /** Current values of the named configs of several topics, in one request. */
  async configsOf(topics: string[], names: string[]): Promise<Map<string, Record<string, string | null>>> {
    const out = new Map<string, Record<string, string | null>>();
    if (topics.length === 0) return out;
    try {
      const res = await this.admin.describeConfigs({
        resources: topics.map((name) => ({ type: 2 /* TOPIC */, name, configNames: names })),
        includeSynonyms: false,
      });
      for (const resource of res.resources) {
        const configs: Record<string, string | null> = {};
        for (const entry of resource.configEntries) configs[entry.configName] = entry.configValue;
        out.set(resource.resourceName, configs);
      }
      return out;
    } catch (err) {
      throw classifyKafkaError(err, `describe configs of ${topics.length} topic(s)`);
    }
  }

  async createTopics(topics: TopicSpec[]): Promise<void> {
    if (topics.length === 0) return;
    try {
      // Not waiting for leaders: kafkajs's wait can fail with UNKNOWN_TOPIC_OR_PARTITION
      // while the controller is still electing them, though the topics were created.
      await this.admin.createTopics({
        waitForLeaders: false,
        topics: topics.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          replicationFactor: t.replicationFactor,
          configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (err) {
      // A concurrent creator got there first: the topic exists, which is what was asked.
      if (allAlreadyExist(err)) return;
      // kafkajs refreshes metadata right after CreateTopics; a topic whose leader is not
      // elected yet answers UNKNOWN_TOPIC_OR_PARTITION though it was created. Callers
      // verify on their next look (the operator requeues after creating).
      if (leaderNotYetElected(err)) return;
      throw classifyKafkaError(err, `create topics ${topics.map((t) => t.name).join(", ")}`);
    }
  }

  async increasePartitions(topic: string, count: number): Promise<void> {
    try {
      await this.admin.createPartitions({ topicPartitions: [{ topic, count }] });
    } catch (err) {
      throw classifyKafkaError(err, `raise the partitions of ${topic} to ${count}`);
    }
  }

  /**
   * Sets a topic's dynamic configs. This is the non-incremental AlterConfigs:
   * configs not named return to the broker default, so pass the whole desired set.
   */
  async setTopicConfigs(topic: string, configs: Record<string, string>): Promise<void> {
    try {
      await this.admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2 /* TOPIC */,
            name: topic,
            configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
          },
        ],
      });
    } catch (err) {
      throw classifyKafkaError(err, `alter configs of ${topic}`);
    }
  }

  async deleteTopics(names: string[]): Promise<void> {
    if (names.length === 0) return;
    try {
      await this.admin.deleteTopics({ topics: names, timeout: 10_000 });
    } catch (err) {
      throw classifyKafkaError(err, `delete topics ${names.join(", ")}`);
    }
  }

  async partitionOffsets(topic: string): Promise<PartitionOffsets[]> {
    try {
      const res = await this.admin.fetchTopicOffsets(topic);
      return res
        .map((p) => ({ partition: p.partition, logStart: BigInt(p.low), logEnd: BigInt(p.high) }))
        .sort((a, b) => a.partition - b.partition);
    } catch (err) {
      throw classifyKafkaError(err, `fetch offsets of ${topic}`);
    }
  }

  /** Committed offsets of a group on several topics, in one request. */
  async committedOffsetsOf(groupId: string, topics: string[]): Promise<Map<string, CommittedOffset[]>> {
    const out = new Map<string, CommittedOffset[]>();
    if (topics.length === 0) return out;
    try {
      const res = await this.admin.fetchOffsets({ groupId, topics });
      for (const t of res) {
        out.set(
          t.topic,
          t.partitions.map((p) => ({
            partition: p.partition,
            offset: p.offset === "-1" || p.offset === "" ? null : BigInt(p.offset),
          })),
        );
      }
      return out;
    } catch (err) {
      throw classifyKafkaError(err, `fetch committed offsets of group ${groupId}`);
    }
  }

  /** Sets a consumer group's committed offsets (the group must have no running members). */
  async setCommittedOffsets(
    groupId: string,
    topic: string,
    offsets: Array<{ partition: number; offset: bigint }>,
  ): Promise<void> {
    try {
      await this.admin.setOffsets({
        groupId,
        topic,
        partitions: offsets.map((o) => ({ partition: o.partition, offset: o.offset.toString() })),
      });
    } catch (err) {
      throw classifyKafkaError(err, `set offsets of group ${groupId} on ${topic}`);
    }
  }

  /** Deletes records below `before` on each partition given (raises log start), as retention would. */
  async deleteRecordsBefore(
    topic: string,
    before: Array<{ partition: number; offset: bigint }>,
  ): Promise<void> {
    try {
      await this.admin.deleteTopicRecords({
        topic,
        partitions: before.map((b) => ({ partition: b.partition, offset: b.offset.toString() })),
      });
    } catch (err) {
      throw classifyKafkaError(err, `delete records of ${topic}`);
    }
  }

  async committedOffsets(groupId: string, topic: string): Promise<CommittedOffset[]> {
    try {
      const res = await this.admin.fetchOffsets({ groupId, topics: [topic] });
      return (res[0]?.partitions ?? []).map((p) => ({
        partition: p.partition,
        offset: p.offset === "-1" || p.offset === "" ? null : BigInt(p.offset),
      }));
    } catch (err) {
      throw classifyKafkaError(err, `fetch committed offsets of group ${groupId} on ${topic}`);
    }
  }
}

/** Which client library writes records: kafkajs, or @platformatic/kafka (docs/kafka-client.md). */
export type ProducerImplementation = "kafkajs" | "platformatic";

/**
 * `EVENTLOOM_KAFKA_PRODUCER`: `platformatic` (the default) or `kafkajs` (the fallback, for one
 * release); anything else is refused loudly.
 */
export function producerImplementationFromEnv(env: NodeJS.ProcessEnv = process.env): ProducerImplementation {
  const v = (env.EVENTLOOM_KAFKA_PRODUCER ?? "").trim();
  if (v === "" || v === "platformatic") return "platformatic";
  if (v === "kafkajs") return "kafkajs";
  throw new Error(
    `EVENTLOOM_KAFKA_PRODUCER=${v} is not a producer implementation: use kafkajs or platformatic`,
  );
}

/** What `KafkaProducer` needs from a client library. */
interface ProducerBackend {
  connect(): Promise<void>;
  close(): Promise<void>;
  /** Writes one request with acks=all; resolves with the base offset per partition written. */
  write(topic: string, messages: CoalescedMessage[]): Promise<PartitionAck[]>;
  /** The partition the last write put a message on (for messages without an explicit one). */
  partitionOf(message: object): number | undefined;
}

/** The @platformatic/kafka backend, imported on first connect (see platformatic.ts). */
function lazyPlatformaticBackend(options: PlatformaticProducerOptions): ProducerBackend {
  let backend: PlatformaticProducerBackend | undefined;
  const notConnected = (): never => {
    throw new KafkaUnavailableError("the producer is not connected: call connect() first");
  };
  return {
    connect: async () => {
      if (!backend) {
        const { PlatformaticProducerBackend: Backend } = await import("./platformatic.ts");
        backend = new Backend(options);
      }
      await backend.connect();
    },
    close: async () => {
      await backend?.close();
    },
    partitionOf: (m) => backend?.partitionOf(m),
    write: (topic, messages) => (backend ?? notConnected()).write(topic, messages),
  };
}

export class KafkaProducer {
  private readonly coalescer: SendCoalescer<Message>;

  constructor(
    private readonly backend: ProducerBackend,
    /** The client library writing for this producer. */
    readonly implementation: ProducerImplementation = "kafkajs",
    coalesce = true,
  ) {
    this.coalescer = new SendCoalescer<Message>({
      // Not coalescing: every send is its own request, at once, with no bound on those in flight.
      ...(coalesce
        ? {}
        : { maxInFlight: Number.POSITIVE_INFINITY, schedule: (flush: () => void) => flush() }),
      partitionOf: (m) => backend.partitionOf(m),
      write: async (topic, messages) => {
        try {
          return await backend.write(topic, messages);
        } catch (err) {
          throw classifyKafkaError(err, `write ${messages.length} record(s) to ${topic}`);
        }
      },
    });
  }

  async connect(): Promise<void> {
    try {
      await this.backend.connect();
    } catch (err) {
      throw classifyKafkaError(err, "connect the producer");
    }
  }

  async close(): Promise<void> {
    await this.backend.close();
  }

  /** Requests written so far (coalesced sends count once). */
  get requests(): number {
    return this.coalescer.requests;
  }

  /**
   * Writes records with acks=all; resolves only once every in-sync replica has them, with the
   * partition and offset of the first of these records on each partition they went to.
   */
  async send(topic: string, records: OutgoingRecord[]): Promise<SentRecordMetadata[]> {
    const messages: Message[] = new Array<Message>(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as OutgoingRecord;
      const m: Message = { key: r.key ?? null, value: r.value };
      const headers = toHeaders(r.headers);
      if (headers) m.headers = headers;
      if (r.partition !== undefined) m.partition = r.partition;
      messages[i] = m;
    }
    return this.coalescer.send(topic, messages);
  }
}

export interface BatchContext {
  /** Marks a record processed; its offset + 1 is committed with the next commit. */
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

export class KafkaConsumer {
  constructor(
    private readonly consumer: Consumer,
    private readonly runOptions: { autoCommit: boolean } = { autoCommit: true },
  ) {}

  async connect(): Promise<void> {
    try {
      await this.consumer.connect();
    } catch (err) {
      throw classifyKafkaError(err, "connect the consumer");
    }
  }

  async close(): Promise<void> {
    await this.consumer.disconnect();
  }

  async subscribe(topics: string[], fromBeginning = true): Promise<void> {
    await this.consumer.subscribe({ topics, fromBeginning });
  }

  /** Calls `handle` for each record, one partition at a time in order, committing after each. */
  async runEach(
    handle: (record: IncomingRecord) => Promise<void>,
    opts: { partitionsConsumedConcurrently?: number } = {},
  ): Promise<void> {
    await this.consumer.run({
      partitionsConsumedConcurrently: opts.partitionsConsumedConcurrently ?? 1,
      autoCommit: this.runOptions.autoCommit,
      eachMessage: async ({ topic, partition, message }) => handle(toIncoming(topic, partition, message)),
    });
  }

  /** Calls `handle` with whole batches; the handler resolves offsets itself. */
  async runBatches(
    handle: (records: IncomingRecord[], ctx: BatchContext) => Promise<void>,
    opts: { partitionsConsumedConcurrently?: number } = {},
  ): Promise<void> {
    await this.consumer.run({
      partitionsConsumedConcurrently: opts.partitionsConsumedConcurrently ?? 1,
      autoCommit: this.runOptions.autoCommit,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const records = batch.messages.map((m) => toIncoming(batch.topic, batch.partition, m));
        await handle(records, { resolveOffset, heartbeat, isRunning, isStale });
      },
    });
  }

  /** Resolves once the consumer has joined its group and been assigned partitions. */
  onceJoined(): Promise<void> {
    return new Promise((resolve) => {
      const remove = this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        remove();
        resolve();
      });
    });
  }

  /**
   * Calls `listener` each time the consumer (re)joins its group, with the partitions it was assigned
   * by topic. Returns a function that removes the listener.
   */
  onJoin(listener: (assignment: Record<string, number[]>) => void): () => void {
    return this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      listener({ ...event.payload.memberAssignment });
    });
  }

  /** Calls `listener` when the group starts rebalancing: assigned partitions may be about to move. */
  onRebalancing(listener: () => void): () => void {
    return this.consumer.on(this.consumer.events.REBALANCING, () => listener());
  }

  /** Calls `listener` when the consumer crashed; `restarting` says whether the client restarts it by itself. */
  onCrash(listener: (error: Error, restarting: boolean) => void): () => void {
    return this.consumer.on(this.consumer.events.CRASH, (event) =>
      listener(event.payload.error, event.payload.restart),
    );
  }

  pause(topic: string, partitions?: number[]): void {
    this.consumer.pause([{ topic, ...(partitions ? { partitions } : {}) }]);
  }

  resume(topic: string, partitions?: number[]): void {
    this.consumer.resume([{ topic, ...(partitions ? { partitions } : {}) }]);
  }
}

/** Parses `KAFKA_BROKERS` ("host:port,host:port"). */
export function brokersFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env.KAFKA_BROKERS ?? "";
  const brokers = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (brokers.length === 0) {
    throw new Error(
      "KAFKA_BROKERS is not set: give the bootstrap brokers, e.g. KAFKA_BROKERS=127.0.0.1:19092 (see `npm run stack -- env`)",
    );
  }
  return brokers;
}
