/**
 * A watched cache of one kind of object: list, then watch from the list's
 * resourceVersion (with bookmarks, so the resourceVersion stays fresh); a
 * watch the server ends is resumed from the last resourceVersion seen; 410
 * Gone (too old) relists and turns the difference into add/update/delete
 * events; a failing watch is retried with backoff. A periodic resync with
 * jitter feeds every cached key back to the queue: level-triggered repair of
 * drift outside the cluster (topics changed by hand) and of anything a
 * reconcile dropped. The cache is the watch's view, so the resync needs no
 * request.
 *
 * Cached objects are stored without `metadata.managedFields` and the
 * `kubectl.kubernetes.io/last-applied-configuration` annotation: no
 * reconciler reads them, and on server-side-applied objects they are often
 * the larger part of the object.
 */
import type * as k8s from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KubeClient } from "../kube-client/client.ts";
import type { WatchEvent } from "../kube-client/watch-lines.ts";
import { isGone, isTransient } from "./errors.ts";

export type WatchEventType = "add" | "update" | "delete" | "resync";

export interface ListResult<T> {
  metadata?: { resourceVersion?: string };
  items: T[];
}

export interface WatcherOptions<T extends KubernetesObject> {
  kind: string;
  /** Set on listed objects, whose items the API server sends without apiVersion and kind. */
  apiVersion: string;
  /** The collection path, e.g. `/apis/apps/v1/namespaces/a/deployments`. */
  path: string;
  list: () => Promise<ListResult<T>>;
  labelSelector?: string;
  /** Mean time between resyncs; each is jittered by ±20 %. */
  resyncMs?: number;
  onEvent: (type: WatchEventType, obj: T) => void;
  /** What the cache keeps of each object (default `slim`); events carry the same. */
  transform?: (obj: T) => T;
  onError?: (kind: string, err: unknown, retryInMs: number) => void;
}

