/**
 * The run state machine: pure functions from (state, what happened, now) to
 * (next state, effects). No I/O, no clock, no randomness, so the engine can
 * apply the same input twice after a crash and get the same answer, and the
 * unit tests can drive every path with plain values.
 *
 * Effects are what the engine must do after it has durably written the new
 * state: send commands, report a finished run, report a compensation that
 * failed for good. See docs/engine.md for the states and the rules.
 */
import { DEFAULT_STEP_TIMEOUT } from "../../operator/crds/types.ts";
import type { OrchestrationSpec, Step } from "../../operator/crds/types.ts";
import { parseDuration, retryDelaysMs } from "../events/retry.ts";
import { isTerminal, pendingSteps, STATE_SCHEMA } from "./model.ts";
import type {
  Action,
  AttemptRecord,
  ErrorInfo,
  RunRequest,
  RunState,
  RunStatus,
  RunTrace,
  StepRun,
} from "./model.ts";

/** What the API asks for when it starts a run (the inbox's start request). */
export interface StartRequest {
  runId: string;
  namespace: string;
  orchestration: string;
  generation: number;
  /** The spec the input was validated against; the run keeps it to the end. */
  spec: OrchestrationSpec;
  input: unknown;
  inputHash: string;
  idempotencyKey?: string;
  trace: RunTrace;
}

/** Whether the engine can send commands for the run's Orchestration now (its signing key is loaded). */
export type Readiness = { ready: true } | { ready: false; reason: string };

/** A verified result from a worker. */
export interface StepResult {
  step: string;
  action: Action;
  attempt: number;
  outcome: "completed" | "failed";
  output?: unknown;
  error?: ErrorInfo;
  /** The result's CloudEvent id. */
  eventId: string;
  /** The `causationid` extension: the command this answers. */
  causationId?: string;
}

/** A command to send, fully determined by the run state (so it can be sent again, identical, after a crash). */
export interface CommandSpec {
  runId: string;
  step: string;
  action: Action;
  attempt: number;
  commandId: string;
  /** CloudEvent type: the step's `type` or its `compensation`. */
  type: string;
  /** The command's `time`. */
  dispatchedAt: number;
}

export type IgnoredReason =
  | "run-finished"
  | "unknown-step"
  | "not-in-flight"
  | "duplicate"
  | "stale-attempt"
  | "causation-mismatch"
  | "duplicate-request"
  | "not-allowed";

export type Effect =
  | { kind: "dispatch"; command: CommandSpec }
  | { kind: "finished"; status: RunStatus; reason?: string }
  | {
      kind: "compensationFailed";
      step: string;
      error: ErrorInfo;
      attempts: number;
      command: CommandSpec;
    }
  | { kind: "ignored"; reason: IgnoredReason; detail: string };

export interface Transition {
  state: RunState;
  /** False when the input changed nothing (a duplicate, a stale result): nothing to write. */
  changed: boolean;
  effects: Effect[];
}

/**
 * The id of the command for one attempt of one action of one step. The same
 * inputs always give the same id, so a command sent again after a crash is
 * deduplicated by workers on (source, id).
 */
export function commandId(runId: string, step: string, action: Action, attempt: number): string {
  return `${runId}.${step}.${action}.${attempt}`;
}

/** Per-attempt timeout of a step, ms. */
export function stepTimeoutMs(step: Step): number {
  return parseDuration(step.timeout ?? DEFAULT_STEP_TIMEOUT, `step ${step.name} timeout`);
}

/** Delays before each re-dispatch of a step (one per retry; `[]` = one attempt only). */
export function stepRetryDelaysMs(step: Step): number[] {
  return retryDelaysMs(step.retry, `step ${step.name} retry`);
}

// ---------------------------------------------------------------------------
// Orchestrated runs
// ---------------------------------------------------------------------------

/** Creates a run and dispatches its first steps (or leaves it `Pending` when the engine cannot sign yet). */
export function startRun(req: StartRequest, now: number, readiness: Readiness): Transition {
  const state: RunState = {
    schema: STATE_SCHEMA,
    runId: req.runId,
    namespace: req.namespace,
    orchestration: req.orchestration,
    generation: req.generation,
    mode: req.spec.mode ?? "orchestrated",
    spec: req.spec,
    status: "Pending",
    input: req.input,
    inputHash: req.inputHash,
    ...(req.idempotencyKey !== undefined ? { idempotencyKey: req.idempotencyKey } : {}),
    trace: req.trace,
    createdAt: now,
    updatedAt: now,
    steps: pendingSteps(req.spec),
    completions: 0,
    requests: [],
    version: 0,
  };
  const d = new Draft(state, now, true);
  if (readiness.ready) {
    d.s.status = "Running";
    advance(d);
  } else {
    d.s.waitingFor = readiness.reason;
  }
  return d.done();
}

