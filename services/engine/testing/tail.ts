/** Test kit: every record of a topic from its beginning, as it arrives (a throwaway group, nothing committed). */
import { randomUUID } from "node:crypto";
import type { IncomingRecord, KafkaClient, KafkaConsumer } from "../../kafka/client.ts";

export class Tail {
  readonly records: IncomingRecord[] = [];
  private constructor(private readonly consumer: KafkaConsumer) {}

  static async start(kafka: KafkaClient, topics: string[]): Promise<Tail> {
    const consumer = kafka.consumer({
      groupId: `engine-test-tail-${randomUUID()}`,
      autoCommit: false,
      sessionTimeoutMs: 6_000,
    });
    const tail = new Tail(consumer);
    await consumer.connect();
    await consumer.subscribe(topics, true);
    const joined = consumer.onceJoined();
    await consumer.runEach(async (record) => {
      tail.records.push(record);
    });
    await joined;
    return tail;
  }

  header(record: IncomingRecord, name: string): string | undefined {
    return record.headers[name]?.toString("utf8");
  }

  async stop(): Promise<void> {
    await this.consumer.close();
  }
}