export function objectKey(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** What the cache keeps of an object: all but the bookkeeping no reconciler reads. */
export function slim<T extends KubernetesObject>(obj: T): T {
  const m = obj.metadata;
  if (m) {
    delete m.managedFields;
    if (m.annotations && LAST_APPLIED in m.annotations) {
      delete m.annotations[LAST_APPLIED];
    }
  }
  return obj;
}

/**
 * What the operator keeps of a Deployment it owns: identity, generation,
 * annotations and owners (metadata), the replica count and the status. The
 * pod template, the bulk of the object, is only ever written (applied), never
 * read back from the cache.
 */
export type CachedDeployment = Pick<k8s.V1Deployment, "apiVersion" | "kind" | "metadata" | "status"> & {
  spec?: { replicas?: number };
  /**
   * Who owns `spec.replicas` by the object's managedFields, as `manager/Operation`
   * (e.g. `eventloom-operator/Apply`, `eventloom-autoscaler/Update`). The only
   * part of managedFields a reconciler reads: whether the operator's apply must
   * keep sending the replica count it set at creation.
   */
  replicasOwners?: string[];
};

export function slimDeployment(d: CachedDeployment): CachedDeployment {
  const replicasOwners = (d.metadata?.managedFields ?? [])
    .filter(
      (f) =>
        (f.fieldsV1 as { "f:spec"?: { "f:replicas"?: unknown } } | undefined)?.["f:spec"]?.["f:replicas"],
    )
    .map((f) => `${f.manager ?? ""}/${f.operation ?? ""}`);
  const { apiVersion, kind, metadata, spec, status } = slim(d);
  return {
    ...(apiVersion ? { apiVersion } : {}),
    ...(kind ? { kind } : {}),
    ...(metadata ? { metadata } : {}),
    ...(spec?.replicas !== undefined ? { spec: { replicas: spec.replicas } } : {}),
    ...(status ? { status } : {}),
    ...(replicasOwners.length > 0 ? { replicasOwners } : {}),
  };
}

/** Backoff of the n-th consecutive failure: 0.5 s doubling to 30 s. */
export function backoffMs(failures: number): number {
  return Math.min(30_000, 250 * 2 ** Math.min(Math.max(failures, 1), 7));
}

export class Watcher<T extends KubernetesObject> {
  /** namespace → name → object, so a namespace's objects are listed without a scan. */
  private readonly cache = new Map<string, Map<string, T>>();
  private resourceVersion: string | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private synced = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly client: Pick<KubeClient, "watch">,
    private readonly opts: WatcherOptions<T>,
  ) {}

  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Lists (the cache is synced when this resolves), then watches in the background. A first list that
   * fails transiently (the API server starting, busy or unreachable) is retried with backoff, reported
   * through `onError`, as client-go's reflector does; one the server refuses (401, 403, 404: RBAC or a
   * missing CRD) rejects, so a misconfigured operator fails loudly at start.
   */
  async start(): Promise<void> {
    for (;;) {
      try {
        await this.relist();
        break;
      } catch (err) {
        if (this.stopped || !isTransient(err)) throw err;
        this.failures++;
        const delay = Math.round(backoffMs(this.failures) * (0.8 + Math.random() * 0.4));
        this.opts.onError?.(this.opts.kind, err, delay);
        await this.sleep(delay);
        if (this.stopped) throw err;
      }
    }
    this.failures = 0;
    this.synced = true;
    this.loop = this.watchLoop();
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.abort.abort();
    this.wake?.();
    await this.loop;
  }

  list(namespace?: string): readonly T[] {
    if (namespace !== undefined) return [...(this.cache.get(namespace)?.values() ?? [])];
    const all: T[] = [];
    for (const byName of this.cache.values()) for (const o of byName.values()) all.push(o);
    return all;
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(namespace)?.get(name);
  }

  /** Caches the object as the transform keeps it; returns what it replaced and what was kept. */
  private put(incoming: T): { old: T | undefined; kept: T } {
    const obj = (this.opts.transform ?? slim)(incoming);
    const ns = obj.metadata?.namespace ?? "";
    let byName = this.cache.get(ns);
    if (!byName) this.cache.set(ns, (byName = new Map()));
    const name = obj.metadata?.name ?? "";
    const old = byName.get(name);
    byName.set(name, obj);
    return { old, kept: obj };
  }

  private remove(obj: T): T | undefined {
    const ns = obj.metadata?.namespace ?? "";
    const byName = this.cache.get(ns);
    const name = obj.metadata?.name ?? "";
    const old = byName?.get(name);
    byName?.delete(name);
    if (byName?.size === 0) this.cache.delete(ns);
    return old;
  }

  /** Lists and turns the difference to the cache into events (all adds the first time). */
  private async relist(): Promise<void> {
    const fresh = await this.opts.list();
    const seen = new Set<string>();
    for (const obj of fresh.items) {
      // Items of a list of built-in kinds carry no apiVersion/kind; events, status applies and
      // the operator's own bookkeeping need them, as on objects that come from the watch.
      obj.apiVersion ??= this.opts.apiVersion;
      obj.kind ??= this.opts.kind;
      seen.add(objectKey(obj));
      const { old, kept } = this.put(obj);
      if (!old) this.opts.onEvent("add", kept);
      else if (old.metadata?.resourceVersion !== kept.metadata?.resourceVersion)
        this.opts.onEvent("update", kept);
    }
    for (const obj of this.list()) {
      if (!seen.has(objectKey(obj))) {
        this.remove(obj);
        this.opts.onEvent("delete", obj);
      }
    }
    this.resourceVersion = fresh.metadata?.resourceVersion;
  }

  private onWatchEvent(ev: WatchEvent<T>): void {
    const rv = ev.object.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    switch (ev.type) {
      case "ADDED":
      case "MODIFIED": {
        const { old, kept } = this.put(ev.object);
        this.opts.onEvent(old ? "update" : "add", kept);
        break;
      }
      case "DELETED":
        this.remove(ev.object);
        this.opts.onEvent("delete", ev.object);
        break;
      default:
        break; // BOOKMARK: only the resourceVersion
    }
  }

  private async watchLoop(): Promise<void> {
    let mustRelist = false;
    while (!this.stopped) {
      try {
        if (mustRelist) {
          await this.relist();
          mustRelist = false;
        }
        const startedMs = Date.now();
        await this.client.watch<T>(
          this.opts.path,
          {
            ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
            ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}),
            signal: this.abort.signal,
            onConnect: () => (this.failures = 0),
          },
          (ev) => this.onWatchEvent(ev),
        );
        // The server ended the watch (its timeout): resume from the last resourceVersion. A server that
        // ends every watch at once must not get a request loop: then wait a second.
        if (!this.stopped && Date.now() - startedMs < 1000) await this.sleep(1000);
      } catch (err) {
        if (this.stopped) return;
        if (isGone(err)) {
          // The resourceVersion is older than the server keeps: relist at once, no backoff.
          mustRelist = true;
          continue;
        }
        this.failures++;
        const delay = backoffMs(this.failures) * (0.8 + Math.random() * 0.4);
        this.opts.onError?.(this.opts.kind, err, Math.round(delay));
        // A failed relist is retried on the next turn; a failed watch resumes from where it was.
        if (!this.resourceVersion) mustRelist = true;
        await this.sleep(delay);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private scheduleResync(): void {
    const mean = this.opts.resyncMs ?? 30_000;
    const delay = mean * (0.8 + Math.random() * 0.4);
    this.resyncTimer = setTimeout(() => this.resync(), delay);
    this.resyncTimer.unref();
  }

  private resync(): void {
    if (this.stopped) return;
    for (const obj of this.list()) this.opts.onEvent("resync", obj);
    this.scheduleResync();
  }
}
