import { describe, expect, it } from "vitest";
import {
  BROKER_DEFAULT_REPLICATION,
  diffIsEmpty,
  diffTopics,
  engineStateTopicFor,
  retryTopicsByStep,
  topicsFor,
} from "./topics.ts";
import type { ActualTopic, DesiredTopic } from "./topics.ts";
import { isSpecError } from "./errors.ts";
import { aStep, anOrchestration } from "./fixtures.ts";
import type { OrchestrationOverrides } from "./fixtures.ts";

const WEEK_MS = "604800000";
const TWO_WEEKS_MS = "1209600000";

function summary(topics: DesiredTopic[]) {
  return topics.map(
    (t) =>
      `${t.purpose} ${t.name} p=${t.partitions} rf=${t.replicationFactor} ${t.configs["cleanup.policy"]} ${t.configs["retention.ms"]}`,
  );
}

describe("topicsFor", () => {
  it("gives each step a topic, one results topic, the default retry tiers and one dead-letter topic", () => {
    expect(summary(topicsFor(anOrchestration()))).toEqual([
      `step eventloom.shop.checkout.reserve p=3 rf=-1 delete ${WEEK_MS}`,
      `step eventloom.shop.checkout.charge p=3 rf=-1 delete ${WEEK_MS}`,
      `step eventloom.shop.checkout.ship p=3 rf=-1 delete ${WEEK_MS}`,
      `results eventloom.shop.checkout-results p=3 rf=-1 delete ${WEEK_MS}`,
      `retry eventloom.shop.checkout-retry-1000 p=3 rf=-1 delete ${WEEK_MS}`,
      `retry eventloom.shop.checkout-retry-2000 p=3 rf=-1 delete ${WEEK_MS}`,
      `retry eventloom.shop.checkout-retry-4000 p=3 rf=-1 delete ${WEEK_MS}`,
      `dead-letter eventloom.shop.checkout-dlt p=3 rf=-1 delete ${TWO_WEEKS_MS}`,
    ]);
  });

  it("labels step and retry topics with their step and delay", () => {
    const topics = topicsFor(anOrchestration());
    expect(topics.find((t) => t.purpose === "step")).toMatchObject({ step: "reserve" });
    expect(topics.filter((t) => t.purpose === "retry").map((t) => t.delayMs)).toEqual([1000, 2000, 4000]);
  });

  it("gives the same topics on every call", () => {
    expect(topicsFor(anOrchestration())).toEqual(topicsFor(anOrchestration()));
  });

  it.each<[string, OrchestrationOverrides, (topics: DesiredTopic[]) => unknown, unknown]>([
    [
      "uses the spec's partitions for every topic",
      { spec: { topics: { partitions: 1 } } },
      (t) => [...new Set(t.map((x) => x.partitions))],
      [1],
    ],
    [
      "uses the spec's replication factor for every topic",
      { spec: { topics: { replicationFactor: 3 } } },
      (t) => [...new Set(t.map((x) => x.replicationFactor))],
      [3],
    ],
    [
      "leaves replication to the broker by default",
      {},
      (t) => t[0]?.replicationFactor,
      BROKER_DEFAULT_REPLICATION,
    ],
    [
      "uses the spec's retention for all but the dead-letter topic",
      { spec: { topics: { retention: "24h" } } },
      (t) => [...new Set(t.map((x) => x.configs["retention.ms"]))],
      ["86400000", TWO_WEEKS_MS],
    ],
    [
      "uses the dead-letter retention for the dead-letter topic",
      { spec: { deadLetter: { retention: "720h" } } },
      (t) => t.at(-1)?.configs["retention.ms"],
      "2592000000",
    ],
    [
      "drops the dead-letter topic when dead-lettering is disabled",
      { spec: { deadLetter: { enabled: false } } },
      (t) => t.filter((x) => x.purpose === "dead-letter"),
      [],
    ],
    [
      "shares retry tiers across steps as a sorted union",
      {
        spec: {
          steps: [
            aStep("a", { retry: { attempts: 2, initialBackoff: "500ms", maxBackoff: "1s" } }),
            aStep("b"),
            aStep("c", { retry: { tiers: ["30s"] } }),
          ],
        },
      },
      (t) => t.filter((x) => x.purpose === "retry").map((x) => x.name),
      [
        "eventloom.shop.checkout-retry-500",
        "eventloom.shop.checkout-retry-1000",
        "eventloom.shop.checkout-retry-2000",
        "eventloom.shop.checkout-retry-4000",
        "eventloom.shop.checkout-retry-30000",
      ],
    ],
    [
      "needs no retry topics when no step retries",
      { spec: { steps: [aStep("a", { retry: { attempts: 0 } })] } },
      (t) => t.map((x) => x.purpose),
      ["step", "results", "dead-letter"],
    ],
    [
      "keeps the step topics of a choreographed orchestration",
      { spec: { mode: "choreographed", steps: [{ name: "notify", subscribes: ["order.placed"] }] } },
      (t) => t[0]?.name,
      "eventloom.shop.checkout.notify",
    ],
    [
      "follows the orchestration's namespace and name",
      { namespace: "eu", name: "refund" },
      (t) => t[0]?.name,
      "eventloom.eu.refund.reserve",
    ],
  ])("%s", (_name, overrides, pick, expected) => {
    expect(pick(topicsFor(anOrchestration(overrides)))).toEqual(expected);
  });

  it("uses a custom topic prefix", () => {
    expect(topicsFor(anOrchestration(), { prefix: "staging" })[0]?.name).toBe(
      "staging.shop.checkout.reserve",
    );
  });

  it.each<[string, OrchestrationOverrides, string, RegExp]>([
    [
      "zero partitions",
      { spec: { topics: { partitions: 0 } } },
      "InvalidTopicSettings",
      /spec.topics.partitions is 0/,
    ],
    [
      "too many partitions",
      { spec: { topics: { partitions: 1001 } } },
      "InvalidTopicSettings",
      /from 1 to 1000/,
    ],
    [
      "a zero replication factor",
      { spec: { topics: { replicationFactor: 0 } } },
      "InvalidTopicSettings",
      /omit it for the broker's default/,
    ],
    [
      "a malformed retention",
      { spec: { topics: { retention: "1 week" } } },
      "InvalidTopicSettings",
      /spec.topics.retention "1 week" is not a duration/,
    ],
    [
      "a malformed dead-letter retention",
      { spec: { deadLetter: { retention: "2w" } } },
      "InvalidTopicSettings",
      /spec.deadLetter.retention "2w"/,
    ],
    [
      "a zero retention",
      { spec: { topics: { retention: "0s" } } },
      "InvalidTopicSettings",
      /must be longer than 0/,
    ],
    [
      "a retention records would expire within before their retry",
      { spec: { topics: { retention: "3s" } } },
      "InvalidTopicSettings",
      /retention \(3s\) is not longer than the longest retry delay \(4000ms\)/,
    ],
    [
      "an invalid retry policy",
      { spec: { steps: [aStep("a", { retry: { multiplier: 0 } })] } },
      "InvalidRetryPolicy",
      /spec.steps\[a\].retry: multiplier is 0/,
    ],
    [
      "more distinct retry delays than the tier limit",
      {
        spec: {
          steps: Array.from({ length: 21 }, (_, i) => aStep(`s${i}`, { retry: { tiers: [`${i + 1}s`] } })),
        },
      },
      "TooManyRetryTiers",
      /use 21 distinct delays.*the limit is 20/,
    ],
    [
      "a duplicated step name",
      { spec: { steps: [aStep("a"), aStep("a")] } },
      "DuplicateStep",
      /step "a" is listed twice/,
    ],
    [
      "a step name Kafka cannot carry",
      { spec: { steps: [aStep("Charge")] } },
      "TopicNameInvalid",
      /Step name "Charge"/,
    ],
    ["an orchestration without a namespace", { namespace: "" }, "MissingMetadata", /has no namespace/],
  ])("refuses %s with a spec error", (_name, overrides, reason, message) => {
    let caught: unknown;
    try {
      topicsFor(anOrchestration(overrides));
    } catch (err) {
      caught = err;
    }
    expect(isSpecError(caught)).toBe(true);
    expect(caught).toMatchObject({ reason });
    expect((caught as Error).message).toMatch(message);
  });
});

