/**
 * The gateway's Prometheus metrics, in a registry of its own (so several apps in one process, as in
 * tests, do not collide). Labels stay low-cardinality: the route template, never the raw URL.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"method" | "route" | "status">;
  readonly requestDuration: Histogram<"method" | "route">;
  readonly produceDuration: Histogram<"outcome">;
  readonly events: Counter<"outcome">;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.requests = new Counter({
      name: "eventloom_gateway_http_requests_total",
      help: "HTTP requests answered, by method, route template and status code.",
      labelNames: ["method", "route", "status"],
      registers: [this.registry],
    });
    this.requestDuration = new Histogram({
      name: "eventloom_gateway_http_request_duration_seconds",
      help: "Time from receiving a request to answering it.",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.produceDuration = new Histogram({
      name: "eventloom_gateway_produce_duration_seconds",
      help: "Time from handing records to the Kafka producer to the acks=all acknowledgement (or failure).",
      labelNames: ["outcome"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.events = new Counter({
      name: "eventloom_gateway_events_total",
      help: "Ingress events by outcome: accepted (written), duplicate (answered from the idempotency window), refused (4xx), failed (5xx).",
      labelNames: ["outcome"],
      registers: [this.registry],
    });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "eventloom_gateway_" });
  }
}
