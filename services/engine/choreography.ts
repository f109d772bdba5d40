/**
 * Choreographed runs: the engine sends nothing, it watches. Every declared
 * event of a choreographed Orchestration that carries a run id (its
 * `partitionkey`) is folded into that run's view, so choreographies show up in
 * the same run API as orchestrations. Pure, like machine.ts.
 *
 * Reading the events (docs/engine.md, "Choreographed mode"):
 * - an event of a type some step `subscribes` to starts that step (`Running`);
 * - an event whose source is a step's (`/eventloom/<ns>/<o>/<step>`) finishes
 *   that step: `Failed` when its type is `io.eventloom.step.failed` or ends in
 *   `.failed`, `Succeeded` otherwise;
 * - the run is `Running` while a started step has not finished. Once quiet it
 *   is `Succeeded`, or `Failed` when some step failed (the failure events'
 *   subscribers, seed 002's compensations, have run by then). Between a
 *   failure and quiet it is `Compensating`. A later event reopens the view.
 */
import { stepSource } from "../../operator/builders/keys.ts";
import type { OrchestrationSpec } from "../../operator/crds/types.ts";
import type { Transition } from "./machine.ts";
import { pendingSteps, STATE_SCHEMA } from "./model.ts";
import type { RunState, RunStatus, RunTrace } from "./model.ts";

/** Observed events kept per run; older ones are dropped (the steps keep their status). */
export const MAX_OBSERVED_EVENTS = 200;

export interface ObservedInput {
  runId: string;
  namespace: string;
  orchestration: string;
  generation: number;
  spec: OrchestrationSpec;
  event: { id: string; source: string; type: string; time?: string };
  /** Trace context of the first event, which becomes the run's trace. */
  trace?: RunTrace;
}

const FAILED_RESULT = "io.eventloom.step.failed";

function isFailure(type: string): boolean {
  return type === FAILED_RESULT || type.endsWith(".failed");
}

/** Folds one observed event into a choreographed run's view, creating the run on its first event. */
export function observeEvent(state: RunState | undefined, input: ObservedInput, now: number): Transition {
  const { event } = input;
  if (state?.events?.some((e) => e.source === event.source && e.id === event.id)) {
    return {
      state,
      changed: false,
      effects: [{ kind: "ignored", reason: "duplicate", detail: `event ${event.id} seen` }],
    };
  }
  const s: RunState = state
    ? // The spec never changes after the start and is shared (its object keys per-spec caches and the state
      // record's spec reference): copy the rest.
      { ...structuredClone({ ...state, spec: undefined }), spec: state.spec }
    : {
        schema: STATE_SCHEMA,
        runId: input.runId,
        namespace: input.namespace,
        orchestration: input.orchestration,
        generation: input.generation,
        mode: "choreographed",
        spec: input.spec,
        status: "Running",
        input: null,
        inputHash: "",
        trace: input.trace ?? { traceparent: "", traceId: "" },
        createdAt: now,
        updatedAt: now,
        steps: pendingSteps(input.spec),
        completions: 0,
        requests: [],
        events: [],
        version: 0,
      };
  const events = (s.events ??= []);
  const emitter = s.steps.find((st) => stepSource(s.namespace, s.orchestration, st.name) === event.source);
  events.push({
    id: event.id,
    source: event.source,
    type: event.type,
    ...(emitter ? { step: emitter.name } : {}),
    ...(event.time !== undefined ? { time: event.time } : {}),
    observedAt: now,
  });
  if (events.length > MAX_OBSERVED_EVENTS) events.splice(0, events.length - MAX_OBSERVED_EVENTS);

  if (emitter) {
    if (emitter.startedAt === undefined) emitter.startedAt = now;
    emitter.completedAt = now;
    if (isFailure(event.type)) {
      emitter.status = "Failed";
      emitter.error = { type: event.type, message: `step ${emitter.name} emitted ${event.type}` };
    } else if (emitter.status !== "Failed") {
      if (emitter.status !== "Succeeded") emitter.completionIndex = ++s.completions;
      emitter.status = "Succeeded";
    }
  }
  for (const spec of s.spec.steps) {
    if (!(spec.subscribes ?? []).includes(event.type)) continue;
    const step = s.steps.find((st) => st.name === spec.name);
    if (step && step.status === "Pending") {
      step.status = "Running";
      step.startedAt = now;
    }
  }

  const previous = s.status;
  const running = s.steps.some((st) => st.status === "Running");
  const failed = s.steps.some((st) => st.status === "Failed");
  const status: RunStatus = running ? (failed ? "Compensating" : "Running") : failed ? "Failed" : "Succeeded";
  s.status = status;
  if (status === "Succeeded" || status === "Failed") {
    s.finishedAt = now;
    s.reason = failed
      ? `step ${s.steps
          .filter((st) => st.status === "Failed")
          .map((st) => st.name)
          .join(", ")} failed`
      : "every started step finished";
  } else {
    s.finishedAt = undefined;
    s.reason = undefined;
  }
  s.version += 1;
  s.updatedAt = now;
  const effects: Transition["effects"] =
    status !== previous && (status === "Succeeded" || status === "Failed")
      ? [{ kind: "finished", status }]
      : [];
  return { state: s, changed: true, effects };
}
