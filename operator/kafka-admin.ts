/**
 * One shared, lazily connected Kafka admin session for the operator. When
 * Kafka stops answering, the session is dropped and the next use reconnects,
 * so the operator recovers by itself when the broker returns.
 */
import { KafkaUnavailableError } from "../services/kafka/client.ts";
import type { KafkaAdmin , KafkaClient} from "../services/kafka/client.ts";

export class SharedKafkaAdmin {
  private admin: KafkaAdmin | undefined;
  private connecting: Promise<KafkaAdmin> | undefined;
  private topics: { names: Set<string>; atMs: number } | undefined;
  private listing: Promise<Set<string>> | undefined;

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

  /**
   * The cluster's topic names, at most `maxAgeMs` old. Listing every topic is
   * a metadata request over the whole cluster; with many Orchestrations
   * reconciling at once, one list serves them all. Topics this operator
   * creates or deletes are added or removed at once.
   */
  async topicNames(maxAgeMs = 2000): Promise<Set<string>> {
    if (this.topics && Date.now() - this.topics.atMs <= maxAgeMs) return this.topics.names;
    this.listing ??= this.use((admin) => admin.listTopics())
      .then((names) => {
        this.topics = { names: new Set(names), atMs: Date.now() };
        return this.topics.names;
      })
      .finally(() => {
        this.listing = undefined;
      });
    return this.listing;
  }

  /** Records topics this process created (true) or deleted (false) in the cached list. */
  noteTopics(names: readonly string[], exist: boolean): void {
    if (!this.topics) return;
    for (const n of names) {
      if (exist) this.topics.names.add(n);
      else this.topics.names.delete(n);
    }
  }

  /** Forgets the cached list (after a hand-made change is suspected). */
  invalidateTopics(): void {
    this.topics = undefined;
  }

  /** Requests the current admin session has sent (resets when the session is replaced). */
  get requests(): number {
    return this.admin?.requests ?? 0;
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
