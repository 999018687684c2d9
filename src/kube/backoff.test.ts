import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';

describe('Backoff', () => {
  it('doubles each step up to the cap and draws each delay from the upper half of its step', () => {
    const low = new Backoff(500, 4000, () => 0);
    const high = new Backoff(500, 4000, () => 0.999999);
    const lows = Array.from({ length: 6 }, () => low.next());
    const highs = Array.from({ length: 6 }, () => Math.round(high.next()));
    expect(lows).toEqual([250, 500, 1000, 2000, 2000, 2000]);
    expect(highs).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
  });

  it('starts again from the first step after a reset', () => {
    const b = new Backoff(100, 10_000, () => 0);
    b.next(); b.next(); b.next();
    b.reset();
    expect(b.next()).toBe(50);
  });

  it('bounds the attempts a loop can make in a minute against a server that always fails at once', () => {
    const b = new Backoff(500, 30_000);
    let elapsed = 0;
    let attempts = 0;
    while (elapsed < 60_000) { attempts++; elapsed += b.next(); }
    expect(attempts).toBeLessThanOrEqual(10);
  });
});
