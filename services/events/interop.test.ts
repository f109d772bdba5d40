/**
 * Interop proof: records signed by our code are verified by test/interop/verify-dsse.go, a verifier written
 * from docs/signing.md with the Go standard library only. Skipped (with a visible reason) when no Go
 * toolchain is installed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeRecord, type KafkaHeaderValue, type KafkaMessage } from "./binding.ts";
import { toPublicJwk, type SigningKey } from "./keys.ts";
import { Signer } from "./signing.ts";
import { anEvent, someKeys } from "./test-fixtures.ts";

const INTEROP_DIR = resolve(import.meta.dirname, "../../test/interop");

function findGo(): string | undefined {
  const candidates = [
    ...(process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "go")),
    "/usr/local/go/bin/go",
  ];
  return candidates.find((path) => existsSync(path));
}

interface Vector {
  name: string;
  publicKeys: object[];
  record: { key: string | null; value: string | null; headers: { key: string; value: string }[] };
}

function vector(
  name: string,
  message: KafkaMessage,
  trusted: SigningKey[],
  edit: Record<string, KafkaHeaderValue> = {},
): Vector {
  const headers = Object.entries({ ...message.headers, ...edit }).flatMap(([key, value]) =>
    typeof value === "string" || Buffer.isBuffer(value)
      ? [{ key, value: Buffer.from(value).toString("base64") }]
      : [],
  );
  return {
    name,
    publicKeys: trusted.map((key) => toPublicJwk(key.publicKey)),
    record: {
      key: message.key === null ? null : Buffer.from(message.key).toString("base64"),
      value: message.value === null ? null : message.value.toString("base64"),
      headers,
    },
  };
}

const go = findGo();
if (go === undefined)
  console.warn(
    "interop.test.ts: no Go toolchain on PATH or in /usr/local/go; the Go interop proof is skipped",
  );

describe.skipIf(go === undefined)(
  "interop with an independent Go verifier (test/interop/verify-dsse.go)",
  () => {
    const { current, previous, stranger } = someKeys();
    const sign = (keys: SigningKey | SigningKey[]) => new Signer(keys);
    const typical = encodeRecord(sign(current).sign(anEvent()));
    const tamperedValue = { ...typical, value: Buffer.from('{"orderId":"42", "amount":1,"currency":"EUR"}') };

    const accepted: Vector[] = [
      vector("binary", typical, [current]),
      vector("rotation-new-key-only", encodeRecord(sign([previous, current]).sign(anEvent())), [current]),
      vector("rotation-old-key-only", encodeRecord(sign([previous, current]).sign(anEvent())), [previous]),
      vector(
        "binary-data-non-ascii-attributes",
        encodeRecord(
          sign(current).sign(
            anEvent({
              datacontenttype: "application/octet-stream",
              subject: "Köln – 東京 🚚",
              data: Buffer.from([0, 1, 254, 255]),
            }),
          ),
        ),
        [current],
      ),
      vector(
        "no-optional-attributes-no-data",
        encodeRecord(
          sign(current).sign(
            anEvent({
              datacontenttype: undefined,
              subject: undefined,
              time: undefined,
              extensions: {},
              data: null,
            }),
          ),
        ),
        [current],
      ),
      vector("structured-json-data", encodeRecord(sign(current).sign(anEvent()), "structured"), [current]),
      vector(
        "structured-base64-data",
        encodeRecord(
          sign(current).sign(anEvent({ datacontenttype: "image/png", data: Buffer.from([137, 80, 78, 71]) })),
          "structured",
        ),
        [current],
      ),
      vector("traceparent-changed", typical, [current], {
        ce_traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      }),
    ];
    const rejected: Vector[] = [
      vector("tampered-data", tamperedValue, [current]),
      vector("tampered-destination", typical, [current], { ce_destination: "shop/orders/refund" }),
      vector("stripped-signedextattrs", typical, [current], { ce_signedextattrs: undefined }),
      vector("unknown-key", typical, [stranger]),
    ];

    const dir = mkdtempSync(join(tmpdir(), "eventloom-interop-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    function runGo(vectors: Vector[]): {
      status: number | null;
      lines: Map<string, string>;
      stdout: string;
      stderr: string;
    } {
      const file = join(dir, "vectors.json");
      writeFileSync(file, JSON.stringify(vectors, null, 2));
      const run = spawnSync(go!, ["run", "verify-dsse.go", file], {
        cwd: INTEROP_DIR,
        encoding: "utf8",
        timeout: 120_000,
        // No network, no toolchain switching: the standard library is all this program may use.
        env: { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local", GOPROXY: "off" },
      });
      const lines = new Map<string, string>();
      for (const line of run.stdout.split("\n")) {
        const match = /^(ACCEPT|REJECT) ([^\s:]+)/.exec(line);
        if (match?.[2] !== undefined) lines.set(match[2], line);
      }
      return { status: run.status, lines, stdout: run.stdout, stderr: run.stderr };
    }

    it("Go accepts every good vector and rejects every tampered one", { timeout: 180_000 }, () => {
      const { status, lines, stdout, stderr } = runGo([...accepted, ...rejected]);
      // `go run` reports the program's own exit code on stderr; anything else there is a build or input error.
      expect(stderr.trim()).toBe("exit status 1");
      for (const { name } of accepted) expect(lines.get(name) ?? "", stdout).toMatch(/^ACCEPT /);
      for (const { name } of rejected) expect(lines.get(name) ?? "", stdout).toMatch(/^REJECT /);
      expect(status).toBe(1); // some vectors were rejected
    });

    it("Go recomputes the same key id (RFC 7638 thumbprint) as our keys module", { timeout: 180_000 }, () => {
      const { status, lines } = runGo([vector("keyid", typical, [current])]);
      expect(status).toBe(0);
      expect(lines.get("keyid")).toBe(`ACCEPT keyid keyid=${current.keyid}`);
    });
  },
);
