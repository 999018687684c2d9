import { describe, expect, it } from 'vitest';
import { DEFAULT_WATCH_TIMING, idleWindowMs, timingForStaleness } from './informer.ts';

/** undici's default body timeout, which the client's dispatcher keeps: a silent body for this long is an error. */
const UNDICI_BODY_TIMEOUT_MS = 300_000;

describe('the default watch timing', () => {
  const [min, max] = DEFAULT_WATCH_TIMING.timeoutSeconds;

  it.each([min, max])('lets the server end a quiet watch of %ss before the idle timeout cuts it', (seconds) => {
    expect(idleWindowMs(DEFAULT_WATCH_TIMING, seconds)).toBeGreaterThan(seconds * 1000);
  });

  it('cuts a silent watch itself before undici would end it as an error', () => {
    expect(idleWindowMs(DEFAULT_WATCH_TIMING, max)).toBeLessThan(UNDICI_BODY_TIMEOUT_MS);
  });

  it('asks for watches longer than the minute between bookmarks, so a healthy watch resets the backoff', () => {
    expect(min * 1000).toBeGreaterThan(60_000);
    expect(min * 1000).toBeGreaterThan(DEFAULT_WATCH_TIMING.healthyMs);
  });

  it('uses an explicit idle window as given, whatever the watch asked for', () => {
    expect(idleWindowMs({ ...DEFAULT_WATCH_TIMING, idleMs: 1500 }, 60)).toBe(1500);
  });
});

describe('the watch timing under a staleness bound', () => {
  it.each([15_000, 30_000, 60_000, 300_000])('under %sms, asks the server to end every watch within a third of the bound, and counts a watch that ran its course as healthy', (boundMs) => {
    const t = { ...DEFAULT_WATCH_TIMING, ...timingForStaleness(boundMs) };
    const [min, max] = t.timeoutSeconds;
    expect(min).toBeGreaterThanOrEqual(1);
    expect(min).toBeLessThanOrEqual(max);
    expect(max * 1000).toBeLessThanOrEqual(boundMs / 3);
    // A healthy restart waits under the base backoff step: at least three proofs of life per bound.
    expect(max * 1000 + t.backoffBaseMs).toBeLessThan(boundMs / 2.5);
    expect(t.healthyMs).toBeLessThan(min * 1000);
  });

  it('keeps the default, longer watches under a bound so large that they already fit', () => {
    expect(timingForStaleness(3_600_000).timeoutSeconds).toEqual(DEFAULT_WATCH_TIMING.timeoutSeconds);
  });
});
