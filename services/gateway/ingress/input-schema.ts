/**
 * Validation of event data against an Orchestration's `inputSchema` (JSON Schema draft 2020-12), with
 * one compiled validator per Orchestration generation: compiling costs milliseconds, validating
 * microseconds, and the spec (so the schema) only changes with the generation.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { isJsonContentType } from "../../events/cloudevent.ts";
import type { CloudEvent } from "../../events/cloudevent.ts";
import { ProblemError } from "../problem.ts";

/** One schema violation, as listed in a 422 problem's `errors`. */
export interface SchemaViolation {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  message: string;
  params: Record<string, unknown>;
}

interface Cached {
  generation: number;
  validate?: ValidateFunction;
  compileError?: string;
}

/** Most violations reported per event: enough to fix a request, bounded for a hostile one. */
export const MAX_REPORTED_VIOLATIONS = 20;

export class InputSchemas {
  private readonly cache = new Map<string, Cached>();
  private readonly ajv: Ajv2020;

  constructor() {
    // strict: false, so keywords the schema author added for documentation (and formats, which need
    // ajv-formats) are ignored rather than making the whole schema unusable.
    this.ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
  }

  /**
   * Checks `event.data` against `schema`. `key` and `generation` identify the Orchestration spec the
   * schema came from (the cache key).
   * @throws ProblemError `schema-violation` (422), `unsupported-media-type` (415) for non-JSON data,
   *   `invalid-json` (400), or `invalid-input-schema` (500) when the schema itself does not compile.
   */
  check(key: string, generation: number, schema: Record<string, unknown>, event: CloudEvent): void {
    const validate = this.validatorFor(key, generation, schema);
    const contentType = event.datacontenttype ?? "application/json";
    if (!isJsonContentType(contentType)) {
      throw new ProblemError(
        "unsupported-media-type",
        `Orchestration ${key} declares an inputSchema, so its run input must be JSON; this event's datacontenttype is "${contentType}".`,
      );
    }
    let data: unknown = null;
    if (event.data !== null) {
      try {
        data = JSON.parse(event.data.toString("utf8"));
      } catch (err) {
        throw new ProblemError(
          "invalid-json",
          `The event data is not valid JSON: ${(err as Error).message}.`,
        );
      }
    }
    if (validate(data)) return;
    const errors = (validate.errors ?? []).slice(0, MAX_REPORTED_VIOLATIONS).map(toViolation);
    const first = errors[0];
    throw new ProblemError(
      "schema-violation",
      `The event data does not satisfy the inputSchema of Orchestration ${key}` +
        (first ? `: ${first.instancePath || "(root)"} ${first.message}` : "") +
        (errors.length > 1
          ? ` (and ${(validate.errors?.length ?? errors.length) - 1} more, listed in errors)`
          : "") +
        ".",
      { extensions: { errors } },
    );
  }

  /** Drops the compiled validator of an Orchestration that was deleted. */
  forget(key: string): void {
    const cached = this.cache.get(key);
    if (cached?.validate) this.ajv.removeSchema(cached.validate.schema as object);
    this.cache.delete(key);
  }

  private validatorFor(key: string, generation: number, schema: Record<string, unknown>): ValidateFunction {
    let cached = this.cache.get(key);
    if (cached === undefined || cached.generation !== generation) {
      if (cached?.validate) this.ajv.removeSchema(cached.validate.schema as object);
      cached = { generation };
      try {
        // A copy without $id: two Orchestrations may use the same $id, which ajv would refuse to add twice.
        const { $id: _id, ...rest } = schema;
        cached.validate = this.ajv.compile(rest);
      } catch (err) {
        cached.compileError = (err as Error).message;
      }
      this.cache.set(key, cached);
    }
    if (cached.validate === undefined) {
      throw new ProblemError(
        "invalid-input-schema",
        `The inputSchema of Orchestration ${key} does not compile (${cached.compileError ?? "unknown error"}); fix the Orchestration's spec.inputSchema.`,
      );
    }
    return cached.validate;
  }
}

function toViolation(e: ErrorObject): SchemaViolation {
  return {
    instancePath: e.instancePath,
    schemaPath: e.schemaPath,
    keyword: e.keyword,
    message: e.message ?? e.keyword,
    params: e.params as Record<string, unknown>,
  };
}
