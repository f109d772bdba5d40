import { describe, expect, it } from "vitest";
import { generateSigningKey, loadSigningKey } from "../../services/events/keys.ts";
import type { SigningKey } from "../../services/events/keys.ts";
import { TrustStore } from "../../services/events/trust-store.ts";
import {
  KEYID_FILE,
  PRIVATE_JWKS_FILE,
  PRIVATE_JWK_FILE,
  SIGNING_KEY_SECRET_TYPE,
  TRUST_FILE,
  signingKeySecretFor,
  signingKeysFromSecret,
  trustConfigMapFor,
  trustDocumentFor,
} from "./keys.ts";
import type { TrustEntry } from "./keys.ts";
import { aStep, aWorker, anOrchestration } from "./fixtures.ts";
import type { OrchestrationOverrides } from "./fixtures.ts";
import { isSpecError } from "./errors.ts";

const keys = {
  engine: generateSigningKey(),
  gateway: generateSigningKey(),
  payments: generateSigningKey(),
  paymentsNext: generateSigningKey(),
  shipping: generateSigningKey(),
};

function decode(data: Record<string, string> | undefined, key: string): string {
  const value = data?.[key];
  if (value === undefined) throw new Error(`no ${key}`);
  return Buffer.from(value, "base64").toString("utf8");
}

