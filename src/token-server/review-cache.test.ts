import { describe, expect, it } from 'vitest';
import { CacheFull, ReviewCache } from './review-cache.ts';

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
    cache.get('1', () => d.promise);
    cache.get('2', () => d.promise);
    expect(() => cache.get('3', () => Promise.resolve(true))).toThrow(CacheFull);
    // A question already in flight is still answered.
    expect(cache.get('1', () => Promise.resolve(false)).cached).toBe(true);
    d.resolve(true);
    await d.promise;
    await new Promise((r) => setImmediate(r));
    expect(await cache.get('3', () => Promise.resolve(true)).value).toBe(true);
  });
});
