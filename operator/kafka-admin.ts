/**
 * One shared, lazily connected Kafka admin session for the operator. When
 * Kafka stops answering, the session is retired: calls already using it
 * finish (or fail) on it, new calls get a fresh session, and the retired one
 * is closed once nothing uses it. (Closing it at once would break every
 * concurrent reconcile with "write after end" and retire the next session in
 * turn, a cascade seen under load.)
 */
import { KafkaUnavailableError } from "../services/kafka/client.ts";
import type { KafkaAdmin, KafkaClient } from "../services/kafka/client.ts";

interface Session {
  admin: KafkaAdmin;
  users: number;
  retired: boolean;
}

export class SharedKafkaAdmin {
  private current: Session | undefined;
  private connecting: Promise<Session> | undefined;
  private topics: { names: Set<string>; atMs: number } | undefined;
  private listing: Promise<Set<string>> | undefined;

  constructor(private readonly client: KafkaClient) {}

  async use<T>(fn: (admin: KafkaAdmin) => Promise<T>): Promise<T> {
    const session = await this.get();
    session.users++;
    try {
      return await fn(session.admin);
    } catch (err) {
      if (err instanceof KafkaUnavailableError) this.retire(session);
      throw err;
    } finally {
      session.users--;
      if (session.retired && session.users === 0) void session.admin.close().catch(() => undefined);
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
    return this.current?.admin.requests ?? 0;
  }

  async close(): Promise<void> {
    const session = this.current;
    this.current = undefined;
    await session?.admin.close().catch(() => undefined);
  }

  private retire(session: Session): void {
    session.retired = true;
    if (this.current === session) this.current = undefined;
  }

  private async get(): Promise<Session> {
    if (this.current) return this.current;
    this.connecting ??= (async () => {
      const admin = this.client.admin();
      try {
        await admin.connect();
      } catch (err) {
        await admin.close().catch(() => undefined);
        throw err;
      }
      const session: Session = { admin, users: 0, retired: false };
      this.current = session;
      return session;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }
}
