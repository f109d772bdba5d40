/**
 * Send coalescing for the Kafka module's producer.
 *
 * Callers write one record at a time on the hot paths (the gateway writes one event per HTTP request,
 * workers one result per handled record). One produce request per record makes kafkajs queue requests
 * behind its in-flight limit, and under load the queue grows to seconds (BENCHMARKS.md, "Event
 * plane"). The coalescer gathers the records written to the same topic during one turn of the event
 * loop and writes them with one request; every caller's promise still resolves only once the broker
 * acknowledged that request (acks=all), so "resolved" keeps meaning "durably written".
 *
 * Bounds: a flush carries at most `maxRecords` records and about `maxBytes` bytes (well under the
 * broker's default `max.message.bytes` of 1 MiB, which a partition's batch in one request must fit),
 * and a record bigger than `maxBytes` on its own is written alone, as before. A failed request fails
 * every caller whose records were in it: none of them gets an acknowledgement it was not given.
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
  /** How a flush is scheduled (default setImmediate: after the I/O callbacks of this loop turn). */
  schedule?: (flush: () => void) => void;
}

interface Waiter<M> {
  messages: M[];
  resolve(positions: RecordPosition[]): void;
  reject(err: unknown): void;
}

interface Pending<M> {
  waiters: Waiter<M>[];
  records: number;
  bytes: number;
}

export class SendCoalescer<M extends CoalescedMessage> {
  private readonly pending = new Map<string, Pending<M>>();
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly schedule: (flush: () => void) => void;
  /** Requests written (for tests and cost accounting). */
  requests = 0;

  constructor(private readonly opts: CoalescerOptions<M>) {
    this.maxRecords = opts.maxRecords ?? 1000;
    this.maxBytes = opts.maxBytes ?? 512 * 1024;
    this.schedule = opts.schedule ?? ((flush) => setImmediate(flush));
  }

  /** Resolves with the partition and offset of the caller's first record on each partition it used. */
  send(topic: string, messages: M[]): Promise<RecordPosition[]> {
    if (messages.length === 0) return Promise.resolve([]);
    const bytes = sizeOf(messages);
    return new Promise<RecordPosition[]>((resolve, reject) => {
      const waiter: Waiter<M> = { messages, resolve, reject };
      if (bytes >= this.maxBytes || messages.length >= this.maxRecords) {
        // Too big to share a request: written alone, after what was queued before it.
        this.flush(topic);
        void this.write(topic, [waiter]);
        return;
      }
      let batch = this.pending.get(topic);
      if (
        batch &&
        (batch.bytes + bytes > this.maxBytes || batch.records + messages.length > this.maxRecords)
      ) {
        this.flush(topic);
        batch = undefined;
      }
      if (!batch) {
        batch = { waiters: [], records: 0, bytes: 0 };
        this.pending.set(topic, batch);
        const scheduled = batch;
        this.schedule(() => {
          if (this.pending.get(topic) === scheduled) this.flush(topic);
        });
      }
      batch.waiters.push(waiter);
      batch.records += messages.length;
      batch.bytes += bytes;
    });
  }

  /** Writes what is queued for `topic` now. */
  flush(topic: string): void {
    const batch = this.pending.get(topic);
    if (!batch) return;
    this.pending.delete(topic);
    void this.write(topic, batch.waiters);
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

function sizeOf(messages: CoalescedMessage[]): number {
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
