import { describe, expect, it } from "vitest";
import { LineSplitter, parseWatchLine } from "./watch-lines.ts";

const ev = (type: string, name: string) => JSON.stringify({ type, object: { metadata: { name } } });

describe("LineSplitter", () => {
  it.each([
    { name: "one line per chunk", chunks: [`${ev("ADDED", "a")}\n`, `${ev("ADDED", "b")}\n`], lines: 2 },
    { name: "two lines in one chunk", chunks: [`${ev("ADDED", "a")}\n${ev("DELETED", "a")}\n`], lines: 2 },
    {
      name: "a line split across three chunks",
      chunks: [
        ev("ADDED", "a").slice(0, 5),
        ev("ADDED", "a").slice(5, 20),
        `${ev("ADDED", "a").slice(20)}\n`,
      ],
      lines: 1,
    },
    { name: "CRLF line ends", chunks: [`${ev("ADDED", "a")}\r\n${ev("ADDED", "b")}\r\n`], lines: 2 },
    { name: "blank keep-alive lines", chunks: ["\n", `${ev("ADDED", "a")}\n`, "\n\n"], lines: 1 },
    {
      name: "a chunk ending inside a line (held back)",
      chunks: [`${ev("ADDED", "a")}\n{"type":"ADD`],
      lines: 1,
    },
  ])("frames $name", ({ chunks, lines }) => {
    const s = new LineSplitter();
    const out = chunks.flatMap((c) => s.push(Buffer.from(c)));
    expect(out).toHaveLength(lines);
    for (const line of out) expect(() => parseWatchLine(line)).not.toThrow();
  });

  it("keeps a multi-byte character split between chunks intact", () => {
    const line = `${JSON.stringify({ type: "ADDED", object: { metadata: { name: "é€😀" } } })}\n`;
    const bytes = Buffer.from(line);
    const cut = bytes.indexOf(Buffer.from("€")) + 1; // inside the 3-byte €
    const s = new LineSplitter();
    const out = [...s.push(bytes.subarray(0, cut)), ...s.push(bytes.subarray(cut))];
    expect(parseWatchLine<{ metadata: { name: string } }>(out[0] ?? "").object.metadata.name).toBe("é€😀");
  });

  it("returns a last line without newline at the end of the stream", () => {
    const s = new LineSplitter();
    expect(s.push(ev("BOOKMARK", "x"))).toEqual([]);
    expect(s.end()).toEqual([ev("BOOKMARK", "x")]);
    expect(s.end()).toEqual([]);
  });

  it("refuses an endless line", () => {
    const s = new LineSplitter(16);
    expect(() => s.push("x".repeat(17))).toThrow(/longer than 16/);
  });
});

describe("parseWatchLine", () => {
  it.each(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"])("accepts %s", (type) => {
    expect(parseWatchLine(ev(type, "a")).type).toBe(type);
  });

  it.each([
    { name: "text that is not JSON", line: "<html>", error: /not JSON/ },
    { name: "an unknown type", line: ev("UPSERTED", "a"), error: /unknown event/ },
    { name: "an event without object", line: '{"type":"ADDED"}', error: /has no object/ },
    { name: "a JSON array", line: "[1,2]", error: /unknown event/ },
  ])("refuses $name", ({ line, error }) => {
    expect(() => parseWatchLine(line)).toThrow(error);
  });
});
