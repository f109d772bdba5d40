/**
 * The gateway's run API forwards to the engine's: over a stand-in engine (a
 * local HTTP server recording what it was sent), and with no engine at all.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { build } from "../app.ts";
import { FakeDirectory, FakeKafka, tokenTable, TOKENS } from "../test-support.ts";

const auth = { authorization: `Bearer ${TOKENS.shop}` };
let app: FastifyInstance | undefined;
let engine: Server | undefined;
afterEach(async () => {
  await app?.close();
  await new Promise<void>((r) => (engine ? engine.close(() => r()) : r()));
  app = undefined;
  engine = undefined;
});

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function withEngine(
  status: number,
  body: object,
  contentType = "application/json",
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  engine = createServer((req, res) => {
    let data = "";
    req.on("data", (c: Buffer) => (data += c.toString()));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: data });
      res.writeHead(status, { "content-type": contentType });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => engine?.listen(0, "127.0.0.1", () => r()));
  return { url: `http://127.0.0.1:${(engine.address() as AddressInfo).port}`, seen };
}

async function gateway(engineUrl: string): Promise<FastifyInstance> {
  app = await build({
    kafka: new FakeKafka(),
    orchestrations: new FakeDirectory(),
    tokens: tokenTable(),
    engineUrl,
  });
  return app;
}

describe("the run API on the gateway", () => {
  it("forwards a start with its body and Idempotency-Key and returns the engine's answer", async () => {
    const { url, seen } = await withEngine(202, { id: "run-1", state: "Pending" });
    const res = await (
      await gateway(url)
    ).inject({
      method: "POST",
      url: "/namespaces/shop/orchestrations/orders/runs",
      headers: { ...auth, "content-type": "application/json", "idempotency-key": "k1" },
      payload: { input: { orderId: "A-1" } },
    });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ id: "run-1", state: "Pending" });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: "POST",
      url: "/namespaces/shop/orchestrations/orders/runs",
      body: JSON.stringify({ input: { orderId: "A-1" } }),
    });
    expect(seen[0]?.headers["idempotency-key"]).toBe("k1");
    expect(seen[0]?.headers.authorization).toBeUndefined();
  });

  it("forwards a batch start as it came and returns the engine's per-run answers", async () => {
    const answer = { accepted: 2, failed: 0, items: [{ status: 202 }, { status: 202 }] };
    const { url, seen } = await withEngine(200, answer);
    const payload = { runs: [{ input: { n: 1 } }, { input: { n: 2 }, idempotencyKey: "k" }] };
    const res = await (
      await gateway(url)
    ).inject({
      method: "POST",
      url: "/namespaces/shop/orchestrations/orders/runs/batch",
      headers: { ...auth, "content-type": "application/json" },
      payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(answer);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: "POST",
      url: "/namespaces/shop/orchestrations/orders/runs/batch",
      body: JSON.stringify(payload),
    });
  });

  it("checks a batch start against the token's scope like a single start", async () => {
    const { url, seen } = await withEngine(200, {});
    const res = await (
      await gateway(url)
    ).inject({
      method: "POST",
      url: "/namespaces/shop/orchestrations/refunds/runs/batch",
      headers: { authorization: `Bearer ${TOKENS.checkoutOnly}`, "content-type": "application/json" },
      payload: { runs: [{}] },
    });
    expect(res.statusCode).toBe(403);
    expect(seen).toHaveLength(0);
  });

  it("passes the engine's problem documents through unchanged", async () => {
    const problem = {
      type: "urn:eventloom:problem:run-not-found",
      title: "Run not found",
      status: 404,
      detail: "no run x",
    };
    const { url } = await withEngine(404, problem, "application/problem+json");
    const res = await (
      await gateway(url)
    ).inject({ method: "GET", url: "/namespaces/shop/runs/x", headers: auth });
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toBe("application/problem+json");
    expect(res.json()).toEqual(problem);
  });

  it("requires a token like every other API route", async () => {
    const { url, seen } = await withEngine(200, {});
    const res = await (await gateway(url)).inject({ method: "GET", url: "/namespaces/shop/runs" });
    expect(res.statusCode).toBe(401);
    expect(seen).toHaveLength(0);
  });

  it("answers 503 with Retry-After as a problem when the engine does not answer", async () => {
    const res = await (
      await gateway("http://127.0.0.1:1")
    ).inject({ method: "POST", url: "/namespaces/shop/runs/r1/undo", headers: auth });
    expect(res.statusCode).toBe(503);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    expect(res.headers["retry-after"]).toBe("2");
    expect(res.json()).toMatchObject({ type: "urn:eventloom:problem:engine-unavailable", status: 503 });
  });
});
