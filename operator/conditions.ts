/**
 * The operator's one condition helper (`metav1.Condition` semantics, after
 * cert-manager's `pkg/api/util/conditions.go`):
 *
 * - `setCondition` returns a new list; a condition's `lastTransitionTime`
 *   changes only when its `status` flips, never when just the reason,
 *   message or observedGeneration change;
 * - `statusChanged` tells whether a newly computed status differs from the
 *   stored one in anything but condition order and `lastTransitionTime`, so
 *   the operator writes `/status` only when a person would see a difference.
 *
 * Time comes in as an argument (no hidden clock), so tests use a fake one.
 */
import { isDeepStrictEqual } from "node:util";
import { CONDITION_STATUSES } from "./crds/types.ts";
import type { Condition } from "./crds/types.ts";

/** A condition as a reconciler computes it; `setCondition` fills in `lastTransitionTime`. */
export type ConditionInput = Omit<Condition, "lastTransitionTime">;

/** A condition that the API server would refuse (a programming error, not a user error). */
export class InvalidConditionError extends Error {
  override readonly name = "InvalidConditionError";
}

/** metav1.Condition's limits (k8s.io/apimachinery/pkg/apis/meta/v1/validation). */
export const MAX_CONDITION_MESSAGE_LENGTH = 32_768;
const MAX_REASON_LENGTH = 1024;
const MAX_TYPE_LENGTH = 316;
const TYPE_PATTERN =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/;
/** metav1's reason pattern, additionally starting with a capital (CamelCase, e.g. `WorkerMissing`). */
const REASON_PATTERN = /^[A-Z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const TRUNCATION_MARK = "… (truncated)";

/**
 * RFC 3339 at whole seconds, as `metav1.Time` serializes: `2025-01-02T03:04:05Z`.
 * Sub-second digits would only make equal times look different after a round trip.
 */
export function formatConditionTime(now: Date): string {
  const ms = now.getTime();
  if (Number.isNaN(ms))
    throw new InvalidConditionError("the time given for lastTransitionTime is an invalid Date");
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * Returns `conditions` with `next` set, as a new array (the input is not changed).
 * - No condition of that type yet: appended, `lastTransitionTime` = `now`.
 * - Same type, same status: replaced in place, `lastTransitionTime` kept.
 * - Same type, other status: replaced in place, `lastTransitionTime` = `now`.
 * A message over metav1's 32768 characters is truncated rather than failing the status write.
 *
 * @throws InvalidConditionError when type, status, reason or observedGeneration break metav1's rules.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: ConditionInput,
  now: Date,
): Condition[] {
  validate(next);
  const list = conditions ?? [];
  const index = list.findIndex((c) => c.type === next.type);
  const existing = index === -1 ? undefined : list[index];
  const condition: Condition = {
    type: next.type,
    status: next.status,
    ...(next.observedGeneration === undefined ? {} : { observedGeneration: next.observedGeneration }),
    lastTransitionTime:
      existing !== undefined && existing.status === next.status
        ? existing.lastTransitionTime
        : formatConditionTime(now),
    reason: next.reason,
    message: truncateMessage(next.message),
  };
  if (index === -1) return [...list, condition];
  return list.map((c, i) => (i === index ? condition : c));
}

/** `setCondition` for several conditions in order, all at the same `now`. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  nexts: readonly ConditionInput[],
  now: Date,
): Condition[] {
  return nexts.reduce<Condition[]>((acc, next) => setCondition(acc, next, now), [...(conditions ?? [])]);
}

/** Returns `conditions` without the condition of `type`, as a new array. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** The condition of `type`, if present. */
export function getCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True only when the condition of `type` exists with status `"True"`. */
export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === "True";
}

/**
 * Whether two condition lists say the same thing: the same types with the same
 * status, reason, message and observedGeneration. Order and `lastTransitionTime`
 * are ignored; a missing list equals an empty one.
 */
export function conditionsEqual(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const left = meaningByType(a ?? []);
  const right = meaningByType(b ?? []);
  if (left.size !== right.size) return false;
  for (const [type, meaning] of left) {
    if (!isDeepStrictEqual(meaning, right.get(type))) return false;
  }
  return true;
}

/**
 * Whether `next` should be written over `old` (the stored status, if any).
 * Conditions compare with `conditionsEqual`; every other field compares as
 * JSON (key order and `undefined` members do not count), as the API server
 * would store it.
 */
export function statusChanged<S extends { conditions?: readonly Condition[] | undefined }>(
  old: S | undefined,
  next: S,
): boolean {
  const { conditions: oldConditions, ...oldRest } = old ?? ({} as Partial<S>);
  const { conditions: nextConditions, ...nextRest } = next;
  if (!conditionsEqual(oldConditions, nextConditions)) return true;
  return !isDeepStrictEqual(asJson(oldRest), asJson(nextRest));
}

function validate(next: ConditionInput): void {
  const where = `condition ${JSON.stringify(next.type)}`;
  if (next.type.length > MAX_TYPE_LENGTH || !TYPE_PATTERN.test(next.type)) {
    throw new InvalidConditionError(
      `${where}: the type must be a qualified name such as "Ready" or "eventloom.io/Bound"`,
    );
  }
  if (!(CONDITION_STATUSES as readonly string[]).includes(next.status)) {
    throw new InvalidConditionError(
      `${where}: status "${next.status}" must be one of ${CONDITION_STATUSES.join(", ")}`,
    );
  }
  if (next.reason.length > MAX_REASON_LENGTH || !REASON_PATTERN.test(next.reason)) {
    throw new InvalidConditionError(
      `${where}: reason "${next.reason}" must be CamelCase, e.g. "WorkerMissing" (letters, digits, "_", ",", ":")`,
    );
  }
  const generation = next.observedGeneration;
  if (generation !== undefined && (!Number.isSafeInteger(generation) || generation < 0)) {
    throw new InvalidConditionError(`${where}: observedGeneration ${generation} must be a whole number ≥ 0`);
  }
}

function truncateMessage(message: string): string {
  if (message.length <= MAX_CONDITION_MESSAGE_LENGTH) return message;
  return message.slice(0, MAX_CONDITION_MESSAGE_LENGTH - TRUNCATION_MARK.length) + TRUNCATION_MARK;
}

function meaningByType(conditions: readonly Condition[]): Map<string, unknown> {
  return new Map(
    conditions.map((c) => [
      c.type,
      {
        status: c.status,
        reason: c.reason,
        message: truncateMessage(c.message),
        observedGeneration: c.observedGeneration,
      },
    ]),
  );
}

function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? {})) as unknown;
}
