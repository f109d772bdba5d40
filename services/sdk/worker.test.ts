import { describe, expect, it } from "vitest";
import { isNonRetryable, NonRetryableError, WorkerConfigError } from "./errors.ts";
import { defineWorker, handlersFor } from "./worker.ts";
import type { WorkerSpec } from "./worker.ts";

const handle = () => ({ ok: true });

describe("defineWorker", () => {
  it("finds a step's handlers, and the top-level handle for any other step", () => {
    const worker = defineWorker({ steps: { "create-order": { handle } }, handle: () => "fallback" });
    expect(handlersFor(worker, "create-order")?.handle).toBe(handle);
    expect(handlersFor(worker, "cancel-order")?.handle({} as never)).toBe("fallback");
  });

  it("has no handlers for an unknown step without a top-level handle", () => {
    expect(handlersFor(defineWorker({ steps: { "create-order": { handle } } }), "ship")).toBeUndefined();
  });

  it.each<[string, WorkerSpec, RegExp]>([
    ["no steps and no handle", {}, /needs `steps`/],
    ["a step name with capitals", { steps: { createOrder: { handle } } }, /not a valid step name/],
    ["a step without handle", { steps: { "create-order": {} as never } }, /no handle\(ctx\)/],
    [
      "a compensate that is not a function",
      { steps: { "create-order": { handle, compensate: 1 as never } } },
      /compensate must be a function/,
    ],
    [
      "a top-level compensate alone",
      { steps: { a: { handle } }, compensate: handle },
      /top-level compensate/,
    ],
  ])("refuses %s", (_what, spec, message) => {
    expect(() => defineWorker(spec)).toThrow(WorkerConfigError);
    expect(() => defineWorker(spec)).toThrow(message);
  });
});

describe("NonRetryableError", () => {
  it.each([
    ["itself", new NonRetryableError("declined"), true],
    ["an error caused by one", new Error("wrapped", { cause: new NonRetryableError("declined") }), true],
    ["a plain error", new Error("timeout"), false],
    ["a string", "nope", false],
  ])("is recognized in %s", (_what, err, expected) => {
    expect(isNonRetryable(err)).toBe(expected);
  });

  it("carries the name it is given as the error type", () => {
    expect(new NonRetryableError("declined", { name: "PaymentDeclined" }).name).toBe("PaymentDeclined");
    expect(new NonRetryableError("declined").name).toBe("NonRetryableError");
  });
});
