import { describe, expect, it } from "vitest";
import { confirmCommitted } from "./autoscaler.ts";

describe("confirmCommitted", () => {
  it.each<[string, Array<bigint | null>, Array<bigint | null>]>([
    ["takes offsets that move forward at once", [5n, 10n, 20n], [5n, 10n, 20n]],
    ["takes the first answer as it is, even none", [null, 7n], [null, 7n]],
    ["ignores one poll that lost the commit", [25n, null, 25n], [25n, 25n, 25n]],
    ["ignores one poll with a lower offset", [25n, 3n, 25n], [25n, 25n, 25n]],
    ["follows a real reset once two polls agree", [25n, 0n, 0n, 0n], [25n, 25n, 0n, 0n]],
    [
      "follows a lost commit (e.g. an expired group) once two polls agree",
      [25n, null, null],
      [25n, 25n, null],
    ],
  ])("%s", (_name, observed, believed) => {
    const st = {};
    expect(observed.map((o) => confirmCommitted(st, "t/0", o))).toEqual(believed);
  });
});
