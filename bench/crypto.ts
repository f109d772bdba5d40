/**
 * Cost per event of the signing pipeline (issue "Event plane benchmarks", part c): Ed25519 alone, the
 * verification material, the Kafka binding, trace context, and the full producer and consumer steps
 * (`Signer.sign` + `encodeRecord` + trace inject; trace extract + `Verifier.verifyRecord`), signed and
 * under policy `none`.
 *
 *   tsx bench/crypto.ts                 (BENCH_REPEATS=3 runs, median reported)
 *
 * Every figure is taken twice: wall-clock µs per call and CPU µs per call of the main thread
 * (`process.threadCpuUsage`). On a shared machine the CPU figure is the stable one (it does not count time
 * the thread spent descheduled); the wall figure is what a caller waits. Within a run each row is the
 * median of `ROUNDS` rounds; the result is the median of the runs. bench/throughput.ts imports the fixtures
 * and `measureCrypto` from here so its crypto limit is measured on the same events in the same run.
 */
import { createHash, hash, sign as ed25519Sign, verify as ed25519Verify } from "node:crypto";
import { loadavg } from "node:os";
import { ROOT_CONTEXT, trace, TraceFlags } from "@opentelemetry/api";
import type { Context } from "@opentelemetry/api";
import { decodeRecord, encodeRecord } from "../services/events/binding.ts";
import type { KafkaMessage, KafkaRecord } from "../services/events/binding.ts";
import type { CloudEvent } from "../services/events/cloudevent.ts";
import { pae, PAYLOAD_TYPE } from "../services/events/dsse.ts";
import { generateSigningKey } from "../services/events/keys.ts";
import type { SigningKey } from "../services/events/keys.ts";
import { materialDigest } from "../services/events/material.ts";
import { Signer, Verifier } from "../services/events/signing.ts";
import { TrustStore } from "../services/events/trust-store.ts";
import { extractTraceContext, injectTraceContext } from "../services/tracing/index.ts";
import { machine, writeResult } from "./support.ts";

// ---------------------------------------------------------------------------------------------------------
// Fixtures shared with bench/throughput.ts and bench/kafka-clients.ts

export const BENCH_NAMESPACE = "bench";
export const BENCH_ORCHESTRATION = "orders";
export const BENCH_SOURCE = `/eventloom/${BENCH_NAMESPACE}/${BENCH_ORCHESTRATION}`;
export const BENCH_TYPE = "com.example.order.placed";

/** ~190 bytes of JSON, the size of the seeds' order events. */
export function benchData(i: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      orderId: `ORD-${100000 + i}`,
      customerId: `CUST-${i % 997}`,
      productId: `P-${i % 31}`,
      quantity: 1 + (i % 5),
      amount: 19.99 + (i % 100),
      currency: "EUR",
      shippingAddress: { city: "Berlin", zip: "10115", country: "DE" },
    }),
  );
}

