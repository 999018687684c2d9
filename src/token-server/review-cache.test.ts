import { describe, expect, it } from 'vitest';
import { ReviewBudget } from './review-budget.ts';
import { CacheFull, ClientShareFull, NotCached, ReviewCache } from './review-cache.ts';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

describe('the review cache', () => {
  it('answers a question again from the cache until its answer is ttl old', async () => {
    let now = 0;
    const cache = new ReviewCache<string>({ ttlMs: 10_000, now: () => now });
    let loads = 0;
    const load = () => Promise.resolve(`answer ${++loads}`);
    expect(await cache.get('k', load).value).toBe('answer 1');
    now = 9_999;
    const again = cache.get('k', load);
    expect(again.cached).toBe(true);
    expect(await again.value).toBe('answer 1');
    now = 10_000;
    const fresh = cache.get('k', load);
    expect(fresh.cached).toBe(false);
    expect(await fresh.value).toBe('answer 2');
  });

  it('shares one review in flight among every request that asks meanwhile', async () => {
    const cache = new ReviewCache<boolean>();
    const d = deferred<boolean>();
    let loads = 0;
    const load = () => { loads++; return d.promise; };
    const asks = Array.from({ length: 50 }, () => cache.get('same', load));
    expect(loads).toBe(1);
    expect(asks.filter((a) => a.cached)).toHaveLength(49);
    d.resolve(true);
    expect(await Promise.all(asks.map((a) => a.value))).toEqual(Array(50).fill(true));
  });

  it('does not keep a failure: the next request asks again', async () => {
    const cache = new ReviewCache<boolean>();
    await expect(cache.get('k', () => Promise.reject(new Error('unreachable'))).value).rejects.toThrow('unreachable');
    expect(cache.size).toBe(0);
    const r = cache.get('k', () => Promise.resolve(true));
    expect(r.cached).toBe(false);
    expect(await r.value).toBe(true);
  });

  it('turns a load that throws at once into a rejected answer, and frees its slot', async () => {
    const cache = new ReviewCache<boolean>({ maxInFlight: 1 });
    await expect(cache.get('k', () => { throw new Error('boom'); }).value).rejects.toThrow('boom');
    expect(await cache.get('other', () => Promise.resolve(true)).value).toBe(true);
  });

  it('keeps at most maxEntries answers, evicting the least recently used', async () => {
    const cache = new ReviewCache<string>({ maxEntries: 2 });
    await cache.get('a', () => Promise.resolve('a')).value;
    await cache.get('b', () => Promise.resolve('b')).value;
    expect(cache.get('a', () => Promise.resolve('a2')).cached).toBe(true);
    await cache.get('c', () => Promise.resolve('c')).value;
    expect(cache.size).toBe(2);
    expect(cache.get('a', () => Promise.resolve('a3')).cached).toBe(true);
    expect(cache.get('b', () => Promise.resolve('b2')).cached).toBe(false);
  });

  it('refuses a new review beyond maxInFlight, and accepts again once one finished', async () => {
    const cache = new ReviewCache<boolean>({ maxInFlight: 2 });
    const d = deferred<boolean>();
    cache.get('1', () => d.promise, { client: '10.0.0.1' });
    cache.get('2', () => d.promise, { client: '10.0.0.2' });
    expect(() => cache.get('3', () => Promise.resolve(true), { client: '10.0.0.3' })).toThrow(CacheFull);
    // A question already in flight is still answered.
    expect(cache.get('1', () => Promise.resolve(false)).cached).toBe(true);
    d.resolve(true);
    await d.promise;
    await new Promise((r) => setImmediate(r));
    expect(await cache.get('3', () => Promise.resolve(true)).value).toBe(true);
  });

  it('keeps denials apart: a flood of distinct denials never pushes an approval out', async () => {
    const cache = new ReviewCache<boolean>({ maxEntries: 2, maxDenials: 3 }, (allowed) => allowed);
    await cache.get('alice', () => Promise.resolve(true)).value;
    await cache.get('bob', () => Promise.resolve(true)).value;
    for (let i = 0; i < 1000; i++) await cache.get(`bogus-${i}`, () => Promise.resolve(false)).value;
    expect([cache.approvalCount, cache.denialCount]).toEqual([2, 3]);
    expect(cache.get('alice', () => Promise.resolve(false)).cached).toBe(true);
    expect(cache.get('bob', () => Promise.resolve(false)).cached).toBe(true);
    // The most recent denials are still cached, the older ones were evicted among themselves.
    expect(cache.get('bogus-999', () => Promise.resolve(true)).cached).toBe(true);
    expect(cache.get('bogus-0', () => Promise.resolve(false)).cached).toBe(false);
  });

  it('keeps a denial for denialTtlMs only, shorter than an approval', async () => {
    let now = 0;
    const cache = new ReviewCache<boolean>({ ttlMs: 10_000, denialTtlMs: 3_000, now: () => now }, (allowed) => allowed);
    await cache.get('yes', () => Promise.resolve(true)).value;
    await cache.get('no', () => Promise.resolve(false)).value;
    now = 2_999;
    expect([cache.get('yes', () => Promise.resolve(true)).cached, cache.get('no', () => Promise.resolve(false)).cached]).toEqual([true, true]);
    now = 3_000;
    expect(cache.get('yes', () => Promise.resolve(true)).cached).toBe(true);
    const again = cache.get('no', () => Promise.resolve(true));
    expect(again.cached).toBe(false);
    // A question whose answer changed moves from the denials to the approvals.
    expect(await again.value).toBe(true);
    expect([cache.approvalCount, cache.denialCount]).toEqual([2, 0]);
  });

  it('answers cachedOnly from the cache or a review in flight, and throws NotCached instead of asking', async () => {
    const cache = new ReviewCache<boolean>({}, (allowed) => allowed);
    let loads = 0;
    const load = () => { loads++; return Promise.resolve(true); };
    await cache.get('known', load).value;
    const d = deferred<boolean>();
    cache.get('pending', () => d.promise);
    expect(cache.get('known', load, { cachedOnly: true }).cached).toBe(true);
    expect(cache.get('pending', load, { cachedOnly: true }).cached).toBe(true);
    expect(() => cache.get('unknown', load, { cachedOnly: true })).toThrow(NotCached);
    expect(loads).toBe(1);
    d.resolve(false);
  });

  it('gives each client its share of the reviews in flight, so one client cannot take every slot', async () => {
    const budget = new ReviewBudget({ maxInFlight: 10, maxInFlightPerClient: 3 });
    const tokens = new ReviewCache<boolean>({ budget });
    const access = new ReviewCache<boolean>({ budget });
    const d = deferred<boolean>();
    tokens.get('f1', () => d.promise, { client: 'flooder' });
    tokens.get('f2', () => d.promise, { client: 'flooder' });
    // The share counts the reviews of both caches that share the budget.
    access.get('f3', () => d.promise, { client: 'flooder' });
    expect(() => tokens.get('f4', () => d.promise, { client: 'flooder' })).toThrow(ClientShareFull);
    // Joining its own review in flight takes no slot.
    expect(tokens.get('f1', () => d.promise, { client: 'flooder' }).cached).toBe(true);
    // Everyone else still has room.
    for (let i = 0; i < 7; i++) tokens.get(`honest-${i}`, () => d.promise, { client: `client-${i % 3}` });
    expect(budget.inFlight).toBe(10);
    expect(() => tokens.get('late', () => d.promise, { client: 'latecomer' })).toThrow(CacheFull);
    d.resolve(true);
    await d.promise;
    await new Promise((r) => setImmediate(r));
    expect([budget.inFlight, budget.clients]).toEqual([0, 0]);
    expect(tokens.get('f4', () => Promise.resolve(true), { client: 'flooder' }).cached).toBe(false);
  });
});
