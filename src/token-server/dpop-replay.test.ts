import { describe, expect, it } from 'vitest';
import { IAT_PAST_SECONDS } from './dpop-proof.ts';
import { ReplayCache } from './dpop-replay.ts';
import type { OAuthError } from './oauth-errors.ts';

const errorOf = (f: () => void) => {
  try { f(); } catch (e) { return { error: (e as OAuthError).error, status: (e as OAuthError).status }; }
  return undefined;
};

describe('the DPoP replay cache', () => {
  const t0 = 1_800_000_000_000;
  const iat = t0 / 1000;

  it('refuses a jti used before by the same key, and not one of another key', () => {
    const c = new ReplayCache(10);
    c.use('key-a', 'j1', iat, t0);
    expect(errorOf(() => c.use('key-a', 'j1', iat, t0 + 1000))).toEqual({ error: 'invalid_dpop_proof', status: 400 });
    expect(errorOf(() => c.use('key-b', 'j1', iat, t0 + 1000))).toBeUndefined();
  });

  it('remembers a jti as long as its proof passes the iat check, and forgets it after', () => {
    const c = new ReplayCache(10);
    c.use('k', 'j', iat, t0);
    expect(errorOf(() => c.use('k', 'j', iat, t0 + IAT_PAST_SECONDS * 1000))).toMatchObject({ error: 'invalid_dpop_proof' });
    c.use('k', 'other', iat + IAT_PAST_SECONDS + 5, t0 + (IAT_PAST_SECONDS + 5) * 1000);
    expect(c.size).toBe(1);
  });

  it('when full of live entries, refuses new proofs (503) rather than forget one, until entries expire', () => {
    const c = new ReplayCache(3);
    for (const j of ['a', 'b', 'c']) c.use('k', j, iat, t0);
    expect(errorOf(() => c.use('k', 'd', iat, t0 + 1000))).toEqual({ error: 'temporarily_unavailable', status: 503 });
    expect(errorOf(() => c.use('k', 'a', iat, t0 + 1000))).toMatchObject({ error: 'invalid_dpop_proof' });
    const later = t0 + (IAT_PAST_SECONDS + 3) * 1000;
    expect(errorOf(() => c.use('k', 'd', later / 1000, later))).toBeUndefined();
    expect(c.size).toBe(1);
  });
});
