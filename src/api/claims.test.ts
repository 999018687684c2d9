import { describe, expect, it } from 'vitest';
import { audienceClaimName, audiencesNotHeld, claimStands, customAudiences, firstClaimant, holdsAudience, nextHolder } from './claims.ts';

const c = (uid: string, creationTimestamp?: string, deleting = false) => ({
  metadata: { uid, creationTimestamp, deletionTimestamp: deleting ? '2026-01-01T00:00:00Z' : undefined },
});

describe('firstClaimant', () => {
  it.each([
    ['the oldest wins', [c('b', '2026-01-02T00:00:00Z'), c('a', '2026-01-03T00:00:00Z'), c('z', '2026-01-01T00:00:00Z')], 'z'],
    ['a tie in time goes to the smaller uid', [c('b', '2026-01-01T00:00:00Z'), c('a', '2026-01-01T00:00:00Z')], 'a'],
    ['one being deleted hands the name on', [c('a', '2026-01-01T00:00:00Z', true), c('b', '2026-01-02T00:00:00Z')], 'b'],
    ['one without a creation time never wins over one with', [c('a'), c('b', '2026-01-02T00:00:00Z')], 'b'],
  ])('%s', (_name, claimants, winner) => {
    expect(firstClaimant(claimants)?.metadata.uid).toBe(winner);
  });

  it('names nobody when nobody is left', () => {
    expect(firstClaimant([])).toBeUndefined();
    expect(firstClaimant([c('a', '2026-01-01T00:00:00Z', true)])).toBeUndefined();
  });
});

const dep = (namespace: string, name: string, uid: string, audiences: string[], extra: { deletionTimestamp?: string; creationTimestamp?: string } = {}) =>
  ({ metadata: { namespace, name, uid, ...extra }, spec: { audiences } });
const claim = (audience: string, holder: { namespace: string; name: string; uid: string }) =>
  ({ apiVersion: 'apikeys.dev/v1', kind: 'AudienceClaim', metadata: { name: audienceClaimName(audience) }, spec: { audience, holder } }) as const;

describe('an audience claim', () => {
  const X = 'https://payments.example';
  const payments = dep('team-b', 'payments', 'uid-b', [X], { creationTimestamp: '2026-06-01T00:00:00Z' });
  const old = dep('team-a', 'old', 'uid-a', ['https://a.example', X], { creationTimestamp: '2020-01-01T00:00:00Z' });
  const held = claim(X, { namespace: 'team-b', name: 'payments', uid: 'uid-b' });

  it('has a fixed-length name that is a valid object name, whatever the audience', () => {
    for (const aud of [X, 'urn:a:b', 'ÄÖ ü/%00', 'x'.repeat(256)]) expect(audienceClaimName(aud)).toMatch(/^aud-[0-9a-f]{64}$/);
    expect(audienceClaimName('a')).not.toBe(audienceClaimName('b'));
  });

  it('is held by the Deployment it names, not by an older one that lists the audience too', () => {
    expect(holdsAudience(held, payments, X)).toBe(true);
    expect(holdsAudience(held, old, X)).toBe(false);
    expect(audiencesNotHeld(payments, () => held, [])).toEqual([]);
    expect(audiencesNotHeld(old, (a) => (a === X ? held : undefined), [])).toEqual(['https://a.example', X]);
  });

  it('is not held by a Deployment re-created under the holder\'s name, nor for another audience', () => {
    expect(holdsAudience(held, { ...payments, metadata: { ...payments.metadata, uid: 'uid-b2' } }, X)).toBe(false);
    expect(holdsAudience(held, payments, 'https://other.example')).toBe(false);
    expect(holdsAudience(undefined, payments, X)).toBe(false);
  });

  it('claims nothing for the shared default audiences', () => {
    expect(audiencesNotHeld(dep('n', 'd', 'u', ['https://default.example']), () => undefined, ['https://default.example'])).toEqual([]);
    expect(customAudiences(old, [X])).toEqual(['https://a.example']);
  });

  it.each([
    ['stands while its holder lists the audience', payments, true],
    ['does not stand once the holder is gone', undefined, false],
    ['does not stand once the holder stops listing the audience', dep('team-b', 'payments', 'uid-b', ['https://else.example']), false],
    ['does not stand while the holder is being deleted', dep('team-b', 'payments', 'uid-b', [X], { deletionTimestamp: '2026-06-02T00:00:00Z' }), false],
    ['does not stand for a Deployment re-created under the holder\'s name', dep('team-b', 'payments', 'uid-b2', [X]), false],
  ])('%s', (_what, holder, stands) => {
    expect(claimStands(held, holder)).toBe(stands);
  });

  it('goes, when nobody holds it, to the first created of those listing it (the rule before claims, so holders keep what they hold on upgrade)', () => {
    expect(nextHolder([payments, old])?.metadata.name).toBe('old');
    expect(nextHolder([payments])?.metadata.name).toBe('payments');
    expect(nextHolder([])).toBeUndefined();
  });
});
