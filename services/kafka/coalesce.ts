/**
 * Send coalescing for the Kafka module's producer.
 *
 * Callers write one record at a time on the hot paths (the gateway one event per HTTP request, the run
 * API one start per POST, workers one result per handled command, the engine state and commands per
 * partition batch). One produce request per record makes kafkajs queue requests behind its in-flight
 * limit, and under load the queue grows to seconds (BENCHMARKS.md, "Event plane"). The coalescer
 * gathers the records written to one topic during a turn of the event loop and, while a request to
 * the topic is in flight (`maxInFlight`, default 1), everything written meanwhile: the next request
 * carries it all. Batches grow with the load and nothing waits when there is none. Every caller's
 * promise resolves only once the broker acknowledged the request that carried its records
 * (acks=all), so "resolved" keeps meaning "durably written". With one request in flight per topic,
 * records reach the topic in call order; one caller's records stay together and in order.
 *
 * Bounds: a request carries at most `maxRecords` records and about `maxBytes` bytes (well under the
 * broker's default `max.message.bytes` of 1 MiB, which a partition's batch in one request must fit),
 * except that one caller's records always go whole in one request (callers that may exceed it split
 * their writes). A failed request fails every caller whose records were in it and no other: none of
 * them gets an acknowledgement it was not given.
 *
 * Offsets: the partitioner records where each record went (`partitionOf`), and the records of one
 * partition are appended in request order from the batch's base offset, so each caller learns the
 * exact partition and offset of its first record on each partition, as with a lone send.
 *
 * Pure logic over an injected `write`, so it is unit tested without a broker.
 */

export interface CoalescedMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
  partition?: number;
}

export interface PartitionAck {
  partition: number;
  /** Offset of the first record the request appended to this partition. */
  baseOffset: string;
}

export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
}

export interface CoalescerOptions<M extends CoalescedMessage> {
  /** Writes one request and resolves with the broker's acknowledgement per partition. */
  write(topic: string, messages: M[]): Promise<PartitionAck[]>;
  /** The partition the partitioner chose for a message in the last write, if known. */
  partitionOf(message: M): number | undefined;
  /** Most records in one request (default 1000). */
  maxRecords?: number;
  /** About the most bytes of keys, values and headers in one request (default 512 KiB). */
  maxBytes?: number;
  /**
   * Requests in flight per topic (default 1). While they are, later sends wait and go together in
   * the next request; with 1, records reach a topic in call order even across retries.
   */
  maxInFlight?: number;
  /** How a flush is scheduled (default setImmediate: after the I/O callbacks of this loop turn). */
  schedule?: (flush: () => void) => void;
}

interface Waiter<M> {
  messages: M[];
  bytes: number;
  resolve(positions: RecordPosition[]): void;
  reject(err: unknown): void;
}

interface TopicQueue<M> {
  waiting: Waiter<M>[];
  inFlight: number;
  scheduled: boolean;
}

export class SendCoalescer<M extends CoalescedMessage> {
  private readonly topics = new Map<string, TopicQueue<M>>();
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly maxInFlight: number;
  private readonly schedule: (flush: () => void) => void;
  /** Requests written (for tests and cost accounting). */
  requests = 0;

  constructor(private readonly opts: CoalescerOptions<M>) {
    this.maxRecords = opts.maxRecords ?? 1000;
    this.maxBytes = opts.maxBytes ?? 512 * 1024;
    this.maxInFlight = opts.maxInFlight ?? 1;
    this.schedule = opts.schedule ?? ((flush) => setImmediate(flush));
  }

  /** Resolves with the partition and offset of the caller's first record on each partition it used. */
  send(topic: string, messages: M[]): Promise<RecordPosition[]> {
    if (messages.length === 0) return Promise.resolve([]);
    return new Promise<RecordPosition[]>((resolve, reject) => {
      let queue = this.topics.get(topic);
      if (!queue) this.topics.set(topic, (queue = { waiting: [], inFlight: 0, scheduled: false }));
      queue.waiting.push({ messages, bytes: recordBytes(messages), resolve, reject });
      if (queue.inFlight < this.maxInFlight && !queue.scheduled) {
        // Gather what else this turn of the event loop writes to the topic, then go.
        queue.scheduled = true;
        const q = queue;
        this.schedule(() => {
          q.scheduled = false;
          this.drain(topic);
        });
      }
      // Otherwise a request is in flight: its completion drains the queue.
    });
  }

  /** Writes what is queued for `topic` now, as far as the in-flight bound allows. */
  drain(topic: string): void {
    const queue = this.topics.get(topic);
    if (!queue) return;
    while (queue.inFlight < this.maxInFlight && queue.waiting.length > 0) {
      // At least one caller per request (whole, however big), then as many as fit the bounds.
      let take = 0;
      let bytes = 0;
      let records = 0;
      for (const w of queue.waiting) {
        if (take > 0 && (bytes + w.bytes > this.maxBytes || records + w.messages.length > this.maxRecords))
          break;
        take++;
        bytes += w.bytes;
        records += w.messages.length;
      }
      const batch = queue.waiting.splice(0, take);
      queue.inFlight++;
      void this.write(topic, batch).finally(() => {
        queue.inFlight--;
        this.drain(topic);
      });
    }
    if (queue.inFlight === 0 && queue.waiting.length === 0 && !queue.scheduled) this.topics.delete(topic);
  }

  private async write(topic: string, waiters: Waiter<M>[]): Promise<void> {
    const messages =
      waiters.length === 1 ? (waiters[0] as Waiter<M>).messages : waiters.flatMap((w) => w.messages);
    this.requests += 1;
    let acks: PartitionAck[];
    try {
      acks = await this.opts.write(topic, messages);
    } catch (err) {
      for (const w of waiters) w.reject(err);
      return;
    }
    try {
      const positions = this.positions(topic, waiters, acks);
      waiters.forEach((w, i) => w.resolve(positions[i] as RecordPosition[]));
    } catch (err) {
      for (const w of waiters) w.reject(err);
    }
  }

  /** Each waiter's first record per partition, from the per-partition base offsets. */
  private positions(topic: string, waiters: Waiter<M>[], acks: PartitionAck[]): RecordPosition[][] {
    const next = new Map<number, bigint>();
    for (const a of acks) next.set(a.partition, BigInt(a.baseOffset));
    return waiters.map((w) => {
      const out: RecordPosition[] = [];
      const seen = new Set<number>();
      for (const m of w.messages) {
        const partition = m.partition ?? this.opts.partitionOf(m);
        const offset = partition === undefined ? undefined : next.get(partition);
        if (partition === undefined || offset === undefined) {
          throw new Error(
            `Kafka acknowledged the write to ${topic} but not the partition of one of its records`,
          );
        }
        next.set(partition, offset + 1n);
        if (!seen.has(partition)) {
          seen.add(partition);
          out.push({ topic, partition, offset: offset.toString() });
        }
      }
      return out;
    });
  }
}

/** About the bytes `messages` take in a produce request (keys, values, headers, record framing). */
export function recordBytes(messages: readonly CoalescedMessage[]): number {
  let bytes = 0;
  for (const m of messages) {
    bytes += 70; // record framing, varints, timestamp delta
    if (m.value) bytes += m.value.length;
    if (m.key) bytes += m.key.length;
    const headers = m.headers;
    if (headers) {
      for (const k in headers) {
        const v = headers[k];
        bytes += k.length + 2;
        if (typeof v === "string" || Buffer.isBuffer(v)) bytes += v.length;
        else if (Array.isArray(v)) for (const one of v) bytes += one.length;
      }
    }
  }
  return bytes;
}
