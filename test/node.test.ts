/**
 * `cluster:up --node`: one real worker node, run as a user runs it (from npm,
 * in a folder of its own, beside the suite's control plane), with the image
 * `image:build` makes from the Dockerfile. It needs root; without it this file
 * fails with one message that says so. It proves that Pods run there (DNS, the
 * image as the chart runs it) and that the node leaves nothing behind on the
 * machine, whose network state is the same after as before.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunning, readState, type ClusterState } from './cluster/controlplane.ts';
import { cgroupRoots } from './cluster/node/cgroups.ts';
import { BRIDGE, KUBERNETES_SERVICE_IP, NODE_NAME } from './cluster/node/layout.ts';
import { LOCK_FILE } from './cluster/node/lock.ts';
import { namespaceOf, processesIn } from './cluster/node/namespace.ts';
import { assertNodeRequirements } from './cluster/node/node.ts';
import { hostNetworkState } from './support/host-network.ts';
import { ROOT } from './support/paths.ts';

const exec = promisify(execFile);
const npm = (args: string[]) => exec('npm', ['run', '--silent', ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

/** The config digest of the image in an OCI archive: what the runtime reports as a container's imageID. */
async function archiveImageId(archive: string): Promise<string> {
  const blob = async (name: string) => JSON.parse((await exec('tar', ['-xOf', archive, name], { encoding: 'utf8', maxBuffer: 1 << 20 })).stdout) as
    { manifests?: { digest: string }[]; config?: { digest: string } };
  const index = await blob('index.json');
  const manifest = await blob(`blobs/${(index.manifests?.[0]?.digest ?? '').replace(':', '/')}`);
  return manifest.config?.digest ?? '';
}

describe('a cluster with one real node (cluster:up --node)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'node-cluster-'));
  const ns = 'node-test';
  let hostBefore: Record<string, string>;
  let state: ClusterState;
  let archive: string;
  let core: CoreV1Api;

  beforeAll(async () => {
    assertNodeRequirements(); // without root: one message that says so and how to run these tests
    hostBefore = await hostNetworkState();
    let t = Date.now();
    archive = (await npm(['image:build'])).stdout.trim().split('\n').at(-1) ?? '';
    console.log(`image:build ${seconds(t)}`);
    t = Date.now();
    await npm(['cluster:up', '--', '--dir', dir, '--node']);
    console.log(`cluster:up --node ${seconds(t)}`);
    state = readState(dir) as ClusterState;
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
  }, 60 * 60_000);

  afterAll(async () => {
    if (readState(dir)?.node) await npm(['cluster:down', '--', '--dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  async function runPod(pod: V1Pod, until: (p: V1Pod) => boolean, timeoutMs = 60_000): Promise<V1Pod> {
    const name = pod.metadata?.name ?? '';
    await core.createNamespacedPod({ namespace: ns, body: pod });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await core.readNamespacedPod({ name, namespace: ns });
      if (until(p)) return p;
      if (Date.now() > deadline) throw new Error(`pod ${name}: ${JSON.stringify(p.status)}`);
      await sleep(200);
    }
  }

  it('image:build prints the path of an OCI archive of the image as its last line, and reuses it for the same inputs', async () => {
    expect(archive).toMatch(/\.oci\.tar$/);
    expect(existsSync(archive)).toBe(true);
    const index = (await exec('tar', ['-xOf', archive, 'index.json'], { encoding: 'utf8' })).stdout;
    expect(index).toContain('"org.opencontainers.image.ref.name":"docker.io/library/apikey-operator:dev"');
    const again = Date.now();
    expect((await npm(['image:build'])).stdout.trim().split('\n').at(-1)).toBe(archive);
    expect(Date.now() - again).toBeLessThan(30_000);
  });

  it('registers the node Ready, with no taint left that would keep Pods off it', async () => {
    const node = await core.readNode({ name: NODE_NAME });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.spec?.taints ?? []).toEqual([]);
  });

  it('gives Pods cluster DNS: kubernetes.default resolves to the kubernetes Service', async () => {
    const pod = await runPod({
      metadata: { name: 'dns' },
      spec: {
        restartPolicy: 'Never',
        containers: [{
          name: 'lookup', image: 'apikey-operator:dev',
          command: ['node', '-e', "require('dns').lookup('kubernetes.default', (e, a) => { console.log(e ? e.code : a); process.exit(e ? 1 : 0); })"],
        }],
      },
    }, (p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''));
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
    const pod = await runPod({
      metadata: { name: 'web' },
      spec: {
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'web', image: 'apikey-operator:dev', command: ['node', '-e', server],
          securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
        }],
      },
    }, (p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);
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
      const err = await npm(['cluster:up', '--', '--dir', other, '--node']).then(() => undefined, (e: unknown) => e as { stderr: string });
      expect(err?.stderr).toContain(`another node cluster is running on this machine, in ${dir}`);
      expect(JSON.parse(readFileSync(LOCK_FILE, 'utf8'))).toMatchObject({ dir });
    } finally {
      await npm(['cluster:down', '--', '--dir', other]);
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

  it('cluster:down leaves no process, mount, namespace or cgroup behind, and the host network as it was', async () => {
    const node = state.node;
    const pids = [...state.processes, ...node?.holder ? [node.holder] : []];
    const started = Date.now();
    await npm(['cluster:down', '--', '--dir', dir]);
    console.log(`cluster:down ${seconds(started)}`);
    for (const p of pids) expect(isRunning(p), `${p.name} (${p.pid})`).toBe(false);
    expect(processesIn(node?.mountNamespace ?? '')).toEqual([]);
    expect(node?.holder && namespaceOf(node.holder.pid, 'net')).toBeUndefined();
    expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir))).toEqual([]);
    expect(cgroupRoots().filter((d) => existsSync(d))).toEqual([]);
    expect(existsSync(LOCK_FILE)).toBe(false);
    expect(await hostNetworkState()).toEqual(hostBefore);
  }, 120_000);
});
