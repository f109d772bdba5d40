/**
 * The lag autoscaler's decision, as a pure function of what it observed and
 * what it remembers. Scale up at once; scale down only when every
 * recommendation of the stabilization window agrees (the HPA's
 * scale-down stabilization, which KEDA users asked for in kedacore/keda#1556)
 * and not sooner than one window after the last change, so consumers are not
 * rebalanced in a storm (kedacore/keda#2401); go to zero only after lag stayed
 * below the activation threshold for the cooldown.
 */

export interface ScalingPolicy {
  minReplicas: number;
  maxReplicas: number;
  lagPerReplica: number;
  activationLag: number;
  scaleDownStabilizationMs: number;
  /** How long lag must stay below activationLag before going to zero. */
  cooldownMs: number;
}

export interface Observation {
  /** Unprocessed records over all the Worker's partitions. */
  lag: number;
  /** Partitions of the Worker's topics: more consumers than this would idle. */
  partitions: number;
  /** Replicas the Deployment has now (spec). */
  currentReplicas: number;
  nowMs: number;
}

export interface ScalerMemory {
  /** Raw recommendations (after clamping) with their times, newest last. */
  recommendations: Array<{ atMs: number; replicas: number }>;
  lastScaleMs: number | undefined;
  /** Since when lag has been below activationLag (undefined while it is not). */
  idleSinceMs: number | undefined;
  /** First observation: no scale-down until a whole window has been watched (e.g. after a failover). */
  observingSinceMs: number | undefined;
}

export interface Decision {
  desiredReplicas: number;
  /** What a person reads in status.lastScaleReason and the Event. */
  reason: string;
  memory: ScalerMemory;
}

export function emptyMemory(): ScalerMemory {
  return { recommendations: [], lastScaleMs: undefined, idleSinceMs: undefined, observingSinceMs: undefined };
}

export function decide(policy: ScalingPolicy, obs: Observation, memory: ScalerMemory): Decision {
  const upper = Math.max(0, Math.min(policy.maxReplicas, obs.partitions));
  const lower = Math.min(policy.minReplicas, upper);
  const idle = obs.lag < policy.activationLag;
  const idleSinceMs = idle ? (memory.idleSinceMs ?? obs.nowMs) : undefined;

  let raw = Math.ceil(obs.lag / policy.lagPerReplica);
  // While records wait, keep at least one consumer even below lagPerReplica.
  if (!idle) raw = Math.max(1, raw);
  const recommended = clamp(raw, lower, upper);

  const window = policy.scaleDownStabilizationMs;
  const recommendations = [...memory.recommendations, { atMs: obs.nowMs, replicas: recommended }].filter(
    (r) => r.atMs > obs.nowMs - window,
  );
  const next = (desiredReplicas: number, reason: string, scaled: boolean): Decision => ({
    desiredReplicas,
    reason,
    memory: {
      recommendations,
      lastScaleMs: scaled ? obs.nowMs : memory.lastScaleMs,
      idleSinceMs,
      observingSinceMs: memory.observingSinceMs ?? obs.nowMs,
    },
  });
  const current = obs.currentReplicas;
  const lagText = `lag ${obs.lag} (${policy.lagPerReplica} per replica, ${obs.partitions} partitions)`;

  if (recommended > current) {
    const why =
      current === 0
        ? `activated: ${lagText} reached activationLag ${policy.activationLag}`
        : `scaled up: ${lagText}`;
    return next(recommended, why, true);
  }
  if (recommended === current) return next(current, `steady: ${lagText}`, false);

  // Scale down: the largest recommendation of the window is the most we may drop to.
  const stabilized = Math.max(...recommendations.map((r) => r.replicas));
  const watchedFor = obs.nowMs - (memory.observingSinceMs ?? obs.nowMs);
  if (watchedFor < window) {
    return next(
      current,
      `holding ${current}: watched lag for ${Math.round(watchedFor / 1000)}s of the ${window / 1000}s stabilization window`,
      false,
    );
  }
  const sinceLastScale = memory.lastScaleMs === undefined ? Infinity : obs.nowMs - memory.lastScaleMs;
  if (sinceLastScale < window) {
    return next(
      current,
      `holding ${current}: last change ${Math.round(sinceLastScale / 1000)}s ago, within the ${window / 1000}s stabilization window`,
      false,
    );
  }
  let target = Math.min(current, stabilized);
  if (target === 0) {
    const idleFor = idleSinceMs === undefined ? 0 : obs.nowMs - idleSinceMs;
    if (idleFor < policy.cooldownMs)
      target = Math.max(1, Math.min(current, stabilized === 0 ? 1 : stabilized));
    if (target === 0)
      return next(
        0,
        `scaled to zero: lag below ${policy.activationLag} for ${Math.round(idleFor / 1000)}s`,
        true,
      );
  }
  if (target >= current)
    return next(
      current,
      `holding ${current}: ${lagText}, waiting for the stabilization window to agree`,
      false,
    );
  return next(target, `scaled down: ${lagText}, stable for ${window / 1000}s`, true);
}

function clamp(value: number, lower: number, upper: number): number {
  return Math.max(lower, Math.min(upper, value));
}

/**
 * Lag of one partition: log end minus the committed offset, counted from log
 * start when nothing is committed or the committed offset fell below log
 * start (retention deleted it) — the two cases KEDA users reported as wrong
 * (kedacore/keda#5164, #7936).
 */
export function partitionLag(logStart: bigint, logEnd: bigint, committed: bigint | null): number {
  // A partition whose leader is not elected yet (a topic just created) answers -1: no lag known, so none.
  if (logStart < 0n || logEnd < 0n) return 0;
  const from = committed === null || committed < logStart ? logStart : committed;
  const lag = logEnd - from;
  return lag > 0n ? Number(lag) : 0;
}
