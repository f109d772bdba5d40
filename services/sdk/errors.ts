/** Errors a worker's handler throws, and errors the SDK raises about its configuration. */

/**
 * Throw this (or an error whose `cause` chain holds one) from a handler when retrying cannot help, e.g. a
 * declined payment or invalid input: the command goes straight to the dead-letter topic and a
 * `io.eventloom.step.failed` result is published, so the engine compensates at once.
 *
 * `errorType` on the dead-letter record and in the failed result is the `name` you pass, or
 * "NonRetryableError".
 */
export class NonRetryableError extends Error {
  override readonly name: string;
  constructor(message: string, options?: { cause?: unknown; name?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = options?.name ?? "NonRetryableError";
  }
}

/** True when `err` or anything in its `cause` chain is a {@link NonRetryableError}. */
export function isNonRetryable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof NonRetryableError) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The worker's environment or definition cannot work; the message names the variable or step. */
export class WorkerConfigError extends Error {
  override readonly name = "WorkerConfigError";
}
