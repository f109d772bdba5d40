/**
 * Leader election on a coordination.k8s.io Lease, after client-go's
 * leaderelection: candidates try to acquire or renew every `retryPeriodMs`; a
 * lease is taken over only when its holder has not renewed for
 * `leaseDurationMs`, measured on the candidate's own clock from when it last
 * saw the record change (so clock skew between nodes does not matter); a leader
 * that cannot renew within `renewDeadlineMs` steps down. On a graceful stop the
 * leader releases the lease so a standby takes over at its next retry.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type * as k8s from "@kubernetes/client-node";
import { isConflict, isNotFound } from "./errors.ts";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (err: unknown) => void;
  now?: () => number;
}

/** The Lease calls leader election makes (Kube.leases). */
export interface LeaseApi {
  read(namespace: string, name: string): Promise<k8s.V1Lease>;
  create(namespace: string, lease: k8s.V1Lease): Promise<unknown>;
  /** Fails with 409 when the Lease changed since it was read (its resourceVersion). */
  replace(namespace: string, name: string, lease: k8s.V1Lease): Promise<unknown>;
}

/**
 * A MicroTime as the API server writes it (RFC 3339 with microseconds). The
 * V1LeaseSpec type says Date (client-node's model class); on the wire it is
 * this string.
 */
export function microTime(ms: number): k8s.V1MicroTime {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") as unknown as k8s.V1MicroTime;
}

type LeaseRecord = { holder: string; renewTimeMs: number; transitions: number; resourceVersion?: string };

export class LeaderElector {
  readonly identity: string;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private observed: { record: string; atMs: number } | undefined;
  private lastRenewMs = 0;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly now: () => number;

  constructor(
    private readonly api: LeaseApi,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.identity = opts.identity ?? `${hostname()}_${process.pid}_${randomBytes(3).toString("hex")}`;
    this.leaseDurationMs = opts.leaseDurationMs ?? 10_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 7_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.now = opts.now ?? Date.now;
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs)) {
      throw new Error("leader election needs leaseDuration > renewDeadline > retryPeriod");
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        await this.tryAcquireOrRenew();
      } catch (err) {
        this.opts.onError?.(err);
      }
      if (this.leading && this.now() - this.lastRenewMs > this.renewDeadlineMs) {
        this.setLeading(false);
      }
      if (!this.stopped) {
        // Jitter the candidates so they do not all hit the API server together.
        const delay = this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2);
        this.timer = setTimeout(() => void tick(), delay);
      }
    };
    void tick();
  }

  /** Stops campaigning; a leader releases the lease so another takes over quickly. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leading) {
      try {
        const lease = await this.api.read(this.opts.namespace, this.opts.name);
        if (lease.spec?.holderIdentity === this.identity) {
          lease.spec.holderIdentity = undefined;
          lease.spec.leaseDurationSeconds = 1;
          await this.api.replace(this.opts.namespace, this.opts.name, lease);
        }
      } catch (err) {
        this.opts.onError?.(err);
      }
      this.setLeading(false);
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    if (leading) this.opts.onStartedLeading();
    else this.opts.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { name, namespace } = this.opts;
    const now = this.now();
    const spec = (transitions: number, acquire: boolean): k8s.V1LeaseSpec => ({
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      renewTime: microTime(now),
      ...(acquire ? { acquireTime: microTime(now) } : {}),
      leaseTransitions: transitions,
    });

    let lease: k8s.V1Lease;
    try {
      lease = await this.api.read(namespace, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.api.create(namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: spec(0, true),
        });
        this.lastRenewMs = now;
        this.setLeading(true);
      } catch (createErr) {
        if (!isConflict(createErr)) throw createErr;
      }
      return;
    }

    const record: LeaseRecord = {
      holder: lease.spec?.holderIdentity ?? "",
      renewTimeMs: lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0,
      transitions: lease.spec?.leaseTransitions ?? 0,
    };
    const fingerprint = `${record.holder}|${record.renewTimeMs}`;
    if (this.observed?.record !== fingerprint) this.observed = { record: fingerprint, atMs: now };
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const heldByOther = record.holder !== "" && record.holder !== this.identity;
    if (heldByOther && this.observed.atMs + durationMs > now) {
      this.setLeading(false);
      return;
    }
    const acquiring = record.holder !== this.identity;
    const previousAcquireTime = lease.spec?.acquireTime;
    lease.spec = spec(acquiring ? record.transitions + 1 : record.transitions, acquiring);
    if (!acquiring && previousAcquireTime) lease.spec.acquireTime = previousAcquireTime;
    try {
      await this.api.replace(namespace, name, lease);
    } catch (err) {
      if (isConflict(err)) return; // someone else wrote first; look again next tick
      throw err;
    }
    this.lastRenewMs = now;
    this.setLeading(true);
  }
}
