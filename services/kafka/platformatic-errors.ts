/**
 * How the Kafka module reads @platformatic/kafka's errors, without importing the library (the
 * classifier runs in every process; the library loads only where a producer uses it).
 */
const UNAVAILABLE_CODES = new Set(["PLT_KFK_NETWORK", "PLT_KFK_TIMEOUT"]);

/**
 * Whether a @platformatic/kafka error means the cluster did not answer: a network or timeout error
 * anywhere in it (its errors aggregate the attempts of a retried operation).
 */
export function platformaticUnavailable(err: unknown, depth = 0): boolean {
  if (depth > 5 || err === null || typeof err !== "object") return false;
  const e = err as { code?: unknown; errors?: unknown; cause?: unknown };
  if (typeof e.code === "string" && UNAVAILABLE_CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => platformaticUnavailable(x, depth + 1))) return true;
  return platformaticUnavailable(e.cause, depth + 1);
}
