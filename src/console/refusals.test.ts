import { describe, expect, it } from 'vitest';
import { KubeError } from '../kube/client.ts';
import { refusalOf, type Attempt } from './refusals.ts';

const create: Attempt = { verb: 'create', what: 'ApiKeys', namespace: 'team-a', name: 'ci' };

describe('a refused Kubernetes call, in words for the person', () => {
  it.each<[string, KubeError, Attempt, number, string]>([
    ['RBAC', new KubeError(403, 'Forbidden', 'apikeys.apikeys.dev is forbidden: User "alice" cannot create resource ...'), create, 403,
      'You may not create ApiKeys in team-a.'],
    ['RBAC across namespaces', new KubeError(403, 'Forbidden', 'forbidden'), { verb: 'list', what: 'Deployments' }, 403,
      'You may not list Deployments across all namespaces.'],
    ['an admission policy', new KubeError(403, 'Forbidden',
      'apikeys.apikeys.dev "ci" is forbidden: ValidatingAdmissionPolicy \'p\' with binding \'b\' denied request: you may not get deploy tokens of team-a/airflow'),
    create, 403, 'The cluster refused to create "ci": you may not get deploy tokens of team-a/airflow'],
    ['a missing object', new KubeError(404, 'NotFound', 'apikeys.apikeys.dev "ci" not found'), create, 404, '"ci" was not found in team-a.'],
    ['a missing API', new KubeError(404, 'NotFound', 'the server could not find the requested resource'), create, 404,
      'The cluster does not serve ApiKeys: is apikey-operator installed (its CRDs)?'],
    ['expired credentials', new KubeError(401, 'Unauthorized', 'Unauthorized'), create, 401, 'The Kubernetes API no longer accepts your credentials. Sign in again.'],
    ['a name taken', new KubeError(409, 'AlreadyExists', 'apikeys.apikeys.dev "ci" already exists'), create, 409, '"ci" already exists in team-a.'],
  ])('says what %s refused', (_, err, attempt, status, message) => {
    const r = refusalOf(err, attempt);
    expect(r.status).toBe(status);
    expect(r.message).toBe(message);
  });

  it('keeps the apiserver\'s validation message for the form to place', () => {
    const r = refusalOf(new KubeError(422, 'Invalid', 'ApiKey.apikeys.dev "ci" is invalid: spec.description: Too long'), create);
    expect(r.status).toBe(422);
    expect(r.invalid).toContain('spec.description');
  });

  it('never passes on a stack trace', () => {
    const r = refusalOf(new TypeError('boom'), create);
    expect(r.message).toBe('Could not create ApiKeys: boom');
    expect(r.message).not.toContain('at ');
  });
});
