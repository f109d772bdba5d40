/**
 * Kafka client comparison (issue "Event plane benchmarks", part d): kafkajs, through the Kafka module
 * (services/kafka/client.ts, what Eventloom runs), against @platformatic/kafka, on bench/throughput.ts's raw
 * path: N records of the event plane's sizes and headers (a signed, traced event, ~1.1 KB, and one under
 * signing policy `none`, ~0.6 KB), produced with acks=all in batches (BENCH_BATCH=500, up to
 * BENCH_IN_FLIGHT=4 sends in flight, no compression) to a fresh topic, then consumed by a fresh consumer
 * group from the earliest offset.
 *
 *   tsx bench/kafka-clients.ts      (BENCH_EVENTS=30000, BENCH_PARTITIONS=3, BENCH_REPEATS=3)
 *
 * Records are built before the clock starts (Buffers for key, value and header values; the same bytes for
 * both clients). Produce: N / (last ack − first send). Consume: N / (last record − first record), so
 * group-join time (reported apart) does not count. Both clients run in this one process, one at a time,
 * alternating which goes first; each figure is the median of the repetitions, with CPU µs per record
 * (process.cpuUsage) next to it. This is a report, not a proposal to switch.
 *
 * Consumer settings follow the Kafka module's (maxWaitTime 100 ms, 1 MiB per partition, 10 MiB per fetch,
 * minBytes 1, read committed); @platformatic/kafka's own defaults differ (5 s wait, 50 MiB).
 */
import { Consumer, Producer, ProduceAcks } from "@platformatic/kafka";
import { encodeRecord } from "../services/events/binding.ts";
import { KafkaClient } from "../services/kafka/client.ts";
import type { OutgoingRecord } from "../services/kafka/client.ts";
import { injectTraceContext } from "../services/tracing/index.ts";
import { awaitQuiet, benchEvent, benchKeys, loadAverage, median, runTraceContext } from "./crypto.ts";
import { machine, stackEnv, writeResult } from "./support.ts";

type ClientName = "kafkajs (services/kafka/client.ts)" | "@platformatic/kafka";
type Shape = "signed" | "unsigned";

interface Prepared {
  key: Buffer;
  value: Buffer;
  headers: Array<[string, Buffer]>;
}

interface Leg {
  recordsPerSecond: number;
  mbPerSecond: number;
  cpuUsPerRecord: number;
}

interface Outcome {
  client: ClientName;
  shape: Shape;
  recordBytes: number;
  produce: Leg;
  consume: Leg & { joinMs: number };
  load: string;
}

const now = () => performance.now();

function prepare(n: number, shape: Shape, topic: string): { records: Prepared[]; bytes: number } {
  const { signer } = benchKeys();
  const contexts = Array.from({ length: 1024 }, (_, i) => runTraceContext(i));
  const records: Prepared[] = [];
  for (let i = 0; i < n; i++) {
    const event = benchEvent(i, topic);
    const m = encodeRecord(shape === "signed" ? signer.sign(event) : event);
    // With trace context, exactly as bench/throughput.ts writes them.
    const headers = injectTraceContext({ ...m.headers }, contexts[i % contexts.length]);
    records.push({
      key: Buffer.from(m.key ?? ""),
      value: m.value ?? Buffer.alloc(0),
      headers: Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)]),
    });
  }
  const r = records[0] as Prepared;
  const bytes = r.key.length + r.value.length + r.headers.reduce((s, [k, v]) => s + k.length + v.length, 0);
  return { records, bytes };
}

