/**
 * The client against a fake API server on loopback (plain HTTP): what goes on
 * the wire (method, path, query, content type, auth, body) and how answers,
 * errors and watch streams come back. The real API server is exercised by the
 * operator's integration tests.
 */
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTENT_TYPE, KubeClient, queryString, requestKind } from "./client.ts";
import { KubeApiError, KubeTimeoutError } from "./errors.ts";
import type { WatchEvent } from "./watch-lines.ts";

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server;
let handler: Handler = (_req, res) => res.end("{}");
const seen: Seen[] = [];
let token = "t1";
let client: KubeClient;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        contentType: req.headers["content-type"],
        authorization: req.headers.authorization,
        body,
      });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  client = new KubeClient(
    {
      server: `http://127.0.0.1:${port}`,
      insecureSkipTlsVerify: false,
      authorization: () => `Bearer ${token}`,
      source: "test",
    },
    { timeoutMs: 2000 },
  );
});

afterAll(async () => {
  client.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
};

describe("queryString", () => {
  it.each([
    { query: undefined, want: "" },
    { query: {}, want: "" },
    { query: { a: undefined }, want: "" },
    { query: { fieldManager: "op", force: true }, want: "?fieldManager=op&force=true" },
    {
      query: { labelSelector: "app.kubernetes.io/managed-by=x,a in (b)" },
      want: "?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dx%2Ca+in+%28b%29",
    },
    { query: { watch: 1, timeoutSeconds: 300 }, want: "?watch=1&timeoutSeconds=300" },
  ])("encodes $query", ({ query, want }) => {
    expect(queryString(query)).toBe(want);
  });
});

describe("requestKind", () => {
  it.each([
    ["GET", "/api/v1/namespaces/a/secrets/k", undefined, "get", "secrets"],
    ["GET", "/apis/apps/v1/namespaces/a/deployments", undefined, "list", "deployments"],
    ["GET", "/apis/eventloom.io/v1alpha1/orchestrations", undefined, "list", "orchestrations"],
    ["POST", "/api/v1/namespaces/a/events", undefined, "create", "events"],
    ["PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l", undefined, "update", "leases"],
    [
      "PATCH",
      "/apis/eventloom.io/v1alpha1/namespaces/a/workers/w/status",
      CONTENT_TYPE.apply,
      "apply",
      "workers/status",
    ],
    [
      "PATCH",
      "/apis/apps/v1/namespaces/a/deployments/d/scale",
      CONTENT_TYPE.mergePatch,
      "patch",
      "deployments/scale",
    ],
    ["DELETE", "/api/v1/namespaces/a/configmaps/c", undefined, "delete", "configmaps"],
    ["GET", "/api/v1/namespaces/a", undefined, "get", "namespaces"],
  ])("%s %s is %s of %s", (method, path, contentType, verb, resource) => {
    expect(requestKind(method, path, contentType)).toEqual({ verb, resource });
  });
});

describe("KubeClient.request", () => {
  it.each([
    {
      name: "a GET",
      opts: { path: "/api/v1/namespaces/a/secrets/s" },
      method: "GET",
      contentType: undefined,
    },
    {
      name: "a create",
      opts: {
        method: "POST" as const,
        path: "/api/v1/namespaces/a/secrets",
        body: { metadata: { name: "s" } },
      },
      method: "POST",
      contentType: "application/json",
    },
    {
      name: "a merge patch of a status",
      opts: {
        method: "PATCH" as const,
        path: "/apis/eventloom.io/v1alpha1/namespaces/a/workers/w/status",
        body: { status: { lag: 1 } },
        contentType: CONTENT_TYPE.mergePatch,
      },
      method: "PATCH",
      contentType: "application/merge-patch+json",
    },
    {
      name: "a server-side apply",
      opts: {
        method: "PATCH" as const,
        path: "/apis/apps/v1/namespaces/a/deployments/d",
        query: { fieldManager: "eventloom-operator", force: true },
        body: { apiVersion: "apps/v1", kind: "Deployment" },
        contentType: CONTENT_TYPE.apply,
      },
      method: "PATCH",
      contentType: "application/apply-patch+yaml",
    },
    {
      name: "a JSON patch",
      opts: {
        method: "PATCH" as const,
        path: "/api/v1/namespaces/a/configmaps/c",
        body: [{ op: "remove", path: "/data/x" }],
        contentType: CONTENT_TYPE.jsonPatch,
      },
      method: "PATCH",
      contentType: "application/json-patch+json",
    },
  ])("sends $name as it should", async ({ opts, method, contentType }) => {
    handler = (_req, res) => json(res, 200, { kind: "Thing", metadata: { name: "x" } });
    seen.length = 0;
    const out = await client.request<{ kind: string }>(opts);
    expect(out.kind).toBe("Thing");
    const req = seen[0];
    expect(req?.method).toBe(method);
    expect(req?.url).toBe(`${opts.path}${queryString("query" in opts ? opts.query : undefined)}`);
    expect(req?.contentType).toBe(contentType);
    expect(req?.authorization).toBe("Bearer t1");
    expect(req?.body).toBe("body" in opts ? JSON.stringify(opts.body) : "");
  });

  it("asks the token provider on every request (a rotated token is used at once)", async () => {
    handler = (_req, res) => json(res, 200, {});
    seen.length = 0;
    token = "t2";
    await client.request({ path: "/version" });
    token = "t1";
    expect(seen[0]?.authorization).toBe("Bearer t2");
  });

  it("rejects an error answer with a KubeApiError carrying the status and the Status body", async () => {
    handler = (_req, res) =>
      json(res, 409, {
        kind: "Status",
        code: 409,
        reason: "Conflict",
        message: "the object has been modified",
      });
    const err = await client.request({ method: "PUT", path: "/x", body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).statusCode).toBe(409);
    expect((err as KubeApiError).reason).toBe("Conflict");
    expect((err as KubeApiError).message).toBe("PUT /x: 409 Conflict: the object has been modified");
  });

  it("keeps a non-JSON error body as text", async () => {
    handler = (_req, res) => {
      res.writeHead(502);
      res.end("bad gateway");
    };
    const err = (await client.request({ path: "/x" }).catch((e: unknown) => e)) as KubeApiError;
    expect(err.statusCode).toBe(502);
    expect(err.body).toBe("bad gateway");
  });

  it("gives up after its deadline", async () => {
    handler = () => undefined; // never answers
    const err = await client.request({ path: "/slow", timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeTimeoutError);
  });

  it("resolves an empty 200 body as undefined", async () => {
    handler = (_req, res) => res.end();
    await expect(client.request({ method: "DELETE", path: "/x" })).resolves.toBeUndefined();
  });
});

describe("KubeClient.watch", () => {
  const line = (type: string, name: string, rv: string) =>
    `${JSON.stringify({ type, object: { metadata: { name, resourceVersion: rv } } })}\n`;

  it("asks for a bookmarked watch from the resourceVersion and delivers events across chunk boundaries", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      const all = line("ADDED", "a", "5") + line("BOOKMARK", "", "6") + line("DELETED", "a", "7");
      res.write(all.slice(0, 10));
      setTimeout(() => res.end(all.slice(10)), 20);
    };
    seen.length = 0;
    const events: Array<WatchEvent<{ metadata: { name: string; resourceVersion: string } }>> = [];
    let connected = false;
    await client.watch(
      "/apis/apps/v1/namespaces/a/deployments",
      { resourceVersion: "4", labelSelector: "x=y", timeoutSeconds: 60, onConnect: () => (connected = true) },
      (ev) => events.push(ev as never),
    );
    expect(connected).toBe(true);
    expect(events.map((e) => `${e.type}:${e.object.metadata.resourceVersion}`)).toEqual([
      "ADDED:5",
      "BOOKMARK:6",
      "DELETED:7",
    ]);
    expect(seen[0]?.url).toBe(
      "/apis/apps/v1/namespaces/a/deployments?watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion=4&labelSelector=x%3Dy",
    );
  });

  it("rejects with 410 when the server sends an ERROR event for a too old resourceVersion", async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write(line("ADDED", "a", "5"));
      res.end(
        `${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version: 1 (9)" } })}\n`,
      );
    };
    const events: unknown[] = [];
    const err = await client
      .watch("/w", { resourceVersion: "1" }, (e) => events.push(e))
      .catch((e: unknown) => e);
    expect(events).toHaveLength(1);
    expect((err as KubeApiError).statusCode).toBe(410);
    expect((err as KubeApiError).reason).toBe("Expired");
  });

  it("rejects when the server refuses the watch", async () => {
    handler = (_req, res) =>
      json(res, 403, { kind: "Status", code: 403, reason: "Forbidden", message: "no" });
    const err = await client.watch("/w", {}, () => undefined).catch((e: unknown) => e);
    expect((err as KubeApiError).statusCode).toBe(403);
  });

  it("resolves when aborted mid-stream, without an error", async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write(line("ADDED", "a", "5")); // and never ends
    };
    const ac = new AbortController();
    const events: unknown[] = [];
    const done = client.watch("/w", { signal: ac.signal }, (e) => {
      events.push(e);
      ac.abort();
    });
    await expect(done).resolves.toBeUndefined();
    expect(events).toHaveLength(1);
  });

  it("rejects on a line that is not a watch event", async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.end("<html>proxy error</html>\n");
    };
    await expect(client.watch("/w", {}, () => undefined)).rejects.toThrow(/not JSON/);
  });
});
