/**
 * The worker's signing keys and the Orchestration's trust document, both mounted by the operator
 * (docs/topics.md "Trust document", "Signing-key Secrets"). The trust document is re-read when the
 * ConfigMap changes: Kubernetes swaps the mounted directory's `..data` symlink, so the watcher watches the
 * directory and also polls, since file events are not delivered on every filesystem.
 */
import { readFileSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { JsonWebKey } from "node:crypto";
import { loadSigningKey } from "../events/keys.ts";
import type { SigningKey } from "../events/keys.ts";
import { TrustStore } from "../events/trust-store.ts";
import { WorkerConfigError } from "./errors.ts";
import type { WorkerLogger } from "./logger.ts";

/** Name of the Secret's file listing every key to sign with during a rotation (next to `private.jwk`). */
const ROTATION_FILE = "private.jwks";

/**
 * The keys to sign results with: every key of `private.jwks` next to `path` when the Secret has one (two
 * during a rotation's overlap, active first), otherwise the one key at `path`.
 * @throws WorkerConfigError when nothing usable is there.
 */
export function loadSigningKeys(path: string): SigningKey[] {
  const jwksPath = basename(path) === ROTATION_FILE ? path : join(dirname(path), ROTATION_FILE);
  let jwks: string | undefined;
  try {
    jwks = readFileSync(jwksPath, "utf8");
  } catch {
    jwks = undefined;
  }
  try {
    if (jwks !== undefined) {
      const parsed = JSON.parse(jwks) as { keys?: unknown };
      if (Array.isArray(parsed.keys) && parsed.keys.length > 0) {
        return parsed.keys.map((jwk) => loadSigningKey(jwk as JsonWebKey));
      }
    }
    return [loadSigningKey(readFileSync(path))];
  } catch (err) {
    throw new WorkerConfigError(
      `cannot load the worker's signing key from ${path} (EVENTLOOM_SIGNING_KEY_PATH): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Reads the trust document at `path`. @throws WorkerConfigError naming the file and the problem. */
export function loadTrustStore(path: string): TrustStore {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new WorkerConfigError(
      `cannot read the trust document ${path} (EVENTLOOM_TRUST_PATH): ${(err as Error).message}; mount the Orchestration's trust ConfigMap`,
      { cause: err },
    );
  }
  try {
    return TrustStore.fromDocument(text);
  } catch (err) {
    throw new WorkerConfigError(`the trust document ${path} is invalid: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Re-reads a trust document when it changes and hands each new, valid store to `onChange`. */
export class TrustFileWatcher {
  readonly #path: string;
  readonly #onChange: (store: TrustStore) => void;
  readonly #log: WorkerLogger;
  #last: string | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #pending: NodeJS.Timeout | undefined;
  #checking: Promise<void> = Promise.resolve();

  constructor(opts: {
    path: string;
    initial: string | undefined;
    onChange: (store: TrustStore) => void;
    log: WorkerLogger;
    pollIntervalMs: number;
  }) {
    this.#path = opts.path;
    this.#onChange = opts.onChange;
    this.#log = opts.log;
    this.#last = opts.initial;
    try {
      this.#watcher = watch(dirname(opts.path), { persistent: false }, () => this.#soon());
      this.#watcher.on("error", () => undefined);
    } catch {
      this.#watcher = undefined;
    }
    this.#timer = setInterval(() => this.#soon(), opts.pollIntervalMs);
    this.#timer.unref();
  }

  // Several events arrive for one ConfigMap update; read once after they settle.
  #soon(): void {
    if (this.#pending !== undefined) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      this.#checking = this.#checking.then(() => this.check());
    }, 50);
    this.#pending.unref();
  }

  /** Reads the file now; calls `onChange` if its content changed and is a valid trust document. */
  async check(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#path, "utf8");
    } catch (err) {
      this.#log.warn("cannot read the trust document; keeping the trust loaded before", {
        path: this.#path,
        error: (err as Error).message,
      });
      return;
    }
    if (text === this.#last) return;
    try {
      const store = TrustStore.fromDocument(text);
      this.#last = text;
      this.#onChange(store);
      this.#log.info("trust document reloaded", { path: this.#path, keys: store.keyids.length });
    } catch (err) {
      // Keep verifying with the old trust: a half-written or broken document must not open the door.
      this.#last = text;
      this.#log.error("the new trust document is invalid; keeping the trust loaded before", {
        path: this.#path,
        error: (err as Error).message,
      });
    }
  }

  close(): void {
    this.#watcher?.close();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#pending !== undefined) clearTimeout(this.#pending);
  }
}

/** The trust document's current text (for the watcher's first comparison). */
export function readTrustText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
