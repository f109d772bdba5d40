/**
 * Kubernetes Events for what the operator does and what goes wrong, visible in
 * `kubectl describe` and `kubectl events`. Repeats of the same event for the
 * same object are folded into one Event whose count rises, as kubelet does,
 * so a retry loop cannot flood the API server.
 */
import type * as k8s from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import type { Logger } from "./log.ts";
import { apiMessage } from "./errors.ts";

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export type EventType = "Normal" | "Warning";

/** Where Events go: core/v1 Events of a namespace (Kube.events). */
export interface EventSink {
  create(namespace: string, event: k8s.CoreV1Event): Promise<unknown>;
  patch(namespace: string, name: string, patch: object): Promise<unknown>;
}

export class EventRecorder {
  private readonly recent = new Map<string, { name: string; count: number; firstTimestamp: Date }>();

  constructor(
    private readonly sink: EventSink,
    private readonly component: string,
    private readonly log: Logger,
  ) {}

  private readonly backlog: Array<() => Promise<void>> = [];
  private sending = 0;

  /**
   * Records an Event in the background and returns at once; never throws (an
   * Event is worth less than the reconcile that raised it). A bounded number
   * are sent at a time; past 1,000 waiting, new ones are dropped and logged.
   */
  record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    if (this.backlog.length >= 1000) {
      this.log.warn({ reason, object: obj.metadata.name }, "Event backlog full; dropping an Event");
      return Promise.resolve();
    }
    this.backlog.push(() => this.send(obj, type, reason, message));
    this.drain();
    return Promise.resolve();
  }

  /** Resolves once every queued Event was sent (for tests and shutdown). */
  async flushed(): Promise<void> {
    while (this.backlog.length > 0 || this.sending > 0) await new Promise((r) => setTimeout(r, 10));
  }

  private drain(): void {
    while (this.sending < 4 && this.backlog.length > 0) {
      const job = this.backlog.shift();
      if (!job) break;
      this.sending++;
      void job().finally(() => {
        this.sending--;
        this.drain();
      });
    }
  }

  private async send(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? "default";
    const dedupeKey = `${obj.metadata.uid}|${type}|${reason}|${message}`;
    const now = new Date();
    const seen = this.recent.get(dedupeKey);
    try {
      if (seen) {
        seen.count++;
        await this.sink.patch(namespace, seen.name, { count: seen.count, lastTimestamp: now });
        return;
      }
      const name = `${obj.metadata.name}.${randomBytes(6).toString("hex")}`;
      await this.sink.create(namespace, {
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace,
          uid: obj.metadata.uid,
        },
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.component },
        reportingComponent: this.component,
      });
      this.recent.set(dedupeKey, { name, count: 1, firstTimestamp: now });
      if (this.recent.size > 10_000) this.recent.delete(this.recent.keys().next().value as string);
    } catch (err) {
      this.log.debug(
        { err: apiMessage(err), reason, object: `${namespace}/${obj.metadata.name}` },
        "could not record a Kubernetes Event",
      );
    }
  }
}
