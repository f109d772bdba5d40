/**
 * Deciding whether a worker's result may move a run (docs/engine.md,
 * "Results"): it must verify against the run's Orchestration's trust store,
 * with `partitionkey`, `step`, `attempt` and `action` covered by the
 * signature, and its source must be the source of the step it answers for
 * (`/eventloom/<ns>/<o>/<step>`). So a worker can only answer for the steps it
 * is bound to. Anything else is refused, to be dead-lettered. Pure: the trust
 * store and policy come in as arguments.
 */
import { stepSource } from "../../operator/builders/keys.ts";
import type { SigningPolicy } from "../../operator/crds/types.ts";
import { decodeRecord } from "../events/binding.ts";
import type { DecodeResult } from "../events/binding.ts";
import type { CloudEvent } from "../events/cloudevent.ts";
import { Verifier } from "../events/signing.ts";
import type { VerificationFailureReason } from "../events/signing.ts";
import type { TrustStore } from "../events/trust-store.ts";
import type { StepResult } from "./machine.ts";
import type { ForwardedRecord } from "./inbox.ts";

export const COMPLETED_TYPE = "io.eventloom.step.completed";
export const FAILED_TYPE = "io.eventloom.step.failed";

/** Extensions a result's signature must cover: without them it could be replayed onto another run, step or attempt. */
export const RESULT_SIGNED_EXTENSIONS = ["partitionkey", "step", "attempt", "action"] as const;

export interface ResultContext {
  runId: string;
  namespace: string;
  orchestration: string;
  policy: SigningPolicy;
  trust: TrustStore;
}

/** `SignatureError`: not provably from the step's worker. `InvalidResult`: from it, but not a result this engine reads. */
export type RefusalType = "SignatureError" | "InvalidResult";

export type ResultClassification =
  | { ok: true; result: StepResult; event: CloudEvent }
  | {
      ok: false;
      errorType: RefusalType;
      /** The verifier's reason, when verification failed. */
      reason?: VerificationFailureReason | "invalid-event" | "wrong-source" | "wrong-run";
      message: string;
      event?: CloudEvent;
    };

function refuse(
  errorType: RefusalType,
  message: string,
  reason?: Extract<ResultClassification, { ok: false }>["reason"],
  event?: CloudEvent,
): ResultClassification {
  return {
    ok: false,
    errorType,
    message,
    ...(reason !== undefined ? { reason } : {}),
    ...(event ? { event } : {}),
  };
}

const verifiers = new WeakMap<TrustStore, Map<SigningPolicy, Verifier>>();

/** The results verifier for a trust store and policy, built once per (trust store, policy). */
export function resultVerifier(trust: TrustStore, policy: SigningPolicy): Verifier {
  let byPolicy = verifiers.get(trust);
  if (!byPolicy) verifiers.set(trust, (byPolicy = new Map()));
  let verifier = byPolicy.get(policy);
  if (!verifier) {
    verifier = new Verifier(trust, {
      policy,
      requiredExtensions: policy === "required" ? RESULT_SIGNED_EXTENSIONS : [],
    });
    byPolicy.set(policy, verifier);
  }
  return verifier;
}

/**
 * Verifies a forwarded result record and reads it, or says why it is refused. `decoded` is the record's
 * `decodeRecord` answer when the caller has it already (so the record is not decoded twice).
 */
export function classifyResult(
  record: ForwardedRecord,
  ctx: ResultContext,
  decoded: DecodeResult = decodeRecord(record),
): ResultClassification {
  if (!decoded.ok) return refuse("SignatureError", decoded.error.message, "invalid-event");
  const verified = resultVerifier(ctx.trust, ctx.policy).verify(decoded.event);
  if (!verified.ok) {
    return refuse("SignatureError", verified.message, verified.reason);
  }
  const event = decoded.event;
  const ext = event.extensions;
  const step = Object.hasOwn(ext, "step") ? ext.step : undefined;
  if (step === undefined || step === "") {
    return refuse("InvalidResult", `result ${event.id} names no step (extension "step")`, undefined, event);
  }
  const expectedSource = stepSource(ctx.namespace, ctx.orchestration, step);
  if (event.source !== expectedSource) {
    return refuse(
      "SignatureError",
      `result ${event.id} answers for step "${step}" of ${ctx.namespace}/${ctx.orchestration} but comes from source ` +
        `"${event.source}"; only "${expectedSource}", signed by a key allowed for it, may answer for that step`,
      "wrong-source",
      event,
    );
  }
  if (ext.partitionkey !== ctx.runId) {
    return refuse(
      "SignatureError",
      `result ${event.id} is for run "${ext.partitionkey ?? ""}" but was delivered as run "${ctx.runId}"`,
      "wrong-run",
      event,
    );
  }
  if (event.type !== COMPLETED_TYPE && event.type !== FAILED_TYPE) {
    return refuse(
      "InvalidResult",
      `result ${event.id} has type ${event.type}; expected ${COMPLETED_TYPE} or ${FAILED_TYPE}`,
      undefined,
      event,
    );
  }
  const attempt = Number(ext.attempt);
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    return refuse(
      "InvalidResult",
      `result ${event.id} has attempt "${ext.attempt ?? ""}"; expected a whole number from 1`,
      undefined,
      event,
    );
  }
  const action = ext.action ?? "do";
  if (action !== "do" && action !== "compensate") {
    return refuse(
      "InvalidResult",
      `result ${event.id} has action "${action}"; expected do or compensate`,
      undefined,
      event,
    );
  }
  let data: unknown = null;
  if (event.data !== null && event.data.length > 0) {
    try {
      data = JSON.parse(event.data.toString("utf8"));
    } catch {
      return refuse("InvalidResult", `result ${event.id} carries data that is not JSON`, undefined, event);
    }
  }
  const causation = Object.hasOwn(ext, "causationid") ? ext.causationid : undefined;
  const base = {
    step,
    action,
    attempt,
    eventId: event.id,
    ...(causation !== undefined ? { causationId: causation } : {}),
  } as const;
  if (event.type === COMPLETED_TYPE) {
    return { ok: true, event, result: { ...base, outcome: "completed", output: data } };
  }
  const failure = (data ?? {}) as { errorType?: unknown; errorMessage?: unknown };
  return {
    ok: true,
    event,
    result: {
      ...base,
      outcome: "failed",
      error: {
        type: typeof failure.errorType === "string" ? failure.errorType : "StepFailed",
        message:
          typeof failure.errorMessage === "string" ? failure.errorMessage : "the worker reported failure",
      },
    },
  };
}
