/**
 * The materialized view of the state topic: every run's latest state, read
 * from the beginning of the compacted topic and kept current by tailing it.
 *
 * Every engine replica (and a gateway serving the run API) holds one. The
 * replica that owns partition p writes the states of p's runs and updates its
 * view at once; every other view sees the write when it reads it back. A
 * record only replaces a state with a lower `version`, so replaying the topic,
 * reading one's own writes again, or meeting an older duplicate is harmless.
 *
 * "Read everything written so far to partition p" is answered with a fence:
 * a tombstone under a unique key written to p, then waiting until this view
 * has read it (see `fence`). Unlike comparing with the partition's end offset,
 * this works even when compaction removed the last records.
 */
import { randomUUID } from "node:crypto";
import type {
  IncomingRecord,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  OutgoingRecord,
} from "../kafka/client.ts";
import type { Logger } from "../../operator/runtime/log.ts";
import type { OrchestrationSpec } from "../../operator/crds/types.ts";
import { decodeState, encodeSpec, specRef, stateVersionOf } from "./state-codec.ts";
import { isTerminal } from "./model.ts";
import type { RunState, RunStatus } from "./model.ts";

/** Keys of fence records start with this; no run id does (run ids are UUIDs). */
export const FENCE_KEY_PREFIX = "eventloom.fence/";

export interface RunFilter {
  namespace?: string;
  orchestration?: string;
  status?: RunStatus;
  /** At most this many, newest first. */
  limit?: number;
}

export interface StateViewOptions {
  topic: string;
  /** A group of its own per view; default a fresh one (nothing is committed). */
  groupId?: string;
  log: Logger;
  sessionTimeoutMs?: number;
}

interface Entry {
  state: RunState;
  partition: number;
}

