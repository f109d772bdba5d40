/**
 * One shared, lazily connected Kafka admin session for the operator. When
 * Kafka stops answering, the session is retired: calls already using it
 * finish (or fail) on it, new calls get a fresh session, and the retired one
 * is closed once nothing uses it. (Closing it at once would break every
 * concurrent reconcile with "write after end" and retire the next session in
 * turn, a cascade seen under load.)
 *
 * Topic work of many Orchestrations is shared rather than sent per
 * Orchestration: one metadata request over the cluster's topics serves every
 * reconcile that needs it (`topics`), and creations, config reads and
 * deletions made within a short window go out as one request each
 * (`createTopics`, `topicConfigs`, `deleteTopics`). With 1,000 Orchestrations
 * and ~8,000 topics, per-Orchestration requests each cost a metadata request
 * over the whole cluster (the client refreshes its metadata before every
 * admin request), which the broker could not answer in time.
 */
import { KafkaUnavailableError } from "../services/kafka/client.ts";
import type { KafkaAdmin, KafkaClient, TopicDescription, TopicSpec } from "../services/kafka/client.ts";
import { topicMetricName } from "../services/events/topics.ts";
import { Coalescer } from "./runtime/coalesce.ts";

interface Session {
  admin: KafkaAdmin;
  users: number;
  retired: boolean;
}

/**
 * One admin session (one connection per broker) that is replaced when Kafka
 * stops answering. A broker answers the requests of one connection in order,
 * so a slow DeleteTopics or CreateTopics (the broker waits for the controller)
 * holds up every request behind it on that connection: metadata reads, writes
 * and single requests (the autoscaler's lag reads among them) each get their own.
 */
class Lane {
  private current: Session | undefined;
  private connecting: Promise<Session> | undefined;

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

/** The cluster's topics as one metadata request saw them. */
export class TopicSnapshot {
  private metricNames: Map<string, string> | undefined;
  private nameSet: Set<string> | undefined;

  constructor(
    readonly topics: Map<string, TopicDescription>,
    /** When the request that produced it was sent (Date.now()). */
    readonly sentAtMs: number,
  ) {}

  has(name: string): boolean {
    return this.topics.has(name);
  }

  get(name: string): TopicDescription | undefined {
    return this.topics.get(name);
  }

  get names(): Set<string> {
    this.nameSet ??= new Set(this.topics.keys());
    return this.nameSet;
  }

  /** The existing topic whose metric name (Kafka treats '.' and '_' alike) equals that of `name`. */
  metricTwin(name: string): string | undefined {
    this.metricNames ??= new Map([...this.topics.keys()].map((t) => [topicMetricName(t), t]));
    return this.metricNames.get(topicMetricName(name));
  }

  /** Records a change this process made, so the next reconciles see it before the next request. */
  delete(name: string): void {
    if (!this.topics.delete(name)) return;
    this.nameSet?.delete(name);
    if (this.metricNames?.get(topicMetricName(name)) === name) this.metricNames.delete(topicMetricName(name));
  }
}

export interface SharedKafkaAdminOptions {
  /** How long a batch waits for more callers, ms. */
  batchWindowMs?: number;
  /** Topics per CreateTopics / DescribeConfigs / DeleteTopics request at most. */
  maxTopicsPerRequest?: number;
  /** A topic this process created counts as on its way (not re-created) for this long while Kafka does not list it yet. */
  pendingTtlMs?: number;
  /** Least time between two cluster metadata requests, ms (also at least twice the last one's duration). */
  minTopicsIntervalMs?: number;
  /**
   * Client for the shared topic work (the metadata of every topic, the batched
   * creations, config reads and deletions), typically with a longer request
   * timeout than `client`: one such request carries the work of many
   * Orchestrations and takes seconds on a busy broker with thousands of topics.
   */
  bulkClient?: KafkaClient;
  now?: () => number;
}

export class SharedKafkaAdmin {
  private readonly lane: Lane;
  private readonly reads: Lane;
  private readonly writes: Lane;
  private snapshot: TopicSnapshot | undefined;
  private fetching: { sentAtMs: number; promise: Promise<TopicSnapshot> } | undefined;
  private lastFetch = { sentAtMs: -Infinity, durationMs: 0 };
  /** Topics this process created that the cluster's metadata does not show yet, with when. */
  private readonly pending = new Map<string, number>();
  private readonly creates: Coalescer<TopicSpec, void>;
  private readonly configReads: Coalescer<string, Map<string, Record<string, string | null>>>;
  private readonly deletes: Coalescer<string, void>;
  private readonly now: () => number;
  private readonly opts: Required<Omit<SharedKafkaAdminOptions, "now" | "bulkClient">>;
  /** Configs read by `topicConfigs` (every caller asks for the same ones: the managed configs). */
  private readonly configNames = new Set<string>();

