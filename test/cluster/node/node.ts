/**
 * One real worker node for the test cluster (`cluster:up --node`): containerd
 * with runc and Debian's CNI plugins, the kubelet, kube-proxy, kube-scheduler
 * and CoreDNS as cluster DNS, all inside the node's namespaces (namespace.ts),
 * beside the control plane, which runs there too. The host reaches the
 * apiserver through two relays joined by a unix socket in the cluster's folder
 * (a path both namespaces can open): 127.0.0.1:PORT on the host, 127.0.0.1:6443
 * inside.
 *
 * Teardown stops the kubelet and every container (by the node's cgroups), the
 * recorded processes, then whatever else runs in the node's mount namespace
 * (containerd's shims), and the namespace holder; the namespaces and every
 * mount in them go with it. Then the runtime's files go too; logs stay. The
 * machine's interfaces, iptables rules and sysctls are never touched.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureNodeBinaries, type NodeBinaries } from '../binaries.ts';
import { run } from '../command.ts';
import { ensurePauseArchive, PAUSE_IMAGE } from '../images/pause-image.ts';
import { latestOperatorArchive, OPERATOR_IMAGE } from '../images/operator-image.ts';
import { isRunning, launch, stopProcess, tailOf, waitFor, type ProcessRecord } from '../processes.ts';
import { kubeconfigYaml } from '../kubeconfig.ts';
import { adminRequest, writeState, type ClusterState } from '../state.ts';
import { createCgroupRoot, removeCgroupRoot } from './cgroups.ts';
import {
  cniConflist, containerdConfig, corefile, dnsObjects, KUBELET_KERNEL_SETTINGS, kubeletConfig, kubeProxyConfig, resolvConf,
} from './config.ts';
import { APISERVER_PORT, CLUSTER_DOMAIN, KUBERNETES_SERVICE_IP, NODE_IP, NODE_NAME, nodeLayout } from './layout.ts';
import { acquireNodeLock, recordNodeHolder, releaseNodeLock } from './lock.ts';
import { enter, HOLDER, namespaceOf, prepareNamespaces, processesIn } from './namespace.ts';
import { onPath } from './requirements.ts';

/** The controllers a node needs beyond the control plane's garbage collector and namespace controller. */
export const NODE_CONTROLLERS = [
  'nodelifecycle', // removes the node's not-ready taint once it is Ready
  'serviceaccount', 'root-ca-certificate-publisher-controller', // a Pod's token and kube-root-ca.crt
  'endpointslice', 'endpointslicemirroring', 'replicaset', 'deployment', 'job', 'podgc',
];

export interface NodeState {
  dir: string;
  /** The process that holds the namespaces (absent if `up` failed before it started). */
  holder?: ProcessRecord;
  /** The command prefix that runs a program inside the node's namespaces. */
  enter: string[];
  /** The holder's mount namespace: every process in it is the node's. */
  mountNamespace: string;
  /** The kubeconfig of the components inside (apiserver on 127.0.0.1:6443 there). */
  kubeconfig: string;
  binaries?: NodeBinaries;
}

/**
 * Takes the machine's node lock, makes the node's namespaces (with the
 * control plane's folder ready for them) and starts the apiserver relays.
 */