/** Applies a verified worker result. Results that do not match the step's current attempt are ignored. */
export function applyResult(state: RunState, r: StepResult, now: number): Transition {
  if (isTerminal(state.status)) {
    return ignored(state, "run-finished", `run is ${state.status}`);
  }
  const current = state.steps.find((s) => s.name === r.step);
  if (!current) return ignored(state, "unknown-step", `run has no step "${r.step}"`);
  const wantStatus = r.action === "do" ? "Running" : "Compensating";
  if (current.action !== r.action || current.status !== wantStatus) {
    const seen = current.attempts.some((a) => a.action === r.action && a.attempt === r.attempt && a.outcome);
    return ignored(
      state,
      seen ? "duplicate" : "not-in-flight",
      `step ${r.step} is ${current.status} (${current.action} attempt ${current.attempt}); result is for ${r.action} attempt ${r.attempt}`,
    );
  }
  if (current.attempt !== r.attempt) {
    return ignored(
      state,
      "stale-attempt",
      `step ${r.step} is on ${r.action} attempt ${current.attempt}; result is for attempt ${r.attempt}`,
    );
  }
  const expected = commandId(state.runId, r.step, r.action, r.attempt);
  if (r.causationId !== undefined && r.causationId !== expected) {
    return ignored(state, "causation-mismatch", `result answers ${r.causationId}, not ${expected}`);
  }

  const d = new Draft(state, now);
  const step = d.step(r.step);
  const record = lastAttempt(step);
  if (record) {
    record.finishedAt = now;
    record.outcome = r.outcome;
    record.resultId = r.eventId;
    if (r.error) record.error = r.error;
  }
  step.waiting = undefined;
  step.dueAt = undefined;
  const error = r.error ?? { type: "StepFailed", message: "the worker reported failure without details" };
  if (r.action === "do") {
    if (r.outcome === "completed") {
      step.status = "Succeeded";
      step.output = r.output ?? null;
      step.completedAt = now;
      step.completionIndex = ++d.s.completions;
      if (d.s.status === "Running") advance(d);
      else progressCompensation(d);
    } else {
      step.status = "Failed";
      step.error = error;
      step.completedAt = now;
      if (d.s.status === "Running") {
        beginCompensation(d, "fail", `step ${step.name} failed: ${error.message}`);
      } else {
        progressCompensation(d);
      }
    }
  } else if (r.outcome === "completed") {
    step.status = "Compensated";
    step.compensatedAt = now;
    progressCompensation(d);
  } else {
    compensationFailed(d, step, error);
    progressCompensation(d);
  }
  return d.done();
}

/** Acts on every deadline and backoff that is due at `now`, and re-checks a `Pending` run. */
export function applyTimers(state: RunState, now: number, readiness: Readiness): Transition {
  if (isTerminal(state.status)) return unchanged(state);
  if (state.status === "Pending") {
    if (!readiness.ready) {
      if (state.waitingFor === readiness.reason) return unchanged(state);
      const d = new Draft(state, now);
      d.s.waitingFor = readiness.reason;
      return d.done();
    }
    const d = new Draft(state, now);
    d.s.status = "Running";
    d.s.waitingFor = undefined;
    advance(d);
    return d.done();
  }
  if (!state.steps.some((s) => s.dueAt !== undefined && s.dueAt <= now)) return unchanged(state);

  const d = new Draft(state, now);
  for (const step of d.s.steps) {
    if (step.dueAt === undefined || step.dueAt > now) continue;
    const spec = d.spec(step.name);
    if (step.waiting === "result") {
      const record = lastAttempt(step);
      if (record) {
        record.finishedAt = now;
        record.outcome = "timedOut";
      }
      const delays = safeRetryDelays(spec);
      const mayRetry = step.action === "compensate" || d.s.status === "Running";
      if (mayRetry && step.attempt <= delays.length) {
        step.waiting = "backoff";
        step.dueAt = now + (delays[step.attempt - 1] ?? 0);
        continue;
      }
      const error: ErrorInfo = {
        type: "Timeout",
        message: `no result within ${spec.timeout ?? DEFAULT_STEP_TIMEOUT} after ${step.attempt} attempt(s)`,
      };
      step.waiting = undefined;
      step.dueAt = undefined;
      if (step.action === "do") {
        step.status = "TimedOut";
        step.error = error;
        step.completedAt = now;
        if (d.s.status === "Running")
          beginCompensation(d, "fail", `step ${step.name} timed out: ${error.message}`);
        else progressCompensation(d);
      } else {
        compensationFailed(d, step, error);
        progressCompensation(d);
      }
    } else if (step.waiting === "backoff") {
      if (step.action === "compensate") dispatch(d, step, "compensate", step.attempt + 1);
      else if (d.s.status === "Running") dispatch(d, step, "do", step.attempt + 1);
      else {
        // The run stopped while this step waited to be tried again: its last attempt's outcome is unknown.
        markTimedOut(d, step);
        progressCompensation(d);
      }
    }
  }
  return d.done();
}

