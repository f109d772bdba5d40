import { describe, expect, it } from "vitest";
import { splitByOwner } from "./engine.ts";

// Results the router reads are applied by this replica only for runs of partitions it owns and has
// restored; everything else is copied through the inbox (docs/engine.md, "Results without the inbox hop").
const runs: Record<string, number | undefined> = { a: 0, b: 1, c: 0, d: undefined, e: 2 };

interface Case {
  name: string;
  ready: number[];
  items: string[];
  groups: Record<number, string[]>;
  left: number[];
}

describe("splitByOwner", () => {
  it.each<Case>([
    {
      name: "groups runs of ready partitions in input order and leaves the rest",
      ready: [0, 1],
      items: ["a", "b", "c", "d", "e"],
      groups: { 0: ["a", "c"], 1: ["b"] },
      left: [3, 4],
    },
    {
      name: "leaves everything when no partition is ready (restoring, rebalancing, stopped)",
      ready: [],
      items: ["a", "b"],
      groups: {},
      left: [0, 1],
    },
    {
      name: "leaves runs the view does not know (a first choreography event, a run start)",
      ready: [0, 1, 2],
      items: ["d", "a", "d"],
      groups: { 0: ["a"] },
      left: [0, 2],
    },
    {
      name: "keeps repeated inputs of one run in order",
      ready: [0],
      items: ["c", "a", "c"],
      groups: { 0: ["c", "a", "c"] },
      left: [],
    },
  ])("$name", ({ ready, items, groups, left }) => {
    const split = splitByOwner(
      items,
      (id) => runs[id],
      (p) => ready.includes(p),
    );
    expect(split.left).toEqual(left);
    expect(Object.fromEntries([...split.groups].map(([p, list]) => [p, list.map((x) => x.item)]))).toEqual(
      groups,
    );
    for (const list of split.groups.values())
      for (const { index, item } of list) expect(items[index]).toBe(item);
  });
});
