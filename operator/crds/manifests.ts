/**
 * Loads the example manifests under `examples/`, for the unit tests (schema
 * checks with ajv) and the integration test (the real API server).
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const EXAMPLES_DIR = fileURLToPath(new URL("../../examples", import.meta.url));

/** One YAML document of an example file. */
export interface Manifest {
  /** Path relative to `examples/`, e.g. `tenant-creation/orchestration.yaml`. */
  file: string;
  kind: string;
  name: string;
  object: Record<string, unknown>;
}

async function yamlFiles(dir: string): Promise<string[]> {
  return (await readdir(join(EXAMPLES_DIR, dir))).filter((f) => f.endsWith(".yaml")).sort();
}

/** Every document of every `.yaml` file in `examples/<dir>`, in file order. */
export async function loadManifests(dir: string): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const name of await yamlFiles(dir)) {
    const file = `${dir}/${name}`;
    const text = await readFile(join(EXAMPLES_DIR, file), "utf8");
    for (const doc of parseAllDocuments(text)) {
      const [error] = doc.errors;
      if (error) throw new Error(`examples/${file} is not valid YAML: ${error.message}`);
      const object = doc.toJS() as Record<string, unknown> & { kind?: string; metadata?: { name?: string } };
      out.push({ file, kind: object.kind ?? "", name: object.metadata?.name ?? "", object });
    }
  }
  return out;
}

/** A manifest in `examples/bad/`, with the header lines that say why it must be refused. */
export interface BadManifest {
  /** Path relative to `examples/`. */
  file: string;
  /** `# What is wrong:` line. */
  whatIsWrong: string;
  /** `# Checked by:` line: the OpenAPI schema alone, or a CEL rule. */
  checkedBy: "openapi" | "cel" | "";
  /** `# Expected error:` line: text the API server's refusal must contain. */
  expectedError: string;
}

export async function loadBadManifests(): Promise<BadManifest[]> {
  const out: BadManifest[] = [];
  for (const name of await yamlFiles("bad")) {
    const file = `bad/${name}`;
    const text = await readFile(join(EXAMPLES_DIR, file), "utf8");
    const header = (label: string): string => new RegExp(`^# ${label}: (.+)$`, "m").exec(text)?.[1]?.trim() ?? "";
    const checkedBy = header("Checked by");
    out.push({
      file,
      whatIsWrong: header("What is wrong"),
      checkedBy: checkedBy === "openapi" || checkedBy === "cel" ? checkedBy : "",
      expectedError: header("Expected error"),
    });
  }
  return out;
}
