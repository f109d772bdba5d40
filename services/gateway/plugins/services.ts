/**
 * The gateway's shared clients (Kafka, the Orchestration directory, the token table) and per-app state
 * (metrics, schema cache, idempotency window), decorated onto the root instance with fastify-plugin so
 * every route plugin sees them, and closed when the app closes.
 */
import fp from "fastify-plugin";
import type { FastifyPluginAsync } from "fastify";
import type { GatewayConfig } from "../config.ts";
import type { Accepted } from "../ingress/accept.ts";
import { IdempotencyCache } from "../ingress/idempotency.ts";
import { InputSchemas } from "../ingress/input-schema.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { GatewayKafka, OrchestrationDirectory, Principal, TokenAuthenticator } from "../ports.ts";

export interface GatewayServices {
  config: GatewayConfig;
  kafka: GatewayKafka;
  orchestrations: OrchestrationDirectory;
  /** Undefined when authentication is off. */
  tokens: TokenAuthenticator | undefined;
  metrics: GatewayMetrics;
  schemas: InputSchemas;
  idempotency: IdempotencyCache<Accepted>;
}

declare module "fastify" {
  interface FastifyInstance {
    gateway: GatewayServices;
  }
  interface FastifyRequest {
    /** Who sent the request; set by the auth hook on API routes. */
    principal: Principal | undefined;
  }
}

export interface ServicesPluginOptions {
  services: Omit<GatewayServices, "schemas" | "idempotency">;
  now?: () => number;
}

const servicesPlugin: FastifyPluginAsync<ServicesPluginOptions> = async (app, opts) => {
  const { config } = opts.services;
  const services: GatewayServices = {
    ...opts.services,
    schemas: new InputSchemas(),
    idempotency: new IdempotencyCache<Accepted>(
      config.idempotencyWindowMs,
      config.idempotencyMaxEntries,
      opts.now,
    ),
  };
  app.decorate("gateway", services);
  app.decorateRequest("principal", undefined);
  app.addHook("onClose", async () => {
    await Promise.allSettled([
      services.kafka.close(),
      services.orchestrations.close(),
      services.tokens?.close(),
    ]);
  });
};

export default fp(servicesPlugin, { name: "eventloom-gateway-services", fastify: "5.x" });
