/**
 * Signing keys and trust, as Kubernetes objects.
 *
 * - `signingKeySecretFor`: a Secret holding an owner's Ed25519 private key(s).
 *   Key generation is the caller's (`generateSigningKey()`), done once when the
 *   Secret does not exist yet; afterwards the keys come back from the Secret
 *   (`signingKeysFromSecret`), so reconciling never rotates by accident.
 * - `trustConfigMapFor`: an Orchestration's trust document (the JWKS format of
 *   `services/events/trust-store.ts`), granting each key what it may sign:
 *   the engine's and gateway's keys the commands of every step, each Worker's
 *   keys the results of the steps it is bound to, and nothing more.
 *
 * Event sources follow one convention (see "Trust document" in docs/topics.md):
 * the engine and gateway speak as `/eventloom/<ns>/<orchestration>`, a Worker
 * answering for a step as `/eventloom/<ns>/<orchestration>/<step>`.
 */
import type { JsonWebKey, KeyObject } from "node:crypto";
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import type { Orchestration } from "../crds/types.ts";
import { WORKER_KIND } from "../crds/types.ts";
import { loadSigningKey, toPrivateJwk, toPublicJwk } from "../../services/events/keys.ts";
import type { SigningKey } from "../../services/events/keys.ts";
import { SOURCES_MEMBER, TYPES_MEMBER } from "../../services/events/trust-store.ts";
import type { TrustDocument, TrustDocumentKey } from "../../services/events/trust-store.ts";
import { InvalidSpecError } from "./errors.ts";
import { MANAGED_BY, ORCHESTRATION_LABEL, WORKER_LABEL, controllerReference, identify } from "./meta.ts";
import type { OwnerObject } from "./meta.ts";

/** `type` of signing-key Secrets. */
export const SIGNING_KEY_SECRET_TYPE = "eventloom.io/signing-key";
/** Secret key: the active private key as a JWK (with `kid`). Load it with `loadSigningKey`. */
export const PRIVATE_JWK_FILE = "private.jwk";
/** Secret key: every private key to sign with, active first (`{"keys": [...]}`); more than one during a rotation. */
export const PRIVATE_JWKS_FILE = "private.jwks";
/** Secret key: the active key's id (RFC 7638 thumbprint). */
export const KEYID_FILE = "keyid";
/** ConfigMap key holding the trust document. */
export const TRUST_FILE = "trust.json";
/** JWK member naming who holds the key (informational; the trust store ignores it). */
export const OWNERS_MEMBER = "eventloom.io/owners";
/** Types of step results (completed, failed, …) a Worker publishes. */
export const RESULT_TYPE_PATTERN = "io.eventloom.step.*";

/** `<name>-<kind>-signing-key`, e.g. `payments-worker-signing-key`. */
export function signingKeySecretName(owner: OwnerObject): string {
  return `${identify(owner).name}-${owner.kind.toLowerCase()}-signing-key`;
}

/** `<orchestration>-orchestration-trust`. */
export function trustConfigMapName(orchestration: Orchestration): string {
  return `${identify(orchestration).name}-orchestration-trust`;
}

/** Source of commands the engine or gateway sends for an Orchestration. */
export function orchestrationSource(namespace: string, orchestration: string): string {
  return `/eventloom/${namespace}/${orchestration}`;
}

/** Source of a Worker's results (and, in choreography, emitted events) for one step. */
export function stepSource(namespace: string, orchestration: string, step: string): string {
  return `/eventloom/${namespace}/${orchestration}/${step}`;
}

/**
 * The Secret holding `owner`'s signing keys, owned by `owner`.
 * @param keys the keys to sign with, the active one first; pass two during a
 *   rotation's overlap (new first, then old) and one again afterwards.
 */
export function signingKeySecretFor(owner: OwnerObject, keys: SigningKey | readonly SigningKey[]): V1Secret {
  const list: readonly SigningKey[] = Array.isArray(keys) ? keys : [keys as SigningKey];
  const { name, namespace } = identify(owner);
  const [active] = list;
  if (active === undefined) {
    throw new InvalidSpecError("NoSigningKey", `no signing key given for ${owner.kind} ${namespace}/${name}`);
  }
  const jwks = list.map((key) => toPrivateJwk(key));
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: signingKeySecretName(owner),
      namespace,
      labels: {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "eventloom",
        ...(owner.kind === WORKER_KIND ? { [WORKER_LABEL]: name } : {}),
      },
      ownerReferences: [controllerReference(owner)],
    },
    type: SIGNING_KEY_SECRET_TYPE,
    data: {
      [PRIVATE_JWK_FILE]: base64(JSON.stringify(jwks[0])),
      [PRIVATE_JWKS_FILE]: base64(JSON.stringify({ keys: jwks })),
      [KEYID_FILE]: base64(active.keyid),
    },
  };
}

/**
 * The keys stored by `signingKeySecretFor`, active first (the inverse, for the
 * reconciler: reuse existing keys instead of generating new ones).
 * @throws KeyFormatError when the Secret holds something that is not an Ed25519 key.
 */
