/**
 * The operator's probe and metrics endpoints: `/healthz` (the process is alive
 * and its loops turn), `/readyz` (informers synced, whether or not this replica
 * leads), `/metrics` (Prometheus text).
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { Registry } from "prom-client";

export interface HealthChecks {
  live: () => boolean;
  ready: () => boolean;
}

export function startHealthServer(
  port: number,
  host: string,
  checks: HealthChecks,
  registry: Registry,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/readyz") {
      const ok = path === "/healthz" ? checks.live() : checks.ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "ok" : "not ok");
      return;
    }
    if (path === "/metrics") {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        })
        .catch((err: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(String(err));
        });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
