/**
 * What the runtime (gateway, engine) knows of the cluster: every Orchestration
 * with its spec and generation, the Orchestration's signing key (the gateway
 * and engine sign commands with it) and its trust document (which keys may sign
 * what). Kept current by watches on the Kubernetes API; the operator writes
 * the Secret and the ConfigMap, this module only reads them.
 */
import * as k8s from "@kubernetes/client-node";
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
  private readonly core: k8s.CoreV1Api;
  private readonly orchestrations: Watcher<Orchestration & k8s.KubernetesObject>;
  private readonly trustMaps: Watcher<k8s.V1ConfigMap>;

  constructor(
    kc: k8s.KubeConfig,
    private readonly opts: RegistryOptions = {},
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const ns = opts.namespace;
    const base = `/apis/${GROUP}/${VERSION}`;
    this.orchestrations = new Watcher<Orchestration & k8s.KubernetesObject>(kc, {
      kind: "Orchestration",
      path: ns ? `${base}/namespaces/${ns}/${ORCHESTRATION_PLURAL}` : `${base}/${ORCHESTRATION_PLURAL}`,
      list: async () =>
        (ns
          ? await custom.listNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              namespace: ns,
              plural: ORCHESTRATION_PLURAL,
            })
          : await custom.listClusterCustomObject({
              group: GROUP,
              version: VERSION,
              plural: ORCHESTRATION_PLURAL,
            })) as k8s.KubernetesListObject<Orchestration & k8s.KubernetesObject>,
      onEvent: (type, obj) => void this.refresh(objectKey(obj), type === "delete" ? undefined : obj),
      onError: (kind, err) => opts.onError?.(`watch ${kind}`, err),
    });
    this.trustMaps = new Watcher<k8s.V1ConfigMap>(kc, {
      kind: "ConfigMap",
      path: ns ? `/api/v1/namespaces/${ns}/configmaps` : "/api/v1/configmaps",
      labelSelector: ORCHESTRATION_LABEL,
      list: async () =>
        ns
          ? await this.core.listNamespacedConfigMap({ namespace: ns, labelSelector: ORCHESTRATION_LABEL })
          : await this.core.listConfigMapForAllNamespaces({ labelSelector: ORCHESTRATION_LABEL }),
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
      const secret = await this.core.readNamespacedSecret({ name: signingKeySecretName(obj), namespace });
      const keys = signingKeysFromSecret(secret);
      if (keys.length > 0) signer = new Signer(keys);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) this.opts.onError?.(`read signing key of ${key}`, err);
    }
    try {
      const cm = await this.core.readNamespacedConfigMap({ name: trustConfigMapName(obj), namespace });
      const doc = cm.data?.[TRUST_FILE];
      if (doc) trust = TrustStore.fromDocument(doc);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) this.opts.onError?.(`read trust of ${key}`, err);
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
