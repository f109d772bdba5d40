/**
 * Run state records on the compacted state topic: key = run id, value = the
 * run as JSON, a null value (tombstone) = the run was forgotten.
 */
import type { IncomingRecord, OutgoingRecord } from "../kafka/client.ts";
import { RUN_STATUSES, STATE_SCHEMA } from "./model.ts";
import type { RunState } from "./model.ts";

/** Header naming the layout of the value, so a future engine can read (or skip) old records. */
export const STATE_SCHEMA_HEADER = "eventloom-state-schema";

export type DecodedState =
  | { kind: "run"; runId: string; state: RunState }
  | { kind: "tombstone"; runId: string }
  | { kind: "invalid"; runId: string | undefined; message: string };

/** The record that stores `state` in `partition` of the state topic. */
export function encodeState(state: RunState, partition: number): OutgoingRecord {
  return {
    key: state.runId,
    value: Buffer.from(JSON.stringify(state), "utf8"),
    headers: { [STATE_SCHEMA_HEADER]: String(STATE_SCHEMA) },
    partition,
  };
}

/** The tombstone that makes compaction drop run `runId` from `partition`. */
export function encodeTombstone(runId: string, partition: number): OutgoingRecord {
  return { key: runId, value: null, partition };
}

export function decodeState(record: Pick<IncomingRecord, "key" | "value">): DecodedState {
  const runId = record.key?.toString("utf8");
  if (runId === undefined || runId === "")
    return { kind: "invalid", runId: undefined, message: "state record without a key" };
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
  const s = parsed as Partial<RunState>;
  if (
    typeof s !== "object" ||
    s === null ||
    s.schema !== STATE_SCHEMA ||
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
  return { kind: "run", runId, state: s as RunState };
}
