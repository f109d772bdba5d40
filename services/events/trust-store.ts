/**
 * The trust store: which public keys may sign which CloudEvents. A valid signature is not enough; the key
 * must also be allowed to speak for the event's `source` and `type`, so a Worker's key can only sign results
 * for the steps it is bound to.
 *
 * Its document is a JWKS whose keys carry two extra members (format in docs/signing.md):
 *
 * ```json
 * { "keys": [ { "kty": "OKP", "crv": "Ed25519", "x": "...", "kid": "<RFC 7638 thumbprint>",
 *               "eventloom.io/sources": ["/eventloom/shop/orders/*"],
 *               "eventloom.io/types": ["io.eventloom.step.completed", "io.eventloom.step.failed"] } ] }
 * ```
 *
 * A pattern matches exactly, or, when it ends in `*`, by prefix; `*` alone matches everything.
 */
import type { KeyObject } from "node:crypto";
import { keyidOf, parseJwks, toPublicJwk, type Ed25519PublicJwk } from "./keys.ts";

/** JWK member listing the `source` patterns a key may sign. */
export const SOURCES_MEMBER = "eventloom.io/sources";
/** JWK member listing the `type` patterns a key may sign. */
export const TYPES_MEMBER = "eventloom.io/types";

/** What a key may sign. */
export interface KeyAllowance {
  /** `source` patterns: exact, or a prefix ending in `*`. */
  readonly sources: readonly string[];
  /** `type` patterns: exact, or a prefix ending in `*`. */
  readonly types: readonly string[];
}

/** A trusted public key and what it may sign. */
export interface TrustedKey extends KeyAllowance {
  readonly keyid: string;
  readonly publicKey: KeyObject;
}

/** One key of the trust document: a public JWK plus its allowances. */
export type TrustDocumentKey = Ed25519PublicJwk & { [SOURCES_MEMBER]: string[]; [TYPES_MEMBER]: string[] };

/** The trust document the operator publishes in a ConfigMap. */
export interface TrustDocument {
  keys: TrustDocumentKey[];
}

/** A trust document or key list that cannot be used; the message names the key and the problem. */
export class TrustStoreError extends Error {
  override readonly name = "TrustStoreError";
}

interface Matcher {
  readonly any: boolean;
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

interface Entry extends TrustedKey {
  readonly sourceMatcher: Matcher;
  readonly typeMatcher: Matcher;
}

/** Immutable map of key id → trusted key; build a new one when the ConfigMap changes. */
export class TrustStore {
  readonly #entries: ReadonlyMap<string, Entry>;

  /** Builds a store from public keys and allowances; throws {@link TrustStoreError} on a bad pattern or duplicate key. */
  constructor(keys: Iterable<{ readonly publicKey: KeyObject } & KeyAllowance>) {
    const entries = new Map<string, Entry>();
    for (const key of keys) {
      const keyid = keyidOf(key.publicKey);
      if (entries.has(keyid)) {
        throw new TrustStoreError(`key ${keyid} is listed twice; merge its allowances into one entry`);
      }
      entries.set(keyid, {
        keyid,
        publicKey: key.publicKey,
        sources: [...key.sources],
        types: [...key.types],
        sourceMatcher: compile(key.sources, `key ${keyid}: ${SOURCES_MEMBER}`),
        typeMatcher: compile(key.types, `key ${keyid}: ${TYPES_MEMBER}`),
      });
    }
    this.#entries = entries;
  }

  /** Reads a trust document (JSON text or parsed); throws {@link TrustStoreError} naming the bad entry. */
  static fromDocument(document: unknown): TrustStore {
    let keys;
    try {
      keys = parseJwks(document);
    } catch (error) {
      throw new TrustStoreError(`trust document: ${(error as Error).message}`, { cause: error });
    }
    return new TrustStore(
      keys.map(({ keyid, publicKey, jwk }) => ({
        publicKey,
        sources: patternList(jwk[SOURCES_MEMBER], `key ${keyid}: ${SOURCES_MEMBER}`),
        types: patternList(jwk[TYPES_MEMBER], `key ${keyid}: ${TYPES_MEMBER}`),
      })),
    );
  }

  /** The trust document for this store, ready to publish. */
  toDocument(): TrustDocument {
    return {
      keys: [...this.#entries.values()].map((entry) => ({
        ...toPublicJwk(entry.publicKey),
        [SOURCES_MEMBER]: [...entry.sources],
        [TYPES_MEMBER]: [...entry.types],
      })),
    };
  }

  /** The trusted key with this id, if any. */
  get(keyid: string): TrustedKey | undefined {
    return this.#entries.get(keyid);
  }

  /** Ids of all trusted keys. */
  get keyids(): string[] {
    return [...this.#entries.keys()];
  }

  /** True when the key is trusted and allowed to sign events with this `source` and `type`. */
  allows(keyid: string, source: string, type: string): boolean {
    const entry = this.#entries.get(keyid);
    return entry !== undefined && matches(entry.sourceMatcher, source) && matches(entry.typeMatcher, type);
  }

  /** A copy of this store without the given keys (e.g. the old key once a rotation completes). */
  without(...keyids: string[]): TrustStore {
    const drop = new Set(keyids);
    return new TrustStore([...this.#entries.values()].filter((entry) => !drop.has(entry.keyid)));
  }
}

function patternList(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new TrustStoreError(`${where} must be an array of strings, e.g. ["/eventloom/shop/orders/*"]`);
  }
  return value as string[];
}

// Empty lists and inner wildcards are refused: both would silently trust less (or more) than intended.
function compile(patterns: readonly string[], where: string): Matcher {
  if (patterns.length === 0) {
    throw new TrustStoreError(
      `${where} is empty, so the key could sign nothing; list patterns, or "*" for any`,
    );
  }
  const exact = new Set<string>();
  const prefixes: string[] = [];
  let any = false;
  for (const pattern of patterns) {
    const star = pattern.indexOf("*");
    if (pattern === "") throw new TrustStoreError(`${where} contains an empty pattern`);
    if (star !== -1 && star !== pattern.length - 1) {
      throw new TrustStoreError(
        `${where}: "${pattern}" has a "*" before its end; only a trailing "*" (prefix) is supported`,
      );
    }
    if (pattern === "*") any = true;
    else if (star === -1) exact.add(pattern);
    else prefixes.push(pattern.slice(0, -1));
  }
  return { any, exact, prefixes };
}

function matches(matcher: Matcher, value: string): boolean {
  return (
    matcher.any || matcher.exact.has(value) || matcher.prefixes.some((prefix) => value.startsWith(prefix))
  );
}
