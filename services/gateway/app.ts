/**
 * The gateway as a fastify app: `build(opts)` wires the shared clients (passed in, so tests give fakes),
 * the error shape (RFC 9457 problem details everywhere), OpenAPI, metrics and the route plugins.
 * `listen()` is main.ts's business only.
 *
 *   root ── services (fastify-plugin: kafka, orchestrations, tokens, metrics, caches)
 *        ├─ swagger (fastify-plugin)
 *        ├─ health: /healthz /readyz /metrics          (no auth)
 *        ├─ docs:   /docs /docs/json                   (no auth)
 *        └─ api (encapsulated: auth hook, rate limit, raw-body parser)
 *             ├─ events:      POST /events, POST /namespaces/:ns/orchestrations/:name/events
 *             └─ deadletters: GET|DELETE .../deadletters, GET .../deadletters/:id, POST .../:id/replay
 */
import swagger from "@fastify/swagger";
import Fastify from "fastify";
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import { GATEWAY_DEFAULTS } from "./config.ts";
import type { GatewayConfig } from "./config.ts";
import { GatewayMetrics } from "./metrics.ts";
import { protect } from "./plugins/auth.ts";
import servicesPlugin from "./plugins/services.ts";
import type { GatewayKafka, OrchestrationDirectory, TokenAuthenticator } from "./ports.ts";
import { problemErrorHandler, problemNotFoundHandler, problemSchema } from "./problem.ts";
import { deadLetterRoutes } from "./routes/deadletters.ts";
import { docsRoutes } from "./routes/docs.ts";
import { eventRoutes } from "./routes/events.ts";
import { healthRoutes } from "./routes/health.ts";
import { runRoutes } from "./routes/runs.ts";

export interface BuildOptions {
  /** Overrides of the defaults (see config.ts); `auth` defaults to `token`. */
  config?: Partial<GatewayConfig>;
  kafka: GatewayKafka;
  orchestrations: OrchestrationDirectory;
  /** Required unless `config.auth` is `none`. */
  tokens?: TokenAuthenticator;
  logger?: FastifyServerOptions["logger"];
  /** Export Node's process metrics on /metrics too (main sets this; tests leave it off). */
  defaultMetrics?: boolean;
  /** Clock of the idempotency window (tests). */
  now?: () => number;
  /** Base URL of the engine's run API; when set, the gateway serves the run API by forwarding to it. */
  engineUrl?: string;
}

/** The complete configuration from partial overrides. */
export function withDefaults(config: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    port: GATEWAY_DEFAULTS.port,
    host: GATEWAY_DEFAULTS.host,
    auth: "token",
    tokensFile: undefined,
    bodyLimitBytes: GATEWAY_DEFAULTS.bodyLimitBytes,
    rateLimitMax: GATEWAY_DEFAULTS.rateLimitMax,
    rateLimitWindowMs: GATEWAY_DEFAULTS.rateLimitWindowMs,
    idempotencyWindowMs: GATEWAY_DEFAULTS.idempotencyWindowMs,
    idempotencyMaxEntries: GATEWAY_DEFAULTS.idempotencyMaxEntries,
    produceTimeoutMs: GATEWAY_DEFAULTS.produceTimeoutMs,
    retryAfterSeconds: GATEWAY_DEFAULTS.retryAfterSeconds,
    deadLetterMaxRecords: GATEWAY_DEFAULTS.deadLetterMaxRecords,
    deadLetterCatchUpTimeoutMs: GATEWAY_DEFAULTS.deadLetterCatchUpTimeoutMs,
    deadLetterIdleMs: GATEWAY_DEFAULTS.deadLetterIdleMs,
    topicPrefix: GATEWAY_DEFAULTS.topicPrefix,
    namespace: undefined,
    ...config,
  };
}

export async function build(opts: BuildOptions): Promise<FastifyInstance> {
  const config = withDefaults(opts.config);
  if (config.auth === "token" && opts.tokens === undefined) {
    throw new Error(
      "build(): authentication is on (auth: token) but no tokens were given; pass tokens or set auth: none",
    );
  }
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: config.bodyLimitBytes,
    // Request ids in logs and problems; keep fastify's defaults otherwise.
    requestIdHeader: "x-request-id",
    ajv: { customOptions: { removeAdditional: false } },
  });

  app.addSchema(problemSchema);
  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler(problemNotFoundHandler);

  await app.register(servicesPlugin, {
    services: {
      config,
      kafka: opts.kafka,
      orchestrations: opts.orchestrations,
      tokens: config.auth === "none" ? undefined : opts.tokens,
      metrics: new GatewayMetrics({ defaultMetrics: opts.defaultMetrics ?? false }),
    },
    ...(opts.now ? { now: opts.now } : {}),
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Eventloom gateway",
        description:
          "CloudEvents ingress and dead-letter API of Eventloom. Errors are RFC 9457 problem details. See docs/gateway.md.",
        version: "v1alpha1",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
      tags: [
        { name: "events", description: "CloudEvents ingress" },
        { name: "dead letters", description: "Dead-letter topic of an Orchestration" },
        { name: "runs", description: "Saga runs (forwarded to the engine)" },
        { name: "operations", description: "Probes and metrics (no auth)" },
      ],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const { metrics } = app.gateway;
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.requestDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(healthRoutes);
  await app.register(docsRoutes);
  await app.register(async (api) => {
    await protect(api);
    await api.register(eventRoutes);
    await api.register(deadLetterRoutes);
    if (opts.engineUrl) await api.register(runRoutes, { engineUrl: opts.engineUrl });
  });
  return app;
}
