/**
 * Ad-hoc timing of the signing pipeline, for the numbers in docs/signing.md. Not a test and not a benchmark
 * suite: run it by hand on an idle machine.
 *
 *   node services/events/measure-signing.ts
 */
import { hash, sign, verify } from "node:crypto";
import { decodeRecord, encodeRecord, type KafkaRecord } from "./binding.ts";
import type { CloudEvent } from "./cloudevent.ts";
import { generateSigningKey } from "./keys.ts";
import { materialDigest } from "./material.ts";
import { Signer, Verifier } from "./signing.ts";
import { TrustStore } from "./trust-store.ts";

const event: CloudEvent = {
  id: "0190f7a2-4b6e-7c41-9f1e-2a3b4c5d6e7f",
  source: "/eventloom/shop/orders/payment",
  specversion: "1.0",
  type: "io.eventloom.step.completed",
  datacontenttype: "application/json",
  subject: "order-42",
  time: "2025-06-18T17:24:53.123Z",
  extensions: { partitionkey: "run-7f3a", destination: "shop/orders/shipping" },
  data: Buffer.from(
    JSON.stringify({ orderId: "42", amount: 1999, currency: "EUR", items: [{ sku: "a", qty: 1 }] }),
  ),
};

// Best of several rounds: on a shared 2-core machine the minimum is the most repeatable figure.
function measure(rows: Array<[name: string, iterations: number, fn: () => unknown]>, rounds = 10): void {
  const best = rows.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    rows.forEach(([, iterations, fn], i) => {
      const start = process.hrtime.bigint();
      for (let n = 0; n < iterations; n++) fn();
      const micros = Number(process.hrtime.bigint() - start) / iterations / 1000;
      best[i] = Math.min(best[i] ?? Infinity, micros);
    });
  }
  rows.forEach(([name], i) =>
    console.log(`${name.padEnd(48)} ${(best[i] ?? NaN).toFixed(1).padStart(7)} µs`),
  );
}

const key = generateSigningKey();
const signer = new Signer(key);
const verifier = new Verifier(
  new TrustStore([{ publicKey: key.publicKey, sources: ["/eventloom/shop/*"], types: ["*"] }]),
);
const signed = signer.sign(event);
const produced = encodeRecord(signed);
const consumed: KafkaRecord = {
  key: Buffer.from(produced.key ?? ""),
  value: produced.value,
  headers: Object.fromEntries(Object.entries(produced.headers).map(([k, v]) => [k, Buffer.from(v)])),
};
const decoded = decodeRecord(consumed);
if (!decoded.ok || !verifier.verify(decoded.event).ok) throw new Error("fixture does not verify");
const pae = Buffer.alloc(94, 1); // the length of a real PAE message
const signature = sign(null, pae, key.privateKey);

// The upstream proposal's layout: a digest per field, then a digest of the digests.
function digestOfDigests(): Buffer {
  const parts = [
    event.id,
    event.source,
    event.specversion,
    event.type,
    event.datacontenttype ?? "",
    "",
    event.subject ?? "",
    event.time ?? "",
  ].map((value) => hash("sha256", value, "buffer"));
  parts.push(
    hash("sha256", event.data ?? "", "buffer"),
    hash("sha256", "partitionkey", "buffer"),
    hash("sha256", "run-7f3a", "buffer"),
  );
  return hash("sha256", Buffer.concat(parts), "buffer");
}

measure([
  ["Ed25519 sign (node:crypto, baseline)", 2_000, () => sign(null, pae, key.privateKey)],
  ["Ed25519 verify (node:crypto, baseline)", 1_000, () => verify(null, pae, key.publicKey, signature)],
  ["material: digest-of-digests (upstream layout)", 20_000, digestOfDigests],
  [
    "material: one framed SHA-256 (ours)",
    20_000,
    () => materialDigest(event, ["partitionkey", "destination"]),
  ],
  ["decodeRecord (binary, Buffer headers)", 20_000, () => decodeRecord(consumed)],
  ["encodeRecord (binary)", 20_000, () => encodeRecord(signed)],
  ["Signer.sign (one key)", 2_000, () => signer.sign(event)],
  ["Verifier.verify (decoded event)", 1_000, () => verifier.verify(decoded.event)],
  ["Verifier.verifyRecord (decode + verify)", 1_000, () => verifier.verifyRecord(consumed)],
]);
