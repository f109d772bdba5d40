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

/**
 * A @platformatic/kafka error's message with what it aggregates and its causes, so a person reading
 * "Cannot connect to any broker" also sees which broker and why (ECONNREFUSED, a timeout, …).
 * Undefined for errors that are not the library's.
 */
export function platformaticDetail(err: unknown): string | undefined {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code !== "string" || !e.code.startsWith("PLT_KFK_")) return undefined;
  const parts: string[] = [];
  const walk = (x: unknown, depth: number): void => {
    if (depth > 4 || x === null || typeof x !== "object") return;
    const y = x as { message?: unknown; errors?: unknown; cause?: unknown };
    const message = typeof y.message === "string" ? y.message.replace(/\.$/, "") : "";
    if (message !== "" && !parts.includes(message)) parts.push(message);
    if (Array.isArray(y.errors)) for (const inner of y.errors.slice(0, 3)) walk(inner, depth + 1);
    walk(y.cause, depth + 1);
  };
  walk(err, 0);
  return parts.join(": ");
}
