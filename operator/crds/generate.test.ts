import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  GENERATED_HEADER,
  OUTPUT_DIRS,
  REPO_ROOT,
  allCrds,
  orchestrationCrd,
  renderCrdFiles,
  workerCrd,
} from "./generate.ts";

describe("generated CRD files", () => {
  it("are checked in exactly as the generator writes them (otherwise run `npm run crds`)", async () => {
    const expected = await renderCrdFiles();
    expect([...expected.keys()].sort()).toEqual([
      "charts/eventloom/crds/orchestrations.eventloom.io.yaml",
      "charts/eventloom/crds/workers.eventloom.io.yaml",
      "crds/orchestrations.eventloom.io.yaml",
      "crds/workers.eventloom.io.yaml",
    ]);
    for (const [path, text] of expected) {
      const actual = await readFile(join(REPO_ROOT, path), "utf8").catch(() => "<missing>");
      expect(
        actual === text,
        `${path} differs from operator/crds/generate.ts output: run \`npm run crds\` (tsx operator/crds/generate.ts) and commit the result`,
      ).toBe(true);
    }
  });

  it("start with the do-not-edit header", async () => {
    for (const text of (await renderCrdFiles()).values()) {
      expect(text.split("\n")[0]).toBe(GENERATED_HEADER);
    }
  });

  it("are the same in every output folder", async () => {
    const files = await renderCrdFiles();
    for (const crd of allCrds()) {
      const copies = OUTPUT_DIRS.map((dir) => files.get(`${dir}/${crd.metadata.name}.yaml`));
      expect(new Set(copies).size).toBe(1);
    }
  });

  it("render deterministically", async () => {
    expect(await renderCrdFiles()).toEqual(await renderCrdFiles());
  });
});

describe("orchestrationCrd()", () => {
  const crd = orchestrationCrd();
  const version = crd.spec.versions[0];

  it("names the resource orchestrations.eventloom.io with short names and the eventloom category", () => {
    expect(crd.metadata.name).toBe("orchestrations.eventloom.io");
    expect(crd.spec.scope).toBe("Namespaced");
    expect(crd.spec.names).toMatchObject({ kind: "Orchestration", shortNames: ["orch", "orchs"], categories: ["eventloom"] });
  });

  it("serves and stores v1alpha1 with a status subresource and no scale subresource", () => {
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: "v1alpha1", served: true, storage: true, subresources: { status: {} } });
    expect(version?.subresources.scale).toBeUndefined();
  });

  it("prints Ready, Mode, Steps and Age", () => {
    const columns = version?.additionalPrinterColumns.filter((c) => !c.priority).map((c) => [c.name, c.jsonPath]);
    expect(columns).toEqual([
      ["Ready", '.status.conditions[?(@.type=="Ready")].status'],
      ["Mode", ".spec.mode"],
      ["Steps", ".status.stepCount"],
      ["Age", ".metadata.creationTimestamp"],
    ]);
  });
});

describe("workerCrd()", () => {
  const crd = workerCrd();
  const version = crd.spec.versions[0];

  it("names the resource workers.eventloom.io with short name wkr", () => {
    expect(crd.metadata.name).toBe("workers.eventloom.io");
    expect(crd.spec.names).toMatchObject({ kind: "Worker", shortNames: ["wkr"], categories: ["eventloom"] });
  });

  it("has a scale subresource on spec.replicas / status.replicas / status.selector", () => {
    expect(version?.subresources).toEqual({
      status: {},
      scale: { specReplicasPath: ".spec.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" },
    });
  });

  it("prints Replicas, Lag, Ready and Age", () => {
    const names = version?.additionalPrinterColumns.filter((c) => !c.priority).map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(["Replicas", "Lag", "Ready", "Age"]));
    expect(names?.at(-1)).toBe("Age");
  });
});
