/**
 * Retry delays of a step, computed from its `RetryPolicy`.
 *
 * Each distinct delay is one shared retry topic of the Orchestration
 * (`<base>-retry-<ms>`, see `topics.ts`), so the delays are whole milliseconds
 * and the same policy always yields the same topics. Seed 001's timeline is the
 * default: fail, wait 1 s, fail, wait 2 s, fail, wait 4 s, fail, dead-letter.
 */
import { DEFAULT_RETRY, MAX_RETRY_ATTEMPTS } from "../../operator/crds/types.ts";
import type { Duration, RetryPolicy } from "../../operator/crds/types.ts";

/** Thrown for a duration string outside `DURATION_PATTERN` (e.g. `"1.5s"`, `"10"`). */
export class InvalidDurationError extends Error {
  override readonly name = "InvalidDurationError";
}

/** Thrown for a retry policy that cannot be turned into delays; `reason` fits a condition. */
export class InvalidRetryPolicyError extends Error {
  override readonly name = "InvalidRetryPolicyError";
  readonly reason = "InvalidRetryPolicy";
}

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(?:[0-9]+(?:ms|s|m|h))+$/;
const DURATION_PART = /([0-9]+)(ms|s|m|h)/g;

/**
 * Parses a Go-style duration (`"500ms"`, `"30s"`, `"1h30m"`; units ms, s, m, h)
 * into whole milliseconds.
 */
export function parseDuration(duration: Duration, field = "duration"): number {
  if (!DURATION.test(duration)) {
    throw new InvalidDurationError(
      `${field} "${duration}" is not a duration: write whole numbers with a unit of ms, s, m or h, e.g. "500ms", "30s", "1h30m"`,
    );
  }
  let ms = 0;
  for (const [, amount, unit] of duration.matchAll(DURATION_PART)) {
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  if (!Number.isSafeInteger(ms)) {
    throw new InvalidDurationError(`${field} "${duration}" is too large to represent in milliseconds`);
  }
  return ms;
}

/**
 * The delay before each retry of a step, in milliseconds, one entry per retry
 * (so `[]` means "dead-letter at the first failure"). Entries repeat when
 * `maxBackoff` caps the growth: `{attempts: 5}` gives 1000, 2000, 4000, 4000, 4000.
 *
 * Missing fields take `DEFAULT_RETRY`'s values, field by field, as the API
 * server's defaulting would. Explicit `tiers` replace the computed sequence;
 * when `attempts` is omitted next to `tiers`, it is taken as `tiers.length`.
 *
 * @throws InvalidRetryPolicyError when the policy is out of range; the message names the field.
 */
export function retryDelaysMs(policy: RetryPolicy | undefined, context = "retry policy"): number[] {
  const p = policy ?? {};
  const attempts = p.attempts ?? (p.tiers ? p.tiers.length : DEFAULT_RETRY.attempts);
  if (!Number.isInteger(attempts) || attempts < 0 || attempts > MAX_RETRY_ATTEMPTS) {
    throw new InvalidRetryPolicyError(
      `${context}: attempts is ${attempts}; use a whole number from 0 to ${MAX_RETRY_ATTEMPTS}`,
    );
  }
  const duration = (value: Duration, field: string): number => {
    let ms: number;
    try {
      ms = parseDuration(value, `${context}: ${field}`);
    } catch (err) {
      throw new InvalidRetryPolicyError((err as Error).message, { cause: err });
    }
    if (ms < 1) {
      throw new InvalidRetryPolicyError(
        `${context}: ${field} is "${value}"; a retry delay must be at least 1ms`,
      );
    }
    return ms;
  };

  if (p.tiers) {
    if (p.tiers.length !== attempts) {
      throw new InvalidRetryPolicyError(
        `${context}: tiers lists ${p.tiers.length} delays but attempts is ${attempts}; give exactly one delay per retry`,
      );
    }
    return p.tiers.map((tier, i) => duration(tier, `tiers[${i}]`));
  }

  const initial = duration(p.initialBackoff ?? DEFAULT_RETRY.initialBackoff, "initialBackoff");
  const max = duration(p.maxBackoff ?? DEFAULT_RETRY.maxBackoff, "maxBackoff");
  const multiplier = p.multiplier ?? DEFAULT_RETRY.multiplier;
  if (!Number.isFinite(multiplier) || multiplier < 1) {
    throw new InvalidRetryPolicyError(
      `${context}: multiplier is ${multiplier}; use a number of at least 1 (1 = constant delay)`,
    );
  }
  if (max < initial) {
    throw new InvalidRetryPolicyError(
      `${context}: maxBackoff (${p.maxBackoff ?? DEFAULT_RETRY.maxBackoff}) is shorter than initialBackoff ` +
        `(${p.initialBackoff ?? DEFAULT_RETRY.initialBackoff}); raise maxBackoff or lower initialBackoff`,
    );
  }
  const delays: number[] = [];
  let next = initial;
  for (let i = 0; i < attempts; i++) {
    delays.push(Math.min(Math.round(next), max));
    next *= multiplier;
  }
  return delays;
}

/**
 * The distinct delays of several policies, ascending: the retry topics an
 * Orchestration needs when its steps share retry tiers.
 */
export function retryTiersMs(
  policies: Iterable<{ policy: RetryPolicy | undefined; context?: string }>,
): number[] {
  const tiers = new Set<number>();
  for (const { policy, context } of policies) for (const ms of retryDelaysMs(policy, context)) tiers.add(ms);
  return [...tiers].sort((a, b) => a - b);
}
