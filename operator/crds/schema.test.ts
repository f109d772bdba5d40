import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { orchestrationSchema, workerSchema } from "./schema.ts";
import type { SchemaProps } from "./schema.ts";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_DEAD_LETTER,
  DEFAULT_DELETION_POLICY,
  DEFAULT_MODE,
  DEFAULT_REPLICAS,
  DEFAULT_RETRY,
  DEFAULT_SCALING,
  DEFAULT_SIGNING_POLICY,
  DEFAULT_STEP_TIMEOUT,
  DEFAULT_TOPICS,
  DURATION_PATTERN,
  STEP_NAME_PATTERN,
} from "./types.ts";

/** Every schema node with its path, e.g. `spec.steps[].retry.tiers[]`. */
function* walk(node: SchemaProps, path: string): Generator<[string, SchemaProps]> {
  yield [path, node];
  for (const [key, child] of Object.entries(node.properties ?? {})) yield* walk(child, path ? `${path}.${key}` : key);
  if (node.items) yield* walk(node.items, `${path}[]`);
}

function at(root: SchemaProps, path: string): SchemaProps {
  for (const [p, node] of walk(root, "")) if (p === path) return node;
  throw new Error(`no schema node at ${path}`);
}

/** Applies schema defaults the way the API server does (a defaulted `{}` gets its fields' defaults). */
function withDefaults(schema: SchemaProps, object: unknown): unknown {
  const copy = structuredClone(object);
  const validate = new Ajv({ strict: false, validateFormats: false, useDefaults: true }).compile(schema);
  if (!validate(copy)) throw new Error(JSON.stringify(validate.errors));
  return copy;
}

