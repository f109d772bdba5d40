/**
 * What a verified record must also satisfy to be a command for this worker, and which of its extension
 * values may be trusted (docs/signing.md: trust only the extensions the signature covers).
 */
import type { CloudEvent } from "../events/cloudevent.ts";
import type { CommandFacts } from "./results.ts";

/** `/eventloom/<ns>/<orchestration>`: the source of the engine's and gateway's commands. */
export function orchestrationSource(namespace: string, orchestration: string): string {
  return `/eventloom/${namespace}/${orchestration}`;
}

/** `/eventloom/<ns>/<orchestration>/<step>`: the source of a worker's results for `step`. */
export function stepSource(namespace: string, orchestration: string, step: string): string {
  return `/eventloom/${namespace}/${orchestration}/${step}`;
}

export type CommandCheck =
  | { readonly ok: true; readonly facts: CommandFacts }
  | {
      readonly ok: false;
      readonly reason: "not-authorized" | "wrong-destination" | "invalid-command";
      readonly message: string;
    };

/**
 * Checks a verified event against what this worker accepts: it comes from the Orchestration's source,
 * its `destination` is the step topic it was (originally) read from, and its `action` is `do` or
 * `compensate`. `keyid` is null for an unsigned event accepted under signing policy `none`; then the
 * extensions are taken as they are, otherwise only signed ones count.
 */
export function checkCommand(args: {
  event: CloudEvent;
  keyid: string | null;
  signedExtensions: readonly string[];
  orchestrationSource: string;
  /** The step topic the command was read from (for a retried record: its original topic). */
  topic: string;
  step: string;
}): CommandCheck {
  const { event } = args;
  const ext = (name: string): string | undefined => {
    if (!Object.hasOwn(event.extensions, name)) return undefined;
    if (args.keyid !== null && !args.signedExtensions.includes(name)) return undefined;
    return event.extensions[name];
  };
  if (event.source !== args.orchestrationSource) {
    return {
      ok: false,
      reason: "not-authorized",
      message: `command ${event.id} comes from source "${event.source}", but commands for this worker must come from the Orchestration's source "${args.orchestrationSource}"`,
    };
  }
  const destination = ext("destination");
  if (destination === undefined ? args.keyid !== null : destination !== args.topic) {
    return {
      ok: false,
      reason: "wrong-destination",
      message:
        destination === undefined
          ? `command ${event.id} has no signed destination; the engine must sign destination = the step topic`
          : `command ${event.id} is destined for "${destination}" but was read from "${args.topic}": a validly signed command replayed onto another step`,
    };
  }
  const action = ext("action") ?? "do";
  if (action !== "do" && action !== "compensate") {
    return {
      ok: false,
      reason: "invalid-command",
      message: `command ${event.id} has action "${action}"; expected "do" or "compensate"`,
    };
  }
  const runId = ext("runid") ?? ext("partitionkey");
  return {
    ok: true,
    facts: {
      id: event.id,
      runId,
      step: args.step,
      attempt: ext("attempt"),
      action,
      // Added in transit by the dead-letter replay, so never signed: see dedupe.ts.
      replayCount: Object.hasOwn(event.extensions, "replaycount") ? event.extensions.replaycount : undefined,
    },
  };
}

/** The command's data as JSON (null when empty). @throws SyntaxError when it is not JSON. */
export function parseCommandData(event: CloudEvent): unknown {
  if (event.data === null || event.data.length === 0) return null;
  return JSON.parse(event.data.toString("utf8"));
}
