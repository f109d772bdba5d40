/**
 * A small Kubernetes API client for the operator: JSON requests over
 * node:https (or node:http) with one keep-alive Agent of bounded sockets,
 * the patch content types the operator uses, deadlines, and streaming
 * watches. It replaces @kubernetes/client-node in the operator process, whose
 * generated API and model classes cost ~80 MiB of RSS when imported.
 */
import * as http from "node:http";
import * as https from "node:https";
import type { IncomingMessage } from "node:http";
import type { KubeConnection } from "./config.ts";
import { KubeApiError, KubeTimeoutError, parseStatusBody } from "./errors.ts";
import { LineSplitter, parseWatchLine, watchErrorStatus } from "./watch-lines.ts";
import type { WatchEvent } from "./watch-lines.ts";

export const CONTENT_TYPE = {
  json: "application/json",
  mergePatch: "application/merge-patch+json",
  jsonPatch: "application/json-patch+json",
  strategicMergePatch: "application/strategic-merge-patch+json",
  /** Server-side apply; a JSON body is valid YAML, so no YAML serializer is needed. */
  apply: "application/apply-patch+yaml",
} as const;

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Query;
  body?: unknown;
  /** Content type of the body (default JSON). */
  contentType?: string;
  /** Deadline for the whole request (default the client's). */
  timeoutMs?: number;
}

/**
 * The verb and resource of a request, as the API server's own metrics name
 * them (`apiserver_request_total`): get/list/watch/create/update/patch/apply/
 * delete, and e.g. `secrets` or `orchestrations/status`.
 */
export function requestKind(
  method: string,
  path: string,
  contentType?: string,
): { verb: string; resource: string } {
  // /api/v1[/namespaces/<ns>]/<plural>[/<name>[/<sub>]] or /apis/<group>/<version>[/namespaces/<ns>]/<plural>...
  const parts = path.split("?")[0]?.split("/").filter(Boolean) ?? [];
  let rest = parts.slice(parts[0] === "api" ? 2 : 3);
  if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
  const [plural = "", name, sub] = rest;
  const resource = sub ? `${plural}/${sub}` : plural;
  const verb =
    method === "GET"
      ? name === undefined
        ? "list"
        : "get"
      : method === "POST"
        ? "create"
        : method === "PUT"
          ? "update"
          : method === "DELETE"
            ? "delete"
            : contentType === CONTENT_TYPE.apply
              ? "apply"
              : "patch";
  return { verb, resource };
}

export interface KubeClientOptions {
  /** Sockets per API server for ordinary requests (default 32); watches use their own. */
  maxSockets?: number;
  /** Default deadline of a request (default 30 s). */
  timeoutMs?: number;
  userAgent?: string;
}

export interface WatchOptions {
  resourceVersion?: string;
  labelSelector?: string;
  /** Server-side timeout of the watch; the server then ends it cleanly (default 5–10 min, random). */
  timeoutSeconds?: number;
  signal?: AbortSignal;
  /** Called once the server accepted the watch (headers received). */
  onConnect?: () => void;
}

export function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

export class KubeClient {
  private readonly url: URL;
  private readonly transport: typeof https | typeof http;
  private readonly agent: http.Agent;
  /** Watches hold their connection for minutes; they get an agent of their own so they never starve requests. */
  private readonly watchAgent: http.Agent;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  /** Called once per ordinary request sent (not watches), e.g. to count them by verb and resource. */
  onRequest: ((verb: string, resource: string) => void) | undefined;

