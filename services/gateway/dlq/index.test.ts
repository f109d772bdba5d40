import { describe, expect, it } from "vitest";
import type { IncomingRecord, KafkaClient } from "../../kafka/client.ts";
import { DeadLetterIndex } from "./index.ts";

function rec(partition: number, offset: number): IncomingRecord {
  return {
    topic: "dlt",
    partition,
    offset: String(offset),
    key: null,
    value: null,
    headers: {},
    timestamp: "0",
  };
}

const unused = {} as KafkaClient;

describe("DeadLetterIndex bookkeeping", () => {
  it("is caught up once every partition's records below the captured end were read", () => {
    const index = new DeadLetterIndex(unused, "dlt", 100);
    const bounds = [
      { partition: 0, logStart: 0n, logEnd: 2n },
      { partition: 1, logStart: 5n, logEnd: 5n },
    ];
    expect(index.caughtUp(bounds)).toBe(false);
    index.add(rec(0, 0));
    expect(index.caughtUp(bounds)).toBe(false);
    index.add(rec(0, 1));
    expect(index.caughtUp(bounds)).toBe(true);
  });

  it("answers only records within [logStart, logEnd), in partition and offset order", () => {
    const index = new DeadLetterIndex(unused, "dlt", 100);
    for (const [p, o] of [
      [1, 0],
      [0, 3],
      [0, 1],
      [0, 2],
      [1, 1],
    ] as const)
      index.add(rec(p, o));
    const within = index.recordsWithin([
      { partition: 0, logStart: 2n, logEnd: 4n },
      { partition: 1, logStart: 0n, logEnd: 1n },
    ]);
    expect(within.map((r) => `${r.partition}-${r.offset}`)).toEqual(["0-2", "0-3", "1-0"]);
  });

  it("stays within its bound, counting what it evicted, and forgets purged records", () => {
    const index = new DeadLetterIndex(unused, "dlt", 2);
    for (let o = 0; o < 4; o++) index.add(rec(0, o));
    expect(index.evicted).toBe(2);
    const all = [{ partition: 0, logStart: 0n, logEnd: 4n }];
    expect(index.recordsWithin(all).map((r) => r.offset)).toEqual(["2", "3"]);
    index.dropBelow([{ partition: 0, logStart: 3n, logEnd: 4n }]);
    expect(index.recordsWithin(all).map((r) => r.offset)).toEqual(["3"]);
  });

  it("waits for records to arrive, bounded by the timeout", async () => {
    const index = new DeadLetterIndex(unused, "dlt", 10);
    (index as unknown as { consumer: object }).consumer = {};
    const bounds = [{ partition: 0, logStart: 0n, logEnd: 1n }];
    const waiting = index.waitFor(bounds, 5_000);
    setTimeout(() => index.add(rec(0, 0)), 10);
    expect(await waiting).toBe(true);
    expect(await index.waitFor([{ partition: 0, logStart: 0n, logEnd: 5n }], 30)).toBe(false);
  });
});
