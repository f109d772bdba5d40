/**
 * Errors of the lean Kubernetes client. An answer of the API server that is
 * not a success becomes a `KubeApiError` carrying the HTTP status and the
 * server's `Status` body (reason, message, details), which is what
 * operator/runtime/errors.ts classifies (not found, conflict, gone, ...).
 */

/** The API server's `meta.k8s.io/v1` Status, as sent with an error. */
export interface ApiStatus {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: Array<{ reason?: string; message?: string; field?: string }>;
    retryAfterSeconds?: number;
  };
}

export class KubeApiError extends Error {
  override readonly name = "KubeApiError";

  constructor(
    /** The request, e.g. `PATCH /apis/apps/v1/namespaces/a/deployments/b`. */
    readonly request: string,
    /** HTTP status of the answer (or the `code` of a watch ERROR event). */
    readonly statusCode: number,
    /** The Status the server sent, or its raw text when it was not JSON. */
    readonly body: ApiStatus | string,
  ) {
    const status = typeof body === "object" ? body : undefined;
    const detail = status?.message ?? (typeof body === "string" && body ? body.slice(0, 500) : "");
    super(
      `${request}: ${statusCode}${status?.reason ? ` ${status.reason}` : ""}${detail ? `: ${detail}` : ""}`,
    );
  }

  /** The machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, ...), when sent. */
  get reason(): string | undefined {
    return typeof this.body === "object" ? this.body.reason : undefined;
  }
}

/** An error answer's body: the Status object when it parses as JSON, its text otherwise. */
export function parseStatusBody(text: string): ApiStatus | string {
  if (!text) return "";
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as ApiStatus;
  } catch {
    // not JSON: a proxy's or a load balancer's page
  }
  return text;
}

/** The request took longer than its deadline; the connection was dropped. */
export class KubeTimeoutError extends Error {
  override readonly name = "KubeTimeoutError";
  readonly code = "ETIMEDOUT";

  constructor(
    readonly request: string,
    readonly timeoutMs: number,
  ) {
    super(`${request}: no answer within ${timeoutMs} ms`);
  }
}
