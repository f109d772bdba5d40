/**
 * DSSE (https://github.com/secure-systems-lab/dsse) envelopes as carried in the `dssematerial` extension:
 * base64 of the envelope JSON. Only the envelope is handled here; what the payload means is material.ts's.
 */

/** The DSSE payloadType of Eventloom's verification material (layout in docs/signing.md). */
export const PAYLOAD_TYPE = "application/vnd.eventloom.cloudevent-material.v1";

/** One signature in an envelope. */
export interface DsseSignature {
  readonly keyid: string;
  readonly sig: Buffer;
}

/** A decoded envelope: payload and signatures as bytes. */
export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: Buffer;
  readonly signatures: readonly DsseSignature[];
}

/** An envelope that cannot be read; the message says what is wrong with it. */
export class DsseFormatError extends Error {
  override readonly name = "DsseFormatError";
}

// Bounds keep a hostile record from costing more than a handful of signature checks.
const MAX_ENCODED_LENGTH = 16 * 1024;
const MAX_SIGNATURES = 8;
const ED25519_SIGNATURE_LENGTH = 64;
// DSSE allows standard or URL-safe base64; padding is optional.
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body` (lengths in ASCII decimal bytes). */
export function pae(payloadType: string, body: Uint8Array): Buffer {
  const typeBytes = Buffer.from(payloadType, "utf8");
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${typeBytes.length} `),
    typeBytes,
    Buffer.from(` ${body.length} `),
    body,
  ]);
}

/** Serializes an envelope as the `dssematerial` value: standard base64 of its JSON. */
export function encodeEnvelope(envelope: DsseEnvelope): string {
  const json = JSON.stringify({
    payloadType: envelope.payloadType,
    payload: envelope.payload.toString("base64"),
    signatures: envelope.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig.toString("base64") })),
  });
  return Buffer.from(json, "utf8").toString("base64");
}

/**
 * Parses a `dssematerial` value. Throws {@link DsseFormatError} unless it is base64 of a DSSE JSON envelope
 * with a payload and 1 to 8 signatures, each with a string keyid and a 64-byte (Ed25519) signature.
 */
export function decodeEnvelope(encoded: string): DsseEnvelope {
  if (encoded.length > MAX_ENCODED_LENGTH) {
    throw new DsseFormatError(
      `dssematerial is ${encoded.length} characters long; the limit is ${MAX_ENCODED_LENGTH}`,
    );
  }
  // No alphabet check on the outer layer: Node's lenient decoder turns anything else into bytes that fail
  // JSON parsing below, and the encoding of the envelope is not what signatures protect anyway.
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
  } catch {
    throw new DsseFormatError("dssematerial is not base64 of a JSON DSSE envelope");
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new DsseFormatError("the DSSE envelope is not a JSON object");
  }
  const { payloadType, payload, signatures } = parsed as Record<string, unknown>;
  if (typeof payloadType !== "string") throw new DsseFormatError("the DSSE envelope has no payloadType");
  if (typeof payload !== "string" || !BASE64.test(payload)) {
    throw new DsseFormatError("the DSSE envelope's payload is missing or not base64");
  }
  if (!Array.isArray(signatures) || signatures.length === 0 || signatures.length > MAX_SIGNATURES) {
    throw new DsseFormatError(`the DSSE envelope must carry 1 to ${MAX_SIGNATURES} signatures`);
  }
  return {
    payloadType,
    payload: Buffer.from(payload, "base64"),
    signatures: signatures.map((entry: unknown, index) => {
      const { keyid, sig } = (typeof entry === "object" && entry !== null ? entry : {}) as Record<
        string,
        unknown
      >;
      if (typeof keyid !== "string" || keyid === "") {
        throw new DsseFormatError(`signatures[${index}] has no keyid`);
      }
      if (typeof sig !== "string" || !BASE64.test(sig)) {
        throw new DsseFormatError(`signatures[${index}] (key ${keyid}) has no base64 sig`);
      }
      const bytes = Buffer.from(sig, "base64");
      if (bytes.length !== ED25519_SIGNATURE_LENGTH) {
        throw new DsseFormatError(
          `signatures[${index}] (key ${keyid}) is ${bytes.length} bytes; an Ed25519 signature is ${ED25519_SIGNATURE_LENGTH}`,
        );
      }
      return { keyid, sig: bytes };
    }),
  };
}
