/**
 * Probes and metrics, unauthenticated (kubelet and Prometheus call them; keep them off the public
 * ingress with a NetworkPolicy or the Service's port layout).
 *
 * - `/healthz`: the process serves requests (liveness; Kafka being down is not a reason to restart).
 * - `/readyz`: Kafka producer connected and the Orchestrations loaded (readiness).
 * - `/metrics`: Prometheus text format.
 */
import type { FastifyInstance } from "fastify";
import { healthSchema } from "../schemas.ts";

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  const { kafka, orchestrations, metrics } = app.gateway;

  app.get(
    "/healthz",
    { schema: { summary: "Liveness", tags: ["operations"], response: { 200: healthSchema } } },
    async () => ({
      status: "ok",
    }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        summary: "Readiness",
        tags: ["operations"],
        response: { 200: healthSchema, 503: healthSchema },
      },
    },
    async (_request, reply) => {
      const checks = {
        kafka: { ok: kafka.ready(), detail: kafka.readinessDetail() },
        orchestrations: {
          ok: orchestrations.synced(),
          detail: orchestrations.synced()
            ? "Orchestrations loaded"
            : "listing Orchestrations from the Kubernetes API",
        },
      };
      const ok = checks.kafka.ok && checks.orchestrations.ok;
      return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "unavailable", checks });
    },
  );

  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics",
        tags: ["operations"],
        produces: ["text/plain"],
        response: { 200: { type: "string", description: "Prometheus text exposition format." } },
      },
    },
    async (_request, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