/** Sends `n` records in batches, at most `inFlight` at once; resolves when all are acknowledged. */
async function pipelined(
  n: number,
  batch: number,
  inFlight: number,
  send: (from: number, to: number) => Promise<unknown>,
): Promise<void> {
  const pending = new Set<Promise<unknown>>();
  let failed: unknown;
  for (let from = 0; from < n && failed === undefined; from += batch) {
    const p = send(from, Math.min(n, from + batch)).catch((err: unknown) => {
      failed = err;
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
    if (pending.size >= inFlight) await Promise.race(pending);
  }
  await Promise.all(pending);
  if (failed !== undefined) throw failed;
}

function leg(n: number, ms: number, cpu: NodeJS.CpuUsage, bytes: number): Leg {
  const perSecond = (n * 1000) / ms;
  return {
    recordsPerSecond: Math.round(perSecond),
    mbPerSecond: Math.round(((perSecond * bytes) / 1e6) * 100) / 100,
    cpuUsPerRecord: Math.round(((cpu.user + cpu.system) / n) * 10) / 10,
  };
}

async function withTimeout<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function runKafkajs(
  brokers: string[],
  topic: string,
  records: Prepared[],
  bytes: number,
  batch: number,
  inFlight: number,
): Promise<Omit<Outcome, "shape" | "load">> {
  const n = records.length;
  const client = new KafkaClient({ brokers, clientId: "bench-clients-kafkajs" });
  const outgoing: OutgoingRecord[] = records.map((r) => ({
    key: r.key,
    value: r.value,
    headers: Object.fromEntries(r.headers),
  }));
  const producer = client.producer({ implementation: "kafkajs" });
  await producer.connect();
  const c0 = process.cpuUsage();
  const t0 = now();
  await withTimeout(
    "kafkajs produce",
    pipelined(n, batch, inFlight, (from, to) => producer.send(topic, outgoing.slice(from, to))),
    300_000,
  );
  const produce = leg(n, now() - t0, process.cpuUsage(c0), bytes);
  await producer.close();

  const consumer = client.consumer({ groupId: `bench-clients-kafkajs-${topic}`, autoCommit: true });
  await consumer.connect();
  await consumer.subscribe([topic], true);
  let count = 0;
  let first = 0;
  let cpu0 = process.cpuUsage();
  const subscribed = now();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  void consumer.runBatches(async (batchRecords, ctx) => {
    if (count === 0) {
      first = now();
      cpu0 = process.cpuUsage();
    }
    count += batchRecords.length;
    const last = batchRecords[batchRecords.length - 1];
    if (last) ctx.resolveOffset(last.offset);
    if (count >= n) done();
  });
  await withTimeout("kafkajs consume", finished, 300_000);
  const end = now();
  const consume = {
    ...leg(n, end - first, process.cpuUsage(cpu0), bytes),
    joinMs: Math.round(first - subscribed),
  };
  await consumer.close();
  return { client: "kafkajs (services/kafka/client.ts)", recordBytes: bytes, produce, consume };
}

async function runPlatformatic(
  brokers: string[],
  topic: string,
  records: Prepared[],
  bytes: number,
  batch: number,
  inFlight: number,
): Promise<Omit<Outcome, "shape" | "load">> {
  const n = records.length;
  const messages = records.map((r) => ({
    topic,
    key: r.key,
    value: r.value,
    headers: new Map(r.headers.map(([k, v]) => [Buffer.from(k), v] as [Buffer, Buffer])),
  }));
  const producer = new Producer({
    clientId: "bench-clients-platformatic",
    bootstrapBrokers: brokers,
    acks: ProduceAcks.ALL,
    autocreateTopics: false,
  });
  const c0 = process.cpuUsage();
  const t0 = now();
  await withTimeout(
    "platformatic produce",
    pipelined(n, batch, inFlight, (from, to) => producer.send({ messages: messages.slice(from, to) })),
    300_000,
  );
  const produce = leg(n, now() - t0, process.cpuUsage(c0), bytes);
  await producer.close();

  const consumer = new Consumer({
    clientId: "bench-clients-platformatic",
    groupId: `bench-clients-platformatic-${topic}`,
    bootstrapBrokers: brokers,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
  });
  let count = 0;
  let first = 0;
  let cpu0 = process.cpuUsage();
  const subscribed = now();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const stream = await consumer.consume({
    topics: [topic],
    mode: "earliest",
    autocommit: true,
    maxWaitTime: 100,
    minBytes: 1,
    maxBytes: 10 * 1_048_576,
    maxBytesPerPartition: 1_048_576,
  });
  stream.on("data", () => {
    if (count === 0) {
      first = now();
      cpu0 = process.cpuUsage();
    }
    if (++count >= n) done();
  });
  await withTimeout("platformatic consume", finished, 300_000);
  const end = now();
  const consume = {
    ...leg(n, end - first, process.cpuUsage(cpu0), bytes),
    joinMs: Math.round(first - subscribed),
  };
  await stream.close();
  await consumer.close(true);
  return { client: "@platformatic/kafka", recordBytes: bytes, produce, consume };
}

async function main(): Promise<void> {
  const n = Number(process.env.BENCH_EVENTS ?? 30_000);
  const repeats = Number(process.env.BENCH_REPEATS ?? 3);
  const partitions = Number(process.env.BENCH_PARTITIONS ?? 3);
  const batch = Number(process.env.BENCH_BATCH ?? 500);
  const inFlight = Number(process.env.BENCH_IN_FLIGHT ?? 4);
  const shapes = (process.env.BENCH_SHAPES ?? "signed,unsigned").split(",") as Shape[];
  const env = stackEnv();
  const brokers = (env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(",");
  const loadBefore = loadAverage();
  const admin = new KafkaClient({ brokers, clientId: "bench-clients-admin" }).admin();
  await admin.connect();
  const tag = Date.now().toString(36);
  const outcomes: Outcome[] = [];
  const topics: string[] = [];
  try {
    // Warm-up (JIT of both clients), not recorded.
    {
      const warm = prepare(3000, "signed", "eventloom.bench.orders-results");
      for (const which of ["kafkajs", "platformatic"] as const) {
        const topic = `bench.clients.${tag}.warm.${which}`;
        topics.push(topic);
        await admin.createTopics([{ name: topic, partitions, replicationFactor: 1 }]);
        for (let i = 0; i < 100 && (await admin.describeTopics([topic])).length === 0; i++)
          await new Promise((r) => setTimeout(r, 100));
        await (which === "kafkajs" ? runKafkajs : runPlatformatic)(
          brokers,
          topic,
          warm.records,
          warm.bytes,
          batch,
          inFlight,
        );
      }
    }
    for (let rep = 0; rep < repeats; rep++) {
      await awaitQuiet(`repetition ${rep + 1}/${repeats}`);
      for (const shape of shapes) {
        const prepared = prepare(n, shape, "eventloom.bench.orders-results");
        const order =
          (rep + shapes.indexOf(shape)) % 2 === 0
            ? (["kafkajs", "platformatic"] as const)
            : (["platformatic", "kafkajs"] as const);
        for (const which of order) {
          const topic = `bench.clients.${tag}.${rep}.${shape}.${which}`;
          topics.push(topic);
          await admin.createTopics([{ name: topic, partitions, replicationFactor: 1 }]);
          for (let i = 0; i < 100 && (await admin.describeTopics([topic])).length === 0; i++)
            await new Promise((r) => setTimeout(r, 100));
          const run = which === "kafkajs" ? runKafkajs : runPlatformatic;
          const o: Outcome = {
            ...(await run(brokers, topic, prepared.records, prepared.bytes, batch, inFlight)),
            shape,
            load: loadAverage(),
          };
          outcomes.push(o);
          console.error(
            `rep ${rep + 1} ${shape.padEnd(8)} ${o.client.padEnd(36)} produce ${o.produce.recordsPerSecond}/s ${o.produce.mbPerSecond} MB/s ${o.produce.cpuUsPerRecord} µs CPU; ` +
              `consume ${o.consume.recordsPerSecond}/s ${o.consume.mbPerSecond} MB/s ${o.consume.cpuUsPerRecord} µs CPU (join ${o.consume.joinMs} ms) (load ${o.load})`,
          );
          await admin.deleteTopics([topic]).catch(() => undefined);
        }
      }
    }
  } finally {
    await admin.deleteTopics(topics).catch(() => undefined);
    await admin.close();
  }
  const loadAfter = loadAverage();
  const clients: ClientName[] = ["kafkajs (services/kafka/client.ts)", "@platformatic/kafka"];
  const summary = shapes.map((shape) => {
    const of = (client: ClientName) => outcomes.filter((o) => o.client === client && o.shape === shape);
    const med = (client: ClientName, f: (o: Outcome) => number) => median(of(client).map(f));
    const row = (client: ClientName) => ({
      client,
      produceRecordsPerSecond: Math.round(med(client, (o) => o.produce.recordsPerSecond)),
      produceMBPerSecond: med(client, (o) => o.produce.mbPerSecond),
      produceCpuUsPerRecord: med(client, (o) => o.produce.cpuUsPerRecord),
      consumeRecordsPerSecond: Math.round(med(client, (o) => o.consume.recordsPerSecond)),
      consumeMBPerSecond: med(client, (o) => o.consume.mbPerSecond),
      consumeCpuUsPerRecord: med(client, (o) => o.consume.cpuUsPerRecord),
      consumeJoinMs: Math.round(med(client, (o) => o.consume.joinMs)),
    });
    const [kjs, plt] = clients.map(row);
    // Ratios per repetition (the two clients ran back to back), then the median.
    const pairs = of(clients[1] as ClientName).map((p, i) => [of(clients[0] as ClientName)[i], p] as const);
    const ratio = (f: (o: Outcome) => number) =>
      Math.round(median(pairs.map(([k, p]) => (p && k ? f(p) / f(k) : NaN))) * 100) / 100;
    return {
      shape,
      recordBytes: of(clients[0] as ClientName)[0]?.recordBytes,
      rows: [kjs, plt],
      platformaticOverKafkajs: {
        produce: ratio((o) => o.produce.recordsPerSecond),
        consume: ratio((o) => o.consume.recordsPerSecond),
        produceCpu: ratio((o) => o.produce.cpuUsPerRecord),
        consumeCpu: ratio((o) => o.consume.cpuUsPerRecord),
      },
    };
  });
  console.log(`\nmachine: ${machine()}`);
  console.log(`load average: before ${loadBefore}; after ${loadAfter}`);
  console.log(JSON.stringify(summary, null, 2));
  const path = writeResult("kafka-clients", {
    benchmark: "kafka-clients",
    machine: machine(),
    loadAverage: { before: loadBefore, after: loadAfter },
    settings: { events: n, repeats, partitions, batch, inFlight, acks: "all", compression: "none" },
    summary,
    runs: outcomes,
  });
  console.log(`wrote ${path}`);
}

await main();
process.exit(0);
