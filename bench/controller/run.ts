/**
 * How long 1,000 ApiKeys take to become Ready, next to how long 1,000 plain
 * Secret creates take against the same apiserver (the limit: a key needs at
 * least one Secret write). Starts its own control plane; run on demand:
 *
 *   npm run bench:controller [-- --keys 1000 --workers 8 --concurrency 32]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../src/kube/client.ts';
import { down, freePort, up } from '../../test/cluster/controlplane.ts';
import { CRD_FILES } from '../../test/support/paths.ts';

const root = join(import.meta.dirname, '..', '..');
const { values } = parseArgs({ options: {
  keys: { type: 'string', default: '1000' }, workers: { type: 'string', default: '8' }, concurrency: { type: 'string', default: '32' },
} });
const N = Number(values.keys);
const C = Number(values.concurrency);

async function pool<T>(n: number, f: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: C }, async () => { while (next < n) await f(next++); }));
}

const dir = mkdtempSync(join(tmpdir(), 'bench-controller-'));
try {
  const state = await up(dir, { crds: CRD_FILES });
  const kc = new KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  const c = new KubeClient(kc);
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
    await c.get(`/api/v1/namespaces/raw/secrets/${ak.metadata.name}`).catch(() => undefined);
    const owned = await c.mergePatch<typeof ak>(path, { metadata: { resourceVersion: ak.metadata.resourceVersion,
      ownerReferences: [{ apiVersion: 'apikeys.dev/v1alpha1', kind: 'Deployment', name: 'd', uid: dep.metadata.uid }] } });
    await c.apply(`/api/v1/namespaces/raw/secrets/${ak.metadata.name}`, { apiVersion: 'v1', kind: 'Secret',
      metadata: { name: ak.metadata.name, labels: { 'app.kubernetes.io/managed-by': 'apikey-operator', 'apikeys.dev/apikey': ak.metadata.name },
        ownerReferences: [{ apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', name: ak.metadata.name, uid: ak.metadata.uid, controller: true, blockOwnerDeletion: true }] },
      type: 'apikeys.dev/api-key', data: { API_KEY_ID: 'eA==', API_KEY_SECRET: 'eA==', TOKEN_URL: 'eA==', AUDIENCE: 'eA==' } }, 'apikey-operator');
    await c.apply(`${path}/status`, { apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', metadata: { name: ak.metadata.name, resourceVersion: owned.metadata.resourceVersion },
      status: { keyId: 'ak_x', secretHash: 'sha256:x', secretName: ak.metadata.name, observedGeneration: 1,
        conditions: [{ type: 'Ready', status: 'True', reason: 'SecretReady', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] } }, 'apikey-operator');
    await c.create('/apis/events.k8s.io/v1/namespaces/raw/events', { apiVersion: 'events.k8s.io/v1', kind: 'Event',
      metadata: { name: `${ak.metadata.name}.${i}` }, eventTime: new Date().toISOString().replace('Z', '000Z'), reportingController: 'bench',
      reportingInstance: 'bench', action: 'Create', reason: 'Created', note: 'n', type: 'Normal',
      regarding: { apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', name: ak.metadata.name, namespace: 'raw', uid: ak.metadata.uid } });
  });
  const sameRequestsMs = performance.now() - t0;

  const health = await freePort();
  const ctl = spawn(process.execPath, [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), join(root, 'src/cli/main.ts'), 'controller', '--kubeconfig', state.kubeconfig,
    '--operator-namespace', 'op', '--namespaces', 'keys', '--workers', values.workers, '--health-port', String(health), '--log-level', 'warn'], { stdio: 'inherit' });
  for (;;) { try { if ((await fetch(`http://127.0.0.1:${health}/readyz`)).ok) break; } catch { /* starting */ } await sleep(50); }
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
  const metrics = await (await fetch(`http://127.0.0.1:${health}/metrics`)).text();
  const requests = [...metrics.matchAll(/^apikey_operator_kube_requests_total\{method="(\w+)",code="(\d+)"\} (\d+)/gm)]
    .map(([, m, code, n]) => `${m} ${code}: ${n}`);
  const reconciles = [...metrics.matchAll(/^apikey_operator_reconcile_total\{kind="(\w+)",result="(\w+)"\} (\d+)/gm)]
    .map(([, k, r, n]) => `${k} ${r}: ${n}`);
  ctl.kill('SIGTERM');
  await new Promise((r) => ctl.on('exit', r));

  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s (${Math.round(N / (ms / 1000))}/s)`;
  console.log(`node ${process.version}, ${N} objects, client concurrency ${C}, ${values.workers} workers`);
  console.log(`limit: ${N} plain Secret creates:       ${fmt(limitMs)}`);
  console.log(`the controller's 5 requests per key, from a client: ${fmt(sameRequestsMs)}`);
  console.log(`${N} ApiKey creates (client side):       ${fmt(createdMs)}`);
  console.log(`${N} ApiKeys Ready (from first create):   ${fmt(readyMs)}  = ${(readyMs / limitMs).toFixed(2)}x the Secret limit, ${(readyMs / sameRequestsMs).toFixed(2)}x the same-requests limit`);
  console.log(`controller requests: ${requests.join(', ')}`);
  console.log(`reconciles: ${reconciles.join(', ')}`);
} finally {
  await down(dir);
  rmSync(dir, { recursive: true, force: true });
}
