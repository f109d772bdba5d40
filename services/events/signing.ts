/**
 * Signing and verification of CloudEvents with the verifiability extension: a DSSE envelope in the
 * `dssematerial` extension, signing {@link materialDigest} with Ed25519 (wire format: docs/signing.md).
 *
 * Verification runs on the decoded attribute strings and the raw data bytes, so it happens before anything
 * parses the payload, and it checks the cheap things first (envelope shape, key trust, allowances, digest)
 * so that a forged or misrouted record never costs an Ed25519 operation.
 */
import { sign as ed25519Sign, verify as ed25519Verify } from "node:crypto";
import { decodeRecord, type ContentMode, type KafkaRecord } from "./binding.ts";
import {
  type CloudEvent,
  type CloudEventError,
  cloudEventProblem,
  describeEvent,
  markValid,
} from "./cloudevent.ts";
import { decodeEnvelope, DsseFormatError, encodeEnvelope, pae, PAYLOAD_TYPE } from "./dsse.ts";
import type { SigningKey } from "./keys.ts";
import {
  DSSE_ATTRIBUTE,
  materialDigest,
  parseSignedExtensions,
  SIGNED_EXTENSIONS_ATTRIBUTE,
  signedExtensionsProblem,
  UNSIGNABLE_EXTENSIONS,
} from "./material.ts";
import type { TrustStore } from "./trust-store.ts";

/** Per-Orchestration signing policy: `required` fails closed on unsigned events; `none` accepts them. */
export type SigningPolicy = "required" | "none";

/** Why verification failed. Every one of these is terminal: route the record to the dead-letter topic. */
export type VerificationFailureReason =
  "missing-signature" | "malformed-signature" | "unknown-key" | "bad-signature" | "not-authorized";

/** The outcome of {@link Verifier.verify}. */
export type VerificationResult =
  | {
      readonly ok: true;
      /** The key whose signature verified; `null` for an unsigned event accepted under policy `none`. */
      readonly keyid: string | null;
      /** The extensions the signature covers (empty when unsigned); trust no other extension's value. */
      readonly signedExtensions: readonly string[];
    }
  | { readonly ok: false; readonly reason: VerificationFailureReason; readonly message: string };

/** The outcome of {@link Verifier.verifyRecord}: also fails with `invalid-event` when the record is not a valid CloudEvent. */
export type RecordVerificationResult =
  | (Extract<VerificationResult, { ok: true }> & { readonly event: CloudEvent; readonly mode: ContentMode })
  | Extract<VerificationResult, { ok: false }>
  | {
      readonly ok: false;
      readonly reason: "invalid-event";
      readonly message: string;
      readonly error: CloudEventError;
    };

/** Options for {@link Signer}. */
export interface SignerOptions {
  /**
   * Extensions to sign, e.g. `["partitionkey", "destination"]`. Default: every extension the event carries
   * except {@link UNSIGNABLE_EXTENSIONS}, so nothing the producer set can be altered unnoticed.
   */
  readonly extensions?: readonly string[];
}

/**
 * Signs events with one or more Ed25519 keys. During a key rotation, hold the old and the new key: every
 * event then carries both signatures, and verifiers that trust either key accept it.
 */
export class Signer {
  readonly #keys: readonly SigningKey[];
  readonly #extensions: readonly string[] | undefined;

  constructor(keys: SigningKey | readonly SigningKey[], options: SignerOptions = {}) {
    this.#keys = "keyid" in keys ? [keys] : [...keys];
    if (this.#keys.length === 0) throw new Error("a Signer needs at least one signing key");
    if (options.extensions !== undefined) {
      const problem = signedExtensionsProblem(options.extensions);
      if (problem !== undefined) {
        throw new Error(`cannot sign extensions ${options.extensions.join(",")}: ${problem}`);
      }
      this.#extensions = [...options.extensions];
    }
  }

  /** Ids of the keys this signer signs with, in signature order. */
  get keyids(): string[] {
    return this.#keys.map((key) => key.keyid);
  }

  /**
   * Returns a copy of `event` with `signedextattrs` and `dssematerial` set (replacing any earlier
   * signature). Throws {@link CloudEventError} if the event is invalid, or an Error for an unsignable list.
   */
  sign(event: CloudEvent, options: SignerOptions = {}): CloudEvent {
    const invalid = cloudEventProblem(event);
    if (invalid !== undefined) throw invalid;
    const extensions = options.extensions ?? this.#extensions ?? defaultExtensions(event);
    const problem = signedExtensionsProblem(extensions);
    if (problem !== undefined) throw new Error(`cannot sign ${describeEvent(event)}: ${problem}`);

    const digest = materialDigest(event, extensions);
    const message = pae(PAYLOAD_TYPE, digest);
    const signatures = this.#keys.map((key) => ({
      keyid: key.keyid,
      sig: ed25519Sign(null, message, key.privateKey),
    }));

    const signed: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [name, value] of Object.entries(event.extensions)) {
      if (name !== DSSE_ATTRIBUTE && name !== SIGNED_EXTENSIONS_ATTRIBUTE) signed[name] = value;
    }
    if (extensions.length > 0) signed[SIGNED_EXTENSIONS_ATTRIBUTE] = extensions.join(",");
    signed[DSSE_ATTRIBUTE] = encodeEnvelope({ payloadType: PAYLOAD_TYPE, payload: digest, signatures });
    // Valid: a validated event plus two extensions with valid names and string values.
    return markValid({ ...event, extensions: signed });
  }
}

function defaultExtensions(event: CloudEvent): string[] {
  return Object.keys(event.extensions)
    .filter((name) => !UNSIGNABLE_EXTENSIONS.has(name))
    .sort();
}

