/**
 * A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC on)
 * and kube-controller-manager running only the garbage collector and the
 * namespace controller. Each process is detached so that `cluster:up` can
 * return while it keeps running; its pid and command line are recorded in
 * DIR/state.json so that `cluster:down` (or a test) stops exactly what it
 * started, and a test can stop and restart the apiserver on the same port.
 *
 * With `node: true` the same control plane runs inside the node's network
 * namespace, next to one real worker node (node/node.ts), and the host reaches
 * the apiserver through a relay on a loopback port.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { binaryPaths, ensureBinaries, type Binaries } from './binaries.ts';
import { kubeconfigYaml } from './kubeconfig.ts';
import {
  APISERVER_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KUBERNETES_SERVICE_IP, NODE_IP, SERVICE_CIDR,
} from './node/layout.ts';
import { NODE_CONTROLLERS, startNode, startNodeNamespace, stopNode, stopPods } from './node/node.ts';
import { assertNodeRequirements } from './node/requirements.ts';
import { isRunning, launch, stopProcess, waitFor, type ProcessRecord } from './processes.ts';
import { adminRequest, readState, writeState, type ClusterState } from './state.ts';

export { isRunning, stopProcess, waitFor, type ProcessRecord };
export { adminRequest, readState, writeState, type ClusterState };

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

/** Runs openssl in `cwd` (the tests' certificates); throws with its stderr when it fails. */
export function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is required to make the test certificates: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/**
 * A CA, an apiserver serving certificate (for loopback, and for the addresses
 * Pods use on a node), an admin client certificate and the SA signing key.
 */
