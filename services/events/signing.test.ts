import { describe, expect, it } from "vitest";
import {
  decodeRecord,
  encodeRecord,
  type KafkaHeaderValue,
  type KafkaMessage,
  type KafkaRecord,
} from "./binding.ts";
import type { CloudEvent } from "./cloudevent.ts";
import { PAYLOAD_TYPE } from "./dsse.ts";
import type { SigningKey } from "./keys.ts";
import { materialDigest } from "./material.ts";
import {
  Signer,
  type SigningPolicy,
  type VerificationFailureReason,
  Verifier,
  type VerifierOptions,
} from "./signing.ts";
import { anEvent, asConsumed, someKeys, SOURCE_PREFIX, trustFor } from "./test-fixtures.ts";
import { TrustStore } from "./trust-store.ts";

const { current, previous, stranger } = someKeys();
const trusted = trustFor([current, previous]);

function signed(
  event: CloudEvent = anEvent(),
  keys: SigningKey | SigningKey[] = current,
  extensions?: string[],
): KafkaMessage {
  return encodeRecord(new Signer(keys, extensions === undefined ? {} : { extensions }).sign(event));
}

function verify(record: KafkaRecord, trust: TrustStore = trusted, options: VerifierOptions = {}) {
  return new Verifier(trust, options).verifyRecord(record);
}

/** Rewrites the DSSE envelope inside a record's ce_dssematerial header. */
function withEnvelope(
  message: KafkaMessage,
  edit: (envelope: Record<string, unknown>) => unknown,
  value: Buffer | null | undefined = undefined,
): KafkaRecord {
  const envelope = JSON.parse(
    Buffer.from(message.headers.ce_dssematerial ?? "", "base64").toString(),
  ) as Record<string, unknown>;
  const edited = Buffer.from(JSON.stringify(edit(envelope))).toString("base64");
  return asConsumed(message, { headers: { ce_dssematerial: edited }, value });
}

describe("signing and verifying", () => {
  it("a signed binary-mode record verifies, naming the key and the signed extensions", () => {
    const result = verify(asConsumed(signed()));
    expect(result).toMatchObject({
      ok: true,
      keyid: current.keyid,
      signedExtensions: ["destination", "partitionkey"],
      mode: "binary",
    });
  });

  it("a signed structured-mode record verifies", () => {
    const message = encodeRecord(new Signer(current).sign(anEvent()), "structured");
    expect(verify(asConsumed(message))).toMatchObject({ ok: true, keyid: current.keyid, mode: "structured" });
  });

  it("a signature survives re-encoding from binary to structured mode", () => {
    const first = decodeRecord(asConsumed(signed()));
    if (!first.ok) throw first.error;
    const restructured = asConsumed(encodeRecord(first.event, "structured"));
    expect(verify(restructured)).toMatchObject({ ok: true, keyid: current.keyid, mode: "structured" });
  });

  it("the record carries signedextattrs and a DSSE envelope with our payloadType and one signature", () => {
    const message = signed();
    expect(message.headers.ce_signedextattrs).toBe("destination,partitionkey");
    const envelope = JSON.parse(Buffer.from(message.headers.ce_dssematerial ?? "", "base64").toString()) as {
      payloadType: string;
      payload: string;
      signatures: { keyid: string; sig: string }[];
    };
    expect(envelope.payloadType).toBe(PAYLOAD_TYPE);
    expect(Buffer.from(envelope.payload, "base64")).toHaveLength(32);
    expect(envelope.signatures.map((s) => s.keyid)).toEqual([current.keyid]);
  });

  it("by default every extension is signed except trace context", () => {
    const event = anEvent({
      extensions: {
        partitionkey: "r",
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        zeta: "z",
        alpha: "a",
      },
    });
    expect(new Signer(current).sign(event).extensions.signedextattrs).toBe("alpha,partitionkey,zeta");
  });

  it("an explicit list signs only those extensions, in the order given", () => {
    const event = new Signer(current, { extensions: ["partitionkey", "destination"] }).sign(
      anEvent({ extensions: { ...anEvent().extensions, note: "n" } }),
    );
    expect(event.extensions.signedextattrs).toBe("partitionkey,destination");
  });

  it("signing again replaces the earlier signature", () => {
    const once = new Signer(previous).sign(anEvent());
    const twice = new Signer(current).sign(once);
    expect(verify(asConsumed(encodeRecord(twice)), trustFor([current]))).toMatchObject({
      ok: true,
      keyid: current.keyid,
    });
  });

  it.each([
    ["traceparent", ["traceparent"], '"traceparent" cannot be signed'],
    ["a core attribute", ["subject"], '"subject" is a core attribute'],
    ["the signature itself", ["dssematerial"], '"dssematerial" cannot be signed'],
    ["a name listed twice", ["partitionkey", "partitionkey"], "listed twice"],
    ["an illegal name", ["Destination"], "not a legal extension name"],
  ])("refuses to sign a list with %s", (_name, extensions, message) => {
    expect(() => new Signer(current).sign(anEvent(), { extensions })).toThrow(message);
    expect(() => new Signer(current, { extensions })).toThrow(message);
  });

  it("refuses to sign an invalid event", () => {
    expect(() => new Signer(current).sign(anEvent({ time: "noon" }))).toThrow("RFC 3339");
  });
});

