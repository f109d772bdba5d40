/**
 * One shared, lazily connected Kafka admin session for the operator. When
 * Kafka stops answering, the session is dropped and the next use reconnects,
 * so the operator recovers by itself when the broker returns.
 */
import { KafkaClient, KafkaUnavailableError } from "../services/kafka/client.ts";
import type { KafkaAdmin } from "../services/kafka/client.ts";

export class SharedKafkaAdmin {
  private admin: KafkaAdmin | undefined;
  private connecting: Promise<KafkaAdmin> | undefined;

  constructor(private readonly client: KafkaClient) {}

  async use<T>(fn: (admin: KafkaAdmin) => Promise<T>): Promise<T> {
    const admin = await this.get();
    try {
      return await fn(admin);
    } catch (err) {
      if (err instanceof KafkaUnavailableError) await this.reset();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.reset();
  }

  private async get(): Promise<KafkaAdmin> {
    if (this.admin) return this.admin;
    this.connecting ??= (async () => {
      const admin = this.client.admin();
      try {
        await admin.connect();
      } catch (err) {
        await admin.close().catch(() => undefined);
        throw err;
      }
      this.admin = admin;
      return admin;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async reset(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.close().catch(() => undefined);
  }
}
