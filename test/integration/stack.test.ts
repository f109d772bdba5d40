/**
 * Proves the wiring of the local stack end to end: the real kube-apiserver
 * serves a CustomResourceDefinition created through @kubernetes/client-node and
 * the real kubectl reads the custom resource back; the real Kafka broker
 * creates a topic and carries a record from a producer to a consumer.
 */
import { afterAll, describe, expect, it } from "vitest";
import * as k8s from "@kubernetes/client-node";
import { eventually, kafka, kubeConfig, kubectl, stack, uniqueName } from "./support/stack.ts";
import type { IncomingRecord, KafkaProducer, ProducerImplementation } from "../../services/kafka/client.ts";
import { javaPartition } from "../../services/kafka/platformatic.ts";

describe("the local stack", () => {
  it("serves a Kubernetes API of version 1.34 or newer that kubectl can read", async () => {
    const res = await kubectl(["version", "-o", "json"]);
    expect(res.stderr).toBe("");
    const version = JSON.parse(res.stdout) as {
      serverVersion: { major: string; minor: string; gitVersion: string };
    };
    expect(Number(version.serverVersion.major)).toBe(1);
    expect(Number.parseInt(version.serverVersion.minor, 10)).toBeGreaterThanOrEqual(34);
    const ready = await kubectl(["get", "--raw", "/readyz"]);
    expect(ready.stdout.trim()).toBe("ok");
  });

  it("creates a CRD and a custom resource through client-node, and kubectl reads it back", async () => {
    const group = "stacktest.eventloom.io";
    const plural = uniqueName("widgets").replace("-", "");
    const kc = kubeConfig();
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    const crdName = `${plural}.${group}`;
    await ext.createCustomResourceDefinition({
      body: {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: crdName },
        spec: {
          group,
          scope: "Namespaced",
          names: {
            plural,
            singular: plural.slice(0, -1),
            kind: "Widget" + plural.slice(7),
            listKind: "WidgetList" + plural.slice(7),
          },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  properties: { spec: { type: "object", properties: { size: { type: "integer" } } } },
                },
              },
            },
          ],
        },
      },
    });
    try {
      await eventually("the CRD to be Established", async () => {
        const crd = await ext.readCustomResourceDefinition({ name: crdName });
        return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")
          ? true
          : undefined;
      });
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      // Discovery of a new group can lag Established by a moment: poll the create.
      await eventually("the custom resource to be created", async () =>
        custom.createNamespacedCustomObject({
          group,
          version: "v1",
          namespace: "default",
          plural,
          body: {
            apiVersion: `${group}/v1`,
            kind: "Widget" + plural.slice(7),
            metadata: { name: "w1" },
            spec: { size: 7 },
          },
        }),
      );
      const got = await eventually("kubectl to read the custom resource", async () => {
        const res = await kubectl(["get", `${plural}.${group}`, "w1", "-n", "default", "-o", "json"]);
        return res.code === 0 ? (JSON.parse(res.stdout) as { spec: { size: number } }) : undefined;
      });
      expect(got.spec.size).toBe(7);
    } finally {
      await ext.deleteCustomResourceDefinition({ name: crdName });
    }
  });

  describe("kafka", () => {
    const client = kafka();
    const admin = client.admin();
    const topic = uniqueName("stack-test");
    afterAll(async () => {
      await admin.deleteTopics([topic]).catch(() => undefined);
      await admin.close();
    });

    /** Reads `name` from the start with a fresh group until `count` records arrived (bounded). */
    async function consume(name: string, count: number): Promise<IncomingRecord[]> {
      const consumer = client.consumer({ groupId: uniqueName(`${name}-group`) });
      await consumer.connect();
      await consumer.subscribe([name]);
      const received: IncomingRecord[] = [];
      await consumer.runEach(async (r) => {
        received.push(r);
      });
      try {
        return await eventually(`${count} record(s) to be consumed from ${name}`, async () =>
          received.length >= count ? received : undefined,
        );
      } finally {
        await consumer.close();
      }
    }

    it("has one broker at KAFKA_BROKERS", async () => {
      await admin.connect();
      const brokers = await admin.brokers();
      expect(brokers).toHaveLength(1);
      expect(`${brokers[0]?.host}:${brokers[0]?.port}`).toBe(stack().kafkaBrokers);
    });

    it("creates a topic and carries a record from producer to consumer with its headers", async () => {
      await admin.createTopics([
        { name: topic, partitions: 2, replicationFactor: 1, configs: { "retention.ms": "3600000" } },
      ]);
      // The broker's metadata can lag a create by a moment under load: poll, bounded.
      const described = await eventually(
        "the new topic to be described",
        async () => (await admin.describeTopics([topic]))[0],
      );
      expect(described).toEqual({ name: topic, partitions: 2, replicationFactor: 1 });
      expect(await admin.topicConfigs(topic, ["retention.ms"])).toEqual({ "retention.ms": "3600000" });

      const producer = client.producer();
      await producer.connect();
      const [sent] = await producer.send(topic, [{ key: "run-1", value: "hello", headers: { ce_id: "1" } }]);
      await producer.close();
      expect(sent?.topic).toBe(topic);

      const [record] = await consume(topic, 1);
      expect(record?.key?.toString()).toBe("run-1");
      expect(record?.value?.toString()).toBe("hello");
      expect(record?.headers.ce_id?.toString()).toBe("1");
    });

    /** Runs `use` with a fresh topic of `partitions` partitions, deleted afterwards. */
    async function withTopic(prefix: string, partitions: number, use: (topic: string) => Promise<void>) {
      const topic = uniqueName(prefix);
      await admin.createTopics([{ name: topic, partitions, replicationFactor: 1 }]);
      await eventually("the new topic to be described", async () => (await admin.describeTopics([topic]))[0]);
      try {
        await use(topic);
      } finally {
        await admin.deleteTopics([topic]).catch(() => undefined);
      }
    }

    /** Runs `use` with a connected producer of the given implementation, closed afterwards. */
    async function withProducer(
      implementation: ProducerImplementation,
      use: (producer: KafkaProducer) => Promise<void>,
    ) {
      const producer = client.producer({ implementation });
      await producer.connect();
      try {
        await use(producer);
      } finally {
        await producer.close();
      }
    }

    it.each(["kafkajs", "platformatic"] as const)(
      "coalesces concurrent sends into one request and tells each caller where its record landed (%s producer)",
      (implementation) =>
        withTopic("stack-coalesce", 3, (many) =>
          withProducer(implementation, async (producer) => {
            // 200 single-record sends in one turn, keyed and unkeyed: one request, 200 exact positions.
            const sends = Array.from({ length: 200 }, (_, i) =>
              producer.send(many, [{ key: i % 2 === 0 ? `k-${i}` : null, value: `v-${i}` }]),
            );
            const answers = await Promise.all(sends);
            expect(producer.requests).toBe(1);
            const where = new Map<string, string>();
            answers.forEach((sent, i) => {
              expect(sent).toHaveLength(1);
              where.set(`${sent[0]?.partition}/${sent[0]?.offset}`, `v-${i}`);
            });
            expect(where.size).toBe(200); // no two callers were given the same position

            const received = await consume(many, 200);
            expect(received).toHaveLength(200);
            for (const r of received)
              expect(where.get(`${r.partition}/${r.offset}`)).toBe(r.value?.toString());
          }),
        ),
    );

    it.each(["kafkajs", "platformatic"] as const)(
      "writes a tombstone (null value) and an empty header as such (%s producer)",
      (implementation) =>
        withTopic("stack-tombstone", 1, (topic) =>
          withProducer(implementation, async (producer) => {
            await producer.send(topic, [
              { key: "run-1", value: null, partition: 0 },
              { key: "run-2", value: "", headers: { empty: "", skipped: undefined }, partition: 0 },
            ]);
            const [tombstone, empty] = await consume(topic, 2);
            expect(tombstone?.key?.toString()).toBe("run-1");
            expect(tombstone?.value).toBeNull();
            expect(empty?.value?.length).toBe(0);
            expect(empty?.headers.empty?.length).toBe(0);
            expect(Object.hasOwn(empty?.headers ?? {}, "skipped")).toBe(false);
          }),
        ),
    );

    it("puts a key on the same partition with either producer (Java's murmur2), and honours explicit partitions", () =>
      withTopic("stack-partitioner", 7, async (topic) => {
        const keys = Array.from({ length: 40 }, (_, i) => `tenant-${i}`);
        const placed: Record<string, Map<string, number>> = {};
        for (const implementation of ["kafkajs", "platformatic"] as const) {
          await withProducer(implementation, async (producer) => {
            const answers = await Promise.all(keys.map((key) => producer.send(topic, [{ key, value: key }])));
            placed[implementation] = new Map(
              answers.map((sent, i) => [keys[i] as string, sent[0]?.partition ?? -1]),
            );
            const [explicit] = await producer.send(topic, [
              { key: "tenant-0", value: "pinned", partition: 6 },
            ]);
            expect(explicit?.partition).toBe(6);
          });
        }
        const kafkajs = placed.kafkajs as Map<string, number>;
        // The keys spread over the partitions (a partitioner that sent everything to 0 would also "agree").
        expect(new Set(kafkajs.values()).size).toBeGreaterThan(3);
        expect(placed.platformatic).toEqual(kafkajs);
        for (const [key, partition] of kafkajs) expect(javaPartition(Buffer.from(key), 7)).toBe(partition);
      }));
  });
});
