import { describe, expect, it } from 'vitest';
import { clientAddress, FailureLimiter } from './ratelimit.ts';

const K = 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa';

describe('the failure limiter', () => {
  it('lets the first failures through, then blocks for a delay that doubles with each failure', () => {
    const l = new FailureLimiter({ freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 60_000 });
    const delays = Array.from({ length: 6 }, (_, i) => l.failure(K, '10.0.0.1', i * 100_000));
    expect(delays).toEqual([0, 0, 0, 1000, 2000, 4000]);
  });

  it('caps the delay', () => {
    const l = new FailureLimiter({ freeFailures: 0, baseDelayMs: 1000, maxDelayMs: 5000 });
    const delays = Array.from({ length: 6 }, (_, i) => l.failure(K, 'a', i * 100_000));
    expect(delays).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('reports how long a blocked pair must still wait', () => {
    const l = new FailureLimiter({ freeFailures: 0, baseDelayMs: 1000 });
    l.failure(K, 'a', 10_000);
    expect(l.blockedForMs(K, 'a', 10_400)).toBe(600);
    expect(l.blockedForMs(K, 'a', 11_000)).toBe(0);
  });

  it('does not block the same key id from another address', () => {
    const l = new FailureLimiter({ freeFailures: 0 });
    l.failure(K, 'attacker', 0);
    expect(l.blockedForMs(K, 'attacker', 1)).toBeGreaterThan(0);
    expect(l.blockedForMs(K, 'legitimate', 1)).toBe(0);
  });

  it('starts over after a long quiet period', () => {
    const l = new FailureLimiter({ freeFailures: 1, forgetAfterMs: 1000 });
    l.failure(K, 'a', 0);
    expect(l.failure(K, 'a', 5000)).toBe(0);
  });

  it('keeps memory bounded by evicting the least recently touched pair', () => {
    const l = new FailureLimiter({ maxEntries: 100, freeFailures: 0 });
    for (let i = 0; i < 1000; i++) l.failure(`ak_${String(i).padStart(26, 'a')}`, 'a', 0);
    expect(l.size).toBe(100);
    expect(l.blockedForMs(`ak_${String(0).padStart(26, 'a')}`, 'a', 1)).toBe(0);
    expect(l.blockedForMs(`ak_${String(999).padStart(26, 'a')}`, 'a', 1)).toBeGreaterThan(0);
  });
});

describe('the address a client is counted under', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:0db8:0001:0002::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    [undefined, '?'],
  ])('%s counts as %s', (remote, address) => {
    expect(clientAddress(remote)).toBe(address);
  });
});
