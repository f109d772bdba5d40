import { Ajv } from "ajv";
import type { ValidateFunction } from "ajv";
import { describe, expect, it } from "vitest";
import { loadBadManifests, loadManifests } from "./manifests.ts";
import type { Manifest } from "./manifests.ts";
import { orchestrationSchema, workerSchema } from "./schema.ts";
import { API_VERSION } from "./types.ts";

// Ajv checks the OpenAPI part of the schemas (types, enums, patterns, bounds)
// and ignores the x-kubernetes-* keywords, so the CEL rules are exercised
// against the real API server in test/integration/crds.test.ts.
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
const validators: Record<string, ValidateFunction> = {
  Orchestration: ajv.compile(orchestrationSchema),
  Worker: ajv.compile(workerSchema),
};

function schemaErrors(m: Manifest): string[] {
  const check = validators[m.kind];
  if (!check) return [`unknown kind ${m.kind}`];
  return check(m.object) ? [] : (check.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`);
}

describe.each(["tenant-creation", "order-saga"])("examples/%s", (dir) => {
  it("validates against the CRD schemas", async () => {
    const all = await loadManifests(dir);
    expect(all.length).toBeGreaterThan(0);
    for (const m of all) {
      expect(m.object.apiVersion, m.file).toBe(API_VERSION);
      expect(schemaErrors(m), `${m.file} ${m.kind}/${m.name}`).toEqual([]);
    }
  });
});

describe("examples/tenant-creation", () => {
  it("keeps create-client's Worker alone in its own file, to show self-heal when it is applied later", async () => {
    const all = await loadManifests("tenant-creation");
    const workers = all.filter((m) => m.kind === "Worker" && JSON.stringify(m.object).includes("create-client"));
    expect(workers).toHaveLength(1);
    expect(all.filter((m) => m.file === workers[0]?.file)).toHaveLength(1);
  });
});

describe("examples/bad", async () => {
  const bad = await loadBadManifests();
  const manifests = await loadManifests("bad");
  const manifest = (file: string): Manifest => {
    const found = manifests.find((m) => m.file === file);
    if (!found) throw new Error(`no manifest in ${file}`);
    return found;
  };

  it("covers the cases the validation must refuse", () => {
    expect(bad.map((b) => b.file)).toEqual(
      expect.arrayContaining([
        "bad/duplicate-step-names.yaml",
        "bad/depends-on-unknown-step.yaml",
        "bad/worker-min-greater-than-max.yaml",
        "bad/bad-duration.yaml",
        "bad/bad-mode.yaml",
        "bad/step-depends-on-itself.yaml",
      ]),
    );
  });

  it.each(bad)("$file says what is wrong, who refuses it and what the API server answers", (b) => {
    expect(b.whatIsWrong).not.toBe("");
    expect(b.checkedBy).not.toBe("");
    expect(b.expectedError).not.toBe("");
    expect(manifests.filter((m) => m.file === b.file)).toHaveLength(1);
  });

  it.each(bad.filter((b) => b.checkedBy === "openapi"))("$file is refused by the OpenAPI schema alone", (b) => {
    expect(schemaErrors(manifest(b.file))).not.toEqual([]);
  });

  it.each(bad.filter((b) => b.checkedBy === "cel"))("$file passes the OpenAPI schema, so a CEL rule must refuse it", (b) => {
    expect(schemaErrors(manifest(b.file))).toEqual([]);
  });
});
