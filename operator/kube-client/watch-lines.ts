/**
 * Framing of a watch stream: the API server sends one JSON object per line
 * (`{"type":"ADDED","object":{...}}`), and a chunk of the HTTP body can end
 * anywhere, inside a line or inside a multi-byte UTF-8 character.
 */
import { StringDecoder } from "node:string_decoder";
import type { ApiStatus } from "./errors.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent<T = unknown> {
  type: WatchEventType;
  /** The object; for ERROR, a Status. */
  object: T;
}

/** Splits a byte stream into complete lines; keeps the incomplete tail for the next chunk. */
export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private tail = "";

  constructor(private readonly maxLineBytes = 64 * 1024 * 1024) {}

  /** The lines completed by `chunk`, without their `\n` (or `\r\n`); blank lines are skipped. */
  push(chunk: Buffer | string): string[] {
    const text = this.tail + (typeof chunk === "string" ? chunk : this.decoder.write(chunk));
    const parts = text.split("\n");
    this.tail = parts.pop() ?? "";
    if (this.tail.length > this.maxLineBytes) {
      throw new Error(`watch line longer than ${this.maxLineBytes} characters without a newline`);
    }
    return parts.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l)).filter((l) => l.trim() !== "");
  }

  /** What is left when the stream ends: a last line without a newline, if any. */
  end(): string[] {
    const rest = (this.tail + this.decoder.end()).trim();
    this.tail = "";
    return rest ? [rest] : [];
  }
}

const TYPES = new Set<string>(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

/** One line of a watch stream as an event; throws on anything else (the stream is then unusable). */
export function parseWatchLine<T>(line: string): WatchEvent<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new Error(`watch stream sent a line that is not JSON: ${line.slice(0, 200)}`, { cause: err });
  }
  const ev = parsed as { type?: unknown; object?: unknown };
  if (typeof ev !== "object" || ev === null || typeof ev.type !== "string" || !TYPES.has(ev.type)) {
    throw new Error(`watch stream sent an unknown event: ${line.slice(0, 200)}`);
  }
  if (typeof ev.object !== "object" || ev.object === null) {
    throw new Error(`watch event ${ev.type} has no object`);
  }
  return ev as WatchEvent<T>;
}

/** The Status of an ERROR event, e.g. `{code: 410, reason: "Expired"}` when the resourceVersion is too old. */
export function watchErrorStatus(ev: WatchEvent): ApiStatus {
  return ev.object as ApiStatus;
}
