/**
 * A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC on)
 * and kube-controller-manager running only the garbage collector and the
 * namespace controller. Each process is detached so that `cluster:up` can
 * return while it keeps running; its pid and command line are recorded in
 * DIR/state.json so that `cluster:down` (or a test) stops exactly what it
 * started, and a test can stop and restart the apiserver on the same port.
 */
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { binaryPaths, ensureBinaries, type Binaries } from './binaries.ts';

export interface ProcessRecord {
  name: string;
  pid: number;
  binary: string;
  args: string[];
  log: string;
}

export interface ClusterState {
  dir: string;
  kubeconfig: string;
  server: string;
  ports: { etcdClient: number; etcdPeer: number; apiserver: number };
  processes: ProcessRecord[];
  binaries: Binaries;
}

const STATE = 'state.json';

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolvePort(addr.port);
        else reject(new Error('no port'));
      });
    });
  });
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is required to make the test certificates: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** A CA, an apiserver serving certificate, an admin client certificate and the SA signing key. */
function makeCertificates(pki: string): void {
  mkdirSync(pki, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650',
    '-subj', '/CN=apikey-operator-test-ca'], pki);
  openssl(['req', ...ec, '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver',
    '-addext', 'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:10.0.0.1'], pki);
  openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '3650', '-copy_extensions', 'copy', '-out', 'apiserver.crt'], pki);
  openssl(['req', ...ec, '-keyout', 'admin.key', '-out', 'admin.csr', '-subj', '/O=system:masters/CN=admin'], pki);
  openssl(['x509', '-req', '-in', 'admin.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '3650', '-out', 'admin.crt'], pki);
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(pki, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(pki, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
}

function kubeconfigYaml(server: string, pki: string): string {
  const b64 = (f: string) => readFileSync(join(pki, f)).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: local',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64('ca.crt')}`,
    'users:',
    '- name: admin',
    '  user:',
    `    client-certificate-data: ${b64('admin.crt')}`,
    `    client-key-data: ${b64('admin.key')}`,
    'contexts:',
    '- name: local',
    '  context:',
    '    cluster: local',
    '    user: admin',
    '    namespace: default',
    'current-context: local',
    '',
  ].join('\n');
}

/**
 * A kubeconfig that authenticates with a bearer token only (a ServiceAccount's
 * TokenRequest token), against `cluster` (a kubeconfig cluster stanza: server,
 * certificate-authority-data, ...): how the operator's programs are run with
 * the chart's ServiceAccounts.
 */
export function bearerTokenKubeconfig(o: { cluster: Record<string, unknown>; token: string; user: string; namespace: string }): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'cluster', cluster: o.cluster }],
    users: [{ name: o.user, user: { token: o.token } }],
    contexts: [{ name: o.user, context: { cluster: 'cluster', user: o.user, namespace: o.namespace } }],
    'current-context': o.user,
  });
}

function launch(name: string, binary: string, args: string[], dir: string): ProcessRecord {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  return { name, pid: child.pid, binary, args, log };
}

export function isRunning(p: Pick<ProcessRecord, 'pid' | 'binary'>): boolean {
  try {
    // Compare the command line so that a recycled pid is never signalled.
    const cmd = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0')[0];
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return cmd === p.binary && state !== 'Z';
  } catch {
    return false;
  }
}

