import { describe, expect, it } from "vitest";
import { configFromEnv, GATEWAY_DEFAULTS } from "./config.ts";

describe("configFromEnv", () => {
  it("has named defaults and needs a tokens file when auth is on", () => {
    expect(() => configFromEnv({})).toThrow(/EVENTLOOM_GATEWAY_TOKENS_FILE is not set/);
    const config = configFromEnv({ EVENTLOOM_GATEWAY_TOKENS_FILE: "/var/run/eventloom/tokens" });
    expect(config).toMatchObject({
      port: 8080,
      auth: "token",
      bodyLimitBytes: GATEWAY_DEFAULTS.bodyLimitBytes,
      idempotencyWindowMs: 600_000,
    });
  });

  it("reads overrides, durations included", () => {
    const config = configFromEnv({
      EVENTLOOM_GATEWAY_AUTH: "none",
      PORT: "9090",
      EVENTLOOM_GATEWAY_BODY_LIMIT: "2048",
      EVENTLOOM_GATEWAY_RATE_LIMIT: "50",
      EVENTLOOM_GATEWAY_RATE_LIMIT_WINDOW: "1m",
      EVENTLOOM_GATEWAY_IDEMPOTENCY_WINDOW: "1h",
      EVENTLOOM_NAMESPACE: "shop",
    });
    expect(config).toMatchObject({
      auth: "none",
      port: 9090,
      bodyLimitBytes: 2048,
      rateLimitMax: 50,
      rateLimitWindowMs: 60_000,
      idempotencyWindowMs: 3_600_000,
      namespace: "shop",
    });
  });

  it.each([
    [{ EVENTLOOM_GATEWAY_AUTH: "maybe" }, /EVENTLOOM_GATEWAY_AUTH="maybe"/],
    [{ EVENTLOOM_GATEWAY_AUTH: "none", PORT: "http" }, /PORT="http"/],
    [
      { EVENTLOOM_GATEWAY_AUTH: "none", EVENTLOOM_GATEWAY_IDEMPOTENCY_WINDOW: "10" },
      /EVENTLOOM_GATEWAY_IDEMPOTENCY_WINDOW="10"/,
    ],
  ])("refuses %j, naming the variable", (env, message) => {
    expect(() => configFromEnv(env)).toThrow(message);
  });
});
