/**
 * Forwards what workers publish into the engine inbox, keyed by run id, so
 * that every input of a run reaches the one replica owning the run's inbox
 * partition (an Orchestration's results topic has its own partition count,
 * so its partitions cannot line up with the inbox's).
 *
 * Subscribes, in the router consumer group shared by the engine replicas, to
 * the results topic of every orchestrated Orchestration and to the step and
 * results topics of every choreographed one. Records are copied byte for
 * byte (signatures still verify) with `eventloom-origin-*` headers. The copy
 * is at least once: a record forwarded twice is a duplicate the state machine
 * ignores.
 *
 * Records of runs whose inbox partition this replica owns are first offered to
 * `applyDirect` (the engine applies them under that partition's lock, state
 * written and commands sent, before the results offset is committed), which
 * saves the copy's produce, consume and commit; only what it does not take is
 * copied (docs/engine.md, "Results without the inbox hop").
 */
import type { Mode } from "../../operator/crds/types.ts";
import type {
  IncomingRecord,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  OutgoingRecord,
} from "../kafka/client.ts";
import { resultsTopic, stepTopic } from "../events/topics.ts";
import type { TopicNamingOptions } from "../events/topics.ts";
import type { Logger } from "../../operator/runtime/log.ts";
import type { OrchestrationCatalog } from "./catalog.ts";
import { forwardRecord, forwardedMessage } from "./inbox.ts";
import type { ForwardedMessage } from "./inbox.ts";
import type { EngineMetrics } from "./metrics.ts";

export interface RouterOptions {
  kafka: KafkaClient;
  producer: KafkaProducer;
  catalog: OrchestrationCatalog;
  inboxTopic: string;
  groupId: string;
  naming: TopicNamingOptions;
  log: Logger;
  metrics: EngineMetrics;
  sessionTimeoutMs?: number;
  /** How often to look for topics the operator created since (default 10 s). */
  rescanIntervalMs?: number;
  /**
   * Applies what it can of `inputs` right away and resolves, once those are durably applied (state
   * written), with the indexes of the ones it did not take: those are copied to the inbox.
   */
  applyDirect?: (inputs: ForwardedMessage[]) => Promise<number[]>;
}

interface Route {
  namespace: string;
  orchestration: string;
  mode: Mode;
}

/** The topics to forward from, for every Orchestration in the catalog. */
export function routesFor(
  catalog: OrchestrationCatalog,
  naming: TopicNamingOptions = {},
): Map<string, Route> {
  const routes = new Map<string, Route>();
  for (const entry of catalog.list()) {
    const ref = { namespace: entry.namespace, orchestration: entry.name };
    const mode = entry.orchestration.spec.mode ?? "orchestrated";
    const route = { namespace: entry.namespace, orchestration: entry.name, mode };
    try {
      routes.set(resultsTopic(ref, naming), route);
      if (mode === "choreographed") {
        for (const step of entry.orchestration.spec.steps)
          routes.set(stepTopic(ref, step.name, naming), route);
      }
    } catch {
      // A name Kafka would refuse: the operator reports it on the Orchestration; nothing to read.
    }
  }
  return routes;
}

export class ResultRouter {
  private consumer: KafkaConsumer | undefined;
  private routes = new Map<string, Route>();
  private subscribed = "";
  private timer: NodeJS.Timeout | undefined;
  private removeListener: (() => void) | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: RouterOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    this.removeListener = this.opts.catalog.onChange(() => this.scheduleRefresh(500));
    await this.refresh();
    this.timer = setInterval(() => this.scheduleRefresh(0), this.opts.rescanIntervalMs ?? 10_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.removeListener?.();
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    await this.consumer?.close();
    this.consumer = undefined;
  }

  private pending: NodeJS.Timeout | undefined;

  private scheduleRefresh(delayMs: number): void {
    if (this.pending || this.stopped) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.refreshing = this.refreshing
        .then(() => this.refresh())
        .catch((err: unknown) => {
          this.opts.log.warn(
            { err },
            "could not update the topics the engine forwards results from; retrying",
          );
        });
    }, delayMs);
    this.pending.unref();
  }

  /** Re-subscribes when the set of existing topics to forward from changed. */
  private async refresh(): Promise<void> {
    if (this.stopped) return;
    const wanted = routesFor(this.opts.catalog, this.opts.naming);
    const admin = this.opts.kafka.admin();
    await admin.connect();
    let existing: Set<string>;
    try {
      existing = new Set(await admin.listTopics());
    } finally {
      await admin.close();
    }
    const topics = [...wanted.keys()].filter((t) => existing.has(t)).sort();
    const signature = topics.join(",");
    this.routes = wanted;
    if (signature === this.subscribed) return;
    await this.consumer?.close();
    this.consumer = undefined;
    this.subscribed = signature;
    if (topics.length === 0 || this.stopped) return;
    const consumer = this.opts.kafka.consumer({
      groupId: this.opts.groupId,
      sessionTimeoutMs: this.opts.sessionTimeoutMs ?? 10_000,
    });
    await consumer.connect();
    await consumer.subscribe(topics, true);
    await consumer.runBatches(
      async (records, ctx) => {
        const routed: Array<{ record: IncomingRecord; route: Route }> = [];
        for (const record of records) {
          const route = this.routes.get(record.topic);
          if (route) routed.push({ record, route });
        }
        let toCopy = routed;
        if (this.opts.applyDirect && routed.length > 0) {
          const inputs: ForwardedMessage[] = [];
          const of: Array<{ record: IncomingRecord; route: Route }> = [];
          for (const r of routed) {
            const message = forwardedMessage(r.record, r.route);
            if (message) {
              inputs.push(message);
              of.push(r);
            }
          }
          const left = await this.opts.applyDirect(inputs);
          this.opts.metrics.appliedDirectly.inc(inputs.length - left.length);
          toCopy = left.map((i) => of[i] as { record: IncomingRecord; route: Route });
        }
        const out: OutgoingRecord[] = [];
        for (const { record, route } of toCopy) {
          const forwarded = forwardRecord(record, route);
          if (forwarded) out.push(forwarded);
        }
        if (out.length > 0) await this.opts.producer.send(this.opts.inboxTopic, out);
        this.opts.metrics.forwarded.inc(out.length);
        const last = records[records.length - 1];
        if (last) ctx.resolveOffset(last.offset);
      },
      { partitionsConsumedConcurrently: 4 },
    );
    this.consumer = consumer;
    this.opts.log.info({ topics }, "forwarding results to the engine inbox");
  }
}
