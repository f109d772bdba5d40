import { describe, expect, it } from "vitest";
import { Coalescer } from "./coalesce.ts";

class Unavailable extends Error {}

/** A fake request: records each batch; refuses any batch holding a "bad" item. */
function fakeSend(opts: { delayMs?: number; fail?: (items: string[]) => Error | undefined } = {}) {
  const batches: string[][] = [];
  const send = async (items: string[]) => {
    batches.push(items);
    await new Promise((r) => setTimeout(r, opts.delayMs ?? 0));
    const err = opts.fail?.(items);
    if (err) throw err;
    return new Set(items);
  };
  return { batches, send };
}

describe("Coalescer", () => {
  it("sends the groups submitted within the window as one request, and each caller gets its result", async () => {
    const { batches, send } = fakeSend();
    const c = new Coalescer(send, { windowMs: 5, maxItems: 100 });
    const results = await Promise.all([c.submit(["a", "b"]), c.submit(["c"]), c.submit(["d", "e"])]);
    expect(batches).toEqual([["a", "b", "c", "d", "e"]]);
    for (const r of results) expect([...r]).toEqual(["a", "b", "c", "d", "e"]);
    expect(c.requests).toBe(1);
  });

  it("caps the items per request without splitting a group", async () => {
    const { batches, send } = fakeSend();
    const c = new Coalescer(send, { windowMs: 1, maxItems: 4 });
    await Promise.all([c.submit(["a", "b", "c"]), c.submit(["d", "e"]), c.submit(["f"])]);
    expect(batches).toEqual([
      ["a", "b", "c"],
      ["d", "e", "f"],
    ]);
  });

  it("sends a group larger than the cap alone", async () => {
    const { batches, send } = fakeSend();
    const c = new Coalescer(send, { windowMs: 1, maxItems: 2 });
    await Promise.all([c.submit(["a", "b", "c"]), c.submit(["d"])]);
    expect(batches).toEqual([["a", "b", "c"], ["d"]]);
  });

  it("keeps one request in flight and sends what queued meanwhile as the next batch", async () => {
    const { batches, send } = fakeSend({ delayMs: 20 });
    const c = new Coalescer(send, { windowMs: 1, maxItems: 100 });
    const first = c.submit(["a"]);
    await new Promise((r) => setTimeout(r, 5));
    const later = [c.submit(["b"]), c.submit(["c"])];
    expect(c.waiting).toBe(2);
    await Promise.all([first, ...later]);
    expect(batches).toEqual([["a"], ["b", "c"]]);
  });

  it("splits a refused batch so the error reaches only the group it belongs to", async () => {
    const { batches, send } = fakeSend({
      fail: (items) => (items.includes("bad") ? new Error("refused: bad") : undefined),
    });
    const c = new Coalescer(send, { windowMs: 1, maxItems: 100 });
    const outcomes = await Promise.allSettled([
      c.submit(["a"]),
      c.submit(["b"]),
      c.submit(["bad", "c"]),
      c.submit(["d"]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[2] as PromiseRejectedResult).reason).toEqual(new Error("refused: bad"));
    // The whole batch, then halves, then the half with the bad group split again.
    expect(batches[0]).toEqual(["a", "b", "bad", "c", "d"]);
    expect(batches).toContainEqual(["a", "b"]);
    expect(batches).toContainEqual(["bad", "c"]);
    expect(batches).toContainEqual(["d"]);
  });

  it("fails every group at once for an error that concerns them all", async () => {
    const { batches, send } = fakeSend({ fail: () => new Unavailable("no broker") });
    const c = new Coalescer(send, {
      windowMs: 1,
      maxItems: 100,
      splittable: (err) => !(err instanceof Unavailable),
    });
    const outcomes = await Promise.allSettled([c.submit(["a"]), c.submit(["b"]), c.submit(["c"])]);
    expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    expect(batches).toEqual([["a", "b", "c"]]);
  });
});
