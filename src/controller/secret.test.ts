import { describe, expect, it } from 'vitest';
import { credentialsSecret, type ApiKey, type SecretObject } from '../api/index.ts';
import { appliedMetadataKeys, createdMetadataLeft, secretUpToDate } from './secret.ts';

const apiKey = (labels: Record<string, string>, annotations: Record<string, string> = {}): ApiKey => ({
  apiVersion: 'apikeys.dev/v1', kind: 'ApiKey',
  metadata: { name: 'ci', namespace: 'team', uid: '8d1f0c1e-0000-4000-8000-000000000001' },
  spec: { deploymentRef: { name: 'airflow' }, secretTemplate: { labels, annotations } },
});
const creds = { keyId: 'ak_x', secret: 'not-a-real-secret', tokenUrl: 'http://t/oauth/token', audience: 'https://a' };

/** The Secret as the apiserver holds it after `applied` was applied, plus `extra` labels of another manager. */
function stored(applied: SecretObject, extra: Record<string, string> = {}): SecretObject {
  const keys = (o: Record<string, string> | undefined) => Object.fromEntries(Object.keys(o ?? {}).map((k) => [`f:${k}`, {}]));
  return {
    ...applied,
    metadata: {
      ...applied.metadata,
      labels: { ...applied.metadata?.labels, ...extra },
      managedFields: [
        {
          manager: 'apikey-operator', operation: 'Apply', apiVersion: 'v1',
          fieldsV1: { 'f:metadata': { 'f:labels': keys(applied.metadata?.labels), 'f:annotations': keys(applied.metadata?.annotations) } },
        },
        { manager: 'kubectl-label', operation: 'Update', apiVersion: 'v1', fieldsV1: { 'f:metadata': { 'f:labels': keys(extra) } } },
      ],
    },
  };
}

describe('secretUpToDate', () => {
  const first = credentialsSecret(apiKey({ team: 'data' }, { 'example.com/sync': 'vault' }), creds);

  it('needs no write when the Secret is what was applied, whatever other managers added', () => {
    expect(secretUpToDate(stored(first, { backup: 'daily' }), first)).toBe(true);
  });

  it('needs a write for a label or annotation the template no longer lists', () => {
    expect(secretUpToDate(stored(first), credentialsSecret(apiKey({}, { 'example.com/sync': 'vault' }), creds))).toBe(false);
    expect(secretUpToDate(stored(first), credentialsSecret(apiKey({ team: 'data' }), creds))).toBe(false);
  });

  it('needs a write for a new or changed label, and for changed data', () => {
    expect(secretUpToDate(stored(first), credentialsSecret(apiKey({ team: 'data', env: 'prod' }, { 'example.com/sync': 'vault' }), creds))).toBe(false);
    expect(secretUpToDate(stored(first), credentialsSecret(apiKey({ team: 'ml' }, { 'example.com/sync': 'vault' }), creds))).toBe(false);
    expect(secretUpToDate(stored(first), credentialsSecret(apiKey({ team: 'data' }, { 'example.com/sync': 'vault' }), { ...creds, audience: 'https://b' }))).toBe(false);
  });
});

describe('a Secret made by a create (no apply yet)', () => {
  const first = credentialsSecret(apiKey({ team: 'data' }, { 'example.com/sync': 'vault' }), creds);
  const created: SecretObject = { ...first, metadata: { ...first.metadata, managedFields: [
    { manager: 'apikey-operator', operation: 'Update', apiVersion: 'v1',
      fieldsV1: { 'f:metadata': { 'f:labels': { 'f:team': {} }, 'f:annotations': { 'f:example.com/sync': {} } } } }] } };
  const without = credentialsSecret(apiKey({}), creds);

  it('needs no write while it is what the template says', () => {
    expect(secretUpToDate(created, first)).toBe(true);
    expect(createdMetadataLeft(created, first)).toBeUndefined();
  });

  it('needs a write, and a removal of the created keys, for a label or annotation the template no longer lists', () => {
    expect(secretUpToDate(created, without)).toBe(false);
    expect(createdMetadataLeft(created, without)).toEqual({ labels: ['team'], annotations: ['example.com/sync'] });
  });
});

describe('appliedMetadataKeys', () => {
  it('reads the keys of the Apply entry of the manager, not of its Updates or other subresources', () => {
    const s: SecretObject = {
      metadata: {
        managedFields: [
          { manager: 'apikey-operator', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:u': {} } } } },
          { manager: 'apikey-operator', operation: 'Apply', subresource: 'status', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:s': {} } } } },
          { manager: 'apikey-operator', operation: 'Apply', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:a': {}, '.': {} }, 'f:annotations': { 'f:n': {} } } } },
        ],
      },
    };
    expect(appliedMetadataKeys(s, 'apikey-operator')).toEqual({ labels: ['a'], annotations: ['n'] });
    expect(appliedMetadataKeys({ metadata: {} }, 'apikey-operator')).toEqual({ labels: [], annotations: [] });
  });
});
