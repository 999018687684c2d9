/**
 * The DPoP replay cache (RFC 9449 11.1): every proof's `jti` is remembered,
 * per key thumbprint, until the proof could no longer pass the `iat` check
 * (its `iat` plus IAT_PAST_SECONDS), and a second use within that time is
 * refused. Bounded in time (entries are dropped by expiry, one bucket per
 * second) and in size (`capacity` entries).
 *
 * When the cache is full of live entries it refuses new proofs (503,
 * temporarily_unavailable) rather than forget one: forgetting would accept a
 * replay, refusing only delays honest clients until the oldest entries
 * expire (at most IAT_PAST_SECONDS + IAT_FUTURE_SECONDS). Entries are added
 * only for requests that passed everything else (an authenticated client at
 * the token endpoint, a live token bound to the proof's key at /authz), so
 * filling the cache takes a valid credential; the metric
 * apikey_operator_dpop_replay_cache_entries shows how full it is.
 *
 * The cache is per process: with several replicas a proof replayed to
 * another replica within its minute is not caught here. Nonces
 * (--dpop-require-nonce) narrow that window; docs/security/model.md says so.
 */
import { createHash } from 'node:crypto';
import { IAT_PAST_SECONDS } from './dpop-proof.ts';
import { InvalidDpopProof, TemporarilyUnavailable } from './oauth-errors.ts';

/** Default capacity: a minute of 1,600 DPoP requests a second, about 15 MB. */
export const DEFAULT_REPLAY_CACHE_SIZE = 100_000;

export class ReplayCache {
  /** hash(jkt, jti) -> second after which it may be forgotten. */
  private readonly seen = new Map<string, number>();
  /** expiry second -> the entries that expire then. */
  private readonly buckets = new Map<number, string[]>();
  private oldest = Infinity;

  readonly capacity: number;

  constructor(capacity = DEFAULT_REPLAY_CACHE_SIZE) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * Records the proof (`jkt`, `jti`, `iat`) as used; throws InvalidDpopProof
   * when it was used before, TemporarilyUnavailable when the cache is full.
   */
  use(jkt: string, jti: string, iat: number, nowMs: number): void {
    const now = Math.floor(nowMs / 1000);
    this.expire(now);
    const id = createHash('sha256').update(jkt).update('\n').update(jti).digest('base64url');
    const until = this.seen.get(id);
    if (until !== undefined && until >= now) throw new InvalidDpopProof('the DPoP proof was used before (its jti is not new)', 'dpop_replay');
    if (this.seen.size >= this.capacity) {
      throw new TemporarilyUnavailable('too many DPoP proofs in the last minute; retry shortly', 'dpop_replay_cache_full');
    }
    const expiry = Math.ceil(iat) + IAT_PAST_SECONDS + 1;
    this.seen.set(id, expiry);
    const bucket = this.buckets.get(expiry);
    if (bucket) bucket.push(id);
    else this.buckets.set(expiry, [id]);
    if (expiry < this.oldest) this.oldest = expiry;
  }

  private expire(now: number): void {
    if (this.oldest >= now) return;
    for (const [expiry, ids] of this.buckets) {
      if (expiry >= now) continue;
      for (const id of ids) if (this.seen.get(id) === expiry) this.seen.delete(id);
      this.buckets.delete(expiry);
    }
    this.oldest = Infinity;
    for (const expiry of this.buckets.keys()) if (expiry < this.oldest) this.oldest = expiry;
  }
}
