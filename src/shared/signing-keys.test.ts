import { describe, expect, it } from 'vitest';
import { jwtVerify, importJWK, SignJWT } from 'jose';
import {
  activeKey, DEFAULT_ROTATION, jwkThumbprint, nextTransition, parseSigningKeySet, planSigningKeys, privateKeyOf, publicJwkOf, publishedKeys,
  SECRET_KEYS, type KeyGenerator, type RotationPolicy,
} from './signing-keys.ts';

const H = 3600_000;
const policy: RotationPolicy = { ...DEFAULT_ROTATION, rotateEveryMs: 10 * H, publishLeadMs: H, maxTokenLifetimeMs: 24 * H, clockSkewMs: 0 };

describe('signing key rotation plan', () => {
  it('creates one active ES256 key on first start', async () => {
    const now = Date.now();
    const set = await planSigningKeys(undefined, policy, now);
    expect(set.keys).toHaveLength(1);
    expect(activeKey(set, now)?.alg).toBe('ES256');
    expect(set.keys[0]!.publicJwk).not.toHaveProperty('d');
    expect(set.keys[0]!.publicJwk).toMatchObject({ kid: set.keys[0]!.kid, alg: 'ES256', use: 'sig' });
  });

  it('changes nothing while the key is not due', async () => {
    const now = Date.now();
    const set = await planSigningKeys(undefined, policy, now);
    expect(await planSigningKeys(set, policy, now + 8 * H)).toBe(set);
  });

  it('publishes the successor before it signs, and keeps the old key until its tokens have expired', async () => {
    const t0 = Date.now();
    const s0 = await planSigningKeys(undefined, policy, t0);
    const s1 = await planSigningKeys(s0, policy, t0 + 9 * H);
    expect(await planSigningKeys(s0, policy, t0 + 8.9 * H)).toBe(s0);
    expect(s1.keys).toHaveLength(2);
    const [old, next] = s1.keys as [typeof s1.keys[0], typeof s1.keys[0]];
    // Published, not yet signing.
    expect(publishedKeys(s1, t0 + 9.5 * H).map((k) => k.kid)).toEqual([old.kid, next.kid]);
    expect(activeKey(s1, t0 + 9.9 * H)?.kid).toBe(old.kid);
    // Signs at its activation, with no further write.
    expect(Date.parse(next.activateAt)).toBe(t0 + 10 * H);
    expect(activeKey(s1, t0 + 10 * H + 1)?.kid).toBe(next.kid);
    expect(nextTransition(s1, t0 + 9.5 * H)).toBe(t0 + 10 * H);
    // The old key stays published for a full token lifetime after it retires.
    expect(publishedKeys(s1, t0 + 33.9 * H).map((k) => k.kid)).toContain(old.kid);
    const s2 = await planSigningKeys(s1, policy, t0 + 34.1 * H);
    expect(s2.keys.map((k) => k.kid)).not.toContain(old.kid);
    expect(s2.keys.map((k) => k.kid)).toContain(next.kid);
  });

  it('moves to EdDSA through a published successor when the algorithm changes', async () => {
    const t0 = Date.now();
    const s0 = await planSigningKeys(undefined, policy, t0);
    const s1 = await planSigningKeys(s0, { ...policy, algorithm: 'EdDSA' }, t0 + H);
    const next = s1.keys.find((k) => k.alg === 'EdDSA')!;
    expect(Date.parse(next.activateAt)).toBe(t0 + 2 * H);
    expect(activeKey(s1, t0 + 2 * H)?.alg).toBe('EdDSA');
  });

  it('round-trips through JSON and signs tokens that verify with the published key', async () => {
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const set = parseSigningKeySet(JSON.stringify(await planSigningKeys(undefined, { ...policy, algorithm: alg })));
      const k = activeKey(set)!;
      const jwt = await new SignJWT({ a: 1 }).setProtectedHeader({ alg, kid: k.kid }).sign(privateKeyOf(k));
      const { payload } = await jwtVerify(jwt, await importJWK(k.publicJwk, alg));
      expect(payload.a).toBe(1);
    }
  });

  it.each([
    ['not JSON', '{'],
    ['wrong version', '{"version":2,"keys":[]}'],
    ['a private member in the public JWK', JSON.stringify({ version: 1, keys: [{ kid: 'k', alg: 'ES256', privateJwk: {}, publicJwk: { d: 'x' }, activateAt: new Date().toISOString() }] })],
    ['an unknown algorithm', JSON.stringify({ version: 1, keys: [{ kid: 'k', alg: 'HS256', privateJwk: {}, publicJwk: {}, activateAt: new Date().toISOString() }] })],
  ])('refuses a malformed key set: %s', (_n, json) => {
    expect(() => parseSigningKeySet(json)).toThrow();
  });
});