describe("retryTopicsByStep", () => {
  it.each<[string, OrchestrationOverrides, string[], Record<string, string[]>]>([
    [
      "lists one retry topic per retry, repeating the capped tier",
      { spec: { steps: [aStep("a", { retry: { attempts: 4 } })] } },
      ["a"],
      {
        a: [
          "eventloom.shop.checkout-retry-1000",
          "eventloom.shop.checkout-retry-2000",
          "eventloom.shop.checkout-retry-4000",
          "eventloom.shop.checkout-retry-4000",
        ],
      },
    ],
    [
      "gives an empty list to a step that dead-letters at once",
      { spec: { steps: [aStep("a", { retry: { attempts: 0 } })] } },
      ["a"],
      { a: [] },
    ],
    [
      "skips steps the orchestration does not have",
      {},
      ["charge", "gone"],
      {
        charge: [
          "eventloom.shop.checkout-retry-1000",
          "eventloom.shop.checkout-retry-2000",
          "eventloom.shop.checkout-retry-4000",
        ],
      },
    ],
  ])("%s", (_name, overrides, steps, expected) => {
    expect(retryTopicsByStep(anOrchestration(overrides), steps)).toEqual(expected);
  });
});

describe("engineStateTopicFor", () => {
  it.each([
    [
      "is one compacted topic per installation",
      {},
      {
        name: "eventloom-engine-state",
        partitions: 3,
        replicationFactor: -1,
        configs: { "cleanup.policy": "compact" },
        purpose: "engine-state",
      },
    ],
    [
      "takes partitions, replication and prefix from options",
      { prefix: "staging", partitions: 12, replicationFactor: 3 },
      {
        name: "staging-engine-state",
        partitions: 12,
        replicationFactor: 3,
        configs: { "cleanup.policy": "compact" },
        purpose: "engine-state",
      },
    ],
  ])("%s", (_name, opts, expected) => {
    expect(engineStateTopicFor(opts)).toEqual(expected);
  });
});

