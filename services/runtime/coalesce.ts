/**
 * Coalescing of concurrent writes to one topic: while one produce request for a topic is in flight, the
 * records of the writes asked for meanwhile wait, then go together in the next request (acks=all as
 * always). Each caller's promise settles with the request that carried its records, so "resolved" still
 * means "durably in Kafka", and a failed request fails exactly the callers whose records it carried (they
 * retry as they did before). At low load nothing waits: a request starts as soon as the previous one for
 * the topic is done. Records of one caller stay together and in order; callers are served in call order.
 *
 * Used by the run API (one record per POST), the engine (state writes and commands of the partitions'
 * concurrent batches) and the worker SDK (results of the commands of one batch). The Kafka module itself
 * stays the only place that talks to Kafka.
 */
import type { OutgoingRecord } from "../kafka/client.ts";

/** Most bytes one coalesced request carries (several callers' records); one caller's records always go whole. */
const MAX_COALESCED_BYTES = 512 * 1024;
/** Most records one coalesced request carries. */
const MAX_COALESCED_RECORDS = 1_000;

export function recordSize(record: OutgoingRecord): number {
  let n = 64 + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [k, v] of Object.entries(record.headers ?? {})) n += k.length + (v?.length ?? 0);
  return n;
}

export type CoalescedSend = (topic: string, records: OutgoingRecord[]) => Promise<void>;

export function coalescingWriter(
  send: (topic: string, records: OutgoingRecord[]) => Promise<unknown>,
): CoalescedSend {
  type Waiting = {
    records: OutgoingRecord[];
    bytes: number;
    resolve: () => void;
    reject: (err: unknown) => void;
  };
  const queues = new Map<string, Waiting[]>();
  const busy = new Set<string>();

  const drain = (topic: string): void => {
    const queue = queues.get(topic);
    if (busy.has(topic) || !queue || queue.length === 0) return;
    let take = 0;
    let bytes = 0;
    let count = 0;
    for (const w of queue) {
      if (
        take > 0 &&
        (bytes + w.bytes > MAX_COALESCED_BYTES || count + w.records.length > MAX_COALESCED_RECORDS)
      )
        break;
      take++;
      bytes += w.bytes;
      count += w.records.length;
    }
    const batch = queue.splice(0, take);
    if (queue.length === 0) queues.delete(topic);
    busy.add(topic);
    const records = batch.length === 1 ? (batch[0] as Waiting).records : batch.flatMap((w) => w.records);
    Promise.resolve()
      .then(() => send(topic, records))
      .then(
        () => {
          for (const w of batch) w.resolve();
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        busy.delete(topic);
        drain(topic);
      });
  };

  return (topic, records) => {
    if (records.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let bytes = 0;
      for (const r of records) bytes += recordSize(r);
      let queue = queues.get(topic);
      if (!queue) queues.set(topic, (queue = []));
      queue.push({ records, bytes, resolve, reject });
      drain(topic);
    });
  };
}
