/**
 * `runWorker`: runs a worker definition under the operator's environment.
 *
 * Per record: verify the raw bytes (before anything is parsed) → check it is a command for this worker →
 * skip it if its `(source, id)` was handled already → run the handler in a `process <topic>` span → publish
 * a signed result with acks=all → only then let the offset be committed. A failing handler's record goes
 * through the retry tiers and then the dead-letter topic, a record that does not verify goes straight to
 * the dead-letter topic. See docs/sdk.md.
 */
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { Context } from "@opentelemetry/api";
import type { CloudEvent } from "../events/cloudevent.ts";
import { encodeRecord } from "../events/binding.ts";
import { Signer, Verifier } from "../events/signing.ts";
import type { RecordVerificationResult } from "../events/signing.ts";
import { TrustStore } from "../events/trust-store.ts";
import { KafkaClient } from "../kafka/client.ts";
import type {
  BatchContext,
  IncomingRecord,
  KafkaAdmin,
  KafkaConsumer,
  KafkaProducer,
  OutgoingRecord,
  RecordHeaders,
} from "../kafka/client.ts";
import {
  eventloomTracer,
  injectTraceContext,
  startTracing,
  withConsumerSpan,
  withProducerSpan,
} from "../tracing/index.ts";
import type { Tracing } from "../tracing/index.ts";
import { checkCommand, orchestrationSource, parseCommandData, stepSource } from "./command.ts";
import { loadSigningKeys, loadTrustStore, readTrustText, TrustFileWatcher } from "./credentials.ts";
import { commandDedupeKey, DedupeIndex, InFlight } from "./dedupe.ts";
import {
  afterFailure,
  deadLetterEnvelope,
  deadLetterHeaders,
  decideFailure,
  describeError,
  firstDelivery,
  INVALID_CLOUD_EVENT,
  retryDelivery,
  retryDueMs,
  retryHeaders,
  retryOriginalTopic,
  SIGNATURE_ERROR,
} from "./delivery.ts";
import type { Delivery } from "./delivery.ts";
import { consumedTopics, parseWorkerEnv } from "./env.ts";
import type { WorkerEnv } from "./env.ts";
import { isNonRetryable, NonRetryableError, WorkerConfigError } from "./errors.ts";
import { defaultLogger } from "./logger.ts";
import type { WorkerLogger } from "./logger.ts";
import { ResultsLog } from "./results-log.ts";
import { resultEvent } from "./results.ts";
import type { CommandFacts, StepOutcome } from "./results.ts";
import { handlersFor } from "./worker.ts";
import type { StepContext, WorkerDefinition } from "./worker.ts";

/** Counters of what the worker did since it started. */
export interface WorkerStats {
  /** Records read from step topics and this worker's retry-tier records. */
  received: number;
  /** Handler runs (first deliveries and retries). */
  handled: number;
  /** `step.completed` results published. */
  completed: number;
  /** `step.failed` results published. */
  failed: number;
  /** Records sent to a retry tier. */
  retried: number;
  /** Records sent to the dead-letter topic (any reason). */
  deadLettered: number;
  /** Records that failed verification or were not a command for this worker (SignatureError). */
  rejected: number;
  /** Records that were not CloudEvents (InvalidCloudEvent). */
  poison: number;
  /** Commands skipped because their `(source, id)` was handled already. */
  duplicates: number;
  /** Retry-tier records of other workers' steps (tiers are shared by an Orchestration's steps). */
  skipped: number;
}

/** A running worker. */
export interface RunningWorker {
  readonly env: WorkerEnv;
  /** Resolves once the worker joined its consumer group and its dedupe index caught up with the results topic. */
  readonly ready: Promise<void>;
  readonly stats: Readonly<WorkerStats>;
  /** Stops taking new records, lets in-flight ones finish (up to the grace period), commits, closes. */
  stop(): Promise<void>;
}

const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;
const DEFAULT_TRUST_POLL_MS = 10_000;
const DEFAULT_TOPIC_WAIT_MS = 60_000;
/** Well under the consumer's 10 s session timeout; kafkajs itself throttles to its heartbeat interval. */
const HEARTBEAT_EVERY_MS = 1_000;

