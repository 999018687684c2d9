import { describe, expect, it } from 'vitest';
import { expiringCondition, nextThreshold, parseExpiryWarnings, warningStage } from './expiry.ts';

const H = 3600_000;
const NOW = Date.parse('2026-06-01T00:00:00Z');
const DEFAULTS = parseExpiryWarnings('720h,168h,24h');

describe('parseExpiryWarnings', () => {
  it('reads durations, largest first, once each', () => {
    expect(parseExpiryWarnings('24h, 720h,168h,24h')).toEqual([720 * H, 168 * H, 24 * H]);
    expect(parseExpiryWarnings('10s,5s')).toEqual([10_000, 5000]);
    expect(parseExpiryWarnings('')).toEqual([]);
  });
  it.each(['7d', '0s', '-1h', '1.5h', Array.from({ length: 11 }, (_, i) => `${i + 1}h`).join(',')])('refuses %j', (s) => {
    expect(() => parseExpiryWarnings(s)).toThrow();
  });
});

describe('warningStage and nextThreshold', () => {
  it.each([
    ['40 days ahead: no threshold yet, the next at 30 days before', 40 * 24 * H, undefined, 10 * 24 * H],
    ['exactly 30 days ahead: the 30-day threshold', 720 * H, 720 * H, 552 * H],
    ['5 days ahead: the 7-day threshold, next the 1-day one', 120 * H, 168 * H, 96 * H],
    ['an hour ahead: the 1-day threshold, none after it', H, 24 * H, undefined],
    ['expired: no threshold, none ahead', -H, undefined, undefined],
  ])('%s', (_name, left, stage, next) => {
    expect(warningStage(NOW + left, NOW, DEFAULTS)).toBe(stage);
    const n = nextThreshold(NOW + left, NOW, DEFAULTS);
    expect(n === undefined ? undefined : n - NOW).toBe(next);
  });
});

describe('expiringCondition', () => {
  const now = new Date(NOW);
  it('is absent for a key that never expires, or whose expiresAt cannot be read', () => {
    expect(expiringCondition(undefined, now, DEFAULTS)).toBeUndefined();
    expect(expiringCondition('tomorrow', now, DEFAULTS)).toBeUndefined();
  });
  it('is False (ExpiryNotNear), True (ExpiresSoon) with the threshold, then False (Expired)', () => {
    expect(expiringCondition('2026-08-01T00:00:00Z', now, DEFAULTS)).toMatchObject({ status: 'False', reason: 'ExpiryNotNear' });
    const soon = expiringCondition('2026-06-01T12:00:00Z', now, DEFAULTS);
    expect(soon).toMatchObject({ status: 'True', reason: 'ExpiresSoon' });
    expect(soon?.message).toContain('less than 24h from now');
    expect(expiringCondition('2026-06-01T00:00:00Z', now, DEFAULTS)).toMatchObject({ status: 'False', reason: 'Expired' });
  });
  it('never warns with no thresholds', () => {
    expect(expiringCondition('2026-06-01T00:00:01Z', now, [])).toMatchObject({ status: 'False', reason: 'ExpiryNotNear' });
  });
});
