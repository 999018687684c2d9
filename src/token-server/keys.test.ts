import { describe, expect, it } from 'vitest';
import { COMPROMISED_ANNOTATION, compromiseAnnotation } from '../api/compromise.ts';
import { generateSecret, hashSecret, secretDigest } from '../keys/format.ts';
import { apiKeyFixture, deploymentObject } from './fixtures.ts';
import {
  credentialFingerprint, deploymentEntry, keyEntry, keyRefusal, matchSecret, tokenLifetimeSeconds,
  type DeploymentEntry, type KeyEntry,
} from './keys.ts';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const H = 3600_000;

function pair(over: { key?: Parameters<typeof apiKeyFixture>[2]; dep?: Parameters<typeof deploymentObject>[2] } = {}) {
  const dep = deploymentObject('ns', 'd', over.dep);
  const f = apiKeyFixture(dep, 'k', over.key);
  return { key: keyEntry(f.apiKey)!, dep: deploymentEntry(dep), secret: f.secret, fixture: f, depObj: dep };
}

describe('which keys are refused', () => {
  it('accepts a Ready key of an existing Deployment that owns it', () => {
    const { key, dep } = pair();
    expect(keyRefusal(key, dep, NOW)).toBeUndefined();
  });

  it.each<[string, (k: KeyEntry, d: DeploymentEntry) => [KeyEntry, DeploymentEntry | undefined], string]>([
    ['being deleted', (k, d) => [{ ...k, deleting: true }, d], 'key_deleting'],
    ['past spec.expiresAt, by the clock of the request', (k, d) => [{ ...k, expiresAtMs: NOW }, d], 'key_expired'],
    ['of a Deployment that is gone', (k) => [k, undefined], 'deployment_gone'],
    ['of a Deployment being deleted', (k, d) => [k, { ...d, deleting: true }], 'deployment_gone'],
    ['owned by an earlier Deployment of the same name', (k, d) => [k, { ...d, uid: 'another-uid' }], 'owner_mismatch'],
    ['not yet owned by its Deployment', (k, d) => [{ ...k, ownerUid: undefined }, d], 'owner_mismatch'],
    ['Ready=False', (k, d) => [{ ...k, notReady: true, notReadyReason: 'SecretConflict' }, d], 'key_not_ready'],
  ])('refuses a key %s', (_what, change, reason) => {
    const { key, dep } = pair();
    const [k, d] = change(key, dep);
    expect(keyRefusal(k, d, NOW)?.reason).toBe(reason);
  });

  it('reads Ready=False and its reason from the conditions', () => {
    const { key } = pair({ key: { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'Expired', message: '', lastTransitionTime: '2030-01-01T00:00:00Z' }] } } });
    expect(key.notReady).toBe(true);
    expect(key.notReadyReason).toBe('Expired');
  });

  it('takes the earlier of spec.expiresAt and status.expiresAt', () => {
    const { key } = pair({ key: { spec: { expiresAt: '2030-01-02T00:00:00Z' }, status: { expiresAt: '2030-01-01T12:00:00Z' } } });
    expect(key.expiresAtMs).toBe(Date.parse('2030-01-01T12:00:00Z'));
  });

  it('has no entry while the controller has not given the key an id', () => {
    const dep = deploymentObject('ns', 'd');
    const f = apiKeyFixture(dep, 'k');
    expect(keyEntry({ ...f.apiKey, status: {} })).toBeUndefined();
    expect(keyEntry({ ...f.apiKey, status: { ...f.apiKey.status, keyId: 'not-a-key-id' } })).toBeUndefined();
  });

  it('defaults permissions to deploy', () => {
    const { key } = pair({ key: { spec: { permissions: undefined } } });
    expect(key.scope).toBe('deploy');
  });
});

describe('checking a presented secret', () => {
  it('matches the current secret', () => {
    const { key, secret } = pair();
    expect(matchSecret(key, secretDigest(secret), NOW)).toBe('current');
  });

  it('refuses another secret', () => {
    const { key } = pair();
    expect(matchSecret(key, secretDigest('aks_other'), NOW)).toBeUndefined();
  });

  it('matches the previous secret during its grace period, and not after it', () => {
    const old = 'aks_previous-secret';
    const { key } = pair({ key: { status: { previousSecretHash: hashSecret(old), previousSecretValidUntil: new Date(NOW + 1000).toISOString(),
      lastRotationTime: new Date(NOW).toISOString() } } });
    expect(matchSecret(key, secretDigest(old), NOW)).toBe('previous');
    expect(matchSecret(key, secretDigest(old), NOW + 1000)).toBeUndefined();
  });

  it('caps the previous secret\'s grace by the last rotation plus the key\'s own gracePeriod, whatever the status says', () => {
    const old = 'aks_previous-secret';
    const rotated = new Date(NOW - 10 * 60_000).toISOString();
    const forged = { previousSecretHash: hashSecret(old), previousSecretValidUntil: '2099-01-01T00:00:00Z', lastRotationTime: rotated };
    // The default gracePeriod, 1h: 50 minutes left, not 69 years.
    const { key } = pair({ key: { status: forged } });
    expect(key.previousValidUntilMs).toBe(NOW + 50 * 60_000);
    expect(matchSecret(key, secretDigest(old), NOW + 49 * 60_000)).toBe('previous');
    expect(matchSecret(key, secretDigest(old), NOW + 51 * 60_000)).toBeUndefined();
    // A gracePeriod of 0s: no grace at all.
    expect(pair({ key: { spec: { rotation: { gracePeriod: '0s' } }, status: forged } }).key.previousValidUntilMs).toBe(NOW - 10 * 60_000);
    // An earlier end in the status stands.
    const early = { ...forged, previousSecretValidUntil: new Date(NOW + 60_000).toISOString() };
    expect(pair({ key: { status: early } }).key.previousValidUntilMs).toBe(NOW + 60_000);
  });

  it('without a lastRotationTime, counts the grace from the key\'s creation', () => {
    const forged = { previousSecretHash: hashSecret('aks_previous-secret'), previousSecretValidUntil: '2099-01-01T00:00:00Z' };
    const { key, fixture } = pair({ key: { status: forged } });
    const created = new Date(fixture.apiKey.metadata.creationTimestamp!).getTime();
    expect(key.previousValidUntilMs).toBe(created + H);
  });

  it('gives each secret its own fingerprint, and none of the secret itself', () => {
    const a = credentialFingerprint(hashSecret('aks_a'));
    expect(a).toHaveLength(16);
    expect(a).not.toBe(credentialFingerprint(hashSecret('aks_b')));
    expect(hashSecret('aks_a')).not.toContain(a);
  });
});

