import { describe, expect, it } from "vitest";
import { IdempotencyCache } from "./idempotency.ts";

const settle = () => new Promise((r) => setTimeout(r, 0));

describe("IdempotencyCache", () => {
  it("remembers an answer for the window, then forgets it", async () => {
    let now = 0;
    const cache = new IdempotencyCache<string>(1000, 10, () => now);
    cache.track("k", "f", Promise.resolve("answer"));
    await settle();
    expect(cache.lookup("k", "f")).toEqual({ kind: "hit", answer: "answer" });
    now = 999;
    expect(cache.lookup("k", "f").kind).toBe("hit");
    now = 1000;
    expect(cache.lookup("k", "f").kind).toBe("miss");
  });

  it("shares a write in flight and reports a different fingerprint as a conflict", () => {
    const cache = new IdempotencyCache<string>(1000, 10);
    const write = new Promise<string>(() => {});
    cache.track("k", "f", write);
    expect(cache.lookup("k", "f")).toEqual({ kind: "in-flight", promise: write });
    expect(cache.lookup("k", "other").kind).toBe("conflict");
  });

  it("forgets a failed write so the retry writes", async () => {
    const cache = new IdempotencyCache<string>(1000, 10);
    const write = Promise.reject(new Error("down"));
    write.catch(() => undefined);
    cache.track("k", "f", write);
    await settle();
    expect(cache.lookup("k", "f").kind).toBe("miss");
  });

  it("stays within its bound by dropping the oldest answers", async () => {
    const cache = new IdempotencyCache<number>(60_000, 3);
    for (let i = 0; i < 5; i++) {
      cache.track(`k${i}`, "f", Promise.resolve(i));
      await settle();
    }
    expect(cache.size).toBe(3);
    expect(cache.lookup("k0", "f").kind).toBe("miss");
    expect(cache.lookup("k4", "f")).toEqual({ kind: "hit", answer: 4 });
  });
});
