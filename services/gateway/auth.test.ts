import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bearerToken, mayAccess, TokenFile, TokenFileError, TokenTable } from "./auth.ts";

const T1 = "a".repeat(32);
const T2 = "b".repeat(40);

describe("TokenTable.parse", () => {
  it("reads names, tokens and scopes, skipping comments and blank lines", () => {
    const table = TokenTable.parse(
      `# name token scopes\n\nshop-web ${T1} shop,billing/invoices\n  ops   ${T2}  \n`,
    );
    expect(table.size).toBe(2);
    expect(table.authenticate(T1)).toEqual({ name: "shop-web", scopes: ["shop", "billing/invoices"] });
    expect(table.authenticate(T2)).toEqual({ name: "ops", scopes: ["*"] });
    expect(table.authenticate("c".repeat(32))).toBeUndefined();
  });

  it.each([
    ["a line without a token", "lonely", /line 1: expected/],
    ["a short token", "web short", /at least 32/],
    ["a name used twice", `a ${T1}\na ${T2}`, /line 2: name "a" is used twice/],
    ["a token used twice", `a ${T1}\nb ${T1}`, /line 2: .*also another name's token/],
    ["a bad scope", `a ${T1} Shop`, /scope "Shop"/],
    ["a bad name", `a/b ${T1}`, /name "a\/b"/],
    ["extra fields", `a ${T1} * extra`, /expected/],
  ])("refuses %s, naming the line", (_name, text, message) => {
    expect(() => TokenTable.parse(text)).toThrow(TokenFileError);
    expect(() => TokenTable.parse(text)).toThrow(message);
  });
});

describe("mayAccess", () => {
  it.each([
    [["*"], "shop", "orders", true],
    [["shop"], "shop", "orders", true],
    [["shop/orders"], "shop", "orders", true],
    [["shop/orders"], "shop", "saga", false],
    [["billing"], "shop", "orders", false],
  ])("scopes %j on %s/%s: %s", (scopes, ns, name, allowed) => {
    expect(mayAccess({ name: "t", scopes }, ns, name)).toBe(allowed);
  });
});

describe("bearerToken", () => {
  it.each([
    ["Bearer abc", "abc"],
    ["bearer   abc  ", "abc"],
    ["Basic abc", undefined],
    ["Bearer", undefined],
    [undefined, undefined],
  ])("%s -> %s", (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});

describe("TokenFile", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("picks up a rotated file and keeps the old tokens when the new file is broken", async () => {
    dir = mkdtempSync(join(tmpdir(), "gw-tokens-"));
    const path = join(dir, "tokens");
    writeFileSync(path, `web ${T1}\n`);
    const errors: string[] = [];
    const file = new TokenFile(path, { checkIntervalMs: 3_600_000, onError: (what) => errors.push(what) });
    expect(file.authenticate(T1)?.name).toBe("web");
    writeFileSync(path, `web ${T2}\n`);
    utimesSync(path, new Date(), new Date(Date.now() + 5_000));
    file.reloadIfChanged();
    expect(file.authenticate(T1)).toBeUndefined();
    expect(file.authenticate(T2)?.name).toBe("web");
    writeFileSync(path, "broken\n");
    utimesSync(path, new Date(), new Date(Date.now() + 10_000));
    file.reloadIfChanged();
    expect(file.authenticate(T2)?.name).toBe("web");
    expect(errors).toHaveLength(1);
    await file.close();
  });

  it("refuses to start on a missing or empty file", () => {
    const here = mkdtempSync(join(tmpdir(), "gw-tokens-"));
    dir = here;
    expect(() => new TokenFile(join(here, "missing"))).toThrow(/cannot read the tokens file/);
    writeFileSync(join(here, "empty"), "# nothing\n");
    expect(() => new TokenFile(join(here, "empty"))).toThrow(/holds no token/);
  });
});
