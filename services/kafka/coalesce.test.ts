import { describe, expect, it } from "vitest";
import { SendCoalescer } from "./coalesce.ts";
import type { CoalescedMessage, PartitionAck } from "./coalesce.ts";

interface Msg extends CoalescedMessage {
  /** Where the fake partitioner puts it. */
  p: number;
}

/** A fake broker: records each request, appends per partition, answers with base offsets. */
function fakeBroker(opts: { fail?: Error } = {}) {
  const logEnd = new Map<string, number>();
  const requests: Array<{ topic: string; messages: Msg[] }> = [];
  const flushes: Array<() => void> = [];
  const coalescer = new SendCoalescer<Msg>({
    partitionOf: (m) => m.p,
    maxRecords: 5,
    maxBytes: 2000,
    schedule: (flush) => flushes.push(flush),
    write: (topic, messages) => {
      requests.push({ topic, messages });
      if (opts.fail) return Promise.reject(opts.fail);
      const acks: PartitionAck[] = [];
      for (const m of messages) {
        const p = m.partition ?? m.p;
        const log = `${topic}/${p}`;
        if (!acks.some((a) => a.partition === p)) {
          acks.push({ partition: p, baseOffset: String(logEnd.get(log) ?? 0) });
        }
        logEnd.set(log, (logEnd.get(log) ?? 0) + 1);
      }
      return Promise.resolve(acks);
    },
  });
  const runScheduled = () => flushes.splice(0).forEach((f) => f());
  return { coalescer, requests, runScheduled };
}

const msg = (p: number, value = "v"): Msg => ({ p, value });

describe("SendCoalescer", () => {
  it("writes the sends of one turn to a topic as one request and gives each caller its own offset", async () => {
    const { coalescer, requests, runScheduled } = fakeBroker();
    const a = coalescer.send("t", [msg(0)]);
    const b = coalescer.send("t", [msg(1), msg(0)]);
    const c = coalescer.send("t", [msg(0)]);
    expect(requests).toHaveLength(0); // nothing leaves before the scheduled flush
    runScheduled();
    expect(await a).toEqual([{ topic: "t", partition: 0, offset: "0" }]);
    expect(await b).toEqual([
      { topic: "t", partition: 1, offset: "0" },
      { topic: "t", partition: 0, offset: "1" },
    ]);
    expect(await c).toEqual([{ topic: "t", partition: 0, offset: "2" }]);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.messages).toHaveLength(4);
    expect(coalescer.requests).toBe(1);
  });

  it("keeps topics apart: one request per topic", async () => {
    const { coalescer, requests, runScheduled } = fakeBroker();
    const a = coalescer.send("t1", [msg(0)]);
    const b = coalescer.send("t2", [msg(0)]);
    runScheduled();
    expect(await a).toEqual([{ topic: "t1", partition: 0, offset: "0" }]);
    expect(await b).toEqual([{ topic: "t2", partition: 0, offset: "0" }]);
    expect(requests.map((r) => r.topic)).toEqual(["t1", "t2"]);
  });

  it("starts a new request when the record bound would be passed", async () => {
    const { coalescer, requests, runScheduled } = fakeBroker();
    const sends = [1, 2, 3].map(() => coalescer.send("t", [msg(0), msg(0)]));
    // 2 + 2 fit under maxRecords 5; the third send flushes the first two at once.
    expect(requests).toHaveLength(1);
    expect(requests[0]?.messages).toHaveLength(4);
    runScheduled();
    const answers = await Promise.all(sends);
    expect(answers.map((a) => a[0]?.offset)).toEqual(["0", "2", "4"]);
    expect(requests).toHaveLength(2);
  });

  it("writes a record bigger than the byte bound alone, after what was queued before it", async () => {
    const { coalescer, requests, runScheduled } = fakeBroker();
    const small = coalescer.send("t", [msg(0)]);
    const big = coalescer.send("t", [msg(0, "x".repeat(5000))]);
    expect(requests.map((r) => r.messages.length)).toEqual([1, 1]);
    runScheduled();
    expect((await small)[0]?.offset).toBe("0");
    expect((await big)[0]?.offset).toBe("1");
  });

  it("fails every caller of a failed request, and none is told it was written", async () => {
    const { coalescer, runScheduled } = fakeBroker({ fail: new Error("broker down") });
    const a = coalescer.send("t", [msg(0)]);
    const b = coalescer.send("t", [msg(1)]);
    runScheduled();
    await expect(a).rejects.toThrow("broker down");
    await expect(b).rejects.toThrow("broker down");
  });

  it("uses an explicit partition over the partitioner's", async () => {
    const { coalescer, runScheduled } = fakeBroker();
    const first = coalescer.send("t", [msg(2)]);
    const pinned = coalescer.send("t", [{ ...msg(0), partition: 2 }]);
    runScheduled();
    expect(await first).toEqual([{ topic: "t", partition: 2, offset: "0" }]);
    expect(await pinned).toEqual([{ topic: "t", partition: 2, offset: "1" }]);
  });

  it("rejects when the broker did not acknowledge a record's partition", async () => {
    const coalescer = new SendCoalescer<Msg>({
      partitionOf: () => undefined,
      schedule: (flush) => flush(),
      write: () => Promise.resolve([{ partition: 0, baseOffset: "0" }]),
    });
    await expect(coalescer.send("t", [msg(0)])).rejects.toThrow(/not the partition/);
  });

  it("answers an empty send at once without a request", async () => {
    const { coalescer, requests } = fakeBroker();
    expect(await coalescer.send("t", [])).toEqual([]);
    expect(requests).toHaveLength(0);
  });
});
