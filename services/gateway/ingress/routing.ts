/**
 * Where an ingress event goes, decided from its Orchestration's spec alone.
 *
 * - **orchestrated**: every event posted to the Orchestration starts a run. It goes to the Orchestration's
 *   results topic (`<base>-results`), the one topic the engine consumes per Orchestration; the engine
 *   tells a run start from a step result by its source (`/eventloom/<ns>/<o>`, not a step's source).
 *   The inputSchema applies to every such event.
 * - **choreographed**: the event goes to the topic of every step whose `subscribes` lists its type (fan
 *   out, as in seed 002's fanout exchange); a type no step subscribes to is refused. The inputSchema
 *   applies to the Orchestration's *entry* types: types some step subscribes to and no step emits
 *   (`order.placed` in seed 002), i.e. the events that start a run. Events of inner types (a
 *   `payment.failed` injected by hand) are routed but not checked against the run input's schema.
 */
import type { Orchestration } from "../../../operator/crds/types.ts";
import { DEFAULT_MODE } from "../../../operator/crds/types.ts";
import { resultsTopic, stepTopic } from "../../events/topics.ts";
import type { TopicNamingOptions } from "../../events/topics.ts";
import { ProblemError } from "../problem.ts";

export interface RouteTarget {
  /** Kafka topic to write to; also the signed `destination` extension of the copy written there. */
  topic: string;
  /** The step the copy is for (choreography); absent for a run start. */
  step?: string;
}

export interface Route {
  mode: "orchestrated" | "choreographed";
  targets: RouteTarget[];
  /** Whether the Orchestration's inputSchema applies to this event. */
  checksInput: boolean;
}

/**
 * The topics an event of `type` goes to for `orchestration`.
 * @throws ProblemError `unroutable-event` (422) when a choreographed Orchestration has no step for the type.
 */
export function routeFor(orchestration: Orchestration, type: string, naming: TopicNamingOptions = {}): Route {
  const namespace = orchestration.metadata.namespace ?? "";
  const name = orchestration.metadata.name ?? "";
  const ref = { namespace, orchestration: name };
  const mode = orchestration.spec.mode ?? DEFAULT_MODE;
  if (mode === "orchestrated") {
    return { mode, targets: [{ topic: resultsTopic(ref, naming) }], checksInput: true };
  }
  const steps = orchestration.spec.steps.filter((s) => s.subscribes?.includes(type));
  if (steps.length === 0) {
    const accepted = [...new Set(orchestration.spec.steps.flatMap((s) => s.subscribes ?? []))].sort();
    throw new ProblemError(
      "unroutable-event",
      `No step of choreographed Orchestration ${namespace}/${name} subscribes to type "${type}"; ` +
        `it takes ${accepted.map((t) => `"${t}"`).join(", ")}.`,
      { extensions: { acceptedTypes: accepted } },
    );
  }
  const emitted = new Set(orchestration.spec.steps.flatMap((s) => s.emits ?? []));
  return {
    mode,
    targets: steps.map((s) => ({ topic: stepTopic(ref, s.name, naming), step: s.name })),
    checksInput: !emitted.has(type),
  };
}
