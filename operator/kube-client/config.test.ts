import { describe, expect, it } from "vitest";
import {
  KubeConfigError,
  connectionFromKubeconfig,
  inClusterConnection,
  kubeconfigPath,
  parseKubeconfigText,
  rereadingFile,
} from "./config.ts";

/** A fake filesystem: path → contents; anything else is ENOENT. */
function files(contents: Record<string, string>) {
  const reads: string[] = [];
  const read = (path: string): Buffer => {
    reads.push(path);
    const c = contents[path];
    if (c === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    return Buffer.from(c);
  };
  return { read, reads };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, context: object = {}) {
  return {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "dev",
    clusters: [
      { name: "other", cluster: { server: "https://other:6443" } },
      { name: "c", cluster },
    ],
    users: [{ name: "u", user }],
    contexts: [
      { name: "elsewhere", context: { cluster: "other", user: "u" } },
      { name: "dev", context: { cluster: "c", user: "u", ...context } },
    ],
  };
}

describe("connectionFromKubeconfig", () => {
  const fs = files({
    "/home/me/.kube/ca.pem": "CA FROM FILE",
    "/abs/client.crt": "CERT FROM FILE",
    "/home/me/.kube/keys/client.key": "KEY FROM FILE",
    "/home/me/.kube/token": "token-from-file\n",
  });
  const path = "/home/me/.kube/config";

  it.each([
    {
      name: "inline CA data and a bearer token",
      cluster: { server: "https://api:6443/", "certificate-authority-data": b64("CA DATA") },
      user: { token: "abc" },
      expect: { server: "https://api:6443", ca: "CA DATA", auth: "Bearer abc", insecure: false },
    },
    {
      name: "a CA file relative to the kubeconfig's directory",
      cluster: { server: "https://api:6443", "certificate-authority": "ca.pem" },
      user: { token: "abc" },
      expect: { server: "https://api:6443", ca: "CA FROM FILE", auth: "Bearer abc", insecure: false },
    },
    {
      name: "a client certificate from an absolute file and a key from a relative one",
      cluster: { server: "https://api:6443", "insecure-skip-tls-verify": true },
      user: { "client-certificate": "/abs/client.crt", "client-key": "keys/client.key" },
      expect: {
        server: "https://api:6443",
        cert: "CERT FROM FILE",
        key: "KEY FROM FILE",
        auth: undefined,
        insecure: true,
      },
    },
    {
      name: "client certificate and key data",
      cluster: { server: "https://api:6443" },
      user: { "client-certificate-data": b64("CERT"), "client-key-data": b64("KEY") },
      expect: { server: "https://api:6443", cert: "CERT", key: "KEY", auth: undefined, insecure: false },
    },
    {
      name: "a token file (read trimmed)",
      cluster: { server: "https://api:6443" },
      user: { tokenFile: "token" },
      expect: { server: "https://api:6443", auth: "Bearer token-from-file", insecure: false },
    },
    {
      name: "basic auth",
      cluster: { server: "http://api:8080" },
      user: { username: "admin", password: "secret" },
      expect: { server: "http://api:8080", auth: `Basic ${b64("admin:secret")}`, insecure: false },
    },
    {
      name: "data taking precedence over a file",
      cluster: {
        server: "https://api",
        "certificate-authority-data": b64("DATA"),
        "certificate-authority": "x",
      },
      user: {},
      expect: { server: "https://api", ca: "DATA", auth: undefined, insecure: false },
    },
  ])("reads $name", ({ cluster, user, expect: want }) => {
    const conn = connectionFromKubeconfig(kubeconfig(cluster, user), { path, read: fs.read });
    expect(conn.server).toBe(want.server);
    expect(conn.ca?.toString()).toBe(want.ca);
    expect(conn.cert?.toString()).toBe(want.cert);
    expect(conn.key?.toString()).toBe(want.key);
    expect(conn.authorization()).toBe(want.auth);
    expect(conn.insecureSkipTlsVerify).toBe(want.insecure);
  });

  it("takes the context's namespace and tls-server-name", () => {
    const conn = connectionFromKubeconfig(
      kubeconfig(
        { server: "https://10.0.0.1", "tls-server-name": "kubernetes" },
        {},
        { namespace: "team-a" },
      ),
      { path, read: fs.read },
    );
    expect(conn.namespace).toBe("team-a");
    expect(conn.tlsServerName).toBe("kubernetes");
    expect(conn.source).toBe("/home/me/.kube/config (context dev)");
  });

  it("uses another context when asked", () => {
    const conn = connectionFromKubeconfig(kubeconfig({ server: "https://api" }, {}), {
      path,
      read: fs.read,
      context: "elsewhere",
    });
    expect(conn.server).toBe("https://other:6443");
  });

  it.each([
    {
      name: "no current-context",
      doc: { ...kubeconfig({ server: "https://a" }, {}), "current-context": "" },
      error: /no current-context/,
    },
    {
      name: "a context that does not exist",
      doc: { ...kubeconfig({ server: "https://a" }, {}), "current-context": "nope" },
      error: /no context named "nope"/,
    },
    { name: "a cluster without server", doc: kubeconfig({}, {}), error: /has no server/ },
    {
      name: "an exec plugin",
      doc: kubeconfig({ server: "https://a" }, { exec: { command: "aws" } }),
      error: /exec or auth-provider/,
    },
    {
      name: "an auth-provider",
      doc: kubeconfig({ server: "https://a" }, { "auth-provider": { name: "oidc" } }),
      error: /exec or auth-provider/,
    },
    {
      name: "a proxy-url",
      doc: kubeconfig({ server: "https://a", "proxy-url": "http://p:3128" }, {}),
      error: /proxy-url/,
    },
    { name: "a document that is not a mapping", doc: "just text", error: /not a mapping/ },
  ])("refuses $name with a KubeConfigError", ({ doc, error }) => {
    expect(() => connectionFromKubeconfig(doc, { path, read: fs.read })).toThrow(KubeConfigError);
    expect(() => connectionFromKubeconfig(doc, { path, read: fs.read })).toThrow(error);
  });
});

describe("parseKubeconfigText", () => {
  it.each([
    {
      name: "YAML as kubectl writes it",
      text: "apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://a:6443\ncurrent-context: dev\n",
    },
    {
      name: "JSON",
      text: '{"apiVersion":"v1","clusters":[{"name":"c","cluster":{"server":"https://a:6443"}}],"current-context":"dev"}',
    },
  ])("parses $name", async ({ text }) => {
    const doc = (await parseKubeconfigText(text)) as { clusters: Array<{ cluster: { server: string } }> };
    expect(doc.clusters[0]?.cluster.server).toBe("https://a:6443");
  });
});

describe("kubeconfigPath", () => {
  it.each([
    { name: "KUBECONFIG's only file", env: { KUBECONFIG: "/a/config" }, exists: false, want: "/a/config" },
    {
      name: "KUBECONFIG's first file of several",
      env: { KUBECONFIG: "/a/one:/a/two" },
      exists: false,
      want: "/a/one",
    },
    {
      name: "KUBECONFIG's first non-empty entry",
      env: { KUBECONFIG: ":/a/two" },
      exists: false,
      want: "/a/two",
    },
    { name: "~/.kube/config when it exists", env: {}, exists: true, want: "/home/me/.kube/config" },
    { name: "nothing (in-cluster next)", env: {}, exists: false, want: undefined },
  ])("chooses $name", ({ env, exists, want }) => {
    expect(kubeconfigPath(env, () => exists, "/home/me")).toBe(want);
  });
});

describe("inClusterConnection", () => {
  const dir = "/sa";
  const sa = () =>
    files({ "/sa/token": "tok-1\n", "/sa/ca.crt": "CLUSTER CA", "/sa/namespace": "eventloom-system" });

  it.each([
    { host: "10.96.0.1", port: "443", server: "https://10.96.0.1:443" },
    { host: "fd00::1", port: "443", server: "https://[fd00::1]:443" },
  ])("builds the server URL of $host", ({ host, port, server }) => {
    const conn = inClusterConnection(
      { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port },
      {
        dir,
        read: sa().read,
      },
    );
    expect(conn.server).toBe(server);
    expect(conn.ca?.toString()).toBe("CLUSTER CA");
    expect(conn.namespace).toBe("eventloom-system");
    expect(conn.authorization()).toBe("Bearer tok-1");
  });

  it("refuses to run outside a pod", () => {
    expect(() => inClusterConnection({}, { dir, read: sa().read })).toThrow(/not in a pod/);
  });
});

describe("rereadingFile", () => {
  it("re-reads a rotated token only after the interval, and keeps the last one while the file is missing", () => {
    let now = 0;
    const contents: Record<string, string> = { "/t": "one" };
    const fs = files(contents);
    const token = rereadingFile("/t", fs.read, 60_000, () => now);
    expect(token()).toBe("one");
    contents["/t"] = "two";
    now = 59_999;
    expect(token()).toBe("one");
    now = 60_000;
    expect(token()).toBe("two");
    delete contents["/t"];
    now = 200_000;
    expect(token()).toBe("two");
    expect(fs.reads).toHaveLength(3);
  });

  it("fails with the path when the token was never readable", () => {
    const token = rereadingFile("/missing", files({}).read);
    expect(() => token()).toThrow(/cannot read token file \/missing/);
  });
});
