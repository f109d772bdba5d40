/**
 * Errors a builder throws when the spec itself is wrong. They are terminal:
 * retrying cannot help until someone edits the resource, so the reconciler
 * sets a condition False with `reason` and `message` and does not requeue.
 */
import { TopicNameError } from "../../services/events/topics.ts";
import { InvalidDurationError, InvalidRetryPolicyError } from "../../services/events/retry.ts";

/** The spec asks for something that cannot be built; `reason` is a CamelCase condition reason. */
export class InvalidSpecError extends Error {
  override readonly name = "InvalidSpecError";
  constructor(
    readonly reason: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A terminal spec error with a condition-ready `reason`, whichever module threw it. */
export type SpecError = Error & { readonly reason: string };

/**
 * True for errors that mean "fix the spec" rather than "try again later".
 * Use it to classify: spec errors become a False condition, anything else is requeued with backoff.
 */
export function isSpecError(err: unknown): err is SpecError {
  return (
    err instanceof InvalidSpecError || err instanceof TopicNameError || err instanceof InvalidRetryPolicyError
  );
}

/** Turns an invalid duration inside a spec into a spec error with `reason`. */
export function specDuration<T>(reason: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof InvalidDurationError) throw new InvalidSpecError(reason, err.message, { cause: err });
    throw err;
  }
}
