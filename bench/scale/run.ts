/**
 * Ten thousand keys: the controller and the token server on a control plane of
 * their own with `--keys` ApiKeys over `--deployments` Deployments. Measures
 * their resident memory once every key is Ready, the Kubernetes API requests
 * both make in a minute when nothing changes, a controller restart (until
 * /readyz, until it has caught up, and what it wrote) and a token server
 * restart (until /readyz, until it serves the last key created), then the
 * restarted token server's p99 under load against the limit server's given
 * the same keys (bench/latency.ts; `--latency-rounds 0` leaves it out). The programs
 * run as built, with the Node.js flags of the image (BENCH_PROGRAM_NODE_FLAGS
 * to compare others). Last, the controller's own requests for as many new
 * keys sent straight from a client (bench/ceiling.ts), to set the time to all
 * Ready against (`--ceiling-keys 0` leaves it out). It also reports what
 * could limit the control plane at that size: etcd's database size against
 * its quota, and requests the apiserver's flow control rejected. Run on demand:
 *
 *   npm run bench:scale [-- --keys 10000 --deployments 100 --workers 32 --concurrency 32 --idle-seconds 60 --ceiling-keys N --latency-rounds 3]
 *
 * One hundred thousand keys (`--keys 100000 --deployments 1000`) take the
 * better part of an hour on two shared cores; the waits scale with --keys.
 */
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { readCredential, SECRET_KEYS, type ApiKey, type SecretObject } from '../../src/api/index.ts';
import { ETCD_QUOTA_BYTES } from '../../test/cluster/controlplane.ts';
import { requestToken } from '../../test/support/token-client.ts';
import { ceiling, CEILING_REQUESTS } from '../ceiling.ts';
import { latencyAgainstLimit } from '../latency.ts';
import {
  benchCluster, caughtUp, cpuSeconds, delta, isReady, labelOf, mb, metricsOf, pool, programNodeFlags, rssBytes, samples, seconds, startController, startTokenServer, until,
  type TokenServer,
} from '../support.ts';

