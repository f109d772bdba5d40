/**
 * End-to-end throughput of the event plane (issue "Event plane benchmarks", part b): N events produced,
 * consumed and checked through the real Kafka broker, with the producer and the consumer in two processes
 * (so producer-side signing and consumer-side verification run in parallel on the 2 cores).
 *
 *   tsx bench/throughput.ts      (BENCH_EVENTS=30000, BENCH_BATCH=500, BENCH_IN_FLIGHT=4, BENCH_PARTITIONS=3,
 *                                 BENCH_REPEATS=3; the median of the repetitions is reported)
 *
 * Variants, each on a fresh topic, in one run:
 * - signed:   Signer.sign + encodeRecord + W3C trace context injected, written in batches through
 *             services/kafka/client.ts; consumed with its runBatches, each record's trace context extracted
 *             and `Verifier.verifyRecord` run on the raw bytes (requiredExtensions partitionkey, destination).
 * - unsigned: the same with signing policy `none` (encode + trace on the way in, verifyRecord under policy
 *             `none` — decode and CloudEvents validation — on the way out).
 * - raw:      plain kafkajs producer and consumer with the same settings as the Kafka module, writing the
 *             exact bytes the matching variant wrote (prepared before the clock starts) and counting them.
 *             There is one raw run per variant (raw-signed and raw-unsigned), so each ratio compares equal
 *             bytes on the wire.
 * Throughput = N / (last record consumed − first send). CPU per event = CPU time of the producer and
 * consumer processes (process.cpuUsage over the timed part) / N.
 *
 * The crypto limit (`signed/crypto-limit`): sign = Signer.sign and verify = Verifier.verifyRecord, CPU µs per
 * event on one core, measured by a microbenchmark (bench/crypto.ts) in this run. A pipeline that did
 * nothing but those two would need (sign + verify) µs of CPU per event, so with the cores it actually got it
 * could move at most cores_used / (sign + verify) events/s, where cores_used = (producer CPU + consumer CPU)
 * / wall time of the run. That is the limit the ratio uses; it equals (sign + verify) / (CPU per event), the
 * share of the pipeline's CPU that is cryptography, and does not depend on how much CPU the broker and other
 * tenants of the machine leave us. Also reported: the limit with 2 dedicated cores split producer/consumer
 * (1 / max(sign, verify)) and with perfect use of 2 cores (2 / (sign + verify)).
 *
 * Child roles (`--role producer|consumer --variant ... --topic ... --events N`) are this file, spawned.
 */
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { Kafka, logLevel, CompressionTypes } from "kafkajs";
import type { Message } from "kafkajs";
import { encodeRecord } from "../services/events/binding.ts";
import { generateSigningKey, loadSigningKey, toPrivateJwk } from "../services/events/keys.ts";
import type { SigningKey } from "../services/events/keys.ts";
import { KafkaClient } from "../services/kafka/client.ts";
import type { IncomingRecord, OutgoingRecord } from "../services/kafka/client.ts";
import { extractTraceContext, injectTraceContext } from "../services/tracing/index.ts";
import {
  awaitQuiet,
  benchEvent,
  benchKeys,
  loadAverage,
  measureCrypto,
  median,
  runTraceContext,
  SIGN_ROW,
  VERIFY_ROW,
} from "./crypto.ts";
import { machine, root, stackEnv, writeResult } from "./support.ts";

type Variant = "signed" | "unsigned" | "raw-signed" | "raw-unsigned";

interface ProducerReport {
  type: "produced";
  startMs: number;
  endMs: number;
  cpuUs: number;
  bytes: number;
  prepareMs: number;
}
interface ConsumerReport {
  type: "consumed";
  firstMs: number;
  lastMs: number;
  cpuUs: number;
  count: number;
  failures: number;
  failureReasons: Record<string, number>;
}

const now = () => performance.timeOrigin + performance.now();
const arg = (name: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? "") : "";
};

