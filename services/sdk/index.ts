/**
 * The Eventloom worker SDK: `defineWorker` + `runWorker`. See docs/sdk.md.
 */
export { defineWorker, handlersFor } from "./worker.ts";
export type {
  StepAction,
  StepContext,
  StepHandlers,
  WorkerDefinition,
  WorkerOptions,
  WorkerSpec,
} from "./worker.ts";
export { runWorker } from "./runner.ts";
export type { RunningWorker, WorkerStats } from "./runner.ts";
export { isNonRetryable, NonRetryableError, WorkerConfigError } from "./errors.ts";
export { parseWorkerEnv, retryDelayOfTopic } from "./env.ts";
export type { RetryTier, WorkerEnv } from "./env.ts";
export {
  DEAD_LETTER_HEADERS,
  INVALID_CLOUD_EVENT,
  readDeadLetterEnvelope,
  RETRY_HEADERS,
  SIGNATURE_ERROR,
} from "./delivery.ts";
export type { DeadLetterEnvelope, FailedAttempt } from "./delivery.ts";
export { STEP_COMPLETED, STEP_FAILED } from "./results.ts";
export type { StepFailedData } from "./results.ts";
export { orchestrationSource, stepSource } from "./command.ts";
export { defaultLogger, silentLogger } from "./logger.ts";
export type { LogFields, WorkerLogger } from "./logger.ts";
