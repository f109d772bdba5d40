import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "./clock.ts";

describe("systemClock", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(Date.UTC(2025, 0, 1));
  });
  afterEach(() => vi.useRealTimers());

  it("fires at the given time, not before", () => {
    const fired = vi.fn();
    systemClock.at(systemClock.now() + 1_000, fired);
    vi.advanceTimersByTime(999);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledOnce();
  });

  it("fires at once for a time in the past", () => {
    const fired = vi.fn();
    systemClock.at(systemClock.now() - 60_000, fired);
    vi.advanceTimersByTime(0);
    expect(fired).toHaveBeenCalledOnce();
  });

  it("does not fire once cancelled", () => {
    const fired = vi.fn();
    const cancel = systemClock.at(systemClock.now() + 10, fired);
    cancel();
    vi.advanceTimersByTime(100);
    expect(fired).not.toHaveBeenCalled();
  });

  it("waits longer than setTimeout's 24.8-day limit by re-arming", () => {
    const fired = vi.fn();
    const thirtyDays = 30 * 24 * 3_600_000;
    systemClock.at(systemClock.now() + thirtyDays, fired);
    vi.advanceTimersByTime(thirtyDays - 1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledOnce();
  });
});
