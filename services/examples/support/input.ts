/** Reading a command's `{input, steps}` data in the examples, with errors that say what is missing. */
import { NonRetryableError } from "../../sdk/index.ts";

export interface CommandData {
  input: Record<string, unknown>;
  steps: Record<string, Record<string, unknown> | undefined>;
}

/** The command's data as `{input, steps}`; a command without them cannot be handled (non-retryable). */
export function commandData(data: unknown): CommandData {
  if (typeof data !== "object" || data === null)
    throw new NonRetryableError("the command has no data", { name: "InvalidInput" });
  const { input, steps } = data as Partial<CommandData>;
  if (typeof input !== "object" || input === null)
    throw new NonRetryableError("the command's data has no input object", { name: "InvalidInput" });
  return { input, steps: typeof steps === "object" && steps !== null ? steps : {} };
}

/** A required string field of the input. */
export function text(input: Record<string, unknown>, field: string): string {
  const value = input[field];
  if (typeof value !== "string" || value.trim() === "") {
    throw new NonRetryableError(`input.${field} must be a non-empty string`, { name: "InvalidInput" });
  }
  return value;
}

/** A required number field of the input. */
export function amount(input: Record<string, unknown>, field: string): number {
  const value = input[field];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new NonRetryableError(`input.${field} must be a number`, { name: "InvalidInput" });
  }
  return value;
}