export async function stopProcess(p: ProcessRecord, graceMs = 10_000): Promise<void> {
  if (!isRunning(p)) return;
  try { process.kill(p.pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + graceMs;
  while (isRunning(p) && Date.now() < deadline) await sleep(50);
  if (isRunning(p)) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
    while (isRunning(p)) await sleep(20);
  }
}

function tailOf(file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

/** Minimal admin-authenticated HTTPS call, with no dependency on the code under test. */
export function adminRequest(state: ClusterState, method: string, path: string, body?: unknown):
Promise<{ status: number; body: string }> {
  const pki = join(state.dir, 'pki');
  return new Promise((res, rej) => {
    const req = request(
      `${state.server}${path}`,
      {
        method,
        ca: readFileSync(join(pki, 'ca.crt')),
        cert: readFileSync(join(pki, 'admin.crt')),
        key: readFileSync(join(pki, 'admin.key')),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: 5000,
      },
      (resp) => {
        let data = '';
        resp.setEncoding('utf8');
        resp.on('data', (c: string) => { data += c; });
        resp.on('end', () => res({ status: resp.statusCode ?? 0, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logs: ProcessRecord[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const p of logs) {
      if (!isRunning(p)) throw new Error(`${p.name} exited while waiting for ${what}:\n${tailOf(p.log)}`);
    }
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}:\n${logs.map((p) => `--- ${p.name}\n${tailOf(p.log)}`).join('\n')}`);
    }
    await sleep(100);
  }
}

async function httpOk(url: string): Promise<boolean> {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return r.ok;
}

export function apiserverArgs(state: Pick<ClusterState, 'dir' | 'ports'>): string[] {
  const pki = join(state.dir, 'pki');
  const { apiserver, etcdClient } = state.ports;
  return [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${apiserver}`,
    '--advertise-address=127.0.0.1',
    '--endpoint-reconciler-type=none',
    `--cert-dir=${pki}`,
    `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
    `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
    `--client-ca-file=${join(pki, 'ca.crt')}`,
    `--service-account-issuer=https://127.0.0.1:${apiserver}/`,
    `--service-account-key-file=${join(pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=RBAC',
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    '--max-requests-inflight=1000',
    '--max-mutating-requests-inflight=500',
  ];
}

export async function startApiserver(state: ClusterState): Promise<ProcessRecord> {
  const rec = launch('kube-apiserver', state.binaries.kubeApiserver, apiserverArgs(state), state.dir);
  await waitFor('kube-apiserver /readyz', async () => {
    const r = await adminRequest(state, 'GET', '/readyz');
    return r.status === 200;
  }, 90_000, [rec]);
  return rec;
}

/** Creates an owner and a dependent ConfigMap, deletes the owner, and waits for the dependent to go. */
async function gcCanary(state: ClusterState, timeoutMs: number): Promise<void> {
  const ns = 'kube-system';
  const name = `gc-canary-${Date.now().toString(36)}`;
  const owner = await adminRequest(state, 'POST', `/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name },
  });
  if (owner.status !== 201) throw new Error(`canary owner: ${owner.status} ${owner.body}`);
  const uid = (JSON.parse(owner.body) as { metadata: { uid: string } }).metadata.uid;
  const dep = await adminRequest(state, 'POST', `/api/v1/namespaces/${ns}/configmaps`, {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: `${name}-dependent`, ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name, uid }] },
  });
  if (dep.status !== 201) throw new Error(`canary dependent: ${dep.status} ${dep.body}`);
  await adminRequest(state, 'DELETE', `/api/v1/namespaces/${ns}/configmaps/${name}`);
  const kcm = state.processes.find((p) => p.name === 'kube-controller-manager');
  await waitFor('the garbage collector (canary ConfigMap)', async () => {
    const r = await adminRequest(state, 'GET', `/api/v1/namespaces/${ns}/configmaps/${name}-dependent`);
    return r.status === 404;
  }, timeoutMs, kcm ? [kcm] : []);
}

/** Creates (or replaces) a CRD from a file and waits until it is Established. */
export async function installCrd(state: ClusterState, file: string): Promise<void> {
  const crd = parseYaml(readFileSync(file, 'utf8')) as { metadata: { name: string } };
  const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  const r = await adminRequest(state, 'POST', path, crd);
  if (r.status !== 201 && r.status !== 409) throw new Error(`installing ${file}: ${r.status} ${r.body}`);
  await waitFor(`CRD ${crd.metadata.name} Established`, async () => {
    const g = await adminRequest(state, 'GET', `${path}/${crd.metadata.name}`);
    const conds = (JSON.parse(g.body) as { status?: { conditions?: { type: string; status: string }[] } })
      .status?.conditions ?? [];
    return conds.some((c) => c.type === 'Established' && c.status === 'True');
  }, 30_000, []);
}

export function readState(dir: string): ClusterState | undefined {
  const f = join(resolve(dir), STATE);
  if (!existsSync(f)) return undefined;
  return JSON.parse(readFileSync(f, 'utf8')) as ClusterState;
}

export function writeState(state: ClusterState): void {
  writeFileSync(join(state.dir, STATE), JSON.stringify(state, null, 2));
}

export interface UpOptions {
  log?: (line: string) => void;
  /**
   * CustomResourceDefinition manifests (YAML or JSON files) to install and
   * wait for before the controller-manager starts, so that its garbage
   * collector knows their resources from its first discovery.
   */
  crds?: string[];
}

/**
 * Starts the control plane in `dir` and resolves once the apiserver is ready
 * and the garbage collector has deleted a canary. Processes keep running after
 * this process exits; call `down(dir)` to stop them.
 */
export async function up(dirArg: string, opts: UpOptions = {}): Promise<ClusterState> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = resolve(dirArg);
  mkdirSync(dir, { recursive: true });
  const existing = readState(dir);
  if (existing && existing.processes.some(isRunning)) {
    throw new Error(`a control plane is already running in ${dir}; run cluster:down first`);
  }
  const binaries = await ensureBinaries(log);
  const started = Date.now();
  makeCertificates(join(dir, 'pki'));
  const ports = { etcdClient: await freePort(), etcdPeer: await freePort(), apiserver: await freePort() };
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const kubeconfig = join(dir, 'kubeconfig');
  const state: ClusterState = { dir, kubeconfig, server, ports, processes: [], binaries };
  writeFileSync(kubeconfig, kubeconfigYaml(server, join(dir, 'pki')), { mode: 0o600 });
  try {
    const etcd = launch('etcd', binaries.etcd, [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${ports.etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=4294967296',
      '--log-level=warn',
    ], dir);
    state.processes.push(etcd);
    writeState(state);
    await waitFor('etcd /health', () => httpOk(`http://127.0.0.1:${ports.etcdClient}/health`), 30_000, [etcd]);

    state.processes.push(await startApiserver(state));
    writeState(state);
    for (const file of opts.crds ?? []) await installCrd(state, file);

    const kcm = launch('kube-controller-manager', binaries.kubeControllerManager, [
      `--kubeconfig=${kubeconfig}`,
      '--controllers=garbagecollector,namespace',
      '--leader-elect=false',
      '--secure-port=0',
      '--concurrent-gc-syncs=20',
      '--kube-api-qps=200',
      '--kube-api-burst=400',
    ], dir);
    state.processes.push(kcm);
    writeState(state);
    await gcCanary(state, 60_000);
  } catch (err) {
    await down(dir);
    throw err;
  }
  log(`control plane ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ${server} (kubeconfig ${kubeconfig})`);
  return state;
}

/** Stops every process recorded in DIR/state.json, newest first. */
export async function down(dirArg: string): Promise<void> {
  const state = readState(dirArg);
  if (!state) return;
  for (const p of [...state.processes].reverse()) await stopProcess(p);
  state.processes = [];
  writeState(state);
}

export { binaryPaths };
