/**
 * `npm run operator`: runs the Eventloom operator against $KUBECONFIG (or the
 * in-cluster service account) and $KAFKA_BROKERS.
 */
import { Operator } from "./manager.ts";
import { loadKubeConnection } from "./kube-client/config.ts";
import { KubeClient } from "./kube-client/client.ts";
import { createLogger } from "./runtime/log.ts";
import { brokersFromEnv } from "../services/kafka/client.ts";
import { parseDuration } from "../services/events/retry.ts";

const log = createLogger("eventloom-operator");

function durationEnv(name: string, fallback: string): number {
  return parseDuration(process.env[name] ?? fallback, name);
}

async function main(): Promise<void> {
  const connection = await loadKubeConnection();
  log.info({ server: connection.server, from: connection.source }, "Kubernetes API");
  const client = new KubeClient(connection);
  let stopping = false;
  const operator = new Operator(
    client,
    {
      kafkaBrokers: brokersFromEnv(),
      ...(process.env.EVENTLOOM_WATCH_NAMESPACE
        ? { watchNamespace: process.env.EVENTLOOM_WATCH_NAMESPACE }
        : {}),
      ...(process.env.EVENTLOOM_WORKER_KAFKA_BROKERS
        ? { workerKafkaBrokers: process.env.EVENTLOOM_WORKER_KAFKA_BROKERS }
        : {}),
      ...(process.env.EVENTLOOM_WORKER_OTLP_ENDPOINT
        ? { workerOtlpEndpoint: process.env.EVENTLOOM_WORKER_OTLP_ENDPOINT }
        : {}),
      ...(process.env.EVENTLOOM_TOPIC_PREFIX ? { topicPrefix: process.env.EVENTLOOM_TOPIC_PREFIX } : {}),
      leaseNamespace: process.env.EVENTLOOM_LEASE_NAMESPACE ?? process.env.POD_NAMESPACE ?? "default",
      leaseName: process.env.EVENTLOOM_LEASE_NAME ?? "eventloom-operator",
      healthPort: Number(process.env.HEALTH_PORT ?? 8081),
      healthHost: process.env.HEALTH_HOST ?? "0.0.0.0",
      resyncMs: durationEnv("EVENTLOOM_RESYNC", "30s"),
      finalizerTimeoutMs: durationEnv("EVENTLOOM_FINALIZER_TIMEOUT", "5m"),
      leaseDurationMs: durationEnv("EVENTLOOM_LEASE_DURATION", "10s"),
      renewDeadlineMs: durationEnv("EVENTLOOM_RENEW_DEADLINE", "7s"),
      retryPeriodMs: durationEnv("EVENTLOOM_RETRY_PERIOD", "2s"),
    },
    log,
    () => {
      // Giving the lease up on SIGTERM is not losing it: the shutdown below exits 0.
      if (stopping) return;
      // Like controller-runtime: a replica that lost the lease exits and restarts clean.
      process.exit(1);
    },
  );
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    operator
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  await operator.start();
}

main().catch((err: unknown) => {
  log.fatal({ err }, "operator failed to start");
  process.exit(1);
});