function uuidLike(i: number, salt: number): string {
  const hex = createHash("sha256").update(`${salt}:${i}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Event `i` as the gateway writes it to a topic (docs/gateway.md, "What the gateway writes"): the
 * Orchestration's source, a derived id, the client's source and id, run id, destination.
 */
export function benchEvent(i: number, topic: string, salt = 1): CloudEvent {
  const id = uuidLike(i, salt);
  const run = uuidLike(i, salt + 1);
  return {
    id,
    source: BENCH_SOURCE,
    specversion: "1.0",
    type: BENCH_TYPE,
    datacontenttype: "application/json",
    time: new Date(Date.UTC(2026, 0, 30, 12, 0, 0, i % 1000)).toISOString(),
    extensions: {
      originsource: "/shop/web",
      originid: `web-${salt}-${i}`,
      partitionkey: run,
      runid: run,
      destination: topic,
    },
    data: benchData(i),
  };
}

/** A trace context as a client would send it (one trace per run), to inject into the record. */
export function runTraceContext(i: number): Context {
  const traceId = createHash("md5").update(`trace:${i}`).digest("hex");
  const spanId = traceId.slice(0, 16);
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
}

/** The key and matching verifiers (trust as the operator publishes it for the gateway's key). */
export function benchKeys(key: SigningKey = generateSigningKey()): {
  key: SigningKey;
  signer: Signer;
  verifier: Verifier;
  unsignedVerifier: Verifier;
} {
  const trust = new TrustStore([{ publicKey: key.publicKey, sources: [BENCH_SOURCE], types: ["*"] }]);
  return {
    key,
    signer: new Signer(key),
    verifier: new Verifier(trust, { requiredExtensions: ["partitionkey", "destination"] }),
    unsignedVerifier: new Verifier(trust, { policy: "none" }),
  };
}

/** What a consumer gets back from kafkajs for a produced message: Buffer key and header values. */
export function asConsumed(
  message: KafkaMessage & { headers: Record<string, string | Buffer> },
): KafkaRecord {
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(message.headers)) headers[k] = Buffer.isBuffer(v) ? v : Buffer.from(v);
  return { key: message.key === null ? null : Buffer.from(message.key), value: message.value, headers };
}

// ---------------------------------------------------------------------------------------------------------
// Measuring

export interface Cost {
  /** Median over rounds of wall-clock µs per call. */
  wallUs: number;
  /** Median over rounds of main-thread CPU µs per call. */
  cpuUs: number;
  /** Fastest round, wall-clock µs per call. */
  bestWallUs: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}
export { median };

function cpuMicros(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

/**
 * µs per call of `fn(i)`, `iterations` calls per round, `rounds` rounds after one warm-up round. `fn` gets a
 * running index so callers can cycle through distinct inputs (no result caching anywhere, but distinct
 * events keep the hash and base64 work honest).
 */
export function cost(fn: (i: number) => unknown, iterations: number, rounds = 9): Cost {
  let sink = 0;
  let index = 0;
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let round = -1; round < rounds; round++) {
    const c0 = cpuMicros();
    const t0 = performance.now();
    for (let n = 0; n < iterations; n++) if (fn(index++) !== undefined) sink++;
    const wall = ((performance.now() - t0) * 1000) / iterations;
    const cpu = (cpuMicros() - c0) / iterations;
    if (round >= 0) {
      walls.push(wall);
      cpus.push(cpu);
    }
  }
  if (sink < 0) console.log(sink);
  return { wallUs: median(walls), cpuUs: median(cpus), bestWallUs: Math.min(...walls) };
}

export interface CryptoCosts {
  rows: Record<string, Cost>;
  /** µs per event the producer spends signing (Signer.sign), consumer verifying (verifyRecord). */
  signUs: number;
  verifyUs: number;
}

export const SIGN_ROW = "Signer.sign (one key)";
export const VERIFY_ROW = "Verifier.verifyRecord (decode + verify)";

/** Measures every row (or the rows named in `only`) once: one "run". `scale` shortens the loops (1 = full). */
export function measureCrypto(
  scale = 1,
  only?: string[],
  topic = "eventloom.bench.orders-results",
): CryptoCosts {
  const { key, signer, verifier, unsignedVerifier } = benchKeys();
  const POOL = 512;
  const events = Array.from({ length: POOL }, (_, i) => benchEvent(i, topic));
  const contexts = Array.from({ length: POOL }, (_, i) => runTraceContext(i));
  const signed = events.map((e) => signer.sign(e));
  const producedSigned = signed.map((e, i) => {
    const m = encodeRecord(e);
    return { ...m, headers: injectTraceContext({ ...m.headers }, contexts[i]) };
  });
  const producedUnsigned = events.map((e, i) => {
    const m = encodeRecord(e);
    return { ...m, headers: injectTraceContext({ ...m.headers }, contexts[i]) };
  });
  const consumedSigned = producedSigned.map(asConsumed);
  const consumedUnsigned = producedUnsigned.map(asConsumed);
  for (const r of consumedSigned)
    if (!verifier.verifyRecord(r).ok) throw new Error("fixture does not verify");
  for (const r of consumedUnsigned)
    if (!unsignedVerifier.verifyRecord(r).ok) throw new Error("unsigned fixture refused");
  const paes = signed.map((e) =>
    pae(
      PAYLOAD_TYPE,
      materialDigest(e, ["destination", "originid", "originsource", "partitionkey", "runid"]),
    ),
  );
  const sigs = paes.map((m) => ed25519Sign(null, m, key.privateKey));
  const n = (base: number) => Math.max(50, Math.round(base * scale));
  const at = <T>(list: T[], i: number): T => list[i % POOL] as T;

  // The upstream proposal's layout (a digest per field, then one over the digests), for comparison.
  const digestOfDigests = (e: CloudEvent): Buffer => {
    const parts = [
      e.id,
      e.source,
      e.specversion,
      e.type,
      e.datacontenttype ?? "",
      "",
      e.subject ?? "",
      e.time ?? "",
    ].map((v) => hash("sha256", v, "buffer"));
    for (const [k, v] of Object.entries(e.extensions))
      parts.push(hash("sha256", k, "buffer"), hash("sha256", v, "buffer"));
    parts.push(hash("sha256", e.data ?? "", "buffer"));
    return hash("sha256", Buffer.concat(parts), "buffer");
  };
  const ext = ["destination", "originid", "originsource", "partitionkey", "runid"];

  const decodedSigned = consumedSigned.map((r) => {
    const d = decodeRecord(r);
    if (!d.ok) throw d.error;
    return d.event;
  });
  const table: Record<string, () => Cost> = {
    "Ed25519 sign (node:crypto alone)": () =>
      cost((i) => ed25519Sign(null, at(paes, i), key.privateKey), n(1500)),
    "Ed25519 verify (node:crypto alone)": () =>
      cost((i) => ed25519Verify(null, at(paes, i), key.publicKey, at(sigs, i)), n(600)),
    "material: one framed SHA-256 (ours)": () => cost((i) => materialDigest(at(events, i), ext), n(20000)),
    "material: digest of digests (proposal layout, 17 SHA-256)": () =>
      cost((i) => digestOfDigests(at(events, i)), n(10000)),
    "encodeRecord (binary)": () => cost((i) => encodeRecord(at(signed, i)), n(20000)),
    "decodeRecord (binary, Buffer headers)": () => cost((i) => decodeRecord(at(consumedSigned, i)), n(20000)),
    "trace inject (injectTraceContext)": () => cost((i) => injectTraceContext({}, at(contexts, i)), n(20000)),
    "trace extract (extractTraceContext)": () =>
      cost((i) => extractTraceContext(at(consumedSigned, i).headers), n(20000)),
    "Signer.sign (one key)": () => cost((i) => signer.sign(at(events, i)), n(1500)),
    "Verifier.verify (decoded event)": () => cost((i) => verifier.verify(at(decodedSigned, i)), n(600)),
    "Verifier.verifyRecord (decode + verify)": () =>
      cost((i) => verifier.verifyRecord(at(consumedSigned, i)), n(600)),
    "producer step, signed: sign + encode + inject": () =>
      cost((i) => {
        const m = encodeRecord(signer.sign(at(events, i)));
        return injectTraceContext({ ...m.headers }, at(contexts, i));
      }, n(1500)),
    "consumer step, signed: extract + verifyRecord": () =>
      cost((i) => {
        const r = at(consumedSigned, i);
        extractTraceContext(r.headers);
        return verifier.verifyRecord(r);
      }, n(600)),
    "producer step, policy none: encode + inject": () =>
      cost((i) => {
        const m = encodeRecord(at(events, i));
        return injectTraceContext({ ...m.headers }, at(contexts, i));
      }, n(20000)),
    "consumer step, policy none: extract + verifyRecord": () =>
      cost((i) => {
        const r = at(consumedUnsigned, i);
        extractTraceContext(r.headers);
        return unsignedVerifier.verifyRecord(r);
      }, n(20000)),
  };
  const rows: Record<string, Cost> = {};
  for (const [name, measure] of Object.entries(table))
    if (only === undefined || only.includes(name)) rows[name] = measure();
  return {
    rows,
    signUs: rows[SIGN_ROW]?.cpuUs ?? NaN,
    verifyUs: rows[VERIFY_ROW]?.cpuUs ?? NaN,
  };
}

/** The median, per row and field, of several runs. */
export function medianCosts(runs: CryptoCosts[]): CryptoCosts {
  const first = runs[0];
  if (first === undefined) throw new Error("no runs");
  const rows: Record<string, Cost> = {};
  for (const name of Object.keys(first.rows)) {
    const of = (f: keyof Cost) => median(runs.map((r) => r.rows[name]?.[f] ?? NaN));
    rows[name] = { wallUs: of("wallUs"), cpuUs: of("cpuUs"), bestWallUs: of("bestWallUs") };
  }
  return { rows, signUs: median(runs.map((r) => r.signUs)), verifyUs: median(runs.map((r) => r.verifyUs)) };
}

/**
 * Waits (bounded) for a quieter machine before a measurement: until the 1-minute load average is below
 * BENCH_QUIET_LOAD (default 4 on this 2-core machine) or BENCH_QUIET_WAIT_S (default 120) seconds passed.
 * Colleagues' test runs come and go; this keeps repetitions off the worst peaks without waiting forever.
 */
export async function awaitQuiet(label: string): Promise<void> {
  const limit = Number(process.env.BENCH_QUIET_LOAD ?? 4);
  const deadline = Date.now() + Number(process.env.BENCH_QUIET_WAIT_S ?? 120) * 1000;
  const start = loadavg()[0] ?? 0;
  while ((loadavg()[0] ?? 0) >= limit && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5000));
  console.error(
    `${label}: load average ${start.toFixed(2)} → ${(loadavg()[0] ?? 0).toFixed(2)} (waited for < ${limit}, at most ${process.env.BENCH_QUIET_WAIT_S ?? 120} s)`,
  );
}

export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
}

if (import.meta.main) {
  const repeats = Number(process.env.BENCH_REPEATS ?? 3);
  const loadBefore = loadAverage();
  const runs: CryptoCosts[] = [];
  for (let r = 0; r < repeats; r++) {
    await awaitQuiet(`run ${r + 1}/${repeats}`);
    runs.push(measureCrypto());
    console.error(`run ${r + 1}/${repeats} done`);
  }
  const loadAfter = loadAverage();
  const result = medianCosts(runs);
  const sample = benchEvent(0, "eventloom.bench.orders-results");
  const { signer } = benchKeys();
  const record = encodeRecord(signer.sign(sample));
  const recordBytes =
    (record.value?.length ?? 0) +
    (record.key?.length ?? 0) +
    Object.entries(record.headers).reduce((s, [k, v]) => s + k.length + Buffer.byteLength(v), 0);
  console.log(`\nmachine: ${machine()}`);
  console.log(`load average (1, 5, 15 min): before ${loadBefore}; after ${loadAfter}`);
  console.log(
    `signed record: ${recordBytes} bytes (key + value + headers), data ${sample.data?.length} bytes\n`,
  );
  console.log(
    `${"operation".padEnd(58)} ${"CPU µs".padStart(8)} ${"wall µs".padStart(8)} ${"best".padStart(8)}`,
  );
  for (const [name, c] of Object.entries(result.rows)) {
    console.log(
      `${name.padEnd(58)} ${c.cpuUs.toFixed(1).padStart(8)} ${c.wallUs.toFixed(1).padStart(8)} ${c.bestWallUs.toFixed(1).padStart(8)}`,
    );
  }
  const signedPipeline = result.signUs + result.verifyUs;
  console.log(
    `\nsign ${result.signUs.toFixed(1)} µs + verifyRecord ${result.verifyUs.toFixed(1)} µs = ${signedPipeline.toFixed(1)} µs of CPU per signed event ` +
      `(one core: ${Math.round(1e6 / signedPipeline)} events/s; producer and consumer on separate cores: ${Math.round(1e6 / Math.max(result.signUs, result.verifyUs))} events/s)`,
  );
  const path = writeResult("crypto", {
    benchmark: "crypto",
    machine: machine(),
    loadAverage: { before: loadBefore, after: loadAfter },
    repeats,
    recordBytes,
    dataBytes: sample.data?.length,
    note: "µs per call; cpuUs = main-thread CPU time, wallUs = wall clock; each the median of 9 rounds, then the median of the runs",
    rows: result.rows,
    runs: runs.map((r) => r.rows),
  });
  console.log(`wrote ${path}`);
}
