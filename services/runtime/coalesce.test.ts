import { describe, expect, it, vi } from "vitest";
import type { OutgoingRecord } from "../kafka/client.ts";
import { coalescingWriter } from "./coalesce.ts";

const rec = (key: string): OutgoingRecord => ({ key, value: Buffer.from(key) });

describe("the coalescing writer", () => {
  it("writes records that arrive while a write is in flight together, after it, each caller told by its own write", async () => {
    const sends: string[][] = [];
    let release: (() => void) | undefined;
    const write = coalescingWriter(async (_topic, records) => {
      sends.push(records.map((r) => String(r.key)));
      if (sends.length === 1) await new Promise<void>((r) => (release = r));
    });
    const first = write("inbox", [rec("a")]);
    await vi.waitFor(() => expect(sends).toEqual([["a"]]));
    const rest = ["b", "c", "d"].map((k) => write("inbox", [rec(k)]));
    release?.();
    await Promise.all([first, ...rest]);
    expect(sends).toEqual([["a"], ["b", "c", "d"]]);
  });

  it("fails every caller whose record was in a failed write, and goes on with the next ones", async () => {
    let calls = 0;
    const write = coalescingWriter(async () => {
      calls++;
      if (calls === 1) throw new Error("broker down");
    });
    const results = await Promise.allSettled([write("inbox", [rec("a")]), write("inbox", [rec("b")])]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
    await expect(write("inbox", [rec("c")])).resolves.toBeUndefined();
  });
});

describe("the coalescing writer's bounds", () => {
  it("keeps each caller's records together and in order, and splits requests past the size bound", async () => {
    const sends: string[][] = [];
    const write = coalescingWriter(async (_topic, records) => {
      sends.push(records.map((r) => String(r.key)));
      await new Promise((r) => setTimeout(r, 1));
    });
    const big = (key: string): OutgoingRecord => ({ key, value: Buffer.alloc(200 * 1024) });
    await Promise.all([
      write("state", [{ key: "x", value: null }]),
      write("state", [big("a1"), big("a2")]),
      write("state", [big("b1"), big("b2")]),
      write("state", []),
    ]);
    expect(sends).toEqual([["x"], ["a1", "a2"], ["b1", "b2"]]);
  });

  it("keeps topics apart", async () => {
    const sends: Array<[string, number]> = [];
    const write = coalescingWriter(async (topic, records) => {
      sends.push([topic, records.length]);
    });
    await Promise.all([write("a", [rec("1")]), write("b", [rec("2")])]);
    expect(sends.sort()).toEqual([
      ["a", 1],
      ["b", 1],
    ]);
  });
});