describe('keys held in a PKCS#11 token', () => {
  const token: KeyGenerator = {
    kind: 'pkcs11',
    async generate(alg) {
      // A stand-in for the token: a real key pair whose private half is dropped, as the token keeps it.
      const m = await SECRET_KEYS.generate(alg);
      return { kid: m.kid, alg, publicJwk: m.publicJwk, pkcs11: { label: `apikey-operator-${m.kid.slice(0, 8)}`, id: '0a0b' } };
    },
  };

  it('rolls over to the configured source like a new algorithm: published ahead, the old key kept until its tokens expire', async () => {
    const t0 = Date.now();
    const s0 = await planSigningKeys(undefined, policy, t0);
    const s1 = await planSigningKeys(s0, policy, t0 + H, token);
    expect(s1.keys).toHaveLength(2);
    const [old, next] = s1.keys;
    expect(next!.pkcs11).toBeDefined();
    expect(next!.privateJwk).toBeUndefined();
    expect(Date.parse(next!.activateAt)).toBe(t0 + 2 * H);
    expect(old).toMatchObject({ retireAt: next!.activateAt, expireAt: new Date(t0 + 2 * H + 24 * H).toISOString() });
    expect(activeKey(s1, t0 + H)!.kid).toBe(old!.kid);
    expect(activeKey(s1, t0 + 2 * H)!.kid).toBe(next!.kid);
    // Nothing more to do until the next rotation; and back to the Secret the same way.
    expect(await planSigningKeys(s1, policy, t0 + 3 * H, token)).toBe(s1);
    const s2 = await planSigningKeys(s1, policy, t0 + 3 * H);
    expect(s2.keys.at(-1)!.privateJwk).toBeDefined();
    expect(s2.keys.find((k) => k.kid === next!.kid)!.retireAt).toBe(s2.keys.at(-1)!.activateAt);
    expect(parseSigningKeySet(JSON.stringify(s2))).toEqual(s2);
  });

  it.each<[string, (k: Record<string, unknown>, other: Record<string, unknown>) => Record<string, unknown>, RegExp]>([
    ['both a private JWK and a PKCS#11 location', (k, other) => ({ ...k, privateJwk: other.privateJwk }), /exactly one of privateJwk and pkcs11/],
    ['neither', ({ pkcs11: _, ...k }) => k, /exactly one of privateJwk and pkcs11/],
    ['a label with a control character', (k) => ({ ...k, pkcs11: { label: 'a\nb', id: '0a' } }), /malformed pkcs11 location/],
    ['an empty label', (k) => ({ ...k, pkcs11: { label: '', id: '0a' } }), /malformed pkcs11 location/],
    ['an id that is not hex', (k) => ({ ...k, pkcs11: { label: 'l', id: 'xyz' } }), /malformed pkcs11 location/],
    ['an odd-length id', (k) => ({ ...k, pkcs11: { label: 'l', id: 'abc' } }), /malformed pkcs11 location/],
    ['an uppercase id', (k) => ({ ...k, pkcs11: { label: 'l', id: '0A' } }), /malformed pkcs11 location/],
    ['a location that is not an object', (k) => ({ ...k, pkcs11: 'l' }), /malformed pkcs11 location/],
    ['a location with more than label and id', (k, other) => ({ ...k, pkcs11: { label: 'l', id: '0a', d: (other.privateJwk as { d: string }).d } }), /malformed pkcs11 location/],
    ['a private member beside the location', (k, other) => ({ ...k, d: (other.privateJwk as { d: string }).d }), /holds private key material/],
    ['a private member in the public JWK', (k, other) => ({ ...k, publicJwk: { ...k.publicJwk as object, d: (other.privateJwk as { d: string }).d } }), /members a public ES256 key has not \(d\)/],
    ['a kid that is not the thumbprint', (k) => ({ ...k, kid: 'A'.repeat(43), publicJwk: { ...k.publicJwk as object, kid: 'A'.repeat(43) } }), /thumbprint/],
    ['an RSA or HMAC algorithm', (k) => ({ ...k, alg: 'HS256' }), /alg must be one of ES256, EdDSA/],
    ['no activation time', (k) => ({ ...k, activateAt: 'soon' }), /RFC 3339/],
  ])('refuses a PKCS#11 key with %s, saying which key without any key material', async (_what, change, message) => {
    const set = await planSigningKeys(undefined, policy, Date.now(), token);
    expect(parseSigningKeySet(JSON.stringify(set))).toEqual(set);
    const other = (await planSigningKeys(undefined, policy, Date.now())).keys[0] as unknown as Record<string, unknown>;
    const text = JSON.stringify({ ...set, keys: set.keys.map((k) => change(k as unknown as Record<string, unknown>, other)) });
    let error = '';
    try { parseSigningKeySet(text); } catch (e) { error = (e as Error).message; }
    expect(error).toMatch(/^signing keys: key [\w-]+: /);
    expect(error).toMatch(message);
    expect(error).not.toContain((other.privateJwk as { d: string }).d);
  });
});

