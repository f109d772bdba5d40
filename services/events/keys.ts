/**
 * Ed25519 signing keys and their ids. A key id is the RFC 7638 JWK thumbprint of the public key, so anyone
 * holding the public key can recompute it and no registry of names is needed.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from "node:crypto";

/** A public Ed25519 key as a JWK (RFC 8037), with the optional members we write. */
export interface Ed25519PublicJwk {
  kty: "OKP";
  crv: "Ed25519";
  /** base64url of the 32 raw public key bytes. */
  x: string;
  /** The key id: the RFC 7638 thumbprint. */
  kid?: string;
  alg?: "EdDSA";
  use?: "sig";
}

/** A private key with its public half and key id: what a Signer holds. */
export interface SigningKey {
  readonly keyid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A public key with its key id. */
export interface PublicKey {
  readonly keyid: string;
  readonly publicKey: KeyObject;
}

/** Key material that is not a usable Ed25519 key; the message says which and why. */
export class KeyFormatError extends Error {
  override readonly name = "KeyFormatError";
}

/** Generates a fresh Ed25519 key pair (e.g. for the operator to store in a signing-key Secret). */
export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { keyid: keyidOf(publicKey), privateKey, publicKey };
}

/**
 * RFC 7638 thumbprint of an Ed25519 public JWK: SHA-256 over the required members in lexicographic order
 * with no whitespace, base64url without padding.
 */
export function jwkThumbprint(jwk: Pick<Ed25519PublicJwk, "crv" | "kty" | "x">): string {
  const canonical = `{"crv":${JSON.stringify(jwk.crv)},"kty":${JSON.stringify(jwk.kty)},"x":${JSON.stringify(jwk.x)}}`;
  return createHash("sha256").update(canonical).digest("base64url");
}

/** The key id of an Ed25519 public (or private) key. */
export function keyidOf(key: KeyObject): string {
  return jwkThumbprint(toPublicJwk(key));
}

/** The public JWK of a key, with `kid`, `alg` and `use` filled in, ready for a JWKS. */
export function toPublicJwk(key: KeyObject): Required<Ed25519PublicJwk> {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  assertEd25519(publicKey, "key");
  // Node exports x as canonical unpadded base64url, which is what the thumbprint must hash.
  const { x } = publicKey.export({ format: "jwk" });
  if (typeof x !== "string") throw new KeyFormatError("Ed25519 public key exported without an x coordinate");
  const jwk = { kty: "OKP", crv: "Ed25519", x } as const;
  return { ...jwk, kid: jwkThumbprint(jwk), alg: "EdDSA", use: "sig" };
}

/** The private JWK of a signing key (with `kid`), e.g. to store in a Kubernetes Secret. */
export function toPrivateJwk(key: SigningKey): JsonWebKey & { kid: string } {
  return { ...key.privateKey.export({ format: "jwk" }), kid: key.keyid, alg: "EdDSA", use: "sig" };
}

/**
 * Loads a signing key from what a mounted Secret holds: a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), a
 * private JWK as JSON text, or a parsed JWK object.
 */
export function loadSigningKey(material: string | Buffer | JsonWebKey): SigningKey {
  const privateKey = importKey(material, "private");
  const publicKey = createPublicKey(privateKey);
  return { keyid: keyidOf(publicKey), privateKey, publicKey };
}

/** Loads a public key from an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), a JWK as JSON text, or a JWK object. */
export function loadPublicKey(material: string | Buffer | JsonWebKey): PublicKey {
  const publicKey = importKey(material, "public");
  return { keyid: keyidOf(publicKey), publicKey };
}

/**
 * Reads a JWKS (`{"keys": [...]}`, as text or parsed) of Ed25519 public keys. Each entry comes back with its
 * key id and the JWK as written, so callers can read their own members (the trust store reads its
 * `eventloom.io/*` allowances). Throws {@link KeyFormatError} naming the offending entry.
 */
export function parseJwks(document: unknown): Array<PublicKey & { jwk: Record<string, unknown> }> {
  const parsed: unknown = typeof document === "string" ? parseJson(document, "JWKS") : document;
  const keys = isRecord(parsed) ? parsed.keys : undefined;
  if (!Array.isArray(keys)) throw new KeyFormatError('a JWKS must be an object with a "keys" array');
  return keys.map((jwk: unknown, index) => {
    if (!isRecord(jwk)) throw new KeyFormatError(`keys[${index}] is not a JSON object`);
    if ("d" in jwk) {
      throw new KeyFormatError(
        `keys[${index}] contains a private key ("d"); publish only public keys in a JWKS`,
      );
    }
    try {
      return { ...loadPublicKey(jwk as JsonWebKey), jwk };
    } catch (error) {
      throw new KeyFormatError(`keys[${index}]: ${(error as Error).message}`, { cause: error });
    }
  });
}

function importKey(material: string | Buffer | JsonWebKey, kind: "private" | "public"): KeyObject {
  const text =
    typeof material === "string" || Buffer.isBuffer(material) ? material.toString().trim() : undefined;
  const jwk =
    text === undefined
      ? (material as JsonWebKey)
      : text.startsWith("{")
        ? (parseJson(text, "JWK") as JsonWebKey)
        : undefined;
  if (jwk !== undefined && kind === "private" && typeof jwk.d !== "string") {
    throw new KeyFormatError('the JWK has no private part ("d"); a signing key needs one');
  }
  let key: KeyObject;
  try {
    const input = jwk === undefined ? (text ?? "") : { key: jwk, format: "jwk" as const };
    key = kind === "private" ? createPrivateKey(input) : createPublicKey(input);
  } catch (error) {
    throw new KeyFormatError(`cannot read the ${kind} key: ${(error as Error).message}`, { cause: error });
  }
  assertEd25519(key, `${kind} key`);
  // A kid that disagrees with the thumbprint would give one key two names; refuse it loudly.
  if (jwk?.kid !== undefined && jwk.kid !== keyidOf(key)) {
    throw new KeyFormatError(
      `the JWK's kid "${String(jwk.kid)}" is not its RFC 7638 thumbprint "${keyidOf(key)}"; remove kid or fix it`,
    );
  }
  return key;
}

function assertEd25519(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== "ed25519") {
    throw new KeyFormatError(
      `the ${what} is ${key.asymmetricKeyType ?? "not an asymmetric key"}; Eventloom signs with Ed25519 only`,
    );
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new KeyFormatError(`the ${what} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
