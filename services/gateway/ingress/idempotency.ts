/**
 * Idempotent ingress: a request repeating the `(source, id)` of an event accepted within the window gets
 * the same answer and writes nothing. Concurrent duplicates share the one write in flight; a write that
 * failed is forgotten, so the client's retry writes again.
 *
 * The cache is per gateway replica and in memory, bounded by entries and by the window. Beyond it (after
 * the window, on another replica, after a restart) a retry does write a second record, but with the same
 * derived event id, so consumers' deduplication on `(source, id)` drops it: the window saves a write, it
 * is not what makes delivery correct.
 */

/** What is remembered of an accepted event: enough to answer a retry the same way. */
export interface Remembered<T> {
  /** Digest of the event's content; a different event under the same `(source, id)` is a conflict. */
  fingerprint: string;
  answer: T;
}

type Entry<T> =
  | { state: "in-flight"; fingerprint: string; promise: Promise<T> }
  | { state: "done"; fingerprint: string; answer: T; expiresAt: number };

export type Lookup<T> =
  | { kind: "miss" }
  | { kind: "hit"; answer: T }
  | { kind: "in-flight"; promise: Promise<T> }
  | { kind: "conflict" };

export class IdempotencyCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(key: string, fingerprint: string): Lookup<T> {
    const entry = this.entries.get(key);
    if (entry === undefined) return { kind: "miss" };
    if (entry.state === "done" && entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return { kind: "miss" };
    }
    if (entry.fingerprint !== fingerprint) return { kind: "conflict" };
    return entry.state === "done"
      ? { kind: "hit", answer: entry.answer }
      : { kind: "in-flight", promise: entry.promise };
  }

  /**
   * Records a write in flight under `key`. When `promise` resolves, its answer is remembered for the
   * window; when it rejects, the key is forgotten.
   */
  track(key: string, fingerprint: string, promise: Promise<T>): void {
    this.entries.set(key, { state: "in-flight", fingerprint, promise });
    promise.then(
      (answer) => {
        if (this.entries.get(key)?.state !== "in-flight") return;
        // Re-insert so Map order stays oldest-first by completion, which eviction relies on.
        this.entries.delete(key);
        this.entries.set(key, { state: "done", fingerprint, answer, expiresAt: this.now() + this.windowMs });
        this.evict();
      },
      () => {
        if (this.entries.get(key)?.state === "in-flight") this.entries.delete(key);
      },
    );
  }

  private evict(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && (entry.state !== "done" || entry.expiresAt > now)) break;
      if (entry.state === "done") this.entries.delete(key);
      else if (this.entries.size <= this.maxEntries) break;
    }
  }
}
