/**
 * Test kit: one engine replica in the test process (view, engine, run API on
 * fastify for `inject()`), against the real stack. Not imported by the runtime.
 */
import { Kube } from "../../../operator/kube.ts";
import type { KubeClient } from "../../../operator/kube-client/client.ts";
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";
import { EventRecorder } from "../../../operator/runtime/events.ts";
import { createLogger } from "../../../operator/runtime/log.ts";
import type { TopicNamingOptions } from "../../events/topics.ts";
import type { KafkaClient, KafkaProducer } from "../../kafka/client.ts";
import { OrchestrationRegistry } from "../../runtime/registry.ts";
import { runApi } from "../api.ts";
import { Engine, ensureEngineTopics } from "../engine.ts";
import { createEngineMetrics } from "../metrics.ts";
import type { EngineMetrics } from "../metrics.ts";
import { engineStateTopic } from "../topics.ts";
import { StateView } from "../view.ts";

export interface RunningEngine {
  engine: Engine;
  view: StateView;
  registry: OrchestrationRegistry;
  app: FastifyInstance;
  metrics: EngineMetrics;
  producer: KafkaProducer;
  stop(): Promise<void>;
}

export async function startEngine(args: {
  kafka: KafkaClient;
  kube: KubeClient;
  namespace: string;
  naming: TopicNamingOptions;
  partitions?: number;
  sessionTimeoutMs?: number;
  instanceId?: string;
}): Promise<RunningEngine> {
  const log = createLogger(
    `engine-test${args.instanceId ? `-${args.instanceId}` : ""}`,
    process.env.LOG_LEVEL ?? "warn",
  );
  const partitions = args.partitions ?? 2;
  await ensureEngineTopics(args.kafka, { naming: args.naming, partitions });
  const registry = new OrchestrationRegistry(args.kube, {
    namespace: args.namespace,
    onError: (what, err) => log.warn({ err }, what),
  });
  await registry.start();
  const view = new StateView(args.kafka, {
    topic: engineStateTopic(args.naming),
    log,
    sessionTimeoutMs: 6_000,
  });
  await view.start();
  await view.catchUp(partitions);
  const metrics = createEngineMetrics();
  const engine = new Engine({
    kafka: args.kafka,
    catalog: registry,
    view,
    log,
    metrics,
    naming: args.naming,
    partitions,
    sessionTimeoutMs: args.sessionTimeoutMs ?? 6_000,
    restoreGraceMs: 500,
    events: new EventRecorder(new Kube(args.kube).events, "eventloom-engine", log),
    ...(args.instanceId ? { instanceId: args.instanceId } : {}),
  });
  await engine.start();
  const producer = args.kafka.producer();
  await producer.connect();
  const app = Fastify({ logger: false });
  await app.register(runApi, {
    orchestrations: registry,
    runs: view,
    send: (t, r) => producer.send(t, r),
    naming: args.naming,
  });
  await app.ready();
  return {
    engine,
    view,
    registry,
    app,
    metrics,
    producer,
    async stop() {
      await app.close();
      await engine.stop();
      await producer.close();
      await view.stop();
      await registry.stop();
    },
  };
}
