import { describe, expect, it } from "vitest";
import { TerminalError, WorkQueue } from "./queue.ts";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("WorkQueue", () => {
  it("processes a key added several times while waiting only once", async () => {
    const seen: string[] = [];
    const gate = deferred();
    const q = new WorkQueue(
      async (key) => {
        if (key === "blocker") await gate.promise;
        seen.push(key);
      },
      { concurrency: 1 },
    );
    q.add("blocker");
    q.add("a");
    q.add("a");
    q.add("a");
    gate.resolve();
    await q.idle();
    expect(seen).toEqual(["blocker", "a"]);
  });

  it("never runs the same key twice at once, and reprocesses a key changed while running", async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    const gate = deferred();
    const q = new WorkQueue(
      async () => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        runs++;
        if (runs === 1) await gate.promise;
        concurrent--;
      },
      { concurrency: 4 },
    );
    q.add("k");
    q.add("k"); // arrives while k runs: marked dirty
    gate.resolve();
    await q.idle();
    expect(maxConcurrent).toBe(1);
    expect(runs).toBe(2);
  });

  it("retries a failing key with exponential backoff until it succeeds", async () => {
    let attempts = 0;
    const delays: number[] = [];
    const done = deferred();
    const q = new WorkQueue(
      async () => {
        attempts++;
        if (attempts < 3) throw new Error("kafka down");
        done.resolve();
      },
      { baseBackoffMs: 1, onError: (_k, _e, retryIn) => delays.push(retryIn) },
    );
    q.add("k");
    await done.promise;
    expect(attempts).toBe(3);
    expect(delays).toEqual([1, 2]);
  });

  it("does not retry a terminal error", async () => {
    let attempts = 0;
    const errors: number[] = [];
    const q = new WorkQueue(
      async () => {
        attempts++;
        throw new TerminalError("invalid spec");
      },
      { baseBackoffMs: 1, onError: (_k, _e, retryIn) => errors.push(retryIn) },
    );
    q.add("k");
    await q.idle();
    expect(attempts).toBe(1);
    expect(errors).toEqual([-1]);
  });

  it.each([
    [1, 200],
    [2, 400],
    [5, 3200],
    [20, 60_000],
  ])("after %i failures waits %i ms", (failures, expected) => {
    const q = new WorkQueue(async () => undefined);
    expect(q.backoffFor(failures)).toBe(expected);
  });
});
