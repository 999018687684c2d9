/**
 * `cluster:up --node`: one real worker node, run as a user runs it (from npm,
 * in a folder of its own, beside the suite's control plane), with the image
 * `image:build` makes from the Dockerfile. It needs root; without it this file
 * fails with one message that says so. It proves that Pods run there (DNS, the
 * image as the chart runs it, the chart itself and the Job example), and that
 * the node leaves nothing behind on the machine, whose network state is the
 * same after as before.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BatchV1Api, CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR } from '../scripts/render-manifests.ts';
import { LEASE_NAME } from '../src/api/index.ts';
import { isRunning, readState, waitFor, type ClusterState } from './cluster/controlplane.ts';
import { ensureExampleImageArchive } from './cluster/images/stand-in-image.ts';
import { cgroupRoots } from './cluster/node/cgroups.ts';
import { BRIDGE, KUBERNETES_SERVICE_IP, NODE_NAME, nodeLayout } from './cluster/node/layout.ts';
import { LOCK_FILE } from './cluster/node/lock.ts';
import { namespaceOf, processesIn } from './cluster/node/namespace.ts';
import { loadImage } from './cluster/node/node.ts';
import { assertNodeRequirements } from './cluster/node/requirements.ts';
import { hostNetworkState } from './support/host-network.ts';
import { archiveImageId, containerProcesses, isReady, npmRun, seconds, waitForPod } from './support/node.ts';
import { ROOT } from './support/paths.ts';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'node-cluster-'));
const ns = 'node-test';
let hostBefore: Record<string, string>;
let state: ClusterState;
let archive: string;
let core: CoreV1Api;
let kc: KubeConfig;

beforeAll(async () => {
  assertNodeRequirements(); // without root: one message that says so and how to run these tests
  hostBefore = await hostNetworkState();
  let t = Date.now();
  archive = (await npmRun(['image:build'], { echo: true })).stdout.trim().split('\n').at(-1) ?? '';
  console.log(`image:build ${seconds(t)}`);
  t = Date.now();
  await npmRun(['cluster:up', '--', '--dir', dir, '--node'], { echo: true });
  console.log(`cluster:up --node ${seconds(t)}`);
  state = readState(dir) as ClusterState;
  kc = new KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
}, 60 * 60_000);

afterAll(async () => {
  if (readState(dir)?.node) await npmRun(['cluster:down', '--', '--dir', dir]);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('a cluster with one real node (cluster:up --node)', () => {
  it('image:build prints the path of an OCI archive of the image as its last line, and reuses it for the same inputs', async () => {
    expect(archive).toMatch(/\.oci\.tar$/);
    expect(existsSync(archive)).toBe(true);
    const index = (await exec('tar', ['-xOf', archive, 'index.json'], { encoding: 'utf8' })).stdout;
    expect(index).toContain('"org.opencontainers.image.ref.name":"docker.io/library/apikey-operator:dev"');
    const again = Date.now();
    expect((await npmRun(['image:build'])).stdout.trim().split('\n').at(-1)).toBe(archive);
    expect(Date.now() - again).toBeLessThan(30_000);
  });

  it('registers the node Ready, with no taint left that would keep Pods off it', async () => {
    const node = await core.readNode({ name: NODE_NAME });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.spec?.taints ?? []).toEqual([]);
  });

  it('gives Pods cluster DNS: kubernetes.default resolves to the kubernetes Service', async () => {
    await core.createNamespacedPod({ namespace: ns, body: {
      metadata: { name: 'dns' },
      spec: {
        restartPolicy: 'Never',
        containers: [{
          name: 'lookup', image: 'apikey-operator:dev',
          command: ['node', '-e', "require('dns').lookup('kubernetes.default', (e, a) => { console.log(e ? e.code : a); process.exit(e ? 1 : 0); })"],
        }],
      },
    } });
    const pod = await waitForPod(core, ns, 'dns', (p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''));
    const logs = await core.readNamespacedPodLog({ name: 'dns', namespace: ns });
    expect({ phase: pod.status?.phase, logs: logs.trim() }).toEqual({ phase: 'Succeeded', logs: KUBERNETES_SERVICE_IP });
  });

  it('runs the built image as a non-root user on a read-only root filesystem, Ready by its HTTP probe', async () => {
    const server = `const fs = require('fs');
require('http').createServer((req, res) => {
  let write; try { fs.writeFileSync('/app/probe', ''); write = 'written'; } catch (e) { write = e.code; }
  res.end(JSON.stringify({ uid: process.getuid(), write }));
}).listen(8080);`;
    const started = Date.now();
    await core.createNamespacedPod({ namespace: ns, body: {
      metadata: { name: 'web' },
      spec: {
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'web', image: 'apikey-operator:dev', command: ['node', '-e', server],
          securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
        }],
      },
    } });
    const pod = await waitForPod(core, ns, 'web', isReady);
    console.log(`non-root, read-only Pod Ready in ${seconds(started)}`);
    expect(pod.status?.containerStatuses?.[0]?.imageID).toBe(await archiveImageId(archive));
    // The apiserver's proxy reaches the Pod on the node: what the program itself saw.
    const seen = await core.connectGetNamespacedPodProxy({ name: 'web:8080', namespace: ns }) as unknown;
    expect(JSON.parse(String(seen))).toEqual({ uid: 65532, write: 'EROFS' });
  });

  it('keeps the node in a network namespace with no route out: only loopback, the Pod bridge and its veths', async () => {
    const holder = state.node?.holder;
    expect(holder && namespaceOf(holder.pid, 'net')).not.toBe(namespaceOf(process.pid, 'net'));
    const inNode = async (args: string[]) =>
      (await exec('nsenter', [`--target=${holder?.pid ?? 0}`, '--net', '--', 'ip', ...args], { encoding: 'utf8' })).stdout;
    const links = (await inNode(['-o', 'link', 'show'])).split('\n').filter(Boolean).map((l) => l.split(': ')[1]?.split('@')[0]);
    expect(links.filter((l) => l !== 'lo' && l !== BRIDGE && !l?.startsWith('veth'))).toEqual([]);
    const routes = await inNode(['route', 'show', 'table', 'all']);
    expect(routes).not.toMatch(/^default/m);
    // Besides the Pod subnet: the kernel's own routes for addresses on those links (local, broadcast,
    // multicast, IPv6 link-local), none of which leads off them.
    const onLinks = /^(local|broadcast|multicast|fe80::\/64|ff00::\/8) /;
    expect(routes.split('\n').filter((r) => r && !onLinks.test(r)))
      .toEqual([expect.stringMatching(new RegExp(`^10\\.88\\.0\\.0/24 dev ${BRIDGE} `))]);
  });

  it('refuses a second node cluster on the machine while this one runs, naming it', async () => {
    const other = mkdtempSync(join(tmpdir(), 'node-cluster-other-'));
    try {
      const err = await npmRun(['cluster:up', '--', '--dir', other, '--node']).then(() => undefined, (e: unknown) => e as { stderr: string });
      expect(err?.stderr).toContain(`another node cluster is running on this machine, in ${dir}`);
      expect(JSON.parse(readFileSync(LOCK_FILE, 'utf8'))).toMatchObject({ dir });
    } finally {
      await npmRun(['cluster:down', '--', '--dir', other]);
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('fails without root, saying that the node needs root and how to run it', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'node-cluster-nonroot-'));
    chmodSync(scratch, 0o777);
    try {
      const err = await exec('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--experimental-strip-types',
        join(ROOT, 'test/cluster/cli.ts'), 'up', '--dir', scratch, '--node'], { cwd: ROOT, encoding: 'utf8' })
        .then(() => undefined, (e: unknown) => e as { stderr: string });
      expect(err?.stderr.trim()).toMatch(/^error: The test node needs root: .* Run as root \(for example: sudo npm test/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('the chart on the node, from the built image', () => {
  const release = 'ako';
  const opNs = 'apikey-operator';
  const appNs = 'app';
  const kubectl = (args: string[]) => exec(state.binaries.kubectl, ['--kubeconfig', state.kubeconfig, ...args], { encoding: 'utf8' });
  const controllerPod = async () => {
    const pods = await core.listNamespacedPod({ namespace: opNs, labelSelector: 'app.kubernetes.io/component=controller' });
    return pods.items[0];
  };

  beforeAll(async () => {
    // pullPolicy Never: the image must be the one loaded into the node; nothing may be pulled.
    await exec(state.binaries.helm, ['install', release, CHART_DIR, '--namespace', opNs, '--create-namespace',
      '--set', 'image.tag=dev', '--set', 'image.pullPolicy=Never', '--kubeconfig', state.kubeconfig], { encoding: 'utf8' });
  }, 120_000);

  it('runs the controller and the token server (sidecar mode) Ready, as a non-root user on read-only root filesystems', async () => {
    const started = Date.now();
    await waitFor('the controller Pod', async () => (await controllerPod()) !== undefined, 60_000, []);
    const pod = await waitForPod(core, opNs, (await controllerPod())?.metadata?.name ?? '', isReady, 120_000);
    console.log(`chart's controller Pod Ready in ${seconds(started)}`);
    const statuses = pod.status?.containerStatuses ?? [];
    expect(statuses.map((c) => c.name).sort()).toEqual(['controller', 'token-server']);
    for (const c of statuses) {
      expect(c.imageID, c.name).toBe(await archiveImageId(archive));
      const processes = containerProcesses(c.containerID ?? '');
      expect(processes.length, c.name).toBeGreaterThan(0);
      for (const p of processes) expect({ container: c.name, ...p }).toMatchObject({ uid: 65532, gid: 65532, rootReadOnly: true });
    }
  });

  it('lets the controller take the leader Lease', async () => {
    const pod = await controllerPod();
    const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: LEASE_NAME, namespace: opNs });
    expect(lease.spec?.holderIdentity).toMatch(new RegExp(`^${pod?.metadata?.name ?? 'none'}_`));
  });

  it('runs the Job example as a real Job: the example key fetches a token through cluster DNS and the token Service', async () => {
    const jobFile = join(ROOT, 'manifests/examples/job-fetch-token.yaml');
    const job = parse(readFileSync(jobFile, 'utf8')) as { spec: { template: { spec: { containers: { image: string }[] } } } };
    const image = job.spec.template.spec.containers[0]?.image ?? '';
    await loadImage(state, await ensureExampleImageArchive({
      image: `docker.io/${image}`, packages: ['curl', 'ca-certificates'], entrypoint: ['curl'], user: '100:101',
    }, (l) => console.log(l)));
    await kubectl(['create', 'namespace', appNs]);
    await kubectl(['apply', '-n', appNs, '-f', join(ROOT, 'manifests/examples/deployment.yaml'), '-f', join(ROOT, 'manifests/examples/apikey-ci.yaml')]);
    await kubectl(['wait', '-n', appNs, '--for=create', 'secret/ci-deployer', '--timeout=60s']);
    await kubectl(['apply', '-n', appNs, '-f', jobFile]);
    const done = await kubectl(['wait', '-n', appNs, '--for=condition=Complete', 'job/fetch-token', '--timeout=120s'])
      .then(() => 'Complete', async () => JSON.stringify((await kc.makeApiClient(BatchV1Api).readNamespacedJob({ name: 'fetch-token', namespace: appNs })).status));
    const logs = (await kubectl(['logs', '-n', appNs, 'job/fetch-token'])).stdout;
    expect(done, logs).toBe('Complete');
    expect(logs.trim()).toMatch(/^fetched an access token for key ak_\w+, valid for \d+s$/);

    // The key's secret never shows in the log of any container that handled it.
    const secret = await core.readNamespacedSecret({ name: 'ci-deployer', namespace: appNs });
    const apiKeySecret = Buffer.from(secret.data?.API_KEY_SECRET ?? '', 'base64').toString();
    expect(apiKeySecret).toMatch(/^aks_/);
    const pod = await controllerPod();
    for (const container of ['controller', 'token-server']) {
      const log = await core.readNamespacedPodLog({ name: pod?.metadata?.name ?? '', namespace: opNs, container });
      expect(log.length, container).toBeGreaterThan(0);
      expect(log.includes(apiKeySecret), container).toBe(false);
    }
  });
});

describe('cluster:down', () => {
  it('leaves no process, mount, namespace or cgroup behind, and the host network as it was', async () => {
    const node = state.node;
    const pids = [...state.processes, ...node?.holder ? [node.holder] : []];
    const started = Date.now();
    await npmRun(['cluster:down', '--', '--dir', dir]);
    console.log(`cluster:down ${seconds(started)}`);
    for (const p of pids) expect(isRunning(p), `${p.name} (${p.pid})`).toBe(false);
    expect(processesIn(node?.mountNamespace ?? '')).toEqual([]);
    expect(node?.holder && namespaceOf(node.holder.pid, 'net')).toBeUndefined();
    expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir))).toEqual([]);
    expect(cgroupRoots().filter((d) => existsSync(d))).toEqual([]);
    expect(existsSync(LOCK_FILE)).toBe(false);
    expect(existsSync(nodeLayout(dir).containerdRoot), 'unpacked images').toBe(false);
    expect(await hostNetworkState()).toEqual(hostBefore);
  }, 120_000);
});
