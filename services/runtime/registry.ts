/**
 * What the runtime (gateway, engine) knows of the cluster: every Orchestration
 * with its spec and generation, the Orchestration's signing key (the gateway
 * and engine sign commands with it) and its trust document (which keys may sign
 * what). Kept current by watches on the Kubernetes API; the operator writes
 * the Secret and the ConfigMap, this module only reads them.
 */
import type * as k8s from "@kubernetes/client-node";
import type { Orchestration } from "../../operator/crds/types.ts";
import { GROUP, ORCHESTRATION_PLURAL, VERSION } from "../../operator/crds/types.ts";
import {
  signingKeySecretName,
  signingKeysFromSecret,
  trustConfigMapName,
  TRUST_FILE,
} from "../../operator/builders/keys.ts";
import { ORCHESTRATION_LABEL } from "../../operator/builders/meta.ts";
import { Signer } from "../events/signing.ts";
import { TrustStore } from "../events/trust-store.ts";
import { Watcher, objectKey } from "../../operator/runtime/informer.ts";
import { Kube } from "../../operator/kube.ts";
import type { KubeClient } from "../../operator/kube-client/client.ts";

export interface OrchestrationEntry {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly orchestration: Orchestration;
  /** Signs commands as the Orchestration; absent until the operator created the key (or when policy is `none`). */
  readonly signer: Signer | undefined;
  /** Which keys may sign what for this Orchestration; empty until the operator published it. */
  readonly trust: TrustStore;
}

export interface RegistryOptions {
  /** Watch one namespace only; default all. */
  namespace?: string;
  onError?: (what: string, err: unknown) => void;
}

type Listener = (entry: OrchestrationEntry | undefined, key: string) => void;

export class OrchestrationRegistry {
  private readonly entries = new Map<string, OrchestrationEntry>();
  private readonly listeners = new Set<Listener>();
  private readonly kube: Kube;
  private readonly orchestrations: Watcher<Orchestration & k8s.KubernetesObject>;
  private readonly trustMaps: Watcher<k8s.V1ConfigMap>;

  constructor(
    client: KubeClient,
    private readonly opts: RegistryOptions = {},
  ) {
    this.kube = new Kube(client);
    const ns = opts.namespace;
    const base = `/apis/${GROUP}/${VERSION}`;
    this.orchestrations = new Watcher<Orchestration & k8s.KubernetesObject>(client, {
      kind: "Orchestration",
      apiVersion: `${GROUP}/${VERSION}`,
      path: ns ? `${base}/namespaces/${ns}/${ORCHESTRATION_PLURAL}` : `${base}/${ORCHESTRATION_PLURAL}`,
      list: () => this.kube.listOrchestrations(ns),
      onEvent: (type, obj) => void this.refresh(objectKey(obj), type === "delete" ? undefined : obj),
      onError: (kind, err) => opts.onError?.(`watch ${kind}`, err),
    });
    this.trustMaps = new Watcher<k8s.V1ConfigMap>(client, {
      kind: "ConfigMap",
      apiVersion: "v1",
      path: ns ? `/api/v1/namespaces/${ns}/configmaps` : "/api/v1/configmaps",
      labelSelector: ORCHESTRATION_LABEL,
      list: () => this.kube.listConfigMaps(ns, ORCHESTRATION_LABEL),
      onEvent: (_type, cm) => {
        const orch = cm.metadata?.labels?.[ORCHESTRATION_LABEL];
        if (!orch) return;
        const key = `${cm.metadata?.namespace ?? ""}/${orch}`;
        const current = this.entries.get(key);
        if (current) void this.refresh(key, current.orchestration);
      },
      onError: (kind, err) => opts.onError?.(`watch ${kind}`, err),
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.orchestrations.start(), this.trustMaps.start()]);
    // The first refreshes run in the background; wait for them.
    await Promise.all(this.orchestrations.list().map((o) => this.refresh(objectKey(o), o)));
  }

  async stop(): Promise<void> {
    await Promise.all([this.orchestrations.stop(), this.trustMaps.stop()]);
  }

  get(namespace: string, name: string): OrchestrationEntry | undefined {
    return this.entries.get(`${namespace}/${name}`);
  }

  list(): OrchestrationEntry[] {
    return [...this.entries.values()];
  }

  /** Called after an entry was added, changed (spec, key or trust) or removed (undefined). */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the key and trust of one Orchestration now (e.g. after a verification failed on an unknown key). */
  async reload(namespace: string, name: string): Promise<OrchestrationEntry | undefined> {
    const key = `${namespace}/${name}`;
    const obj = this.orchestrations.get(namespace, name);
    await this.refresh(key, obj);
    return this.entries.get(key);
  }

  private async refresh(key: string, obj: Orchestration | undefined): Promise<void> {
    if (!obj) {
      this.entries.delete(key);
      for (const l of this.listeners) l(undefined, key);
      return;
    }
    const namespace = obj.metadata.namespace ?? "";
    const name = obj.metadata.name ?? "";
    let signer: Signer | undefined;
    let trust = new TrustStore([]);
    try {
      const secret = await this.kube.readSecret(namespace, signingKeySecretName(obj));
      const keys = secret ? signingKeysFromSecret(secret) : [];
      if (keys.length > 0) signer = new Signer(keys);
    } catch (err) {
      this.opts.onError?.(`read signing key of ${key}`, err);
    }
    try {
      const cm = await this.kube.readConfigMap(namespace, trustConfigMapName(obj));
      const doc = cm?.data?.[TRUST_FILE];
      if (doc) trust = TrustStore.fromDocument(doc);
    } catch (err) {
      this.opts.onError?.(`read trust of ${key}`, err);
    }
    const entry: OrchestrationEntry = {
      key,
      namespace,
      name,
      generation: obj.metadata.generation ?? 0,
      orchestration: obj,
      signer,
      trust,
    };
    this.entries.set(key, entry);
    for (const l of this.listeners) l(entry, key);
  }
}
