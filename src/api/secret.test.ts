import { describe, expect, it } from 'vitest';
import type { ApiKey } from './generated.ts';
import {
  APIKEY_LABEL, credentialsOf, credentialsSecret, MANAGED_BY, MANAGED_BY_LABEL, reportedSecretNameOf, SECRET_KEYS, SECRET_TYPE,
  secretNameOf,
} from './secret.ts';

const apiKey = (spec: Partial<ApiKey['spec']> = {}, status?: ApiKey['status']): ApiKey => ({
  apiVersion: 'apikeys.dev/v1', kind: 'ApiKey',
  metadata: { name: 'ci', namespace: 'team', uid: '8d1f0c1e-0000-4000-8000-000000000001' },
  spec: { deploymentRef: { name: 'airflow' }, ...spec },
  status,
});
const creds = { keyId: 'ak_x', secret: 'not-a-real-secret', tokenUrl: 'http://t/oauth/token', audience: 'https://a' };

describe('the credentials Secret', () => {
  it('holds the four keys, base64-encoded, and gives them back decoded', () => {
    const s = credentialsSecret(apiKey(), creds);
    expect(s.type).toBe(SECRET_TYPE);
    expect(Object.keys(s.data ?? {}).sort()).toEqual(Object.values(SECRET_KEYS).sort());
    expect(s.data?.[SECRET_KEYS.secret]).toBe(Buffer.from(creds.secret).toString('base64'));
    expect(credentialsOf(s)).toEqual(creds);
  });

  it('reads an absent key as empty', () => {
    expect(credentialsOf({ data: {} })).toEqual({ keyId: '', secret: '', tokenUrl: '', audience: '' });
  });

  it('carries its template\'s labels and the two it is found by, which a template cannot override', () => {
    const s = credentialsSecret(apiKey({ secretTemplate: { labels: { team: 'data', [MANAGED_BY_LABEL]: 'someone-else' } } }), creds);
    expect(s.metadata.labels).toEqual({ team: 'data', [MANAGED_BY_LABEL]: MANAGED_BY, [APIKEY_LABEL]: 'ci' });
  });

  it('is controlled by its ApiKey', () => {
    expect(credentialsSecret(apiKey(), creds).metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ApiKey', name: 'ci', uid: '8d1f0c1e-0000-4000-8000-000000000001', controller: true }),
    ]);
  });
});

describe('the name of the credentials Secret', () => {
  it.each<[string, ApiKey, string, string]>([
    ['the ApiKey\'s name by default', apiKey(), 'ci', 'ci'],
    ['spec.secretName when set', apiKey({ secretName: 'ci-creds' }), 'ci-creds', 'ci-creds'],
    ['as reported, the one status names', apiKey({ secretName: 'new' }, { secretName: 'old' }), 'new', 'old'],
  ])('is %s', (_what, ak, specified, reported) => {
    expect(secretNameOf(ak)).toBe(specified);
    expect(reportedSecretNameOf(ak)).toBe(reported);
  });
});
