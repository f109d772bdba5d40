/**
 * A watched cache of one kind of object: list, then watch from the list's
 * resourceVersion (client-node's ListWatch relists on 410 Gone), restart with
 * backoff when the watch fails, and a periodic relist with jitter that feeds
 * every key back to the queue: level-triggered repair of anything missed and of
 * drift outside the cluster (topics changed by hand).
 */
import * as k8s from "@kubernetes/client-node";
import type { KubernetesObject, KubernetesListObject } from "@kubernetes/client-node";

export type WatchEventType = "add" | "update" | "delete" | "resync";

export interface WatcherOptions<T extends KubernetesObject> {
  kind: string;
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /** Mean time between full relists; each is jittered by ±20 %. */
  resyncMs?: number;
  onEvent: (type: WatchEventType, obj: T) => void;
  onError?: (kind: string, err: unknown, retryInMs: number) => void;
}

export function objectKey(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

export class Watcher<T extends KubernetesObject> {
  private readonly informer: k8s.Informer<T> & k8s.ObjectCache<T>;
  private resyncTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private synced = false;

  constructor(
    kc: k8s.KubeConfig,
    private readonly opts: WatcherOptions<T>,
  ) {
    this.informer = k8s.makeInformer<T>(kc, opts.path, opts.list, opts.labelSelector);
    this.informer.on("add", (o) => opts.onEvent("add", o));
    this.informer.on("update", (o) => opts.onEvent("update", o));
    this.informer.on("delete", (o) => opts.onEvent("delete", o));
    this.informer.on("connect", () => {
      this.failures = 0;
    });
    this.informer.on("error", (err) => this.restartAfterError(err));
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.synced = true;
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    await this.informer.stop();
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  get(namespace: string, name: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  private restartAfterError(err: unknown): void {
    if (this.stopped) return;
    this.failures++;
    const delay = Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7));
    this.opts.onError?.(this.opts.kind, err, delay);
    setTimeout(() => {
      if (this.stopped) return;
      this.informer.start().catch((e: unknown) => this.restartAfterError(e));
    }, delay).unref();
  }

  private scheduleResync(): void {
    const mean = this.opts.resyncMs ?? 30_000;
    const delay = mean * (0.8 + Math.random() * 0.4);
    this.resyncTimer = setTimeout(() => void this.resync(), delay);
    this.resyncTimer.unref();
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    try {
      const fresh = await this.opts.list();
      const seen = new Set<string>();
      for (const obj of fresh.items) {
        seen.add(objectKey(obj));
        this.opts.onEvent("resync", obj);
      }
      // Objects the cache still holds but the server no longer has: a missed delete.
      for (const obj of this.informer.list()) {
        if (!seen.has(objectKey(obj))) this.opts.onEvent("delete", obj);
      }
    } catch (err) {
      this.opts.onError?.(this.opts.kind, err, this.opts.resyncMs ?? 30_000);
    }
    if (!this.stopped) this.scheduleResync();
  }
}