  constructor(client: KafkaClient, options: SharedKafkaAdminOptions = {}) {
    this.lane = new Lane(client);
    this.reads = new Lane(options.bulkClient ?? client);
    this.writes = new Lane(options.bulkClient ?? client);
    this.now = options.now ?? Date.now;
    this.opts = {
      batchWindowMs: options.batchWindowMs ?? 20,
      maxTopicsPerRequest: options.maxTopicsPerRequest ?? 1000,
      pendingTtlMs: options.pendingTtlMs ?? 60_000,
      minTopicsIntervalMs: options.minTopicsIntervalMs ?? 100,
    };
    const splittable = (err: unknown) => !(err instanceof KafkaUnavailableError);
    const batch = { windowMs: this.opts.batchWindowMs, maxItems: this.opts.maxTopicsPerRequest, splittable };
    this.creates = new Coalescer(
      (specs) => this.writes.use((admin) => admin.createTopics(uniqueBy(specs, (s) => s.name))),
      batch,
    );
    this.configReads = new Coalescer(
      (names) => this.reads.use((admin) => admin.configsOf(unique(names), [...this.configNames])),
      batch,
    );
    this.deletes = new Coalescer(
      (names) => this.writes.use((admin) => admin.deleteTopics(unique(names))),
      batch,
    );
  }

  /** Runs `fn` on the admin session for single requests (partition and config changes, lag reads). */
  use<T>(fn: (admin: KafkaAdmin) => Promise<T>): Promise<T> {
    return this.lane.use(fn);
  }

