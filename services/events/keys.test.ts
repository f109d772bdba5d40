import { generateKeyPairSync, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  generateSigningKey,
  jwkThumbprint,
  KeyFormatError,
  keyidOf,
  loadPublicKey,
  loadSigningKey,
  parseJwks,
  toPrivateJwk,
  toPublicJwk,
} from "./keys.ts";

// RFC 8037 appendix A.1 (key) and A.3 (its RFC 7638 thumbprint).
const RFC8037_PRIVATE = {
  kty: "OKP",
  crv: "Ed25519",
  d: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
};
const RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

describe("key ids", () => {
  it("the thumbprint of the RFC 8037 example key matches the RFC", () => {
    expect(jwkThumbprint({ kty: "OKP", crv: "Ed25519", x: RFC8037_PRIVATE.x })).toBe(RFC8037_THUMBPRINT);
  });

  it("a key loaded from the RFC 8037 example JWK gets the RFC's thumbprint as keyid", () => {
    const key = loadSigningKey(RFC8037_PRIVATE);
    expect(key.keyid).toBe(RFC8037_THUMBPRINT);
    expect(keyidOf(key.privateKey)).toBe(RFC8037_THUMBPRINT);
  });

  it("the public JWK carries kid, alg and use", () => {
    expect(toPublicJwk(loadSigningKey(RFC8037_PRIVATE).publicKey)).toEqual({
      kty: "OKP",
      crv: "Ed25519",
      x: RFC8037_PRIVATE.x,
      kid: RFC8037_THUMBPRINT,
      alg: "EdDSA",
      use: "sig",
    });
  });
});

describe("loading keys from what a Secret or ConfigMap holds", () => {
  const key = generateSigningKey();
  const privatePem = key.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const publicPem = key.publicKey.export({ format: "pem", type: "spki" }).toString();
  const privateJwk = toPrivateJwk(key);

  it.each([
    ["a PKCS#8 PEM string", privatePem],
    ["a PKCS#8 PEM buffer with trailing newlines", Buffer.from(`${privatePem}\n\n`)],
    ["private JWK text", JSON.stringify(privateJwk)],
    ["a private JWK object", privateJwk],
  ])("a signing key loads from %s and keeps its keyid", (_name, material) => {
    const loaded = loadSigningKey(material);
    expect(loaded.keyid).toBe(key.keyid);
    const signature = sign(null, Buffer.from("m"), loaded.privateKey);
    expect(verify(null, Buffer.from("m"), key.publicKey, signature)).toBe(true);
  });

  it.each([
    ["an SPKI PEM", publicPem],
    ["a public JWK object", toPublicJwk(key.publicKey)],
    ["public JWK text", JSON.stringify(toPublicJwk(key.publicKey))],
  ])("a public key loads from %s", (_name, material) => {
    expect(loadPublicKey(material).keyid).toBe(key.keyid);
  });

  const rsaPem = generateKeyPairSync("rsa", { modulusLength: 1024 })
    .privateKey.export({ format: "pem", type: "pkcs8" })
    .toString();
  it.each([
    ["a public JWK as a signing key", toPublicJwk(key.publicKey), 'no private part ("d")'],
    ["an RSA key", rsaPem, "the private key is rsa; Eventloom signs with Ed25519 only"],
    ["garbage", "not a key", "cannot read the private key"],
    ["broken JWK text", "{ nope", "not valid JSON"],
    [
      "a JWK whose kid is not its thumbprint",
      { ...privateJwk, kid: "my-key-2025" },
      'kid "my-key-2025" is not its RFC 7638 thumbprint',
    ],
  ])("refuses %s as a signing key with a clear message", (_name, material, message) => {
    expect(() => loadSigningKey(material)).toThrow(KeyFormatError);
    expect(() => loadSigningKey(material)).toThrow(message);
  });
});

describe("JWKS documents", () => {
  const a = generateSigningKey();
  const b = generateSigningKey();

  it("lists each key with its keyid and the JWK as written", () => {
    const jwks = { keys: [toPublicJwk(a.publicKey), { ...toPublicJwk(b.publicKey), "x-extra": 1 }] };
    const keys = parseJwks(JSON.stringify(jwks));
    expect(keys.map((k) => k.keyid)).toEqual([a.keyid, b.keyid]);
    expect(keys[1]?.jwk["x-extra"]).toBe(1);
  });

  it.each([
    ["a document without keys", { nokeys: [] }, 'must be an object with a "keys" array'],
    ["an entry that is not an object", { keys: ["x"] }, "keys[0] is not a JSON object"],
    ["a private key", { keys: [toPrivateJwk(a)] }, "keys[0] contains a private key"],
    [
      "an EC key",
      {
        keys: [
          {
            kty: "EC",
            crv: "P-256",
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
          },
        ],
      },
      "keys[0]: the public key is ec",
    ],
  ])("refuses %s", (_name, document, message) => {
    expect(() => parseJwks(document)).toThrow(message);
  });
});
