/**
 * The operator's Kubernetes access: typed reads of our resources, status
 * writes, finalizer edits and server-side apply of children. Everything that
 * talks to the API server goes through here, so reconcilers read as steps.
 *
 * It runs on the operator's own lean client (operator/kube-client/); the
 * object types come from @kubernetes/client-node as types only (erased at
 * runtime). Objects are plain JSON as the API server sends them: timestamps
 * are RFC 3339 strings, whatever the V1* types say.
 */
import type * as k8s from "@kubernetes/client-node";
import type { Orchestration, Worker } from "./crds/types.ts";
import { GROUP, ORCHESTRATION_PLURAL, VERSION, WORKER_PLURAL } from "./crds/types.ts";
import { isNotFound } from "./runtime/errors.ts";
import { CONTENT_TYPE } from "./kube-client/client.ts";
import type { KubeClient } from "./kube-client/client.ts";

/** Field manager of everything the operator applies. */
export const FIELD_MANAGER = "eventloom-operator";
/** Field manager of the replica count when the lag autoscaler owns it. */
export const AUTOSCALER_FIELD_MANAGER = "eventloom-autoscaler";

export type ObjectList<T> = { apiVersion?: string; kind?: string; metadata?: k8s.V1ListMeta; items: T[] };

/** The collection paths of the kinds the operator applies; anything else is refused. */
const COLLECTIONS: Record<string, { prefix: string; plural: string }> = {
  "v1/ConfigMap": { prefix: "/api/v1", plural: "configmaps" },
  "v1/Secret": { prefix: "/api/v1", plural: "secrets" },
  "apps/v1/Deployment": { prefix: "/apis/apps/v1", plural: "deployments" },
  [`${GROUP}/${VERSION}/Orchestration`]: {
    prefix: `/apis/${GROUP}/${VERSION}`,
    plural: ORCHESTRATION_PLURAL,
  },
  [`${GROUP}/${VERSION}/Worker`]: { prefix: `/apis/${GROUP}/${VERSION}`, plural: WORKER_PLURAL },
};

const enc = encodeURIComponent;

/** `<prefix>[/namespaces/<ns>]/<plural>[/<name>[/<sub>]]`. */
export function resourcePath(
  prefix: string,
  plural: string,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  return (
    `${prefix}${namespace ? `/namespaces/${enc(namespace)}` : ""}/${plural}` +
    `${name !== undefined ? `/${enc(name)}` : ""}${subresource ? `/${subresource}` : ""}`
  );
}

const customPrefix = `/apis/${GROUP}/${VERSION}`;