describe("signingKeySecretFor", () => {
  it("stores the key as a private JWK with its key id, owned by the Worker", () => {
    const secret = signingKeySecretFor(aWorker(), keys.payments);
    expect(secret).toMatchObject({
      apiVersion: "v1",
      kind: "Secret",
      type: SIGNING_KEY_SECRET_TYPE,
      metadata: {
        name: "payments-worker-signing-key",
        namespace: "shop",
        labels: { "app.kubernetes.io/managed-by": "eventloom", "eventloom.io/worker": "payments" },
        ownerReferences: [
          {
            kind: "Worker",
            name: "payments",
            uid: aWorker().metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
    });
    expect(decode(secret.data, KEYID_FILE)).toBe(keys.payments.keyid);
    expect(JSON.parse(decode(secret.data, PRIVATE_JWK_FILE))).toMatchObject({
      kty: "OKP",
      crv: "Ed25519",
      kid: keys.payments.keyid,
      d: expect.any(String),
    });
    expect(loadSigningKey(decode(secret.data, PRIVATE_JWK_FILE)).keyid).toBe(keys.payments.keyid);
  });

  it("is deterministic for the same key", () => {
    expect(signingKeySecretFor(aWorker(), keys.payments)).toEqual(
      signingKeySecretFor(aWorker(), keys.payments),
    );
  });

  it.each<[string, SigningKey | SigningKey[], SigningKey, SigningKey[]]>([
    ["one key", keys.payments, keys.payments, [keys.payments]],
    [
      "a rotation overlap, new key first",
      [keys.paymentsNext, keys.payments],
      keys.paymentsNext,
      [keys.paymentsNext, keys.payments],
    ],
  ])("round-trips %s through signingKeysFromSecret, active key first", (_name, input, active, all) => {
    const secret = signingKeySecretFor(aWorker(), input);
    expect(decode(secret.data, KEYID_FILE)).toBe(active.keyid);
    expect(JSON.parse(decode(secret.data, PRIVATE_JWKS_FILE)).keys).toHaveLength(all.length);
    expect(signingKeysFromSecret(secret).map((k) => k.keyid)).toEqual(all.map((k) => k.keyid));
  });

  it("reads a Secret that has only private.jwk", () => {
    const secret = signingKeySecretFor(aWorker(), keys.payments);
    delete secret.data?.[PRIVATE_JWKS_FILE];
    expect(signingKeysFromSecret(secret).map((k) => k.keyid)).toEqual([keys.payments.keyid]);
    expect(signingKeysFromSecret({ data: {} })).toEqual([]);
  });

  it("refuses an empty key list", () => {
    expect(() => signingKeySecretFor(aWorker(), [])).toThrow(
      expect.objectContaining({ reason: "NoSigningKey" }),
    );
  });

  it("refuses an owner without a uid", () => {
    expect(() => signingKeySecretFor(aWorker({ uid: "" }), keys.payments)).toThrow(/has no uid/);
  });
});

describe("trustDocumentFor", () => {
  const bindings: TrustEntry[] = [
    { role: "engine", keys: [keys.engine] },
    { role: "gateway", keys: [keys.gateway.publicKey] },
    { role: "worker", worker: "payments", steps: ["charge"], keys: [keys.payments] },
    { role: "worker", worker: "shipping", steps: ["reserve", "ship"], keys: [keys.shipping] },
  ];
  const orchestration = anOrchestration({
    spec: {
      steps: [aStep("reserve", { compensation: "com.example.release" }), aStep("charge"), aStep("ship")],
    },
  });
  const store = TrustStore.fromDocument(JSON.stringify(trustDocumentFor(orchestration, bindings)));
  const step = (name: string) => `/eventloom/shop/checkout/${name}`;
  const orch = "/eventloom/shop/checkout";

  it.each<[string, SigningKey, string, string, boolean]>([
    ["the engine may send any step's command", keys.engine, orch, "com.example.charge", true],
    ["the engine may send a compensation", keys.engine, orch, "com.example.release", true],
    ["the gateway may send any step's command", keys.gateway, orch, "com.example.ship", true],
    ["the engine may not sign a result", keys.engine, step("charge"), "io.eventloom.step.completed", false],
    [
      "the gateway may sign a client event of any type as the Orchestration",
      keys.gateway,
      orch,
      "com.example.order.placed",
      true,
    ],
    [
      "the engine may not sign as another Orchestration",
      keys.engine,
      "/eventloom/shop/other",
      "com.example.charge",
      false,
    ],
    [
      "a Worker may sign results of its step",
      keys.payments,
      step("charge"),
      "io.eventloom.step.completed",
      true,
    ],
    [
      "a Worker may report a failure of its step",
      keys.payments,
      step("charge"),
      "io.eventloom.step.failed",
      true,
    ],
    [
      "a Worker may not sign results of another Worker's step",
      keys.payments,
      step("ship"),
      "io.eventloom.step.completed",
      false,
    ],
    ["a Worker may not send commands", keys.payments, orch, "com.example.charge", false],
    [
      "a Worker bound to two steps may sign results of both",
      keys.shipping,
      step("reserve"),
      "io.eventloom.step.completed",
      true,
    ],
    [
      "an untrusted key may sign nothing",
      keys.paymentsNext,
      step("charge"),
      "io.eventloom.step.completed",
      false,
    ],
  ])("%s", (_name, key, source, type, allowed) => {
    expect(store.allows(key.keyid, source, type)).toBe(allowed);
  });

  it("trusts both keys of a Worker during a rotation", () => {
    const rotating = TrustStore.fromDocument(
      trustDocumentFor(orchestration, [
        { role: "worker", worker: "payments", steps: ["charge"], keys: [keys.paymentsNext, keys.payments] },
      ]),
    );
    for (const key of [keys.payments, keys.paymentsNext]) {
      expect(rotating.allows(key.keyid, step("charge"), "io.eventloom.step.completed")).toBe(true);
    }
  });

  it("merges the grants of a key listed by two entries", () => {
    const doc = trustDocumentFor(orchestration, [
      { role: "engine", keys: [keys.engine] },
      { role: "gateway", keys: [keys.engine] },
    ]);
    expect(doc.keys).toHaveLength(1);
    expect(doc.keys[0]?.["eventloom.io/owners"]).toEqual(["engine", "gateway"]);
  });

  it("does not depend on the order of entries or keys", () => {
    expect(trustDocumentFor(orchestration, [...bindings].reverse())).toEqual(
      trustDocumentFor(orchestration, bindings),
    );
  });

  it("publishes only public keys", () => {
    expect(JSON.stringify(trustDocumentFor(orchestration, bindings))).not.toContain('"d"');
  });

  it.each<[string, OrchestrationOverrides, TrustEntry, string, string, boolean]>([
    [
      "lets a choreographed Worker sign the events its step emits",
      {
        spec: {
          mode: "choreographed",
          steps: [{ name: "bill", subscribes: ["order.placed"], emits: ["invoice.issued"] }],
        },
      },
      { role: "worker", worker: "payments", steps: ["bill"], keys: [keys.payments] },
      "/eventloom/shop/checkout/bill",
      "invoice.issued",
      true,
    ],
    [
      "lets the gateway inject the events that trigger choreographed steps",
      { spec: { mode: "choreographed", steps: [{ name: "bill", subscribes: ["order.placed"] }] } },
      { role: "gateway", keys: [keys.gateway] },
      "/eventloom/shop/checkout",
      "order.placed",
      true,
    ],
  ])("%s", (_name, overrides, entry, source, type, allowed) => {
    const doc = trustDocumentFor(anOrchestration(overrides), [entry]);
    expect(
      TrustStore.fromDocument(doc).allows(
        keys[entry.role === "gateway" ? "gateway" : "payments"].keyid,
        source,
        type,
      ),
    ).toBe(allowed);
  });

  it("leaves out a Worker bound to no step, since it may sign nothing", () => {
    expect(
      trustDocumentFor(orchestration, [{ role: "worker", worker: "idle", steps: [], keys: [keys.payments] }])
        .keys,
    ).toEqual([]);
  });

  it("refuses a Worker bound to a step the orchestration does not have", () => {
    let caught: unknown;
    try {
      trustDocumentFor(orchestration, [
        { role: "worker", worker: "payments", steps: ["refund"], keys: [keys.payments] },
      ]);
    } catch (err) {
      caught = err;
    }
    expect(isSpecError(caught)).toBe(true);
    expect((caught as Error).message).toContain("Worker shop/payments is bound to refund");
  });
});

describe("trustConfigMapFor", () => {
  it("publishes the trust document as trust.json, owned by the orchestration", () => {
    const cm = trustConfigMapFor(anOrchestration(), [{ role: "engine", keys: [keys.engine] }]);
    expect(cm).toMatchObject({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "checkout-orchestration-trust",
        namespace: "shop",
        labels: { "app.kubernetes.io/managed-by": "eventloom", "eventloom.io/orchestration": "checkout" },
        ownerReferences: [
          { kind: "Orchestration", name: "checkout", controller: true, blockOwnerDeletion: true },
        ],
      },
    });
    const text = cm.data?.[TRUST_FILE] ?? "";
    expect(TrustStore.fromDocument(text).keyids).toEqual([keys.engine.keyid]);
  });

  it("is deterministic", () => {
    const entries: TrustEntry[] = [{ role: "engine", keys: [keys.engine] }];
    expect(trustConfigMapFor(anOrchestration(), entries)).toEqual(
      trustConfigMapFor(anOrchestration(), entries),
    );
  });
});
