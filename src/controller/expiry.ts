/**
 * Warnings ahead of `spec.expiresAt`: the `Expiring` condition, the Warning
 * event at each threshold, and when to look at the key again. Pure functions
 * of (expiresAt, now, thresholds), so the reconcile, the metrics and the
 * tests agree on every instant.
 *
 * The condition type is `Expiring`, written only on keys that set
 * `spec.expiresAt`:
 *
 *   - `False`, reason `ExpiryNotNear`: more than the largest threshold away;
 *   - `True`,  reason `ExpiresSoon`: within a threshold; the message names the
 *     smallest threshold reached, so it changes (and a new Warning event is
 *     recorded) exactly once per threshold crossed;
 *   - `False`, reason `Expired`: the key has expired (`Ready=False`, reason
 *     `Expired`, says the rest).
 *
 * `Ready` stays `True` until the key really expires. kstatus gives meaning
 * only to `Reconciling` and `Stalled` (and Ready on some kinds it knows), so
 * `Expiring=True` leaves a key `Current`: a warning, not a failure.
 *
 * The stage is kept in the condition's message, which lives in the status,
 * so a restart or a resync never repeats an event already recorded.
 */
import { DEFAULT_EXPIRY_WARNINGS, EXPIRING_CONDITION } from '../api/names.ts';
import { formatDuration, parseDuration } from '../shared/duration.ts';
import type { Condition } from './conditions.ts';
import { Reason } from './reasons.ts';

export { DEFAULT_EXPIRY_WARNINGS };
export const EXPIRING = EXPIRING_CONDITION;

export type ExpiringCondition = Pick<Condition, 'status' | 'reason' | 'message'>;

/**
 * Parses a comma-separated list of durations (720h,168h,24h) into distinct
 * thresholds in ms, largest first; throws a message for anything else.
 */
export function parseExpiryWarnings(s: string): number[] {
  const parts = s.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length > 10) throw new Error('at most 10 thresholds');
  const ms = parts.map((p) => {
    const v = parseDuration(p);
    if (v === undefined || v <= 0) throw new Error(`"${p}" is not a positive duration such as 720h, 90m or 30s`);
    return v;
  });
  return [...new Set(ms)].sort((a, b) => b - a);
}

/** The smallest threshold that `expiresAtMs` is within at `nowMs`, or undefined when none (or expired). */
export function warningStage(expiresAtMs: number, nowMs: number, thresholdsMs: readonly number[]): number | undefined {
  const left = expiresAtMs - nowMs;
  if (left <= 0) return undefined;
  const reached = thresholdsMs.filter((t) => left <= t);
  return reached.length ? Math.min(...reached) : undefined;
}

/** The Expiring condition of a key whose spec.expiresAt is `expiresAt`; undefined for a key that never expires. */
export function expiringCondition(expiresAt: string | undefined, now: Date, thresholdsMs: readonly number[]): ExpiringCondition | undefined {
  if (!expiresAt) return undefined;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return undefined;
  if (at <= now.getTime()) {
    return { status: 'False', reason: Reason.Expired, message: `The key expired at ${expiresAt}` };
  }
  const stage = warningStage(at, now.getTime(), thresholdsMs);
  if (stage === undefined) {
    return { status: 'False', reason: Reason.ExpiryNotNear, message: `The key expires at ${expiresAt}` };
  }
  return {
    status: 'True', reason: Reason.ExpiresSoon,
    message: `The key expires at ${expiresAt}, less than ${formatDuration(stage)} from now; ` +
      'give its users a new key, or move spec.expiresAt',
  };
}

/** The next instant after `nowMs` at which the key crosses a threshold, or undefined when none is ahead. */
export function nextThreshold(expiresAtMs: number, nowMs: number, thresholdsMs: readonly number[]): number | undefined {
  const ahead = thresholdsMs.map((t) => expiresAtMs - t).filter((at) => at > nowMs);
  return ahead.length ? Math.min(...ahead) : undefined;
}
