import { describe, expect, it } from "vitest";
import { SharedKafkaAdmin } from "./kafka-admin.ts";
import { KafkaUnavailableError } from "../services/kafka/client.ts";
import type { TopicSpec } from "../services/kafka/client.ts";
import { fakeKafka } from "./fake-kafka.ts";

const spec = (name: string): TopicSpec => ({ name, partitions: 1, replicationFactor: 1 });

describe("SharedKafkaAdmin", () => {
  it("serves concurrent reconciles from one metadata request over the cluster's topics", async () => {
    const { client, state } = fakeKafka();
    state.cluster.set("a", { name: "a", partitions: 3, replicationFactor: 1 });
    const kafka = new SharedKafkaAdmin(client);
    const snapshots = await Promise.all(Array.from({ length: 20 }, () => kafka.topics(2000)));
    expect(state.calls.describeAll).toBe(1);
    for (const s of snapshots) expect(s.get("a")?.partitions).toBe(3);
    await kafka.topics(2000);
    expect(state.calls.describeAll).toBe(1);
    await kafka.topics(0);
    expect(state.calls.describeAll).toBe(2);
  });

  it("creates the topics of many Orchestrations in one request; they are pending until Kafka lists them", async () => {
    const { client, state } = fakeKafka();
    const kafka = new SharedKafkaAdmin(client, { batchWindowMs: 5, minTopicsIntervalMs: 0 });
    await Promise.all([
      kafka.createTopics([spec("o1.a"), spec("o1.b")]),
      kafka.createTopics([spec("o2.a")]),
      kafka.createTopics([spec("o3.a"), spec("o3.b")]),
    ]);
    expect(state.calls.create).toEqual([["o1.a", "o1.b", "o2.a", "o3.a", "o3.b"]]);
    expect(kafka.isPending("o2.a")).toBe(true);
    expect((await kafka.topics(0)).has("o2.a")).toBe(false);
    expect(kafka.isPending("o2.a")).toBe(true);
    state.unlisted.clear();
    expect((await kafka.topics(0)).has("o2.a")).toBe(true);
    expect(kafka.isPending("o2.a")).toBe(false);
  });

  it("still knows a topic it created when Kafka lists it only after the pending window", async () => {
    const { client } = fakeKafka();
    let now = 0;
    const kafka = new SharedKafkaAdmin(client, {
      batchWindowMs: 0,
      minTopicsIntervalMs: 0,
      pendingTtlMs: 1000,
      now: () => now,
    });
    await kafka.createTopics([spec("slow.a")]);
    now = 5000;
    await kafka.topics(0);
    // No longer "on its way" (a reconcile may create it again), but a deletion must include it.
    expect(kafka.isPending("slow.a")).toBe(false);
    expect(kafka.createdUnlisted("slow.a")).toBe(true);
    await kafka.deleteTopics(["slow.a"]);
    expect(kafka.createdUnlisted("slow.a")).toBe(false);
  });

  it("returns a refused creation to the Orchestration it belongs to only", async () => {
    const { client, state } = fakeKafka();
    const kafka = new SharedKafkaAdmin(client, { batchWindowMs: 5 });
    const outcomes = await Promise.allSettled([
      kafka.createTopics([spec("o1.a")]),
      kafka.createTopics([spec("o2.bad")]),
      kafka.createTopics([spec("o3.a")]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toContain("o2.bad is invalid");
    expect(state.cluster.has("o1.a") && state.cluster.has("o3.a")).toBe(true);
    expect(kafka.isPending("o2.bad")).toBe(false);
  });

  it("fails every caller with KafkaUnavailable when Kafka does not answer, and reconnects after", async () => {
    const { client, state } = fakeKafka();
    const kafka = new SharedKafkaAdmin(client, { batchWindowMs: 5 });
    await kafka.topics(0);
    state.setDown(true);
    const outcomes = await Promise.allSettled([
      kafka.createTopics([spec("o1.a")]),
      kafka.createTopics([spec("o2.a")]),
    ]);
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(KafkaUnavailableError);
    }
    expect(state.calls.create).toEqual([]);
    state.setDown(false);
    const before = state.sessions;
    await kafka.createTopics([spec("o1.a")]);
    // The session that failed was dropped: a new one carried the request.
    expect(state.sessions).toBe(before + 1);
    expect(state.calls.create).toEqual([["o1.a"]]);
  });

  it("reads the configs of many Orchestrations' topics in one request; each gets its own", async () => {
    const { client, state } = fakeKafka();
    const kafka = new SharedKafkaAdmin(client, { batchWindowMs: 5 });
    const [c1, c2] = await Promise.all([
      kafka.topicConfigs(["o1.a", "o1.b"], ["retention.ms"]),
      kafka.topicConfigs(["o2.a"], ["retention.ms"]),
    ]);
    expect(state.calls.configs).toEqual([["o1.a", "o1.b", "o2.a"]]);
    expect([...(c1?.keys() ?? [])]).toEqual(["o1.a", "o1.b"]);
    expect(c2?.get("o2.a")).toEqual({ "retention.ms": "retention.ms of o2.a" });
  });

  it("deletes the topics of many Orchestrations in one request and forgets them at once", async () => {
    const { client, state } = fakeKafka();
    for (const n of ["o1.a", "o2.a"]) state.cluster.set(n, { name: n, partitions: 1, replicationFactor: 1 });
    const kafka = new SharedKafkaAdmin(client, { batchWindowMs: 5 });
    expect((await kafka.topics(2000)).has("o1.a")).toBe(true);
    await Promise.all([kafka.deleteTopics(["o1.a"]), kafka.deleteTopics(["o2.a"])]);
    expect(state.calls.delete).toEqual([["o1.a", "o2.a"]]);
    const after = await kafka.topics(2000);
    expect(state.calls.describeAll).toBe(1);
    expect(after.has("o1.a") || after.has("o2.a")).toBe(false);
  });

  it("names the existing topic a new one would clash with in Kafka's metric names", async () => {
    const { client, state } = fakeKafka();
    state.cluster.set("eventloom_shop_x.a", {
      name: "eventloom_shop_x.a",
      partitions: 1,
      replicationFactor: 1,
    });
    const kafka = new SharedKafkaAdmin(client);
    const snapshot = await kafka.topics();
    expect(snapshot.metricTwin("eventloom.shop.x.a")).toBe("eventloom_shop_x.a");
    expect(snapshot.metricTwin("eventloom.shop.y.a")).toBeUndefined();
  });
});
