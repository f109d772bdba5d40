/**
 * What the engine needs to know about Orchestrations: their spec, their
 * signing key and their trust store. `OrchestrationRegistry`
 * (services/runtime/registry.ts) is the real one, watching the Kubernetes API.
 */
import type { OrchestrationEntry } from "../runtime/registry.ts";

export type { OrchestrationEntry };

export interface OrchestrationCatalog {
  get(namespace: string, name: string): OrchestrationEntry | undefined;
  list(): OrchestrationEntry[];
  /** Called after an entry was added, changed or removed. Returns a function that removes the listener. */
  onChange(listener: (entry: OrchestrationEntry | undefined, key: string) => void): () => void;
  /** Re-reads one entry's key and trust now (after a result was signed by a key not known yet). */
  reload?(namespace: string, name: string): Promise<OrchestrationEntry | undefined>;
}
