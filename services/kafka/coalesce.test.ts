import { describe, expect, it } from "vitest";
import { SendCoalescer } from "./coalesce.ts";
import type { CoalescedMessage, CoalescerOptions, PartitionAck } from "./coalesce.ts";

interface Msg extends CoalescedMessage {
  /** Where the fake partitioner puts it. */
  p: number;
}

/**
 * A fake broker: records each request, appends per topic and partition, answers with base offsets. Requests
 * complete when the test says so (`complete()`), or at once with `auto`; flushes run when the test says so.
 */
function fakeBroker(opts: { fail?: (request: number) => Error | undefined; auto?: boolean } = {}) {
  const logEnd = new Map<string, number>();
  const requests: Array<{ topic: string; values: string[] }> = [];
  const open: Array<() => void> = [];
  const flushes: Array<() => void> = [];
  const options: CoalescerOptions<Msg> = {
    partitionOf: (m) => m.p,
    maxRecords: 5,
    maxBytes: 2000,
    schedule: (flush) => flushes.push(flush),
    write: (topic, messages) => {
      const n = requests.push({ topic, values: messages.map((m) => String(m.value)) });
      return new Promise<PartitionAck[]>((resolve, reject) => {
        const finish = () => {
          const err = opts.fail?.(n);
          if (err) return reject(err);
          const acks: PartitionAck[] = [];
          for (const m of messages) {
            const p = m.partition ?? m.p;
            const log = `${topic}/${p}`;
            if (!acks.some((a) => a.partition === p)) {
              acks.push({ partition: p, baseOffset: String(logEnd.get(log) ?? 0) });
            }
            logEnd.set(log, (logEnd.get(log) ?? 0) + 1);
          }
          resolve(acks);
        };
        if (opts.auto) finish();
        else open.push(finish);
      });
    },
  };
  const coalescer = new SendCoalescer<Msg>(options);
  return {
    coalescer,
    requests,
    /** Runs the scheduled flushes (the end of the event-loop turn). */
    endTurn: () => flushes.splice(0).forEach((f) => f()),
    /** Completes the oldest request in flight. */
    complete: async () => {
      open.shift()?.();
      await new Promise((r) => setImmediate(r)); // let the completion's continuations run
    },
  };
}

const msg = (p: number, value = "v"): Msg => ({ p, value });

