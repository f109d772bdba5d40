/**
 * `npm run engine`: one engine replica. Reads Orchestrations (and their keys
 * and trust) from the Kubernetes API ($KUBECONFIG or in-cluster), drives runs
 * through Kafka ($KAFKA_BROKERS), and serves the run API with /healthz,
 * /readyz and /metrics on $ENGINE_PORT (default 8081). Configuration: config.ts.
 */
import { hostname } from "node:os";
import { Kube } from "../../operator/kube.ts";
import { KubeClient } from "../../operator/kube-client/client.ts";
import { loadKubeConnection } from "../../operator/kube-client/config.ts";
import Fastify from "fastify";
import { EventRecorder } from "../../operator/runtime/events.ts";
import { createLogger } from "../../operator/runtime/log.ts";
import { KafkaClient } from "../kafka/client.ts";
import { OrchestrationRegistry } from "../runtime/registry.ts";
import { startTracing } from "../tracing/index.ts";
import { runApi } from "./api.ts";
import { configFromEnv } from "./config.ts";
import { Engine, ensureEngineTopics } from "./engine.ts";
import { createEngineMetrics } from "./metrics.ts";
import { engineStateTopic } from "./topics.ts";
import { StateView } from "./view.ts";

async function main(): Promise<void> {
  const log = createLogger("eventloom-engine");
  const config = configFromEnv();
  const tracing = startTracing({ serviceName: "eventloom-engine" });
  const naming = { prefix: config.topicPrefix };
  const kafka = new KafkaClient({
    brokers: config.brokers,
    clientId: `eventloom-engine-${hostname()}`,
    onLog: (level, message, extra) => log[level === "info" ? "debug" : level]({ kafka: extra }, message),
  });
  const kube = new KubeClient(await loadKubeConnection());
  const registry = new OrchestrationRegistry(kube, {
    ...(config.namespace ? { namespace: config.namespace } : {}),
    onError: (what, err) => log.warn({ err }, `registry: ${what} failed`),
  });
  const metrics = createEngineMetrics({ defaultMetrics: true });

  const { partitions } = await ensureEngineTopics(kafka, {
    naming,
    partitions: config.partitions,
    ...(config.replicationFactor !== undefined ? { replicationFactor: config.replicationFactor } : {}),
  });
  await registry.start();
  const view = new StateView(kafka, {
    topic: engineStateTopic(naming),
    log,
    sessionTimeoutMs: config.sessionTimeoutMs,
  });
  await view.start();
  await view.catchUp(partitions);
  log.info({ runs: view.list().length, partitions }, "read the engine state topic");

  const engine = new Engine({
    kafka,
    catalog: registry,
    view,
    log,
    metrics,
    naming,
    partitions,
    ...(config.replicationFactor !== undefined ? { replicationFactor: config.replicationFactor } : {}),
    sessionTimeoutMs: config.sessionTimeoutMs,
    restoreGraceMs: config.restoreGraceMs,
    directResults: config.directResults,
    runRetentionMs: config.runRetentionMs,
    events: new EventRecorder(new Kube(kube).events, "eventloom-engine", log),
    instanceId: hostname(),
  });
  await engine.start();

  const producer = kafka.producer();
  await producer.connect();
  const app = Fastify({ logger: false });
  app.get("/healthz", async (_req, reply) => reply.type("text/plain").send("ok"));
  app.get("/readyz", async (_req, reply) =>
    engine.ready && view.ready
      ? reply.type("text/plain").send("ok")
      : reply.code(503).type("text/plain").send("not ready"),
  );
  app.get("/metrics", async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  await app.register(runApi, {
    orchestrations: registry,
    runs: view,
    send: (topic, records) => producer.send(topic, records),
    naming,
  });
  await app.listen({ port: config.port, host: config.host });
  log.info({ port: config.port, partitions }, "engine started");

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "engine stopping");
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await app.close().catch(() => undefined);
    await engine.stop().catch((err: unknown) => log.warn({ err }, "engine stop failed"));
    await producer.close().catch(() => undefined);
    await view.stop().catch(() => undefined);
    await registry.stop().catch(() => undefined);
    await tracing.shutdown().catch(() => undefined);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