describe('the lifetime of a token', () => {
  const key = { tokenTtlMs: 24 * H, expiresAtMs: Infinity, previousValidUntilMs: 0 };
  const dep = { maxTokenTtlMs: 24 * H };
  it.each<[string, Partial<typeof key>, Partial<typeof dep>, 'current' | 'previous', number]>([
    ['is 24h by default', {}, {}, 'current', 86400],
    ['is the key\'s tokenTTL', { tokenTtlMs: 90 * 60_000 }, {}, 'current', 5400],
    ['is capped by the Deployment\'s maxTokenTTL', {}, { maxTokenTtlMs: H }, 'current', 3600],
    ['is never above 24h', { tokenTtlMs: 48 * H }, { maxTokenTtlMs: 48 * H }, 'current', 86400],
    ['ends at the key\'s expiresAt', { expiresAtMs: NOW + 10 * 60_000 }, {}, 'current', 600],
    ['ends with the grace period of the previous secret it was issued with', { previousValidUntilMs: NOW + 120_000 }, {}, 'previous', 120],
    ['ignores the grace period for the current secret', { previousValidUntilMs: NOW + 120_000 }, {}, 'current', 86400],
    ['is zero when the key expires now', { expiresAtMs: NOW }, {}, 'current', 0],
  ])('%s', (_what, k, d, match, seconds) => {
    expect(tokenLifetimeSeconds({ ...key, ...k }, { ...dep, ...d }, match, NOW)).toBe(seconds);
  });

  it('reads tokenTTL and maxTokenTTL as durations', () => {
    const { key: k, dep: d } = pair({ key: { spec: { tokenTTL: '90m' } }, dep: { maxTokenTTL: '1h' } });
    expect(k.tokenTtlMs).toBe(90 * 60_000);
    expect(d.maxTokenTtlMs).toBe(H);
    expect(tokenLifetimeSeconds(k, d, 'current', NOW)).toBe(3600);
  });
});

describe('a key whose secret was reported leaked (api/compromise.ts)', () => {
  const mark = (secret: string) => ({
    [COMPROMISED_ANNOTATION]: compromiseAnnotation({ secretHash: hashSecret(secret), reportedAt: '2030-01-01T00:00:00Z', source: 'secret-scanning' }),
  });
  const old = generateSecret();
  const inGrace = { status: { previousSecretHash: hashSecret(old), previousSecretValidUntil: '2030-01-01T01:00:00Z', lastRotationTime: '2030-01-01T00:00:00Z' } };

  it('is refused from the moment the mark names its current secret, before the controller answers', () => {
    const { fixture, dep } = pair();
    fixture.apiKey.metadata.annotations = mark(fixture.secret);
    const key = keyEntry(fixture.apiKey)!;
    expect(key.compromised).toBe(true);
    expect(keyRefusal(key, dep, NOW)?.reason).toBe('key_compromised');
  });

  it('is refused while status.compromise names its current secret, mark or not', () => {
    const { fixture, dep } = pair();
    fixture.apiKey.status!.compromise = { secretHash: fixture.apiKey.status!.secretHash!, reportedAt: '2030-01-01T00:00:00Z', source: 'kubectl' };
    expect(keyRefusal(keyEntry(fixture.apiKey)!, dep, NOW)?.reason).toBe('key_compromised');
  });

  it('loses only its previous secret, at once, when the mark names that one', () => {
    const { fixture, dep } = pair({ key: inGrace });
    expect(matchSecret(keyEntry(fixture.apiKey)!, secretDigest(old), NOW)).toBe('previous');
    fixture.apiKey.metadata.annotations = mark(old);
    const key = keyEntry(fixture.apiKey)!;
    expect(matchSecret(key, secretDigest(old), NOW)).toBeUndefined();
    expect(matchSecret(key, secretDigest(fixture.secret), NOW)).toBe('current');
    expect(keyRefusal(key, dep, NOW)).toBeUndefined();
  });

  it('is served again once rotated: a mark of a secret it no longer has changes nothing', () => {
    const leaked = generateSecret();
    const { fixture, dep } = pair({ key: { status: { compromise: { secretHash: hashSecret(leaked), reportedAt: '2030-01-01T00:00:00Z', source: 'console' } } } });
    fixture.apiKey.metadata.annotations = mark(leaked);
    const key = keyEntry(fixture.apiKey)!;
    expect(key.compromised).toBe(false);
    expect(keyRefusal(key, dep, NOW)).toBeUndefined();
    expect(key.reportedHashes).toEqual([hashSecret(leaked), hashSecret(leaked)]);
  });
});
