/**
 * A per-key work queue in the manner of client-go's workqueue: a key is queued
 * at most once, processed by at most one worker at a time (a key that changes
 * while it is processed is processed again afterwards), failures are retried
 * with per-key exponential backoff, and a reconcile can ask to run again after
 * a delay. Reconcilers receive only the key and re-read the world themselves.
 */

export type ReconcileResult = { requeueAfterMs?: number } | void;
export type Reconcile = (key: string) => Promise<ReconcileResult>;

export interface QueueOptions {
  /** Keys processed in parallel (different keys only). */
  concurrency?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Injected for tests. */
  now?: () => number;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
  onProcessed?: (key: string, durationMs: number, outcome: "success" | "error") => void;
}

/** Marks a failure that retrying cannot fix (an invalid spec): it is not retried. */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
}

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly order: string[] = [];
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = 0;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(
    private readonly reconcile: Reconcile,
    private readonly opts: QueueOptions = {},
  ) {
    this.concurrency = opts.concurrency ?? 4;
    this.baseBackoffMs = opts.baseBackoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 60_000;
  }

  /** Keys waiting or being processed. */
  get depth(): number {
    return this.pending.size + this.active.size;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.order.push(key);
    this.pump();
  }

  /** Queues `key` after `delayMs`, unless an earlier timer for it is already set. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const existing = this.timers.get(key);
    if (existing) return;
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Drops the retry state of a key (it was deleted). */
  forget(key: string): void {
    this.failures.delete(key);
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
  }

  backoffFor(failures: number): number {
    return Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** Math.max(0, failures - 1));
  }

  /** Resolves when nothing is queued or running (timers excluded). */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.order.length > 0) {
      const key = this.order.shift();
      if (key === undefined) break;
      this.pending.delete(key);
      this.active.add(key);
      this.running++;
      void this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    const now = this.opts.now ?? Date.now;
    const started = now();
    try {
      const result = await this.reconcile(key);
      this.failures.delete(key);
      this.opts.onProcessed?.(key, now() - started, "success");
      if (result && result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      this.opts.onProcessed?.(key, now() - started, "error");
      if (err instanceof TerminalError) {
        this.failures.delete(key);
        this.opts.onError?.(key, err, -1);
      } else {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const delay = this.backoffFor(n);
        this.opts.onError?.(key, err, delay);
        this.addAfter(key, delay);
      }
    } finally {
      this.active.delete(key);
      this.running--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
      if (this.depth === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }
}
