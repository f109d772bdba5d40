/**
 * Helpers to read errors of the Kubernetes API: the operator's client throws
 * KubeApiError (operator/kube-client/errors.ts) with the HTTP status and the
 * server's Status body. Errors shaped like @kubernetes/client-node's
 * ApiException (`code`, `body`) are read the same way, for code that still
 * talks to the API through it (tests, tools).
 */
import { KubeApiError } from "../kube-client/errors.ts";

/** HTTP status of an API error, or undefined (network errors, timeouts, anything else). */
export function apiStatus(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.statusCode;
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
/** 410 Gone: a watch's or list's resourceVersion is older than the server keeps; relist. */
export const isGone = (err: unknown): boolean => apiStatus(err) === 410;

/**
 * Worth retrying: the server was busy or not ready (429, e.g. "storage is (re)initializing" right after
 * a CRD is installed; 5xx; 408) or did not answer (no HTTP status: connection refused or reset, timeout).
 * Other 4xx (401, 403, 404, ...) say the request or the configuration is wrong: retrying will not help.
 */
export function isTransient(err: unknown): boolean {
  const status = apiStatus(err);
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/** The API server's machine-readable reason (`NotFound`, `Conflict`, `Expired`, ...), when it sent one. */
export function apiReason(err: unknown): string | undefined {
  if (err instanceof KubeApiError) return err.reason;
  const body = typeof err === "object" && err !== null ? (err as { body?: unknown }).body : undefined;
  if (typeof body === "object" && body !== null && "reason" in body) {
    const reason = (body as { reason: unknown }).reason;
    return typeof reason === "string" ? reason : undefined;
  }
  return undefined;
}

/** The API server's human message for an error, when it sent a Status body. */
export function apiMessage(err: unknown): string {
  if (err instanceof KubeApiError) {
    return typeof err.body === "object" && err.body.message ? err.body.message : err.message;
  }
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
