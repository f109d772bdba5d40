/**
 * The engine: owns inbox partitions, turns inbox records and timers into run
 * transitions (machine.ts, choreography.ts), writes each new run state to the
 * state topic, then performs the transition's effects.
 *
 * Durability without transactions (docs/engine.md, "Durability"):
 * 1. a batch of inbox records of partition p is applied in memory;
 * 2. the changed run states are written to partition p of the state topic (acks=all);
 * 3. only then are commands sent (deterministic ids), dead letters written,
 *    Kubernetes Events recorded;
 * 4. only then is the inbox offset committed.
 * A crash anywhere repeats at most steps 1-4 for the last batch: applying a
 * record again changes nothing (starts of existing runs, duplicate or stale
 * results are ignored), and a new owner of p re-sends the command of every
 * attempt still waiting for its result, which workers deduplicate on (source, id).
 */
import { randomUUID } from "node:crypto";
import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import type { Context } from "@opentelemetry/api";
import type { Orchestration, SigningPolicy } from "../../operator/crds/types.ts";
import { API_VERSION, ORCHESTRATION_KIND } from "../../operator/crds/types.ts";
import { orchestrationSource } from "../../operator/builders/keys.ts";
import { engineStateTopicFor } from "../../operator/builders/topics.ts";
import { decodeRecord, encodeRecord } from "../events/binding.ts";
import { Verifier } from "../events/signing.ts";
import { deadLetterTopic } from "../events/topics.ts";
import type { TopicNamingOptions } from "../events/topics.ts";
import { TrustStore } from "../events/trust-store.ts";
import type {
  IncomingRecord,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  OutgoingRecord,
} from "../kafka/client.ts";
import type { Logger } from "../../operator/runtime/log.ts";
import type { OrchestrationCatalog } from "./catalog.ts";
import { observeEvent } from "./choreography.ts";
import { recordBytes } from "../kafka/coalesce.ts";
import { systemClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { commandEvent } from "./commands.ts";
import { deadLetterRecord } from "./dead-letter.ts";
import { decodeInbox } from "./inbox.ts";
import type { ForwardedMessage, ForwardedRecord, InboxMessage, Origin } from "./inbox.ts";
import {
  applyResult,
  applyTimers,
  inFlightCommands,
  nextDueAt,
  requestCancel,
  requestUndo,
  startRun,
} from "./machine.ts";
import type { CommandSpec, Effect, Readiness, Transition } from "./machine.ts";
import type { EngineMetrics } from "./metrics.ts";
import { isTerminal } from "./model.ts";
import type { RunState } from "./model.ts";
import { classifyResult } from "./results.ts";
import { ResultRouter } from "./router.ts";
import { encodeState, encodeTombstone } from "./state-codec.ts";
import { engineGroupId, engineInboxTopic, engineStateTopic, routerGroupId } from "./topics.ts";
import { consumerSpan, newTrace, producerSpan, recordContext, runContext, traceOf } from "./tracing.ts";
import { inputHash as inputHashOf } from "./input-hash.ts";
import type { StateView } from "./view.ts";

/** Where the engine reports what a person must look at (a Kubernetes Event on the Orchestration). */
export interface EventSink {
  record(
    obj: { apiVersion: string; kind: string; metadata: { name?: string; namespace?: string; uid?: string } },
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void>;
}

export interface EngineOptions {
  kafka: KafkaClient;
  catalog: OrchestrationCatalog;
  view: StateView;
  log: Logger;
  metrics: EngineMetrics;
  naming?: TopicNamingOptions;
  /** Partitions of the inbox and state topics when the engine creates them (default 6). */
  partitions?: number;
  /** Replication factor when the engine creates its topics (default: the broker's). */
  replicationFactor?: number;
  sessionTimeoutMs?: number;
  clock?: Clock;
  events?: EventSink;
  /** Overdue timers found on restore fire this long after it, so queued results get a chance first (default 2 s). */
  restoreGraceMs?: number;
  /** How often a `Pending` run checks again whether it can start (default 2 s). */
  pendingRecheckMs?: number;
  /** Finished runs are forgotten (tombstoned) this long after they finished (default 7 days; 0 = never). */
  runRetentionMs?: number;
  /** Names this replica in logs and fences. */
  instanceId?: string;
  /**
   * Apply results of runs this replica owns as the router reads them, instead of copying them through
   * the inbox (default true; `ENGINE_DIRECT_RESULTS=false`). See `applyDirect`.
   */
  directResults?: boolean;
}

/** Serializes async work: one partition's batches, timers and restore run one at a time. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

class PartitionOwner {
  readonly lock = new Mutex();
  readonly timers = new Map<string, () => void>();
  readonly due = new Set<string>();
  /** Runs whose commands could not be sent after their state was written. */
  readonly unsent = new Set<string>();
  active = true;
  suspended = false;
  flushScheduled = false;
  restored = false;
  ready: Promise<void> = Promise.resolve();
  constructor(readonly partition: number) {}
}

type RunEffect = { runId: string; effect: Effect; parent: Context };

/** One input to apply: an inbox record, or a result read straight from its topic (`applyDirect`). */
interface Input {
  topic: string;
  partition: number;
  offset: string;
  headers: Record<string, Buffer | undefined>;
  message: () => InboxMessage;
}

/** What one batch (or one round of timers) changes, written and performed together. */
class Work {
  readonly states = new Map<string, RunState>();
  readonly effects: RunEffect[] = [];
  readonly deadLetters: Array<{ topic: string; record: OutgoingRecord }> = [];
  readonly tombstones: string[] = [];
  constructor(
    readonly partition: number,
    private readonly view: StateView,
  ) {}

  state(runId: string): RunState | undefined {
    return this.states.get(runId) ?? this.view.get(runId);
  }
}

const DEFAULT_PARTITIONS = 6;
const EMPTY_TRUST = new TrustStore([]);

export class Engine {
  readonly inboxTopic: string;
  readonly stateTopic: string;
  private readonly owners = new Map<number, PartitionOwner>();
  private readonly clock: Clock;
  private readonly naming: TopicNamingOptions;
  private readonly instanceId: string;
  private producer: KafkaProducer | undefined;
  /**
   * State writes and commands go through this: the partitions' batches run concurrently, and the Kafka
   * module puts their writes to one topic that meet while a request is in flight into the next request
   * (services/kafka/coalesce.ts), in call order.
   */
  private readonly write = (topic: string, records: OutgoingRecord[]) =>
    this.requireProducer().send(topic, records);
  private consumer: KafkaConsumer | undefined;
  private router: ResultRouter | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private running = false;
  private joined = false;

  constructor(private readonly opts: EngineOptions) {
    this.naming = opts.naming ?? {};
    this.inboxTopic = engineInboxTopic(this.naming);
    this.stateTopic = engineStateTopic(this.naming);
    this.clock = opts.clock ?? systemClock;
    this.instanceId = opts.instanceId ?? randomUUID();
  }

  /** True once the engine joined its group and restored every partition it owns. */
  get ready(): boolean {
    return this.running && this.joined && [...this.owners.values()].every((o) => o.restored);
  }

  /** The inbox partitions this replica owns now. */
  ownedPartitions(): number[] {
    return [...this.owners.keys()].sort((a, b) => a - b);
  }

  /** Creates the engine topics if missing, starts consuming the inbox and forwarding results. */
  async start(): Promise<void> {
    await ensureEngineTopics(this.opts.kafka, {
      naming: this.naming,
      partitions: this.opts.partitions ?? DEFAULT_PARTITIONS,
      ...(this.opts.replicationFactor !== undefined
        ? { replicationFactor: this.opts.replicationFactor }
        : {}),
    });
    this.running = true;
    this.producer = this.opts.kafka.producer();
    await this.producer.connect();

    const consumer = this.opts.kafka.consumer({
      groupId: engineGroupId(this.naming),
      sessionTimeoutMs: this.opts.sessionTimeoutMs ?? 10_000,
    });
    this.consumer = consumer;
    consumer.onRebalancing(() => {
      for (const owner of this.owners.values()) owner.suspended = true;
    });
    consumer.onJoin((assignment) => this.reassign(assignment[this.inboxTopic] ?? []));
    consumer.onCrash((error, restarting) =>
      this.opts.log.error({ err: error, restarting }, "the engine's inbox consumer crashed"),
    );
    await consumer.connect();
    await consumer.subscribe([this.inboxTopic], true);
    await consumer.runBatches((records, ctx) => this.handleBatch(records, ctx), {
      partitionsConsumedConcurrently: this.opts.partitions ?? DEFAULT_PARTITIONS,
    });

    this.router = new ResultRouter({
      kafka: this.opts.kafka,
      producer: this.producer,
      catalog: this.opts.catalog,
      inboxTopic: this.inboxTopic,
      groupId: routerGroupId(this.naming),
      naming: this.naming,
      log: this.opts.log,
      metrics: this.opts.metrics,
      ...(this.opts.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: this.opts.sessionTimeoutMs } : {}),
      ...(this.opts.directResults === false ? {} : { applyDirect: (m) => this.applyDirect(m) }),
    });
    await this.router.start();

    const retention = this.opts.runRetentionMs ?? 7 * 24 * 3_600_000;
    if (retention > 0) {
      this.sweeper = setInterval(() => void this.sweep(retention), Math.min(retention, 10 * 60_000));
      this.sweeper.unref();
    }
  }

  /** Stops consuming; runs in flight stay in the state topic for the next owner. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.sweeper) clearInterval(this.sweeper);
    await this.router?.stop();
    await this.consumer?.close();
    for (const owner of this.owners.values()) this.release(owner);
    this.owners.clear();
    await this.producer?.close();
    this.consumer = undefined;
    this.producer = undefined;
  }

  // -------------------------------------------------------------------------
  // Partition ownership
  // -------------------------------------------------------------------------

  private reassign(partitions: number[]): void {
    const wanted = new Set(partitions);
    for (const [p, owner] of this.owners) {
      if (!wanted.has(p)) {
        this.release(owner);
        this.owners.delete(p);
      }
    }
    for (const p of wanted) {
      const owner = this.owners.get(p);
      if (owner) {
        owner.suspended = false;
        this.flushSoon(owner);
      } else {
        this.acquire(p);
      }
    }
    this.joined = true;
    this.opts.metrics.ownedPartitions.set(this.owners.size);
    this.opts.log.info(
      { partitions: this.ownedPartitions(), instance: this.instanceId },
      "engine owns inbox partitions",
    );
  }

  private acquire(partition: number): PartitionOwner {
    const owner = new PartitionOwner(partition);
    this.owners.set(partition, owner);
    owner.ready = owner.lock.run(() => this.restore(owner));
    owner.ready.catch((err: unknown) =>
      this.opts.log.error({ err, partition }, "restoring a partition failed"),
    );
    return owner;
  }

  private release(owner: PartitionOwner): void {
    owner.active = false;
    for (const cancel of owner.timers.values()) cancel();
    owner.timers.clear();
    owner.due.clear();
  }

  /**
   * Takes over partition p: read every state written to it so far, re-arm the
   * timers of its unfinished runs and send again the command of every attempt
   * still waiting for a result (the previous owner may have died between
   * writing the state and sending the command).
   */
  private async restore(owner: PartitionOwner): Promise<void> {
    const started = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await this.opts.view.fence(owner.partition);
        break;
      } catch (err) {
        if (!owner.active || !this.running) return;
        this.opts.log.warn(
          { err, partition: owner.partition, attempt },
          "could not fence the state partition; retrying",
        );
        await delay(Math.min(5_000, 250 * 2 ** attempt));
      }
    }
    if (!owner.active) return;
    const runs = this.opts.view.inPartition(owner.partition).filter((s) => !isTerminal(s.status));
    const grace = this.clock.now() + (this.opts.restoreGraceMs ?? 2_000);
    const commands: Array<{ state: RunState; command: CommandSpec }> = [];
    for (const state of runs) {
      this.schedule(owner, state, grace);
      for (const command of inFlightCommands(state)) commands.push({ state, command });
    }
    await this.sendCommands(
      commands.map((c) => ({ ...c, parent: runContext(c.state.trace) })),
      "restore",
      owner,
    );
    owner.restored = true;
    this.opts.metrics.restoreSeconds.observe((this.clock.now() - started) / 1000);
    this.opts.log.info(
      { partition: owner.partition, activeRuns: runs.length, resent: commands.length },
      "restored partition",
    );
  }

  // -------------------------------------------------------------------------
  // Inbox
  // -------------------------------------------------------------------------

  private async handleBatch(
    records: IncomingRecord[],
    ctx: {
      resolveOffset(offset: string): void;
      isRunning(): boolean;
      isStale(): boolean;
      heartbeat(): Promise<void>;
    },
  ): Promise<void> {
    const first = records[0];
    const last = records[records.length - 1];
    if (!first || !last) return;
    const owner = this.owners.get(first.partition) ?? this.acquire(first.partition);
    await owner.ready;
    for (let attempt = 1; ; attempt++) {
      try {
        await owner.lock.run(() => this.process(owner, records));
        ctx.resolveOffset(last.offset);
        return;
      } catch (err) {
        // Nothing was committed: the same records are applied again (idempotently) on the next try.
        if (!ctx.isRunning() || ctx.isStale() || !owner.active || !this.running) throw err;
        this.opts.log.warn(
          { err, partition: owner.partition, attempt },
          "processing inbox records failed; retrying",
        );
        await delay(Math.min(10_000, 200 * 2 ** attempt));
        await ctx.heartbeat().catch(() => undefined);
      }
    }
  }

  private async process(owner: PartitionOwner, records: IncomingRecord[]): Promise<void> {
    await this.processInputs(
      owner,
      records.map((record) => ({
        topic: this.inboxTopic,
        partition: record.partition,
        offset: record.offset,
        headers: record.headers,
        message: () => decodeInbox(record),
      })),
    );
  }

  /** Applies inputs of one partition's runs in order, then writes and acts on what they changed (commit). */
  private async processInputs(owner: PartitionOwner, inputs: Input[]): Promise<void> {
    if (!owner.active) throw new Error(`partition ${owner.partition} was revoked`);
    const work = new Work(owner.partition, this.opts.view);
    for (const input of inputs) {
      try {
        await consumerSpan(
          input.topic,
          {
            "messaging.destination.partition.id": String(input.partition),
            "messaging.kafka.offset": Number(input.offset),
          },
          recordContext(input.headers),
          (ctx) => this.apply(work, input, ctx),
        );
      } catch (err) {
        // Applying a record does no I/O that can fail (writes come after): an error here is a record the
        // engine cannot handle, and retrying it would stall the partition for good. Skip it, loudly.
        this.opts.metrics.inputsIgnored.inc({ reason: "unprocessable" });
        this.opts.log.error(
          { err, topic: input.topic, partition: input.partition, offset: input.offset },
          "could not apply an inbox record; skipped it",
        );
      }
    }
    await this.commit(owner, work);
  }

  /**
   * Results (and choreography events) the router read, applied at once by this replica when it owns the
   * partition of their runs: under that partition's lock, like an inbox batch, so the run's state is
   * written (acks=all) and its commands sent before this resolves and the router commits the results
   * offset. A crash before that commit means they are read and applied again, which changes nothing. Runs
   * this replica does not own (or not yet: restoring, rebalancing), or does not know (a first
   * choreography event, a run start from the gateway) are left to the inbox copy: resolves with their
   * indexes, in order.
   */
  async applyDirect(messages: ForwardedMessage[]): Promise<number[]> {
    const { groups, left } = splitByOwner(
      messages,
      (message) => this.opts.view.partitionOf(message.runId),
      (partition) => {
        const owner = this.owners.get(partition);
        return owner !== undefined && owner.restored && owner.active && !owner.suspended && this.running;
      },
    );
    const byOwner = new Map<PartitionOwner, Array<{ index: number; input: Input }>>();
    for (const [partition, list] of groups) {
      const owner = this.owners.get(partition) as PartitionOwner;
      byOwner.set(
        owner,
        list.map(({ index, item: message }) => ({
          index,
          input: {
            topic: message.origin.topic,
            partition: message.origin.partition,
            offset: message.origin.offset,
            headers: message.record.headers,
            message: () => message,
          },
        })),
      );
    }
    await Promise.all(
      [...byOwner].map(async ([owner, list]) => {
        try {
          await owner.lock.run(() =>
            this.processInputs(
              owner,
              list.map((l) => l.input),
            ),
          );
        } catch (err) {
          // Revoked meanwhile, or the state write failed: the inbox copy gets them to whoever owns them.
          this.opts.log.debug(
            { err, partition: owner.partition, records: list.length },
            "could not apply results directly; copying them to the inbox",
          );
          for (const l of list) left.push(l.index);
        }
      }),
    );
    return left.sort((a, b) => a - b);
  }

  private async apply(work: Work, input: Input, parent: Context): Promise<void> {
    const now = this.clock.now();
    const msg = input.message();
    switch (msg.kind) {
      case "invalid":
        this.opts.log.warn({ runId: msg.runId, offset: input.offset }, msg.message);
        this.opts.metrics.inputsIgnored.inc({ reason: "invalid-inbox-record" });
        return;
      case "start": {
        if (work.state(msg.runId)) {
          this.opts.metrics.inputsIgnored.inc({ reason: "duplicate-start" });
          return;
        }
        const t = startRun(
          // Every start record carries its own copy of the spec: share the one the view holds.
          { ...msg.request, spec: this.opts.view.internSpec(msg.request, msg.specRef) },
          now,
          this.readiness(msg.request.namespace, msg.request.orchestration, msg.request.spec.signing?.policy),
        );
        this.opts.metrics.runsStarted.inc({
          namespace: msg.request.namespace,
          orchestration: msg.request.orchestration,
        });
        this.take(work, t, runContext(t.state.trace));
        return;
      }
      case "cancel":
      case "undo": {
        const state = work.state(msg.runId);
        if (!state) {
          this.opts.log.warn(
            { runId: msg.runId },
            `${msg.kind} requested for a run the engine does not know`,
          );
          this.opts.metrics.inputsIgnored.inc({ reason: "unknown-run" });
          return;
        }
        const t =
          msg.kind === "cancel"
            ? requestCancel(state, msg.requestId, now)
            : requestUndo(state, msg.requestId, now);
        this.take(work, t, runContext(state.trace));
        return;
      }
      case "forwarded": {
        const state = work.state(msg.runId);
        if (msg.origin.mode === "choreographed" || state?.mode === "choreographed") {
          this.observe(work, msg.runId, state, msg.origin, msg.record, now, parent);
        } else {
          await this.result(work, msg.runId, state, msg.origin, msg.record, now, parent);
        }
        return;
      }
    }
  }

  private async result(
    work: Work,
    runId: string,
    state: RunState | undefined,
    origin: Origin,
    record: ForwardedRecord,
    now: number,
    parent: Context,
  ): Promise<void> {
    // Verified against the run's own Orchestration; a run not known is checked against the topic's.
    const namespace = state?.namespace ?? origin.namespace;
    const orchestration = state?.orchestration ?? origin.orchestration;
    // The gateway writes run starts of orchestrated Orchestrations to the results topic, under the
    // Orchestration's own source (docs/gateway.md): a step result always has a step's source.
    const decoded = decodeRecord(record);
    if (decoded.ok && decoded.event.source === orchestrationSource(origin.namespace, origin.orchestration)) {
      this.ingressStart(work, runId, state, origin, record, now, parent);
      return;
    }
    const policy: SigningPolicy =
      state?.spec.signing?.policy ??
      this.opts.catalog.get(namespace, orchestration)?.orchestration.spec.signing?.policy ??
      "required";
    const classify = () =>
      classifyResult(
        record,
        {
          runId,
          namespace,
          orchestration,
          policy,
          trust: this.opts.catalog.get(namespace, orchestration)?.trust ?? EMPTY_TRUST,
        },
        decoded,
      );
    let verdict = classify();
    if (!verdict.ok && verdict.reason === "unknown-key" && this.opts.catalog.reload) {
      // The Worker may have been bound (and its key trusted) after our last look at the trust ConfigMap.
      await this.opts.catalog.reload(namespace, orchestration);
      verdict = classify();
    }
    if (!verdict.ok) {
      this.opts.metrics.resultsRefused.inc({
        namespace,
        orchestration,
        error_type: verdict.errorType,
        reason: verdict.reason ?? "",
      });
      this.opts.log.warn(
        { runId, origin: origin.topic, offset: origin.offset, errorType: verdict.errorType },
        verdict.message,
      );
      const dlt = this.deadLetterTopicOf(namespace, orchestration, state);
      if (dlt)
        work.deadLetters.push({
          topic: dlt,
          record: this.refusal(record, origin, verdict.errorType, verdict.message, now),
        });
      return;
    }
    if (!state) {
      this.opts.metrics.inputsIgnored.inc({ reason: "unknown-run" });
      this.opts.log.info(
        { runId, step: verdict.result.step },
        "result for a run the engine does not know (finished and forgotten?)",
      );
      return;
    }
    this.take(
      work,
      applyResult(state, verdict.result, now),
      sameTrace(parent, state) ? parent : runContext(state.trace),
    );
  }

  /**
   * A run started by an event posted to the gateway's CloudEvents ingress: the event is the run's input,
   * its `partitionkey` the run id, its trace the run's trace. It must be signed by a key the trust
   * document gives the Orchestration's own source (the gateway's or the engine's key), whatever its type.
   */
  private ingressStart(
    work: Work,
    runId: string,
    state: RunState | undefined,
    origin: Origin,
    record: ForwardedRecord,
    now: number,
    parent: Context,
  ): void {
    const { namespace, orchestration } = origin;
    const entry = this.opts.catalog.get(namespace, orchestration);
    if (!entry) {
      this.opts.metrics.inputsIgnored.inc({ reason: "unknown-orchestration" });
      this.opts.log.warn(
        { runId, namespace, orchestration },
        "run start for an Orchestration the engine does not know",
      );
      return;
    }
    const spec = entry.orchestration.spec;
    const policy = spec.signing?.policy ?? "required";
    const verified = new Verifier(runStartTrust(entry.trust, namespace, orchestration), {
      policy,
      requiredExtensions: policy === "required" ? ["partitionkey"] : [],
    }).verifyRecord(record);
    if (!verified.ok) {
      this.opts.metrics.resultsRefused.inc({
        namespace,
        orchestration,
        error_type: "SignatureError",
        reason: verified.reason,
      });
      this.opts.log.warn(
        { runId, origin: origin.topic, offset: origin.offset },
        `run start refused: ${verified.message}`,
      );
      const dlt = this.deadLetterTopicOf(namespace, orchestration, undefined);
      if (dlt)
        work.deadLetters.push({
          topic: dlt,
          record: this.refusal(record, origin, "SignatureError", verified.message, now),
        });
      return;
    }
    if (state) {
      this.opts.metrics.inputsIgnored.inc({ reason: "duplicate-start" });
      return;
    }
    const event = verified.event;
    const text = event.data?.toString("utf8") ?? "";
    let input: unknown;
    try {
      input = text === "" ? null : JSON.parse(text);
    } catch {
      // Not JSON (another datacontenttype): the run input is the text.
      input = text;
    }
    const trace = traceOf(parent) ?? newTrace();
    const t = startRun(
      {
        runId,
        namespace,
        orchestration,
        generation: entry.generation,
        spec,
        input,
        inputHash: inputHashOf(input),
        trace,
      },
      now,
      this.readiness(namespace, orchestration, policy),
    );
    this.opts.metrics.runsStarted.inc({ namespace, orchestration });
    this.take(work, t, runContext(trace));
  }

  private refusal(
    record: ForwardedRecord,
    origin: Origin,
    errorType: string,
    message: string,
    now: number,
  ): OutgoingRecord {
    return deadLetterRecord(record, {
      errorType,
      errorMessage: message,
      retryCount: 0,
      failedAttempts: 1,
      firstFailure: new Date(now),
      lastFailure: new Date(now),
      originalTopic: origin.topic,
      originalPartition: origin.partition,
      originalOffset: origin.offset,
      consumerGroup: engineGroupId(this.naming),
    });
  }

  private observe(
    work: Work,
    runId: string,
    state: RunState | undefined,
    origin: Origin,
    record: ForwardedRecord,
    now: number,
    parent: Context,
  ): void {
    const namespace = state?.namespace ?? origin.namespace;
    const orchestration = state?.orchestration ?? origin.orchestration;
    const entry = this.opts.catalog.get(namespace, orchestration);
    const spec = state?.spec ?? entry?.orchestration.spec;
    if (!spec) {
      this.opts.metrics.inputsIgnored.inc({ reason: "unknown-orchestration" });
      return;
    }
    const decoded = decodeRecord(record);
    if (!decoded.ok) {
      this.opts.metrics.inputsIgnored.inc({ reason: "invalid-event" });
      return;
    }
    const event = decoded.event;
    const declared = new Set(spec.steps.flatMap((s) => [...(s.subscribes ?? []), ...(s.emits ?? [])]));
    if (!declared.has(event.type) && !event.type.startsWith("io.eventloom.step.")) {
      this.opts.metrics.inputsIgnored.inc({ reason: "undeclared-type" });
      return;
    }
    const policy = spec.signing?.policy ?? "required";
    const trust = entry?.trust ?? new TrustStore([]);
    if (!new Verifier(trust, { policy }).verifyRecord(record).ok) {
      // The engine only watches a choreography; the workers dead-letter what they refuse.
      this.opts.metrics.inputsIgnored.inc({ reason: "unverified-event" });
      return;
    }
    if (!event.source.startsWith(`/eventloom/${namespace}/${orchestration}`)) {
      this.opts.metrics.inputsIgnored.inc({ reason: "foreign-source" });
      return;
    }
    const observedTrace = traceOf(parent);
    const t = observeEvent(
      state,
      {
        runId,
        namespace,
        orchestration,
        generation: state?.generation ?? entry?.generation ?? 0,
        spec,
        event: {
          id: event.id,
          source: event.source,
          type: event.type,
          ...(event.time !== undefined ? { time: event.time } : {}),
        },
        ...(observedTrace ? { trace: observedTrace } : {}),
      },
      now,
    );
    this.take(work, t, parent);
  }

  private take(work: Work, t: Transition, parent: Context): void {
    for (const effect of t.effects) {
      if (effect.kind === "ignored") {
        this.opts.metrics.inputsIgnored.inc({ reason: effect.reason });
        this.opts.log.debug({ runId: t.state.runId, reason: effect.reason }, effect.detail);
      }
    }
    if (!t.changed) return;
    work.states.set(t.state.runId, t.state);
    for (const effect of t.effects)
      if (effect.kind !== "ignored") work.effects.push({ runId: t.state.runId, effect, parent });
  }

  private readiness(namespace: string, orchestration: string, policy: SigningPolicy | undefined): Readiness {
    const entry = this.opts.catalog.get(namespace, orchestration);
    if ((policy ?? "required") === "none")
      return entry ? topicsReadiness(entry.orchestration) : { ready: true };
    if (!entry)
      return {
        ready: false,
        reason: `Orchestration ${namespace}/${orchestration} is not known to the engine`,
      };
    if (!entry.signer) {
      return {
        ready: false,
        reason: `the signing key of Orchestration ${namespace}/${orchestration} (Secret ${orchestration}-orchestration-signing-key) is not loaded yet`,
      };
    }
    return topicsReadiness(entry.orchestration);
  }

  private deadLetterTopicOf(
    namespace: string,
    orchestration: string,
    state: RunState | undefined,
  ): string | undefined {
    const spec = state?.spec ?? this.opts.catalog.get(namespace, orchestration)?.orchestration.spec;
    if (spec?.deadLetter?.enabled === false) return undefined;
    try {
      return deadLetterTopic({ namespace, orchestration }, this.naming);
    } catch {
      return undefined;
    }
  }

  // -------------------------------------------------------------------------
  // Writing and acting
  // -------------------------------------------------------------------------

  private async commit(owner: PartitionOwner, work: Work): Promise<void> {
    this.requireProducer(); // throws when the engine is stopped
    if (work.states.size > 0 || work.tombstones.length > 0) {
      // A spec a partition does not hold yet goes first, in the same (ordered) writes as the states naming it.
      const records = this.opts.view.specRecordsFor(work.states.values(), owner.partition);
      for (const s of work.states.values()) records.push(encodeState(s, owner.partition));
      for (const id of work.tombstones) records.push(encodeTombstone(id, owner.partition));
      await sendChunked(this.write, this.stateTopic, records);
      this.opts.metrics.stateWrites.inc(work.states.size);
      this.opts.view.specsWritten(work.states.values(), owner.partition);
      for (const state of work.states.values()) this.opts.view.applyLocal(state, owner.partition);
      for (const id of work.tombstones) this.opts.view.forget(id);
    }

    const dispatches: Array<{ state: RunState; command: CommandSpec; parent: Context }> = [];
    for (const { runId, effect, parent } of work.effects) {
      const state = work.states.get(runId);
      if (!state) continue;
      if (effect.kind === "dispatch") dispatches.push({ state, command: effect.command, parent });
    }
    await this.sendCommands(dispatches, "dispatch", owner);

    for (const { runId, effect } of work.effects) {
      const state = work.states.get(runId);
      if (!state) continue;
      if (effect.kind === "finished") {
        this.opts.metrics.runsFinished.inc({
          namespace: state.namespace,
          orchestration: state.orchestration,
          state: effect.status,
        });
        this.opts.log.info({ runId, status: effect.status, reason: effect.reason }, "run finished");
      } else if (effect.kind === "compensationFailed") {
        this.compensationFailed(work, state, effect);
      }
    }
    await this.sendDeadLetters(work.deadLetters);

    for (const state of work.states.values()) this.schedule(owner, state);
    // O(1): the view counts its unfinished runs as they change.
    this.opts.metrics.activeRuns.set(this.opts.view.activeRuns());
  }

  private compensationFailed(
    work: Work,
    state: RunState,
    effect: Extract<Effect, { kind: "compensationFailed" }>,
  ): void {
    const { namespace, orchestration } = state;
    this.opts.metrics.compensationFailures.inc({ namespace, orchestration, step: effect.step });
    const message =
      `Run ${state.runId}: the compensation of step ${effect.step} (${effect.command.type}) failed for good after ` +
      `${effect.attempts} attempt(s): ${effect.error.message}. The run ends CompensationFailed; undo the step by hand ` +
      `and look at the dead-letter topic.`;
    this.opts.log.error({ runId: state.runId, step: effect.step, error: effect.error }, message);
    const dlt = this.deadLetterTopicOf(namespace, orchestration, state);
    const built = this.buildCommand(state, effect.command);
    if (dlt && built) {
      work.deadLetters.push({
        topic: dlt,
        record: deadLetterRecord(
          { key: built.record.key ?? null, value: built.record.value, headers: built.record.headers ?? {} },
          {
            errorType: "CompensationFailed",
            errorMessage: message,
            retryCount: Math.max(0, effect.attempts - 1),
            failedAttempts: effect.attempts,
            firstFailure: new Date(effect.command.dispatchedAt),
            lastFailure: new Date(this.clock.now()),
            originalTopic: built.topic,
            originalPartition: -1,
            originalOffset: "-1",
            consumerGroup: engineGroupId(this.naming),
          },
        ),
      });
    }
    const entry = this.opts.catalog.get(namespace, orchestration);
    const involved: Pick<Orchestration, "apiVersion" | "kind" | "metadata"> = entry?.orchestration ?? {
      apiVersion: API_VERSION,
      kind: ORCHESTRATION_KIND,
      metadata: { name: orchestration, namespace },
    };
    void this.opts.events?.record(involved, "Warning", "CompensationFailed", message);
  }

  private buildCommand(
    state: RunState,
    command: CommandSpec,
  ): { topic: string; record: OutgoingRecord; event: ReturnType<typeof commandEvent>["event"] } | undefined {
    const entry = this.opts.catalog.get(state.namespace, state.orchestration);
    const policy = state.spec.signing?.policy ?? "required";
    const { topic, event } = commandEvent(state, command, this.naming);
    let signed = event;
    // Under policy `none` nothing is signed, even when a key is there (a Secret left from `required`):
    // workers would only pay for verifying a signature nobody asked for.
    if (policy === "none") {
      // sent unsigned
    } else if (entry?.signer) signed = entry.signer.sign(event);
    else {
      this.opts.log.error(
        { runId: state.runId, step: command.step },
        `cannot sign the command for step ${command.step}: the signing key of ${state.namespace}/${state.orchestration} is not loaded; the step's timeout will try again`,
      );
      return undefined;
    }
    const m = encodeRecord(signed);
    return { topic, event: signed, record: { key: m.key, value: m.value, headers: { ...m.headers } } };
  }

  private async sendCommands(
    items: Array<{ state: RunState; command: CommandSpec; parent: Context }>,
    cause: "dispatch" | "restore",
    owner: PartitionOwner,
  ): Promise<void> {
    const byTopic = new Map<
      string,
      Array<{ record: OutgoingRecord; end: (err?: unknown) => void; runId: string; action: string }>
    >();
    for (const { state, command, parent } of items) {
      const built = this.buildCommand(state, command);
      if (!built) continue;
      const headers = built.record.headers ?? {};
      const end = producerSpan(built.topic, built.event, parent, headers);
      const list = byTopic.get(built.topic) ?? [];
      list.push({ record: { ...built.record, headers }, end, runId: state.runId, action: command.action });
      byTopic.set(built.topic, list);
    }
    await Promise.all(
      [...byTopic].map(async ([topic, list]) => {
        try {
          await withRetry(
            () =>
              this.write(
                topic,
                list.map((l) => l.record),
              ),
            3,
          );
          for (const l of list) {
            l.end();
            this.opts.metrics.commandsSent.inc({ action: l.action, cause });
          }
        } catch (err) {
          for (const l of list) {
            l.end(err);
            owner.unsent.add(l.runId);
          }
          this.opts.log.error(
            { err, topic, commands: list.length },
            "could not send commands; they will be sent again",
          );
          this.retryUnsentSoon(owner);
        }
      }),
    );
  }

  private retryUnsentSoon(owner: PartitionOwner): void {
    const key = `unsent:${randomUUID()}`;
    const cancel = this.clock.at(this.clock.now() + 1_000, () => {
      owner.timers.delete(key);
      if (!owner.active || owner.unsent.size === 0) return;
      void owner.lock.run(async () => {
        const runIds = [...owner.unsent];
        owner.unsent.clear();
        const items = runIds.flatMap((id) => {
          const state = this.opts.view.get(id);
          return state
            ? inFlightCommands(state).map((command) => ({ state, command, parent: runContext(state.trace) }))
            : [];
        });
        await this.sendCommands(items, "restore", owner);
      });
    });
    owner.timers.set(key, cancel);
  }

  private async sendDeadLetters(items: Array<{ topic: string; record: OutgoingRecord }>): Promise<void> {
    const byTopic = new Map<string, OutgoingRecord[]>();
    for (const { topic, record } of items) byTopic.set(topic, [...(byTopic.get(topic) ?? []), record]);
    await Promise.all(
      [...byTopic].map(async ([topic, records]) => {
        try {
          await withRetry(() => sendChunked((t, r) => this.requireProducer().send(t, r), topic, records), 3);
        } catch (err) {
          // A dead letter that cannot be written must not stop the partition: the log keeps the record.
          this.opts.log.error({ err, topic, records: records.length }, "could not write dead-letter records");
        }
      }),
    );
  }

  private requireProducer(): KafkaProducer {
    if (!this.producer) throw new Error("the engine is not started");
    return this.producer;
  }

  // -------------------------------------------------------------------------
  // Timers
  // -------------------------------------------------------------------------

  /** Arms the run's one timer at its next deadline (no earlier than `notBefore`). */
  private schedule(owner: PartitionOwner, state: RunState, notBefore?: number): void {
    owner.timers.get(state.runId)?.();
    owner.timers.delete(state.runId);
    let due =
      state.status === "Pending"
        ? this.clock.now() + (this.opts.pendingRecheckMs ?? 2_000)
        : nextDueAt(state);
    if (due === undefined) return;
    if (notBefore !== undefined && due < notBefore) due = notBefore;
    const runId = state.runId;
    owner.timers.set(
      runId,
      this.clock.at(due, () => {
        owner.timers.delete(runId);
        owner.due.add(runId);
        this.flushSoon(owner);
      }),
    );
  }

  private flushSoon(owner: PartitionOwner): void {
    if (owner.flushScheduled || owner.due.size === 0) return;
    owner.flushScheduled = true;
    setImmediate(() => {
      owner.flushScheduled = false;
      void owner.lock
        .run(() => this.fireTimers(owner))
        .catch((err: unknown) => {
          this.opts.log.warn({ err, partition: owner.partition }, "acting on timers failed; trying again");
          for (const state of this.opts.view.inPartition(owner.partition)) {
            if (!isTerminal(state.status)) this.schedule(owner, state, this.clock.now() + 1_000);
          }
        });
    });
  }

  private async fireTimers(owner: PartitionOwner): Promise<void> {
    if (!owner.active || owner.suspended || !this.running) return;
    const runIds = [...owner.due];
    owner.due.clear();
    const work = new Work(owner.partition, this.opts.view);
    const now = this.clock.now();
    for (const runId of runIds) {
      const state = this.opts.view.get(runId);
      if (!state || isTerminal(state.status) || state.mode === "choreographed") continue;
      const t = applyTimers(
        state,
        now,
        this.readiness(state.namespace, state.orchestration, state.spec.signing?.policy),
      );
      this.take(work, t, runContext(state.trace));
      if (!t.changed) this.schedule(owner, state);
    }
    await this.commit(owner, work);
  }

  /** Forgets (tombstones) finished runs older than the retention. */
  private async sweep(retentionMs: number): Promise<void> {
    const cutoff = this.clock.now() - retentionMs;
    for (const owner of this.owners.values()) {
      await owner.lock
        .run(async () => {
          if (!owner.active) return;
          const work = new Work(owner.partition, this.opts.view);
          for (const state of this.opts.view.inPartition(owner.partition)) {
            if (isTerminal(state.status) && (state.finishedAt ?? state.updatedAt) < cutoff)
              work.tombstones.push(state.runId);
          }
          if (work.tombstones.length > 0) await this.commit(owner, work);
        })
        .catch((err: unknown) =>
          this.opts.log.warn({ err, partition: owner.partition }, "could not forget finished runs"),
        );
    }
  }
}