export async function startNodeNamespace(state: ClusterState, hostPort: number, log: (line: string) => void): Promise<void> {
  const l = nodeLayout(state.dir);
  acquireNodeLock(state.dir);
  state.node = { dir: state.dir, enter: [], mountNamespace: '', kubeconfig: l.kubeconfig };
  writeState(state);
  const binaries = await ensureNodeBinaries(log);
  for (const d of [l.containerdRoot, l.containerdState, l.containerdOpt, l.cniConfDir, l.cniIpamDir, l.kubeletRoot,
    l.kubeletCerts, l.kubeletVolumePlugins, l.kubeletPodLogs, l.varLib]) mkdirSync(d, { recursive: true });
  writeFileSync(l.kubeconfig, kubeconfigYaml(`https://127.0.0.1:${APISERVER_PORT}`, join(state.dir, 'pki')), { mode: 0o600 });
  createCgroupRoot();

  const holder = await launch(state.dir, 'node-namespace', HOLDER.binary, HOLDER.args, { via: HOLDER.via });
  state.node = { ...state.node, holder, enter: enter(holder.pid), binaries };
  writeState(state);
  // launch() returned once unshare had exec'd the holder, so the namespaces are made.
  const netns = namespaceOf(holder.pid, 'net');
  if (!netns || netns === namespaceOf(process.pid, 'net')) throw new Error(`unshare made no network namespace for the node:\n${tailOf(holder.log)}`);
  recordNodeHolder(state.dir, holder.pid, netns);
  state.node.mountNamespace = namespaceOf(holder.pid, 'mnt') ?? '';
  writeState(state);
  await prepareNamespaces(holder.pid, { varLib: l.varLib, kernelSettings: KUBELET_KERNEL_SETTINGS, scratch: l.kernelSettings });

  state.processes.push(await launch(state.dir, 'relay-node', 'socat', [
    `UNIX-LISTEN:${l.apiserverSocket},fork,unlink-early,mode=600`, `TCP:127.0.0.1:${APISERVER_PORT}`,
  ], { via: state.node.enter }));
  writeState(state);
  state.processes.push(await launch(state.dir, 'relay-host', 'socat', [
    `TCP-LISTEN:${hostPort},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${l.apiserverSocket}`,
  ]));
  writeState(state);
}

type StartedNode = NodeState & Required<Pick<NodeState, 'holder' | 'binaries'>>;

function startedNode(state: ClusterState): StartedNode {
  const n = state.node;
  if (!n?.holder || !n.binaries) throw new Error('the node namespace is not started');
  return { ...n, holder: n.holder, binaries: n.binaries };
}

