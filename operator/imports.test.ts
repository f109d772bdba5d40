/**
 * Guards the operator's memory: @kubernetes/client-node costs ~80 MiB of RSS
 * when imported (its generated API and model classes load eagerly), so no
 * module the operator, gateway or engine loads at runtime may import it as a
 * value. Type-only imports are erased and fine.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The specifiers a module imports as values (static, re-exports and dynamic). */
export function valueImports(source: string): string[] {
  const out: string[] = [];
  const statement = /(?:^|\n)\s*(import|export)\s+([^;]*?)\s*from\s*["']([^"']+)["']/g;
  for (const m of source.matchAll(statement)) {
    const clause = (m[2] ?? "").trim();
    if (clause.startsWith("type ") || clause.startsWith("type{")) continue;
    const named = /^\{([^}]*)\}$/.exec(clause);
    if (named) {
      const names = (named[1] ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      if (names.length > 0 && names.every((n) => n.startsWith("type "))) continue;
    }
    out.push(m[3] ?? "");
  }
  for (const m of source.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) out.push(m[1] ?? "");
  for (const m of source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1] ?? "");
  return out;
}

/** Every package a module reaches through value imports of relative modules. */
function packagesReachedFrom(entry: string): Map<string, string> {
  const packages = new Map<string, string>();
  const seen = new Set<string>();
  const stack = [resolve(root, entry)];
  while (stack.length > 0) {
    const file = stack.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of valueImports(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) stack.push(resolve(dirname(file), spec));
      else if (!spec.startsWith("node:")) packages.set(spec, file.slice(root.length + 1));
    }
  }
  return packages;
}

describe("valueImports", () => {
  it.each([
    {
      name: "a namespace import",
      src: 'import * as k8s from "@kubernetes/client-node";',
      want: ["@kubernetes/client-node"],
    },
    {
      name: "a type-only namespace import",
      src: 'import type * as k8s from "@kubernetes/client-node";',
      want: [],
    },
    { name: "named type-only specifiers", src: 'import { type A, type B } from "x";', want: [] },
    { name: "a mix of type and value specifiers", src: 'import { type A, b } from "x";', want: ["x"] },
    { name: "a multi-line import", src: 'import {\n  a,\n  b,\n} from "./m.ts";', want: ["./m.ts"] },
    { name: "a re-export", src: 'export { a } from "./m.ts";', want: ["./m.ts"] },
    { name: "a type re-export", src: 'export type { A } from "./m.ts";', want: [] },
    { name: "a side-effect import", src: 'import "./setup.ts";', want: ["./setup.ts"] },
    { name: "a dynamic import", src: 'const { parse } = await import("yaml");', want: ["yaml"] },
  ])("finds $name", ({ src, want }) => {
    expect(valueImports(src)).toEqual(want);
  });
});

describe("what the runtime processes load", () => {
  it.each(["operator/main.ts", "services/gateway/main.ts", "services/engine/main.ts"])(
    "%s does not load @kubernetes/client-node",
    (entry) => {
      const packages = packagesReachedFrom(entry);
      expect(packages.size).toBeGreaterThan(0);
      expect(packages.get("@kubernetes/client-node")).toBeUndefined();
    },
  );
});
