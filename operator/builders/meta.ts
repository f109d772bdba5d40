/**
 * Metadata shared by the builders: owner references, standard labels and a
 * stable content hash. Everything here is a pure function of its input.
 */
import { createHash } from "node:crypto";
import type { V1OwnerReference } from "@kubernetes/client-node";
import { InvalidSpecError } from "./errors.ts";

/** `app.kubernetes.io/managed-by` on everything the operator creates. */
export const MANAGED_BY = "eventloom";
/** Label naming the Worker a child belongs to. */
export const WORKER_LABEL = "eventloom.io/worker";
/** Label naming the Orchestration a child belongs to. */
export const ORCHESTRATION_LABEL = "eventloom.io/orchestration";
/** Annotation carrying `stableHash` of a child's spec, to tell at a glance whether it changed. */
export const SPEC_HASH_ANNOTATION = "eventloom.io/spec-hash";

/** The parts of a Kubernetes object a builder needs to own a child. */
export interface OwnerObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string };
}

/** Name and namespace of an object, or a spec error naming what is missing. */
export function identify(obj: OwnerObject): { name: string; namespace: string } {
  const { name, namespace } = obj.metadata;
  if (!name || !namespace) {
    throw new InvalidSpecError(
      "MissingMetadata",
      `${obj.kind} ${namespace ?? "?"}/${name ?? "?"} has no ${name ? "namespace" : "name"}; builders need both (read the object from the API server)`,
    );
  }
  return { name, namespace };
}

/**
 * The controller owner reference to `owner`: garbage collection deletes the
 * child with its owner, and `blockOwnerDeletion` keeps foreground deletion
 * waiting for it.
 */
export function controllerReference(owner: OwnerObject): V1OwnerReference {
  const { name, namespace } = identify(owner);
  if (!owner.metadata.uid) {
    throw new InvalidSpecError(
      "MissingMetadata",
      `${owner.kind} ${namespace}/${name} has no uid, so nothing can be owned by it; pass the object as read from the API server`,
    );
  }
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * JSON with object keys sorted at every level, `undefined` members dropped: two
 * deep-equal values give the same text whatever order their keys were built in.
 */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** A short (16 hex) SHA-256 of `stableStringify(value)`. */
export function stableHash(value: unknown): string {
  return createHash("sha256").update(stableStringify(value)).digest("hex").slice(0, 16);
}
