/**
 * Runs the gateway: `npm run gateway` (PORT, default 8080). Configuration is read from the environment
 * (services/gateway/config.ts, docs/gateway.md); Kafka and the Kubernetes API are connected in the
 * background, so the process answers /healthz at once and /readyz once both are there.
 */
import { KubeClient } from "../../operator/kube-client/client.ts";
import { loadKubeConnection } from "../../operator/kube-client/config.ts";
import { brokersFromEnv, KafkaClient } from "../kafka/client.ts";
import { OrchestrationRegistry } from "../runtime/registry.ts";
import { startTracing } from "../tracing/index.ts";
import { build } from "./app.ts";
import { TokenFile } from "./auth.ts";
import { configFromEnv } from "./config.ts";
import { KafkaBackend } from "./kafka-backend.ts";
import { RegistryDirectory } from "./registry-directory.ts";

async function main(): Promise<void> {
  const config = configFromEnv();
  const tracing = startTracing({ serviceName: process.env.OTEL_SERVICE_NAME ?? "eventloom-gateway" });
  const logger = { level: process.env.LOG_LEVEL ?? "info" };

  // Errors of background work, logged through the app's logger once it exists.
  let log: (what: string, err: unknown) => void = (what, err) =>
    console.error(`${what}: ${(err as Error).message}`);
  const onError = (what: string, err: unknown): void => log(what, err);

  const kafka = new KafkaBackend(
    new KafkaClient({
      brokers: brokersFromEnv(),
      clientId: "eventloom-gateway",
      connectionTimeoutMs: 2_000,
      requestTimeoutMs: 10_000,
      retries: 2,
    }),
    {
      deadLetterMaxRecords: config.deadLetterMaxRecords,
      deadLetterCatchUpTimeoutMs: config.deadLetterCatchUpTimeoutMs,
      deadLetterIdleMs: config.deadLetterIdleMs,
      onError,
    },
  );
  const kube = new KubeClient(await loadKubeConnection());
  const directory = new RegistryDirectory(
    new OrchestrationRegistry(kube, {
      ...(config.namespace ? { namespace: config.namespace } : {}),
      onError,
    }),
    { onError },
  );
  const tokens =
    config.auth === "token" && config.tokensFile ? new TokenFile(config.tokensFile, { onError }) : undefined;

  const app = await build({
    config,
    kafka,
    orchestrations: directory,
    ...(tokens ? { tokens } : {}),
    logger,
    defaultMetrics: true,
    ...(process.env.EVENTLOOM_ENGINE_URL ? { engineUrl: process.env.EVENTLOOM_ENGINE_URL } : {}),
  });
  log = (what, err) => app.log.warn({ err }, `failed to ${what}`);
  if (config.auth === "none")
    app.log.warn("authentication is OFF (EVENTLOOM_GATEWAY_AUTH=none): use this for local demos only");

  kafka.start();
  void directory.start();

  let closing = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, "shutting down");
    await app.close();
    await tracing.shutdown();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  await app.listen({ port: config.port, host: config.host });
}

main().catch((err: unknown) => {
  console.error(`eventloom gateway failed to start: ${(err as Error).message}`);
  process.exit(1);
});
