import { describe, expect, it } from "vitest";
import type { KubernetesObject } from "@kubernetes/client-node";
import { KubeApiError } from "../kube-client/errors.ts";
import type { WatchOptions } from "../kube-client/client.ts";
import type { WatchEvent } from "../kube-client/watch-lines.ts";
import { Watcher, backoffMs, slim, slimDeployment } from "./informer.ts";
import type { ListResult, WatchEventType } from "./informer.ts";

const obj = (name: string, rv: string, ns = "a"): KubernetesObject => ({
  metadata: { name, namespace: ns, resourceVersion: rv },
});

/** A scripted API: lists answer in turn; each watch call runs the next script against the handler. */
function fakeApi(
  lists: Array<ListResult<KubernetesObject>>,
  watches: Array<(emit: (ev: WatchEvent<KubernetesObject>) => void) => Promise<void>>,
) {
  const watchCalls: WatchOptions[] = [];
  let listCalls = 0;
  const idle = new Promise<void>(() => undefined);
  return {
    watchCalls,
    get listCalls() {
      return listCalls;
    },
    list: async () => {
      const l = lists[Math.min(listCalls, lists.length - 1)];
      listCalls++;
      return structuredClone(l as ListResult<KubernetesObject>);
    },
    client: {
      async watch<T>(_path: string, opts: WatchOptions, onEvent: (ev: WatchEvent<T>) => void): Promise<void> {
        watchCalls.push({ ...opts, signal: undefined });
        const script = watches.shift();
        if (!script) {
          // Nothing more to say: hang until stopped.
          await Promise.race([idle, new Promise((r) => opts.signal?.addEventListener("abort", r))]);
          return;
        }
        opts.onConnect?.();
        await script((ev) => onEvent(structuredClone(ev) as WatchEvent<T>));
      },
    },
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function watcher(api: ReturnType<typeof fakeApi>, extra: { onError?: () => void } = {}) {
  const events: string[] = [];
  const w = new Watcher(api.client, {
    kind: "Thing",
    apiVersion: "example.io/v1",
    path: "/apis/example.io/v1/things",
    list: api.list,
    resyncMs: 3_600_000,
    onEvent: (t: WatchEventType, o) => events.push(`${t}:${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    ...extra,
  });
  return { w, events };
}

describe("Watcher", () => {
  it("lists, then watches from the list's resourceVersion, keeping the cache and emitting events", async () => {
    const api = fakeApi(
      [{ metadata: { resourceVersion: "10" }, items: [obj("x", "5"), obj("y", "6", "b"), obj("k", "7")] }],
      [
        async (emit) => {
          emit({ type: "MODIFIED", object: obj("x", "11") });
          emit({ type: "ADDED", object: obj("z", "12") });
          emit({ type: "DELETED", object: obj("y", "13", "b") });
          emit({ type: "BOOKMARK", object: obj("", "14") });
        },
      ],
    );
    const { w, events } = watcher(api);
    await w.start();
    expect(w.hasSynced).toBe(true);
    await until(() => api.watchCalls.length === 2, "the watch to be resumed");
    await w.stop();
    expect(events).toEqual(["add:x@5", "add:y@6", "add:k@7", "update:x@11", "add:z@12", "delete:y@13"]);
    expect(api.watchCalls[0]?.resourceVersion).toBe("10");
    // The server ended the watch: it resumes from the bookmark, without a relist.
    expect(api.watchCalls[1]?.resourceVersion).toBe("14");
    expect(api.listCalls).toBe(1);
    expect(
      w
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(["k", "x", "z"]);
    expect(w.list("b")).toEqual([]);
    expect(w.get("a", "x")?.metadata?.resourceVersion).toBe("11");
    // Listed items get the kind and apiVersion the API server leaves out of list items.
    expect(w.get("a", "k")?.kind).toBe("Thing");
    expect(w.get("a", "k")?.apiVersion).toBe("example.io/v1");
  });

  it("relists on 410 Gone and turns the difference into add, update and delete events", async () => {
    const api = fakeApi(
      [
        {
          metadata: { resourceVersion: "10" },
          items: [obj("keep", "1"), obj("change", "2"), obj("gone", "3")],
        },
        {
          metadata: { resourceVersion: "50" },
          items: [obj("keep", "1"), obj("change", "40"), obj("new", "41")],
        },
      ],
      [
        async () => {
          throw new KubeApiError("WATCH /things", 410, { code: 410, reason: "Expired" });
        },
      ],
    );
    const errors: unknown[] = [];
    const { w, events } = watcher(api, { onError: () => errors.push(1) });
    await w.start();
    await until(() => api.watchCalls.length === 2, "the watch after the relist");
    await w.stop();
    expect(events).toEqual([
      "add:keep@1",
      "add:change@2",
      "add:gone@3",
      "update:change@40",
      "add:new@41",
      "delete:gone@3",
    ]);
    expect(api.watchCalls[1]?.resourceVersion).toBe("50");
    expect(errors).toEqual([]); // 410 is routine, not an error to report
  });

  it("reports a failing watch with a backoff and resumes from the last resourceVersion", async () => {
    const api = fakeApi(
      [{ metadata: { resourceVersion: "10" }, items: [] }],
      [
        async () => {
          throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
        },
      ],
    );
    const reported: number[] = [];
    const w = new Watcher(api.client, {
      kind: "Thing",
      apiVersion: "v1",
      path: "/x",
      list: api.list,
      onEvent: () => undefined,
      onError: (_k, _e, retryInMs) => reported.push(retryInMs),
    });
    await w.start();
    await until(() => api.watchCalls.length === 2, "the retry");
    await w.stop();
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeGreaterThanOrEqual(400);
    expect(reported[0]).toBeLessThanOrEqual(600);
    expect(api.watchCalls[1]?.resourceVersion).toBe("10");
    expect(api.listCalls).toBe(1);
  });

  it("retries a first list the server answers 429 to (storage initializing), then syncs", async () => {
    let calls = 0;
    const reported: string[] = [];
    const w = new Watcher(fakeApi([], []).client, {
      kind: "Thing",
      apiVersion: "v1",
      path: "/x",
      list: async () => {
        calls++;
        if (calls === 1) {
          throw new KubeApiError("GET /x", 429, {
            reason: "TooManyRequests",
            message: "storage is (re)initializing",
          });
        }
        return { metadata: { resourceVersion: "5" }, items: [] };
      },
      onEvent: () => undefined,
      onError: (_k, err) => reported.push(String((err as Error).message)),
    });
    await w.start();
    expect(w.hasSynced).toBe(true);
    expect(calls).toBe(2);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toContain("429");
    await w.stop();
  });

  it("fails start() when the first list is refused (403: RBAC)", async () => {
    const w = new Watcher(fakeApi([], []).client, {
      kind: "Thing",
      apiVersion: "v1",
      path: "/x",
      list: () => Promise.reject(new KubeApiError("GET /x", 403, { reason: "Forbidden" })),
      onEvent: () => undefined,
    });
    await expect(w.start()).rejects.toThrow(/403 Forbidden/);
    expect(w.hasSynced).toBe(false);
  });
});

describe("what the cache keeps", () => {
  it("drops managedFields and kubectl's last-applied annotation, and nothing else", () => {
    const o = slim({
      metadata: {
        name: "x",
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}", keep: "me" },
        managedFields: [{ manager: "kubectl" }],
        labels: { a: "b" },
      },
    });
    expect(o.metadata).toEqual({ name: "x", annotations: { keep: "me" }, labels: { a: "b" } });
  });

  it("keeps of a Deployment its metadata, replicas and status, not the pod template", () => {
    const d = slimDeployment({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "w", generation: 3, managedFields: [{ manager: "x" }] },
      spec: { replicas: 2, template: { spec: { containers: [] } }, selector: {} } as never,
      status: { readyReplicas: 1, replicas: 2 },
    });
    expect(d).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "w", generation: 3 },
      spec: { replicas: 2 },
      status: { readyReplicas: 1, replicas: 2 },
    });
  });

  it("keeps who owns a Deployment's replica count", () => {
    const d = slimDeployment({
      metadata: {
        name: "w",
        managedFields: [
          { manager: "eventloom-operator", operation: "Apply", fieldsV1: { "f:spec": { "f:template": {} } } },
          {
            manager: "eventloom-autoscaler",
            operation: "Update",
            fieldsV1: { "f:spec": { "f:replicas": {} } },
          },
        ],
      },
      spec: { replicas: 3 } as never,
    });
    expect(d.replicasOwners).toEqual(["eventloom-autoscaler/Update"]);
    expect(d.metadata?.managedFields).toBeUndefined();
  });

  it.each([
    [1, 500],
    [2, 1000],
    [6, 16_000],
    [7, 30_000],
    [20, 30_000],
  ])("backs off %i failure(s) by %i ms", (failures, ms) => {
    expect(backoffMs(failures)).toBe(ms);
  });
});
