import { describe, expect, it } from 'vitest';
import type { ApiKey } from '../../../api/index.ts';
import { expiresColumn } from './list.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const key = (expiresAt?: string, expiring?: boolean): ApiKey => ({
  apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'ci' },
  spec: { deploymentRef: { name: 'airflow' }, expiresAt },
  status: expiring === undefined ? undefined : {
    conditions: [{ type: 'Expiring', status: expiring ? 'True' : 'False', reason: expiring ? 'ExpiresSoon' : 'ExpiryNotNear', message: '', lastTransitionTime: '2026-05-01T00:00:00Z' }],
  },
});

describe('the EXPIRES column of kubectl apikey list', () => {
  it.each([
    ['a key that never expires', key(), '<never>'],
    ['a key far from expiry', key('2026-07-01T00:00:00Z', false), 'in 30d'],
    ['a key the controller says expires soon', key('2026-06-06T12:00:00Z', true), 'in 5d12h (soon)'],
    ['an expired key', key('2026-06-01T00:00:00Z', false), 'expired'],
  ])('shows %s as %j', (_name, ak, text) => expect(expiresColumn(ak, NOW)).toBe(text));
});
