/**
 * What the gateway needs from the outside world, as interfaces: the real implementations
 * (`kafka-backend.ts`, `registry-directory.ts`) talk to Kafka and the Kubernetes API; unit tests pass
 * fakes with the same shape.
 */
import type { OrchestrationEntry } from "../runtime/registry.ts";
import type {
  IncomingRecord,
  OutgoingRecord,
  PartitionOffsets,
  SentRecordMetadata,
} from "../kafka/client.ts";

/** Orchestrations by namespace and name, with their signing key and trust (the runtime registry). */
export interface OrchestrationDirectory {
  get(namespace: string, name: string): OrchestrationEntry | undefined;
  /** Re-reads one Orchestration's key and trust now (the registry does not watch Secrets). */
  reload(namespace: string, name: string): Promise<OrchestrationEntry | undefined>;
  /** True once the first list of Orchestrations has been loaded. */
  synced(): boolean;
  close(): Promise<void>;
}

/** The records of a dead-letter topic between its log start and the end offsets captured at request time. */
export interface DeadLetterSnapshot {
  records: IncomingRecord[];
  partitions: PartitionOffsets[];
  /** False when the index could not reach the captured end offsets in time (the list may miss records). */
  complete: boolean;
  /** Records the in-memory index dropped (oldest first) to stay within its bound. */
  evicted: number;
}

export interface PurgedPartition {
  partition: number;
  /** Log start offset before the purge. */
  from: string;
  /** New log start offset (the end offset captured when the purge began). */
  to: string;
}

/** Kafka, as the gateway uses it. */
export interface GatewayKafka {
  /** True when the producer is connected and Kafka answered recently. */
  ready(): boolean;
  /** Why it is not ready, for /readyz and 503 details. */
  readinessDetail(): string;
  /** Writes with acks=all; throws `KafkaUnavailableError` when Kafka cannot be reached. */
  send(topic: string, records: OutgoingRecord[]): Promise<SentRecordMetadata[]>;
  topicExists(topic: string): Promise<boolean>;
  readDeadLetters(topic: string): Promise<DeadLetterSnapshot>;
  /** Deletes every record below the end offsets captured now. */
  purge(topic: string): Promise<PurgedPartition[]>;
  close(): Promise<void>;
}

/** Who made a request, once authenticated. */
export interface Principal {
  /** The token's name from the tokens file (never the token itself); also the rate-limit key. */
  name: string;
  /** What it may touch: `*`, `<namespace>`, or `<namespace>/<orchestration>`. */
  scopes: readonly string[];
}

export interface TokenAuthenticator {
  /** The principal holding `token`, or undefined for an unknown token. */
  authenticate(token: string): Principal | undefined;
  close(): Promise<void>;
}
