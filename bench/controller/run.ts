/**
 * How long 1,000 ApiKeys take to become Ready, next to how long 1,000 plain
 * Secret creates take against the same apiserver (the limit: a key needs at
 * least one Secret write), and the controller's own requests for a new key
 * sent straight from a client (the ceiling of its design). Starts its own
 * control plane; run on demand:
 *
 *   npm run bench:controller [-- --keys 1000 --workers 8 --concurrency 32 --shared-cpus]
 *
 * By default the control plane (etcd, the apiserver, the controller-manager)
 * runs on CPU 0 and everything that talks to it (this process's clients and
 * the controller) on CPU 1, as in a cluster, where the controller runs on a
 * node of its own: the apiserver has the same core in every phase, and the
 * controller's own CPU does not take the apiserver's. `--shared-cpus` lets
 * them all share the machine's CPUs instead, the way earlier figures were made.
 */
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ceiling, CEILING_REQUESTS } from '../ceiling.ts';
import { benchCluster, caughtUp, cpuSeconds, isReady, metricsOf, pin, pool as poolOf, startController, until } from '../support.ts';

const { values } = parseArgs({ options: {
  keys: { type: 'string', default: '1000' }, workers: { type: 'string', default: '8' }, concurrency: { type: 'string', default: '32' },
  'shared-cpus': { type: 'boolean', default: false },
} });
const N = Number(values.keys);
const C = Number(values.concurrency);
const loadAtStart = loadavg();
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');

const pool = (n: number, f: (i: number) => Promise<unknown>) => poolOf(n, C, f);

const PINNED = !values['shared-cpus'] && cpus().length >= 2;

const cluster = await benchCluster('bench-controller');
try {
  const c = cluster.client;
  if (PINNED) {
    for (const p of cluster.state.processes) pin(p.pid, '0');
    pin(process.pid, '1');
  }
  await c.create('/api/v1/namespaces', { metadata: { name: 'limit' } });
  await c.create('/api/v1/namespaces', { metadata: { name: 'keys' } });
  await c.create('/api/v1/namespaces', { metadata: { name: 'op' } });

  // The limit: N Secret creates, C at a time.
  let t0 = performance.now();
  await pool(N, (i) => c.create('/api/v1/namespaces/limit/secrets', { metadata: { name: `s${i}` }, stringData: { API_KEY_SECRET: 'x'.repeat(53) } }));
  const limitMs = performance.now() - t0;

  // The same requests the controller makes per key (see its request metrics),
  // straight from a client with no controller logic: the ceiling of this design.
  // The control plane's CPU in each phase is a figure the machine's load moves less than the times.
  const controlPlaneCpu = () => cluster.state.processes.reduce((a, p) => a + cpuSeconds(p.pid), 0);
  const same = await ceiling(c, 'raw', N, C, { cpu: controlPlaneCpu });
  const sameRequestsMs = same.ms;
  // And with the ApiKeys' creates, which the controller's run below times too.
  const withCreates = await ceiling(c, 'raw-creates', N, C, { withCreates: true, cpu: controlPlaneCpu });
  const withCreatesMs = withCreates.ms;

  const ctl = await startController(cluster, { operatorNamespace: 'op', namespaces: 'keys', workers: values.workers });
  if (PINNED) pin(ctl.child.pid!, '1');
  await until('the controller to be ready', () => isReady(ctl.health), 60_000);
  await c.create('/apis/apikeys.dev/v1/namespaces/keys/deployments', { apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: {} });

  // CPU seconds of each process over the run to all Ready: who the shared cores went to.
  const procs = [...cluster.state.processes.map((p) => ({ name: p.name, pid: p.pid })), { name: 'controller', pid: ctl.child.pid! }];
  const cpuBefore = procs.map((p) => cpuSeconds(p.pid));
  t0 = performance.now();
  const creating = pool(N, (i) => c.create('/apis/apikeys.dev/v1/namespaces/keys/apikeys', {
    apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: `k${i}` }, spec: { deploymentRef: { name: 'd' } },
  }));
  await creating;
  const createdMs = performance.now() - t0;
  // The controller's metrics say when it may be done; only then does a list (1,000 keys, no light
  // request for the apiserver: polled, it would compete with the controller) say whether all are Ready.
  for (;;) {
    if (await caughtUp(ctl, N)) {
      const list = await c.list<{ status?: { conditions?: { type: string; status: string }[] } }>('/apis/apikeys.dev/v1/namespaces/keys/apikeys');
      if (list.items.filter((k) => k.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')).length === N) break;
    }
    await sleep(50);
  }
  const readyMs = performance.now() - t0;
  const cpuUsed = procs.map((p, i) => cpuSeconds(p.pid) - cpuBefore[i]!);
  const cpu = procs.map((p, i) => `${p.name} ${cpuUsed[i]!.toFixed(1)} s`).join(', ');
  const runControlPlaneS = cpuUsed.slice(0, -1).reduce((a, b) => a + b, 0);
  await sleep(2000);
  const metrics = await metricsOf(ctl.health);
  const requests = [...metrics.matchAll(/^apikey_operator_kube_requests_total\{method="(\w+)",code="(\d+)"\} (\d+)/gm)]
    .map(([, m, code, n]) => `${m} ${code}: ${n}`);
  const reconciles = [...metrics.matchAll(/^apikey_operator_reconcile_total\{kind="(\w+)",result="(\w+)"\} (\d+)/gm)]
    .map(([, k, r, n]) => `${k} ${r}: ${n}`);
  await ctl.stop();

  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s (${Math.round(N / (ms / 1000))}/s)`;
  console.log(`node ${process.version}, ${N} objects, client concurrency ${C}, ${values.workers} workers; ` +
    (PINNED ? 'control plane on CPU 0, clients and controller on CPU 1' : 'every process on every CPU (--shared-cpus)'));
  console.log(`limit: ${N} plain Secret creates:       ${fmt(limitMs)}`);
  console.log(`the controller's ${CEILING_REQUESTS.length} requests per key, from a client: ${fmt(sameRequestsMs)}`);
  console.log(`  (${CEILING_REQUESTS.join(', ')})`);
  console.log(`the ApiKey create and those ${CEILING_REQUESTS.length}, from a client: ${fmt(withCreatesMs)}`);
  console.log(`${N} ApiKey creates (client side):       ${fmt(createdMs)}`);
  console.log(`${N} ApiKeys Ready (from first create):   ${fmt(readyMs)}  = ${(readyMs / limitMs).toFixed(2)}x the Secret limit, ${(readyMs / sameRequestsMs).toFixed(2)}x the same-requests ceiling (target: within 1.2x), ${(readyMs / withCreatesMs).toFixed(2)}x with the creates`);
  console.log(`machine: ${cpus().length} CPUs, load average ${load(loadAtStart)} at the start, ${load(loadavg())} at the end`);
  console.log(`controller requests: ${requests.join(', ')}`);
  console.log(`reconciles: ${reconciles.join(', ')}`);
  console.log(`CPU from the first create to all Ready: ${cpu}`);
  console.log(`control plane CPU (etcd, apiserver, GC): ceiling ${same.cpuS.toFixed(1)} s, with the creates ${withCreates.cpuS.toFixed(1)} s, ` +
    `the controller's run ${runControlPlaneS.toFixed(1)} s (${(runControlPlaneS / withCreates.cpuS).toFixed(2)}x the ceiling with the creates)`);
} finally {
  await cluster.stop();
}
