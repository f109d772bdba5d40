/**
 * A fake Kafka cluster behind fake admin sessions, for the operator's unit
 * tests: records the requests of each kind, refuses to create any topic whose
 * name contains "bad", can be taken down, and keeps created topics unlisted
 * (as a busy broker does for a while) until told. Used only by `*.test.ts`.
 */
import { KafkaUnavailableError } from "../services/kafka/client.ts";
import type { KafkaClient, TopicDescription, TopicSpec } from "../services/kafka/client.ts";

export function fakeKafka() {
  const cluster = new Map<string, TopicDescription>();
  const configs = new Map<string, Record<string, string>>();
  const calls = {
    describeAll: 0,
    create: [] as string[][],
    configs: [] as string[][],
    delete: [] as string[][],
  };
  let sessions = 0;
  let down = false;
  const state = {
    cluster,
    calls,
    get sessions() {
      return sessions;
    },
    setDown(v: boolean) {
      down = v;
    },
    /** Topics created but not listed yet (as the broker does for a while). */
    unlisted: new Set<string>(),
  };
  const check = () => {
    if (down) throw new KafkaUnavailableError("Kafka did not answer");
  };
  const client = {
    admin() {
      sessions++;
      return {
        requests: 0,
        async connect() {
          check();
        },
        async close() {},
        async describeAllTopics() {
          check();
          calls.describeAll++;
          await new Promise((r) => setTimeout(r, 5));
          return [...cluster.values()].filter((t) => !state.unlisted.has(t.name));
        },
        async createTopics(specs: TopicSpec[]) {
          check();
          calls.create.push(specs.map((s) => s.name));
          const bad = specs.find((s) => s.name.includes("bad"));
          if (bad) throw new Error(`Kafka refused to create topics: ${bad.name} is invalid`);
          for (const s of specs) {
            cluster.set(s.name, { name: s.name, partitions: s.partitions, replicationFactor: 1 });
            if (s.configs) configs.set(s.name, s.configs);
            state.unlisted.add(s.name);
          }
        },
        async configsOf(names: string[], configNames: string[]) {
          check();
          calls.configs.push(names);
          // The configs a topic was created with, else a recognizable stand-in value.
          return new Map(
            names.map((n) => [
              n,
              Object.fromEntries(configNames.map((c) => [c, configs.get(n)?.[c] ?? `${c} of ${n}`])),
            ]),
          );
        },
        async deleteTopics(names: string[]) {
          check();
          calls.delete.push(names);
          for (const n of names) cluster.delete(n);
        },
      };
    },
  } as unknown as KafkaClient;
  return { client, state };
}
