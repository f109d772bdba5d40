/**
 * Where the API server is and how to authenticate to it: from a kubeconfig
 * (`$KUBECONFIG`, its first file, else `~/.kube/config`) or, in a pod, from the
 * service account. Only what the operator needs is supported: server, CA
 * (data or file), `insecure-skip-tls-verify`, `tls-server-name`, bearer token
 * (inline or `tokenFile`), client certificate and key (data or file), basic
 * auth. `exec` and `auth-provider` plugins are refused with a message saying so.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Bound service-account tokens rotate (kubelet refreshes the file); client-go re-reads it every minute. */
export const TOKEN_REREAD_MS = 60_000;

export interface KubeConnection {
  /** Base URL of the API server, e.g. `https://10.0.0.1:443` (no trailing slash). */
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify: boolean;
  /** SNI and certificate name to expect, when it differs from the server's host. */
  tlsServerName?: string;
  /** The `Authorization` header value, read when a request is made (tokens rotate). */
  authorization: () => string | undefined;
  /** The context's (or the service account's) namespace. */
  namespace?: string;
  /** Where this came from, for messages. */
  source: string;
}

export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
}

type Reader = (path: string) => Buffer;

interface Named<T> {
  name?: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

/** A file's contents, re-read at most every `everyMs` (a rotated token is picked up). */
export function rereadingFile(path: string, read: Reader, everyMs = TOKEN_REREAD_MS, now = Date.now) {
  let value = "";
  let readAt = -Infinity;
  return (): string => {
    if (now() - readAt >= everyMs) {
      try {
        value = read(path).toString("utf8").trim();
        readAt = now();
      } catch (err) {
        // Keep the last token if the file is briefly missing during a rotation.
        if (!value) throw new KubeConfigError(`cannot read token file ${path}: ${(err as Error).message}`);
      }
    }
    return value;
  };
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new KubeConfigError(`${what} is not a mapping`);
  return value as Record<string, unknown>;
}

function str(obj: Record<string, unknown>, key: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new KubeConfigError(`${key} is not a string`);
  return v;
}

function findNamed(list: unknown, name: string, field: "cluster" | "user" | "context", source: string) {
  const entries = Array.isArray(list) ? (list as Array<Named<unknown>>) : [];
  const found = entries.find((e) => e && e.name === name);
  if (!found) throw new KubeConfigError(`${source}: no ${field} named "${name}"`);
  return record(found[field], `${source}: ${field} "${name}"`);
}

/**
 * The connection a parsed kubeconfig describes for its current context (or
 * `context`). Relative file paths are relative to the kubeconfig's directory,
 * as kubectl resolves them.
 */
export function connectionFromKubeconfig(
  doc: unknown,
  opts: { path: string; read?: Reader; context?: string; now?: () => number },
): KubeConnection {
  const read = opts.read ?? readFileSync;
  const source = opts.path;
  const config = record(doc, source);
  const contextName = opts.context ?? str(config, "current-context");
  if (!contextName) throw new KubeConfigError(`${source}: no current-context`);
  const context = findNamed(config.contexts, contextName, "context", source);
  const clusterName = str(context, "cluster");
  const userName = str(context, "user");
  if (!clusterName) throw new KubeConfigError(`${source}: context "${contextName}" names no cluster`);
  const cluster = findNamed(config.clusters, clusterName, "cluster", source);
  const user = userName ? findNamed(config.users, userName, "user", source) : {};
  const file = (p: string) => read(isAbsolute(p) ? p : join(dirname(source), p));
  const dataOrFile = (obj: Record<string, unknown>, dataKey: string, fileKey: string): Buffer | undefined => {
    const data = str(obj, dataKey);
    if (data) return Buffer.from(data, "base64");
    const path = str(obj, fileKey);
    return path ? file(path) : undefined;
  };

  const server = str(cluster, "server");
  if (!server) throw new KubeConfigError(`${source}: cluster "${clusterName}" has no server`);
  if (user.exec !== undefined || user["auth-provider"] !== undefined) {
    throw new KubeConfigError(
      `${source}: user "${userName}" authenticates with an exec or auth-provider plugin, which the operator's ` +
        "client does not run; use a token, a tokenFile or a client certificate (or run it in-cluster)",
    );
  }
  if (str(cluster, "proxy-url")) {
    throw new KubeConfigError(`${source}: cluster "${clusterName}" uses proxy-url, which is not supported`);
  }

  const token = str(user, "token");
  const tokenFile = str(user, "tokenFile");
  const username = str(user, "username");
  const password = str(user, "password");
  let authorization: () => string | undefined = () => undefined;
  if (token) authorization = () => `Bearer ${token}`;
  else if (tokenFile) {
    const current = rereadingFile(
      isAbsolute(tokenFile) ? tokenFile : join(dirname(source), tokenFile),
      read,
      TOKEN_REREAD_MS,
      opts.now,
    );
    authorization = () => `Bearer ${current()}`;
  } else if (username !== undefined && password !== undefined) {
    const basic = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
    authorization = () => basic;
  }

  const namespace = str(context, "namespace");
  const tlsServerName = str(cluster, "tls-server-name");
  const ca = dataOrFile(cluster, "certificate-authority-data", "certificate-authority");
  const cert = dataOrFile(user, "client-certificate-data", "client-certificate");
  const key = dataOrFile(user, "client-key-data", "client-key");
  return {
    server: server.replace(/\/+$/, ""),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    ...(tlsServerName ? { tlsServerName } : {}),
    authorization,
    ...(namespace ? { namespace } : {}),
    source: `${source} (context ${contextName})`,
  };
}

/** The connection of a pod's service account. */
export function inClusterConnection(
  env: NodeJS.ProcessEnv,
  opts: { dir?: string; read?: Reader; now?: () => number } = {},
): KubeConnection {
  const dir = opts.dir ?? SERVICE_ACCOUNT_DIR;
  const read = opts.read ?? readFileSync;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new KubeConfigError("KUBERNETES_SERVICE_HOST/PORT are not set: not in a pod");
  const token = rereadingFile(join(dir, "token"), read, TOKEN_REREAD_MS, opts.now);
  let namespace: string | undefined;
  try {
    namespace = read(join(dir, "namespace")).toString("utf8").trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: read(join(dir, "ca.crt")),
    insecureSkipTlsVerify: false,
    authorization: () => `Bearer ${token()}`,
    ...(namespace ? { namespace } : {}),
    source: "in-cluster service account",
  };
}

/** Parses a kubeconfig file: JSON directly, YAML through the `yaml` package, loaded only then. */
export async function parseKubeconfigText(text: string): Promise<unknown> {
  if (text.trimStart().startsWith("{")) return JSON.parse(text);
  const { parse } = await import("yaml");
  return parse(text);
}

/** Which kubeconfig file to use: `$KUBECONFIG`'s first entry, else `~/.kube/config` if it exists. */
export function kubeconfigPath(
  env: NodeJS.ProcessEnv,
  exists = existsSync,
  home = homedir(),
): string | undefined {
  const first = (env.KUBECONFIG ?? "").split(delimiter).find((p) => p.trim() !== "");
  if (first) return first;
  const fallback = join(home, ".kube", "config");
  return exists(fallback) ? fallback : undefined;
}

/**
 * The connection the operator uses, in client-go's order: `$KUBECONFIG`,
 * `~/.kube/config`, then the in-cluster service account.
 */
export async function loadKubeConnection(env: NodeJS.ProcessEnv = process.env): Promise<KubeConnection> {
  const path = kubeconfigPath(env);
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new KubeConfigError(`cannot read kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
    }
    return connectionFromKubeconfig(await parseKubeconfigText(text), { path });
  }
  if (env.KUBERNETES_SERVICE_HOST) return inClusterConnection(env);
  throw new KubeConfigError(
    "no Kubernetes API to talk to: set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account",
  );
}