/** Starts the node's components once the control plane answers; resolves when the node is Ready and DNS answers. */
export async function startNode(state: ClusterState, log: (line: string) => void): Promise<void> {
  const n = startedNode(state);
  const l = nodeLayout(state.dir);
  const b = n.binaries;
  const started = Date.now();
  const step = (what: string) => log(`[node] ${what} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  const images = [await ensurePauseArchive(log)];
  const operatorImage = latestOperatorArchive();
  if (operatorImage) images.push(operatorImage);
  else log(`[node] no image of the operator is built yet: ${OPERATOR_IMAGE} will be missing (npm run image:build)`);

  writeFileSync(l.containerdConfig, containerdConfig(l, { sandboxImage: PAUSE_IMAGE, runc: onPath('runc') ?? 'runc' }));
  writeFileSync(join(l.cniConfDir, '10-node.conflist'), cniConflist(l));
  writeFileSync(l.kubeletConfig, kubeletConfig(l, { clientCaFile: join(state.dir, 'pki', 'ca.crt') }));
  writeFileSync(l.kubeProxyConfig, kubeProxyConfig(l));
  writeFileSync(l.corefile, corefile(l));
  writeFileSync(l.resolvConf, resolvConf());
  const start = async (name: string, binary: string, args: string[], env?: Record<string, string>) => {
    const rec = await launch(state.dir, name, binary, args, { via: n.enter, ...(env ? { env } : {}) });
    state.processes.push(rec);
    writeState(state);
    return rec;
  };

  // containerd finds its shim on PATH.
  const containerd = await start('containerd', b.containerd, ['--config', l.containerdConfig],
    { PATH: `${b.containerdShimDir}${delimiter}${process.env.PATH ?? ''}` });
  await waitFor('containerd', async () => { await run(b.ctr, ['--address', l.containerdSocket, 'version']); return true; }, 30_000, [containerd]);
  step('containerd up');
  for (const archive of images) await loadImage(state, archive);
  step(`${images.length} images imported`);

  const components = [
    await start('kube-scheduler', b.kubeScheduler, [`--kubeconfig=${l.kubeconfig}`, '--leader-elect=false', '--secure-port=0']),
    await start('kubelet', b.kubelet, [
      `--config=${l.kubeletConfig}`, `--kubeconfig=${l.kubeconfig}`, `--root-dir=${l.kubeletRoot}`,
      `--cert-dir=${l.kubeletCerts}`, `--hostname-override=${NODE_NAME}`, `--node-ip=${NODE_IP}`,
    ]),
    await start('kube-proxy', b.kubeProxy, [`--config=${l.kubeProxyConfig}`]),
    await start('coredns', b.coredns, ['-conf', l.corefile]),
    containerd,
  ];
  const { service, endpointSlice } = dnsObjects();
  await createObject(state, '/api/v1/namespaces/kube-system/services', service);
  await createObject(state, '/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices', endpointSlice);

  await waitFor(`node ${NODE_NAME} Ready`, async () => {
    const r = await adminRequest(state, 'GET', `/api/v1/nodes/${NODE_NAME}`);
    const conditions = (JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? [];
    return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
  }, 120_000, components);
  step(`node ${NODE_NAME} Ready`);
  await waitFor('the default ServiceAccount', async () =>
    (await adminRequest(state, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, 60_000, components);
  await waitFor('cluster DNS to answer', async () => (await resolveInNode(n, `kubernetes.default.svc.${CLUSTER_DOMAIN}`)) === KUBERNETES_SERVICE_IP,
    60_000, components);
  step('cluster DNS answers');
}

async function createObject(state: ClusterState, path: string, body: object): Promise<void> {
  const r = await adminRequest(state, 'POST', path, body);
  if (r.status !== 201 && r.status !== 409) throw new Error(`creating ${path}: ${r.status} ${r.body}`);
}

/** Asks CoreDNS, on the node's address, from inside the node's network namespace. */
async function resolveInNode(n: StartedNode, name: string): Promise<string> {
  const script = `const r = new (require('node:dns').promises.Resolver)({ timeout: 1000, tries: 1 });
r.setServers([${JSON.stringify(NODE_IP)}]);
r.resolve4(${JSON.stringify(name)}).then((a) => console.log(a.join(',')));`;
  return (await run('nsenter', [`--target=${n.holder.pid}`, '--net', '--', process.execPath, '-e', script], { timeoutMs: 5000 })).trim();
}

/** Stops the kubelet, so that it restarts nothing, then every container (by the node's cgroups). */
export async function stopPods(state: ClusterState): Promise<void> {
  for (const p of state.processes.filter((x) => x.name === 'kubelet')) await stopProcess(p);
  await removeCgroupRoot();
}

/**
 * After the recorded processes have stopped: kills what else runs in the
 * node's mount namespace, the containers in its cgroups, then the holder, so
 * that the namespaces and their mounts go; removes the cgroups; frees the lock.
 */
export async function stopNode(n: NodeState): Promise<void> {
  if (n.mountNamespace) {
    for (let round = 0; round < 50; round++) {
      const left = processesIn(n.mountNamespace).filter((pid) => pid !== n.holder?.pid);
      if (left.length === 0) break;
      for (const pid of left) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      await sleep(100);
    }
  }
  await removeCgroupRoot();
  if (n.holder) await stopProcess(n.holder);
  if (n.holder && isRunning(n.holder)) throw new Error(`the node namespace holder (${n.holder.pid}) did not stop`);
  // The runtime's state (unpacked images, Pod folders) is of no use to a later node; logs and configs stay.
  const l = nodeLayout(n.dir);
  for (const d of [l.containerdRoot, l.containerdState, l.kubeletRoot, l.varLib, l.cniIpamDir]) rmSync(d, { recursive: true, force: true });
  releaseNodeLock(n.dir);
}

/** Loads an OCI archive into the node's runtime, under the name its index gives it. */
export async function loadImage(state: ClusterState, archive: string): Promise<void> {
  const n = startedNode(state);
  await run(n.binaries.ctr, ['--address', nodeLayout(state.dir).containerdSocket, '--namespace', 'k8s.io', 'images', 'import', archive]);
}

/** Gives an image in the node's runtime a second name (e.g. another tag), as a registry would serve it. */
export async function tagImage(state: ClusterState, image: string, as: string): Promise<void> {
  const n = startedNode(state);
  await run(n.binaries.ctr, ['--address', nodeLayout(state.dir).containerdSocket, '--namespace', 'k8s.io', 'images', 'tag', '--force', image, as]);
}