describe.each([
  ["Orchestration", orchestrationSchema],
  ["Worker", workerSchema],
])("the %s schema", (_kind, schema) => {
  const nodes = [...walk(schema, "")];

  it("has a description on every field, for kubectl explain", () => {
    // The API server refuses anything on the root metadata node but its type and name restrictions.
    const missing = nodes.filter(([p, n]) => p !== "metadata" && !n.description?.trim()).map(([p]) => p || "<root>");
    expect(missing).toEqual([]);
  });

  it("has a type on every field (a structural schema)", () => {
    const untyped = nodes.filter(([, n]) => !n.type).map(([p]) => p || "<root>");
    expect(untyped).toEqual([]);
  });

  it("has map-list keys only where the list type is map, and they are required", () => {
    for (const [path, node] of nodes) {
      const keys = node["x-kubernetes-list-map-keys"];
      if (!keys) continue;
      expect(node["x-kubernetes-list-type"], path).toBe("map");
      for (const key of keys) expect(node.items?.required, path).toContain(key);
    }
  });

  it("gives every duration field the duration pattern", () => {
    const durations = nodes.filter(([, n]) => n.pattern === DURATION_PATTERN).map(([p]) => p);
    expect(durations.length).toBeGreaterThan(2);
    for (const [path, node] of nodes) {
      if (/(timeout|Backoff|retention|Interval|Stabilization|cooldown|tiers\[\])$/.test(path)) {
        expect(node.pattern, path).toBe(DURATION_PATTERN);
      }
    }
  });

  it("bounds every list and string a CEL rule walks, so the API server's cost estimate stays low", () => {
    for (const [path, node] of nodes) {
      if (!path.startsWith("spec.steps")) continue;
      if (node.type === "array") expect(node.maxItems, path).toBeGreaterThan(0);
      if (node.type === "string") expect(node.maxLength, path).toBeGreaterThan(0);
    }
  });

  // kube-apiserver 1.35 refused these when the CRD was registered: join() and string() results
  // count as unbounded strings, map() results as unbounded lists, and cel.bind is not in the CRD
  // CEL environment. Only the integration test runs the real estimator; this catches the known traps.
  it("avoids CEL constructs the API server's cost estimator refuses", () => {
    for (const [path, node] of nodes) {
      for (const rule of node["x-kubernetes-validations"] ?? []) {
        for (const expr of [rule.rule, rule.messageExpression ?? ""]) {
          expect(expr, path).not.toMatch(/\.join\(|\bstring\(|cel\.bind|\.map\([^)]*\)\.indexOf/);
        }
      }
    }
  });

  it("gives every CEL rule a human message", () => {
    for (const [path, node] of nodes) {
      for (const rule of node["x-kubernetes-validations"] ?? []) expect(rule.message, `${path}: ${rule.rule}`).toBeTruthy();
    }
  });
});

describe("Orchestration defaults", () => {
  const defaulted = withDefaults(orchestrationSchema, {
    apiVersion: "eventloom.io/v1alpha1",
    kind: "Orchestration",
    metadata: { name: "x" },
    spec: { steps: [{ name: "a", type: "com.example.a" }] },
  }) as { spec: Record<string, unknown> & { steps: Record<string, unknown>[] } };

  it.each<[string, unknown]>([
    ["mode", DEFAULT_MODE],
    ["topics", DEFAULT_TOPICS],
    ["deadLetter", DEFAULT_DEAD_LETTER],
    ["signing", { policy: DEFAULT_SIGNING_POLICY }],
    ["deletionPolicy", DEFAULT_DELETION_POLICY],
  ])("spec.%s defaults to %j", (field, expected) => {
    expect(defaulted.spec[field]).toEqual(expected);
  });

  it.each<[string, unknown]>([
    ["timeout", DEFAULT_STEP_TIMEOUT],
    ["retry", DEFAULT_RETRY],
  ])("spec.steps[].%s defaults to %j", (field, expected) => {
    expect(defaulted.spec.steps[0]?.[field]).toEqual(expected);
  });

  it("retries like seed 001: 3 times after 1s, 2s, 4s", () => {
    const delays: number[] = [];
    let delay = Number.parseInt(DEFAULT_RETRY.initialBackoff, 10);
    for (let i = 0; i < DEFAULT_RETRY.attempts; i++) {
      delays.push(Math.min(delay, Number.parseInt(DEFAULT_RETRY.maxBackoff, 10)));
      delay *= DEFAULT_RETRY.multiplier;
    }
    expect(delays).toEqual([1, 2, 4]);
  });

  it("does not invent a replication factor (the broker's default applies)", () => {
    expect(defaulted.spec.topics).not.toHaveProperty("replicationFactor");
  });

  it("keeps fields the user set", () => {
    const custom = withDefaults(orchestrationSchema, {
      spec: { mode: "choreographed", steps: [{ name: "a", subscribes: ["x"], retry: { attempts: 0 } }] },
    }) as { spec: { mode: string; steps: { retry: unknown }[] } };
    expect(custom.spec.mode).toBe("choreographed");
    expect(custom.spec.steps[0]?.retry).toEqual({ ...DEFAULT_RETRY, attempts: 0 });
  });
});

describe("Worker defaults", () => {
  const defaulted = withDefaults(workerSchema, {
    spec: { orchestration: "o", steps: ["a"], image: "img" },
  }) as { spec: Record<string, unknown> };

  it.each<[string, unknown]>([
    ["concurrency", DEFAULT_CONCURRENCY],
    ["replicas", DEFAULT_REPLICAS],
    ["scaling", DEFAULT_SCALING],
  ])("spec.%s defaults to %j", (field, expected) => {
    expect(defaulted.spec[field]).toEqual(expected);
  });

  it.each<[keyof typeof DEFAULT_SCALING, unknown]>([
    ["enabled", true],
    ["minReplicas", 0],
    ["maxReplicas", 10],
    ["lagPerReplica", 100],
    ["activationLag", 1],
    ["pollInterval", "2s"],
    ["scaleDownStabilization", "60s"],
  ])("scaling.%s defaults to %j", (field, expected) => {
    expect(DEFAULT_SCALING[field]).toEqual(expected);
  });
});

describe("patterns", () => {
  const duration = new RegExp(DURATION_PATTERN, "u");
  const label = new RegExp(STEP_NAME_PATTERN, "u");

  it.each(["1s", "500ms", "30s", "5m", "1h30m", "168h", "0s"])("%s is a duration", (text) => {
    expect(duration.test(text)).toBe(true);
  });
  it.each(["", "1", "30 seconds", "1d", "-1s", "1.5s", "s"])("%j is not a duration", (text) => {
    expect(duration.test(text)).toBe(false);
  });
  it.each(["create-realm", "a", "step1"])("%s is a step name", (text) => {
    expect(label.test(text)).toBe(true);
  });
  it.each(["createRealm", "-a", "a-", "a_b", "a.b", ""])("%j is not a step name", (text) => {
    expect(label.test(text)).toBe(false);
  });
  it("limits step names to 63 characters", () => {
    expect(at(orchestrationSchema, "spec.steps[].name").maxLength).toBe(63);
  });
});
