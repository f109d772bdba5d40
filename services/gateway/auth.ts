/**
 * Bearer-token authentication. Tokens live in a file mounted from a Kubernetes Secret
 * (`EVENTLOOM_GATEWAY_TOKENS_FILE`), one per line:
 *
 *     # name        token                              scopes (optional, default *)
 *     shop-web      4f6c0d1e...(at least 32 characters)  shop
 *     ops           9a8b7c6d...                          *
 *     billing-job   1b2c3d4e...                          billing/invoices,billing/refunds
 *
 * A scope is `*`, a namespace, or `<namespace>/<orchestration>`. The name is what logs, metrics and the
 * rate limiter see; the token itself is only ever held as its SHA-256, and compared through a hash-map
 * lookup, so the time taken does not depend on how much of a guess was right.
 *
 * The file is re-read when it changes (Kubernetes swaps the mounted Secret atomically), so tokens can be
 * rotated without restarting the gateway; a file that does not parse keeps the previous tokens in force.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { Principal, TokenAuthenticator } from "./ports.ts";

/** Shortest token accepted: 32 characters (e.g. `openssl rand -hex 16`). */
export const MIN_TOKEN_LENGTH = 32;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const SCOPE = /^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\/[a-z0-9]([-a-z0-9]*[a-z0-9])?)?)$/;

export class TokenFileError extends Error {
  override readonly name = "TokenFileError";
}

function digest(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64");
}

/** Tokens parsed from the file format above. */
export class TokenTable implements TokenAuthenticator {
  private constructor(private readonly byDigest: ReadonlyMap<string, Principal>) {}

  get size(): number {
    return this.byDigest.size;
  }

  /** @throws TokenFileError naming the line and what is wrong with it. */
  static parse(text: string, source = "tokens file"): TokenTable {
    const byDigest = new Map<string, Principal>();
    const names = new Set<string>();
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const where = `${source} line ${i + 1}`;
      const [name, token, scopeList, ...rest] = line.split(/\s+/);
      if (name === undefined || token === undefined || rest.length > 0) {
        throw new TokenFileError(`${where}: expected "<name> <token> [<scope>,...]"`);
      }
      if (!NAME.test(name))
        throw new TokenFileError(`${where}: name "${name}" must be 1-63 letters, digits, ".", "_" or "-"`);
      if (names.has(name)) throw new TokenFileError(`${where}: name "${name}" is used twice`);
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new TokenFileError(
          `${where}: the token of "${name}" is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)`,
        );
      }
      const scopes = (scopeList ?? "*").split(",");
      for (const scope of scopes) {
        if (!SCOPE.test(scope)) {
          throw new TokenFileError(
            `${where}: scope "${scope}" of "${name}" is not *, <namespace> or <namespace>/<orchestration>`,
          );
        }
      }
      const key = digest(token);
      if (byDigest.has(key))
        throw new TokenFileError(`${where}: the token of "${name}" is also another name's token`);
      names.add(name);
      byDigest.set(key, { name, scopes });
    });
    return new TokenTable(byDigest);
  }

  authenticate(token: string): Principal | undefined {
    return this.byDigest.get(digest(token));
  }

  async close(): Promise<void> {}
}

/** A {@link TokenTable} read from a file and re-read when the file changes. */
export class TokenFile implements TokenAuthenticator {
  private table: TokenTable;
  private mtimeMs: number;
  private readonly timer: NodeJS.Timeout;

  /** @throws TokenFileError when the file cannot be read or parsed at start (the gateway must not start). */
  constructor(
    private readonly path: string,
    private readonly opts: { checkIntervalMs?: number; onError?: (what: string, err: unknown) => void } = {},
  ) {
    try {
      this.mtimeMs = statSync(path).mtimeMs;
      this.table = TokenTable.parse(readFileSync(path, "utf8"), path);
    } catch (err) {
      if (err instanceof TokenFileError) throw err;
      throw new TokenFileError(`cannot read the tokens file ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (this.table.size === 0) {
      throw new TokenFileError(
        `the tokens file ${path} holds no token, so every request would be refused; add one (see docs/gateway.md)`,
      );
    }
    this.timer = setInterval(() => this.reloadIfChanged(), opts.checkIntervalMs ?? 10_000);
    this.timer.unref();
  }

  authenticate(token: string): Principal | undefined {
    return this.table.authenticate(token);
  }

  /** Re-reads the file when its modification time changed (public for tests). */
  reloadIfChanged(): void {
    try {
      const mtimeMs = statSync(this.path).mtimeMs;
      if (mtimeMs === this.mtimeMs) return;
      this.table = TokenTable.parse(readFileSync(this.path, "utf8"), this.path);
      this.mtimeMs = mtimeMs;
    } catch (err) {
      this.opts.onError?.(`reload tokens from ${this.path} (the previous tokens stay in force)`, err);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
  }
}

/** Whether `principal` may act on Orchestration `name` in `namespace`. */
export function mayAccess(principal: Principal, namespace: string, name: string): boolean {
  return principal.scopes.some((s) => s === "*" || s === namespace || s === `${namespace}/${name}`);
}

/** The principal of every request when authentication is off (`EVENTLOOM_GATEWAY_AUTH=none`). */
export const ANONYMOUS: Principal = { name: "anonymous", scopes: ["*"] };

/** The token of an `Authorization: Bearer <token>` header, or undefined (absent, or another scheme). */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return match?.[1];
}
