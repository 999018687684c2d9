/**
 * How long 1,000 ApiKeys take to become Ready, next to how long 1,000 plain
 * Secret creates take against the same apiserver (the limit: a key needs at
 * least one Secret write), and the controller's own requests for a new key
 * sent straight from a client (the ceiling of its design). Starts its own
 * control plane; run on demand:
 *
 *   npm run bench:controller [-- --keys 1000 --workers 8 --concurrency 32]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { benchCluster, isReady, metricsOf, pool as poolOf, startController, until } from '../support.ts';

const { values } = parseArgs({ options: {
  keys: { type: 'string', default: '1000' }, workers: { type: 'string', default: '8' }, concurrency: { type: 'string', default: '32' },
} });
const N = Number(values.keys);
const C = Number(values.concurrency);

const pool = (n: number, f: (i: number) => Promise<unknown>) => poolOf(n, C, f);

const cluster = await benchCluster('bench-controller');
try {
  const c = cluster.client;
  await c.create('/api/v1/namespaces', { metadata: { name: 'limit' } });
  await c.create('/api/v1/namespaces', { metadata: { name: 'keys' } });
  await c.create('/api/v1/namespaces', { metadata: { name: 'op' } });

  // The limit: N Secret creates, C at a time.
  let t0 = performance.now();
  await pool(N, (i) => c.create('/api/v1/namespaces/limit/secrets', { metadata: { name: `s${i}` }, stringData: { API_KEY_SECRET: 'x'.repeat(53) } }));
  const limitMs = performance.now() - t0;

  // The same requests the controller makes per key (see its request metrics),
  // straight from a client with no controller logic: the ceiling of this design.
  await c.create('/api/v1/namespaces', { metadata: { name: 'raw' } });
  const dep = await c.create<{ metadata: { uid: string } }>('/apis/apikeys.dev/v1alpha1/namespaces/raw/deployments',
    { apiVersion: 'apikeys.dev/v1alpha1', kind: 'Deployment', metadata: { name: 'd' }, spec: {} });
  const rawKeys: { metadata: { name: string; uid: string; resourceVersion: string } }[] = [];
  await pool(N, async (i) => { rawKeys[i] = await c.create('/apis/apikeys.dev/v1alpha1/namespaces/raw/apikeys', {
    apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', metadata: { name: `k${i}` }, spec: { deploymentRef: { name: 'd' } } }); });
  t0 = performance.now();
  await pool(N, async (i) => {
    const ak = rawKeys[i]!;
    const path = `/apis/apikeys.dev/v1alpha1/namespaces/raw/apikeys/${ak.metadata.name}`;
    const owned = await c.mergePatch<typeof ak>(path, { metadata: { resourceVersion: ak.metadata.resourceVersion,
      ownerReferences: [{ apiVersion: 'apikeys.dev/v1alpha1', kind: 'Deployment', name: 'd', uid: dep.metadata.uid }] } });
    const status = (rv: string, ready: string, reason: string) => c.apply<typeof ak>(`${path}/status`, { apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey',
      metadata: { name: ak.metadata.name, resourceVersion: rv },
      status: { keyId: 'ak_x', secretHash: 'sha256:x', secretName: ak.metadata.name, observedGeneration: 1,
        conditions: [{ type: 'Ready', status: ready, reason, message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] } }, 'apikey-operator');
    const issuing = await status(owned.metadata.resourceVersion, 'Unknown', 'Issuing');
    await c.create('/api/v1/namespaces/raw/secrets', { apiVersion: 'v1', kind: 'Secret',
      metadata: { name: ak.metadata.name, labels: { 'app.kubernetes.io/managed-by': 'apikey-operator', 'apikeys.dev/apikey': ak.metadata.name },
        ownerReferences: [{ apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', name: ak.metadata.name, uid: ak.metadata.uid, controller: true, blockOwnerDeletion: true }] },
      type: 'apikeys.dev/api-key', data: { API_KEY_ID: 'eA==', API_KEY_SECRET: 'eA==', TOKEN_URL: 'eA==', AUDIENCE: 'eA==' } }, { fieldManager: 'apikey-operator' });
    await status(issuing.metadata.resourceVersion, 'True', 'SecretReady');
    await c.create('/apis/events.k8s.io/v1/namespaces/raw/events', { apiVersion: 'events.k8s.io/v1', kind: 'Event',
      metadata: { name: `${ak.metadata.name}.${i}` }, eventTime: new Date().toISOString().replace('Z', '000Z'), reportingController: 'bench',
      reportingInstance: 'bench', action: 'Create', reason: 'Created', note: 'n', type: 'Normal',
      regarding: { apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', name: ak.metadata.name, namespace: 'raw', uid: ak.metadata.uid } });
  });
  const sameRequestsMs = performance.now() - t0;

  const ctl = await startController(cluster, { operatorNamespace: 'op', namespaces: 'keys', workers: values.workers });
  await until('the controller to be ready', () => isReady(ctl.health), 60_000);
  await c.create('/apis/apikeys.dev/v1alpha1/namespaces/keys/deployments', { apiVersion: 'apikeys.dev/v1alpha1', kind: 'Deployment', metadata: { name: 'd' }, spec: {} });

  t0 = performance.now();
  const creating = pool(N, (i) => c.create('/apis/apikeys.dev/v1alpha1/namespaces/keys/apikeys', {
    apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', metadata: { name: `k${i}` }, spec: { deploymentRef: { name: 'd' } },
  }));
  await creating;
  const createdMs = performance.now() - t0;
  for (;;) {
    const list = await c.list<{ status?: { conditions?: { type: string; status: string }[] } }>('/apis/apikeys.dev/v1alpha1/namespaces/keys/apikeys');
    const ready = list.items.filter((k) => k.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')).length;
    if (ready === N) break;
    await sleep(100);
  }
  const readyMs = performance.now() - t0;
  await sleep(2000);
  const metrics = await metricsOf(ctl.health);
  const requests = [...metrics.matchAll(/^apikey_operator_kube_requests_total\{method="(\w+)",code="(\d+)"\} (\d+)/gm)]
    .map(([, m, code, n]) => `${m} ${code}: ${n}`);
  const reconciles = [...metrics.matchAll(/^apikey_operator_reconcile_total\{kind="(\w+)",result="(\w+)"\} (\d+)/gm)]
    .map(([, k, r, n]) => `${k} ${r}: ${n}`);
  await ctl.stop();

  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s (${Math.round(N / (ms / 1000))}/s)`;
  console.log(`node ${process.version}, ${N} objects, client concurrency ${C}, ${values.workers} workers`);
  console.log(`limit: ${N} plain Secret creates:       ${fmt(limitMs)}`);
  console.log(`the controller's 5 requests per key, from a client: ${fmt(sameRequestsMs)}`);
  console.log('  (patch the ownerReference, apply the status (Issuing), create the Secret, apply the status (Ready), create the event)');
  console.log(`${N} ApiKey creates (client side):       ${fmt(createdMs)}`);
  console.log(`${N} ApiKeys Ready (from first create):   ${fmt(readyMs)}  = ${(readyMs / limitMs).toFixed(2)}x the Secret limit, ${(readyMs / sameRequestsMs).toFixed(2)}x the same-requests limit`);
  console.log(`controller requests: ${requests.join(', ')}`);
  console.log(`reconciles: ${reconciles.join(', ')}`);
} finally {
  await cluster.stop();
}