const { values } = parseArgs({ options: {
  keys: { type: 'string', default: '10000' }, deployments: { type: 'string', default: '100' },
  workers: { type: 'string', default: '32' }, concurrency: { type: 'string', default: '32' },
  'idle-seconds': { type: 'string', default: '60' }, 'ceiling-keys': { type: 'string' },
  'latency-rounds': { type: 'string', default: '3' },
} });
/** A whole number of at least `min`, or a clear error before anything starts. */
function count(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be a whole number of at least ${min}, not ${JSON.stringify(value)}`);
  return n;
}
const N = count('keys', values.keys, 1);
const D = count('deployments', values.deployments, 1);
const C = count('concurrency', values.concurrency, 1);
count('workers', values.workers, 1);
const IDLE_S = count('idle-seconds', values['idle-seconds'], 1);
const CEILING_N = count('ceiling-keys', values['ceiling-keys'] ?? values.keys, 0);
const LATENCY_ROUNDS = count('latency-rounds', values['latency-rounds'], 0);
/** A wait's limit: an hour, or 100 ms per key when that is more (100,000 keys: not under 10 keys/s). */
const WAIT_MS = Math.max(3600_000, N * 100);
const NS = 'keys';
const OP = 'op';
const GROUP_PATH = '/apis/apikeys.dev/v1/namespaces';

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const REQUESTS = 'apikey_operator_kube_requests_total';
/** A program's Kubernetes API requests, by method and code. */
const requestsOf = async (base: string) => samples(await metricsOf(base), REQUESTS);
const byMethod = (m: Map<string, number>) => [...m].map(([k, v]) => `${labelOf(k, 'method')} ${labelOf(k, 'code')}: ${v}`).join(', ') || 'none';
const isWrite = (labels: string) => !['GET', 'LIST', 'WATCH'].includes(labelOf(labels, 'method') ?? labelOf(labels, 'verb') ?? '');

/** The apiserver's write requests by verb and resource (its apiserver_request_total). */
function apiserverWrites(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [labels, n] of samples(metrics, 'apiserver_request_total')) {
    const verb = labelOf(labels, 'verb')!;
    if (['GET', 'LIST', 'WATCH', 'CONNECT'].includes(verb)) continue;
    const sub = labelOf(labels, 'subresource');
    const key = `${verb} ${labelOf(labels, 'resource')}${sub ? `/${sub}` : ''} ${labelOf(labels, 'code')}`;
    out.set(key, (out.get(key) ?? 0) + n);
  }
  return out;
}
const listing = (m: Map<string, number>) => [...m].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none';

async function readyCount(c: typeof cluster.client): Promise<number> {
  const list = await c.list<ApiKey>(`${GROUP_PATH}/${NS}/apikeys`);
  return list.items.filter((k) => k.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')).length;
}

// Memory is measured on the programs as the image runs them: built.
/** Resident memory (from /proc and from the program's own metric) and the V8 heap, as the program's metrics show them. */
async function memory(name: string, pid: number, base: string, prefix: string): Promise<void> {
  const m = await metricsOf(base);
  const of = (metric: string) => mb(sum(samples(m, `${prefix}${metric}`)));
  report(`${name} memory: RSS ${mb(rssBytes(pid))} (/proc VmRSS; process_resident_memory_bytes ${of('process_resident_memory_bytes')}); ` +
    `V8 heap used ${of('nodejs_heap_size_used_bytes')} of ${of('nodejs_heap_size_total_bytes')}, external ${of('nodejs_external_memory_bytes')}; ` +
    `CPU ${cpuSeconds(pid).toFixed(1)} s since its start`);
}

/**
 * What the control plane had in hand: etcd's database against its quota
 * (the apiserver's apiserver_storage_size_bytes) and requests its flow
 * control rejected (429s), to tell the operator's limits from the test bed's.
 */
async function controlPlaneLimits(when: string): Promise<void> {
  const m = await cluster.apiserverMetrics();
  const db = sum(samples(m, 'apiserver_storage_size_bytes'));
  const rejected = samples(m, 'apiserver_flowcontrol_rejected_requests_total');
  report(`control plane, ${when}: etcd database ${mb(db)} of its ${mb(ETCD_QUOTA_BYTES)} quota; ` +
    `requests rejected by flow control: ${sum(rejected)}${rejected.size ? ` (${listing(rejected)})` : ''}`);
}

const loadAtStart = loadavg();
const cluster = await benchCluster('bench-scale', { built: true });
const lines: string[] = [];
const report = (line: string) => { lines.push(line); console.log(line); };
try {
  const c = cluster.client;
  for (const name of [OP, NS]) await c.create('/api/v1/namespaces', { metadata: { name } });
  let ctl = await startController(cluster, { operatorNamespace: OP, namespaces: NS, workers: values.workers });
  let ts: TokenServer = await startTokenServer(cluster, { operatorNamespace: OP, namespaces: NS });
  await until('both programs to be ready', async () => (await isReady(ctl.health)) && isReady(ts.url), 120_000);

  report(`node ${process.version} ${programNodeFlags().join(' ') || '(no flags)'}${process.env.BENCH_PROGRAM_NODE_OPTIONS ? ` NODE_OPTIONS=${process.env.BENCH_PROGRAM_NODE_OPTIONS}` : ''}, ` +
    `${N} ApiKeys over ${D} Deployments, ${values.workers} workers, client concurrency ${C}`);
  await memory('controller, no keys yet,', ctl.child.pid!, ctl.health, 'apikey_operator_controller_');
  await memory('token server, no keys yet,', ts.child.pid!, ts.metrics, 'apikey_operator_token_server_');

  await pool(D, C, (i) => c.create(`${GROUP_PATH}/${NS}/deployments`, {
    apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: `d${i}` }, spec: { audiences: [`https://d${i}.bench.test`] },
  }));
  const t0 = performance.now();
  await pool(N, C, (i) => c.create(`${GROUP_PATH}/${NS}/apikeys`, {
    apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: `k${i}` }, spec: { deploymentRef: { name: `d${i % D}` } },
  }));
  const createdMs = performance.now() - t0;
  // The controller's metrics say when it may be done; one list then says whether every key is Ready.
  await until(`${N} ApiKeys Ready`, async () => (await caughtUp(ctl, N)) && (await readyCount(c)) === N, WAIT_MS, 250);
  const readyMs = performance.now() - t0;

  // The last key created, as a client of its Secret has it.
  const secret = await c.get<SecretObject>(`/api/v1/namespaces/${NS}/secrets/k${N - 1}`);
  const last = { keyId: readCredential(secret, SECRET_KEYS.id)!, secret: readCredential(secret, SECRET_KEYS.secret)!, audience: `https://d${(N - 1) % D}.bench.test` };
  const serves = async (server: TokenServer) => (await requestToken(server, last)).status === 200;
  await until('a token for the last key', () => serves(ts), 120_000);

  report(`${N} ApiKey creates (client side): ${seconds(createdMs)}; all Ready ${seconds(readyMs)} after the first create (${Math.round(N / (readyMs / 1000))} keys/s)`);
  await controlPlaneLimits('all Ready');

  await sleep(5000);
  await memory('controller', ctl.child.pid!, ctl.health, 'apikey_operator_controller_');
  await memory('token server', ts.child.pid!, ts.metrics, 'apikey_operator_token_server_');

  // Idle: nothing changes for a while; what does each program ask the apiserver?
  const idleBefore = { ctl: await requestsOf(ctl.health), ts: await requestsOf(ts.metrics), api: apiserverWrites(await cluster.apiserverMetrics()) };
  await sleep(IDLE_S * 1000);
  const idleCtl = delta(idleBefore.ctl, await requestsOf(ctl.health));
  const idleTs = delta(idleBefore.ts, await requestsOf(ts.metrics));
  const idleApi = delta(idleBefore.api, apiserverWrites(await cluster.apiserverMetrics()));
  const perMinute = (m: Map<string, number>) => (sum(m) * 60 / IDLE_S).toFixed(0);
  report(`idle ${IDLE_S} s: controller ${perMinute(idleCtl)} requests/min (${byMethod(idleCtl)}); token server ${perMinute(idleTs)} requests/min (${byMethod(idleTs)})`);
  report(`  the apiserver's writes in that time: ${listing(idleApi)}`);
  // After a quiet while V8's memory reducer has collected and may have given pages back: the figure of a steady state.
  await memory(`controller, after ${IDLE_S} s idle,`, ctl.child.pid!, ctl.health, 'apikey_operator_controller_');
  await memory(`token server, after ${IDLE_S} s idle,`, ts.child.pid!, ts.metrics, 'apikey_operator_token_server_');

  // A controller restart with every key Ready: how long until it is ready and caught up, and what does it write?
  const apiBefore = apiserverWrites(await cluster.apiserverMetrics());
  await ctl.stop();
  const r0 = performance.now();
  ctl = await startController(cluster, { operatorNamespace: OP, namespaces: NS, workers: values.workers });
  const ctlReadyMs = await until('the restarted controller to be ready', () => isReady(ctl.health), 600_000);
  await until('the restarted controller to catch up', () => caughtUp(ctl, N), WAIT_MS, 100);
  const ctlCaughtUpMs = performance.now() - r0;
  await sleep(3000);
  const restartRequests = await requestsOf(ctl.health);
  const restartWrites = new Map([...restartRequests].filter(([k]) => isWrite(k)));
  const apiWrites = delta(apiBefore, apiserverWrites(await cluster.apiserverMetrics()));
  report(`controller restart: ready (/readyz) after ${seconds(ctlReadyMs)}, caught up (${N} keys reconciled, queue empty) after ${seconds(ctlCaughtUpMs)}`);
  report(`  its requests: ${byMethod(restartRequests)}; writes: ${sum(restartWrites)} (${byMethod(restartWrites)})`);
  report(`  the apiserver's writes from its stop until 3 s after it caught up: ${listing(apiWrites)}`);
  // A restart lists every object at once: the peak of what the caches hold.
  await memory('restarted controller', ctl.child.pid!, ctl.health, 'apikey_operator_controller_');

  // A token server restart: how long until it serves every key again?
  await ts.stop();
  ts = await startTokenServer(cluster, { operatorNamespace: OP, namespaces: NS });
  const [tsReadyMs, tsServesMs] = await Promise.all([
    until('the restarted token server to be ready', () => isReady(ts.url), 600_000, 20),
    until('the restarted token server to serve the last key', () => serves(ts), 600_000, 20),
  ]);
  report(`token server restart: ready (/readyz) after ${seconds(tsReadyMs)}, a token for the last key created after ${seconds(tsServesMs)}`);
  await memory('restarted token server', ts.child.pid!, ts.metrics, 'apikey_operator_token_server_');

  if (LATENCY_ROUNDS > 0) {
    // The token server under load with every key in its caches, against the limit server given the same keys.
    const apiKeys = (await c.list<ApiKey>(`${GROUP_PATH}/${NS}/apikeys`)).items;
    const clients = await Promise.all(Array.from({ length: Math.min(100, N) }, async (_, j) => {
      const i = Math.floor(j * N / Math.min(100, N));
      const s = await c.get<SecretObject>(`/api/v1/namespaces/${NS}/secrets/k${i}`);
      return { keyId: readCredential(s, SECRET_KEYS.id)!, secret: readCredential(s, SECRET_KEYS.secret)!, audience: `https://d${i % D}.bench.test` };
    }));
    const lat = await latencyAgainstLimit({
      ours: { url: ts.url, pid: ts.child.pid!, issuer: ts.url }, apiKeys, clients, rounds: LATENCY_ROUNDS, connections: 32, log: report,
    });
    report(`token endpoint under load, ${N} keys, 32 connections, ${clients.length} keys cycled, ${LATENCY_ROUNDS} rounds of 10 s each: ` +
      `p99 ${lat.bestP99.ours} ms against the limit server's ${lat.bestP99.limit} ms (best rounds, ${lat.bestP99.ratio.toFixed(2)}x), ` +
      `medians ${lat.medianP99.ours} and ${lat.medianP99.limit} ms (${lat.medianP99.ratio.toFixed(2)}x); ` +
      `throughput (best) ${Math.max(...lat.ours.map((r) => r.rps))} and ${Math.max(...lat.limit.map((r) => r.rps))} tokens/s; ` +
      `failed ${[...lat.ours, ...lat.limit].reduce((n, r) => n + r.failed, 0)}`);
    await memory('token server, after the load,', ts.child.pid!, ts.metrics, 'apikey_operator_token_server_');
  }

  if (CEILING_N > 0) {
    // The controller is stopped: the ceiling has the apiserver to itself, with every key above still stored.
    await Promise.all([ctl.stop(), ts.stop()]);
    const { ms: ceilingMs } = await ceiling(c, 'raw', CEILING_N, C);
    report(`ceiling: the controller's ${CEILING_REQUESTS.length} requests per key for ${CEILING_N} keys, from a client: ${seconds(ceilingMs)} ` +
      `(${Math.round(CEILING_N / (ceilingMs / 1000))} keys/s; ${CEILING_REQUESTS.join(', ')})`);
    if (CEILING_N === N) report(`  all Ready took ${(readyMs / ceilingMs).toFixed(2)}x the ceiling`);
    await controlPlaneLimits('after the ceiling');
  }
  report(`machine: ${cpus().length} CPUs, load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ` +
    `${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
} finally {
  await cluster.stop();
}
console.log(`\nsummary\n${lines.join('\n')}`);
