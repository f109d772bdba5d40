/**
 * Commands, engine → worker (docs/events.md, "Commands"): one CloudEvent per
 * attempt of a step's `do` or `compensate`, on the step topic, keyed by run id.
 * Everything in it comes from the run state, so the same attempt always gives
 * the same event (id, time and data included) and a command sent again after a
 * crash is the same command, deduplicated by workers on (source, id).
 */
import { orchestrationSource } from "../../operator/builders/keys.ts";
import type { CloudEvent } from "../events/cloudevent.ts";
import { stepTopic } from "../events/topics.ts";
import type { TopicNamingOptions } from "../events/topics.ts";
import { transitiveDependencies } from "./machine.ts";
import type { CommandSpec } from "./machine.ts";
import type { RunState } from "./model.ts";

/** Extensions every command carries (and signs). */
export const COMMAND_EXTENSIONS = [
  "partitionkey",
  "runid",
  "step",
  "attempt",
  "action",
  "destination",
] as const;

/**
 * The command's data: `{"input": <run input>, "steps": {"<dep>": <output>}}`
 * with the outputs of every step it depends on (directly or not). A
 * compensation also gets the step's own output under its own name, so the
 * worker knows what to undo.
 */
export function commandData(state: RunState, command: Pick<CommandSpec, "step" | "action">): Buffer {
  const steps: Record<string, unknown> = {};
  const byName = new Map(state.steps.map((s) => [s.name, s]));
  for (const dep of transitiveDependencies(state.spec.steps, command.step)) {
    const output = byName.get(dep)?.output;
    if (output !== undefined) steps[dep] = output;
  }
  if (command.action === "compensate") {
    const own = byName.get(command.step)?.output;
    if (own !== undefined) steps[command.step] = own;
  }
  return Buffer.from(JSON.stringify({ input: state.input ?? null, steps }), "utf8");
}

const stepTopics = new Map<string, string>();

/** `stepTopic`, remembered (it validates the name each time; the engine asks for it on every command). */
function cachedStepTopic(
  namespace: string,
  orchestration: string,
  step: string,
  naming: TopicNamingOptions,
): string {
  const key = `${naming.prefix ?? ""}\u0000${namespace}\u0000${orchestration}\u0000${step}`;
  let topic = stepTopics.get(key);
  if (topic === undefined) {
    topic = stepTopic({ namespace, orchestration }, step, naming);
    if (stepTopics.size >= 10_000) stepTopics.clear();
    stepTopics.set(key, topic);
  }
  return topic;
}

/** The unsigned command event for `command` of `state`, and the topic it goes to. */
export function commandEvent(
  state: RunState,
  command: CommandSpec,
  naming: TopicNamingOptions = {},
): { topic: string; event: CloudEvent } {
  const topic = cachedStepTopic(state.namespace, state.orchestration, command.step, naming);
  const event: CloudEvent = {
    id: command.commandId,
    source: orchestrationSource(state.namespace, state.orchestration),
    specversion: "1.0",
    type: command.type,
    datacontenttype: "application/json",
    subject: command.step,
    time: new Date(command.dispatchedAt).toISOString(),
    extensions: {
      partitionkey: state.runId,
      runid: state.runId,
      step: command.step,
      attempt: String(command.attempt),
      action: command.action,
      destination: topic,
    },
    data: commandData(state, command),
  };
  return { topic, event };
}
