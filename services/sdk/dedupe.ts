/**
 * Deduplication of commands on `(source, id)`.
 *
 * The durable record of "this command was handled" is the result the worker published for it: a result
 * goes to the results topic (acks=all) before the command's offset is committed, and carries the command's
 * `id` as `causationid`. So the index is rebuilt by reading the worker's own results back from the results
 * topic at start, kept current by tailing it (results of other replicas, e.g. before a rebalance), and
 * updated in memory as results are published. No extra topic and no extra write per command.
 *
 * The horizon is the results topic's retention, bounded by {@link DedupeIndex}'s `maxEntries` (oldest
 * forgotten first). A command replayed from the dead-letter topic carries a `replaycount` extension and is
 * a new delivery generation: it is part of the key, so replays run again.
 */
import { createHash } from "node:crypto";
import type { CloudEvent } from "../events/cloudevent.ts";

/** Default bound of the index: ~100 bytes per entry, so ~20 MB. */
export const DEFAULT_DEDUPE_MAX_ENTRIES = 200_000;

/**
 * The dedupe key of a command: a 128-bit digest of source, id and replay generation (fixed size, so the
 * index costs the same whatever the ids look like).
 */
export function dedupeKey(source: string, id: string, replayCount: string | undefined): string {
  return createHash("sha256")
    .update(`${source.length}:${source}${id.length}:${id}${replayCount ?? "0"}`)
    .digest("base64url")
    .slice(0, 22);
}

/** The dedupe key of a command event. */
export function commandDedupeKey(event: Pick<CloudEvent, "source" | "id" | "extensions">): string {
  const replay = Object.hasOwn(event.extensions, "replaycount") ? event.extensions.replaycount : undefined;
  return dedupeKey(event.source, event.id, replay);
}

type Headers = Readonly<Record<string, Buffer | string | undefined>>;

function text(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return v === undefined ? undefined : typeof v === "string" ? v : v.toString("utf8");
}

/**
 * The dedupe key of the command a result record answers, read from its binary-mode headers without
 * decoding the event: only results whose `source` is one of `ownSources` (this worker's steps) count, and
 * the command's source is `commandSource` (commands only come from the Orchestration's source). Returns
 * undefined for anything else.
 */
export function resultDedupeKey(
  headers: Headers,
  ownSources: ReadonlySet<string>,
  commandSource: string,
): string | undefined {
  const source = text(headers, "ce_source");
  if (source === undefined || !ownSources.has(source)) return undefined;
  const causation = text(headers, "ce_causationid");
  if (!causation) return undefined;
  return dedupeKey(commandSource, causation, text(headers, "ce_replaycount"));
}

/**
 * The set of handled commands, bounded: when full, the oldest entry is forgotten. A Map keeps insertion
 * order, so eviction is O(1).
 */
export class DedupeIndex {
  readonly #seen = new Map<string, true>();
  readonly #maxEntries: number;

  constructor(maxEntries = DEFAULT_DEDUPE_MAX_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new Error(`dedupe maxEntries must be a positive integer, got ${maxEntries}`);
    this.#maxEntries = maxEntries;
  }

  has(key: string): boolean {
    return this.#seen.has(key);
  }

  add(key: string): void {
    if (this.#seen.has(key)) return;
    this.#seen.set(key, true);
    if (this.#seen.size > this.#maxEntries) {
      const oldest = this.#seen.keys().next();
      if (!oldest.done) this.#seen.delete(oldest.value);
    }
  }

  get size(): number {
    return this.#seen.size;
  }
}

/**
 * Serializes work on the same key: the second delivery of a command that is still being handled waits
 * for the first to finish (and is then found in the index) instead of running the handler concurrently.
 */
export class InFlight {
  readonly #running = new Map<string, Promise<void>>();

  /** Runs `fn` once no other call with `key` runs. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    for (let busy = this.#running.get(key); busy !== undefined; busy = this.#running.get(key)) {
      await busy.catch(() => undefined);
    }
    const result = fn();
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#running.set(key, settled);
    try {
      return await result;
    } finally {
      if (this.#running.get(key) === settled) this.#running.delete(key);
    }
  }

  get size(): number {
    return this.#running.size;
  }
}
