import { describe, expect, it } from "vitest";
import { decide, emptyMemory, partitionLag } from "./decide.ts";
import type { ScalerMemory, ScalingPolicy } from "./decide.ts";

const policy: ScalingPolicy = {
  minReplicas: 0,
  maxReplicas: 10,
  lagPerReplica: 100,
  activationLag: 1,
  scaleDownStabilizationMs: 60_000,
  cooldownMs: 120_000,
};

/** Feeds a sequence of (second, lag) observations; returns the replicas after each. */
function run(
  steps: Array<[seconds: number, lag: number]>,
  opts: { start?: number; partitions?: number; p?: Partial<ScalingPolicy> } = {},
) {
  let memory: ScalerMemory = emptyMemory();
  let replicas = opts.start ?? 0;
  const out: number[] = [];
  for (const [s, lag] of steps) {
    const d = decide(
      { ...policy, ...opts.p },
      { lag, partitions: opts.partitions ?? 12, currentReplicas: replicas, nowMs: s * 1000 },
      memory,
    );
    memory = d.memory;
    replicas = d.desiredReplicas;
    out.push(replicas);
  }
  return out;
}

describe("decide", () => {
  it.each([
    ["no lag at zero stays at zero", [[0, 0]], 0, [0]],
    ["lag reaching activationLag wakes a Worker from zero", [[0, 1]], 0, [1]],
    ["lag 250 at 100 per replica asks for 3", [[0, 250]], 0, [3]],
    [
      "a burst scales up at once, whatever the last change",
      [
        [0, 100],
        [2, 900],
      ],
      0,
      [1, 9],
    ],
    ["lag is capped by maxReplicas", [[0, 5000]], 0, [10]],
  ] as const)("%s", (_name, steps, start, expected) => {
    expect(run(steps as unknown as Array<[number, number]>, { start })).toEqual(expected);
  });

  it("caps replicas at the partition count", () => {
    expect(run([[0, 5000]], { partitions: 3 })).toEqual([3]);
  });

  it("keeps minReplicas even with no lag", () => {
    expect(run([[0, 0]], { p: { minReplicas: 2 } })).toEqual([2]);
  });

  it("scales down only after the window, in one step to the window's largest recommendation", () => {
    // 8 replicas, lag falls to 250 (3 replicas) at t=10; nothing moves until the window since the
    // last change (t=0) and the recommendations agree.
    const steps: Array<[number, number]> = [
      [0, 800],
      [10, 250],
      [30, 250],
      [59, 250],
      [71, 250],
      [72, 250],
    ];
    expect(run(steps)).toEqual([8, 8, 8, 8, 3, 3]);
  });

  it("does not flap when lag oscillates around a threshold (no unnecessary changes)", () => {
    const steps: Array<[number, number]> = [];
    for (let s = 0; s <= 600; s += 2) steps.push([s, s % 4 === 0 ? 199 : 201]);
    const replicas = run(steps, { start: 3 });
    const changes = replicas.filter((r, i) => i > 0 && r !== replicas[i - 1]).length;
    expect(replicas[0]).toBe(3);
    expect(changes).toBe(0);
  });

  it("goes to zero only after lag stayed below activation for the cooldown", () => {
    const steps: Array<[number, number]> = [
      [0, 50],
      [70, 0],
      [130, 0],
      [189, 0],
      [191, 0],
    ];
    expect(run(steps)).toEqual([1, 1, 1, 1, 0]);
  });
});

describe("partitionLag", () => {
  it.each([
    ["committed in range", 0n, 100n, 40n, 60],
    ["nothing committed counts from log start", 10n, 100n, null, 90],
    ["committed below log start (retention) counts from log start", 50n, 100n, 20n, 50],
    ["fully consumed", 0n, 100n, 100n, 0],
    ["an empty topic", 0n, 0n, null, 0],
    ["a partition without a leader yet (offsets -1) has no known lag", -1n, -1n, null, 0],
    ["a partition whose log start is unknown has no known lag", -1n, 10n, null, 0],
  ] as const)("%s", (_name, start, end, committed, expected) => {
    expect(partitionLag(start, end, committed)).toBe(expected);
  });
});

describe("decide after a restart", () => {
  it("does not scale down before it has watched a whole window", () => {
    // A new leader starts with 5 replicas and no lag: it must not drop them at once.
    expect(
      run(
        [
          [0, 0],
          [30, 0],
          [61, 0],
        ],
        { start: 5, p: { cooldownMs: 0 } },
      ),
    ).toEqual([5, 5, 0]);
  });
});
