/**
 * Test kit: a minimal worker for engine tests, written directly on the Kafka
 * module (so engine tests do not depend on the worker SDK). It reads the step
 * topics of an Orchestration, verifies every command (signature, source,
 * destination), deduplicates on (source, id) as real workers must, asks a
 * behaviour what to do, and publishes a result signed with its Worker key (results answered at the same
 * time share a produce request, as the worker SDK's do).
 * It keeps a ledger of every side effect it applied, for assertions.
 * Not imported by the runtime.
 */
import { randomUUID } from "node:crypto";
import { orchestrationSource, stepSource } from "../../../operator/builders/keys.ts";
import type { Orchestration } from "../../../operator/crds/types.ts";
import { encodeRecord } from "../../events/binding.ts";
import type { CloudEvent } from "../../events/cloudevent.ts";
import type { SigningKey } from "../../events/keys.ts";
import { Signer, Verifier } from "../../events/signing.ts";
import { resultsTopic, stepTopic } from "../../events/topics.ts";
import type { TopicNamingOptions } from "../../events/topics.ts";
import type { TrustStore } from "../../events/trust-store.ts";
import type {
  IncomingRecord,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  OutgoingRecord,
} from "../../kafka/client.ts";

export interface ReceivedCommand {
  id: string;
  runId: string;
  step: string;
  action: "do" | "compensate";
  attempt: number;
  type: string;
  data: { input: Record<string, unknown>; steps: Record<string, unknown> };
  traceparent: string | undefined;
  receivedAt: number;
}

export type Behaviour =
  | { outcome: "completed"; output?: unknown }
  | { outcome: "failed"; errorType?: string; errorMessage?: string }
  /** Send nothing (a lost command, a crashed worker). */
  | { outcome: "silent" };

export interface ResponderOptions {
  kafka: KafkaClient;
  orchestration: Orchestration;
  naming: TopicNamingOptions;
  trust: TrustStore;
  /** Signs results. */
  key: SigningKey;
  /** Steps this worker handles (default: all). */
  steps?: string[];
  behaviour?: (command: ReceivedCommand) => Behaviour | Promise<Behaviour>;
  groupId?: string;
}

export class Responder {
  /** Every command received, duplicates included, in arrival order. */
  readonly received: ReceivedCommand[] = [];
  /** Commands acted upon (each (source, id) at most once). */
  readonly applied: ReceivedCommand[] = [];
  /** Commands refused by verification, with the reason. */
  readonly refused: string[] = [];
  duplicates = 0;
  /** Errors while answering (publishing failed). */
  readonly errors: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly seen = new Set<string>();
  private consumer: KafkaConsumer | undefined;
  private producer: KafkaProducer | undefined;
  /** Like the worker SDK: results answered concurrently share a produce request (kafka/coalesce.ts). */
  private readonly writeResults = (topic: string, records: OutgoingRecord[]) => {
    if (!this.producer) throw new Error("responder not started");
    return this.producer.send(topic, records);
  };
  private readonly namespace: string;
  private readonly name: string;
  private readonly signer: Signer;
  private readonly verifier: Verifier;

  constructor(private readonly opts: ResponderOptions) {
    this.namespace = opts.orchestration.metadata.namespace ?? "";
    this.name = opts.orchestration.metadata.name ?? "";
    this.signer = new Signer(opts.key);
    this.verifier = new Verifier(opts.trust, {
      policy: opts.orchestration.spec.signing?.policy ?? "required",
      requiredExtensions: ["partitionkey", "step", "attempt", "action", "destination"],
    });
  }

  async start(): Promise<void> {
    const ref = { namespace: this.namespace, orchestration: this.name };
    const steps = this.opts.steps ?? this.opts.orchestration.spec.steps.map((s) => s.name);
    const topics = steps.map((s) => stepTopic(ref, s, this.opts.naming));
    this.producer = this.opts.kafka.producer();
    await this.producer.connect();
    this.consumer = this.opts.kafka.consumer({
      groupId: this.opts.groupId ?? `responder-${randomUUID()}`,
      sessionTimeoutMs: 6_000,
    });
    await this.consumer.connect();
    await this.consumer.subscribe(topics, true);
    const joined = this.consumer.onceJoined();
    await this.consumer.runEach((record) => this.handle(record), { partitionsConsumedConcurrently: 4 });
    await joined;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.consumer?.close();
    await this.producer?.close();
  }

