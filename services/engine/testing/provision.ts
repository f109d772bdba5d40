/**
 * Test kit: puts an Orchestration on the real stack as the operator would
 * leave it (the object, its Workers, signing-key Secrets, trust ConfigMap,
 * Kafka topics), so engine tests run without an operator. Should an operator
 * be running against the same API server, it converges on the same objects
 * (it reuses existing keys), so the two do not fight. Not imported by the runtime.
 */
import * as k8s from "@kubernetes/client-node";
import {
  signingKeySecretFor,
  signingKeysFromSecret,
  trustConfigMapFor,
  trustDocumentFor,
} from "../../../operator/builders/keys.ts";
import type { TrustEntry } from "../../../operator/builders/keys.ts";
import { topicsFor } from "../../../operator/builders/topics.ts";
import type { Orchestration, Worker } from "../../../operator/crds/types.ts";
import {
  API_VERSION,
  GROUP,
  ORCHESTRATION_PLURAL,
  VERSION,
  WORKER_KIND,
  WORKER_PLURAL,
} from "../../../operator/crds/types.ts";
import { generateSigningKey } from "../../events/keys.ts";
import type { SigningKey } from "../../events/keys.ts";
import type { TopicNamingOptions } from "../../events/topics.ts";
import { TrustStore } from "../../events/trust-store.ts";
import type { KafkaClient } from "../../kafka/client.ts";

export interface TestWorker {
  name: string;
  steps: string[];
}

export interface ProvisionedOrchestration {
  /** As stored by the API server (uid, generation). */
  orchestration: Orchestration;
  namespace: string;
  name: string;
  engineKey: SigningKey;
  workerKeys: Record<string, SigningKey>;
  trust: TrustStore;
  topics: string[];
  naming: TopicNamingOptions;
}

export async function provisionOrchestration(
  kc: k8s.KubeConfig,
  kafka: KafkaClient,
  args: { namespace: string; manifest: Orchestration; workers: TestWorker[]; naming: TopicNamingOptions },
): Promise<ProvisionedOrchestration> {
  const { namespace, naming } = args;
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const orchestration = (await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: ORCHESTRATION_PLURAL,
    body: { ...args.manifest, metadata: { ...args.manifest.metadata, namespace } },
  })) as Orchestration;
  const name = orchestration.metadata.name ?? "";

  const engineKey = await ensureKey(core, namespace, (key) => signingKeySecretFor(orchestration, key));
  const workerKeys: Record<string, SigningKey> = {};
  const entries: TrustEntry[] = [{ role: "engine", keys: [engineKey] }];
  for (const w of args.workers) {
    const body: Worker = {
      apiVersion: API_VERSION,
      kind: WORKER_KIND,
      metadata: { name: w.name, namespace },
      spec: {
        orchestration: name,
        steps: w.steps,
        image: "eventloom/test-worker:none",
        scaling: { enabled: false },
        replicas: 0,
      },
    };
    const worker = (await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: WORKER_PLURAL,
      body,
    })) as Worker;
    const key = await ensureKey(core, namespace, (k) => signingKeySecretFor(worker, k));
    workerKeys[w.name] = key;
    entries.push({ role: "worker", worker: w.name, steps: w.steps, keys: [key] });
  }
  const trustMap = trustConfigMapFor(orchestration, entries);
  try {
    await core.createNamespacedConfigMap({ namespace, body: trustMap });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    // An operator got there first; its document lists the same keys (it reuses the Secrets), ours wins anyway.
    await core.replaceNamespacedConfigMap({ namespace, name: trustMap.metadata?.name ?? "", body: trustMap });
  }

  const desired = topicsFor(orchestration, naming);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics(
      desired.map((t) => ({
        name: t.name,
        partitions: t.partitions,
        replicationFactor: t.replicationFactor,
        configs: t.configs,
      })),
    );
  } finally {
    await admin.close();
  }
  return {
    orchestration,
    namespace,
    name,
    engineKey,
    workerKeys,
    trust: TrustStore.fromDocument(trustDocumentFor(orchestration, entries)),
    topics: desired.map((t) => t.name),
    naming,
  };
}

/** Creates a signing-key Secret, or reads the key an operator already put there. */
async function ensureKey(
  core: k8s.CoreV1Api,
  namespace: string,
  secretFor: (key: SigningKey) => k8s.V1Secret,
): Promise<SigningKey> {
  const key = generateSigningKey();
  const body = secretFor(key);
  try {
    await core.createNamespacedSecret({ namespace, body });
    return key;
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    const existing = await core.readNamespacedSecret({ namespace, name: body.metadata?.name ?? "" });
    const [theirs] = signingKeysFromSecret(existing);
    if (!theirs)
      throw new Error(`Secret ${namespace}/${body.metadata?.name} holds no signing key`, { cause: err });
    return theirs;
  }
}

/** Deletes topics (best effort): the broker's partition budget is shared by every test. */
export async function deleteTopics(kafka: KafkaClient, topics: string[]): Promise<void> {
  if (topics.length === 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    await admin.deleteTopics(topics.filter((t) => existing.has(t)));
  } catch {
    // Leftover topics only cost broker memory; never fail a test on cleanup.
  } finally {
    await admin.close();
  }
}