/** Cancels a `Pending` or `Running` run: nothing more is dispatched, completed steps are compensated. */
export function requestCancel(state: RunState, requestId: string, now: number): Transition {
  return request(state, { kind: "cancel", id: requestId }, now, () =>
    state.status === "Pending" || state.status === "Running"
      ? undefined
      : `only a Pending or Running run can be cancelled; this one is ${state.status}`,
  );
}

/** Undoes a `Succeeded` run: every step is compensated in reverse order (seed 003's manual undo). */
export function requestUndo(state: RunState, requestId: string, now: number): Transition {
  return request(state, { kind: "undo", id: requestId }, now, () =>
    state.status === "Succeeded"
      ? undefined
      : `only a Succeeded run can be undone; this one is ${state.status}`,
  );
}

function request(
  state: RunState,
  req: { kind: "cancel" | "undo"; id: string },
  now: number,
  refusal: () => string | undefined,
): Transition {
  if (state.requests.some((r) => r.id === req.id)) {
    return ignored(state, "duplicate-request", `${req.kind} request ${req.id} was already handled`);
  }
  const d = new Draft(state, now);
  const reason = refusal();
  const entry: RunRequest = { kind: req.kind, id: req.id, at: now, accepted: reason === undefined };
  if (reason !== undefined) entry.reason = reason;
  d.s.requests.push(entry);
  if (d.s.requests.length > MAX_REQUESTS) d.s.requests.splice(0, d.s.requests.length - MAX_REQUESTS);
  if (reason !== undefined) {
    d.effects.push({ kind: "ignored", reason: "not-allowed", detail: reason });
    return d.done();
  }
  if (req.kind === "cancel") {
    d.s.waitingFor = undefined;
    beginCompensation(d, "cancel", "cancelled on request");
  } else {
    d.s.finishedAt = undefined;
    beginCompensation(d, "undo", "undo requested");
  }
  return d.done();
}

/** The commands of every attempt still waiting for its result: what a new owner sends again on restore. */
export function inFlightCommands(state: RunState): CommandSpec[] {
  if (isTerminal(state.status)) return [];
  const out: CommandSpec[] = [];
  for (const step of state.steps) {
    if (step.waiting !== "result") continue;
    const record = lastAttempt(step);
    const spec = state.spec.steps.find((s) => s.name === step.name);
    if (!record || !spec) continue;
    out.push(commandSpec(state.runId, spec, record.action, record.attempt, record.dispatchedAt));
  }
  return out;
}

/** The earliest deadline or backoff end of the run, or undefined when no timer is needed. */
export function nextDueAt(state: RunState): number | undefined {
  if (isTerminal(state.status)) return undefined;
  let next: number | undefined;
  for (const step of state.steps) {
    if (step.dueAt !== undefined && (next === undefined || step.dueAt < next)) next = step.dueAt;
  }
  return next;
}

// ---------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------

const MAX_REQUESTS = 20;

/** A working copy of a run: mutated freely, then returned with its effects. */
class Draft {
  readonly s: RunState;
  readonly effects: Effect[] = [];
  /** Every path that builds a Draft changes the run; unchanged inputs return before building one. */
  readonly changed = true;
  private readonly specs: Map<string, Step>;

  constructor(
    state: RunState,
    readonly now: number,
    fresh = false,
  ) {
    this.s = fresh ? state : copyForChange(state);
    this.specs = specsByName(this.s.spec);
  }

  step(name: string): StepRun {
    const step = this.s.steps.find((s) => s.name === name);
    if (!step) throw new Error(`run ${this.s.runId} has no step ${name}`);
    return step;
  }

  spec(name: string): Step {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`run ${this.s.runId}: the spec has no step ${name}`);
    return spec;
  }

  done(): Transition {
    if (this.changed) {
      this.s.version += 1;
      this.s.updatedAt = this.now;
    }
    return { state: this.s, changed: this.changed, effects: this.effects };
  }
}

