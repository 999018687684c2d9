import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ROTATION, planSigningKeys, type SigningAlgorithm } from '../shared/signing-keys.ts';
import { accessTokenClaims, tokenResponse } from './access-token.ts';
import { jwtKey, signJwt, verifyJwt } from './jwt.ts';
import { SigningKeys } from './signing.ts';

async function keyPair(alg: SigningAlgorithm) {
  const set = await planSigningKeys(undefined, { ...DEFAULT_ROTATION, algorithm: alg });
  return { set, key: jwtKey(set.keys[0]!), record: set.keys[0]! };
}

const NOW = Date.now();
const input = {
  issuer: 'https://issuer.example', subject: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa', clientId: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa',
  audiences: ['https://api.example'], scope: 'deploy', deployment: 'ns/d', lifetimeSeconds: 86400, nowMs: NOW,
  credentialFingerprint: 'fp',
};

describe('access tokens (RFC 9068)', () => {
  it.each<SigningAlgorithm>(['ES256', 'EdDSA'])('signed with %s, verify with jose against the published JWK', async (alg) => {
    const { key, record } = await keyPair(alg);
    const body = JSON.parse(tokenResponse(key, accessTokenClaims(input)) as string) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 86400, scope: 'deploy' });
    const { payload, protectedHeader } = await jwtVerify(body.access_token as string, createLocalJWKSet({ keys: [record.publicJwk] }), {
      issuer: input.issuer, audience: 'https://api.example', typ: 'at+jwt', algorithms: [alg],
    });
    expect(protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: record.kid });
    expect(payload).toEqual({
      iss: input.issuer, sub: input.subject, client_id: input.clientId, aud: 'https://api.example',
      iat: Math.floor(NOW / 1000), exp: Math.floor(NOW / 1000) + 86400, jti: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      scope: 'deploy', deployment: 'ns/d', cred_fp: 'fp',
    });
  });

  it('gives every token its own jti', () => {
    expect(accessTokenClaims(input).jti).not.toBe(accessTokenClaims(input).jti);
  });

  it('carries several audiences as an array', () => {
    expect(accessTokenClaims({ ...input, audiences: ['a', 'b'] }).aud).toEqual(['a', 'b']);
  });
});

describe('verifying our own tokens', () => {
  it('returns the claims of a token signed with the key its kid names', async () => {
    const { key } = await keyPair('ES256');
    const token = signJwt(key, { a: 1 }) as string;
    expect(verifyJwt(token, (kid) => (kid === key.kid ? key : undefined))?.claims).toEqual({ a: 1 });
  });

  it.each<[string, (t: string) => string]>([
    ['a changed payload', (t) => { const [h, , s] = t.split('.'); return `${h}.${Buffer.from('{"a":2}').toString('base64url')}.${s}`; }],
    ['a truncated signature', (t) => t.slice(0, -4)],
    ['alg none', (t) => `${Buffer.from('{"alg":"none","typ":"at+jwt","kid":"k"}').toString('base64url')}.${t.split('.')[1]}.`],
    ['four parts', (t) => `${t}.x`],
    ['an empty string', () => ''],
    ['garbage', () => 'not a jwt'],
  ])('refuses %s', async (_what, mangle) => {
    const { key } = await keyPair('ES256');
    const token = mangle(await signJwt(key, { a: 1 }));
    expect(verifyJwt(token, () => key)).toBeUndefined();
  });

  it('refuses a token whose kid is not published', async () => {
    const { key } = await keyPair('ES256');
    expect(verifyJwt(await signJwt(key, { a: 1 }), () => undefined)).toBeUndefined();
  });

  it('refuses a token signed by another key under the same kid', async () => {
    const a = await keyPair('ES256');
    const b = await keyPair('ES256');
    expect(verifyJwt(await signJwt(a.key, { a: 1 }), () => ({ ...b.key, kid: a.key.kid }))).toBeUndefined();
  });
});

describe('the signing keys a server uses', () => {
  it('switches to the next key at its activation and stops publishing a retired key at its expiry, without a new key set', async () => {
    const H = 3600_000;
    const t0 = Date.now();
    const policy = { ...DEFAULT_ROTATION, rotateEveryMs: 10 * H, publishLeadMs: H, maxTokenLifetimeMs: 24 * H, clockSkewMs: 0 };
    const s0 = await planSigningKeys(undefined, policy, t0);
    const s1 = await planSigningKeys(s0, policy, t0 + 9 * H);
    const [old, next] = s1.keys;
    const keys = new SigningKeys();
    keys.update(s1, t0 + 9 * H);
    expect(keys.active(t0 + 9.9 * H)?.kid).toBe(old!.kid);
    expect((JSON.parse(keys.jwks(t0 + 9.9 * H)) as { keys: { kid: string }[] }).keys.map((k) => k.kid)).toEqual([old!.kid, next!.kid]);
    expect(keys.active(t0 + 10 * H + 1)?.kid).toBe(next!.kid);
    expect(keys.verifier(old!.kid, t0 + 33 * H)?.kid).toBe(old!.kid);
    expect(keys.verifier(old!.kid, t0 + 34 * H + 1)).toBeUndefined();
    expect(keys.jwks(t0 + 34 * H + 1)).not.toContain(old!.kid);
  });

  it('publishes public members only', async () => {
    const { set } = await keyPair('ES256');
    const keys = new SigningKeys();
    keys.update(set);
    const jwks = JSON.parse(keys.jwks(Date.now())) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(jwks.keys[0]).toMatchObject({ use: 'sig', alg: 'ES256', kid: set.keys[0]!.kid });
  });

  it('has no active key once the key set is gone', async () => {
    const { set } = await keyPair('ES256');
    const keys = new SigningKeys();
    keys.update(set);
    keys.update(undefined);
    expect(keys.active(Date.now())).toBeUndefined();
    expect(keys.jwks(Date.now())).toBe('{"keys":[]}');
  });
});
