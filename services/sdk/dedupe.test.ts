import { describe, expect, it } from "vitest";
import { commandDedupeKey, DedupeIndex, dedupeKey, InFlight, resultDedupeKey } from "./dedupe.ts";

const OWN = new Set(["/eventloom/shop/orders/create-order"]);
const COMMANDS = "/eventloom/shop/orders";

describe("dedupe keys", () => {
  it("are the same for the same source, id and replay generation, and differ otherwise", () => {
    const key = dedupeKey(COMMANDS, "e-1", undefined);
    expect(dedupeKey(COMMANDS, "e-1", "0")).toBe(key);
    expect(dedupeKey(COMMANDS, "e-2", undefined)).not.toBe(key);
    expect(dedupeKey(`${COMMANDS}/x`, "e-1", undefined)).not.toBe(key);
    expect(dedupeKey(COMMANDS, "e-1", "1")).not.toBe(key);
    // Moving characters from source to id is a different key.
    expect(dedupeKey("ab", "c", undefined)).not.toBe(dedupeKey("a", "bc", undefined));
    expect(key).toHaveLength(22);
  });

  it("match between a command and the result that answers it", () => {
    const command = { source: COMMANDS, id: "e-1", extensions: { replaycount: "2" } };
    const result = {
      ce_source: Buffer.from("/eventloom/shop/orders/create-order"),
      ce_causationid: Buffer.from("e-1"),
      ce_replaycount: Buffer.from("2"),
    };
    expect(resultDedupeKey(result, OWN, COMMANDS)).toBe(commandDedupeKey(command));
  });

  it.each([
    [
      "another step's result",
      { ce_source: Buffer.from("/eventloom/shop/orders/ship"), ce_causationid: Buffer.from("e-1") },
    ],
    ["a record without causation", { ce_source: Buffer.from("/eventloom/shop/orders/create-order") }],
    ["a record without source", { ce_causationid: Buffer.from("e-1") }],
  ])("ignore %s", (_what, headers) => {
    expect(resultDedupeKey(headers, OWN, COMMANDS)).toBeUndefined();
  });
});

describe("DedupeIndex", () => {
  it("remembers keys and forgets the oldest beyond its bound", () => {
    const index = new DedupeIndex(2);
    index.add("a");
    index.add("b");
    index.add("a");
    expect(index.size).toBe(2);
    index.add("c");
    expect([index.has("a"), index.has("b"), index.has("c")]).toEqual([false, true, true]);
  });

  it("refuses a bound below one", () => {
    expect(() => new DedupeIndex(0)).toThrow(/positive integer/);
  });
});

describe("InFlight", () => {
  it("runs work on the same key one after the other and other keys at once", async () => {
    const inFlight = new InFlight();
    const log: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = inFlight.run("k", async () => {
      log.push("first:start");
      await gate;
      log.push("first:end");
    });
    const second = inFlight.run("k", async () => void log.push("second"));
    const other = inFlight.run("other", async () => void log.push("other"));
    await other;
    expect(log).toEqual(["first:start", "other"]);
    release();
    await Promise.all([first, second]);
    expect(log).toEqual(["first:start", "other", "first:end", "second"]);
    expect(inFlight.size).toBe(0);
  });

  it("lets the next run go when the first one fails", async () => {
    const inFlight = new InFlight();
    await expect(inFlight.run("k", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(inFlight.run("k", async () => "ok")).resolves.toBe("ok");
  });
});
