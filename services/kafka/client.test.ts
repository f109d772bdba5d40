import { describe, expect, it } from "vitest";
import { NetworkError, MultipleErrors, ProtocolError, TimeoutError } from "@platformatic/kafka";
import {
  KafkaClient,
  KafkaUnavailableError,
  classifyKafkaError,
  kafkajsRequestQueue,
  producerImplementationFromEnv,
} from "./client.ts";

function named(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

describe("classifyKafkaError", () => {
  it.each([
    [
      "a connection error",
      named("KafkaJSConnectionError", "Connection error: connect ECONNREFUSED 127.0.0.1:1"),
    ],
    ["a request timeout", named("KafkaJSRequestTimeoutError", "Request admin timed out")],
    ["a lost broker connection", named("KafkaJSError", "Broker not connected")],
    [
      "retries exhausted on a connection error",
      Object.assign(named("KafkaJSNumberOfRetriesExceeded", "x"), {}),
    ],
  ])("treats %s as Kafka being unavailable", (_what, err) => {
    const classified = classifyKafkaError(err, "list topics");
    expect(classified).toBeInstanceOf(KafkaUnavailableError);
    expect(classified.message).toContain("Kafka did not answer while trying to list topics");
    expect(classified.cause).toBe(err);
  });

  it.each([
    ["an invalid topic", named("KafkaJSProtocolError", "Topic name is invalid")],
    ["a policy violation", named("KafkaJSProtocolError", "Replication factor larger than available brokers")],
  ])("treats %s as a refusal, not an outage", (_what, err) => {
    const classified = classifyKafkaError(err, "create topics");
    expect(classified).not.toBeInstanceOf(KafkaUnavailableError);
    expect(classified.message).toBe(`Kafka refused to create topics: ${err.message}`);
  });
});

describe("classifyKafkaError on @platformatic/kafka errors", () => {
  it.each([
    ["a network error", new NetworkError("Connection refused")],
    ["a timeout", new TimeoutError("Request timed out")],
    [
      "retries that all failed on the network",
      new MultipleErrors("Producing messages failed.", [new NetworkError("Connection closed")]),
    ],
  ])("treats %s as Kafka being unavailable", (_what, err) => {
    expect(classifyKafkaError(err, "write records")).toBeInstanceOf(KafkaUnavailableError);
  });

  it("names the broker and the cause behind an aggregated error", () => {
    const err = new MultipleErrors("Cannot connect to any broker.", [
      new NetworkError("Connection to 127.0.0.1:1 failed.", {
        cause: new Error("connect ECONNREFUSED 127.0.0.1:1"),
      }),
    ]);
    expect(classifyKafkaError(err, "connect the producer").message).toBe(
      "Kafka did not answer while trying to connect the producer: Cannot connect to any broker: " +
        "Connection to 127.0.0.1:1 failed: connect ECONNREFUSED 127.0.0.1:1",
    );
  });

  it("treats a protocol error as a refusal", () => {
    const err = new ProtocolError("MESSAGE_TOO_LARGE");
    const classified = classifyKafkaError(err, "write records");
    expect(classified).not.toBeInstanceOf(KafkaUnavailableError);
    expect(classified.message).toContain("Kafka refused to write records");
  });
});

describe("the producer implementation", () => {
  it.each([
    [undefined, "platformatic"],
    ["", "platformatic"],
    ["kafkajs", "kafkajs"],
    ["platformatic", "platformatic"],
  ] as const)("EVENTLOOM_KAFKA_PRODUCER=%s selects %s", (value, expected) => {
    const env = value === undefined ? {} : { EVENTLOOM_KAFKA_PRODUCER: value };
    expect(producerImplementationFromEnv(env)).toBe(expected);
  });

  it("refuses an unknown implementation with the choices", () => {
    expect(() => producerImplementationFromEnv({ EVENTLOOM_KAFKA_PRODUCER: "rdkafka" })).toThrow(
      /EVENTLOOM_KAFKA_PRODUCER=rdkafka .* use kafkajs or platformatic/,
    );
  });

  it.each(["kafkajs", "platformatic"] as const)(
    "reports an unreachable cluster as KafkaUnavailableError on connect (%s)",
    async (implementation) => {
      const client = new KafkaClient({
        brokers: ["127.0.0.1:1"],
        clientId: "unit",
        connectionTimeoutMs: 200,
        requestTimeoutMs: 500,
        retries: 0,
      });
      const producer = client.producer({ implementation });
      expect(producer.implementation).toBe(implementation);
      await expect(producer.connect()).rejects.toBeInstanceOf(KafkaUnavailableError);
      await producer.close();
    },
  );

  it("refuses to write before connect, as unavailable", async () => {
    const client = new KafkaClient({ brokers: ["127.0.0.1:1"], clientId: "unit" });
    const producer = client.producer({ implementation: "platformatic" });
    await expect(producer.send("t", [{ value: "x" }])).rejects.toBeInstanceOf(KafkaUnavailableError);
  });
});

describe("the kafkajs idle-timer fix", () => {
  interface Queue {
    pending: unknown[];
    throttledUntil: number;
    throttleCheckTimeoutId: NodeJS.Timeout | null;
    scheduleCheckPendingRequests(): void;
  }
  const queue = (pending: unknown[], throttledUntil: number): Queue =>
    Object.assign(Object.create(kafkajsRequestQueue.prototype as object) as Queue, {
      pending,
      throttledUntil,
      throttleCheckTimeoutId: null,
    });

  it("arms no timer when nothing is pending and nothing is throttled", () => {
    const q = queue([], -1);
    q.scheduleCheckPendingRequests();
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  it.each([
    ["a request is pending", [{}], -1],
    ["the broker throttles the client", [], Date.now() + 60_000],
  ])("still schedules the check when %s", (_what, pending, throttledUntil) => {
    const q = queue(pending, throttledUntil);
    q.scheduleCheckPendingRequests();
    expect(q.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(q.throttleCheckTimeoutId ?? undefined);
  });
});
