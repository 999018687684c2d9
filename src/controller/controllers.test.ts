import { describe, expect, it } from 'vitest';
import { COUNT_BATCH_MS, COUNT_BUSY_MS, countDelayMs } from './controllers.ts';

describe('a Deployment\'s key count', () => {
  it('follows a change within a second while the controller has no backlog', () => {
    expect(countDelayMs(0, 4)).toBe(COUNT_BATCH_MS);
    expect(COUNT_BATCH_MS).toBeLessThanOrEqual(1000);
    // A kubectl apply of a hundred keys is no backlog, whatever the workers.
    expect(countDelayMs(100, 4)).toBe(COUNT_BATCH_MS);
    expect(countDelayMs(128, 32)).toBe(COUNT_BATCH_MS);
  });

  it('waits a minute under a backlog of keys, so that the keys\' own writes come first', () => {
    expect(countDelayMs(101, 4)).toBe(COUNT_BUSY_MS);
    expect(countDelayMs(129, 32)).toBe(COUNT_BUSY_MS);
    expect(countDelayMs(40_000, 32)).toBe(COUNT_BUSY_MS);
    expect(COUNT_BUSY_MS).toBe(60_000);
  });
});
