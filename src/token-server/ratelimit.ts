/**
 * Load shedding for failed client authentication. Failed attempts are
 * counted per (key id, client address): after `freeFailures` of them, that
 * pair is blocked for `baseDelayMs`, doubling with each further failure up to
 * `maxDelayMs`, and a blocked pair's wrong secrets are answered 429. The
 * right secret is never blocked (client-auth.ts checks it first): guessing a
 * 256-bit secret is hopeless anyway, and key ids are public, so blocking the
 * right secret would let anyone behind the same NAT or ingress lock the
 * key's owner out. A success does not clear the record, so an attacker who
 * shares the owner's address gains no free failures from the owner's
 * successes; a pair is forgotten after `forgetAfterMs` without failures.
 *
 * Memory is bounded: at most `maxEntries` pairs, least recently touched
 * evicted first (a Map keeps insertion order; touching re-inserts). An
 * attacker who floods the table to evict its own entry spends `maxEntries`
 * requests to win `freeFailures` more guesses.
 *
 * The request path asks `blockedForMs`, which for a key id with no recorded
 * failure is one Map lookup and no allocation.
 */

export interface FailureLimiterOptions {
  freeFailures?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A pair with no failure for this long starts over. */
  forgetAfterMs?: number;
  maxEntries?: number;
}

interface Entry {
  keyId: string;
  failures: number;
  blockedUntil: number;
  lastFailure: number;
}

export const DEFAULT_LIMITS: Required<FailureLimiterOptions> = {
  freeFailures: 5,
  baseDelayMs: 1000,
  maxDelayMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
  maxEntries: 100_000,
};

/**
 * Failed token exchanges (a subject token Kubernetes did not accept, or RBAC
 * refused) per client address, under one key (`EXCHANGE_FAILURES`). Nobody
 * guesses a Kubernetes token, so this sheds load from the apiserver rather
 * than stopping guesses: the delays stay short, and a throttled address is
 * still answered from the review cache (token-exchange.ts).
 */
export const EXCHANGE_LIMITS: Required<FailureLimiterOptions> = {
  freeFailures: 5,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  forgetAfterMs: 15 * 60_000,
  maxEntries: 100_000,
};

/** The key of token exchange failures in their limiter: no key id has this form. */
export const EXCHANGE_FAILURES = 'token-exchange';

export class FailureLimiter {
  private readonly opts: Required<FailureLimiterOptions>;
  private readonly entries = new Map<string, Entry>();
  /** Key id -> number of entries, so the common case (no failures for this id) needs no string concat. */
  private readonly keyIds = new Map<string, number>();

  constructor(opts: FailureLimiterOptions = {}) {
    this.opts = { ...DEFAULT_LIMITS, ...opts };
  }

  /** Milliseconds this pair must still wait; 0 when it may try. */
  blockedForMs(keyId: string, address: string, nowMs: number): number {
    if (!this.keyIds.has(keyId)) return 0;
    const e = this.entries.get(pairKey(keyId, address));
    return e && e.blockedUntil > nowMs ? e.blockedUntil - nowMs : 0;
  }

  /** Records a failed attempt; returns how long the pair is now blocked (0 while failures are free). */
  failure(keyId: string, address: string, nowMs: number): number {
    const k = pairKey(keyId, address);
    let e = this.entries.get(k);
    if (e) {
      this.entries.delete(k);
      if (nowMs - e.lastFailure > this.opts.forgetAfterMs) { e.failures = 0; e.blockedUntil = 0; }
    } else {
      e = { keyId, failures: 0, blockedUntil: 0, lastFailure: 0 };
      this.keyIds.set(keyId, (this.keyIds.get(keyId) ?? 0) + 1);
    }
    this.entries.set(k, e);
    e.failures++;
    e.lastFailure = nowMs;
    const over = e.failures - this.opts.freeFailures;
    let delay = 0;
    if (over > 0) {
      delay = Math.min(this.opts.baseDelayMs * 2 ** Math.min(over - 1, 30), this.opts.maxDelayMs);
      e.blockedUntil = nowMs + delay;
    }
    this.evict();
    return delay;
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(): void {
    while (this.entries.size > this.opts.maxEntries) {
      const oldest = this.entries.entries().next().value;
      if (!oldest) return;
      this.drop(oldest[0], oldest[1]);
    }
  }

  private drop(k: string, e: Entry): void {
    this.entries.delete(k);
    const n = (this.keyIds.get(e.keyId) ?? 1) - 1;
    if (n <= 0) this.keyIds.delete(e.keyId);
    else this.keyIds.set(e.keyId, n);
  }
}

function pairKey(keyId: string, address: string): string {
  return `${keyId} ${address}`;
}

/** An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`) as plain IPv4; anything else as is. */
export function unmapIPv4(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/**
 * The address a client is counted under: IPv4 as is (also when mapped into
 * IPv6), IPv6 by its /64, since one host commonly owns a whole /64.
 */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return '?';
  const bare = unmapIPv4(remote);
  if (bare !== remote) return bare;
  if (!remote.includes(':')) return remote;
  const [head = '', tail] = remote.split('::');
  const left = head === '' ? [] : head.split(':');
  if (tail !== undefined && left.length < 4) {
    const right = tail === '' ? [] : tail.split(':');
    const zeros = Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0');
    left.push(...zeros, ...right);
  }
  return `${left.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}