describe("changes in transit that keep a signature valid", () => {
  const message = signed();

  it.each<[string, Record<string, KafkaHeaderValue>]>([
    ["a new traceparent header", { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }],
    [
      "a changed ce_traceparent and ce_tracestate",
      {
        ce_traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ce_tracestate: "vendor=x",
      },
    ],
    ["an added extension nobody signed", { ce_replaycount: "1" }],
    ["an unrelated Kafka header", { "x-retry-attempt": "3" }],
  ])("%s", (_name, headers) => {
    expect(verify(asConsumed(message, { headers }))).toMatchObject({ ok: true, keyid: current.keyid });
  });
});

describe("records that fail verification", () => {
  const message = signed();
  const tamperedEvent = anEvent({ data: Buffer.from('{"orderId":"42", "amount":1,"currency":"EUR"}') });
  const wrongPrivateKey: SigningKey = { ...current, privateKey: stranger.privateKey };

  it.each<[string, () => KafkaRecord, VerificationFailureReason | "invalid-event", string, VerifierOptions?]>(
    [
      [
        "tampered data",
        () => asConsumed(message, { value: tamperedEvent.data }),
        "bad-signature",
        "differs from what was signed",
      ],
      [
        "a tampered subject",
        () => asConsumed(message, { headers: { ce_subject: "order-43" } }),
        "bad-signature",
        "differs from what was signed",
      ],
      [
        "a re-normalized time",
        () => asConsumed(message, { headers: { ce_time: "2025-06-18T17:24:53.123456Z" } }),
        "bad-signature",
        "differs",
      ],
      [
        "a tampered type the key could also sign",
        () => asConsumed(message, { headers: { ce_type: "io.eventloom.step.failed" } }),
        "bad-signature",
        "differs",
      ],
      [
        "a removed datacontenttype",
        () => asConsumed(message, { headers: { "content-type": undefined } }),
        "bad-signature",
        "differs",
      ],
      [
        "a tampered partitionkey (key and header)",
        () => asConsumed(message, { key: "run-0000", headers: { ce_partitionkey: "run-0000" } }),
        "bad-signature",
        "partitionkey",
      ],
      [
        "a tampered destination",
        () => asConsumed(message, { headers: { ce_destination: "shop/orders/refund" } }),
        "bad-signature",
        "destination",
      ],
      [
        "a stripped signedextattrs",
        () => asConsumed(message, { headers: { ce_signedextattrs: undefined } }),
        "bad-signature",
        "differs",
      ],
      [
        "a shortened signedextattrs",
        () => asConsumed(message, { headers: { ce_signedextattrs: "partitionkey" } }),
        "bad-signature",
        "differs",
      ],
      [
        "a stripped signature",
        () => asConsumed(message, { headers: { ce_dssematerial: undefined } }),
        "missing-signature",
        'is not signed (no dssematerial) but the signing policy is "required"',
      ],
      [
        "an empty signature",
        () => asConsumed(message, { headers: { ce_dssematerial: "" } }),
        "missing-signature",
        "not signed",
      ],
      [
        "a key that is not in the trust store",
        () => asConsumed(signed(anEvent(), stranger)),
        "unknown-key",
        `signed by key ${stranger.keyid}, which the trust store does not hold`,
      ],
      [
        "a signature by a different private key under a trusted keyid",
        () => asConsumed(signed(anEvent(), wrongPrivateKey)),
        "bad-signature",
        "does not verify",
      ],
      [
        "tampered data with a payload recomputed to match",
        () =>
          withEnvelope(
            message,
            (e) => ({
              ...e,
              payload: materialDigest(tamperedEvent, ["destination", "partitionkey"]).toString("base64"),
            }),
            tamperedEvent.data,
          ),
        "bad-signature",
        "does not verify",
      ],
      [
        "a source the key may not sign",
        () => asConsumed(signed(anEvent({ source: "/eventloom/billing/invoices" }))),
        "not-authorized",
        `may sign sources [${SOURCE_PREFIX}*]`,
      ],
      [
        "a type the key may not sign",
        () => asConsumed(signed(anEvent({ type: "com.example.order" }))),
        "not-authorized",
        "types [io.eventloom.*]",
      ],
      [
        "a required extension left unsigned",
        () => asConsumed(signed(anEvent(), current, ["partitionkey"])),
        "not-authorized",
        "does not cover destination",
        { requiredExtensions: ["partitionkey", "destination"] },
      ],
      [
        "dssematerial that is not base64",
        () => asConsumed(message, { headers: { ce_dssematerial: "not base64!" } }),
        "malformed-signature",
        "dssematerial is not base64 of a JSON DSSE envelope",
      ],
      [
        "dssematerial that is not JSON",
        () => asConsumed(message, { headers: { ce_dssematerial: Buffer.from("nope").toString("base64") } }),
        "malformed-signature",
        "dssematerial is not base64 of a JSON DSSE envelope",
      ],
      [
        "the upstream proposal's payloadType",
        () =>
          withEnvelope(message, (e) => ({
            ...e,
            payloadType: "https://cloudevents.io/verifiability/dsse/v0.1",
          })),
        "malformed-signature",
        'payloadType "https://cloudevents.io/verifiability/dsse/v0.1" is not supported',
      ],
      [
        "no signatures",
        () => withEnvelope(message, (e) => ({ ...e, signatures: [] })),
        "malformed-signature",
        "1 to 8 signatures",
      ],
      [
        "a truncated signature",
        () => withEnvelope(message, (e) => ({ ...e, signatures: [{ keyid: current.keyid, sig: "AAAA" }] })),
        "malformed-signature",
        "is 3 bytes; an Ed25519 signature is 64",
      ],
      [
        "a signature without keyid",
        () => withEnvelope(message, (e) => ({ ...e, signatures: [{ sig: "AAAA" }] })),
        "malformed-signature",
        "signatures[0] has no keyid",
      ],
      [
        "a signedextattrs naming traceparent",
        () => asConsumed(message, { headers: { ce_signedextattrs: "partitionkey,traceparent" } }),
        "malformed-signature",
        '"traceparent" cannot be signed',
      ],
      [
        "a record that is not a CloudEvent",
        () => asConsumed(message, { headers: { ce_specversion: "0.3" } }),
        "invalid-event",
        'specversion "0.3"',
      ],
    ],
  )("%s is refused", (_name, record, reason, message, options = {}) => {
    const result = verify(record(), trusted, options);
    expect(result).toMatchObject({ ok: false, reason });
    if (!result.ok) expect(result.message).toContain(message);
  });
});