  /**
   * The cluster's topics with their partitions, at most `maxAgeMs` old. One
   * metadata request at a time serves every caller; requests are spaced by at
   * least twice the last one's duration, so the broker spends at most a third
   * of its time answering them however many reconciles wait.
   */
  async topics(maxAgeMs = 2000): Promise<TopicSnapshot> {
    // Old enough to be sent no more than `maxAgeMs` before this call: a request sent after it always
    // serves (however long it took), so a slow broker cannot keep a caller waiting for ever fresher ones.
    const notBefore = this.now() - maxAgeMs;
    const fresh = (s: { sentAtMs: number } | undefined) => s !== undefined && s.sentAtMs >= notBefore;
    for (;;) {
      if (this.snapshot && fresh(this.snapshot)) return this.snapshot;
      if (this.fetching) {
        const f = this.fetching;
        const s = await f.promise.catch((err: unknown) => {
          if (fresh(f)) throw err;
          return undefined;
        });
        if (s && fresh(s)) return s;
        continue;
      }
      const wait =
        this.lastFetch.sentAtMs +
        Math.max(this.opts.minTopicsIntervalMs, 2 * this.lastFetch.durationMs) -
        this.now();
      if (wait > 0 && this.snapshot) {
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      return this.fetch();
    }
  }

  private fetch(): Promise<TopicSnapshot> {
    const sentAtMs = this.now();
    const promise = this.reads
      .use((admin) => admin.describeAllTopics())
      .then((described) => {
        const snapshot = new TopicSnapshot(new Map(described.map((d) => [d.name, d])), sentAtMs);
        // Kept past the TTL until listed (or deleted): a deletion must still find what this process
        // created when Kafka takes longer than the TTL to list it (minutes with thousands of new topics).
        for (const name of this.pending.keys()) if (snapshot.has(name)) this.pending.delete(name);
        if (!this.snapshot || this.snapshot.sentAtMs <= sentAtMs) this.snapshot = snapshot;
        return snapshot;
      })
      .finally(() => {
        this.lastFetch = { sentAtMs, durationMs: this.now() - sentAtMs };
        if (this.fetching?.promise === promise) this.fetching = undefined;
      });
    this.fetching = { sentAtMs, promise };
    return promise;
  }

  /** The cluster's topic names, at most `maxAgeMs` old (see `topics`). */
  async topicNames(maxAgeMs = 2000): Promise<Set<string>> {
    return (await this.topics(maxAgeMs)).names;
  }

  /** Whether this process created `name` recently and the cluster's metadata does not show it yet. */
  isPending(name: string): boolean {
    const since = this.pending.get(name);
    return since !== undefined && this.now() - since <= this.opts.pendingTtlMs;
  }

  /**
   * Whether this process created `name` and the cluster's metadata has not
   * listed it since, however long ago (a deletion must include it).
   */
  createdUnlisted(name: string): boolean {
    return this.pending.has(name);
  }

  /** How long ago this process created `name`, while it is pending. */
  pendingForMs(name: string): number | undefined {
    return this.isPending(name) ? this.now() - (this.pending.get(name) ?? 0) : undefined;
  }

  /**
   * Creates topics, in one request with those of other callers of the same
   * moment. Resolves once Kafka accepted them; the cluster's metadata shows
   * them a little later (seconds when thousands are created at once), and
   * until then they count as pending.
   */
  async createTopics(specs: TopicSpec[]): Promise<void> {
    if (specs.length === 0) return;
    await this.creates.submit(specs);
    const at = this.now();
    for (const s of specs) this.pending.set(s.name, at);
  }

  /** The named configs of topics, read in one request with those of other callers of the same moment. */
  async topicConfigs(
    names: string[],
    configNames: string[],
  ): Promise<Map<string, Record<string, string | null>>> {
    const out = new Map<string, Record<string, string | null>>();
    if (names.length === 0) return out;
    for (const c of configNames) this.configNames.add(c);
    const all = await this.configReads.submit(names);
    for (const n of names) {
      const configs = all.get(n);
      if (!configs) continue;
      out.set(n, Object.fromEntries(configNames.map((c) => [c, configs[c] ?? null])));
    }
    return out;
  }

  /** Deletes topics, in one request with those of other callers of the same moment. */
  async deleteTopics(names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.deletes.submit(names);
    this.noteTopics(names, false);
  }

  /** Records topics this process created (true) or deleted (false). */
  noteTopics(names: readonly string[], exist: boolean): void {
    const at = this.now();
    for (const n of names) {
      if (exist) {
        if (!this.snapshot?.has(n)) this.pending.set(n, at);
      } else {
        this.pending.delete(n);
        this.snapshot?.delete(n);
      }
    }
  }

  /** Forgets the cached topics (after a hand-made change is suspected). */
  invalidateTopics(): void {
    this.snapshot = undefined;
  }

  /** Requests the current admin session of `use` has sent (resets when the session is replaced). */
  get requests(): number {
    return this.lane.requests;
  }

  async close(): Promise<void> {
    await Promise.all([this.lane.close(), this.reads.close(), this.writes.close()]);
  }
}

function unique(names: string[]): string[] {
  return [...new Set(names)];
}

function uniqueBy<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const i of items) if (!seen.has(key(i))) seen.set(key(i), i);
  return [...seen.values()];
}
