import { describe, expect, it } from "vitest";
import { KafkaUnavailableError, classifyKafkaError, kafkajsRequestQueue } from "./client.ts";

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
