import { describe, expect, it } from "vitest";
import {
  KAFKA_MAX_TOPIC_NAME_LENGTH,
  consumerGroupFor,
  TopicNameError,
  TopicNameTooLongError,
  deadLetterTopic,
  detectCollisions,
  engineStateTopic,
  orchestrationTopicBase,
  resultsTopic,
  retryTopic,
  stepTopic,
  topicMetricName,
  topicNameProblem,
  validateTopicName,
} from "./topics.ts";
import type { OrchestrationTopicRef, TopicOwnership } from "./topics.ts";

function aRef(overrides: Partial<OrchestrationTopicRef> = {}): OrchestrationTopicRef {
  return { namespace: "shop", orchestration: "checkout", ...overrides };
}

function orchestrationTopics(
  ref: OrchestrationTopicRef,
  steps: string[],
  delays = [1000, 2000, 4000],
): string[] {
  return [
    ...steps.map((s) => stepTopic(ref, s)),
    resultsTopic(ref),
    ...delays.map((d) => retryTopic(ref, d)),
    deadLetterTopic(ref),
  ];
}

describe("topic names", () => {
  it.each([
    [
      "a step topic is prefix, namespace, orchestration and step",
      () => stepTopic(aRef(), "charge"),
      "eventloom.shop.checkout.charge",
    ],
    [
      "the results topic is one per orchestration",
      () => resultsTopic(aRef()),
      "eventloom.shop.checkout-results",
    ],
    [
      "a retry tier carries its delay in ms",
      () => retryTopic(aRef(), 1000),
      "eventloom.shop.checkout-retry-1000",
    ],
    [
      "the dead-letter topic is one per orchestration",
      () => deadLetterTopic(aRef()),
      "eventloom.shop.checkout-dlt",
    ],
    ["the engine state topic is cluster-wide", () => engineStateTopic(), "eventloom-engine-state"],
    [
      "the base is not a topic but starts every name",
      () => orchestrationTopicBase(aRef()),
      "eventloom.shop.checkout",
    ],
    [
      "a custom prefix replaces eventloom",
      () => stepTopic(aRef(), "charge", { prefix: "staging" }),
      "staging.shop.checkout.charge",
    ],
    [
      "a custom prefix names the engine state topic too",
      () => engineStateTopic({ prefix: "staging" }),
      "staging-engine-state",
    ],
    [
      "a step named like a suffix stays a step topic",
      () => stepTopic(aRef(), "results"),
      "eventloom.shop.checkout.results",
    ],
  ])("%s", (_name, build, expected) => {
    expect(build()).toBe(expected);
  });

  it.each([
    [
      "a Worker's consumer group is prefix, namespace and worker",
      () => consumerGroupFor({ namespace: "shop", worker: "payments" }),
      "eventloom.shop.payments",
    ],
    [
      "a custom prefix names the consumer group too",
      () => consumerGroupFor({ namespace: "shop", worker: "payments" }, { prefix: "staging" }),
      "staging.shop.payments",
    ],
  ])("%s", (_name, build, expected) => {
    expect(build()).toBe(expected);
  });

  it("refuses a consumer group for a Worker name that is not a DNS label", () => {
    expect(() => consumerGroupFor({ namespace: "shop", worker: "Payments" })).toThrow(
      /Worker name "Payments" is not a DNS-1123 label/,
    );
  });

  it("gives the same names on every call", () => {
    expect(orchestrationTopics(aRef(), ["a", "b"])).toEqual(orchestrationTopics(aRef(), ["a", "b"]));
  });

  it("never emits an underscore, so Kafka's '.'/'_' metric clash cannot happen between Eventloom topics", () => {
    const names = [...orchestrationTopics(aRef({ orchestration: "a-b-c" }), ["x-1"]), engineStateTopic()];
    expect(names.filter((n) => n.includes("_"))).toEqual([]);
  });
});

