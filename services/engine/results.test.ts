import { describe, expect, it } from "vitest";
import { aStep, anOrchestration } from "../../operator/builders/fixtures.ts";
import { stepSource, trustDocumentFor } from "../../operator/builders/keys.ts";
import { encodeRecord } from "../events/binding.ts";
import type { CloudEvent } from "../events/cloudevent.ts";
import { generateSigningKey } from "../events/keys.ts";
import { Signer } from "../events/signing.ts";
import { TrustStore } from "../events/trust-store.ts";
import type { ForwardedRecord } from "./inbox.ts";
import { classifyResult, COMPLETED_TYPE, FAILED_TYPE } from "./results.ts";
import type { ResultContext } from "./results.ts";

const orchestration = anOrchestration({
  name: "orders",
  namespace: "shop",
  spec: { steps: [aStep("reserve"), aStep("charge", { dependsOn: ["reserve"] })] },
});
const engineKey = generateSigningKey();
const chargeKey = generateSigningKey();
const reserveKey = generateSigningKey();
const strangerKey = generateSigningKey();
const trust = TrustStore.fromDocument(
  trustDocumentFor(orchestration, [
    { role: "engine", keys: [engineKey] },
    { role: "worker", worker: "payments", steps: ["charge"], keys: [chargeKey] },
    { role: "worker", worker: "stock", steps: ["reserve"], keys: [reserveKey] },
  ]),
);
const ctx: ResultContext = {
  runId: "run-1",
  namespace: "shop",
  orchestration: "orders",
  policy: "required",
  trust,
};

function result(overrides: Partial<CloudEvent> & { ext?: Record<string, string> } = {}): CloudEvent {
  const { ext, ...rest } = overrides;
  return {
    id: "result-1",
    source: stepSource("shop", "orders", "charge"),
    specversion: "1.0",
    type: COMPLETED_TYPE,
    datacontenttype: "application/json",
    time: "2025-06-18T12:00:00Z",
    extensions: {
      partitionkey: "run-1",
      runid: "run-1",
      step: "charge",
      attempt: "1",
      action: "do",
      causationid: "run-1.charge.do.1",
      ...ext,
    },
    data: Buffer.from('{"paymentId":"p-1"}'),
    ...rest,
  };
}

function record(event: CloudEvent, key = new Signer(chargeKey)): ForwardedRecord {
  const m = encodeRecord(key.sign(event));
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(m.headers)) headers[k] = Buffer.from(v);
  return { key: m.key === null ? null : Buffer.from(m.key), value: m.value, headers };
}

function unsigned(event: CloudEvent): ForwardedRecord {
  const m = encodeRecord(event);
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(m.headers)) headers[k] = Buffer.from(v);
  return { key: m.key === null ? null : Buffer.from(m.key), value: m.value, headers };
}

describe("classifyResult", () => {
  it("reads a completed result signed by the step's worker", () => {
    const c = classifyResult(record(result()), ctx);
    expect(c).toMatchObject({
      ok: true,
      result: {
        step: "charge",
        action: "do",
        attempt: 1,
        outcome: "completed",
        output: { paymentId: "p-1" },
        causationId: "run-1.charge.do.1",
      },
    });
  });

  it("reads a failed result's error", () => {
    const c = classifyResult(
      record(
        result({
          type: FAILED_TYPE,
          data: Buffer.from('{"errorType":"CardDeclined","errorMessage":"no funds","attempts":4}'),
        }),
      ),
      ctx,
    );
    expect(c).toMatchObject({
      ok: true,
      result: { outcome: "failed", error: { type: "CardDeclined", message: "no funds" } },
    });
  });

  it.each<[string, ForwardedRecord, string]>([
    [
      "signed by a worker bound to another step",
      record(result({ source: stepSource("shop", "orders", "reserve") }), new Signer(reserveKey)),
      "wrong-source",
    ],
    [
      "signed by another step's worker for this step's source",
      record(result(), new Signer(reserveKey)),
      "not-authorized",
    ],
    ["signed by a key nobody trusts", record(result(), new Signer(strangerKey)), "unknown-key"],
    ["signed by the engine's own key", record(result(), new Signer(engineKey)), "not-authorized"],
    ["not signed", unsigned(result()), "missing-signature"],
    [
      "signed without covering the attempt",
      (() => {
        const r = record(result(), new Signer(chargeKey, { extensions: ["partitionkey", "step", "action"] }));
        return r;
      })(),
      "not-authorized",
    ],
    [
      "changed after signing",
      (() => {
        const r = record(result());
        r.headers.ce_attempt = Buffer.from("2");
        return r;
      })(),
      "bad-signature",
    ],
    ["for another run", record(result({ ext: { partitionkey: "run-2", runid: "run-2" } })), "wrong-run"],
  ])("refuses a result %s as a SignatureError", (_name, rec, reason) => {
    const c = classifyResult(rec, ctx);
    expect(c.ok).toBe(false);
    if (c.ok) return;
    expect(c.errorType).toBe("SignatureError");
    expect(c.reason).toBe(reason);
  });

  it("accepts an unsigned result under signing policy none", () => {
    expect(classifyResult(unsigned(result()), { ...ctx, policy: "none" }).ok).toBe(true);
  });

  it.each<[string, CloudEvent]>([
    ["of another type", result({ type: "io.eventloom.step.progress" })],
    ["with a bad attempt", result({ ext: { attempt: "zero" } })],
    ["with a bad action", result({ ext: { action: "redo" } })],
    ["with data that is not JSON", result({ data: Buffer.from("{nope") })],
  ])("refuses a validly signed result %s as an InvalidResult", (_name, event) => {
    const c = classifyResult(record(event), ctx);
    expect(c).toMatchObject({ ok: false, errorType: "InvalidResult" });
  });
});
