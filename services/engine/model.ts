/**
 * The shape of a run, as the engine keeps it in memory and writes it, one
 * record per run, to the compacted state topic (docs/engine.md).
 *
 * Times are epoch milliseconds: they are compared with the clock and stored
 * in JSON; the run API renders them as RFC 3339 strings.
 */
import type { Mode, OrchestrationSpec } from "../../operator/crds/types.ts";

/**
 * Version of the state record layout; bump when a change is not backward compatible. 2: a run record names
 * its spec by reference (a separate spec record) instead of carrying it; schema 1 records are still read.
 */
export const STATE_SCHEMA = 2;

export const RUN_STATUSES = [
  "Pending",
  "Running",
  "Compensating",
  "Succeeded",
  "Failed",
  "CompensationFailed",
  "Cancelled",
  "Undone",
] as const;
/**
 * - `Pending`: accepted, nothing dispatched yet (e.g. the Orchestration's signing key is not there yet).
 * - `Running`: steps are being dispatched.
 * - `Compensating`: a step failed for good, or a cancel or undo was asked for; completed steps are undone.
 * - `Succeeded`: every step completed.
 * - `Failed`: a step failed for good and every completed step was compensated.
 * - `CompensationFailed`: a compensation failed for good; a person must look (dead letter, Kubernetes Event).
 * - `Cancelled`: cancelled while running; completed steps were compensated.
 * - `Undone`: a succeeded run was undone on request (seed 003's manual undo).
 */
export type RunStatus = (typeof RUN_STATUSES)[number];

const TERMINAL: ReadonlySet<RunStatus> = new Set([
  "Succeeded",
  "Failed",
  "CompensationFailed",
  "Cancelled",
  "Undone",
]);

/** True when nothing more will happen to the run (except an undo of a `Succeeded` one). */
export function isTerminal(status: RunStatus): boolean {
  return TERMINAL.has(status);
}

/**
 * - `Pending`: not dispatched yet. `Skipped`: never dispatched because the run stopped first.
 * - `Running`: a `do` command is out (or waiting for its backoff before the next attempt).
 * - `Succeeded` / `Failed`: the worker answered completed / failed for good.
 * - `TimedOut`: every attempt timed out; the outcome is unknown, so the step is compensated like a completed one.
 * - `Compensating`, `Compensated`, `CompensationFailed`: the same for its compensation.
 */
export type StepStatus =
  | "Pending"
  | "Skipped"
  | "Running"
  | "Succeeded"
  | "Failed"
  | "TimedOut"
  | "Compensating"
  | "Compensated"
  | "CompensationFailed";

/** What a command asks of the worker. */
export type Action = "do" | "compensate";

export interface ErrorInfo {
  type: string;
  message: string;
}

/** One command sent for a step, and what became of it. */
export interface AttemptRecord {
  action: Action;
  /** 1-based, per action. */
  attempt: number;
  /** The command's CloudEvent id (deterministic: see `commandId`). */
  commandId: string;
  dispatchedAt: number;
  /** When the attempt times out. */
  deadlineAt: number;
  finishedAt?: number;
  outcome?: "completed" | "failed" | "timedOut";
  error?: ErrorInfo;
  /** CloudEvent id of the result that settled the attempt. */
  resultId?: string;
}

export interface StepRun {
  name: string;
  status: StepStatus;
  /** The action currently (or last) in progress. */
  action: Action;
  /** Current attempt number of `action`; 0 before the first dispatch. */
  attempt: number;
  /** While `Running`/`Compensating`: waiting for the result of `attempt`, or for the backoff before the next one. */
  waiting?: "result" | "backoff";
  /** When the engine acts next on this step: the attempt's deadline, or the end of the backoff. */
  dueAt?: number;
  attempts: AttemptRecord[];
  /** The worker's output (JSON) when the step completed. */
  output?: unknown;
  startedAt?: number;
  completedAt?: number;
  /** 1 for the first step to complete, 2 for the next, …: the order compensation reverses. */
  completionIndex?: number;
  compensatedAt?: number;
  error?: ErrorInfo;
}

/** The steps of a run that has not started any: every step Pending, no attempt yet. */
export function pendingSteps(spec: { steps: ReadonlyArray<{ name: string }> }): StepRun[] {
  return spec.steps.map((s) => ({ name: s.name, status: "Pending", action: "do", attempt: 0, attempts: [] }));
}

/** An event observed for a choreographed run. */
export interface ObservedEvent {
  id: string;
  source: string;
  type: string;
  /** The step whose source sent it, when it came from a step. */
  step?: string;
  /** The event's own `time` attribute, when it has one. */
  time?: string;
  observedAt: number;
}

/** A cancel or undo asked for through the API, and whether it was acted upon. */
export interface RunRequest {
  kind: "cancel" | "undo";
  id: string;
  at: number;
  accepted: boolean;
  reason?: string;
}

/** The trace of a run: every command carries this context (or a span below it). */
export interface RunTrace {
  traceparent: string;
  tracestate?: string;
  traceId: string;
}

export interface RunState {
  schema: typeof STATE_SCHEMA;
  runId: string;
  namespace: string;
  orchestration: string;
  /** Generation of the Orchestration the run started with; `spec` is that generation's spec. */
  generation: number;
  mode: Mode;
  spec: OrchestrationSpec;
  status: RunStatus;
  input: unknown;
  /** SHA-256 of the canonical input, to tell an idempotent retry from a reused key. */
  inputHash: string;
  idempotencyKey?: string;
  trace: RunTrace;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  /** Steps in the Orchestration's order. */
  steps: StepRun[];
  /** Completed steps so far (the next completionIndex is this + 1). */
  completions: number;
  /** Why the run is compensating: a failed step, a cancel, or an undo. */
  intent?: "fail" | "cancel" | "undo";
  /** Why the run is where it is, for people. */
  reason?: string;
  /** While `Pending`: what it waits for. */
  waitingFor?: string;
  /** While `Pending`: when to check again. */
  recheckAt?: number;
  requests: RunRequest[];
  /** Choreographed runs: what was observed, oldest first (bounded). */
  events?: ObservedEvent[];
  /** Increases by one with every change; the state topic keeps the last write. */
  version: number;
}
