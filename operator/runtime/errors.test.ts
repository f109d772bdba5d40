import { describe, expect, it } from "vitest";
import { KubeApiError, KubeTimeoutError, parseStatusBody } from "../kube-client/errors.ts";
import {
  apiMessage,
  apiReason,
  apiStatus,
  isAlreadyExists,
  isConflict,
  isGone,
  isNamespaceTerminating,
  isNotFound,
  isTransient,
} from "./errors.ts";

const status = (code: number, reason: string, message: string) =>
  new KubeApiError("GET /api/v1/namespaces/a/secrets/b", code, {
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    code,
    reason,
    message,
  });

describe("classification of API errors", () => {
  it.each([
    {
      name: "404 NotFound",
      err: status(404, "NotFound", 'secrets "b" not found'),
      notFound: true,
      conflict: false,
      gone: false,
    },
    {
      name: "409 AlreadyExists",
      err: status(409, "AlreadyExists", "already exists"),
      notFound: false,
      conflict: true,
      gone: false,
    },
    {
      name: "409 Conflict",
      err: status(409, "Conflict", "the object has been modified"),
      notFound: false,
      conflict: true,
      gone: false,
    },
    {
      name: "410 Expired (watch too old)",
      err: status(410, "Expired", "too old resource version"),
      notFound: false,
      conflict: false,
      gone: true,
    },
    {
      name: "503 without a Status body",
      err: new KubeApiError("GET /x", 503, "upstream down"),
      notFound: false,
      conflict: false,
      gone: false,
    },
    {
      name: "a client-node style ApiException",
      err: Object.assign(new Error("HTTP 404"), { code: 404, body: '{"message":"gone"}' }),
      notFound: true,
      conflict: false,
      gone: false,
    },
    {
      name: "a connection refused",
      err: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      notFound: false,
      conflict: false,
      gone: false,
    },
    {
      name: "a timeout",
      err: new KubeTimeoutError("GET /x", 30_000),
      notFound: false,
      conflict: false,
      gone: false,
    },
  ])("$name", ({ err, notFound, conflict, gone }) => {
    expect(isNotFound(err)).toBe(notFound);
    expect(isConflict(err)).toBe(conflict);
    expect(isAlreadyExists(err)).toBe(conflict);
    expect(isGone(err)).toBe(gone);
  });

  it("reads status, reason and message of a KubeApiError", () => {
    const err = status(409, "Conflict", "the object has been modified; please apply your changes");
    expect(apiStatus(err)).toBe(409);
    expect(apiReason(err)).toBe("Conflict");
    expect(apiMessage(err)).toBe("the object has been modified; please apply your changes");
    expect(err.message).toBe(
      "GET /api/v1/namespaces/a/secrets/b: 409 Conflict: the object has been modified; please apply your changes",
    );
  });

  it("falls back to the error's own message when the body is not a Status", () => {
    const err = new KubeApiError("GET /x", 502, "");
    expect(apiReason(err)).toBeUndefined();
    expect(apiMessage(err)).toBe("GET /x: 502");
  });

  it.each([
    {
      name: "a create in a terminating namespace",
      err: status(
        403,
        "Forbidden",
        "unable to create new content in namespace a because it is being terminated",
      ),
      want: true,
    },
    {
      name: "an RBAC refusal",
      err: status(403, "Forbidden", 'secrets is forbidden: User "x" cannot create'),
      want: false,
    },
    { name: "a 404", err: status(404, "NotFound", "because it is being terminated"), want: false },
  ])("isNamespaceTerminating: $name", ({ err, want }) => {
    expect(isNamespaceTerminating(err)).toBe(want);
  });
});

describe("isTransient", () => {
  it.each([
    ["429 storage initializing", status(429, "TooManyRequests", "storage is (re)initializing"), true],
    ["503", status(503, "ServiceUnavailable", "unavailable"), true],
    ["500", status(500, "InternalError", "boom"), true],
    ["408", status(408, "Timeout", "slow"), true],
    [
      "a connection error (no status)",
      Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      true,
    ],
    ["403 (RBAC)", status(403, "Forbidden", "forbidden"), false],
    ["404 (no CRD)", status(404, "NotFound", "not found"), false],
    ["401", status(401, "Unauthorized", "who are you"), false],
  ])("%s → %s", (_what, err, transient) => {
    expect(isTransient(err)).toBe(transient);
  });
});

describe("parseStatusBody", () => {
  it.each([
    {
      name: "a Status",
      text: '{"kind":"Status","code":404,"reason":"NotFound"}',
      want: { kind: "Status", code: 404, reason: "NotFound" },
    },
    { name: "an HTML page from a proxy", text: "<html>bad gateway</html>", want: "<html>bad gateway</html>" },
    { name: "an empty body", text: "", want: "" },
    { name: "a JSON array (not a Status)", text: "[1]", want: "[1]" },
  ])("keeps $name", ({ text, want }) => {
    expect(parseStatusBody(text)).toEqual(want);
  });
});
