/**
 * A short-lived, bounded cache of Kubernetes review answers (TokenReview,
 * SubjectAccessReview), so that a burst of token exchanges costs the
 * apiserver one review per distinct question, not one per request:
 *
 * - approvals live `ttlMs` (10 s by default: long enough to absorb a burst,
 *   short enough that a revoked credential or binding stops working soon);
 * - denials live apart from approvals, in their own LRU (`maxDenials`,
 *   `denialTtlMs`, 3 s by default: a new RoleBinding takes effect soon), so
 *   a flood of distinct bogus tokens evicts only other denials and never
 *   pushes an approval out (which would cost honest clients a review each);
 * - a question being asked is shared by every request that asks it meanwhile
 *   (one in-flight review, many waiters);
 * - failures (apiserver unreachable, timeouts) are not cached;
 * - at most `maxEntries` approvals, least recently used evicted first (a Map
 *   keeps insertion order; a hit re-inserts);
 * - a new review takes a slot of the ReviewBudget (review-budget.ts) for the
 *   client that asks: beyond the global cap `get` throws CacheFull, beyond
 *   the client's share ClientShareFull;
 * - `cachedOnly` answers from the cache (or a review in flight) and throws
 *   NotCached rather than ask: what a throttled client address gets.
 *
 * Keys are chosen by the caller and must never be a credential: the
 * reviewer keys by SHA-256 (see reviews.ts).
 */
import { ReviewBudget, type ReviewBudgetOptions } from './review-budget.ts';

export { CacheFull, ClientShareFull } from './review-budget.ts';

export interface ReviewCacheOptions extends ReviewBudgetOptions {
  ttlMs?: number;
  maxEntries?: number;
  denialTtlMs?: number;
  maxDenials?: number;
  now?: () => number;
  /** Shared with other caches (a reviewer's token and access caches); default: a budget of this cache's own. */
  budget?: ReviewBudget;
}

/** Who asks, and whether the apiserver may be asked on their behalf. */
export interface CacheAsk {
  /** The client address whose share a new review takes. */
  client?: string;
  /** Answer only from the cache or a review in flight; else throw NotCached. */
  cachedOnly?: boolean;
}

/** `cachedOnly` and the answer is not in the cache. */
export class NotCached extends Error {
  constructor() {
    super('the answer is not cached');
    this.name = 'NotCached';
  }
}

interface Entry<V> {
  expiresMs: number;
  value: Promise<V>;
}

export const REVIEW_CACHE_DEFAULTS = {
  ttlMs: 10_000, maxEntries: 10_000, denialTtlMs: 3_000, maxDenials: 10_000,
} as const;

/** Expiring entries, least recently used evicted first beyond `max`. */
class Lru<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }

  get(key: string, nowMs: number): Entry<V> | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    if (e.expiresMs <= nowMs) return undefined;
    this.entries.set(key, e);
    return e;
  }

  set(key: string, e: Entry<V>): void {
    this.entries.delete(key);
    this.entries.set(key, e);
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

export class ReviewCache<V> {
  private readonly approvals: Lru<V>;
  private readonly denials: Lru<V>;
  private readonly inFlight = new Map<string, Promise<V>>();
  private readonly ttlMs: number;
  private readonly denialTtlMs: number;
  private readonly now: () => number;
  private readonly budget: ReviewBudget;
  private readonly isApproval: (v: V) => boolean;

  /** `isApproval` tells approvals from denials (default: every answer is an approval). */
  constructor(opts: ReviewCacheOptions = {}, isApproval: (v: V) => boolean = () => true) {
    this.isApproval = isApproval;
    this.ttlMs = opts.ttlMs ?? REVIEW_CACHE_DEFAULTS.ttlMs;
    this.denialTtlMs = Math.min(opts.denialTtlMs ?? REVIEW_CACHE_DEFAULTS.denialTtlMs, this.ttlMs);
    this.approvals = new Lru(opts.maxEntries ?? REVIEW_CACHE_DEFAULTS.maxEntries);
    this.denials = new Lru(opts.maxDenials ?? REVIEW_CACHE_DEFAULTS.maxDenials);
    this.now = opts.now ?? Date.now;
    this.budget = opts.budget ?? new ReviewBudget(opts);
  }

  /**
   * The answer for `key`: cached (or in flight) if it is, else `load()`'s.
   * `cached` tells the caller whether this call asked the apiserver.
   */
  get(key: string, load: () => Promise<V>, ask: CacheAsk = {}): { value: Promise<V>; cached: boolean } {
    const pending = this.inFlight.get(key);
    if (pending) return { value: pending, cached: true };
    const nowMs = this.now();
    const hit = this.approvals.get(key, nowMs) ?? this.denials.get(key, nowMs);
    if (hit) return { value: hit.value, cached: true };
    if (ask.cachedOnly) throw new NotCached();
    const client = ask.client ?? '';
    this.budget.acquire(client);
    let loading: Promise<V>;
    try {
      loading = load();
    } catch (err) {
      loading = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const value = loading.then(
      (v) => {
        this.budget.release(client);
        this.inFlight.delete(key);
        const approved = this.isApproval(v);
        (approved ? this.denials : this.approvals).delete(key);
        (approved ? this.approvals : this.denials).set(key, {
          expiresMs: this.now() + (approved ? this.ttlMs : this.denialTtlMs), value: Promise.resolve(v),
        });
        return v;
      },
      (err: unknown) => {
        this.budget.release(client);
        this.inFlight.delete(key);
        throw err;
      },
    );
    this.inFlight.set(key, value);
    return { value, cached: false };
  }

  /** Answers kept or in flight. */
  get size(): number {
    return this.approvals.size + this.denials.size + this.inFlight.size;
  }

  get approvalCount(): number {
    return this.approvals.size;
  }

  get denialCount(): number {
    return this.denials.size;
  }
}