describe('a signing key set read from the Secret', () => {
  const json = (o: unknown) => JSON.stringify(o);
  async function goodSet() {
    return planSigningKeys(undefined, policy, Date.now());
  }
  const withKey = (set: Awaited<ReturnType<typeof goodSet>>, change: (k: Record<string, unknown>) => Record<string, unknown>) =>
    json({ ...set, keys: set.keys.map((k) => change(k as unknown as Record<string, unknown>)) });

  it('accepts what the controller writes, ES256 and EdDSA', async () => {
    for (const algorithm of ['ES256', 'EdDSA'] as const) {
      const set = await planSigningKeys(undefined, { ...policy, algorithm }, Date.now());
      expect(parseSigningKeySet(json(set)).keys[0]!.kid).toBe(set.keys[0]!.kid);
      expect(jwkThumbprint(algorithm, set.keys[0]!.publicJwk)).toBe(set.keys[0]!.kid);
    }
  });

  it.each<[string, (k: Record<string, unknown>, other: Record<string, unknown>) => Record<string, unknown>, RegExp]>([
    ['a kid that is not the thumbprint', (k) => ({ ...k, kid: 'A'.repeat(43), publicJwk: { ...k.publicJwk as object, kid: 'A'.repeat(43) } }), /thumbprint/],
    ['a kid of another shape', (k) => ({ ...k, kid: 'key-1' }), /thumbprint/],
    ['an oct key', (k) => ({ ...k, publicJwk: { kty: 'oct', k: 'c2VjcmV0', kid: k.kid, alg: 'ES256' } }), /kty EC/],
    ['a private member in the public JWK', (k) => ({ ...k, publicJwk: { ...k.publicJwk as object, d: (k.privateJwk as { d: string }).d } }), /members a public ES256 key has not \(d\)/],
    ['an RSA or HMAC algorithm', (k) => ({ ...k, alg: 'HS256' }), /alg must be one of ES256, EdDSA/],
    ['a private key of another pair', (k, other) => ({ ...k, privateJwk: other.privateJwk }), /not the same key/],
    ['a private key whose d belongs to another pair', (k, other) => ({ ...k, privateJwk: { ...k.privateJwk as object, d: (other.privateJwk as { d: string }).d } }), /does not belong/],
    ['a private key that is no key', (k) => ({ ...k, privateJwk: { ...k.privateJwk as object, d: 'AAAA' } }), /not a valid key|does not belong/],
    ['no activation time', (k) => ({ ...k, activateAt: 'soon' }), /RFC 3339/],
    ['a bad expiry time', (k) => ({ ...k, expireAt: 'never' }), /expireAt/],
  ])('refuses %s, saying which key without any key material', async (_what, change, message) => {
    const set = await goodSet();
    const other = (await goodSet()).keys[0] as unknown as Record<string, unknown>;
    const text = withKey(set, (k) => change(k, other));
    let error = '';
    try { parseSigningKeySet(text); } catch (e) { error = (e as Error).message; }
    expect(error).toMatch(message);
    const priv = set.keys[0]!.privateJwk as { d: string };
    expect(error).not.toContain(priv.d);
    expect(error).not.toContain((other.privateJwk as { d: string }).d);
  });

  it('refuses a kid twice, too many keys, and JSON that does not parse, without quoting it', async () => {
    const set = await goodSet();
    expect(() => parseSigningKeySet(json({ ...set, keys: [set.keys[0], set.keys[0]] }))).toThrow(/appears twice/);
    expect(() => parseSigningKeySet(json({ ...set, keys: Array.from({ length: 17 }, () => set.keys[0]) }))).toThrow(/at most 16/);
    const broken = `${json(set).slice(0, -5)}`;
    let error = '';
    try { parseSigningKeySet(broken); } catch (e) { error = (e as Error).message; }
    expect(error).toBe('signing keys: not valid JSON');
    expect(() => parseSigningKeySet('null')).toThrow(/expected/);
  });

  it('publishes only the public members, kid, alg and use', async () => {
    const set = await goodSet();
    const k = set.keys[0]!;
    const published = publicJwkOf({ ...k, publicJwk: { ...k.publicJwk, x5u: 'https://evil.example', ext: true } });
    expect(Object.keys(published).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });
});
