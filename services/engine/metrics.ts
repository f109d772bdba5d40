/** The engine's Prometheus metrics, in a registry of their own (the gateway can merge it into its /metrics). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createEngineMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "eventloom_engine_" });
  return {
    registry,
    runsStarted: new Counter({
      name: "eventloom_engine_runs_started_total",
      help: "Runs started, by namespace and Orchestration.",
      labelNames: ["namespace", "orchestration"] as const,
      registers: [registry],
    }),
    runsFinished: new Counter({
      name: "eventloom_engine_runs_finished_total",
      help: "Runs that reached a final state, by namespace, Orchestration and state.",
      labelNames: ["namespace", "orchestration", "state"] as const,
      registers: [registry],
    }),
    compensationFailures: new Counter({
      name: "eventloom_engine_compensation_failures_total",
      help: "Compensations that failed for good (the run ends CompensationFailed and is dead-lettered).",
      labelNames: ["namespace", "orchestration", "step"] as const,
      registers: [registry],
    }),
    resultsRefused: new Counter({
      name: "eventloom_engine_results_refused_total",
      help: "Results refused and dead-lettered, by error type and reason (e.g. SignatureError, not-authorized).",
      labelNames: ["namespace", "orchestration", "error_type", "reason"] as const,
      registers: [registry],
    }),
    inputsIgnored: new Counter({
      name: "eventloom_engine_inputs_ignored_total",
      help: "Inbox records and timers that changed nothing (duplicates, stale attempts, unknown runs), by reason.",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    commandsSent: new Counter({
      name: "eventloom_engine_commands_sent_total",
      help: "Commands sent to step topics, by action (do, compensate) and cause (dispatch, restore).",
      labelNames: ["action", "cause"] as const,
      registers: [registry],
    }),
    stateWrites: new Counter({
      name: "eventloom_engine_state_writes_total",
      help: "Run states written to the state topic.",
      registers: [registry],
    }),
    ownedPartitions: new Gauge({
      name: "eventloom_engine_owned_partitions",
      help: "Inbox partitions this replica owns.",
      registers: [registry],
    }),
    activeRuns: new Gauge({
      name: "eventloom_engine_active_runs",
      help: "Runs not finished yet, as this replica's view sees them.",
      registers: [registry],
    }),
    restoreSeconds: new Histogram({
      name: "eventloom_engine_restore_seconds",
      help: "Time to restore one partition after it was assigned (read its state, re-arm timers, re-send commands).",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    forwarded: new Counter({
      name: "eventloom_engine_forwarded_total",
      help: "Records forwarded from Orchestration topics to the engine inbox.",
      registers: [registry],
    }),
    appliedDirectly: new Counter({
      name: "eventloom_engine_applied_directly_total",
      help: "Records from Orchestration topics applied by the replica owning their run, without the inbox copy.",
      registers: [registry],
    }),
  };
}

export type EngineMetrics = ReturnType<typeof createEngineMetrics>;
