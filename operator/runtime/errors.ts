/** Helpers to read errors of the Kubernetes API client. */

/** HTTP status of an API error from @kubernetes/client-node, or undefined. */
export function apiStatus(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "number") return code;
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    if (typeof statusCode === "number") return statusCode;
  }
  return undefined;
}

export const isNotFound = (err: unknown): boolean => apiStatus(err) === 404;
export const isConflict = (err: unknown): boolean => apiStatus(err) === 409;
export const isAlreadyExists = (err: unknown): boolean => apiStatus(err) === 409;

/** The API server's human message for an error, when it sent a Status body. */
export function apiMessage(err: unknown): string {
  if (typeof err === "object" && err !== null) {
    const body = (err as { body?: unknown }).body;
    if (typeof body === "string") {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return parsed.message;
      } catch {
        return body;
      }
    } else if (typeof body === "object" && body !== null && "message" in body) {
      return String((body as { message: unknown }).message);
    }
    if (err instanceof Error) return err.message;
  }
  return String(err);
}

/**
 * The namespace is being deleted: nothing new can be created in it, and
 * retrying cannot help (the namespace controller removes what is left).
 */
export function isNamespaceTerminating(err: unknown): boolean {
  return apiStatus(err) === 403 && /because it is being terminated/.test(apiMessage(err));
}
