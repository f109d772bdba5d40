import { describe, expect, it } from "vitest";
import {
  InvalidDurationError,
  InvalidRetryPolicyError,
  parseDuration,
  retryDelaysMs,
  retryTiersMs,
} from "./retry.ts";
import type { RetryPolicy } from "../../operator/crds/types.ts";

describe("parseDuration", () => {
  it.each([
    ["milliseconds", "500ms", 500],
    ["seconds", "30s", 30_000],
    ["minutes", "2m", 120_000],
    ["hours", "168h", 604_800_000],
    ["a compound duration", "1h30m5s250ms", 5_405_250],
    ["zero", "0s", 0],
  ])("reads %s", (_name, input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([
    ["a bare number", "10"],
    ["a fraction", "1.5s"],
    ["a negative duration", "-1s"],
    ["an unknown unit", "1d"],
    ["an empty string", ""],
    ["spaces", "1s 2s"],
  ])("refuses %s with a message naming the field", (_name, input) => {
    expect(() => parseDuration(input, "retry.maxBackoff")).toThrow(InvalidDurationError);
    expect(() => parseDuration(input, "retry.maxBackoff")).toThrow(
      `retry.maxBackoff "${input}" is not a duration`,
    );
  });
});

describe("retryDelaysMs", () => {
  it.each<[string, RetryPolicy | undefined, number[]]>([
    ["default to seed 001's 1 s, 2 s, 4 s without a policy", undefined, [1000, 2000, 4000]],
    ["default to seed 001's timeline for an empty policy", {}, [1000, 2000, 4000]],
    ["dead-letter at once with zero attempts", { attempts: 0 }, []],
    ["repeat the cap once maxBackoff is reached", { attempts: 5 }, [1000, 2000, 4000, 4000, 4000]],
    [
      "grow by the multiplier",
      { attempts: 4, initialBackoff: "100ms", multiplier: 3, maxBackoff: "10s" },
      [100, 300, 900, 2700],
    ],
    [
      "keep a constant delay with multiplier 1",
      { attempts: 3, initialBackoff: "5s", multiplier: 1, maxBackoff: "5s" },
      [5000, 5000, 5000],
    ],
    [
      "round fractional growth to whole ms",
      { attempts: 3, initialBackoff: "1s", multiplier: 1.5, maxBackoff: "1m" },
      [1000, 1500, 2250],
    ],
    [
      "round 1.1^n to whole ms",
      { attempts: 3, initialBackoff: "3ms", multiplier: 1.1, maxBackoff: "1s" },
      [3, 3, 4],
    ],
    ["use explicit tiers as given", { attempts: 2, tiers: ["10s", "1m"] }, [10_000, 60_000]],
    ["take attempts from tiers when attempts is omitted", { tiers: ["1s", "1s"] }, [1000, 1000]],
    [
      "fill missing fields from the defaults one by one",
      { maxBackoff: "1m", attempts: 4 },
      [1000, 2000, 4000, 8000],
    ],
  ])("%s", (_name, policy, delays) => {
    expect(retryDelaysMs(policy)).toEqual(delays);
  });

  it.each<[string, RetryPolicy, string]>([
    ["negative attempts", { attempts: -1 }, "attempts is -1; use a whole number from 0 to 20"],
    ["fractional attempts", { attempts: 1.5 }, "attempts is 1.5"],
    ["too many attempts", { attempts: 21 }, "from 0 to 20"],
    ["a multiplier below 1", { multiplier: 0.5 }, "multiplier is 0.5; use a number of at least 1"],
    [
      "maxBackoff below initialBackoff",
      { initialBackoff: "2s", maxBackoff: "1s" },
      "maxBackoff (1s) is shorter than initialBackoff (2s)",
    ],
    ["a zero delay", { initialBackoff: "0s" }, 'initialBackoff is "0s"; a retry delay must be at least 1ms'],
    [
      "a malformed duration",
      { initialBackoff: "1 second" },
      'step "charge": initialBackoff "1 second" is not a duration',
    ],
    [
      "tiers that do not match attempts",
      { attempts: 3, tiers: ["1s"] },
      "tiers lists 1 delays but attempts is 3",
    ],
    ["a malformed tier", { attempts: 1, tiers: ["soon"] }, 'tiers[0] "soon" is not a duration'],
  ])("refuse %s with InvalidRetryPolicy", (_name, policy, message) => {
    expect(() => retryDelaysMs(policy, 'step "charge"')).toThrow(InvalidRetryPolicyError);
    expect(() => retryDelaysMs(policy, 'step "charge"')).toThrow(message);
  });

  it("sets a condition-ready reason on its error", () => {
    expect(() => retryDelaysMs({ attempts: -1 })).toThrow(
      expect.objectContaining({ reason: "InvalidRetryPolicy" }),
    );
  });
});

describe("retryTiersMs", () => {
  it.each<[string, (RetryPolicy | undefined)[], number[]]>([
    ["share the default tiers between steps", [undefined, {}, { attempts: 3 }], [1000, 2000, 4000]],
    [
      "merge different policies into one ascending list",
      [{ attempts: 1, initialBackoff: "30s", maxBackoff: "30s" }, undefined],
      [1000, 2000, 4000, 30_000],
    ],
    ["need no tiers when no step retries", [{ attempts: 0 }, { attempts: 0 }], []],
    ["need no tiers without steps", [], []],
  ])("%s", (_name, policies, tiers) => {
    expect(retryTiersMs(policies.map((policy) => ({ policy })))).toEqual(tiers);
  });
});