export function signingKeysFromSecret(secret: V1Secret): SigningKey[] {
  const data = secret.data ?? {};
  const jwks = data[PRIVATE_JWKS_FILE];
  if (jwks !== undefined) {
    const parsed = JSON.parse(unbase64(jwks)) as { keys?: unknown };
    if (Array.isArray(parsed.keys)) return parsed.keys.map((jwk) => loadSigningKey(jwk as JsonWebKey));
  }
  const jwk = data[PRIVATE_JWK_FILE];
  return jwk === undefined ? [] : [loadSigningKey(unbase64(jwk))];
}

/** A public key, as a KeyObject (public or private; only the public half is published) or with its id. */
export type PublicKeyInput = KeyObject | { readonly publicKey: KeyObject };

/** One key of the published trust document, with the informational owners member. */
export type PublishedTrustKey = TrustDocumentKey & { [OWNERS_MEMBER]: string[] };

/** Whose keys to trust for one Orchestration. */
export type TrustEntry =
  /** The engine or gateway: may sign the commands (and compensations) of every step. */
  | { readonly role: "engine" | "gateway"; readonly keys: readonly PublicKeyInput[] }
  /** A Worker: may sign results only for the steps it is bound to. */
  | {
      readonly role: "worker";
      readonly worker: string;
      readonly steps: readonly string[];
      readonly keys: readonly PublicKeyInput[];
    };

/**
 * The trust document for `orchestration`: one JWK per key, with the sources
 * and types it may sign. A key listed by several entries gets the union.
 * Keys, owners and patterns are sorted, so the document depends only on what
 * is trusted, not on the order entries were listed in.
 */
export function trustDocumentFor(
  orchestration: Orchestration,
  entries: readonly TrustEntry[],
): TrustDocument & { keys: PublishedTrustKey[] } {
  const { name, namespace } = identify(orchestration);
  const steps = new Map(orchestration.spec.steps.map((s) => [s.name, s]));
  const commandTypes = orchestration.spec.steps.flatMap((s) => [
    ...(s.type ? [s.type] : []),
    ...(s.compensation ? [s.compensation] : []),
    // Choreography has no commands: the gateway injects the events that trigger steps.
    ...(s.subscribes ?? []),
  ]);
  const byKid = new Map<
    string,
    { jwk: ReturnType<typeof toPublicJwk>; owners: Set<string>; sources: Set<string>; types: Set<string> }
  >();
  for (const entry of entries) {
    let owner: string;
    let sources: string[];
    let types: string[];
    if (entry.role === "worker") {
      const unknown = entry.steps.filter((s) => !steps.has(s));
      if (unknown.length > 0) {
        throw new InvalidSpecError(
          "UnknownStep",
          `Worker ${namespace}/${entry.worker} is bound to ${unknown.join(", ")}, which Orchestration ` +
            `${namespace}/${name} does not have; this is a bug in the caller's binding`,
        );
      }
      owner = `Worker ${entry.worker}`;
      sources = entry.steps.map((s) => stepSource(namespace, name, s));
      types = [RESULT_TYPE_PATTERN, ...entry.steps.flatMap((s) => steps.get(s)?.emits ?? [])];
    } else {
      owner = entry.role;
      sources = [orchestrationSource(namespace, name)];
      // The Orchestration's own key speaks only as the Orchestration, but for every type it
      // may need there: step commands and compensations, and the client events the gateway
      // signs on ingress (run starts, choreography triggers) whose types the spec cannot list.
      types = commandTypes.length > 0 ? ["*"] : [];
    }
    // A key allowed nothing is left out: the trust store refuses empty allowances.
    if (sources.length === 0 || types.length === 0) continue;
    for (const input of entry.keys) {
      const jwk = toPublicJwk("publicKey" in input ? input.publicKey : input);
      let grant = byKid.get(jwk.kid);
      if (!grant)
        byKid.set(jwk.kid, (grant = { jwk, owners: new Set(), sources: new Set(), types: new Set() }));
      grant.owners.add(owner);
      for (const s of sources) grant.sources.add(s);
      for (const t of types) grant.types.add(t);
    }
  }
  const keys = [...byKid.values()]
    .sort((a, b) => compare(a.jwk.kid, b.jwk.kid))
    .map((grant): PublishedTrustKey => ({
      ...grant.jwk,
      [SOURCES_MEMBER]: [...grant.sources].sort(compare),
      [TYPES_MEMBER]: [...grant.types].sort(compare),
      [OWNERS_MEMBER]: [...grant.owners].sort(compare),
    }));
  return { keys };
}

/** The ConfigMap publishing `trustDocumentFor(orchestration, entries)` as `trust.json`, owned by the Orchestration. */
export function trustConfigMapFor(orchestration: Orchestration, entries: readonly TrustEntry[]): V1ConfigMap {
  const { name, namespace } = identify(orchestration);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: trustConfigMapName(orchestration),
      namespace,
      labels: {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "eventloom",
        [ORCHESTRATION_LABEL]: name,
      },
      ownerReferences: [controllerReference(orchestration)],
    },
    data: { [TRUST_FILE]: `${JSON.stringify(trustDocumentFor(orchestration, entries), null, 2)}\n` },
  };
}

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function unbase64(text: string): string {
  return Buffer.from(text, "base64").toString("utf8");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
