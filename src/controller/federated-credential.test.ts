import { describe, expect, it } from 'vitest';
import type { Deployment, FederatedCredential, FederatedCredentialSpec } from '../api/index.ts';
import { API_VERSION } from '../api/index.ts';
import { decideFederatedCredential, FederatedCredentialReconciler, type FederatedCredentialStatus } from './federated-credential.ts';

const ISSUER = 'https://token.actions.githubusercontent.com';
const dep: Deployment = { apiVersion: API_VERSION, kind: 'Deployment', metadata: { namespace: 'team-a', name: 'airflow', uid: 'dep-uid' }, spec: {} };
const owned = [{ apiVersion: API_VERSION, kind: 'Deployment', name: 'airflow', uid: 'dep-uid' }];

function credential(spec: Partial<FederatedCredentialSpec> = {}, ownerReferences = owned): FederatedCredential {
  return {
    apiVersion: API_VERSION, kind: 'FederatedCredential',
    metadata: { namespace: 'team-a', name: 'ci', uid: 'fc-uid', generation: 2, resourceVersion: '7', ownerReferences },
    spec: { deploymentRef: { name: 'airflow' }, issuer: ISSUER, subject: 'repo:acme/airflow-dags:ref:refs/heads/main', ...spec },
  };
}

const cfg = { allowedIssuers: new Set([ISSUER]) };

describe('what a FederatedCredential needs', () => {
  it.each<[string, FederatedCredential, Deployment | undefined, string, string | undefined]>([
    ['an ownerReference, when its Deployment exists', credential({}, []), dep, 'setOwner', undefined],
    ['DeploymentNotFound, when its Deployment does not exist', credential({}, []), undefined, 'writeStatus', 'DeploymentNotFound'],
    ['DeploymentNotFound, when the Deployment it belonged to was deleted', credential(), undefined, 'writeStatus', 'DeploymentNotFound'],
    ['DeploymentNotFound, when a Deployment of the same name replaced its own', credential(),
      { ...dep, metadata: { ...dep.metadata, uid: 'another' } }, 'writeStatus', 'DeploymentNotFound'],
    ['DeploymentNotFound, and no ownerReference, when its Deployment is being deleted (an orphaning delete)', credential({}, []),
      { ...dep, metadata: { ...dep.metadata, deletionTimestamp: new Date('2026-01-01T00:00:00Z') } }, 'writeStatus', 'DeploymentNotFound'],
    ['IssuerNotAllowed, for an issuer the admin did not list', credential({ issuer: 'https://gitlab.example.com' }), dep, 'writeStatus', 'IssuerNotAllowed'],
    ['IssuerNotAllowed, for the issuer with a trailing slash', credential({ issuer: `${ISSUER}/` }), dep, 'writeStatus', 'IssuerNotAllowed'],
    ['InvalidExpression, for claims that do not compile', credential({ claims: 'claims.repository ==' }), dep, 'writeStatus', 'InvalidExpression'],
    ['Ready, for a subject', credential(), dep, 'writeStatus', 'Ready'],
    ['Ready, for claims that compile', credential({ subject: undefined, claims: "claims.ref == 'refs/heads/main'" }), dep, 'writeStatus', 'Ready'],
  ])('is %s', (_what, fc, d, kind, reason) => {
    const action = decideFederatedCredential(fc, d, cfg);
    expect(action.kind).toBe(kind);
    if (action.kind === 'writeStatus') expect(action.ready.reason).toBe(reason);
  });

  it('carries the compiler\'s message in InvalidExpression', () => {
    const action = decideFederatedCredential(credential({ claims: 'claims.repository ==' }), dep, cfg);
    expect(action.kind === 'writeStatus' && action.ready.message).toMatch(/^spec\.claims: Unexpected token/);
  });
});

describe('the FederatedCredential reconcile', () => {
  function run(fc: FederatedCredential, d: Deployment | undefined) {
    const written: FederatedCredentialStatus[] = [];
    const events: string[] = [];
    let owner = 0;
    const reconciler = new FederatedCredentialReconciler(
      { federatedCredential: () => fc, deployment: () => d },
      {
        setOwner: (x) => { owner++; return Promise.resolve(x); },
        applyStatus: (x, status) => { written.push(status); return Promise.resolve({ ...x, status }); },
        event: (_x, type, reason) => { events.push(`${type} ${reason}`); },
      },
      cfg, () => new Date('2026-01-01T00:00:00Z'));
    return { run: () => reconciler.reconcile('team-a', 'ci'), written, events, owner: () => owner };
  }

  it('writes the status with observedGeneration, and a Warning event when it turns False', async () => {
    const r = run(credential({ issuer: 'https://elsewhere.example' }), dep);
    await r.run();
    expect(r.written).toHaveLength(1);
    expect(r.written[0]!.observedGeneration).toBe(2);
    expect(r.written[0]!.conditions![0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'IssuerNotAllowed', observedGeneration: 2 });
    expect(r.events).toEqual(['Warning IssuerNotAllowed']);
  });

  it('writes nothing when the status already says it, whatever lastUsedAt holds', async () => {
    const first = run(credential(), dep);
    await first.run();
    const fc = { ...credential(), status: { ...first.written[0]!, lastUsedAt: '2026-01-01T00:00:00Z' } };
    const again = run(fc, dep);
    await again.run();
    expect(again.written).toHaveLength(0);
  });

  it('only sets the ownerReference on its first pass, leaving the status to the pass its watch event brings', async () => {
    const r = run(credential({}, []), dep);
    await r.run();
    expect(r.owner()).toBe(1);
    expect(r.written).toHaveLength(0);
  });
});