function makeCertificates(pki: string): void {
  mkdirSync(pki, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3650',
    '-subj', '/CN=apikey-operator-test-ca'], pki);
  openssl(['req', ...ec, '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver',
    '-addext', `subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:127.0.0.1,IP:${KUBERNETES_SERVICE_IP},IP:${NODE_IP}`], pki);
  openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '3650', '-copy_extensions', 'copy', '-out', 'apiserver.crt'], pki);
  openssl(['req', ...ec, '-keyout', 'admin.key', '-out', 'admin.csr', '-subj', '/O=system:masters/CN=admin'], pki);
  openssl(['x509', '-req', '-in', 'admin.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '3650', '-out', 'admin.crt'], pki);
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(pki, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(pki, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
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

/** Starts a control-plane process: on the machine, or inside the node's namespaces. */
function launchIn(state: ClusterState, name: string, binary: string, args: string[]): Promise<ProcessRecord> {
  return launch(state.dir, name, binary, args, state.node ? { via: state.node.enter } : {});
}

async function httpOk(url: string): Promise<boolean> {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return r.ok;
}

export function apiserverArgs(state: Pick<ClusterState, 'dir' | 'ports' | 'node'>): string[] {
  const pki = join(state.dir, 'pki');
  const { apiserver, etcdClient } = state.ports;
  const placement = state.node
    ? [
      // Pods reach it on the node's address (the kubernetes Service's endpoint), the host through the relay.
      '--bind-address=0.0.0.0',
      `--advertise-address=${NODE_IP}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--authorization-mode=Node,RBAC',
      // kubectl logs/exec: the apiserver calls the kubelet as admin, on its InternalIP.
      `--kubelet-client-certificate=${join(pki, 'admin.crt')}`,
      `--kubelet-client-key=${join(pki, 'admin.key')}`,
      '--kubelet-preferred-address-types=InternalIP',
    ]
    : [
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--service-account-issuer=https://127.0.0.1:${apiserver}/`,
      '--authorization-mode=RBAC',
      // No Pod ever runs without a node, so none needs a ServiceAccount token mounted.
      '--disable-admission-plugins=ServiceAccount',
    ];
  return [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    `--secure-port=${apiserver}`,
    ...placement,
    `--cert-dir=${pki}`,
    `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
    `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
    `--client-ca-file=${join(pki, 'ca.crt')}`,
    `--service-account-key-file=${join(pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--allow-privileged=true',
    '--max-requests-inflight=1000',
    '--max-mutating-requests-inflight=500',
    `--authentication-config=${authenticationConfigFile(state.dir)}`,
  ];
}

/**
 * The apiserver's structured authentication configuration. It starts with no
 * JWT issuer; a test that brings an OpenID Connect provider writes its issuer
 * in (test/support/oidc-issuer.ts), and the apiserver reloads the file while
 * it runs, so no other test pays for an issuer it does not use.
 */
export function authenticationConfigFile(dir: string): string {
  return join(dir, 'authentication-config.yaml');
}

export const EMPTY_AUTHENTICATION_CONFIG = 'apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt: []\n';

export async function startApiserver(state: ClusterState): Promise<ProcessRecord> {
  const rec = await launchIn(state, 'kube-apiserver', state.binaries.kubeApiserver, apiserverArgs(state));
  await waitFor('kube-apiserver /readyz', async () => {
    const r = await adminRequest(state, 'GET', '/readyz');
    return r.status === 200;
  }, 90_000, [rec, ...relays(state)]);
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

function relays(state: ClusterState): ProcessRecord[] {
  return state.processes.filter((p) => p.name.startsWith('relay-'));
}

export interface UpOptions {
  log?: (line: string) => void;
  /**
   * CustomResourceDefinition manifests (YAML or JSON files) to install and
   * wait for before the controller-manager starts, so that its garbage
   * collector knows their resources from its first discovery.
   */
  crds?: string[];
  /** Adds one real worker node (needs root); the control plane then runs in the node's network namespace. */
  node?: boolean;
}

/**
 * Starts the control plane in `dir` and resolves once the apiserver is ready
 * and the garbage collector has deleted a canary (and, with a node, once the
 * node is Ready and its DNS answers). Processes keep running after this
 * process exits; call `down(dir)` to stop them.
 */
export async function up(dirArg: string, opts: UpOptions = {}): Promise<ClusterState> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = resolve(dirArg);
  mkdirSync(dir, { recursive: true });
  const existing = readState(dir);
  if (existing && (existing.processes.some(isRunning) || existing.node)) {
    throw new Error(`a cluster is already running in ${dir}; run cluster:down first`);
  }
  if (opts.node) assertNodeRequirements();
  const binaries = await ensureBinaries(log);
  const started = Date.now();
  makeCertificates(join(dir, 'pki'));
  // The ports are found free and then bound by other processes, so something else on the machine can
  // take one in between (seen about once in six full runs). On the loopback ports' own control plane
  // that is retried with new ports; the node's ports are fixed, so it is not.
  for (let attempt = 1; ; attempt++) {
    try {
      const state = await startOnce(dir, opts, binaries, log);
      log(`${state.node ? 'cluster with one node' : 'control plane'} ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ` +
        `${state.server} (kubeconfig ${state.kubeconfig})`);
      return state;
    } catch (err) {
      if (opts.node || attempt >= PORT_RACE_ATTEMPTS || !/address already in use/i.test(String(err))) throw err;
      log(`a port was taken between choosing and binding it; starting again with new ports (attempt ${attempt + 1})`);
      rmSync(join(dir, 'etcd'), { recursive: true, force: true });
    }
  }
}

const PORT_RACE_ATTEMPTS = 3;

async function startOnce(dir: string, opts: UpOptions, binaries: Binaries, log: (l: string) => void): Promise<ClusterState> {
  const ports = opts.node
    ? { etcdClient: ETCD_CLIENT_PORT, etcdPeer: ETCD_PEER_PORT, apiserver: APISERVER_PORT }
    : { etcdClient: await freePort(), etcdPeer: await freePort(), apiserver: await freePort() };
  const hostPort = opts.node ? await freePort() : ports.apiserver;
  const server = `https://127.0.0.1:${hostPort}`;
  const kubeconfig = join(dir, 'kubeconfig');
  const state: ClusterState = { dir, kubeconfig, server, ports, processes: [], binaries };
  writeFileSync(kubeconfig, kubeconfigYaml(server, join(dir, 'pki')), { mode: 0o600 });
  writeFileSync(authenticationConfigFile(dir), EMPTY_AUTHENTICATION_CONFIG);
  writeState(state);
  try {
    if (opts.node) await startNodeNamespace(state, hostPort, log);
    const etcd = await launchIn(state, 'etcd', binaries.etcd, [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${ports.etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=4294967296',
      '--log-level=warn',
    ]);
    state.processes.push(etcd);
    writeState(state);
    // Inside the node's namespace etcd is out of this process's reach; the apiserver's /readyz covers it.
    if (!state.node) await waitFor('etcd /health', () => httpOk(`http://127.0.0.1:${ports.etcdClient}/health`), 30_000, [etcd]);

    state.processes.push(await startApiserver(state));
    writeState(state);
    for (const file of opts.crds ?? []) await installCrd(state, file);

    const kcm = await launchIn(state, 'kube-controller-manager', binaries.kubeControllerManager, [
      `--kubeconfig=${state.node?.kubeconfig ?? kubeconfig}`,
      `--controllers=${['garbagecollector', 'namespace', ...state.node ? NODE_CONTROLLERS : []].join(',')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--concurrent-gc-syncs=20',
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      ...state.node ? [`--service-account-private-key-file=${join(dir, 'pki', 'sa.key')}`, `--root-ca-file=${join(dir, 'pki', 'ca.crt')}`] : [],
    ]);
    state.processes.push(kcm);
    writeState(state);
    await gcCanary(state, 60_000);
    if (state.node) await startNode(state, log);
  } catch (err) {
    await down(dir);
    throw err;
  }
  return state;
}

/**
 * Stops every process recorded in DIR/state.json, newest first; with a node,
 * also what runs in its namespaces, its namespaces and its cgroups.
 */
export async function down(dirArg: string): Promise<void> {
  const state = readState(dirArg);
  if (!state) return;
  // Pods first, so that none keeps the apiserver busy while it shuts down.
  if (state.node) await stopPods(state);
  for (const p of [...state.processes].reverse()) await stopProcess(p);
  state.processes = [];
  writeState(state);
  if (state.node) {
    await stopNode(state.node);
    delete state.node;
    writeState(state);
  }
}

export { binaryPaths };
