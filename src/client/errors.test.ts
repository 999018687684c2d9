import { describe, expect, it } from 'vitest';
import { KubeError } from '../kube/client.ts';
import { admissionDenial, kubeFailure } from './errors.ts';

const CLUSTER = { server: 'https://127.0.0.1:6443', context: 'dev' };
const CREATE = { verb: 'create', resource: 'apikeys.apikeys.dev', namespace: 'team-a', name: 'ci' };
const POLICY_REFUSAL = 'apikeys.apikeys.dev "ci" is forbidden: ValidatingAdmissionPolicy \'ako-apikey-permissions\' with binding ' +
  '\'ako-apikey-permissions\' denied request: an ApiKey with the deploy permission needs create on deployments/token ' +
  '(apikeys.dev) of Deployment team-a/airflow, which alice does not have';
const RBAC_REFUSAL = 'apikeys.apikeys.dev is forbidden: User "alice" cannot create resource "apikeys" in API group "apikeys.dev" ' +
  'in the namespace "team-a"';

describe('admissionDenial', () => {
  it.each([
    ['a ValidatingAdmissionPolicy', POLICY_REFUSAL,
      'an ApiKey with the deploy permission needs create on deployments/token (apikeys.dev) of Deployment team-a/airflow, which alice does not have'],
    ['a webhook', 'admission webhook "keys.example.com" denied the request: no keys on Fridays\n', 'no keys on Fridays'],
    ['RBAC (none)', RBAC_REFUSAL, undefined],
  ])('reads the reason of %s', (_who, message, reason) => {
    expect(admissionDenial(message)).toBe(reason);
  });
});

describe('kubeFailure of a 403', () => {
  it('gives an admission policy\'s reason, not advice to check RBAC that would answer yes', () => {
    const failure = kubeFailure(new KubeError(403, 'Forbidden', POLICY_REFUSAL), CREATE, CLUSTER);
    expect(failure.message).toBe('forbidden: cannot create apikeys.apikeys.dev "ci" in namespace "team-a": an ApiKey with the deploy ' +
      'permission needs create on deployments/token (apikeys.dev) of Deployment team-a/airflow, which alice does not have');
  });

  it('says who may not do what, and how to check it, when RBAC refuses', () => {
    const failure = kubeFailure(new KubeError(403, 'Forbidden', RBAC_REFUSAL), CREATE, CLUSTER);
    expect(failure.message).toContain('forbidden: you (alice) may not create apikeys.apikeys.dev "ci" in namespace "team-a"');
    expect(failure.message).toContain('kubectl auth can-i create apikeys.apikeys.dev -n team-a');
  });
});