describe("key rotation", () => {
  const both = asConsumed(signed(anEvent(), [previous, current]));

  it("an event signed with the old and new keys carries both signatures", () => {
    const result = decodeRecord(both);
    if (!result.ok) throw result.error;
    const envelope = JSON.parse(
      Buffer.from(result.event.extensions.dssematerial ?? "", "base64").toString(),
    ) as { signatures: { keyid: string }[] };
    expect(envelope.signatures.map((s) => s.keyid)).toEqual([previous.keyid, current.keyid]);
  });

  it.each([
    ["trusts both keys", trustFor([previous, current]), previous.keyid],
    ["has dropped the old key", trustFor([previous, current]).without(previous.keyid), current.keyid],
    ["only knows the old key", trustFor([previous]), previous.keyid],
  ])("it verifies against a trust store that %s", (_name, trust, keyid) => {
    expect(verify(both, trust)).toMatchObject({ ok: true, keyid });
  });

  it("a trust store that knows neither key refuses the event", () => {
    expect(verify(both, trustFor([stranger]))).toMatchObject({ ok: false, reason: "unknown-key" });
  });

  it("an unknown co-signer does not stop a trusted signature from verifying", () => {
    expect(verify(asConsumed(signed(anEvent(), [stranger, current])))).toMatchObject({
      ok: true,
      keyid: current.keyid,
    });
  });

  it("a co-signer not allowed for the source does not stop an allowed one from verifying", () => {
    const trust = new TrustStore([
      { publicKey: previous.publicKey, sources: ["/elsewhere/*"], types: ["*"] },
      { publicKey: current.publicKey, sources: [`${SOURCE_PREFIX}*`], types: ["*"] },
    ]);
    expect(verify(both, trust)).toMatchObject({ ok: true, keyid: current.keyid });
  });

  it("after the trust store drops the old key, an event signed only by it is refused", () => {
    const verifier = new Verifier(trusted);
    const old = asConsumed(signed(anEvent(), previous));
    expect(verifier.verifyRecord(old).ok).toBe(true);
    verifier.updateTrustStore(trusted.without(previous.keyid));
    expect(verifier.verifyRecord(old)).toMatchObject({ ok: false, reason: "unknown-key" });
  });
});

describe("signing policies", () => {
  const unsigned = asConsumed(encodeRecord(anEvent()));

  it.each<[string, SigningPolicy, KafkaRecord, object]>([
    [
      "policy none accepts an unsigned event",
      "none",
      unsigned,
      { ok: true, keyid: null, signedExtensions: [] },
    ],
    [
      "policy required refuses an unsigned event",
      "required",
      unsigned,
      { ok: false, reason: "missing-signature" },
    ],
    [
      "policy none still checks a signature that is present",
      "none",
      asConsumed(signed(), { value: Buffer.from("{}") }),
      { ok: false, reason: "bad-signature" },
    ],
    [
      "policy none reports the key of a valid signature",
      "none",
      asConsumed(signed()),
      { ok: true, keyid: current.keyid },
    ],
    [
      "policy none still refuses an invalid CloudEvent",
      "none",
      asConsumed(encodeRecord(anEvent()), { headers: { ce_id: undefined } }),
      { ok: false, reason: "invalid-event" },
    ],
  ])("%s", (_name, policy, record, expected) => {
    expect(verify(record, trusted, { policy })).toMatchObject(expected);
  });

  it("the default policy is required", () => {
    expect(new Verifier(trusted).policy).toBe("required");
  });
});
