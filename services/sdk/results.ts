/**
 * The result events a worker publishes for a command (docs/events.md "Results").
 */
import { randomUUID } from "node:crypto";
import type { CloudEvent } from "../events/cloudevent.ts";

export const STEP_COMPLETED = "io.eventloom.step.completed";
export const STEP_FAILED = "io.eventloom.step.failed";

/** What happened to the command. */
export type StepOutcome =
  | { readonly ok: true; readonly output: unknown }
  | {
      readonly ok: false;
      readonly errorType: string;
      readonly errorMessage: string;
      readonly attempts: number;
    };

/** The `data` of an `io.eventloom.step.failed` result. */
export interface StepFailedData {
  errorType: string;
  errorMessage: string;
  attempts: number;
}

/** The command's extensions a result carries over (read after verification: only trusted values). */
export interface CommandFacts {
  readonly id: string;
  readonly runId: string | undefined;
  readonly step: string;
  readonly attempt: string | undefined;
  readonly action: "do" | "compensate";
  readonly replayCount: string | undefined;
}

/**
 * The (unsigned) result event for a command. `source` is the step's source
 * (`/eventloom/<ns>/<orchestration>/<step>`). Throws a TypeError when the output cannot be JSON-encoded.
 */
export function resultEvent(args: {
  source: string;
  command: CommandFacts;
  outcome: StepOutcome;
  id?: string;
  time?: Date;
}): CloudEvent {
  const { command, outcome } = args;
  const data: unknown = outcome.ok
    ? (outcome.output ?? null)
    : ({
        errorType: outcome.errorType,
        errorMessage: outcome.errorMessage,
        attempts: outcome.attempts,
      } satisfies StepFailedData);
  const json = JSON.stringify(data);
  if (json === undefined) throw new TypeError("the handler's output cannot be encoded as JSON");
  const extensions: Record<string, string> = {};
  if (command.runId !== undefined) {
    extensions.partitionkey = command.runId;
    extensions.runid = command.runId;
  }
  extensions.step = command.step;
  if (command.attempt !== undefined) extensions.attempt = command.attempt;
  extensions.action = command.action;
  extensions.causationid = command.id;
  if (command.replayCount !== undefined) extensions.replaycount = command.replayCount;
  return {
    id: args.id ?? randomUUID(),
    source: args.source,
    specversion: "1.0",
    type: outcome.ok ? STEP_COMPLETED : STEP_FAILED,
    datacontenttype: "application/json",
    subject: command.step,
    time: (args.time ?? new Date()).toISOString(),
    extensions,
    data: Buffer.from(json, "utf8"),
  };
}