const specsCache = new WeakMap<OrchestrationSpec, Map<string, Step>>();

function specsByName(spec: OrchestrationSpec): Map<string, Step> {
  let map = specsCache.get(spec);
  if (!map) specsCache.set(spec, (map = new Map(spec.steps.map((s) => [s.name, s]))));
  return map;
}

/**
 * A copy of `state` that the machine may mutate without touching `state`: the run, its steps, their attempt
 * records and its requests are copied (the only things the machine changes in place); what never changes
 * after the start (spec, input, trace, outputs, errors, observed events) is shared. States are values: no
 * code mutates a state it did not get from this copy.
 */
function copyForChange(state: RunState): RunState {
  return {
    ...state,
    steps: state.steps.map((step) => ({ ...step, attempts: step.attempts.map((a) => ({ ...a })) })),
    requests: state.requests.map((r) => ({ ...r })),
  };
}

function unchanged(state: RunState): Transition {
  return { state, changed: false, effects: [] };
}

function ignored(state: RunState, reason: IgnoredReason, detail: string): Transition {
  return { state, changed: false, effects: [{ kind: "ignored", reason, detail }] };
}

function lastAttempt(step: StepRun): AttemptRecord | undefined {
  return step.attempts[step.attempts.length - 1];
}

function safeRetryDelays(step: Step): number[] {
  try {
    return stepRetryDelaysMs(step);
  } catch {
    // The API server refuses invalid policies; an object from before a rule existed gets no retries.
    return [];
  }
}

function safeTimeout(step: Step): number {
  try {
    return stepTimeoutMs(step);
  } catch {
    return parseDuration(DEFAULT_STEP_TIMEOUT);
  }
}

function commandSpec(
  runId: string,
  spec: Step,
  action: Action,
  attempt: number,
  dispatchedAt: number,
): CommandSpec {
  return {
    runId,
    step: spec.name,
    action,
    attempt,
    commandId: commandId(runId, spec.name, action, attempt),
    type: (action === "do" ? spec.type : spec.compensation) ?? "",
    dispatchedAt,
  };
}

function dispatch(d: Draft, step: StepRun, action: Action, attempt: number): void {
  const spec = d.spec(step.name);
  const deadline = d.now + safeTimeout(spec);
  const command = commandSpec(d.s.runId, spec, action, attempt, d.now);
  step.action = action;
  step.attempt = attempt;
  step.status = action === "do" ? "Running" : "Compensating";
  step.waiting = "result";
  step.dueAt = deadline;
  if (action === "do" && attempt === 1) step.startedAt = d.now;
  step.attempts.push({
    action,
    attempt,
    commandId: command.commandId,
    dispatchedAt: d.now,
    deadlineAt: deadline,
  });
  d.effects.push({ kind: "dispatch", command });
}

/** Dispatches every step whose dependencies all succeeded; finishes the run when every step did. */
function advance(d: Draft): void {
  const byName = new Map(d.s.steps.map((s) => [s.name, s]));
  for (const step of d.s.steps) {
    if (step.status !== "Pending") continue;
    const deps = d.spec(step.name).dependsOn ?? [];
    if (deps.every((dep) => byName.get(dep)?.status === "Succeeded")) dispatch(d, step, "do", 1);
  }
  if (d.s.steps.every((s) => s.status === "Succeeded")) {
    finish(d, "Succeeded", "every step completed");
  }
}

function beginCompensation(d: Draft, intent: "fail" | "cancel" | "undo", reason: string): void {
  d.s.status = "Compensating";
  d.s.intent = intent;
  d.s.reason = reason;
  for (const step of d.s.steps) {
    if (step.status === "Pending") step.status = "Skipped";
    else if (step.status === "Running" && step.waiting === "backoff") markTimedOut(d, step);
  }
  progressCompensation(d);
}

function markTimedOut(d: Draft, step: StepRun): void {
  step.status = "TimedOut";
  step.waiting = undefined;
  step.dueAt = undefined;
  step.completedAt = d.now;
  step.error = {
    type: "Timeout",
    message: `attempt ${step.attempt} timed out and the run stopped before the next attempt`,
  };
}

function compensationFailed(d: Draft, step: StepRun, error: ErrorInfo): void {
  step.status = "CompensationFailed";
  step.error = error;
  step.waiting = undefined;
  step.dueAt = undefined;
  const record = lastAttempt(step);
  d.effects.push({
    kind: "compensationFailed",
    step: step.name,
    error,
    attempts: step.attempt,
    command: commandSpec(
      d.s.runId,
      d.spec(step.name),
      "compensate",
      step.attempt,
      record?.dispatchedAt ?? d.now,
    ),
  });
}

