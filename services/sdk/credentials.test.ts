import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateSigningKey, toPrivateJwk } from "../events/keys.ts";
import { TrustStore } from "../events/trust-store.ts";
import { loadSigningKeys, loadTrustStore, TrustFileWatcher } from "./credentials.ts";
import { WorkerConfigError } from "./errors.ts";
import { silentLogger } from "./logger.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "eventloom-credentials-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function trustText(keys: ReturnType<typeof generateSigningKey>[]): string {
  return JSON.stringify(
    new TrustStore(
      keys.map((k) => ({ publicKey: k.publicKey, sources: ["/eventloom/shop/orders"], types: ["*"] })),
    ).toDocument(),
  );
}

describe("loadSigningKeys", () => {
  it("loads private.jwk alone", async () => {
    const key = generateSigningKey();
    await writeFile(join(dir, "private.jwk"), JSON.stringify(toPrivateJwk(key)));
    expect(loadSigningKeys(join(dir, "private.jwk")).map((k) => k.keyid)).toEqual([key.keyid]);
  });

  it("signs with every key of private.jwks during a rotation, active first", async () => {
    const [active, old] = [generateSigningKey(), generateSigningKey()];
    await writeFile(join(dir, "private.jwk"), JSON.stringify(toPrivateJwk(active)));
    await writeFile(
      join(dir, "private.jwks"),
      JSON.stringify({ keys: [toPrivateJwk(active), toPrivateJwk(old)] }),
    );
    expect(loadSigningKeys(join(dir, "private.jwk")).map((k) => k.keyid)).toEqual([active.keyid, old.keyid]);
  });

  it("names the variable when the key is missing", () => {
    expect(() => loadSigningKeys(join(dir, "private.jwk"))).toThrow(WorkerConfigError);
    expect(() => loadSigningKeys(join(dir, "private.jwk"))).toThrow(/EVENTLOOM_SIGNING_KEY_PATH/);
  });
});

describe("trust document", () => {
  it("is refused at start when it is invalid", async () => {
    await writeFile(join(dir, "trust.json"), '{"keys":[{"kty":"OKP"}]}');
    expect(() => loadTrustStore(join(dir, "trust.json"))).toThrow(/is invalid/);
  });

  it("is reloaded when it changes, and a broken update keeps the previous trust", async () => {
    const path = join(dir, "trust.json");
    const [a, b] = [generateSigningKey(), generateSigningKey()];
    await writeFile(path, trustText([a]));
    const seen: string[][] = [];
    const watcher = new TrustFileWatcher({
      path,
      initial: trustText([a]),
      onChange: (s) => seen.push(s.keyids),
      log: silentLogger,
      pollIntervalMs: 60_000,
    });
    try {
      await watcher.check();
      expect(seen).toEqual([]);
      await writeFile(path, trustText([a, b]));
      await watcher.check();
      expect(seen).toEqual([[a.keyid, b.keyid]]);
      await writeFile(path, "{ half written");
      await watcher.check();
      expect(seen).toHaveLength(1);
    } finally {
      watcher.close();
    }
  });
});