/**
 * Waits until every topic answers for its partitions' offsets (it exists and has leaders): a worker may
 * start in the moment between the operator creating its topics and the broker electing their leaders.
 */
async function waitForTopics(
  admin: KafkaAdmin,
  topics: readonly string[],
  timeoutMs: number,
  log: WorkerLogger,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let waitMs = 100;
  let warned = false;
  for (;;) {
    const missing: string[] = [];
    for (const topic of topics) {
      try {
        if ((await admin.partitionOffsets(topic)).length === 0) missing.push(topic);
      } catch {
        missing.push(topic);
      }
    }
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      throw new WorkerConfigError(
        `topic(s) ${missing.join(", ")} do not exist or have no leader after ${timeoutMs} ms; check that the operator created the Orchestration's topics (condition TopicsReady)`,
      );
    }
    if (!warned && waitMs >= 1_600) {
      log.warn("waiting for the worker's topics", { missing });
      warned = true;
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    waitMs = Math.min(waitMs * 2, 2_000);
  }
}

/** Thrown out of a record whose handler was aborted by shutdown: leave it uncommitted for redelivery. */
class ShutdownAbort extends Error {
  override readonly name = "ShutdownAbort";
}

/** A counting semaphore: at most `limit` handlers at once across all partitions. */
class Semaphore {
  #free: number;
  readonly #queue: Array<() => void> = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#queue.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/**
 * Starts a worker with the environment the operator gives its pod (`env` defaults to `process.env`).
 * Resolves once connected and consuming; `ready` tells when it has joined its group.
 * @throws WorkerConfigError when the environment or definition cannot work (before touching Kafka).
 */
export async function runWorker(
  definition: WorkerDefinition,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningWorker> {
  const config = parseWorkerEnv(env);
  const opts = definition.options;
  const missing = config.steps.filter((step) => handlersFor(definition, step) === undefined);
  if (missing.length > 0) {
    throw new WorkerConfigError(
      `Worker ${config.worker} is bound to step(s) ${missing.join(", ")} but defines no handler for them; add them to defineWorker({steps}) or give a top-level handle`,
    );
  }
  const log = (opts.logger ?? defaultLogger(env)).child({
    worker: config.worker,
    orchestration: config.orchestration,
  });
  const orchSource = orchestrationSource(config.namespace, config.orchestration);
  const ownSources = new Map(
    config.steps.map((step) => [step, stepSource(config.namespace, config.orchestration, step)]),
  );

  // Credentials first: a pod without its key or trust must fail before it consumes anything.
  const signer = config.signingKeyPath ? new Signer(loadSigningKeys(config.signingKeyPath)) : undefined;
  const trust = config.trustPath ? loadTrustStore(config.trustPath) : new TrustStore([]);
  const verifier = new Verifier(trust, {
    policy: config.signingPolicy,
    requiredExtensions: config.signingPolicy === "required" ? ["partitionkey", "destination"] : [],
  });
  const resultVerifier =
    config.signingPolicy === "required" ? new Verifier(trust, { policy: "required" }) : undefined;
  const trustWatcher = config.trustPath
    ? new TrustFileWatcher({
        path: config.trustPath,
        initial: readTrustText(config.trustPath),
        pollIntervalMs: opts.trustPollIntervalMs ?? DEFAULT_TRUST_POLL_MS,
        log,
        onChange: (store) => {
          verifier.updateTrustStore(store);
          resultVerifier?.updateTrustStore(store);
        },
      })
    : undefined;

  const tracing: Tracing | undefined =
    opts.tracing === false ? undefined : startTracing({ serviceName: config.worker, env });

  const client = new KafkaClient({
    brokers: [...config.brokers],
    clientId: `eventloom-worker-${config.worker}`,
    onLog: (level, message, extra) =>
      level === "error" ? log.error(message, extra) : log.warn(message, extra),
  });
  const stats: WorkerStats = {
    received: 0,
    handled: 0,
    completed: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    rejected: 0,
    poison: 0,
    duplicates: 0,
    skipped: 0,
  };
  const index = new DedupeIndex(opts.dedupe?.maxEntries);
  const inFlight = new InFlight();
  const semaphore = new Semaphore(config.concurrency);
  const isRetryable = opts.isRetryable ?? ((err: unknown) => !isNonRetryable(err));
  const shutdownGraceMs = opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const topicWaitMs = opts.topicWaitMs ?? DEFAULT_TOPIC_WAIT_MS;
  const handlerAborts = new Set<AbortController>();
  const resumeTimers = new Map<string, NodeJS.Timeout>();
  let stopping = false;

  const producer: KafkaProducer = client.producer();
  /**
   * Results of the commands handled concurrently (the records of one consumer batch, across lanes) that
   * meet while a results write is in flight go together in the next produce request (the Kafka module
   * coalesces writes to one topic: services/kafka/coalesce.ts). Each handler still
   * waits for its own result's acknowledgement, and a failed write fails (and so retries) exactly the
   * commands whose results it carried.
   */
  const writeResults = (topic: string, records: OutgoingRecord[]) => producer.send(topic, records);
  const admin: KafkaAdmin = client.admin();
  const results = new ResultsLog({
    client,
    topic: config.resultsTopic,
    consumerGroup: config.consumerGroup,
    index,
    ownSources: new Set(ownSources.values()),
    commandSource: orchSource,
    verifier: resultVerifier,
    log,
  });
  const consumer: KafkaConsumer = client.consumer({ groupId: config.consumerGroup });

  // ---- publishing ----

  async function publishResult(outcome: StepOutcome, facts: CommandFacts, parent: Context): Promise<void> {
    const source = ownSources.get(facts.step) as string;
    const unsigned = resultEvent({ source, command: facts, outcome });
    const event = signer ? signer.sign(unsigned) : unsigned;
    const message = encodeRecord(event);
    await withProducerSpan(
      config.resultsTopic,
      event,
      (_span, ctx) =>
        writeResults(config.resultsTopic, [
          {
            key: message.key,
            value: message.value,
            headers: injectTraceContext<RecordHeaders>({ ...message.headers }, ctx),
          },
        ]),
      { parent },
    );
  }

  /** Re-publishes the record's key, value and event headers byte for byte, with new delivery headers. */
  async function forward(
    topic: string,
    record: IncomingRecord,
    headers: RecordHeaders,
    event: CloudEvent | undefined,
    parent: Context,
  ): Promise<void> {
    await withProducerSpan(
      topic,
      event,
      (_span, ctx) =>
        producer.send(topic, [
          { key: record.key, value: record.value, headers: injectTraceContext(headers, ctx) },
        ]),
      { parent },
    );
  }

  // ---- the record pipeline ----

  async function deadLetter(
    record: IncomingRecord,
    delivery: Delivery,
    error: { errorType: string; errorMessage: string },
    event: CloudEvent | undefined,
    parent: Context,
    reason?: string,
  ): Promise<void> {
    const now = Date.now();
    const failed = afterFailure(delivery, error, now);
    const envelope = deadLetterEnvelope({
      value: record.value,
      delivery: failed,
      error,
      consumerGroup: config.consumerGroup,
      nowMs: now,
    });
    const fields = { ...envelope, originalMessage: undefined, reason };
    if (config.deadLetterTopic === undefined) {
      log.error("dropping a record that failed for good: the Orchestration has no dead-letter topic", fields);
      return;
    }
    const headers = deadLetterHeaders(record.headers, envelope, {
      errors: failed.errors,
      ...(reason !== undefined ? { reason } : {}),
    });
    await forward(config.deadLetterTopic, record, headers, event, parent);
    stats.deadLettered++;
    log.warn("record dead-lettered", fields);
  }

  async function reject(
    record: IncomingRecord,
    delivery: Delivery,
    verified: Extract<RecordVerificationResult, { ok: false }>,
    parent: Context,
  ): Promise<void> {
    const poison = verified.reason === "invalid-event";
    if (poison) stats.poison++;
    else stats.rejected++;
    const error = {
      errorType: poison ? INVALID_CLOUD_EVENT : SIGNATURE_ERROR,
      errorMessage: verified.message,
    };
    await deadLetter(record, delivery, error, undefined, parent, verified.reason);
  }

  async function runHandler(
    event: CloudEvent,
    facts: CommandFacts,
    delivery: Delivery,
    signal: AbortSignal,
    parent: Context,
  ): Promise<unknown> {
    const handlers = handlersFor(definition, facts.step);
    if (handlers === undefined)
      throw new NonRetryableError(`no handler for step ${facts.step}`, { name: "NoHandler" });
    let data: unknown;
    try {
      data = parseCommandData(event);
    } catch (err) {
      throw new NonRetryableError(`the command's data is not JSON: ${(err as Error).message}`, {
        name: "InvalidData",
        cause: err,
      });
    }
    const fn = facts.action === "do" ? handlers.handle : handlers.compensate;
    if (fn === undefined) {
      throw new NonRetryableError(
        `step ${facts.step} got a compensation command but its worker defines no compensate(ctx)`,
        {
          name: "NoCompensationHandler",
        },
      );
    }
    const attempt = Number(facts.attempt ?? "1");
    const ctx: StepContext = {
      event,
      data,
      runId: facts.runId ?? "",
      step: facts.step,
      attempt: Number.isSafeInteger(attempt) && attempt > 0 ? attempt : 1,
      retryCount: delivery.retryCount,
      action: facts.action,
      signal,
      log: log.child({
        step: facts.step,
        runId: facts.runId,
        eventId: event.id,
        action: facts.action,
        retryCount: delivery.retryCount,
      }),
    };
    const name = `${facts.action === "do" ? "handle" : "compensate"} ${facts.step}`;
    return eventloomTracer().startActiveSpan(name, { kind: SpanKind.INTERNAL }, parent, async (span) => {
      if (span.isRecording()) {
        span.setAttributes({
          "eventloom.step": facts.step,
          "eventloom.action": facts.action,
          "eventloom.retry_count": delivery.retryCount,
        });
        if (facts.runId !== undefined) span.setAttribute("eventloom.run_id", facts.runId);
      }
      try {
        return await fn.call(handlers, ctx);
      } catch (err) {
        if (span.isRecording()) {
          const e = err instanceof Error ? err : new Error(String(err));
          span.recordException(e);
          span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
        }
        throw err;
      } finally {
        span.end();
      }
    });
  }

  async function attempt(
    record: IncomingRecord,
    event: CloudEvent,
    facts: CommandFacts,
    delivery: Delivery,
    key: string,
    parent: Context,
  ): Promise<void> {
    const abort = new AbortController();
    handlerAborts.add(abort);
    stats.handled++;
    let error: unknown;
    let completed: StepOutcome | undefined;
    try {
      const output = await runHandler(event, facts, delivery, abort.signal, parent);
      completed = { ok: true, output };
    } catch (err) {
      if (abort.signal.aborted && stopping)
        throw new ShutdownAbort("handler aborted by shutdown", { cause: err });
      error = err;
    } finally {
      handlerAborts.delete(abort);
    }
    if (completed !== undefined) {
      try {
        await publishResult(completed, facts, parent);
        index.add(key);
        stats.completed++;
        return;
      } catch (err) {
        // Only an output that cannot be encoded is the handler's fault; Kafka errors propagate.
        if (!(err instanceof TypeError)) throw err;
        error = new NonRetryableError(err.message, { name: "InvalidOutput", cause: err });
      }
    }

    const now = Date.now();
    const described = describeError(error);
    const tiers = config.retryTopics.get(facts.step) ?? [];
    const decision = decideFailure(delivery, tiers, isRetryable(error), now);
    if (decision.kind === "retry") {
      const failed = afterFailure(delivery, described, now);
      await forward(
        decision.tier.topic,
        record,
        retryHeaders(record.headers, failed, decision),
        event,
        parent,
      );
      stats.retried++;
      log.info("handler failed; retrying through a retry tier", {
        step: facts.step,
        runId: facts.runId,
        eventId: event.id,
        retry: decision.retryCount,
        tier: decision.tier.topic,
        dueInMs: decision.tier.delayMs,
        ...described,
      });
      return;
    }
    await deadLetter(record, delivery, described, event, parent);
    await publishResult({ ok: false, ...described, attempts: delivery.retryCount + 1 }, facts, parent);
    index.add(key);
    stats.failed++;
  }

  let barrier: Promise<void> = Promise.resolve();

  async function processRecord(record: IncomingRecord): Promise<void> {
    let delivery: Delivery;
    if (config.topicSteps.has(record.topic)) {
      delivery = firstDelivery(record);
    } else {
      const retried = retryDelivery(record.headers);
      if (retried === undefined) {
        log.warn("skipping a retry-tier record without valid delivery headers", {
          topic: record.topic,
          partition: record.partition,
          offset: record.offset,
        });
        stats.skipped++;
        return;
      }
      if (!config.topicSteps.has(retried.originalTopic)) {
        stats.skipped++;
        return;
      }
      delivery = retried;
    }
    stats.received++;
    const step = config.topicSteps.get(delivery.originalTopic) as string;
    // Verification runs on the raw record: nothing has been parsed yet.
    const verified = verifier.verifyRecord(record);
    await withConsumerSpan(
      record,
      verified.ok ? verified.event : undefined,
      async (_span, parent) => {
        if (!verified.ok) return reject(record, delivery, verified, parent);
        const event = verified.event;
        const check = checkCommand({
          event,
          keyid: verified.keyid,
          signedExtensions: verified.signedExtensions,
          orchestrationSource: orchSource,
          topic: delivery.originalTopic,
          step,
        });
        if (!check.ok) {
          stats.rejected++;
          return deadLetter(
            record,
            delivery,
            { errorType: SIGNATURE_ERROR, errorMessage: check.message },
            event,
            parent,
            check.reason,
          );
        }
        await barrier;
        const key = commandDedupeKey(event);
        await inFlight.run(key, async () => {
          if (index.has(key)) {
            stats.duplicates++;
            log.info("skipping a command handled already", {
              eventId: event.id,
              source: event.source,
              step,
              runId: check.facts.runId,
            });
            return;
          }
          await attempt(record, event, check.facts, delivery, key, parent);
        });
      },
      { consumerGroup: config.consumerGroup },
    );
  }

  /**
   * Processes the records of one partition's batch: records of different run keys run concurrently (up to
   * EVENTLOOM_CONCURRENCY across all partitions), records of the same key in order. Offsets are resolved
   * (and so committed at the end of the batch) only up to the last record whose whole prefix is done.
   */
  async function processBatch(records: IncomingRecord[], ctx: BatchContext): Promise<void> {
    const first = records[0];
    if (first === undefined) return;
    const retryTier = !config.topicSteps.has(first.topic);
    const runnable: IncomingRecord[] = [];
    let waitUntil: number | undefined;
    for (const record of records) {
      if (retryTier) {
        const original = retryOriginalTopic(record.headers);
        const due = retryDueMs(record.headers);
        if (
          original !== undefined &&
          config.topicSteps.has(original) &&
          due !== undefined &&
          due > Date.now()
        ) {
          waitUntil = due;
          break;
        }
      }
      runnable.push(record);
    }

    const done: boolean[] = runnable.map(() => false);
    let resolved = 0;
    const lanes = new Map<string, number[]>();
    runnable.forEach((record, i) => {
      const lane = record.key === null ? `#${i}` : record.key.toString("latin1");
      const list = lanes.get(lane);
      if (list) list.push(i);
      else lanes.set(lane, [i]);
    });
    let aborted = false;
    // kafkajs heartbeats only when asked: keep the group session alive while a long handler runs.
    const heartbeat = setInterval(() => void ctx.heartbeat().catch(() => undefined), HEARTBEAT_EVERY_MS);
    const outcomes = await Promise.allSettled(
      [...lanes.values()].map(async (lane) => {
        for (const i of lane) {
          if (stopping || aborted || !ctx.isRunning()) return;
          const record = runnable[i] as IncomingRecord;
          try {
            await semaphore.run(() => processRecord(record));
          } catch (err) {
            aborted = true;
            throw err;
          }
          done[i] = true;
          while (resolved < runnable.length && done[resolved]) {
            ctx.resolveOffset((runnable[resolved] as IncomingRecord).offset);
            resolved++;
          }
          await ctx.heartbeat();
        }
      }),
    ).finally(() => clearInterval(heartbeat));
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failure !== undefined) {
      if (failure.reason instanceof ShutdownAbort) return;
      throw failure.reason;
    }
    if (waitUntil !== undefined && !stopping) pauseUntil(first.topic, first.partition, waitUntil);
  }

  /** Pauses a retry-tier partition until its head record is due; other partitions and topics go on. */
  function pauseUntil(topic: string, partition: number, dueMs: number): void {
    const id = `${topic}/${partition}`;
    consumer.pause(topic, [partition]);
    const previous = resumeTimers.get(id);
    if (previous !== undefined) clearTimeout(previous);
    resumeTimers.set(
      id,
      setTimeout(
        () => {
          resumeTimers.delete(id);
          if (!stopping) consumer.resume(topic, [partition]);
        },
        Math.max(0, dueMs - Date.now()),
      ),
    );
  }

  // ---- start ----

  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  consumer.onJoin(() => {
    // Whatever another replica handled before this assignment is on the results topic by now: wait
    // until the reader has seen it, so a redelivered command is recognized.
    barrier = (async () => {
      try {
        const ends = await admin.partitionOffsets(config.resultsTopic);
        await results.caughtUp(ends);
      } catch (err) {
        log.error("could not measure the results topic; deduplicating with what was read so far", {
          error: (err as Error).message,
        });
      }
    })();
    void barrier.then(markReady);
  });
  try {
    await producer.connect();
    await admin.connect();
    await waitForTopics(admin, [...consumedTopics(config), config.resultsTopic], topicWaitMs, log);
    await results.start();
    await consumer.connect();
    await consumer.subscribe(consumedTopics(config), true);
    await consumer.runBatches(processBatch, { partitionsConsumedConcurrently: config.concurrency });
  } catch (err) {
    // Leave nothing running behind a failed start: the caller gets the error and a clean process.
    trustWatcher?.close();
    for (const close of [
      () => consumer.close(),
      () => results.close(),
      () => admin.close(),
      () => producer.close(),
    ]) {
      await close().catch(() => undefined);
    }
    await tracing?.shutdown().catch(() => undefined);
    throw err;
  }
  log.info("worker started", {
    steps: config.steps,
    topics: consumedTopics(config),
    consumerGroup: config.consumerGroup,
    concurrency: config.concurrency,
    signingPolicy: config.signingPolicy,
  });

  // ---- stop ----

  let stopped: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    log.info("stopping on signal", { signal });
    void stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error("unclean stop", { error: (err as Error).message });
        process.exit(1);
      },
    );
  };
  const handleSignals = opts.handleSignals ?? true;
  if (handleSignals) {
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }

  function stop(): Promise<void> {
    stopped ??= (async () => {
      stopping = true;
      if (handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      for (const timer of resumeTimers.values()) clearTimeout(timer);
      resumeTimers.clear();
      const grace = setTimeout(() => {
        for (const abort of handlerAborts) abort.abort(new Error("worker shutting down"));
      }, shutdownGraceMs);
      try {
        // Waits for the batch in progress (in-flight handlers finish, nothing new starts) and commits.
        await consumer.close();
      } finally {
        clearTimeout(grace);
        trustWatcher?.close();
        await results.close().catch(() => undefined);
        await admin.close().catch(() => undefined);
        await producer.close().catch(() => undefined);
        await tracing?.shutdown().catch(() => undefined);
        log.info("worker stopped", { ...stats });
      }
    })();
    return stopped;
  }

  return { env: config, ready, stats, stop };
}
