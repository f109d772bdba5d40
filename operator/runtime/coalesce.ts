/**
 * Folds calls made within a short window into one request: with a thousand
 * Orchestrations reconciling at once, one CreateTopics (or DescribeConfigs,
 * DeleteTopics) carries the topics of many of them instead of one request
 * each. Each caller submits its own group of items and gets the request's
 * result, or the error that belongs to its group.
 *
 * When a shared request fails with an error that may belong to one group only
 * (a refused topic, say), the batch is split in halves and each half sent
 * again, down to single groups, so one caller's bad item never fails the
 * others. Errors that concern every item alike (Kafka does not answer) fail
 * the whole batch at once.
 */

export interface CoalescerOptions {
  /** How long the first call of a batch waits for others to join it, ms (0: the next turn of the event loop). */
  windowMs: number;
  /** Items per request at most; a larger group is sent alone. */
  maxItems: number;
  /** Requests in flight at once (default 1). */
  maxInFlight?: number;
  /** Whether an error may belong to one group only (then the batch is split and retried); default: always. */
  splittable?: (err: unknown) => boolean;
}

interface Group<I, R> {
  items: I[];
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

export class Coalescer<I, R> {
  private readonly queue: Array<Group<I, R>> = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  /** Requests sent so far (for tests and cost accounting). */
  requests = 0;

  constructor(
    private readonly send: (items: I[]) => Promise<R>,
    private readonly opts: CoalescerOptions,
  ) {}

  /** Sends `items` in the next batch; resolves with that request's result. */
  submit(items: I[]): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.schedule();
    });
  }

  /** Groups waiting for a request. */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.timer || this.inFlight >= (this.opts.maxInFlight ?? 1)) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.opts.windowMs);
  }

  private flush(): void {
    while (this.inFlight < (this.opts.maxInFlight ?? 1) && this.queue.length > 0) {
      const batch: Array<Group<I, R>> = [];
      let n = 0;
      while (this.queue.length > 0) {
        const next = this.queue[0] as Group<I, R>;
        if (batch.length > 0 && n + next.items.length > this.opts.maxItems) break;
        batch.push(next);
        n += next.items.length;
        this.queue.shift();
      }
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        // Whatever queued meanwhile has waited at least one request already: send it now.
        if (this.queue.length > 0) this.flush();
      });
    }
  }

  private async run(batch: Array<Group<I, R>>): Promise<void> {
    try {
      this.requests++;
      const result = await this.send(batch.flatMap((g) => g.items));
      for (const g of batch) g.resolve(result);
    } catch (err) {
      if (batch.length > 1 && (this.opts.splittable?.(err) ?? true)) {
        const half = Math.ceil(batch.length / 2);
        await this.run(batch.slice(0, half));
        await this.run(batch.slice(half));
        return;
      }
      for (const g of batch) g.reject(err);
    }
  }
}
