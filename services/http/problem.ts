/**
 * RFC 9457 problem details, shared by every HTTP surface (the gateway, the engine's run API): one media
 * type, one `type` URN scheme, one document shape and one schema, so clients parse one error format
 * whichever process serves the route. Each surface keeps its own table of problem kinds.
 */
import type { FastifyError } from "fastify";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";
/** `type` URIs are URNs: stable identifiers, documented in docs/gateway.md, not meant to be dereferenced. */
export const PROBLEM_TYPE_PREFIX = "urn:eventloom:problem:";

/** A table of problem kinds: status and title of each. */
export type ProblemTable = Record<string, { readonly status: number; readonly title: string }>;

/** The problem document. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  [extension: string]: unknown;
}

/** Builds the document of `kind` from `table`, with extension members (RFC 9457 §3.2). */
export function problemFrom<T extends ProblemTable>(
  table: T,
  kind: keyof T & string,
  detail: string,
  instance: string,
  extensions: Record<string, unknown> = {},
): Problem {
  const { status, title } = table[kind] as { status: number; title: string };
  return { type: PROBLEM_TYPE_PREFIX + kind, title, status, detail, instance, ...extensions };
}

/** JSON Schema of a problem document (without `$id`: each surface registers or inlines it). */
export const problemSchemaBody = {
  type: "object",
  description: "RFC 9457 problem details (application/problem+json).",
  required: ["type", "title", "status", "detail", "instance"],
  properties: {
    type: { type: "string", description: "URN naming the problem type; see docs/gateway.md." },
    title: { type: "string" },
    status: { type: "integer" },
    detail: { type: "string", description: "What happened, to what, and what to do next." },
    instance: { type: "string", description: "The request path this problem occurred on." },
    errors: {
      type: "array",
      description: "Individual violations (schema errors, invalid parameters).",
      items: {
        type: "object",
        additionalProperties: true,
        properties: {
          instancePath: { type: "string" },
          schemaPath: { type: "string" },
          keyword: { type: "string" },
          message: { type: "string" },
          params: { type: "object", additionalProperties: true },
        },
      },
    },
  },
  additionalProperties: true,
} as const;

/** One entry of a problem's `errors` member. */
export interface ValidationEntry {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  message: string;
  params: Record<string, unknown>;
}

/** fastify's request-validation failures as `errors` entries, or undefined if `error` is not one. */
export function validationEntries(error: FastifyError): ValidationEntry[] | undefined {
  const fe = error as FastifyError & {
    validation?: Array<Record<string, unknown>>;
    validationContext?: string;
  };
  if (fe.validation === undefined) return undefined;
  return fe.validation.map((v) => ({
    instancePath: `${fe.validationContext ?? ""}${String(v.instancePath ?? "")}`,
    schemaPath: String(v.schemaPath ?? ""),
    keyword: String(v.keyword ?? ""),
    message: String(v.message ?? ""),
    params: (v.params as Record<string, unknown> | undefined) ?? {},
  }));
}
