/** The operator's Prometheus metrics, in one registry served at /metrics. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createOperatorMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "eventloom_operator_" });
  return {
    registry,
    reconciles: new Counter({
      name: "eventloom_operator_reconciles_total",
      help: "Reconciles run, by resource kind and outcome (success, error).",
      labelNames: ["kind", "outcome"] as const,
      registers: [registry],
    }),
    reconcileErrors: new Counter({
      name: "eventloom_operator_reconcile_errors_total",
      help: "Reconciles that failed, by resource kind.",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: "eventloom_operator_reconcile_duration_seconds",
      help: "Time one reconcile took, by resource kind.",
      labelNames: ["kind"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    kubeRequests: new Counter({
      name: "eventloom_operator_kube_requests_total",
      help: "Requests sent to the Kubernetes API (watches excepted), by verb and resource as the API server names them.",
      labelNames: ["verb", "resource"] as const,
      registers: [registry],
    }),
    reconcilePhase: new Histogram({
      name: "eventloom_operator_reconcile_phase_seconds",
      help: "Time the steps of a reconcile took, by resource kind and step (where a slow reconcile waits).",
      labelNames: ["kind", "phase"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "eventloom_operator_queue_depth",
      help: "Keys waiting or being reconciled, by resource kind.",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    isLeader: new Gauge({
      name: "eventloom_operator_leader",
      help: "1 when this replica holds the leader lease.",
      registers: [registry],
    }),
    workerLag: new Gauge({
      name: "eventloom_worker_lag",
      help: "Records not yet processed by a Worker's consumer group, by partition.",
      labelNames: ["namespace", "worker", "topic", "partition"] as const,
      registers: [registry],
    }),
    autoscalerPollDuration: new Histogram({
      name: "eventloom_autoscaler_poll_duration_seconds",
      help: "Time one lag poll of one Worker took (Kafka reads, decision, scale patch, status).",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    autoscalerKafkaRequests: new Counter({
      name: "eventloom_autoscaler_kafka_requests_total",
      help: "Kafka requests sent by lag polls.",
      registers: [registry],
    }),
    workerDesiredReplicas: new Gauge({
      name: "eventloom_worker_desired_replicas",
      help: "Replicas the lag autoscaler asks for.",
      labelNames: ["namespace", "worker"] as const,
      registers: [registry],
    }),
  };
}

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;
