/** Runs an example worker under the operator's environment (what `tsx services/examples/<name>.ts` does). */
import { runWorker, WorkerConfigError } from "../../sdk/index.ts";
import type { WorkerDefinition } from "../../sdk/index.ts";

export async function runExample(definition: WorkerDefinition): Promise<void> {
  try {
    await runWorker(definition, process.env);
  } catch (err) {
    const what = err instanceof WorkerConfigError ? "configuration error" : "failed to start";
    console.error(`eventloom example worker: ${what}: ${(err as Error).message}`);
    process.exit(1);
  }
}
