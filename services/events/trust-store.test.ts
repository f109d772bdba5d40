import { describe, expect, it } from "vitest";
import { generateSigningKey, toPrivateJwk, toPublicJwk } from "./keys.ts";
import { SOURCES_MEMBER, TrustStore, TrustStoreError, TYPES_MEMBER } from "./trust-store.ts";

const key = generateSigningKey();
const other = generateSigningKey();

function documentWith(sources: unknown, types: unknown, extra: object = {}): unknown {
  return {
    keys: [{ ...toPublicJwk(key.publicKey), [SOURCES_MEMBER]: sources, [TYPES_MEMBER]: types, ...extra }],
  };
}

describe("trust store allowances", () => {
  const store = TrustStore.fromDocument(
    documentWith(
      ["/eventloom/shop/orders/*", "/eventloom/shop/gateway"],
      ["io.eventloom.step.completed", "io.eventloom.saga.*"],
    ),
  );

  it.each([
    ["an exact source and an exact type", "/eventloom/shop/gateway", "io.eventloom.step.completed", true],
    [
      "a source under a prefix pattern",
      "/eventloom/shop/orders/payment",
      "io.eventloom.step.completed",
      true,
    ],
    ["a type under a prefix pattern", "/eventloom/shop/gateway", "io.eventloom.saga.compensate", true],
    [
      "a source that only shares a prefix with an exact pattern",
      "/eventloom/shop/gateway2",
      "io.eventloom.step.completed",
      false,
    ],
    [
      "a source outside every pattern",
      "/eventloom/other/orders/payment",
      "io.eventloom.step.completed",
      false,
    ],
    ["a type outside every pattern", "/eventloom/shop/gateway", "io.eventloom.step.failed", false],
  ])("%s: allowed is %s", (_name, source, type, allowed) => {
    expect(store.allows(key.keyid, source, type)).toBe(allowed);
  });

  it("a bare * allows anything", () => {
    const any = TrustStore.fromDocument(documentWith(["*"], ["*"]));
    expect(any.allows(key.keyid, "urn:anything", "whatever")).toBe(true);
  });

  it("an unknown key is allowed nothing", () => {
    expect(store.allows(other.keyid, "/eventloom/shop/gateway", "io.eventloom.step.completed")).toBe(false);
  });

  it("the published document reads back into the same store", () => {
    const again = TrustStore.fromDocument(JSON.stringify(store.toDocument()));
    expect(again.toDocument()).toEqual(store.toDocument());
    expect(again.get(key.keyid)?.sources).toEqual(["/eventloom/shop/orders/*", "/eventloom/shop/gateway"]);
    expect(store.toDocument().keys[0]?.kid).toBe(key.keyid);
  });

  it("without() drops a key and leaves the original untouched", () => {
    const both = new TrustStore(
      [key, other].map((k) => ({ publicKey: k.publicKey, sources: ["*"], types: ["*"] })),
    );
    expect(both.without(key.keyid).keyids).toEqual([other.keyid]);
    expect(both.keyids).toEqual([key.keyid, other.keyid]);
  });
});

describe("trust documents that cannot be used", () => {
  it.each([
    [
      "a missing sources member",
      { keys: [{ ...toPublicJwk(key.publicKey), [TYPES_MEMBER]: ["*"] }] },
      `${SOURCES_MEMBER} must be an array of strings`,
    ],
    [
      "a types member that is a string",
      documentWith(["*"], "io.eventloom.*"),
      `${TYPES_MEMBER} must be an array of strings`,
    ],
    ["an empty sources list", documentWith([], ["*"]), "is empty, so the key could sign nothing"],
    ["an empty pattern", documentWith([""], ["*"]), "contains an empty pattern"],
    ["a wildcard in the middle", documentWith(["/eventloom/*/orders"], ["*"]), 'has a "*" before its end'],
    [
      "a private key",
      { keys: [{ ...toPrivateJwk(key), [SOURCES_MEMBER]: ["*"], [TYPES_MEMBER]: ["*"] }] },
      "contains a private key",
    ],
    [
      "a kid that is not the thumbprint",
      documentWith(["*"], ["*"], { kid: "gateway-2025" }),
      'kid "gateway-2025" is not its RFC 7638 thumbprint',
    ],
    [
      "the same key twice",
      {
        keys: [0, 1].map(() => ({
          ...toPublicJwk(key.publicKey),
          [SOURCES_MEMBER]: ["*"],
          [TYPES_MEMBER]: ["*"],
        })),
      },
      "is listed twice",
    ],
    ["text that is not JSON", "keys:", "not valid JSON"],
  ])("refuses %s", (_name, document, message) => {
    expect(() => TrustStore.fromDocument(document)).toThrow(TrustStoreError);
    expect(() => TrustStore.fromDocument(document)).toThrow(message);
  });
});