/**
 * Splits `items` between the partitions that can take them now (`partitionOf` known and `ready`), each
 * group in input order, and the rest (`left`: their indexes, in order).
 */
export function splitByOwner<T>(
  items: readonly T[],
  partitionOf: (item: T) => number | undefined,
  ready: (partition: number) => boolean,
): { groups: Map<number, Array<{ index: number; item: T }>>; left: number[] } {
  const groups = new Map<number, Array<{ index: number; item: T }>>();
  const left: number[] = [];
  items.forEach((item, index) => {
    const partition = partitionOf(item);
    if (partition === undefined || !ready(partition)) {
      left.push(index);
      return;
    }
    const group = groups.get(partition);
    if (group) group.push({ index, item });
    else groups.set(partition, [{ index, item }]);
  });
  return { groups, left };
}

/** Stay well below the broker's default message.max.bytes (1 MiB) per produce request. */
const MAX_SEND_BYTES = 512 * 1024;

/** Sends records in order, in as many requests as keep each under MAX_SEND_BYTES. */
async function sendChunked(
  send: (topic: string, records: OutgoingRecord[]) => Promise<unknown>,
  topic: string,
  records: OutgoingRecord[],
): Promise<void> {
  let chunk: OutgoingRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = recordBytes([record]);
    if (chunk.length > 0 && bytes + size > MAX_SEND_BYTES) {
      await send(topic, chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(record);
    bytes += size;
  }
  if (chunk.length > 0) await send(topic, chunk);
}

/** Not ready while the operator reports the Orchestration's topics missing (TopicsReady=False). */
function topicsReadiness(orchestration: Orchestration): Readiness {
  const condition = orchestration.status?.conditions?.find((c) => c.type === "TopicsReady");
  if (condition?.status === "False") {
    return {
      ready: false,
      reason: `the Orchestration's Kafka topics are not ready (${condition.reason}: ${condition.message})`,
    };
  }
  return { ready: true };
}

const runStartTrustCache = new WeakMap<TrustStore, Map<string, TrustStore>>();

/**
 * The keys the trust document lets sign as the Orchestration itself (`/eventloom/<ns>/<o>`: the engine's
 * and the gateway's), allowed any type from that source: a run start carries the client's own type.
 */
export function runStartTrust(trust: TrustStore, namespace: string, orchestration: string): TrustStore {
  const source = orchestrationSource(namespace, orchestration);
  let bySource = runStartTrustCache.get(trust);
  if (!bySource) runStartTrustCache.set(trust, (bySource = new Map()));
  const cached = bySource.get(source);
  if (cached) return cached;
  const keys = trust.keyids
    .map((id) => trust.get(id))
    .filter((k): k is NonNullable<typeof k> => k !== undefined && k.sources.includes(source))
    .map((k) => ({ publicKey: k.publicKey, sources: [source], types: ["*"] }));
  const derived = new TrustStore(keys);
  bySource.set(source, derived);
  return derived;
}

function sameTrace(ctx: Context, state: RunState): boolean {
  const sc = trace.getSpanContext(ctx);
  return sc !== undefined && sc.traceId === state.trace.traceId && ctx !== ROOT_CONTEXT;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withRetry<T>(send: () => Promise<T>, attempts: number): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await send();
    } catch (err) {
      if (i >= attempts) throw err;
      await delay(Math.min(2_000, 100 * 2 ** i));
    }
  }
}

