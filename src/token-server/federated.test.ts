import { describe, expect, it } from 'vitest';
import type { FederatedCredential, FederatedCredentialSpec } from '../api/index.ts';
import { API_VERSION } from '../api/index.ts';
import { deploymentObject } from './fixtures.ts';
import { byCreation, federatedCredentialStands, federatedEntry, federatedMatch } from './federated.ts';
import { deploymentEntry } from './keys.ts';
import { celBudget, compileClaimsExpression } from '../federation/claims-expression.ts';

const ISSUER = 'https://token.actions.githubusercontent.com';
const SERVER = 'https://apikeys.example.com';
const SUBJECT = 'repo:acme/airflow-dags:ref:refs/heads/main';
const dep = deploymentObject('team-a', 'airflow');

function credential(spec: Partial<FederatedCredentialSpec> = {}, meta: Partial<FederatedCredential['metadata']> = {}): FederatedCredential {
  return {
    apiVersion: API_VERSION, kind: 'FederatedCredential',
    metadata: {
      namespace: 'team-a', name: 'ci', uid: 'fc-1', creationTimestamp: new Date('2026-01-01T00:00:00Z'),
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'Deployment', name: 'airflow', uid: dep.metadata.uid! }], ...meta,
    },
    spec: { deploymentRef: { name: 'airflow' }, issuer: ISSUER, subject: SUBJECT, ...spec },
  };
}

const github = { iss: ISSUER, aud: SERVER, sub: SUBJECT, repository: 'acme/airflow-dags', ref: 'refs/heads/main' };

describe('a FederatedCredential entry', () => {
  it('names its client, its Deployment, its permissions and a 1h token TTL by default', () => {
    const e = federatedEntry(credential());
    expect(e).toMatchObject({
      clientId: 'federated:team-a/ci', deployment: 'team-a/airflow', ownerUid: dep.metadata.uid, permissions: ['deploy'], scope: 'deploy',
      tokenTtlMs: 3600_000, audience: undefined,
    });
    expect(e.fingerprint).toMatch(/^[\w-]{16}$/);
    expect(federatedEntry(credential({}, { uid: 'fc-2' })).fingerprint).not.toBe(e.fingerprint);
  });

  it.each<[string, Partial<FederatedCredentialSpec>]>([
    ['another issuer', { issuer: 'https://gitlab.example.com' }],
    ['an audience set', { audience: 'https://other.example' }],
    ['another subject', { subject: 'repo:acme/airflow-dags:ref:refs/heads/feature-x' }],
    ['no subject', { subject: undefined, claims: "claims.ref == 'refs/heads/main'" }],
    ['a claims expression added', { claims: "claims.ref == 'refs/heads/main'" }],
    ['more permissions', { permissions: ['deploy', 'read'] }],
    ['fewer permissions', { permissions: ['read'] }],
  ])('marks its tokens anew when its spec trusts or grants otherwise: %s', (_what, change) => {
    const before = federatedEntry(credential()).fingerprint;
    expect(federatedEntry(credential(change)).fingerprint).not.toBe(before);
  });

  it.each<[string, Partial<FederatedCredentialSpec>]>([
    ['its description', { description: 'new words' }],
    ['its token TTL', { tokenTTL: '5m' }],
    ['the order or repetition of its permissions', { permissions: ['deploy', 'deploy'] }],
  ])('keeps the mark of its tokens when only %s changes', (_what, change) => {
    expect(federatedEntry(credential(change)).fingerprint).toBe(federatedEntry(credential()).fingerprint);
  });

  it('cannot be given the same mark by moving text between fields', () => {
    const a = federatedEntry(credential({ subject: 'a b', claims: 'c' })).fingerprint;
    const b = federatedEntry(credential({ subject: 'a', claims: 'b c' })).fingerprint;
    expect(a).not.toBe(b);
  });

  it.each<[string, FederatedCredential, boolean]>([
    ['stands for its own Deployment', credential(), true],
    ['does not stand without an ownerReference (the controller has not seen it)', credential({}, { ownerReferences: [] }), false],
    ['does not stand for a Deployment re-created under the same name', credential({}, {
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'Deployment', name: 'airflow', uid: 'an-older-one' }],
    }), false],
    ['does not stand while being deleted', credential({}, { deletionTimestamp: new Date() }), false],
    ['does not stand with an expression that does not compile', credential({ claims: 'claims.ref ==' }), false],
  ])('%s', (_what, fc, stands) => {
    expect(federatedCredentialStands(federatedEntry(fc), deploymentEntry(dep))).toBe(stands);
  });
});

describe('matching an external token', () => {
  it.each<[string, Partial<FederatedCredentialSpec>, Record<string, unknown>, boolean]>([
    ['the subject, for the server\'s audience', {}, github, true],
    ['the subject, with the audience among several', {}, { ...github, aud: ['x', SERVER] }, true],
    ['not another audience', {}, { ...github, aud: 'https://elsewhere.example' }, false],
    ['the credential\'s own audience', { audience: 'apikeys' }, { ...github, aud: 'apikeys' }, true],
    ['not another subject', {}, { ...github, sub: 'repo:acme/airflow-dags:ref:refs/heads/dev' }, false],
    ['subject and claims, both true', { claims: "claims.repository == 'acme/airflow-dags'" }, github, true],
    ['not when the claims are false', { claims: "claims.ref == 'refs/heads/release'" }, github, false],
    ['claims alone', { subject: undefined, claims: "claims.ref == 'refs/heads/main'" }, { ...github, sub: 'anything' }, true],
    ['not when the claims fail on a missing claim', { subject: undefined, claims: "claims.environment == 'prod'" }, github, false],
  ])('%s', (_what, spec, claims, matches) => {
    expect(federatedMatch(federatedEntry(credential(spec)), claims, SERVER, celBudget())).toBe(matches);
  });

  it('shares one runtime budget between the credentials one request tries: a spent budget matches nothing more', () => {
    const costly = "[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, a == b || a != b)) && claims.ref == 'refs/heads/release'";
    const first = federatedEntry(credential({ claims: costly }));
    const cheap = federatedEntry(credential({ claims: "claims.ref == 'refs/heads/main'" }));
    const one = compileClaimsExpression(costly);
    expect(one.ok && one.cost).toBeGreaterThan(100);
    const budget = celBudget(100);
    expect(federatedMatch(first, github, SERVER, budget)).toBe(false);
    expect(budget.remaining).toBeLessThan(0);
    // Alone, the cheap credential matches; after the costly one spent the request's budget, it does not.
    expect(federatedMatch(cheap, github, SERVER, celBudget(100))).toBe(true);
    expect(federatedMatch(cheap, github, SERVER, budget)).toBe(false);
  });

  it('tries the oldest credential first, then by uid', () => {
    const older = federatedEntry(credential({}, { name: 'b', uid: 'z', creationTimestamp: new Date('2025-01-01T00:00:00Z') }));
    const sameTimeA = federatedEntry(credential({}, { name: 'c', uid: 'a' }));
    const sameTimeB = federatedEntry(credential({}, { name: 'd', uid: 'b' }));
    expect([sameTimeB, sameTimeA, older].sort(byCreation).map((e) => e.name)).toEqual(['b', 'c', 'd']);
  });
});
