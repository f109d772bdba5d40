import { createServer } from "node:http";
import type { AddressInfo, Server } from "node:net";
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { problemSchema } from "../problem.ts";
import { runRoutes } from "./runs.ts";

// A stand-in engine that answers every request with what it received.
let engine: Server | undefined;
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  await new Promise<void>((resolve) => (engine ? engine.close(() => resolve()) : resolve()));
  app = undefined;
  engine = undefined;
});

async function gateway(): Promise<FastifyInstance> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() }));
    });
  });
  engine = server;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  app = Fastify();
  app.addSchema(problemSchema);
  await app.register(runRoutes, { engineUrl: `http://127.0.0.1:${port}` });
  return app;
}

describe("the gateway's run routes", () => {
  it("forward a batch start to the engine as it came, and its answer back", async () => {
    const gw = await gateway();
    const url = "/namespaces/shop/orchestrations/orders/runs/batch";
    const payload = { runs: [{ input: { n: 1 } }, { input: { n: 2 }, idempotencyKey: "k" }] };
    const res = await gw.inject({ method: "POST", url, payload });
    expect(res.statusCode).toBe(200);
    const seen = res.json() as { method: string; url: string; body: string };
    expect(seen).toMatchObject({ method: "POST", url });
    expect(JSON.parse(seen.body)).toEqual(payload);
  });
});