describe("diffTopics", () => {
  const desired = topicsFor(anOrchestration({ spec: { steps: [aStep("a")], topics: { partitions: 3 } } }));
  const [stepA, results] = desired as [DesiredTopic, DesiredTopic];
  const asActual = (t: DesiredTopic, overrides: Partial<ActualTopic> = {}): ActualTopic => ({
    name: t.name,
    partitions: t.partitions,
    replicationFactor: 1,
    configs: { ...t.configs },
    ...overrides,
  });
  const allExisting = () => desired.map((t) => asActual(t));

  it("creates every topic when none exists", () => {
    const diff = diffTopics(desired, []);
    expect(diff.create).toEqual(desired);
    expect(diffIsEmpty(diff)).toBe(false);
  });

  it("does nothing when everything matches", () => {
    const diff = diffTopics(desired, allExisting());
    expect(diff).toEqual({
      create: [],
      increasePartitions: [],
      alterConfigs: [],
      refusedDecreases: [],
      refusedReplicationChanges: [],
    });
    expect(diffIsEmpty(diff)).toBe(true);
  });

  it.each<[string, ActualTopic[], Partial<ReturnType<typeof diffTopics>>]>([
    [
      "creates only the missing topic",
      allExisting().filter((t) => t.name !== results.name),
      { create: [results] },
    ],
    [
      "raises partitions that are too few",
      [asActual(stepA, { partitions: 1 })],
      { increasePartitions: [{ name: stepA.name, from: 1, to: 3 }] },
    ],
    [
      "sends the whole managed config set when one value drifted",
      [asActual(stepA, { configs: { "cleanup.policy": "delete", "retention.ms": "1000" } })],
      {
        alterConfigs: [
          {
            name: stepA.name,
            configs: stepA.configs,
            changed: { "retention.ms": { from: "1000", to: stepA.configs["retention.ms"]! } },
          },
        ],
      },
    ],
    [
      "treats an unset config as drift",
      [asActual(stepA, { configs: { "cleanup.policy": null } })],
      {
        alterConfigs: [
          {
            name: stepA.name,
            configs: stepA.configs,
            changed: {
              "cleanup.policy": { from: null, to: "delete" },
              "retention.ms": { from: null, to: stepA.configs["retention.ms"]! },
            },
          },
        ],
      },
    ],
    ["ignores configs it was not given", [asActual(stepA, { configs: undefined })], {}],
    [
      "ignores configs it does not manage",
      [asActual(stepA, { configs: { ...stepA.configs, "min.insync.replicas": "2" } })],
      {},
    ],
    [
      "leaves undesired topics alone",
      [...allExisting(), { name: "eventloom.shop.checkout.removed", partitions: 3 }],
      {},
    ],
  ])("%s", (_name, actual, expected) => {
    const present = new Set(actual.map((t) => t.name));
    const diff = diffTopics(desired, actual);
    expect(diff).toEqual({
      create: desired.filter((t) => !present.has(t.name)),
      increasePartitions: [],
      alterConfigs: [],
      refusedDecreases: [],
      refusedReplicationChanges: [],
      ...expected,
    });
  });

  it("refuses to decrease partitions and says what to do", () => {
    const diff = diffTopics(desired, [
      ...allExisting().filter((t) => t.name !== stepA.name),
      asActual(stepA, { partitions: 6 }),
    ]);
    expect(diff.increasePartitions).toEqual([]);
    expect(diff.refusedDecreases).toEqual([
      {
        name: stepA.name,
        current: 6,
        desired: 3,
        message: expect.stringContaining("Kafka cannot remove partitions"),
      },
    ]);
    expect(diff.refusedDecreases[0]?.message).toContain("Set spec.topics.partitions to 6 or more");
    expect(diffIsEmpty(diff)).toBe(true);
  });

  it.each<[string, number, number | undefined, number]>([
    ["refuses a replication change the spec asks for", 3, 1, 1],
    ["accepts any replication when the spec leaves it to the broker", BROKER_DEFAULT_REPLICATION, 1, 0],
    ["accepts a topic whose replication was not fetched", 3, undefined, 0],
    ["accepts a matching replication", 3, 3, 0],
  ])("%s", (_name, wanted, actual, refusals) => {
    const want = { ...stepA, replicationFactor: wanted };
    const diff = diffTopics([want], [asActual(stepA, { replicationFactor: actual })]);
    expect(diff.refusedReplicationChanges).toHaveLength(refusals);
    if (refusals)
      expect(diff.refusedReplicationChanges[0]?.message).toContain("kafka-reassign-partitions.sh");
  });
});
