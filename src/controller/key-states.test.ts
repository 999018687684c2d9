import { describe, expect, it } from 'vitest';
import type { ApiKey } from '../api/index.ts';
import { keyState, keysByDeployment } from './key-states.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const cond = (type: string, status: string, reason: string) => ({ type, status, reason, message: '', lastTransitionTime: '2026-05-01T00:00:00Z' });

function key(o: { ns?: string; dep?: string; expiresAt?: string; ready?: [string, string]; expiring?: boolean; deleting?: boolean }): ApiKey {
  const conditions = [
    ...(o.ready ? [cond('Ready', o.ready[0], o.ready[1])] : []),
    ...(o.expiring ? [cond('Expiring', 'True', 'ExpiresSoon')] : []),
  ] as NonNullable<ApiKey['status']>['conditions'];
  return {
    apiVersion: 'apikeys.dev/v1', kind: 'ApiKey',
    metadata: { name: 'k', namespace: o.ns ?? 'a', deletionTimestamp: o.deleting ? new Date(NOW) : undefined },
    spec: { deploymentRef: { name: o.dep ?? 'airflow' }, expiresAt: o.expiresAt },
    status: { conditions },
  };
}

describe('keyState', () => {
  it.each([
    ['ready', key({ ready: ['True', 'SecretReady'] })],
    ['expiring', key({ ready: ['True', 'SecretReady'], expiring: true, expiresAt: '2026-06-02T00:00:00Z' })],
    ['expired', key({ ready: ['True', 'SecretReady'], expiresAt: '2026-06-01T00:00:00Z' })],
    ['expired', key({ ready: ['False', 'Expired'], expiresAt: '2026-05-01T00:00:00Z' })],
    ['conflict', key({ ready: ['False', 'SecretConflict'] })],
    ['conflict', key({ ready: ['False', 'KeyIdConflict'], expiring: true })],
    ['not_ready', key({ ready: ['Unknown', 'Issuing'] })],
    ['not_ready', key({ ready: ['False', 'DeploymentNotFound'] })],
    ['not_ready', key({})],
  ] as const)('%s', (state, ak) => expect(keyState(ak, NOW)).toBe(state));
});

describe('keysByDeployment', () => {
  it('counts by namespace and Deployment, with the soonest expiry among keys still alive, and leaves out keys being deleted', () => {
    const got = keysByDeployment([
      key({ ready: ['True', 'SecretReady'], expiresAt: '2026-07-01T00:00:00Z' }),
      key({ ready: ['True', 'SecretReady'], expiring: true, expiresAt: '2026-06-03T00:00:00Z' }),
      key({ ready: ['False', 'Expired'], expiresAt: '2026-05-01T00:00:00Z' }),
      key({ ready: ['True', 'SecretReady'], deleting: true, expiresAt: '2026-06-01T01:00:00Z' }),
      key({ ns: 'b', ready: ['True', 'SecretReady'] }),
    ], NOW);
    expect(got).toEqual([
      { namespace: 'a', deployment: 'airflow', counts: { ready: 1, expiring: 1, expired: 1, conflict: 0, not_ready: 0 }, soonestExpiryMs: Date.parse('2026-06-03T00:00:00Z') },
      { namespace: 'b', deployment: 'airflow', counts: { ready: 1, expiring: 0, expired: 0, conflict: 0, not_ready: 0 }, soonestExpiryMs: undefined },
    ]);
  });
});