const BROKERS = () => (process.env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(",");
// The producer and consumer settings of services/kafka/client.ts, for the raw kafkajs path.
const rawKafka = (clientId: string) =>
  new Kafka({ clientId, brokers: BROKERS(), logLevel: logLevel.NOTHING });

/** The events a producer writes (built before the clock starts), and a pool of trace contexts. */
function prepareEvents(
  n: number,
  topic: string,
): { events: ReturnType<typeof benchEvent>[]; contexts: ReturnType<typeof runTraceContext>[] } {
  const events = Array.from({ length: n }, (_, i) => benchEvent(i, topic));
  // Trace contexts as they arrive with requests (one trace per run); a pool, cycled.
  const contexts = Array.from({ length: 1024 }, (_, i) => runTraceContext(i));
  return { events, contexts };
}

async function producerRole(): Promise<void> {
  const variant = arg("variant") as Variant;
  const topic = arg("topic");
  const n = Number(arg("events"));
  const batchSize = Number(process.env.BENCH_BATCH ?? 500);
  const inFlight = Number(process.env.BENCH_IN_FLIGHT ?? 4);
  const prepared = now();
  const { events, contexts } = prepareEvents(n, topic);
  // The key is the one the verifier trusts: the parent passes the private key as a JWK.
  const { signer } = benchKeys(keyFromParent());
  const signed = variant === "signed" || variant === "raw-signed";

  // Encodes one event as the pipeline does: sign (unless policy none), encode, inject trace context.
  const encode = (i: number): OutgoingRecord => {
    const event = events[i] as (typeof events)[number];
    const message = encodeRecord(signed ? signer.sign(event) : event);
    return {
      key: message.key,
      value: message.value,
      headers: injectTraceContext({ ...message.headers }, contexts[i % contexts.length]),
    };
  };

  let send: (from: number, to: number) => Promise<unknown>;
  let close: () => Promise<void>;
  // eslint-disable-next-line no-useless-assignment -- every branch below sets it; the default keeps TS sure of that
  let bytes = 0;
  if (variant === "signed" || variant === "unsigned") {
    const producer = new KafkaClient({
      brokers: BROKERS(),
      clientId: `bench-tp-producer-${variant}`,
    }).producer();
    await producer.connect();
    send = (from, to) => {
      const records: OutgoingRecord[] = [];
      for (let i = from; i < to; i++) records.push(encode(i));
      return producer.send(topic, records);
    };
    close = () => producer.close();
  } else {
    // The same bytes, prepared before the clock starts.
    const messages: Message[] = [];
    for (let i = 0; i < n; i++) {
      const r = encode(i);
      messages.push({ key: r.key ?? null, value: r.value, headers: r.headers as Record<string, string> });
    }
    const kafka = rawKafka(`bench-tp-producer-${variant}`);
    const producer = kafka.producer({
      idempotent: false,
      allowAutoTopicCreation: false,
      maxInFlightRequests: 5,
    });
    await producer.connect();
    send = (from, to) =>
      producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: messages.slice(from, to),
      });
    close = () => producer.disconnect();
  }
  // Bytes on the wire per record (key + value + header names and values), for MB/s.
  {
    const r = encode(0);
    bytes =
      Buffer.byteLength(String(r.key ?? "")) +
      (r.value?.length ?? 0) +
      Object.entries(r.headers ?? {}).reduce((s, [k, v]) => s + k.length + Buffer.byteLength(String(v)), 0);
  }
  const prepareMs = now() - prepared;

  const cpu0 = process.cpuUsage();
  const startMs = now();
  const pending = new Set<Promise<unknown>>();
  let failed: unknown;
  for (let from = 0; from < n && failed === undefined; from += batchSize) {
    const p = send(from, Math.min(n, from + batchSize)).catch((err: unknown) => {
      failed = err;
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
    if (pending.size >= inFlight) await Promise.race(pending);
  }
  await Promise.all(pending);
  const endMs = now();
  const cpu = process.cpuUsage(cpu0);
  if (failed !== undefined) throw failed;
  await close();
  const report: ProducerReport = {
    type: "produced",
    startMs,
    endMs,
    cpuUs: cpu.user + cpu.system,
    bytes,
    prepareMs,
  };
  process.send?.(report);
}

/** The signing key the coordinator generated (children sign and verify with the same key). */
function keyFromParent(): SigningKey | undefined {
  const jwk = process.env.BENCH_SIGNING_JWK;
  return jwk ? loadSigningKey(jwk) : undefined;
}

async function consumerRole(): Promise<void> {
  const variant = arg("variant") as Variant;
  const topic = arg("topic");
  const n = Number(arg("events"));
  const group = `bench-tp-${topic}`;
  const { verifier, unsignedVerifier } = benchKeys(keyFromParent());
  let count = 0;
  let failures = 0;
  const failureReasons: Record<string, number> = {};
  let firstMs = 0;
  let lastMs = 0;
  // eslint-disable-next-line no-useless-assignment -- reset when the first record arrives; the default keeps TS sure of that
  let cpu0 = process.cpuUsage();
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const tally = (k: number) => {
    if (count === 0 && k > 0) firstMs = now();
    count += k;
    if (count >= n && lastMs === 0) {
      lastMs = now();
      finish();
    }
  };

  let close: () => Promise<void>;
  if (variant === "signed" || variant === "unsigned") {
    const check = variant === "signed" ? verifier : unsignedVerifier;
    const consumer = new KafkaClient({
      brokers: BROKERS(),
      clientId: `bench-tp-consumer-${variant}`,
    }).consumer({ groupId: group });
    await consumer.connect();
    await consumer.subscribe([topic], true);
    const joined = consumer.onceJoined();
    void consumer.runBatches(async (records: IncomingRecord[], ctx) => {
      for (const record of records) {
        extractTraceContext(record.headers);
        const result = check.verifyRecord(record);
        if (!result.ok) {
          failures++;
          failureReasons[result.reason] = (failureReasons[result.reason] ?? 0) + 1;
        }
      }
      const last = records[records.length - 1];
      if (last) ctx.resolveOffset(last.offset);
      tally(records.length);
    });
    await joined;
    close = () => consumer.close();
  } else {
    const kafka = rawKafka(`bench-tp-consumer-${variant}`);
    const consumer = kafka.consumer({
      groupId: group,
      allowAutoTopicCreation: false,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 100,
      retry: { retries: 10 },
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const joined = new Promise<void>((resolve) => {
      const remove = consumer.on(consumer.events.GROUP_JOIN, () => {
        remove();
        resolve();
      });
    });
    void consumer.run({
      partitionsConsumedConcurrently: 1,
      autoCommit: true,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        const last = batch.messages[batch.messages.length - 1];
        if (last) resolveOffset(last.offset);
        tally(batch.messages.length);
      },
    });
    await joined;
    close = () => consumer.disconnect();
  }
  cpu0 = process.cpuUsage();
  process.send?.({ type: "ready" });
  const timeout = setTimeout(() => finish(), Number(process.env.BENCH_TIMEOUT_MS ?? 300_000));
  await finished;
  clearTimeout(timeout);
  const cpu = process.cpuUsage(cpu0);
  const report: ConsumerReport = {
    type: "consumed",
    firstMs,
    lastMs,
    cpuUs: cpu.user + cpu.system,
    count,
    failures,
    failureReasons,
  };
  process.send?.(report);
  await close();
}

// ---------------------------------------------------------------------------------------------------------
// Coordinator

interface VariantResult {
  variant: Variant;
  events: number;
  consumed: number;
  failures: number;
  failureReasons: Record<string, number>;
  /** End to end: N / (last consumed − first send), events/s. */
  throughput: number;
  /** Producer alone: N / (last ack − first send). */
  produceRate: number;
  wallMs: number;
  producerCpuUsPerEvent: number;
  consumerCpuUsPerEvent: number;
  cpuUsPerEvent: number;
  /** (producer CPU + consumer CPU) / wall. */
  coresUsed: number;
  recordBytes: number;
  mbPerSecond: number;
  load: string;
}

function child(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  // BENCH_PROFILE_DIR=<dir>: V8 CPU profiles of every producer and consumer (node --cpu-prof), named by role.
  const dir = process.env.BENCH_PROFILE_DIR;
  const profile = dir
    ? [
        "--cpu-prof",
        `--cpu-prof-dir=${dir}`,
        `--cpu-prof-name=${args[1]}-${args[3]}-${Date.now()}.cpuprofile`,
      ]
    : [];
  return fork(`${root}/bench/throughput.ts`, args, {
    cwd: root,
    execArgv: [...profile, "--import", "tsx"],
    env,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

function nextMessage<T>(proc: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "${type}" from child within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (m: { type?: string }) => {
      if (m.type === type) {
        clearTimeout(timer);
        proc.off("message", onMessage);
        proc.off("exit", onExit);
        resolve(m as T);
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code} before "${type}"`));
    };
    proc.on("message", onMessage);
    proc.once("exit", onExit);
  });
}

function exited(proc: ChildProcess | undefined, timeoutMs: number): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    proc.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function kill(proc: ChildProcess | undefined): void {
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
}

const r2 = (x: number) => Math.round(x * 100) / 100;

async function runVariant(
  variant: Variant,
  n: number,
  rep: number,
  tag: string,
  admin: ReturnType<KafkaClient["admin"]>,
  env: NodeJS.ProcessEnv,
  partitions: number,
): Promise<VariantResult> {
  const topic = `bench.tp.${tag}.${rep}.${variant}`;
  await admin.createTopics([{ name: topic, partitions, replicationFactor: 1 }]);
  for (let i = 0; i < 100 && (await admin.describeTopics([topic])).length === 0; i++)
    await new Promise((r) => setTimeout(r, 100));
  const args = ["--variant", variant, "--topic", topic, "--events", String(n)];
  let consumer: ChildProcess | undefined;
  let producer: ChildProcess | undefined;
  try {
    consumer = child(["--role", "consumer", ...args], env);
    const consumed = nextMessage<ConsumerReport>(consumer, "consumed", 600_000);
    consumed.catch(() => undefined);
    await nextMessage(consumer, "ready", 120_000);
    producer = child(["--role", "producer", ...args], env);
    const produced = await nextMessage<ProducerReport>(producer, "produced", 600_000);
    const c = await consumed;
    const wallMs = c.lastMs - produced.startMs;
    const throughput = (n * 1000) / wallMs;
    const cpu = produced.cpuUs + c.cpuUs;
    return {
      variant,
      events: n,
      consumed: c.count,
      failures: c.failures,
      failureReasons: c.failureReasons,
      throughput: Math.round(throughput),
      produceRate: Math.round((n * 1000) / (produced.endMs - produced.startMs)),
      wallMs: Math.round(wallMs),
      producerCpuUsPerEvent: r2(produced.cpuUs / n),
      consumerCpuUsPerEvent: r2(c.cpuUs / n),
      cpuUsPerEvent: r2(cpu / n),
      coresUsed: r2(cpu / 1000 / wallMs),
      recordBytes: produced.bytes,
      mbPerSecond: r2((throughput * produced.bytes) / 1e6),
      load: loadAverage(),
    };
  } finally {
    // Children exit by themselves once reported (and write their profiles); give them 15 s.
    await Promise.all([producer, consumer].map((p) => exited(p, 15_000)));
    kill(producer);
    kill(consumer);
    await admin.deleteTopics([topic]).catch(() => undefined);
  }
}

async function coordinate(): Promise<void> {
  const n = Number(process.env.BENCH_EVENTS ?? 30_000);
  const repeats = Number(process.env.BENCH_REPEATS ?? 3);
  const partitions = Number(process.env.BENCH_PARTITIONS ?? 3);
  const variants = (process.env.BENCH_VARIANTS ?? "raw-signed,signed,raw-unsigned,unsigned").split(
    ",",
  ) as Variant[];
  const stack = stackEnv();
  const loadBefore = loadAverage();
  const key = generateSigningKey();
  const env = { ...process.env, ...stack, BENCH_SIGNING_JWK: JSON.stringify(toPrivateJwk(key)) };
  const admin = new KafkaClient({
    brokers: (stack.KAFKA_BROKERS ?? "127.0.0.1:19092").split(","),
    clientId: "bench-tp-admin",
  }).admin();
  await admin.connect();
  const tag = Date.now().toString(36);
  const reps: Array<{
    crypto: { signUs: number; verifyUs: number };
    results: Record<string, VariantResult>;
  }> = [];
  try {
    for (let rep = 0; rep < repeats; rep++) {
      await awaitQuiet(`repetition ${rep + 1}/${repeats}`);
      // Crypto costs in this run, with nothing else of ours running.
      const crypto = measureCrypto(0.5, [SIGN_ROW, VERIFY_ROW]);
      console.error(
        `repetition ${rep + 1}/${repeats}: sign ${crypto.signUs.toFixed(1)} µs, verifyRecord ${crypto.verifyUs.toFixed(1)} µs (CPU, one core)`,
      );
      const results: Record<string, VariantResult> = {};
      // Alternate the order between repetitions so slow drifts in machine load do not favour one variant.
      const order = rep % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        const res = await runVariant(variant, n, rep, tag, admin, env, partitions);
        results[variant] = res;
        console.error(
          `  ${variant.padEnd(13)} ${String(res.throughput).padStart(6)} events/s end to end (producer alone ${res.produceRate}/s), ` +
            `${res.cpuUsPerEvent} µs CPU/event (producer ${res.producerCpuUsPerEvent}, consumer ${res.consumerCpuUsPerEvent}), ` +
            `${res.coresUsed} cores, ${res.mbPerSecond} MB/s, ${res.consumed}/${res.events} consumed, ${res.failures} failed (load ${res.load})`,
        );
        if (res.failures > 0 || res.consumed < n)
          throw new Error(
            `${variant}: ${res.failures} failures, ${res.consumed}/${n} consumed: ${JSON.stringify(res.failureReasons)}`,
          );
      }
      reps.push({ crypto: { signUs: crypto.signUs, verifyUs: crypto.verifyUs }, results });
    }
  } finally {
    await admin.close();
  }
  const loadAfter = loadAverage();

  const perRep = reps.map(({ crypto, results }) => {
    const s = results.signed;
    const u = results.unsigned;
    const rs = results["raw-signed"];
    const ru = results["raw-unsigned"];
    const signVerify = crypto.signUs + crypto.verifyUs;
    const limitCpu = s ? (s.coresUsed * 1e6) / signVerify : NaN;
    return {
      signUs: crypto.signUs,
      verifyUs: crypto.verifyUs,
      signedPerSecond: s?.throughput ?? NaN,
      unsignedPerSecond: u?.throughput ?? NaN,
      rawSignedPerSecond: rs?.throughput ?? NaN,
      rawUnsignedPerSecond: ru?.throughput ?? NaN,
      signedRaw: s && rs ? s.throughput / rs.throughput : NaN,
      unsignedRaw: u && ru ? u.throughput / ru.throughput : NaN,
      // The same comparisons per CPU second (raw CPU per event / variant CPU per event): what the ratios
      // would be if every run got the same CPU, which on this shared machine they do not.
      signedRawCpu: s && rs ? rs.cpuUsPerEvent / s.cpuUsPerEvent : NaN,
      unsignedRawCpu: u && ru ? ru.cpuUsPerEvent / u.cpuUsPerEvent : NaN,
      // Where the signed pipeline's CPU goes, µs per event: Kafka (the raw run with the same bytes), the two
      // crypto calls (microbenchmark), and the rest (binding, trace context, Kafka module, GC, colder caches).
      costKafka: rs?.cpuUsPerEvent ?? NaN,
      costCrypto: signVerify,
      costRest: s && rs ? s.cpuUsPerEvent - rs.cpuUsPerEvent - signVerify : NaN,
      cryptoLimit: limitCpu,
      signedCryptoLimit: s ? s.throughput / limitCpu : NaN,
      limitTwoCoresSplit: 1e6 / Math.max(crypto.signUs, crypto.verifyUs),
      signedVsTwoCoresSplit: s ? s.throughput / (1e6 / Math.max(crypto.signUs, crypto.verifyUs)) : NaN,
      limitTwoCoresPerfect: 2e6 / signVerify,
      signedVsTwoCoresPerfect: s ? s.throughput / (2e6 / signVerify) : NaN,
    };
  });
  const med = (f: (x: (typeof perRep)[number]) => number, digits = 2) => {
    const m = median(perRep.map(f));
    return Math.round(m * 10 ** digits) / 10 ** digits;
  };
  const medVariant = (variant: string, field: keyof VariantResult) =>
    Math.round(median(reps.map((r) => Number(r.results[variant]?.[field] ?? NaN))) * 100) / 100;
  const summary = {
    events: n,
    partitions,
    batch: Number(process.env.BENCH_BATCH ?? 500),
    inFlight: Number(process.env.BENCH_IN_FLIGHT ?? 4),
    signUs: med((x) => x.signUs, 1),
    verifyUs: med((x) => x.verifyUs, 1),
    signedPerSecond: med((x) => x.signedPerSecond, 0),
    unsignedPerSecond: med((x) => x.unsignedPerSecond, 0),
    rawSignedPerSecond: med((x) => x.rawSignedPerSecond, 0),
    rawUnsignedPerSecond: med((x) => x.rawUnsignedPerSecond, 0),
    signedRaw: med((x) => x.signedRaw),
    unsignedRaw: med((x) => x.unsignedRaw),
    signedRawCpu: med((x) => x.signedRawCpu),
    unsignedRawCpu: med((x) => x.unsignedRawCpu),
    signedCostPerEvent: {
      kafka: med((x) => x.costKafka, 1),
      crypto: med((x) => x.costCrypto, 1),
      rest: med((x) => x.costRest, 1),
    },
    cryptoLimit: med((x) => x.cryptoLimit, 0),
    signedCryptoLimit: med((x) => x.signedCryptoLimit),
    limitTwoCoresSplit: med((x) => x.limitTwoCoresSplit, 0),
    signedVsTwoCoresSplit: med((x) => x.signedVsTwoCoresSplit),
    limitTwoCoresPerfect: med((x) => x.limitTwoCoresPerfect, 0),
    signedVsTwoCoresPerfect: med((x) => x.signedVsTwoCoresPerfect),
    variants: Object.fromEntries(
      variants.map((v) => [
        v,
        Object.fromEntries(
          (
            [
              "throughput",
              "produceRate",
              "cpuUsPerEvent",
              "producerCpuUsPerEvent",
              "consumerCpuUsPerEvent",
              "coresUsed",
              "mbPerSecond",
              "recordBytes",
            ] as const
          ).map((f) => [f, medVariant(v, f)]),
        ),
      ]),
    ),
  };
  const lines = [
    `signed/raw throughput ratio ${summary.signedRaw.toFixed(2)}`,
    `signed/crypto-limit ratio ${summary.signedCryptoLimit.toFixed(2)}`,
    `unsigned/raw throughput ratio ${summary.unsignedRaw.toFixed(2)}`,
  ];
  console.log(`\nmachine: ${machine()}`);
  console.log(`load average: before ${loadBefore}; after ${loadAfter}`);
  console.log(JSON.stringify(summary, null, 2));
  console.log(
    `per CPU second (load-independent): signed/raw ${summary.signedRawCpu.toFixed(2)}, unsigned/raw ${summary.unsignedRawCpu.toFixed(2)}; ` +
      `signed event CPU: Kafka ${summary.signedCostPerEvent.kafka} µs + sign/verify ${summary.signedCostPerEvent.crypto} µs + rest ${summary.signedCostPerEvent.rest} µs`,
  );
  for (const l of lines) console.log(l);
  const path = writeResult("throughput", {
    benchmark: "throughput",
    machine: machine(),
    loadAverage: { before: loadBefore, after: loadAfter },
    summary,
    lines,
    cryptoLimitDefinition:
      "limit = cores_used / (sign + verify), cores_used = (producer CPU + consumer CPU) / wall of the signed run; sign = Signer.sign, verify = Verifier.verifyRecord, CPU µs on one core from the microbenchmark in the same repetition",
    repetitions: reps,
    ratiosPerRepetition: perRep,
  });
  console.log(`wrote ${path}`);
}

const role = arg("role");
if (role === "producer") await producerRole().then(() => process.exit(0));
else if (role === "consumer") await consumerRole().then(() => process.exit(0));
else await coordinate();