/** Options for {@link Verifier}. */
export interface VerifierOptions {
  /** Default `required`. */
  readonly policy?: SigningPolicy;
  /**
   * Extensions every signature must cover, e.g. `["partitionkey", "destination"]`: an event signed without
   * them could be replayed to another run or step. Default: none.
   */
  readonly requiredExtensions?: readonly string[];
}

/** Verifies signed events against a {@link TrustStore}. */
export class Verifier {
  #trustStore: TrustStore;
  readonly #policy: SigningPolicy;
  readonly #requiredExtensions: readonly string[];

  constructor(trustStore: TrustStore, options: VerifierOptions = {}) {
    this.#trustStore = trustStore;
    this.#policy = options.policy ?? "required";
    this.#requiredExtensions = [...(options.requiredExtensions ?? [])];
  }

  /** The signing policy this verifier enforces. */
  get policy(): SigningPolicy {
    return this.#policy;
  }

  /** Swaps in a new trust store (e.g. when the trust ConfigMap changes); later calls use it. */
  updateTrustStore(trustStore: TrustStore): void {
    this.#trustStore = trustStore;
  }

  /**
   * Decodes a consumed Kafka record and verifies it, without parsing binary-mode data. Under policy `none`
   * an unsigned record is accepted, but it must still be a valid CloudEvent.
   */
  verifyRecord(record: KafkaRecord): RecordVerificationResult {
    const decoded = decodeRecord(record);
    if (!decoded.ok) {
      return { ok: false, reason: "invalid-event", message: decoded.error.message, error: decoded.error };
    }
    const result = this.verify(decoded.event);
    return result.ok ? { ...result, event: decoded.event, mode: decoded.mode } : result;
  }

  /**
   * Verifies an already decoded (so already validated) event. A signature that is present is always checked,
   * whatever the policy: an invalid one means tampering, not a missing feature.
   */
  verify(event: CloudEvent): VerificationResult {
    const what = describeEvent(event);
    const encoded = Object.hasOwn(event.extensions, DSSE_ATTRIBUTE)
      ? event.extensions[DSSE_ATTRIBUTE]
      : undefined;
    if (encoded === undefined || encoded === "") {
      if (this.#policy === "none") return { ok: true, keyid: null, signedExtensions: [] };
      return fail(
        "missing-signature",
        `${what} is not signed (no ${DSSE_ATTRIBUTE}) but the signing policy is "required"; sign it with the producer's Signer, or set the Orchestration's signing policy to "none"`,
      );
    }

    let envelope;
    try {
      envelope = decodeEnvelope(encoded);
    } catch (error) {
      if (error instanceof DsseFormatError) return fail("malformed-signature", `${what}: ${error.message}`);
      throw error;
    }
    if (envelope.payloadType !== PAYLOAD_TYPE) {
      return fail(
        "malformed-signature",
        `${what}: DSSE payloadType "${envelope.payloadType}" is not supported; this verifier reads "${PAYLOAD_TYPE}"`,
      );
    }
    const signedExtensions = parseSignedExtensions(
      Object.hasOwn(event.extensions, SIGNED_EXTENSIONS_ATTRIBUTE)
        ? event.extensions[SIGNED_EXTENSIONS_ATTRIBUTE]
        : undefined,
    );
    const listProblem = signedExtensionsProblem(signedExtensions);
    if (listProblem !== undefined) {
      return fail(
        "malformed-signature",
        `${what}: ${SIGNED_EXTENSIONS_ATTRIBUTE} is invalid: ${listProblem}`,
      );
    }

    const known = envelope.signatures.filter((s) => this.#trustStore.get(s.keyid) !== undefined);
    if (known.length === 0) {
      return fail(
        "unknown-key",
        `${what} is signed by key ${envelope.signatures.map((s) => s.keyid).join(", ")}, which the trust store does not hold; publish the producer's public key in the trust ConfigMap, or check which signing-key Secret the producer mounts`,
      );
    }
    const allowed = known.filter((s) => this.#trustStore.allows(s.keyid, event.source, event.type));
    if (allowed.length === 0) {
      const allowances = known.map((s) => {
        const key = this.#trustStore.get(s.keyid);
        return `key ${s.keyid} may sign sources [${key?.sources.join(", ")}] and types [${key?.types.join(", ")}]`;
      });
      return fail(
        "not-authorized",
        `${what} is signed, but not by a key allowed to sign that source and type: ${allowances.join("; ")}`,
      );
    }
    const uncovered = this.#requiredExtensions.filter((name) => !signedExtensions.includes(name));
    if (uncovered.length > 0) {
      return fail(
        "not-authorized",
        `${what}: the signature does not cover ${uncovered.join(", ")}, which this consumer requires to be signed (${SIGNED_EXTENSIONS_ATTRIBUTE} is "${signedExtensions.join(",")}")`,
      );
    }

    const digest = materialDigest(event, signedExtensions);
    if (!digest.equals(envelope.payload)) {
      return fail(
        "bad-signature",
        `${what} differs from what was signed: its data, a core attribute, or a signed extension (${signedExtensions.join(", ") || "none"}) changed after signing`,
      );
    }
    const message = pae(PAYLOAD_TYPE, digest);
    for (const signature of allowed) {
      const key = this.#trustStore.get(signature.keyid);
      if (key !== undefined && ed25519Verify(null, message, key.publicKey, signature.sig)) {
        return { ok: true, keyid: signature.keyid, signedExtensions };
      }
    }
    return fail(
      "bad-signature",
      `${what}: the Ed25519 signature by key ${allowed.map((s) => s.keyid).join(", ")} does not verify; the envelope was altered or signed with a different private key`,
    );
  }
}

function fail(reason: VerificationFailureReason, message: string): VerificationResult {
  return { ok: false, reason, message };
}
