import { createHash } from "node:crypto";
import { stableStringify } from "../../operator/builders/meta.ts";

/** SHA-256 of the canonical JSON of a run input: tells an idempotent retry from a reused Idempotency-Key. */
export function inputHash(input: unknown): string {
  return createHash("sha256")
    .update(stableStringify(input ?? null))
    .digest("hex");
}