  /** How many times a side effect was applied, by `runId/step/action`. */
  effectCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const c of this.applied) {
      const k = `${c.runId}/${c.step}/${c.action}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return counts;
  }

  /** Commands applied for one run, as `step:action:attempt`, in order. */
  log(runId: string): string[] {
    return this.applied.filter((c) => c.runId === runId).map((c) => `${c.step}:${c.action}:${c.attempt}`);
  }

  private async handle(record: IncomingRecord): Promise<void> {
    const verified = this.verifier.verifyRecord(record);
    if (!verified.ok) {
      this.refused.push(`${verified.reason}: ${verified.message}`);
      return;
    }
    const event = verified.event;
    const ext = event.extensions;
    if (event.source !== orchestrationSource(this.namespace, this.name) || ext.destination !== record.topic) {
      this.refused.push(`wrong source or destination: ${event.source} ${ext.destination ?? ""}`);
      return;
    }
    const command: ReceivedCommand = {
      id: event.id,
      runId: ext.runid ?? ext.partitionkey ?? "",
      step: ext.step ?? "",
      action: ext.action === "compensate" ? "compensate" : "do",
      attempt: Number(ext.attempt ?? "1"),
      type: event.type,
      data: JSON.parse(event.data?.toString("utf8") ?? "null") as ReceivedCommand["data"],
      traceparent: record.headers.traceparent?.toString("utf8"),
      receivedAt: Date.now(),
    };
    this.received.push(command);
    const dedupeKey = `${event.source}\u0000${event.id}`;
    if (this.seen.has(dedupeKey)) {
      this.duplicates++;
      return;
    }
    this.seen.add(dedupeKey);
    this.applied.push(command);
    // Answer in the background: a behaviour that holds one command must not stall the topic.
    const answering = this.answer(command).catch((err: unknown) => {
      this.errors.push(err instanceof Error ? err.message : String(err));
    });
    this.inFlight.add(answering);
    void answering.finally(() => this.inFlight.delete(answering));
  }

  private async answer(command: ReceivedCommand): Promise<void> {
    const behaviour = (await this.opts.behaviour?.(command)) ?? {
      outcome: "completed",
      output: { step: command.step },
    };
    if (behaviour.outcome === "silent") return;
    await this.publish(command, behaviour);
  }

  /** Publishes a result for `command` (tests also call it to inject results). */
  async publish(
    command: Pick<ReceivedCommand, "id" | "runId" | "step" | "action" | "attempt">,
    behaviour: Exclude<Behaviour, { outcome: "silent" }>,
    opts: { signer?: Signer; source?: string } = {},
  ): Promise<void> {
    const data =
      behaviour.outcome === "completed"
        ? (behaviour.output ?? null)
        : {
            errorType: behaviour.errorType ?? "TestFailure",
            errorMessage: behaviour.errorMessage ?? "failed on purpose",
            attempts: 1,
          };
    const event: CloudEvent = {
      id: randomUUID(),
      source: opts.source ?? stepSource(this.namespace, this.name, command.step),
      specversion: "1.0",
      type: behaviour.outcome === "completed" ? "io.eventloom.step.completed" : "io.eventloom.step.failed",
      datacontenttype: "application/json",
      subject: command.step,
      time: new Date().toISOString(),
      extensions: {
        partitionkey: command.runId,
        runid: command.runId,
        step: command.step,
        attempt: String(command.attempt),
        action: command.action,
        causationid: command.id,
      },
      data: Buffer.from(JSON.stringify(data), "utf8"),
    };
    const m = encodeRecord((opts.signer ?? this.signer).sign(event));
    const topic = resultsTopic({ namespace: this.namespace, orchestration: this.name }, this.opts.naming);
    if (!this.producer) throw new Error("responder not started");
    await this.writeResults(topic, [{ key: m.key, value: m.value, headers: m.headers }]);
  }
}
