/**
 * CPU per run of the run API's start routes, in process (fastify `inject`, no sockets, no Kafka: `send`
 * resolves at once), against a route that does nothing: what accepting a run costs the engine's thread
 * beyond HTTP. `tsx bench/run-api.ts` (BENCH_API_REQUESTS=20000). Prints one line per route.
 */
import Fastify from "fastify";
import { aStep, anOrchestration } from "../operator/builders/fixtures.ts";
import { runApi } from "../services/engine/api.ts";
import { TrustStore } from "../services/events/trust-store.ts";

const REQUESTS = Number(process.env.BENCH_API_REQUESTS ?? 20_000);
const BATCH = 100;
const STEPS = ["reserve", "charge", "ship"];
// The engine benchmark's Orchestration: a 3-step chain, signing none, no inputSchema.
const orchestration = anOrchestration({
  name: "chain",
  namespace: "bench",
  spec: {
    signing: { policy: "none" },
    steps: STEPS.map((s, i) => ({
      ...aStep(s),
      timeout: "2m",
      ...(i > 0 ? { dependsOn: [STEPS[i - 1] as string] } : {}),
    })),
  },
});
const entry = {
  key: "bench/chain",
  namespace: "bench",
  name: "chain",
  generation: 1,
  orchestration,
  signer: undefined,
  trust: new TrustStore([]),
};
const app = Fastify({ logger: false });
await app.register(runApi, {
  orchestrations: { get: () => entry },
  runs: { get: () => undefined, list: () => [], ready: true },
  send: async () => [],
});
app.post("/noop", async (_request, reply) => reply.code(202).send({ ok: true }));
await app.ready();

const cpuMicros = () => {
  const u = process.threadCpuUsage();
  return u.user + u.system;
};

/** Main-thread CPU µs per request (after a warm-up of a tenth as many). */
async function perRequest(
  url: string,
  payload: (i: number) => Record<string, unknown>,
  requests: number,
): Promise<number> {
  for (let i = 0; i < requests / 10; i++) await app.inject({ method: "POST", url, payload: payload(i) });
  const c0 = cpuMicros();
  for (let i = 0; i < requests; i++) await app.inject({ method: "POST", url, payload: payload(i) });
  return (cpuMicros() - c0) / requests;
}

const noop = await perRequest("/noop", (n) => ({ n }), REQUESTS);
const single = await perRequest("/namespaces/bench/orchestrations/chain/runs", (n) => ({ n }), REQUESTS);
const batch = await perRequest(
  "/namespaces/bench/orchestrations/chain/runs/batch",
  (b) => ({ runs: Array.from({ length: BATCH }, (_, i) => ({ input: { n: b * BATCH + i } })) }),
  Math.max(10, Math.round(REQUESTS / BATCH)),
);
const r = (x: number) => Math.round(x * 10) / 10;
console.log(`run API in process: a route doing nothing ${r(noop)} µs CPU per request (fastify + inject)`);
console.log(
  `run API in process: POST .../runs ${r(single)} µs per run (${r(single - noop)} beyond the empty route)`,
);
console.log(
  `run API in process: POST .../runs/batch, ${BATCH} runs per request: ${r(batch / BATCH)} µs per run (${r(batch)} per request)`,
);
await app.close();
