import { describe, expect, it } from "vitest";
import { consumedTopics, parseWorkerEnv, retryDelayOfTopic } from "./env.ts";
import { WorkerConfigError } from "./errors.ts";

/** What deploymentFor gives a Worker bound to two steps (docs/topics.md). */
function operatorEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    KAFKA_BROKERS: "kafka-0:9092, kafka-1:9092",
    EVENTLOOM_NAMESPACE: "shop",
    EVENTLOOM_ORCHESTRATION: "checkout",
    EVENTLOOM_WORKER: "payments",
    EVENTLOOM_STEPS: "charge,refund",
    EVENTLOOM_TOPICS: "eventloom.shop.checkout.charge,eventloom.shop.checkout.refund",
    EVENTLOOM_CONSUMER_GROUP: "eventloom.shop.payments",
    EVENTLOOM_RETRY_TOPICS: JSON.stringify({
      charge: [
        "eventloom.shop.checkout-retry-1000",
        "eventloom.shop.checkout-retry-2000",
        "eventloom.shop.checkout-retry-4000",
      ],
      refund: ["eventloom.shop.checkout-retry-1000"],
    }),
    EVENTLOOM_DLT_TOPIC: "eventloom.shop.checkout-dlt",
    EVENTLOOM_RESULTS_TOPIC: "eventloom.shop.checkout-results",
    EVENTLOOM_CONCURRENCY: "4",
    EVENTLOOM_SIGNING_POLICY: "required",
    EVENTLOOM_SIGNING_KEY_PATH: "/var/run/eventloom/keys/private.jwk",
    EVENTLOOM_TRUST_PATH: "/var/run/eventloom/trust/trust.json",
    OTEL_SERVICE_NAME: "payments",
    ...overrides,
  };
}

describe("parseWorkerEnv", () => {
  it("reads everything the operator sets", () => {
    const env = parseWorkerEnv(operatorEnv());
    expect(env.brokers).toEqual(["kafka-0:9092", "kafka-1:9092"]);
    expect(env.steps).toEqual(["charge", "refund"]);
    expect(env.topicSteps.get("eventloom.shop.checkout.refund")).toBe("refund");
    expect(env.retryTopics.get("charge")?.map((t) => t.delayMs)).toEqual([1000, 2000, 4000]);
    expect(env.deadLetterTopic).toBe("eventloom.shop.checkout-dlt");
    expect(env.concurrency).toBe(4);
    expect(env.signingPolicy).toBe("required");
    expect(env.subscribes).toEqual([]);
  });

  it("consumes the step topics and each shared retry tier once", () => {
    expect(consumedTopics(parseWorkerEnv(operatorEnv()))).toEqual([
      "eventloom.shop.checkout.charge",
      "eventloom.shop.checkout.refund",
      "eventloom.shop.checkout-retry-1000",
      "eventloom.shop.checkout-retry-2000",
      "eventloom.shop.checkout-retry-4000",
    ]);
  });

  it("defaults: concurrency 1, policy required, no retries for a step missing from the JSON, no DLT when dead-lettering is off", () => {
    const env = parseWorkerEnv(
      operatorEnv({
        EVENTLOOM_CONCURRENCY: undefined,
        EVENTLOOM_RETRY_TOPICS: "{}",
        EVENTLOOM_DLT_TOPIC: undefined,
        EVENTLOOM_SIGNING_POLICY: undefined,
      }),
    );
    expect(env.concurrency).toBe(1);
    expect(env.signingPolicy).toBe("required");
    expect(env.retryTopics.get("charge")).toEqual([]);
    expect(env.deadLetterTopic).toBeUndefined();
  });

  it("accepts policy none without key and trust paths", () => {
    const env = parseWorkerEnv(
      operatorEnv({
        EVENTLOOM_SIGNING_POLICY: "none",
        EVENTLOOM_SIGNING_KEY_PATH: undefined,
        EVENTLOOM_TRUST_PATH: undefined,
      }),
    );
    expect(env.signingPolicy).toBe("none");
    expect(env.signingKeyPath).toBeUndefined();
  });

  it.each([
    ["KAFKA_BROKERS is missing", { KAFKA_BROKERS: undefined }, /KAFKA_BROKERS is not set/],
    ["the namespace is missing", { EVENTLOOM_NAMESPACE: "" }, /EVENTLOOM_NAMESPACE is not set/],
    [
      "steps and topics do not pair up",
      { EVENTLOOM_TOPICS: "eventloom.shop.checkout.charge" },
      /lists 2 step\(s\) but EVENTLOOM_TOPICS lists 1/,
    ],
    ["a step repeats", { EVENTLOOM_STEPS: "charge,charge" }, /repeats a step/],
    [
      "the retry JSON is broken",
      { EVENTLOOM_RETRY_TOPICS: "{charge:" },
      /EVENTLOOM_RETRY_TOPICS is not JSON/,
    ],
    ["the retry JSON is a list", { EVENTLOOM_RETRY_TOPICS: "[]" }, /must be a JSON object/],
    ["the retry JSON names an unbound step", { EVENTLOOM_RETRY_TOPICS: '{"ship":[]}' }, /names step "ship"/],
    [
      "a retry topic has no delay suffix",
      { EVENTLOOM_RETRY_TOPICS: '{"charge":["eventloom.shop.checkout-dlt"]}' },
      /not a retry topic/,
    ],
    ["concurrency is zero", { EVENTLOOM_CONCURRENCY: "0" }, /EVENTLOOM_CONCURRENCY is "0"/],
    ["concurrency is not a number", { EVENTLOOM_CONCURRENCY: "many" }, /EVENTLOOM_CONCURRENCY/],
    ["the policy is unknown", { EVENTLOOM_SIGNING_POLICY: "optional" }, /use "required" or "none"/],
    [
      "policy required has no key path",
      { EVENTLOOM_SIGNING_KEY_PATH: undefined },
      /EVENTLOOM_SIGNING_KEY_PATH is not set/,
    ],
    [
      "policy required has no trust path",
      { EVENTLOOM_TRUST_PATH: undefined },
      /EVENTLOOM_TRUST_PATH is not set/,
    ],
    [
      "the results topic is missing",
      { EVENTLOOM_RESULTS_TOPIC: undefined },
      /EVENTLOOM_RESULTS_TOPIC is not set/,
    ],
  ])("refuses an environment where %s", (_what, overrides, message) => {
    expect(() => parseWorkerEnv(operatorEnv(overrides))).toThrow(WorkerConfigError);
    expect(() => parseWorkerEnv(operatorEnv(overrides))).toThrow(message);
  });
});

describe("retryDelayOfTopic", () => {
  it.each([
    ["eventloom.shop.checkout-retry-1000", 1000],
    ["eventloom.shop.checkout-retry-250", 250],
    ["eventloom.shop.checkout-retry-0", undefined],
    ["eventloom.shop.checkout-dlt", undefined],
    ["eventloom.shop.checkout-retry-", undefined],
  ])("reads %s as %s ms", (topic, ms) => {
    expect(retryDelayOfTopic(topic)).toBe(ms);
  });
});
