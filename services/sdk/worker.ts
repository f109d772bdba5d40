/**
 * `defineWorker`: what a worker does for each of its steps. `runWorker` (runner.ts) runs it.
 */
import type { CloudEvent } from "../events/cloudevent.ts";
import { WorkerConfigError } from "./errors.ts";
import type { WorkerLogger } from "./logger.ts";

/** `do` runs the step; `compensate` undoes it (the engine sends the step's `compensation` type). */
export type StepAction = "do" | "compensate";

/** What a handler receives. The event has been verified before anything was parsed. */
export interface StepContext<Data = unknown> {
  /** The verified command: attributes as they travelled, data as raw bytes. */
  readonly event: CloudEvent;
  /** The command's data parsed as JSON (`null` when it has none): `{input, steps}` for orchestrated runs. */
  readonly data: Data;
  /** The run id (`runid`/`partitionkey`); empty string when the command carries none. */
  readonly runId: string;
  /** The step name (from the topic the command was read from). */
  readonly step: string;
  /** The engine's 1-based attempt of this step (`attempt` extension; 1 when absent). */
  readonly attempt: number;
  /** Retries of this delivery made by the SDK so far (0 on the first delivery). */
  readonly retryCount: number;
  readonly action: StepAction;
  /** Aborted when the worker is shutting down and the grace period ran out: stop, the command will be redelivered. */
  readonly signal: AbortSignal;
  /** A logger bound to this command (run, step, event id). */
  readonly log: WorkerLogger;
}

/** A step's handlers. `handle` returns the step's output (any JSON value), published as the result. */
export interface StepHandlers<Data = unknown, Output = unknown> {
  handle(ctx: StepContext<Data>): Output | Promise<Output>;
  /** Undoes the step. Without it, a compensation command fails the compensation (non-retryable). */
  compensate?(ctx: StepContext<Data>): unknown;
}

/** Tuning of the runtime; every field has a default. */
export interface WorkerOptions {
  /** Defaults to JSON lines on stdout (pino), level from `LOG_LEVEL`. */
  logger?: WorkerLogger;
  /** Decides whether a failure is worth retrying; default: everything but `NonRetryableError`. */
  isRetryable?: (err: unknown) => boolean;
  dedupe?: {
    /** Commands remembered at most (oldest forgotten first); default 200,000. */
    maxEntries?: number;
  };
  /** How long a SIGTERM waits for in-flight handlers before aborting their signal; default 25 s. */
  shutdownGraceMs?: number;
  /** How long to wait at start for the topics to exist and have leaders; default 60 s. */
  topicWaitMs?: number;
  /** How often the trust document is re-read when no file event arrives; default 10 s. */
  trustPollIntervalMs?: number;
  /** Start OpenTelemetry from the `OTEL_*` environment; default true. */
  tracing?: boolean;
  /** Stop gracefully on SIGTERM and SIGINT; default true. */
  handleSignals?: boolean;
}

/** Input of {@link defineWorker}. */
export interface WorkerSpec extends WorkerOptions {
  /** Handlers by step name (the Orchestration's step names, e.g. `create-order`). */
  steps?: Readonly<Record<string, StepHandlers>>;
  /** Handles any bound step not listed in `steps` (e.g. a generic choreography worker). */
  handle?: StepHandlers["handle"];
  compensate?: StepHandlers["compensate"];
}

/** A validated worker, ready for `runWorker`. */
export interface WorkerDefinition {
  readonly steps: Readonly<Record<string, StepHandlers>>;
  readonly fallback: StepHandlers | undefined;
  readonly options: Readonly<WorkerOptions>;
}

const STEP_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Declares a worker: handlers per step, plus options.
 *
 * ```ts
 * export default defineWorker({
 *   steps: {
 *     "reserve-inventory": {
 *       handle: async ({ data, runId }) => ({ reservationId: await reserve(runId, data.input) }),
 *       compensate: async ({ runId }) => release(runId),
 *     },
 *   },
 * });
 * ```
 * @throws WorkerConfigError for a step name that cannot be an Orchestration step or a missing handler.
 */
export function defineWorker(spec: WorkerSpec): WorkerDefinition {
  const { steps = {}, handle, compensate, ...options } = spec;
  for (const [name, handlers] of Object.entries(steps)) {
    if (!STEP_NAME.test(name)) {
      throw new WorkerConfigError(
        `step "${name}" is not a valid step name (a DNS-1123 label, e.g. "create-order")`,
      );
    }
    if (typeof handlers?.handle !== "function")
      throw new WorkerConfigError(`step "${name}" has no handle(ctx) function`);
    if (handlers.compensate !== undefined && typeof handlers.compensate !== "function") {
      throw new WorkerConfigError(`step "${name}": compensate must be a function`);
    }
  }
  if (handle === undefined && compensate !== undefined) {
    throw new WorkerConfigError("a top-level compensate needs a top-level handle next to it");
  }
  if (handle === undefined && Object.keys(steps).length === 0) {
    throw new WorkerConfigError("defineWorker needs `steps` (handlers by step name) or a top-level `handle`");
  }
  const fallback: StepHandlers | undefined =
    handle === undefined ? undefined : compensate === undefined ? { handle } : { handle, compensate };
  return Object.freeze({
    steps: Object.freeze({ ...steps }),
    fallback,
    options: Object.freeze({ ...options }),
  });
}

/** The handlers for `step`, or undefined when the worker has none. */
export function handlersFor(definition: WorkerDefinition, step: string): StepHandlers | undefined {
  return Object.hasOwn(definition.steps, step) ? definition.steps[step] : definition.fallback;
}
