import { describe, expect, it } from "vitest";
import { KafkaUnavailableError, classifyKafkaError } from "./client.ts";

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