describe("SendCoalescer", () => {
  it("writes the sends of one turn to a topic as one request and gives each caller its own offset", async () => {
    const { coalescer, requests, endTurn } = fakeBroker({ auto: true });
    const a = coalescer.send("t", [msg(0, "a")]);
    const b = coalescer.send("t", [msg(1, "b1"), msg(0, "b2")]);
    const c = coalescer.send("t", [msg(0, "c")]);
    expect(requests).toHaveLength(0); // nothing leaves before the turn ends
    endTurn();
    expect(await a).toEqual([{ topic: "t", partition: 0, offset: "0" }]);
    expect(await b).toEqual([
      { topic: "t", partition: 1, offset: "0" },
      { topic: "t", partition: 0, offset: "1" },
    ]);
    expect(await c).toEqual([{ topic: "t", partition: 0, offset: "2" }]);
    expect(requests).toEqual([{ topic: "t", values: ["a", "b1", "b2", "c"] }]);
    expect(coalescer.requests).toBe(1);
  });

  it("holds what is written while a request is in flight and sends it all, in call order, when it completes", async () => {
    const { coalescer, requests, endTurn, complete } = fakeBroker();
    const first = coalescer.send("t", [msg(0, "a")]);
    endTurn();
    expect(requests.map((r) => r.values)).toEqual([["a"]]);
    const rest = ["b", "c", "d"].map((v) => coalescer.send("t", [msg(0, v)]));
    endTurn(); // nothing scheduled: the request in flight drains the queue when it completes
    expect(requests).toHaveLength(1);
    await complete();
    expect(await first).toEqual([{ topic: "t", partition: 0, offset: "0" }]);
    expect(requests.map((r) => r.values)).toEqual([["a"], ["b", "c", "d"]]);
    await complete();
    expect((await Promise.all(rest)).map((p) => p[0]?.offset)).toEqual(["1", "2", "3"]);
  });

  it("keeps topics apart: one request per topic, each with its own bound", async () => {
    const { coalescer, requests, endTurn } = fakeBroker({ auto: true });
    const a = coalescer.send("t1", [msg(0)]);
    const b = coalescer.send("t2", [msg(0)]);
    endTurn();
    expect(await a).toEqual([{ topic: "t1", partition: 0, offset: "0" }]);
    expect(await b).toEqual([{ topic: "t2", partition: 0, offset: "0" }]);
    expect(requests.map((r) => r.topic)).toEqual(["t1", "t2"]);
  });

  it("splits at the record bound, never splitting one caller's records", async () => {
    const { coalescer, requests, endTurn, complete } = fakeBroker();
    const sends = ["a", "b", "c"].map((v) => coalescer.send("t", [msg(0, `${v}1`), msg(0, `${v}2`)]));
    endTurn();
    await complete();
    await complete();
    // 2 + 2 fit under maxRecords 5; the third caller's two go in the next request.
    expect(requests.map((r) => r.values)).toEqual([
      ["a1", "a2", "b1", "b2"],
      ["c1", "c2"],
    ]);
    expect((await Promise.all(sends)).map((p) => p[0]?.offset)).toEqual(["0", "2", "4"]);
  });

  it("sends a caller bigger than the byte bound whole, in a request of its own", async () => {
    const { coalescer, requests, endTurn, complete } = fakeBroker();
    const big = "x".repeat(5000);
    const sends = [
      coalescer.send("t", [msg(0, "s")]),
      coalescer.send("t", [msg(0, big)]),
      coalescer.send("t", [msg(0, "after")]),
    ];
    endTurn();
    for (let i = 0; i < 3; i++) await complete();
    expect(requests.map((r) => r.values.map((v) => v.slice(0, 5)))).toEqual([["s"], ["xxxxx"], ["after"]]);
    expect((await Promise.all(sends)).map((p) => p[0]?.offset)).toEqual(["0", "1", "2"]);
  });

  it("fails exactly the callers of a failed request, and goes on with the next ones", async () => {
    const { coalescer, endTurn, complete } = fakeBroker({
      fail: (n) => (n === 1 ? new Error("broker down") : undefined),
    });
    const a = coalescer.send("t", [msg(0)]);
    const b = coalescer.send("t", [msg(1)]);
    endTurn();
    const c = coalescer.send("t", [msg(0)]); // written while the first request is in flight
    const failed = Promise.allSettled([a, b]);
    await complete();
    const [ra, rb] = await failed;
    expect(ra).toMatchObject({ status: "rejected", reason: new Error("broker down") });
    expect(rb).toMatchObject({ status: "rejected", reason: new Error("broker down") });
    await complete();
    expect(await c).toEqual([{ topic: "t", partition: 0, offset: "0" }]);
  });

  it("with no in-flight bound and an immediate schedule, writes each send on its own at once", async () => {
    const writes: number[] = [];
    const coalescer = new SendCoalescer<Msg>({
      partitionOf: (m) => m.p,
      maxInFlight: Number.POSITIVE_INFINITY,
      schedule: (flush) => flush(),
      write: (_topic, messages) => {
        writes.push(messages.length);
        return new Promise(() => undefined); // never answers: the next send must not wait for it
      },
    });
    void coalescer.send("t", [msg(0)]);
    void coalescer.send("t", [msg(0), msg(0)]);
    expect(writes).toEqual([1, 2]);
  });

  it("uses an explicit partition over the partitioner's", async () => {
    const { coalescer, endTurn } = fakeBroker({ auto: true });
    const first = coalescer.send("t", [msg(2)]);
    const pinned = coalescer.send("t", [{ ...msg(0), partition: 2 }]);
    endTurn();
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
