/**
 * Time for the engine: the current time and one-shot timers. The system clock
 * uses `Date.now` and `setTimeout`, so tests drive it with vitest's fake timers.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` at (or after) epoch ms `at`; returns a function that cancels it. */
  at(at: number, fn: () => void): () => void;
}

// setTimeout fires at once beyond 2^31 - 1 ms; longer waits are re-armed in steps.
const MAX_DELAY = 2_147_483_647;

export const systemClock: Clock = {
  now: () => Date.now(),
  at(at, fn) {
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const delay = at - Date.now();
      if (delay > MAX_DELAY) {
        handle = setTimeout(arm, MAX_DELAY);
      } else {
        handle = setTimeout(fn, Math.max(0, delay));
      }
      handle.unref?.();
    };
    arm();
    return () => clearTimeout(handle);
  },
};