/** The path of the object's collection member, from its apiVersion and kind. */
export function objectPath(obj: k8s.KubernetesObject): string {
  const collection = COLLECTIONS[`${obj.apiVersion}/${obj.kind}`];
  if (!collection) throw new Error(`the operator does not know where ${obj.apiVersion} ${obj.kind} lives`);
  const name = obj.metadata?.name;
  if (!name) throw new Error(`${obj.kind} without metadata.name`);
  return resourcePath(collection.prefix, collection.plural, obj.metadata?.namespace, name);
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export class Kube {
  /** The few core/v1 calls reconcilers make directly. */
  readonly core: {
    createNamespacedSecret(args: { namespace: string; body: k8s.V1Secret }): Promise<k8s.V1Secret>;
  };
  /** The few apps/v1 calls reconcilers make directly. */
  readonly apps: {
    createNamespacedDeployment(args: {
      namespace: string;
      body: k8s.V1Deployment;
      fieldManager?: string;
    }): Promise<k8s.V1Deployment>;
  };

  constructor(readonly client: KubeClient) {
    this.core = {
      createNamespacedSecret: ({ namespace, body }) =>
        client.request({
          method: "POST",
          path: resourcePath("/api/v1", "secrets", namespace),
          body: { apiVersion: "v1", kind: "Secret", ...body },
        }),
    };
    this.apps = {
      createNamespacedDeployment: ({ namespace, body, fieldManager }) =>
        client.request({
          method: "POST",
          path: resourcePath("/apis/apps/v1", "deployments", namespace),
          query: { fieldManager },
          body: { apiVersion: "apps/v1", kind: "Deployment", ...body },
        }),
    };
  }

  async getOrchestration(namespace: string, name: string): Promise<Orchestration | undefined> {
    return this.getCustom<Orchestration>(ORCHESTRATION_PLURAL, namespace, name);
  }

  async getWorker(namespace: string, name: string): Promise<Worker | undefined> {
    return this.getCustom<Worker>(WORKER_PLURAL, namespace, name);
  }

  async listOrchestrations(namespace?: string): Promise<ObjectList<Orchestration & k8s.KubernetesObject>> {
    return (await this.client.request({
      path: resourcePath(customPrefix, ORCHESTRATION_PLURAL, namespace),
    })) as never;
  }

  async listWorkers(namespace?: string): Promise<ObjectList<Worker & k8s.KubernetesObject>> {
    return (await this.client.request({
      path: resourcePath(customPrefix, WORKER_PLURAL, namespace),
    })) as never;
  }

  async listDeployments(
    namespace: string | undefined,
    labelSelector: string,
  ): Promise<ObjectList<k8s.V1Deployment>> {
    return this.client.request({
      path: resourcePath("/apis/apps/v1", "deployments", namespace),
      query: { labelSelector },
    });
  }

  async listSecrets(namespace: string | undefined, labelSelector: string): Promise<ObjectList<k8s.V1Secret>> {
    return this.client.request({
      path: resourcePath("/api/v1", "secrets", namespace),
      query: { labelSelector },
    });
  }

  /** Writes the whole status of one of our resources (merge patch on /status). */
  async patchStatus(plural: string, namespace: string, name: string, status: object): Promise<void> {
    await this.client.request({
      method: "PATCH",
      path: resourcePath(customPrefix, plural, namespace, name, "status"),
      contentType: CONTENT_TYPE.mergePatch,
      body: { status },
    });
  }

  /**
   * Server-side applies part of the status of one of our resources as
   * `fieldManager`. Two writers (the Worker reconciler and the autoscaler)
   * share a Worker's status this way: each owns its own fields and its own
   * entries of `conditions` (a list-map keyed by type), so neither can
   * clobber the other's, whatever their caches say.
   */
  async applyStatus(
    plural: string,
    target: { apiVersion: string; kind: string; metadata: { name?: string; namespace?: string } },
    status: object,
    fieldManager: string,
  ): Promise<void> {
    const namespace = target.metadata.namespace ?? "";
    const name = target.metadata.name ?? "";
    await this.client.request({
      method: "PATCH",
      path: resourcePath(customPrefix, plural, namespace, name, "status"),
      query: { fieldManager, force: true },
      contentType: CONTENT_TYPE.apply,
      body: { apiVersion: target.apiVersion, kind: target.kind, metadata: { name, namespace }, status },
    });
  }

  /**
   * Sets the finalizers of an object, guarded by its resourceVersion so a
   * concurrent edit makes this fail with 409 (and the reconcile retries)
   * rather than dropping someone else's finalizer.
   */
  async setFinalizers(plural: string, obj: Orchestration | Worker, finalizers: string[]): Promise<unknown> {
    return this.client.request({
      method: "PATCH",
      path: resourcePath(customPrefix, plural, obj.metadata.namespace ?? "", obj.metadata.name ?? ""),
      contentType: CONTENT_TYPE.mergePatch,
      body: { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } },
    });
  }

  /** Server-side apply: the operator owns exactly the fields it sends; hand edits to them are reverted. */
  async apply<T extends k8s.KubernetesObject>(obj: T): Promise<T> {
    return this.client.request<T>({
      method: "PATCH",
      path: objectPath(obj),
      query: { fieldManager: FIELD_MANAGER, force: true },
      contentType: CONTENT_TYPE.apply,
      body: obj,
    });
  }

  /** Sets a Deployment's replicas through its scale subresource, as `fieldManager`. */
  async scaleDeployment(
    namespace: string,
    name: string,
    replicas: number,
    fieldManager: string,
  ): Promise<void> {
    await this.client.request({
      method: "PATCH",
      path: resourcePath("/apis/apps/v1", "deployments", namespace, name, "scale"),
      query: { fieldManager },
      contentType: CONTENT_TYPE.mergePatch,
      body: { spec: { replicas } },
    });
  }

  async readSecret(namespace: string, name: string): Promise<k8s.V1Secret | undefined> {
    return orUndefined(this.client.request({ path: resourcePath("/api/v1", "secrets", namespace, name) }));
  }

  async readConfigMap(namespace: string, name: string): Promise<k8s.V1ConfigMap | undefined> {
    return orUndefined(this.client.request({ path: resourcePath("/api/v1", "configmaps", namespace, name) }));
  }

  async listConfigMaps(
    namespace: string | undefined,
    labelSelector: string,
  ): Promise<ObjectList<k8s.V1ConfigMap>> {
    return this.client.request({
      path: resourcePath("/api/v1", "configmaps", namespace),
      query: { labelSelector },
    });
  }

  async readDeployment(namespace: string, name: string): Promise<k8s.V1Deployment | undefined> {
    return orUndefined(
      this.client.request({ path: resourcePath("/apis/apps/v1", "deployments", namespace, name) }),
    );
  }

  /** coordination.k8s.io/v1 Leases, for leader election. */
  readonly leases = {
    read: (namespace: string, name: string): Promise<k8s.V1Lease> =>
      this.client.request({ path: resourcePath("/apis/coordination.k8s.io/v1", "leases", namespace, name) }),
    create: (namespace: string, lease: k8s.V1Lease): Promise<k8s.V1Lease> =>
      this.client.request({
        method: "POST",
        path: resourcePath("/apis/coordination.k8s.io/v1", "leases", namespace),
        body: lease,
      }),
    /** Replaces the Lease; fails with 409 if `lease.metadata.resourceVersion` is no longer current. */
    replace: (namespace: string, name: string, lease: k8s.V1Lease): Promise<k8s.V1Lease> =>
      this.client.request({
        method: "PUT",
        path: resourcePath("/apis/coordination.k8s.io/v1", "leases", namespace, name),
        body: lease,
      }),
  };

  /** core/v1 Events, for the EventRecorder. */
  readonly events = {
    create: (namespace: string, event: k8s.CoreV1Event): Promise<unknown> =>
      this.client.request({
        method: "POST",
        path: resourcePath("/api/v1", "events", namespace),
        body: { apiVersion: "v1", kind: "Event", ...event },
      }),
    patch: (namespace: string, name: string, patch: object): Promise<unknown> =>
      this.client.request({
        method: "PATCH",
        path: resourcePath("/api/v1", "events", namespace, name),
        contentType: CONTENT_TYPE.mergePatch,
        body: patch,
      }),
  };

  private async getCustom<T>(plural: string, namespace: string, name: string): Promise<T | undefined> {
    return orUndefined(this.client.request<T>({ path: resourcePath(customPrefix, plural, namespace, name) }));
  }
}
