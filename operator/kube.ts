/**
 * The operator's Kubernetes access: typed reads of our resources, status
 * writes, finalizer edits and server-side apply of children. Everything that
 * talks to the API server goes through here, so reconcilers read as steps.
 */
import * as k8s from "@kubernetes/client-node";
import type { Orchestration, Worker } from "./crds/types.ts";
import { GROUP, ORCHESTRATION_PLURAL, VERSION, WORKER_PLURAL } from "./crds/types.ts";
import { isNotFound } from "./runtime/errors.ts";

/** Field manager of everything the operator applies. */
export const FIELD_MANAGER = "eventloom-operator";
/** Field manager of the replica count when the lag autoscaler owns it. */
export const AUTOSCALER_FIELD_MANAGER = "eventloom-autoscaler";

const mergePatch = () => k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

export class Kube {
  readonly custom: k8s.CustomObjectsApi;
  readonly core: k8s.CoreV1Api;
  readonly apps: k8s.AppsV1Api;
  readonly objects: k8s.KubernetesObjectApi;
  readonly coordination: k8s.CoordinationV1Api;

  constructor(readonly kc: k8s.KubeConfig) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  }

  async getOrchestration(namespace: string, name: string): Promise<Orchestration | undefined> {
    return this.getCustom<Orchestration>(ORCHESTRATION_PLURAL, namespace, name);
  }

  async getWorker(namespace: string, name: string): Promise<Worker | undefined> {
    return this.getCustom<Worker>(WORKER_PLURAL, namespace, name);
  }

  async listOrchestrations(
    namespace?: string,
  ): Promise<k8s.KubernetesListObject<Orchestration & k8s.KubernetesObject>> {
    return (await (namespace
      ? this.custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: ORCHESTRATION_PLURAL,
        })
      : this.custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: ORCHESTRATION_PLURAL,
        }))) as never;
  }

  async listWorkers(namespace?: string): Promise<k8s.KubernetesListObject<Worker & k8s.KubernetesObject>> {
    return (await (namespace
      ? this.custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: WORKER_PLURAL,
        })
      : this.custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: WORKER_PLURAL,
        }))) as never;
  }

  /** Writes the whole status of one of our resources (merge patch on /status). */
  async patchStatus(plural: string, namespace: string, name: string, status: object): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural, namespace, name, body: { status } },
      mergePatch(),
    );
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
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural,
        namespace,
        name,
        body: { apiVersion: target.apiVersion, kind: target.kind, metadata: { name, namespace }, status },
        fieldManager,
        force: true,
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.ServerSideApply),
    );
  }

  /**
   * Sets the finalizers of an object, guarded by its resourceVersion so a
   * concurrent edit makes this fail with 409 (and the reconcile retries)
   * rather than dropping someone else's finalizer.
   */
  async setFinalizers(plural: string, obj: Orchestration | Worker, finalizers: string[]): Promise<unknown> {
    return this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural,
        namespace: obj.metadata.namespace ?? "",
        name: obj.metadata.name ?? "",
        body: { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } },
      },
      mergePatch(),
    );
  }

  /** Server-side apply: the operator owns exactly the fields it sends; hand edits to them are reverted. */
  async apply<T extends k8s.KubernetesObject>(obj: T): Promise<T> {
    return this.objects.patch(
      obj,
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
  }

  async readSecret(namespace: string, name: string): Promise<k8s.V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async readDeployment(namespace: string, name: string): Promise<k8s.V1Deployment | undefined> {
    try {
      return await this.apps.readNamespacedDeployment({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async getCustom<T>(plural: string, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural,
        namespace,
        name,
      })) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
