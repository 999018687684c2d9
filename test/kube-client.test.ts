/**
 * The worker loop tells a decision taken on a stale cache (retry on the
 * newer version, no backoff) from a failure (retry with backoff) by the
 * apiserver's answer alone. These are the answers of the real apiserver to
 * each kind of write the controller makes with a stale resourceVersion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey } from '../src/api/index.ts';
import { isAlreadyExists, isConflict, KubeError } from '../src/kube/client.ts';
import { createNamespace } from './support/cluster.ts';
import { adminClient, apiKeyPath, createApiKey, secretPath } from './support/resources.ts';

let ns: Awaited<ReturnType<typeof createNamespace>>;
let stale: ApiKey;
beforeAll(async () => {
  ns = await createNamespace('kube-client');
  stale = await createApiKey(ns.name, 'k', { deploymentRef: { name: 'd' } });
  await adminClient().mergePatch(apiKeyPath(ns.name, 'k'), { metadata: { labels: { moved: 'on' } } });
});
afterAll(async () => { await ns.cleanup(); });

async function refusal(write: () => Promise<unknown>): Promise<KubeError> {
  const err = await write().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KubeError);
  return err as KubeError;
}

describe('a write based on a stale resourceVersion', () => {
  const rv = () => stale.metadata.resourceVersion;
  it.each([
    ['a server-side apply of the status', () => adminClient().apply(`${apiKeyPath(ns.name, 'k')}/status`, {
      apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'k', namespace: ns.name, resourceVersion: rv() },
      status: { keyId: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa' },
    }, 'apikey-operator')],
    ['a merge patch of the ownerReferences', () => adminClient().mergePatch(apiKeyPath(ns.name, 'k'), {
      metadata: { resourceVersion: rv(), ownerReferences: [{ apiVersion: 'apikeys.dev/v1', kind: 'Deployment', name: 'd', uid: '00000000-0000-4000-8000-000000000000' }] },
    })],
  ])('is a conflict when it is %s', async (_name, write) => {
    const err = await refusal(write);
    expect(isConflict(err)).toBe(true);
    expect([err.status, err.reason]).toEqual([409, 'Conflict']);
  });
});

describe('a create of an object that exists', () => {
  it('is AlreadyExists, not a conflict: a decision was not taken on a stale cache', async () => {
    const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'twice', namespace: ns.name } };
    await adminClient().create(secretPath(ns.name), body);
    const err = await refusal(() => adminClient().create(secretPath(ns.name), body));
    expect(isAlreadyExists(err)).toBe(true);
    expect(isConflict(err)).toBe(false);
  });
});
