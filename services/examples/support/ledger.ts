/**
 * The examples' side effects, made idempotent: each effect is applied once per key (run id + step +
 * action), so a redelivered command returns what was applied the first time instead of applying it again.
 *
 * In memory, or also appended to a JSON-lines file (`EXAMPLE_LEDGER_DIR/<name>.jsonl`) that is read back
 * at start, so it survives restarts and tests (or people) can count what was applied.
 */
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** One applied effect. */
export interface LedgerEntry {
  /** Idempotency key, e.g. `run-1/create-order/do`. */
  readonly key: string;
  /** What happened, e.g. `order.created`. */
  readonly kind: string;
  /** What the effect returned (the step's output). */
  readonly value: unknown;
  /** ISO 8601. */
  readonly at: string;
}

export class Ledger {
  readonly #entries = new Map<string, LedgerEntry>();
  readonly #path: string | undefined;

  /** `path`: the JSON-lines file to keep the ledger in (read back if it exists); none = memory only. */
  constructor(path?: string) {
    this.#path = path;
    if (path === undefined) return;
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      mkdirSync(dirname(path), { recursive: true });
    }
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const entry = JSON.parse(line) as LedgerEntry;
      this.#entries.set(entry.key, entry);
    }
  }

  /**
   * Applies `effect` unless `key` was applied before; returns the effect's value either way and whether
   * it ran now. The entry is written (and flushed to the file) right after the effect, before the worker
   * publishes the step's result.
   */
  applyOnce<T>(key: string, kind: string, effect: () => T): { value: T; applied: boolean } {
    const existing = this.#entries.get(key);
    if (existing !== undefined) return { value: existing.value as T, applied: false };
    const value = effect();
    const entry: LedgerEntry = { key, kind, value, at: new Date().toISOString() };
    this.#entries.set(key, entry);
    if (this.#path !== undefined) appendFileSync(this.#path, `${JSON.stringify(entry)}\n`);
    return { value, applied: true };
  }

  get(key: string): LedgerEntry | undefined {
    return this.#entries.get(key);
  }

  /** Every applied effect, oldest first. */
  entries(): LedgerEntry[] {
    return [...this.#entries.values()];
  }

  /** How many effects of `kind` (or of any kind) were applied. */
  count(kind?: string): number {
    return kind === undefined ? this.#entries.size : this.entries().filter((e) => e.kind === kind).length;
  }
}

/** The ledger `name` of an example process: file-backed when `EXAMPLE_LEDGER_DIR` is set. */
export function ledgerFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): Ledger {
  const dir = env.EXAMPLE_LEDGER_DIR?.trim();
  return new Ledger(dir ? join(dir, `${name}.jsonl`) : undefined);
}

/** The idempotency key of a step's effect within a run. */
export function effectKey(ctx: { runId: string; step: string; action: string }, what = ""): string {
  return `${ctx.runId}/${ctx.step}/${ctx.action}${what ? `/${what}` : ""}`;
}