export class StateView {
  private readonly runs = new Map<string, Entry>();
  /** Runs in `runs` whose status is not terminal. */
  private active = 0;
  /** Specs read from (or written to) the state topic, by ref; each is shared by every run naming it. */
  private readonly specs = new Map<string, OrchestrationSpec>();
  /** The partitions each spec is known to be stored in. */
  private readonly specPartitions = new Map<string, Set<number>>();
  /** Runs read before the spec they name (only after compaction moved a rewritten spec record), by ref. */
  private readonly unresolved = new Map<
    string,
    Map<string, { state: Omit<RunState, "spec">; partition: number }>
  >();
  private readonly fenceWaiters = new Map<string, () => void>();
  private consumer: KafkaConsumer | undefined;
  private producer: KafkaProducer | undefined;
  private readonly groupId: string;
  private started = false;
  private caughtUp = false;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly opts: StateViewOptions,
  ) {
    this.groupId = opts.groupId ?? `${opts.topic}-view-${randomUUID()}`;
  }

  /** Starts reading the state topic from its beginning. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.producer = this.kafka.producer();
    await this.producer.connect();
    this.consumer = this.kafka.consumer({
      groupId: this.groupId,
      autoCommit: false,
      sessionTimeoutMs: this.opts.sessionTimeoutMs ?? 10_000,
    });
    await this.consumer.connect();
    await this.consumer.subscribe([this.opts.topic], true);
    await this.consumer.runBatches(async (records, ctx) => {
      for (const record of records) this.apply(record);
      const last = records[records.length - 1];
      if (last) ctx.resolveOffset(last.offset);
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.close();
    await this.producer?.close();
    this.consumer = undefined;
    this.producer = undefined;
    this.started = false;
  }

  /**
   * Resolves once this view has read everything written to `partition` of
   * the state topic before the call.
   */
  async fence(partition: number, timeoutMs = 60_000): Promise<void> {
    if (!this.producer) throw new Error("the state view is not started");
    const key = `${FENCE_KEY_PREFIX}${this.groupId}/${partition}/${randomUUID()}`;
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<void>((resolve, reject) => {
      this.fenceWaiters.set(key, resolve);
      timer = setTimeout(() => {
        this.fenceWaiters.delete(key);
        reject(
          new Error(
            `the state view did not read back its fence on partition ${partition} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
    });
    seen.catch(() => undefined); // handled below; keeps a timeout during the send from being "unhandled"
    try {
      await this.producer.send(this.opts.topic, [{ key, value: null, partition }]);
      await seen;
    } finally {
      clearTimeout(timer);
      this.fenceWaiters.delete(key);
    }
  }

  /** Resolves once this view has read everything written to every partition before the call. */
  async catchUp(partitions: number): Promise<void> {
    await Promise.all(Array.from({ length: partitions }, (_, p) => this.fence(p)));
    this.caughtUp = true;
  }

  /** True once `catchUp` finished: the view answers for every run written before it started. */
  get ready(): boolean {
    return this.caughtUp;
  }

  get(runId: string): RunState | undefined {
    return this.runs.get(runId)?.state;
  }

  /** The state partition of a run this view holds (that of the inbox partition its inputs go to). */
  partitionOf(runId: string): number | undefined {
    return this.runs.get(runId)?.partition;
  }

  /** The runs whose state lives in `partition`. */
  inPartition(partition: number): RunState[] {
    const out: RunState[] = [];
    for (const entry of this.runs.values()) if (entry.partition === partition) out.push(entry.state);
    return out;
  }

  /** Runs matching `filter`, newest first. */
  list(filter: RunFilter = {}): RunState[] {
    const out: RunState[] = [];
    for (const { state } of this.runs.values()) {
      if (filter.namespace !== undefined && state.namespace !== filter.namespace) continue;
      if (filter.orchestration !== undefined && state.orchestration !== filter.orchestration) continue;
      if (filter.status !== undefined && state.status !== filter.status) continue;
      out.push(state);
    }
    out.sort((a, b) => b.createdAt - a.createdAt || (a.runId < b.runId ? -1 : 1));
    return filter.limit !== undefined ? out.slice(0, filter.limit) : out;
  }

  /** Counts of runs by status (for metrics). */
  countByStatus(): Map<RunStatus, number> {
    const counts = new Map<RunStatus, number>();
    for (const { state } of this.runs.values()) counts.set(state.status, (counts.get(state.status) ?? 0) + 1);
    return counts;
  }

  /** Number of runs not yet finished (kept up to date as runs change: O(1)). */
  activeRuns(): number {
    return this.active;
  }

  private setEntry(runId: string, entry: Entry): void {
    const previous = this.runs.get(runId);
    if (previous && !isTerminal(previous.state.status)) this.active--;
    if (!isTerminal(entry.state.status)) this.active++;
    this.runs.set(runId, entry);
  }

  private deleteEntry(runId: string): void {
    const previous = this.runs.get(runId);
    if (!previous) return;
    if (!isTerminal(previous.state.status)) this.active--;
    this.runs.delete(runId);
  }

  /** Records a state this process has just written (acknowledged by Kafka) to `partition`. */
  applyLocal(state: RunState, partition: number): void {
    const current = this.runs.get(state.runId);
    if (!current || current.state.version < state.version) this.setEntry(state.runId, { state, partition });
  }

  /**
   * The spec object this view holds for `spec`'s content (so that every run of one spec shares one object),
   * or `spec` itself when the view has none yet. Runs started from the inbox call this: each start record
   * carries its own copy of the spec.
   */
  internSpec(
    run: Pick<RunState, "namespace" | "orchestration" | "generation" | "spec">,
    ref?: string,
  ): OrchestrationSpec {
    // The writer of a start record names the spec's ref: no need to hash the spec again.
    if (ref !== undefined) {
      const known = this.specs.get(ref);
      if (known) return known;
    }
    return this.specs.get(specRef(run)) ?? run.spec;
  }

  /**
   * The spec records to write to `partition` before `states`: one for each spec they name that the
   * partition does not hold yet. Call `specsWritten` once they are acknowledged.
   */
  specRecordsFor(states: Iterable<RunState>, partition: number): OutgoingRecord[] {
    const out: OutgoingRecord[] = [];
    const added = new Set<string>();
    for (const state of states) {
      const ref = specRef(state);
      if (added.has(ref) || this.specPartitions.get(ref)?.has(partition)) continue;
      added.add(ref);
      out.push(encodeSpec(ref, state.spec, partition));
    }
    return out;
  }

  /** Records that the specs of `states` are now stored in `partition` (their spec records were acknowledged). */
  specsWritten(states: Iterable<RunState>, partition: number): void {
    for (const state of states) this.addSpec(specRef(state), state.spec, partition);
  }

  private addSpec(ref: string, spec: OrchestrationSpec, partition: number): void {
    if (!this.specs.has(ref)) this.specs.set(ref, spec);
    let parts = this.specPartitions.get(ref);
    if (!parts) this.specPartitions.set(ref, (parts = new Set()));
    parts.add(partition);
    const waiting = this.unresolved.get(ref);
    if (waiting) {
      this.unresolved.delete(ref);
      const shared = this.specs.get(ref) as OrchestrationSpec;
      for (const [runId, { state, partition: p }] of waiting) this.put(runId, { ...state, spec: shared }, p);
    }
  }

  private put(runId: string, state: RunState, partition: number): void {
    const current = this.runs.get(runId);
    if (!current || current.state.version < state.version) this.setEntry(runId, { state, partition });
  }

  /** Forgets a run this process has just tombstoned. */
  forget(runId: string): void {
    this.deleteEntry(runId);
  }

  private apply(record: IncomingRecord): void {
    const { key, value, partition } = record;
    const text = key?.toString("utf8");
    if (text?.startsWith(FENCE_KEY_PREFIX)) {
      const waiter = this.fenceWaiters.get(text);
      if (waiter) {
        this.fenceWaiters.delete(text);
        waiter();
      }
      return;
    }
    // This process's own writes (applied by `applyLocal` already) and older duplicates: skip the JSON.
    const version = stateVersionOf(record);
    if (version !== undefined && text !== undefined) {
      const current = this.runs.get(text);
      if (current && current.state.version >= version) return;
    }
    const decoded = decodeState({ key, value }, (ref) => this.specs.get(ref));
    switch (decoded.kind) {
      case "invalid":
        this.opts.log.warn({ runId: decoded.runId, partition }, decoded.message);
        return;
      case "tombstone":
        this.deleteEntry(decoded.runId);
        for (const waiting of this.unresolved.values()) waiting.delete(decoded.runId);
        return;
      case "spec":
        this.addSpec(decoded.ref, decoded.spec, partition);
        return;
      case "unresolved": {
        let waiting = this.unresolved.get(decoded.specRef);
        if (!waiting) this.unresolved.set(decoded.specRef, (waiting = new Map()));
        const prior = waiting.get(decoded.runId);
        if (!prior || prior.state.version < decoded.state.version)
          waiting.set(decoded.runId, { state: decoded.state, partition });
        if (waiting.size === 1 && !prior)
          this.opts.log.warn(
            { runId: decoded.runId, specRef: decoded.specRef, partition },
            "run state names a spec not read yet; holding it until the spec record comes",
          );
        return;
      }
      case "run":
        this.put(decoded.runId, decoded.state, partition);
        return;
    }
  }
}
