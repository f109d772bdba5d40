/**
 * Test kit for workers: build the engine's commands, write a worker's mounted credentials to a directory,
 * and read what a worker wrote to a topic. Used by this repository's integration tests; usable by anyone
 * testing a worker against a real Kafka. Not imported by the runtime.
 */
import { randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CloudEvent } from "../events/cloudevent.ts";
import { toPrivateJwk } from "../events/keys.ts";
import type { SigningKey } from "../events/keys.ts";
import type { IncomingRecord, KafkaClient, KafkaConsumer } from "../kafka/client.ts";
import { orchestrationSource } from "./command.ts";

/** An (unsigned) command as the engine sends it for `step` of a run. */
export function commandEvent(args: {
  namespace: string;
  orchestration: string;
  step: string;
  /** The step topic: signed as `destination`. */
  topic: string;
  type: string;
  runId: string;
  data: unknown;
  action?: "do" | "compensate";
  attempt?: number;
  id?: string;
}): CloudEvent {
  return {
    id: args.id ?? randomUUID(),
    source: orchestrationSource(args.namespace, args.orchestration),
    specversion: "1.0",
    type: args.type,
    datacontenttype: "application/json",
    subject: args.step,
    time: new Date().toISOString(),
    extensions: {
      partitionkey: args.runId,
      runid: args.runId,
      step: args.step,
      attempt: String(args.attempt ?? 1),
      action: args.action ?? "do",
      destination: args.topic,
    },
    data: Buffer.from(JSON.stringify(args.data), "utf8"),
  };
}

/**
 * Writes what the operator mounts into a worker pod: the signing key as `private.jwk` and the trust
 * document as `trust.json`. Returns the paths for `EVENTLOOM_SIGNING_KEY_PATH` / `EVENTLOOM_TRUST_PATH`.
 */
export async function writeWorkerCredentials(
  dir: string,
  key: SigningKey,
  trustDocument: unknown,
): Promise<{ signingKeyPath: string; trustPath: string }> {
  await mkdir(join(dir, "keys"), { recursive: true });
  await mkdir(join(dir, "trust"), { recursive: true });
  const signingKeyPath = join(dir, "keys", "private.jwk");
  const trustPath = join(dir, "trust", "trust.json");
  await writeFile(signingKeyPath, JSON.stringify(toPrivateJwk(key)), { mode: 0o600 });
  await writeFile(trustPath, JSON.stringify(trustDocument, null, 2));
  return { signingKeyPath, trustPath };
}

/** Every record of a topic, read from the beginning by a throwaway group, as they arrive. */
export class TopicTail {
  readonly records: IncomingRecord[] = [];
  /** When each record was received (epoch ms), same order as `records`. */
  readonly receivedAt: number[] = [];
  readonly #consumer: KafkaConsumer;

  private constructor(consumer: KafkaConsumer) {
    this.#consumer = consumer;
  }

  /** Starts reading `topic`; resolves once the reader joined (so nothing written after is missed). */
  static async start(client: KafkaClient, topic: string): Promise<TopicTail> {
    const consumer = client.consumer({
      groupId: `eventloom-test-tail-${randomUUID().slice(0, 8)}`,
      autoCommit: false,
    });
    const tail = new TopicTail(consumer);
    await consumer.connect();
    await consumer.subscribe([topic], true);
    const joined = consumer.onceJoined();
    await consumer.runEach(async (record) => {
      tail.records.push(record);
      tail.receivedAt.push(Date.now());
    });
    await joined;
    return tail;
  }

  async close(): Promise<void> {
    await this.#consumer.close();
  }
}

/** A header's value as text (undefined when absent). */
export function headerText(record: Pick<IncomingRecord, "headers">, name: string): string | undefined {
  return record.headers[name]?.toString("utf8");
}
