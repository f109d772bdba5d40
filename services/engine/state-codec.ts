/**
 * Records on the compacted state topic (docs/engine.md, "State records"):
 *
 * - a run: key = run id, value = the run as JSON *without* its Orchestration spec, which it names by
 *   `specRef` instead; headers say the layout (`eventloom-state-schema`) and the run's `version`
 *   (`eventloom-state-version`), so a reader that already holds that version skips the JSON;
 * - a spec: key = `eventloom.spec/<ref>`, value = the Orchestration spec (JSON) a run started with.
 *   The engine writes it to a partition once, in the same produce request as (and before) the first
 *   run state of that partition naming it, so whoever reads a partition in order meets the spec
 *   before any run needing it. `ref` is `<ns>/<o>/<generation>/<hash of the spec>`: a run keeps the
 *   spec it started with, whatever the Orchestration became since;
 * - a null value (tombstone) = the run (or spec) was forgotten.
 *
 * Schema 1 records (the whole spec in every run record) are still read.
 */
import { createHash } from "node:crypto";
import type { OrchestrationSpec } from "../../operator/crds/types.ts";
import type { IncomingRecord, OutgoingRecord } from "../kafka/client.ts";
import { RUN_STATUSES, STATE_SCHEMA } from "./model.ts";
import type { RunState } from "./model.ts";

/** Header naming the layout of the value, so a future engine can read (or skip) old records. */
export const STATE_SCHEMA_HEADER = "eventloom-state-schema";
/** Header carrying the run's `version`, so readers skip records they already hold (their own writes). */
export const STATE_VERSION_HEADER = "eventloom-state-version";
/** Keys of spec records start with this; no run id does (run ids are UUIDs). */
export const SPEC_KEY_PREFIX = "eventloom.spec/";

export type DecodedState =
  | { kind: "run"; runId: string; state: RunState }
  /** A run naming a spec this reader has not read (yet): keep it until the spec record comes. */
  | { kind: "unresolved"; runId: string; specRef: string; state: Omit<RunState, "spec"> }
  | { kind: "spec"; ref: string; spec: OrchestrationSpec }
  | { kind: "tombstone"; runId: string }
  | { kind: "invalid"; runId: string | undefined; message: string };

const refs = new WeakMap<OrchestrationSpec, string>();

/**
 * The reference under which a run's spec is stored: `<ns>/<o>/<generation>/<hash>`. The hash makes two
 * different specs under the same generation (an Orchestration deleted and created again) distinct.
 * Cached per spec object.
 */
export function specRef(
  state: Pick<RunState, "namespace" | "orchestration" | "generation" | "spec">,
): string {
  const cached = refs.get(state.spec);
  if (cached !== undefined) return cached;
  const hash = createHash("sha256").update(JSON.stringify(state.spec)).digest("base64url").slice(0, 22);
  const ref = `${state.namespace}/${state.orchestration}/${state.generation}/${hash}`;
  refs.set(state.spec, ref);
  return ref;
}

/** The record that stores spec `ref` in `partition` of the state topic. */
export function encodeSpec(ref: string, spec: OrchestrationSpec, partition: number): OutgoingRecord {
  return {
    key: `${SPEC_KEY_PREFIX}${ref}`,
    value: Buffer.from(JSON.stringify(spec), "utf8"),
    headers: { [STATE_SCHEMA_HEADER]: String(STATE_SCHEMA) },
    partition,
  };
}

/** The record that stores `state` in `partition` of the state topic; its spec goes by `specRef(state)`. */
export function encodeState(state: RunState, partition: number): OutgoingRecord {
  const { spec: _spec, ...rest } = state;
  return {
    key: state.runId,
    value: Buffer.from(JSON.stringify({ ...rest, specRef: specRef(state) }), "utf8"),
    headers: { [STATE_SCHEMA_HEADER]: String(STATE_SCHEMA), [STATE_VERSION_HEADER]: String(state.version) },
    partition,
  };
}

/** The tombstone that makes compaction drop run `runId` from `partition`. */
export function encodeTombstone(runId: string, partition: number): OutgoingRecord {
  return { key: runId, value: null, partition };
}

/** The run version a state record's header announces, or undefined (a schema 1 record, a tombstone). */
export function stateVersionOf(record: Pick<IncomingRecord, "headers">): number | undefined {
  const raw = record.headers[STATE_VERSION_HEADER];
  if (raw === undefined) return undefined;
  const n = Number(raw.toString("latin1"));
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Reads a state topic record. `specs` resolves a run's `specRef` to the spec read earlier (from a spec
 * record); a run whose spec is not known is returned `unresolved`.
 */
export function decodeState(
  record: Pick<IncomingRecord, "key" | "value">,
  specs: (ref: string) => OrchestrationSpec | undefined = () => undefined,
): DecodedState {
  const key = record.key?.toString("utf8");
  if (key === undefined || key === "")
    return { kind: "invalid", runId: undefined, message: "state record without a key" };
  if (key.startsWith(SPEC_KEY_PREFIX)) {
    const ref = key.slice(SPEC_KEY_PREFIX.length);
    if (record.value === null || record.value.length === 0)
      return { kind: "invalid", runId: undefined, message: `spec record ${ref} without a value` };
    try {
      const spec = JSON.parse(record.value.toString("utf8")) as OrchestrationSpec;
      if (typeof spec !== "object" || spec === null || !Array.isArray(spec.steps))
        throw new Error("no steps");
      return { kind: "spec", ref, spec };
    } catch (err) {
      return { kind: "invalid", runId: undefined, message: `spec record ${ref}: ${(err as Error).message}` };
    }
  }
  const runId = key;
  if (record.value === null || record.value.length === 0) return { kind: "tombstone", runId };
  let parsed: unknown;
  try {
    parsed = JSON.parse(record.value.toString("utf8"));
  } catch (err) {
    return {
      kind: "invalid",
      runId,
      message: `state of run ${runId} is not JSON: ${(err as Error).message}`,
    };
  }
  const s = parsed as Partial<Omit<RunState, "schema">> & { schema?: unknown; specRef?: unknown };
  const schemaOk =
    typeof s === "object" &&
    s !== null &&
    ((s.schema === 1 && typeof s.spec === "object") ||
      (s.schema === STATE_SCHEMA && typeof s.specRef === "string"));
  if (
    !schemaOk ||
    s.runId !== runId ||
    typeof s.version !== "number" ||
    !RUN_STATUSES.includes(s.status as RunState["status"]) ||
    !Array.isArray(s.steps)
  ) {
    return {
      kind: "invalid",
      runId,
      message: `state of run ${runId} is not a schema ${STATE_SCHEMA} run record (schema ${String(s?.schema)})`,
    };
  }
  if (s.schema === 1) return { kind: "run", runId, state: { ...(s as RunState), schema: STATE_SCHEMA } };
  const { specRef: ref, ...rest } = s as Omit<RunState, "spec"> & { specRef: string };
  const spec = specs(ref);
  if (!spec) return { kind: "unresolved", runId, specRef: ref, state: rest };
  return { kind: "run", runId, state: { ...rest, spec } };
}
