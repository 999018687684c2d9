import { describe, expect, it } from 'vitest';
import { DEFAULT_ROTATION, planSigningKeys, type SigningKeySet } from '../shared/signing-keys.ts';
import { SigningKeys } from './signing.ts';

describe('the token server\'s signing keys', () => {
  it('apply an update all or nothing: a key that cannot be imported leaves the previous set in use', async () => {
    const now = Date.now();
    const good = await planSigningKeys(undefined, DEFAULT_ROTATION, now);
    const keys = new SigningKeys();
    keys.update(good, now);
    const other = await planSigningKeys(undefined, DEFAULT_ROTATION, now);
    const broken: SigningKeySet = { version: 1, keys: [other.keys[0]!, { ...other.keys[0]!, kid: 'x', privateJwk: { kty: 'EC', crv: 'P-256', d: 'AA' } }] };
    expect(() => keys.update(broken, now)).toThrow();
    expect(keys.active(now)?.kid).toBe(good.keys[0]!.kid);
    expect(keys.verifier(other.keys[0]!.kid, now)).toBeUndefined();
    expect((JSON.parse(keys.jwks(now)) as { keys: { kid: string }[] }).keys.map((k) => k.kid)).toEqual([good.keys[0]!.kid]);
  });

  it('publish no member but the public ones, whatever the record holds', async () => {
    const now = Date.now();
    const set = await planSigningKeys(undefined, DEFAULT_ROTATION, now);
    const k = set.keys[0]!;
    const keys = new SigningKeys();
    keys.update({ version: 1, keys: [{ ...k, publicJwk: { ...k.publicJwk, d: (k.privateJwk as { d: string }).d } }] }, now);
    expect(keys.jwks(now)).not.toContain((k.privateJwk as { d: string }).d);
  });
});
