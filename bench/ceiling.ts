/**
 * The ceiling of the controller's design: the requests its reconcile makes
 * for a new key (src/controller/apikey.ts), sent straight from a client with
 * no controller logic, for `n` ApiKeys created beforehand in namespace `ns`.
 * A new key costs four: patch the ownerReference (a merge patch with the
 * resourceVersion), create the Secret, apply the status (Ready, with the
 * resourceVersion), create the event. The benches set the controller's time
 * to all Ready against this, measured in the same run. With `withCreates`
 * the ApiKeys' own creates are timed too, each just before its key's four
 * requests: the whole load of the controller's run, whose clock starts at the
 * first create and whose creates compete with its writes.
 */
import type { KubeClient } from '../src/kube/client.ts';
import { pool } from './support.ts';

const GROUP_PATH = '/apis/apikeys.dev/v1/namespaces';

export const CEILING_REQUESTS = [
  'patch the ownerReference', 'create the Secret', 'apply the status (Ready)', 'create the event',
] as const;

type Key = { metadata: { name: string; uid: string; resourceVersion: string } };

/**
 * Creates the namespace, a Deployment and `n` ApiKeys, then times the
 * controller's requests for them: milliseconds, and what `opts.cpu` (CPU
 * seconds used so far by some processes) grew by in that time.
 */
export async function ceiling(c: KubeClient, ns: string, n: number, concurrency: number,
  opts: { withCreates?: boolean; cpu?: () => number } = {}): Promise<{ ms: number; cpuS: number }> {
  await c.create('/api/v1/namespaces', { metadata: { name: ns } });
  const dep = await c.create<{ metadata: { uid: string } }>(`${GROUP_PATH}/${ns}/deployments`,
    { apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: {} });
  const keys: Key[] = [];
  const create = async (i: number) => { keys[i] = await c.create(`${GROUP_PATH}/${ns}/apikeys`, {
    apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: `k${i}` }, spec: { deploymentRef: { name: 'd' } } }); };
  if (!opts.withCreates) await pool(n, concurrency, create);
  const cpu0 = opts.cpu?.() ?? 0;
  const t0 = performance.now();
  await pool(n, concurrency, async (i) => {
    if (opts.withCreates) await create(i);
    const ak = keys[i]!;
    const path = `${GROUP_PATH}/${ns}/apikeys/${ak.metadata.name}`;
    const owned = await c.mergePatch<Key>(path, { metadata: { resourceVersion: ak.metadata.resourceVersion,
      ownerReferences: [{ apiVersion: 'apikeys.dev/v1', kind: 'Deployment', name: 'd', uid: dep.metadata.uid }] } });
    await c.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret',
      metadata: { name: ak.metadata.name, labels: { 'app.kubernetes.io/managed-by': 'apikey-operator', 'apikeys.dev/apikey': ak.metadata.name },
        ownerReferences: [{ apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', name: ak.metadata.name, uid: ak.metadata.uid, controller: true, blockOwnerDeletion: true }] },
      type: 'apikeys.dev/api-key', data: { API_KEY_ID: 'eA==', API_KEY_SECRET: 'eA==', TOKEN_URL: 'eA==', AUDIENCE: 'eA==' } }, { fieldManager: 'apikey-operator' });
    await c.apply(`${path}/status`, { apiVersion: 'apikeys.dev/v1', kind: 'ApiKey',
      metadata: { name: ak.metadata.name, resourceVersion: owned.metadata.resourceVersion },
      status: { keyId: 'ak_x', secretHash: 'sha256:x', secretName: ak.metadata.name, observedGeneration: 1,
        conditions: ([['Ready', 'True'], ['Reconciling', 'False'], ['Stalled', 'False']] as const).map(([type, status]) => (
          { type, status, reason: 'SecretReady', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 })) } },
    'apikey-operator');
    await c.create(`/apis/events.k8s.io/v1/namespaces/${ns}/events`, { apiVersion: 'events.k8s.io/v1', kind: 'Event',
      metadata: { name: `${ak.metadata.name}.${i}` }, eventTime: new Date().toISOString().replace('Z', '000Z'), reportingController: 'bench',
      reportingInstance: 'bench', action: 'CreateSecret', reason: 'Created', note: 'n', type: 'Normal',
      regarding: { apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', name: ak.metadata.name, namespace: ns, uid: ak.metadata.uid } });
  });
  return { ms: performance.now() - t0, cpuS: (opts.cpu?.() ?? 0) - cpu0 };
}
