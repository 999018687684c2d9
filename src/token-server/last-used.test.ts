import { describe, expect, it } from 'vitest';
import { KubeError, type KubeClient, type RequestOptions } from '../kube/client.ts';
import { createLogger } from '../shared/log.ts';
import { apiKeyFixture, deploymentObject } from './fixtures.ts';
import { keyEntry } from './keys.ts';
import { LAST_USED_FIELD_MANAGER, LastUsedRecorder } from './last-used.ts';

interface Call { method: string; path: string; opts: RequestOptions }

/** Records what would be sent; the real apiserver round trip is covered by test/token-server.test.ts. */
function recordingClient(fail = false) {
  const calls: Call[] = [];
  const client = {
    request(method: string, path: string, opts: RequestOptions) {
      calls.push({ method, path, opts });
      return fail ? Promise.reject(new KubeError(403, 'Forbidden', 'forbidden')) : Promise.resolve({});
    },
  } as unknown as KubeClient;
  return { client, calls };
}

const dep = deploymentObject('ns', 'd');
const log = createLogger({ level: 'silent' });

describe('status.lastUsedAt', () => {
  it('is written in the background with a merge patch to the status subresource, carrying the uid', async () => {
    const { client, calls } = recordingClient();
    const results: boolean[] = [];
    const r = new LastUsedRecorder({ client, log, onWrite: (ok) => results.push(ok) });
    const f = apiKeyFixture(dep, 'k');
    const key = keyEntry(f.apiKey)!;
    const t = Date.parse('2030-01-01T00:00:00.700Z');
    r.touch(key, t);
    expect(calls).toHaveLength(0);
    await r.flush();
    expect(calls).toEqual([{
      method: 'PATCH',
      path: '/apis/apikeys.dev/v1/namespaces/ns/apikeys/k/status',
      opts: expect.objectContaining({
        contentType: 'application/merge-patch+json',
        query: { fieldManager: LAST_USED_FIELD_MANAGER },
        body: { metadata: { uid: f.apiKey.metadata.uid }, status: { lastUsedAt: '2030-01-01T00:00:00Z' } },
      }) as unknown,
    }]);
    expect(results).toEqual([true]);
  });

  it('is written at most once a minute per key', async () => {
    const { client, calls } = recordingClient();
    const r = new LastUsedRecorder({ client, log });
    const key = keyEntry(apiKeyFixture(dep, 'k').apiKey)!;
    const t = Date.now();
    for (let i = 0; i < 100; i++) r.touch(key, t + i * 100);
    await r.flush();
    r.touch(key, t + 30_000);
    await r.flush();
    expect(calls).toHaveLength(1);
    r.touch(key, t + 61_000);
    await r.flush();
    expect(calls).toHaveLength(2);
  });

  it('is not written when the cached status shows a write in the last minute (another replica)', async () => {
    const { client, calls } = recordingClient();
    const r = new LastUsedRecorder({ client, log });
    const now = Date.now();
    const key = keyEntry(apiKeyFixture(dep, 'k', { status: { lastUsedAt: new Date(now - 10_000).toISOString() } }).apiKey)!;
    r.touch(key, now);
    await r.flush();
    expect(calls).toHaveLength(0);
  });

  it('only logs and counts a failed write', async () => {
    const { client } = recordingClient(true);
    const results: boolean[] = [];
    const r = new LastUsedRecorder({ client, log, onWrite: (ok) => results.push(ok) });
    r.touch(keyEntry(apiKeyFixture(dep, 'k').apiKey)!, Date.now());
    await expect(r.flush()).resolves.toBeUndefined();
    expect(results).toEqual([false]);
  });
});
