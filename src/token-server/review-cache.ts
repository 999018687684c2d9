/**
 * A short-lived, bounded cache of Kubernetes review answers (TokenReview,
 * SubjectAccessReview), so that a burst of token exchanges costs the
 * apiserver one review per distinct question, not one per request:
 *
 * - answers live `ttlMs` (10 s by default: long enough to absorb a burst,
 *   short enough that a revoked credential or binding stops working soon);
 * - a question being asked is shared by every request that asks it meanwhile
 *   (one in-flight review, many waiters);
 * - failures (apiserver unreachable, timeouts) are not cached;
 * - at most `maxEntries`, least recently used evicted first (a Map keeps
 *   insertion order; a hit re-inserts);
 * - at most `maxInFlight` reviews at once: beyond that `get` throws
 *   CacheFull, so a flood of distinct bogus tokens cannot queue unbounded work.
 *
 * Keys are chosen by the caller and must never be a credential: the
 * reviewer keys by SHA-256 (see reviews.ts).
 */

export interface ReviewCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  maxInFlight?: number;
  now?: () => number;
}

interface Entry<V> {
  /** Infinity while the review is in flight. */
  expiresMs: number;
  value: Promise<V>;
}

export class CacheFull extends Error {
  constructor() {
    super('too many Kubernetes reviews in flight');
    this.name = 'CacheFull';
  }
}

export const REVIEW_CACHE_DEFAULTS = { ttlMs: 10_000, maxEntries: 10_000, maxInFlight: 128 } as const;

export class ReviewCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly maxInFlight: number;
  private readonly now: () => number;
  private inFlight = 0;

  constructor(opts: ReviewCacheOptions = {}) {
    this.ttlMs = opts.ttlMs ?? REVIEW_CACHE_DEFAULTS.ttlMs;
    this.maxEntries = opts.maxEntries ?? REVIEW_CACHE_DEFAULTS.maxEntries;
    this.maxInFlight = opts.maxInFlight ?? REVIEW_CACHE_DEFAULTS.maxInFlight;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The answer for `key`: cached (or in flight) if it is, else `load()`'s.
   * `cached` tells the caller whether this call asked the apiserver.
   */
  get(key: string, load: () => Promise<V>): { value: Promise<V>; cached: boolean } {
    const hit = this.entries.get(key);
    if (hit && hit.expiresMs > this.now()) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return { value: hit.value, cached: true };
    }
    if (hit) this.entries.delete(key);
    if (this.inFlight >= this.maxInFlight) throw new CacheFull();
    this.inFlight++;
    const entry: Entry<V> = { expiresMs: Infinity, value: undefined as unknown as Promise<V> };
    let loading: Promise<V>;
    try {
      loading = load();
    } catch (err) {
      loading = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    entry.value = loading.then(
      (v) => {
        this.inFlight--;
        entry.expiresMs = this.now() + this.ttlMs;
        return v;
      },
      (err: unknown) => {
        this.inFlight--;
        if (this.entries.get(key) === entry) this.entries.delete(key);
        throw err;
      },
    );
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return { value: entry.value, cached: false };
  }

  get size(): number {
    return this.entries.size;
  }
}
