import { describe, expect, it } from 'vitest';
import { DEFAULT_WATCH_TIMING, idleWindowMs } from './informer.ts';

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