/** True when the step's effect must be undone: it completed (or its outcome is unknown) and it has a compensation. */
function needsCompensation(d: Draft, step: StepRun): boolean {
  return (
    (step.status === "Succeeded" || step.status === "TimedOut") &&
    d.spec(step.name).compensation !== undefined
  );
}

/** True when nothing more will happen to `step` during this compensation, so the steps it depends on may be undone. */
function settled(d: Draft, step: StepRun): boolean {
  switch (step.status) {
    case "Pending":
    case "Skipped":
    case "Failed":
    case "Compensated":
      return true;
    case "Succeeded":
    case "TimedOut":
      return !needsCompensation(d, step);
    default:
      return false;
  }
}

/**
 * Dispatches the compensation of every step whose dependents (direct and
 * transitive) are all settled: reverse completion order along each branch,
 * independent branches concurrently. Finishes the run once nothing is in flight.
 */
function progressCompensation(d: Draft): void {
  if (d.s.status !== "Compensating") return;
  const dependents = transitiveDependents(d.s.spec.steps);
  const byName = new Map(d.s.steps.map((s) => [s.name, s]));
  for (const step of [...d.s.steps].reverse()) {
    if (!needsCompensation(d, step)) continue;
    const after = dependents.get(step.name) ?? [];
    if (after.every((name) => settled(d, byName.get(name) as StepRun))) {
      dispatch(d, step, "compensate", 1);
    }
  }
  const inFlight = d.s.steps.some((s) => s.status === "Running" || s.status === "Compensating");
  if (inFlight) return;
  const stuck = d.s.steps.filter((s) => s.status === "CompensationFailed" || needsCompensation(d, s));
  if (stuck.length > 0) {
    const failed = d.s.steps.filter((s) => s.status === "CompensationFailed").map((s) => s.name);
    const left = d.s.steps.filter((s) => needsCompensation(d, s)).map((s) => s.name);
    finish(
      d,
      "CompensationFailed",
      `compensation of ${failed.join(", ")} failed for good` +
        (left.length > 0 ? `; left uncompensated: ${left.join(", ")}` : "") +
        (d.s.reason ? ` (compensating because ${d.s.reason})` : ""),
    );
    return;
  }
  const status: RunStatus =
    d.s.intent === "cancel" ? "Cancelled" : d.s.intent === "undo" ? "Undone" : "Failed";
  finish(d, status, d.s.reason ?? status);
}

function finish(d: Draft, status: RunStatus, reason: string): void {
  d.s.status = status;
  d.s.reason = reason;
  d.s.finishedAt = d.now;
  d.effects.push({ kind: "finished", status, reason });
}

const dependentsCache = new WeakMap<readonly Step[], Map<string, string[]>>();

/** For each step, every step that depends on it directly or transitively. */
export function transitiveDependents(steps: readonly Step[]): Map<string, string[]> {
  const cached = dependentsCache.get(steps);
  if (cached) return cached;
  const direct = new Map<string, string[]>(steps.map((s) => [s.name, []]));
  for (const s of steps) for (const dep of s.dependsOn ?? []) direct.get(dep)?.push(s.name);
  const out = new Map<string, string[]>();
  const visit = (name: string): string[] => {
    const known = out.get(name);
    if (known) return known;
    const all = new Set<string>();
    out.set(name, []); // cycles are refused by the API server; this only stops a runaway on a bad object
    for (const child of direct.get(name) ?? []) {
      all.add(child);
      for (const grandchild of visit(child)) all.add(grandchild);
    }
    const list = [...all];
    out.set(name, list);
    return list;
  };
  for (const s of steps) visit(s.name);
  dependentsCache.set(steps, out);
  return out;
}

const dependenciesCache = new WeakMap<readonly Step[], Map<string, string[]>>();

/** Every step `name` depends on, directly or transitively, in spec order (cached per spec; do not mutate). */
export function transitiveDependencies(steps: readonly Step[], name: string): string[] {
  let bySpec = dependenciesCache.get(steps);
  if (!bySpec) dependenciesCache.set(steps, (bySpec = new Map()));
  let deps = bySpec.get(name);
  if (!deps) bySpec.set(name, (deps = computeDependencies(steps, name)));
  return deps;
}

function computeDependencies(steps: readonly Step[], name: string): string[] {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const walk = (n: string): void => {
    for (const dep of byName.get(n)?.dependsOn ?? []) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      walk(dep);
    }
  };
  walk(name);
  return steps.map((s) => s.name).filter((n) => seen.has(n));
}
