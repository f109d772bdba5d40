/**
 * Authentication, authorization and rate limiting of the API routes, in that order, before the body is
 * read: a request without a valid token costs no body parsing, and an unauthenticated client cannot
 * spend an authenticated one's rate budget (the limiter is keyed by the token's name).
 */
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ANONYMOUS, bearerToken, mayAccess } from "../auth.ts";
import { ProblemError } from "../problem.ts";

/** Header naming the Orchestration on `POST /events`. */
export const ORCHESTRATION_HEADER = "eventloom-orchestration";

/** The Orchestration a request is for: from the path, or from the header on `POST /events`. */
export function targetOf(request: FastifyRequest): { namespace: string; name: string } | undefined {
  const params = request.params as { namespace?: string; name?: string } | undefined;
  if (params?.namespace !== undefined && params.name !== undefined)
    return { namespace: params.namespace, name: params.name };
  const header = request.headers[ORCHESTRATION_HEADER];
  const value = Array.isArray(header) ? header[0] : header;
  const [namespace, name, ...rest] = (value ?? "").split("/");
  if (!namespace || !name || rest.length > 0) return undefined;
  return { namespace, name };
}

/** Adds the auth hook and the rate limiter to `api` (an encapsulated context holding the API routes). */
export async function protect(api: FastifyInstance): Promise<void> {
  const { config, tokens } = api.gateway;
  api.addHook("onRequest", async (request, reply) => {
    if (config.auth === "none" || tokens === undefined) {
      request.principal = ANONYMOUS;
      return;
    }
    const header = request.headers.authorization;
    const token = bearerToken(header);
    if (token === undefined) {
      void reply.header("www-authenticate", 'Bearer realm="eventloom"');
      throw new ProblemError(
        "unauthorized",
        header === undefined
          ? "This API needs a bearer token: send Authorization: Bearer <token> (ask your platform team for one)."
          : "The Authorization header is not a bearer token: send Authorization: Bearer <token>.",
      );
    }
    const principal = tokens.authenticate(token);
    if (principal === undefined) {
      void reply.header("www-authenticate", 'Bearer realm="eventloom", error="invalid_token"');
      throw new ProblemError(
        "unauthorized",
        "The bearer token is not valid (unknown, or rotated out); get a current one.",
      );
    }
    request.principal = principal;
    const target = targetOf(request);
    if (target !== undefined && !mayAccess(principal, target.namespace, target.name)) {
      throw new ProblemError(
        "forbidden",
        `Token "${principal.name}" may act on ${principal.scopes.join(", ")}, not on Orchestration ${target.namespace}/${target.name}.`,
      );
    }
  });
  await api.register(rateLimit, {
    global: true,
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    // Without authentication every request is "anonymous": limit per client address instead.
    keyGenerator: (request) =>
      request.principal !== undefined && request.principal !== ANONYMOUS
        ? `token:${request.principal.name}`
        : `ip:${request.ip}`,
    errorResponseBuilder: (request, context) =>
      new ProblemError(
        "rate-limited",
        `${request.principal !== undefined && request.principal !== ANONYMOUS ? `Token "${request.principal.name}"` : `Client ${request.ip}`} sent more than ${context.max} requests in ${config.rateLimitWindowMs} ms; retry after ${context.after}.`,
        { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) },
      ),
  });
}