describe("names Kafka would refuse", () => {
  it.each([
    [
      "a namespace that is not a DNS label",
      () => stepTopic(aRef({ namespace: "Shop" }), "charge"),
      /Namespace "Shop"/,
    ],
    [
      "an orchestration name with an underscore",
      () => resultsTopic(aRef({ orchestration: "check_out" })),
      /Orchestration name "check_out"/,
    ],
    [
      "a dotted orchestration name, which would make names ambiguous",
      () => deadLetterTopic(aRef({ orchestration: "v1.checkout" })),
      /rename the Orchestration/,
    ],
    [
      "an orchestration name over 63 characters",
      () => deadLetterTopic(aRef({ orchestration: "o".repeat(64) })),
      /at most 63/,
    ],
    [
      "a namespace over 63 characters",
      () => deadLetterTopic(aRef({ namespace: "n".repeat(64) })),
      /Namespace "n+" is not a DNS-1123 label/,
    ],
    [
      "a step name with a dot",
      () => stepTopic(aRef(), "charge.card"),
      /Step name "charge.card" of Orchestration shop\/checkout/,
    ],
    ["a step name with upper case", () => stepTopic(aRef(), "chargeCard"), /rename the step/],
    ["an empty step name", () => stepTopic(aRef(), ""), /Step name ""/],
    ["a prefix with a dot", () => engineStateTopic({ prefix: "event.loom" }), /Topic prefix "event.loom"/],
    ["a fractional retry delay", () => retryTopic(aRef(), 1.5), /Retry delay 1.5 /],
    ["a zero retry delay", () => retryTopic(aRef(), 0), /Retry delay 0 /],
  ])("refuse %s with TopicNameInvalid", (_name, build, message) => {
    expect(build).toThrow(TopicNameError);
    expect(build).toThrow(message);
    try {
      build();
    } catch (err) {
      expect((err as TopicNameError).reason).toBe("TopicNameInvalid");
    }
  });

  // Every part at its 63-character maximum: only a long custom prefix can push a name past Kafka's limit.
  const longest = { prefix: "p".repeat(63) };
  const longRef = aRef({ namespace: "n".repeat(63), orchestration: "o".repeat(63) });

  it.each([
    [
      "a step topic",
      () => stepTopic(longRef, "s".repeat(63), longest),
      255,
      /Shorten the Orchestration name \(63 characters\) or the step name \(63\) by at least 6 characters/,
    ],
    [
      "a step topic one character over",
      () => stepTopic(longRef, "s".repeat(58), longest),
      250,
      /by at least 1 character\./,
    ],
    ["a retry tier", () => retryTopic(longRef, 1000, { prefix: "p".repeat(63) }), undefined, undefined],
  ])(
    "check %s against the 249-character limit with a typed error saying how much to shorten",
    (_name, build, length, hint) => {
      if (length === undefined) {
        expect(build().length).toBeLessThanOrEqual(KAFKA_MAX_TOPIC_NAME_LENGTH);
        return;
      }
      let caught: unknown;
      try {
        build();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(TopicNameTooLongError);
      const err = caught as TopicNameTooLongError;
      expect(err.reason).toBe("TopicNameTooLong");
      expect(err.topic).toHaveLength(length);
      expect(err.excess).toBe(length - KAFKA_MAX_TOPIC_NAME_LENGTH);
      expect(err.message).toMatch(/over Kafka's limit of 249/);
      expect(err.message).toMatch(hint!);
    },
  );

  it("accepts a name of exactly 249 characters", () => {
    expect(stepTopic(longRef, "s".repeat(57), longest)).toHaveLength(249);
  });

  it("says what to shorten when a non-step topic is too long", () => {
    expect(() => validateTopicName("x".repeat(260), "results topic", "the Orchestration name")).toThrow(
      /Shorten the Orchestration name by at least 11 characters/,
    );
  });

  it.each([
    ["a legal name", "orders.created_v1-x", undefined],
    ["an empty name", "", "it is empty"],
    ["a single dot", ".", "is reserved by Kafka"],
    ["two dots", "..", "is reserved by Kafka"],
    ["a slash and a space", "orders/created now", 'it contains "/", " "'],
    ["250 characters", "a".repeat(250), "over Kafka's limit of 249"],
  ])("topicNameProblem explains %s", (_name, topic, problem) => {
    if (problem === undefined) expect(topicNameProblem(topic)).toBeUndefined();
    else expect(topicNameProblem(topic)).toContain(problem);
  });

  it("validateTopicName returns a legal name and throws for an illegal one", () => {
    expect(validateTopicName("orders")).toBe("orders");
    expect(() => validateTopicName("orders!", "topic of the test")).toThrow(
      'The Kafka topic of the test "orders!" is not valid',
    );
  });
});

describe("detectCollisions", () => {
  const checkout: TopicOwnership = {
    owner: "Orchestration shop/checkout",
    topics: orchestrationTopics(aRef(), ["charge"]),
  };

  it.each<[string, TopicOwnership[], { metricName: string; topics: string[]; owners: string[] }[]]>([
    [
      "report nothing for distinct orchestrations",
      [
        checkout,
        {
          owner: "Orchestration shop/refund",
          topics: orchestrationTopics(aRef({ orchestration: "refund" }), ["charge"]),
        },
      ],
      [],
    ],
    [
      "report nothing for the same orchestration name in two namespaces",
      [
        checkout,
        {
          owner: "Orchestration eu/checkout",
          topics: orchestrationTopics(aRef({ namespace: "eu" }), ["charge"]),
        },
      ],
      [],
    ],
    ["not count one owner listing a name twice", [{ owner: "A", topics: ["t", "t"] }], []],
    [
      "report a user-created topic whose metric name matches a step topic",
      [checkout, { owner: "the existing Kafka topic", topics: ["eventloom_shop_checkout_charge", "orders"] }],
      [
        {
          metricName: "eventloom_shop_checkout_charge",
          topics: ["eventloom.shop.checkout.charge", "eventloom_shop_checkout_charge"],
          owners: ["Orchestration shop/checkout", "the existing Kafka topic"],
        },
      ],
    ],
    [
      "report nothing for a suffix-like step name next to the real suffix topics",
      [
        {
          owner: "Orchestration shop/checkout",
          topics: orchestrationTopics(aRef(), ["results", "dlt", "retry-1000"]),
        },
        {
          owner: "Orchestration shop/checkout-results",
          topics: orchestrationTopics(aRef({ orchestration: "checkout-results" }), ["dlt"]),
        },
      ],
      [],
    ],
    [
      "report a '.' versus '_' clash between owners",
      [
        { owner: "B", topics: ["orders_created"] },
        { owner: "A", topics: ["orders.created"] },
      ],
      [{ metricName: "orders_created", topics: ["orders.created", "orders_created"], owners: ["A", "B"] }],
    ],
    [
      "report a '.' versus '_' clash within one owner",
      [{ owner: "A", topics: ["x.y", "x_y"] }],
      [{ metricName: "x_y", topics: ["x.y", "x_y"], owners: ["A"] }],
    ],
    [
      "report three owners of one topic once, sorted",
      [
        { owner: "C", topics: ["t"] },
        { owner: "A", topics: ["t"] },
        { owner: "B", topics: ["t", "u"] },
      ],
      [{ metricName: "t", topics: ["t"], owners: ["A", "B", "C"] }],
    ],
  ])("%s", (_name, input, expected) => {
    expect(detectCollisions(input).map(({ message: _m, ...rest }) => rest)).toEqual(expected);
  });

  it("finds no clash among many Eventloom-built names, even with suffix-like names", () => {
    const names = ["a", "a-results", "a-dlt", "a-retry-1000", "results", "dlt", "retry-1000", "engine-state"];
    const ownerships = ["n", "n-results", "eventloom"].flatMap((namespace) =>
      names.map((orchestration) => ({
        owner: `Orchestration ${namespace}/${orchestration}`,
        topics: orchestrationTopics({ namespace, orchestration }, names, [1000, 10000]),
      })),
    );
    ownerships.push({ owner: "the engine", topics: [engineStateTopic()] });
    expect(ownerships.flatMap((o) => o.topics)).toHaveLength(3 * 8 * (8 + 4) + 1);
    expect(detectCollisions(ownerships)).toEqual([]);
  });

  it.each([
    [
      "names the shared topic and its owners",
      [
        { owner: "A", topics: ["t"] },
        { owner: "B", topics: ["t"] },
      ],
      'Kafka topic "t" would be shared by A and B. Rename one of them',
    ],
    [
      "explains the '.'/'_' clash",
      [
        { owner: "A", topics: ["x.y"] },
        { owner: "B", topics: ["x_y"] },
      ],
      'differ only in "." versus "_"',
    ],
    [
      "lists three owners readably",
      [
        { owner: "A", topics: ["t"] },
        { owner: "B", topics: ["t"] },
        { owner: "C", topics: ["t"] },
      ],
      "shared by A, B and C",
    ],
  ])("the message %s", (_name, input, text) => {
    expect(detectCollisions(input)[0]?.message).toContain(text);
  });

  it("topicMetricName replaces every dot", () => {
    expect(topicMetricName("a.b.c_d")).toBe("a_b_c_d");
  });
});