/** Creates the inbox and the compacted state topic when missing; refuses to run when their partitions differ. */
export async function ensureEngineTopics(
  kafka: KafkaClient,
  opts: { naming?: TopicNamingOptions; partitions: number; replicationFactor?: number },
): Promise<{ partitions: number }> {
  const naming = opts.naming ?? {};
  const state = engineStateTopicFor({
    ...naming,
    partitions: opts.partitions,
    ...(opts.replicationFactor !== undefined ? { replicationFactor: opts.replicationFactor } : {}),
  });
  const inbox = {
    name: engineInboxTopic(naming),
    partitions: opts.partitions,
    replicationFactor: state.replicationFactor,
    configs: { "cleanup.policy": "delete", "retention.ms": String(7 * 24 * 3_600_000) },
  };
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = await admin.describeTopics([state.name, inbox.name]);
    const missing = [state, inbox].filter((t) => !existing.some((e) => e.name === t.name));
    if (missing.length > 0) {
      try {
        await admin.createTopics(
          missing.map((t) => ({
            name: t.name,
            partitions: t.partitions,
            replicationFactor: t.replicationFactor,
            configs: t.configs,
          })),
        );
      } catch (err) {
        // Another replica may have created them at the same moment.
        const now = await admin.describeTopics(missing.map((t) => t.name));
        if (now.length !== missing.length) throw err;
      }
    }
    // Metadata of topics created a moment ago may not have reached every broker yet: retry briefly.
    const settle = <T>(what: () => Promise<T>): Promise<T> => withRetry(what, 8);
    const described = await settle(() => admin.describeTopics([state.name, inbox.name]));
    const statePartitions = described.find((t) => t.name === state.name)?.partitions ?? 0;
    const inboxPartitions = described.find((t) => t.name === inbox.name)?.partitions ?? 0;
    if (statePartitions !== inboxPartitions) {
      throw new Error(
        `The engine state topic ${state.name} has ${statePartitions} partitions and the inbox ${inbox.name} has ` +
          `${inboxPartitions}; they must be equal, since the state of the runs of inbox partition p lives in state ` +
          `partition p. Raise the smaller one to match (only while no run is in flight).`,
      );
    }
    const configs = await settle(() => admin.topicConfigs(state.name, ["cleanup.policy"]));
    if (configs["cleanup.policy"] !== "compact") {
      throw new Error(
        `The engine state topic ${state.name} has cleanup.policy=${configs["cleanup.policy"] ?? "unset"}; it must be ` +
          `"compact", or finished runs' states would be deleted by retention and running ones lost. Alter the topic.`,
      );
    }
    return { partitions: statePartitions };
  } finally {
    await admin.close();
  }
}
