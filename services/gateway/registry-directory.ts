/**
 * The runtime registry (services/runtime/registry.ts) behind the gateway's {@link OrchestrationDirectory}
 * port: it starts in the background, retrying while the Kubernetes API is unreachable (so /readyz says
 * why instead of the process exiting), and throttles on-demand reloads of an Orchestration's key.
 */
import type { OrchestrationEntry, OrchestrationRegistry } from "../runtime/registry.ts";
import type { OrchestrationDirectory } from "./ports.ts";

export class RegistryDirectory implements OrchestrationDirectory {
  private isSynced = false;
  private stopped = false;
  private readonly lastReload = new Map<string, number>();
  private starting: Promise<void> | undefined;

  constructor(
    private readonly registry: OrchestrationRegistry,
    private readonly opts: {
      minReloadIntervalMs?: number;
      onError?: (what: string, err: unknown) => void;
    } = {},
  ) {}

  /** Starts the watches in the background; {@link synced} turns true once the first list arrived. */
  start(): Promise<void> {
    this.starting ??= this.startLoop();
    return this.starting;
  }

  synced(): boolean {
    return this.isSynced;
  }

  get(namespace: string, name: string): OrchestrationEntry | undefined {
    return this.registry.get(namespace, name);
  }

  async reload(namespace: string, name: string): Promise<OrchestrationEntry | undefined> {
    const key = `${namespace}/${name}`;
    const now = Date.now();
    const min = this.opts.minReloadIntervalMs ?? 2_000;
    if (now - (this.lastReload.get(key) ?? 0) < min) return this.registry.get(namespace, name);
    this.lastReload.set(key, now);
    if (this.lastReload.size > 10_000) this.lastReload.clear();
    return this.registry.reload(namespace, name);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.registry.stop();
  }

  private async startLoop(): Promise<void> {
    let backoff = 500;
    while (!this.stopped) {
      try {
        await this.registry.start();
        this.isSynced = true;
        return;
      } catch (err) {
        this.opts.onError?.("list Orchestrations", err);
        await this.registry.stop().catch(() => undefined);
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }
}