  constructor(
    readonly connection: KubeConnection,
    opts: KubeClientOptions = {},
  ) {
    this.url = new URL(connection.server);
    const secure = this.url.protocol === "https:";
    this.transport = secure ? https : http;
    const tls: https.AgentOptions = secure
      ? {
          ...(connection.ca ? { ca: connection.ca } : {}),
          ...(connection.cert ? { cert: connection.cert } : {}),
          ...(connection.key ? { key: connection.key } : {}),
          rejectUnauthorized: !connection.insecureSkipTlsVerify,
          ...(connection.tlsServerName ? { servername: connection.tlsServerName } : {}),
        }
      : {};
    const Agent = secure ? https.Agent : http.Agent;
    // As many idle sockets kept as may be open: with fewer, each burst after a lull closes the surplus
    // and the next opens new ones, a TLS handshake each on both sides. (Socket writes, TLS included,
    // took 34 s of the operator's CPU in a 1,000-Orchestration run with 16 sockets of which 4 were kept.)
    const maxSockets = opts.maxSockets ?? 32;
    this.agent = new Agent({ ...tls, keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    this.watchAgent = new Agent({ ...tls, keepAlive: false });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.userAgent = opts.userAgent ?? "eventloom-operator";
  }

  /** Sends one request and resolves with its parsed JSON body; rejects with KubeApiError on ≥ 400. */
  async request<T>(opts: RequestOptions): Promise<T> {
    const method = opts.method ?? "GET";
    const path = `${opts.path}${queryString(opts.query)}`;
    const what = `${method} ${opts.path}`;
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    if (this.onRequest) {
      const { verb, resource } = requestKind(method, opts.path, opts.contentType);
      this.onRequest(verb, resource);
    }
    const res = await this.send(method, path, what, payload, opts.contentType, this.agent, timeoutMs);
    const text = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      res.on("error", reject);
      res.on("aborted", () => reject(new Error(`${what}: connection closed mid-answer`)));
    });
    const status = res.statusCode ?? 0;
    if (status >= 400) throw new KubeApiError(what, status, parseStatusBody(text));
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new Error(`${what}: answer is not JSON: ${text.slice(0, 200)}`, { cause: err });
    }
  }

  /**
   * Watches a collection (`path` is the list path) from `resourceVersion` with
   * bookmarks, calling `onEvent` for every event in order. Resolves when the
   * server ends the watch (its timeout) or `signal` aborts; rejects with
   * KubeApiError when the server refuses it or sends an ERROR event (410 Gone:
   * the resourceVersion is too old, relist) and on broken connections.
   */
  async watch<T>(path: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Promise<void> {
    const timeoutSeconds = opts.timeoutSeconds ?? Math.floor(300 + Math.random() * 300);
    const query: Query = {
      watch: 1,
      allowWatchBookmarks: true,
      timeoutSeconds,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
    };
    const what = `WATCH ${path}`;
    if (opts.signal?.aborted) return;
    const controller = new AbortController();
    const abort = () => controller.abort();
    opts.signal?.addEventListener("abort", abort, { once: true });
    try {
      // The deadline covers the headers only; the stream itself lasts up to timeoutSeconds.
      const res = await this.send(
        "GET",
        `${path}${queryString(query)}`,
        what,
        undefined,
        undefined,
        this.watchAgent,
        this.timeoutMs,
        controller.signal,
      );
      if ((res.statusCode ?? 0) >= 400) {
        const text = await new Promise<string>((resolve) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
          res.on("error", () => resolve(Buffer.concat(chunks).toString("utf8")));
        });
        throw new KubeApiError(what, res.statusCode ?? 0, parseStatusBody(text));
      }
      opts.onConnect?.();
      await consumeWatch(res, what, controller, onEvent, (timeoutSeconds + 30) * 1000);
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw err;
    } finally {
      opts.signal?.removeEventListener("abort", abort);
    }
  }

  /** Closes idle connections (for shutdown). */
  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
  }

  private send(
    method: string,
    path: string,
    what: string,
    payload: Buffer | undefined,
    contentType: string | undefined,
    agent: http.Agent,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const headers: http.OutgoingHttpHeaders = {
      Accept: CONTENT_TYPE.json,
      "User-Agent": this.userAgent,
    };
    const authorization = this.connection.authorization();
    if (authorization) headers.Authorization = authorization;
    if (payload) {
      headers["Content-Type"] = contentType ?? CONTENT_TYPE.json;
      headers["Content-Length"] = payload.length;
    }
    const base = this.url.pathname.replace(/\/+$/, "");
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.transport.request({
        protocol: this.url.protocol,
        hostname: this.url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: this.url.port || (this.url.protocol === "https:" ? 443 : 80),
        method,
        path: `${base}${path}`,
        headers,
        agent,
        ...(signal ? { signal } : {}),
      });
      const timer = setTimeout(() => req.destroy(new KubeTimeoutError(what, timeoutMs)), timeoutMs);
      req.once("response", (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      req.on("error", (err) => {
        clearTimeout(timer);
        reject(
          err instanceof KubeTimeoutError ? err : Object.assign(err, { message: `${what}: ${err.message}` }),
        );
      });
      req.end(payload);
    }).then((res) => {
      // A request deadline also bounds reading the body of an ordinary answer.
      if (agent === this.agent) {
        const timer = setTimeout(() => res.destroy(new KubeTimeoutError(what, timeoutMs)), timeoutMs);
        res.once("close", () => clearTimeout(timer));
      }
      return res;
    });
  }
}

/** Reads a watch body to its end, framing lines into events; ERROR events reject. */
function consumeWatch<T>(
  res: IncomingMessage,
  what: string,
  controller: AbortController,
  onEvent: (ev: WatchEvent<T>) => void,
  idleMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const lines = new LineSplitter();
    let settled = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (idle) clearTimeout(idle);
      if (err) {
        controller.abort();
        res.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      } else resolve();
    };
    // Bookmarks arrive about once a minute: a silent stream past the server's own timeout is dead.
    const armIdle = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => finish(new KubeTimeoutError(what, idleMs)), idleMs);
      idle.unref();
    };
    const handle = (line: string) => {
      const ev = parseWatchLine<T>(line);
      if (ev.type === "ERROR") {
        const status = watchErrorStatus(ev);
        throw new KubeApiError(what, status.code ?? 500, status);
      }
      onEvent(ev);
    };
    armIdle();
    res.on("data", (chunk: Buffer) => {
      if (settled) return;
      armIdle();
      try {
        for (const line of lines.push(chunk)) handle(line);
      } catch (err) {
        finish(err);
      }
    });
    res.on("end", () => {
      try {
        for (const line of lines.end()) handle(line);
        finish();
      } catch (err) {
        finish(err);
      }
    });
    res.on("error", (err) => finish(controller.signal.aborted ? undefined : err));
    res.on("aborted", () =>
      finish(controller.signal.aborted ? undefined : new Error(`${what}: connection closed`)),
    );
    res.on("close", () =>
      finish(controller.signal.aborted ? undefined : new Error(`${what}: connection closed`)),
    );
  });
}
