/**
 * Test fixtures for the builders: valid resources as the API server would
 * return them (with uid and generation), overridable piece by piece.
 * Used only by `*.test.ts`.
 */
import { API_VERSION, ORCHESTRATION_KIND, WORKER_KIND } from "../crds/types.ts";
import type {
  ObjectMeta,
  Orchestration,
  OrchestrationSpec,
  Step,
  Worker,
  WorkerSpec,
} from "../crds/types.ts";

export interface OrchestrationOverrides {
  name?: string;
  namespace?: string;
  uid?: string;
  metadata?: Partial<ObjectMeta>;
  spec?: Partial<OrchestrationSpec>;
}

/** A step with a command type; override any field. */
export function aStep(name: string, overrides: Partial<Step> = {}): Step {
  return { name, type: `com.example.${name}`, ...overrides };
}

/** Orchestration `shop/checkout` with steps reserve → charge → ship, all defaults. */
export function anOrchestration(overrides: OrchestrationOverrides = {}): Orchestration {
  return {
    apiVersion: API_VERSION,
    kind: ORCHESTRATION_KIND,
    metadata: {
      name: overrides.name ?? "checkout",
      namespace: overrides.namespace ?? "shop",
      uid: overrides.uid ?? "0b6f6d3e-0000-4000-8000-00000000c0de",
      generation: 1,
      ...overrides.metadata,
    },
    spec: {
      steps: [
        aStep("reserve"),
        aStep("charge", { dependsOn: ["reserve"] }),
        aStep("ship", { dependsOn: ["charge"] }),
      ],
      ...overrides.spec,
    },
  };
}

export interface WorkerOverrides {
  name?: string;
  namespace?: string;
  uid?: string;
  metadata?: Partial<ObjectMeta>;
  spec?: Partial<WorkerSpec>;
}

/** Worker `shop/payments` handling step `charge` of `checkout`, all defaults. */
export function aWorker(overrides: WorkerOverrides = {}): Worker {
  return {
    apiVersion: API_VERSION,
    kind: WORKER_KIND,
    metadata: {
      name: overrides.name ?? "payments",
      namespace: overrides.namespace ?? "shop",
      uid: overrides.uid ?? "5a1e5a1e-0000-4000-8000-00000000beef",
      generation: 1,
      ...overrides.metadata,
    },
    spec: {
      orchestration: "checkout",
      steps: ["charge"],
      image: "registry.example.com/payments:1.4.2",
      ...overrides.spec,
    },
  };
}
