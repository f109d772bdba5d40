/**
 * Keeps a {@link DedupeIndex} in step with the results topic: reads it from the beginning at start and
 * tails it for as long as the worker runs, adding the command key of every result this worker's steps
 * published. See dedupe.ts for why the results topic is the dedupe log.
 */
import { randomUUID } from "node:crypto";
import type { IncomingRecord, KafkaClient, KafkaConsumer, PartitionOffsets } from "../kafka/client.ts";
import type { Verifier } from "../events/signing.ts";
import type { DedupeIndex } from "./dedupe.ts";
import { resultDedupeKey } from "./dedupe.ts";
import type { WorkerLogger } from "./logger.ts";

export interface ResultsLogOptions {
  readonly client: KafkaClient;
  readonly topic: string;
  /** The worker's consumer group; the reader uses a throwaway group derived from it. */
  readonly consumerGroup: string;
  readonly index: DedupeIndex;
  /** `source` of this worker's results (one per bound step). */
  readonly ownSources: ReadonlySet<string>;
  /** `source` of the commands (the Orchestration's). */
  readonly commandSource: string;
  /**
   * Verifies a result before it may suppress a command (undefined under signing policy `none`). Without
   * it, anyone able to write to the results topic could make the worker skip commands.
   */
  readonly verifier: Verifier | undefined;
  readonly log: WorkerLogger;
}

interface Waiter {
  readonly target: readonly PartitionOffsets[];
  readonly resolve: () => void;
}

/** Reads the results topic into the dedupe index and tells when it has caught up with a point in time. */
export class ResultsLog {
  readonly #opts: ResultsLogOptions;
  readonly #consumer: KafkaConsumer;
  /** Per partition: the next offset this reader will see. */
  readonly #positions = new Map<number, bigint>();
  #waiters: Waiter[] = [];
  #unverified = 0;

  constructor(opts: ResultsLogOptions) {
    this.#opts = opts;
    // A group of its own, never committed: every start reads the whole topic again, and an empty group
    // without offsets is dropped by the broker as soon as the reader leaves.
    this.#consumer = opts.client.consumer({
      groupId: `${opts.consumerGroup}.results-reader.${randomUUID().slice(0, 8)}`,
      autoCommit: false,
    });
  }

  async start(): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe([this.#opts.topic], true);
    await this.#consumer.runBatches(async (records, ctx) => {
      for (const record of records) {
        this.#add(record);
        ctx.resolveOffset(record.offset);
      }
      const last = records[records.length - 1];
      if (last !== undefined) {
        this.#positions.set(last.partition, BigInt(last.offset) + 1n);
        this.#wake();
      }
    });
  }

  #add(record: IncomingRecord): void {
    const key = resultDedupeKey(record.headers, this.#opts.ownSources, this.#opts.commandSource);
    if (key === undefined || this.#opts.index.has(key)) return;
    if (this.#opts.verifier !== undefined) {
      const verified = this.#opts.verifier.verifyRecord(record);
      if (!verified.ok) {
        this.#unverified++;
        this.#opts.log.warn("ignoring a result that does not verify while rebuilding the dedupe index", {
          topic: record.topic,
          partition: record.partition,
          offset: record.offset,
          reason: verified.reason,
          detail: verified.message,
        });
        return;
      }
    }
    this.#opts.index.add(key);
  }

  /** Results that claimed to be ours but did not verify (and so suppress nothing). */
  get unverifiedResults(): number {
    return this.#unverified;
  }

  #reached(target: readonly PartitionOffsets[]): boolean {
    return target.every(
      (p) => p.logEnd <= p.logStart || (this.#positions.get(p.partition) ?? p.logStart) >= p.logEnd,
    );
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (this.#reached(waiter.target)) waiter.resolve();
      else still.push(waiter);
    }
    this.#waiters = still;
  }

  /**
   * Resolves once the reader has seen every result written before `target` was measured (the log-end
   * offsets of the results topic, e.g. taken when the worker was assigned partitions).
   */
  caughtUp(target: readonly PartitionOffsets[]): Promise<void> {
    if (this.#reached(target)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ target, resolve }));
  }

  async close(): Promise<void> {
    // Anyone still waiting is released: the worker is stopping and will not process more commands.
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
    await this.#consumer.close();
  }
}
