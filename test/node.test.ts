/**
 * `cluster:up --node`: one real worker node, run as a user runs it (from npm,
 * in a folder of its own, beside the suite's control plane), with the image
 * `image:build` makes from the Dockerfile. It needs root; without it this file
 * fails with one message that says so. It proves that Pods run there (DNS, the
 * image as the chart runs it, the chart itself and the Job example, over TLS
 * verified with the operator's CA bundle as the chart's defaults make it), that the
 * operator runs there as users run it (the chart in both token server modes and
 * with its web console, whose own token reaches only its sign-out list, manifests/install),
 * keeps answering token requests through Pod deletions and upgrades, serves a
 * long-running consumer across a key rotation and stops a deleted Deployment's
 * keys at once, and that the node leaves nothing behind on the machine, whose
 * network state is the same after as before. Also: upgrades from the previous
 * release (its chart, manifests and image, built from its own source) with keys
 * in use, and PKCS#11 signing in Pods with SoftHSM mounted into them. Each of
 * those describes installs the operator and removes it all (removeOperator), so
 * the next starts as on a new cluster.
 */
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  AppsV1Api, BatchV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Deployment, type V1Job, type V1Pod,
} from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, INSTALL_DIR, INSTALL_NAMESPACE, INSTALL_RELEASE } from '../scripts/render-manifests.ts';
import { LEASE_NAME, SECRET_KEYS, SIGNING_KEYS_SECRET } from '../src/api/index.ts';
import { CSP } from '../src/console/http.ts';
import { Sealer } from '../src/console/sealed.ts';
import { SealedSessionStore } from '../src/console/sealed-sessions.ts';
import { SESSION_COOKIE } from '../src/console/sessions.ts';
import { parseSessionKeysFile, sealingKey, SESSION_KEYS_FILE, SESSION_KEYS_SECRET, SIGN_OUTS_CONFIGMAP } from '../src/shared/session-keys.ts';
import { SIGNING_KEYS_DATA_KEY } from '../src/shared/signing-keys.ts';
import { CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY, CA_SECRET } from '../src/controller/serving-cert.ts';
import { isRunning, readState, waitFor, type ClusterState } from './cluster/controlplane.ts';
import { previousRelease, releaseTree } from './cluster/images/release-image.ts';
import { ensureExampleImageArchive } from './cluster/images/stand-in-image.ts';
import { cgroupRoots } from './cluster/node/cgroups.ts';
import { BRIDGE, KUBERNETES_SERVICE_IP, NODE_NAME, nodeLayout } from './cluster/node/layout.ts';
import { LOCK_FILE } from './cluster/node/lock.ts';
import { namespaceOf, processesIn } from './cluster/node/namespace.ts';
import { loadImage, tagImage } from './cluster/node/node.ts';
import { assertNodeRequirements } from './cluster/node/requirements.ts';
import { hostNetworkState } from './support/host-network.ts';
import { archiveImageId, containerProcesses, isReady, npmRun, pathInContainer, seconds, waitForPod } from './support/node.ts';
import { CRD_FILES, ROOT } from './support/paths.ts';
import { runPlugin } from './support/plugin.ts';
import { createSoftHsm, SOFTHSM_MODULE, type SoftHsm } from './support/softhsm.ts';
import { startTokenClient, type LoopStats, type TokenClient } from './support/token-client-pod.ts';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'node-cluster-'));
const ns = 'node-test';
/** The operator's image as `image:build` names it, and without its registry (as the chart and manifests name it). */
const IMAGE_NAME = 'apikey-operator';
const IMAGE = `docker.io/library/${IMAGE_NAME}`;
/** The working tree's version: its chart's appVersion, the tag its chart and manifests give the image. */
const currentVersion = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const CRD_NAMES = CRD_FILES.map((f) => (parse(readFileSync(f, 'utf8')) as { metadata: { name: string } }).metadata.name);
let hostBefore: Record<string, string>;
let state: ClusterState;
let archive: string;
/** The previous release's image (its own Dockerfile and source) and source tree, for the upgrade tests. */
let releaseArchive: string;
let releaseDir: string;
let core: CoreV1Api;
let kc: KubeConfig;

beforeAll(async () => {
  assertNodeRequirements(); // without root: one message that says so and how to run these tests
  hostBefore = await hostNetworkState();
  let t = Date.now();
  archive = (await npmRun(['image:build'], { echo: true })).stdout.trim().split('\n').at(-1) ?? '';
  console.log(`image:build ${seconds(t)}`);
  t = Date.now();
  releaseArchive = (await npmRun(['image:build', '--', '--previous-release'], { echo: true })).stdout.trim().split('\n').at(-1) ?? '';
  releaseDir = await releaseTree();
  console.log(`image:build -- --previous-release ${seconds(t)}`);
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

// Named as manifests/install names its objects, so that the chart and the plain manifests install
// the same objects (and the same TOKEN_URL in the credentials Secrets), one after the other.
const opNs = INSTALL_NAMESPACE;
const kubectl = (args: string[]) => exec(state.binaries.kubectl, ['--kubeconfig', state.kubeconfig, ...args], { encoding: 'utf8' });
const helm = (args: string[]) => exec(state.binaries.helm, [...args, '--kubeconfig', state.kubeconfig], { encoding: 'utf8' });
const componentPods = async (component: string) => (await core.listNamespacedPod({
  namespace: opNs, labelSelector: `app.kubernetes.io/component=${component}`,
})).items.filter((p) => !p.metadata?.deletionTimestamp);

/** Every Deployment of the operator rolled out, and nothing left in its namespace but its Ready Pods. */
const rolledOut = async () => {
  for (const d of (await kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: opNs })).items) {
    await kubectl(['rollout', 'status', '-n', opNs, `deployment/${d.metadata?.name ?? ''}`, '--timeout=180s']);
  }
  await waitFor('only Ready Pods of the operator', async () => {
    const pods = (await core.listNamespacedPod({ namespace: opNs })).items;
    return pods.length > 0 && pods.every((p) => !p.metadata?.deletionTimestamp && isReady(p));
  }, 120_000, []);
};
const leaseTakenBy = async (pod: string) => {
  const leases = kc.makeApiClient(CoordinationV1Api);
  await waitFor(`the Lease taken by ${pod}`, async () =>
    (await leases.readNamespacedLease({ name: LEASE_NAME, namespace: opNs })).spec?.holderIdentity?.startsWith(`${pod}_`) ?? false, 60_000, []);
};
/** Each container of the operator's Pods: the built image, its processes non-root, on a read-only root, without capabilities. */
const expectHardened = async (pods: V1Pod[]) => {
  for (const pod of pods) {
    for (const c of pod.status?.containerStatuses ?? []) {
      expect(c.imageID, c.name).toBe(await archiveImageId(archive));
      const processes = containerProcesses(c.containerID ?? '');
      expect(processes.length, c.name).toBeGreaterThan(0);
      for (const p of processes) {
        expect({ container: c.name, ...p }).toMatchObject({ uid: 65532, gid: 65532, rootReadOnly: true, capabilities: '0000000000000000' });
      }
    }
  }
};
/** A token client's failed requests from now until 3 s after `disruption` is over, printed. */
const failuresOf = async (client: TokenClient, what: string, disruption: () => Promise<void>): Promise<LoopStats> => {
  await client.loopStats();
  await disruption();
  await sleep(3000);
  const stats = await client.loopStats();
  const reasons = stats.failed ? ` (${Object.entries(stats.reasons).map(([why, n]) => `${n}× ${why.trim()}`).join(', ')})` : '';
  console.log(`token requests while ${what}: ${stats.failed} failed of ${stats.ok + stats.failed}${reasons}`);
  return stats;
};
const deletePod = async (name: string) => {
  await core.deleteNamespacedPod({ name, namespace: opNs });
  await rolledOut();
};

/**
 * Nothing of the operator left (its release or manifests, its namespace, CRDs and cluster-wide
 * objects, and the given app namespaces): the next install starts as on a new cluster.
 */
const removeOperator = async (appNamespaces: string[]) => {
  await helm(['uninstall', INSTALL_RELEASE, '-n', opNs, '--wait']).catch(() => undefined);
  await kubectl(['delete', 'namespace', ...appNamespaces, '--ignore-not-found', '--wait=true', '--timeout=180s']);
  // Every object manifests/install makes (the chart's, under the same names), its namespace and the CRDs included.
  await kubectl(['delete', '-f', INSTALL_DIR, '--ignore-not-found', '--wait=true', '--timeout=180s']);
  await kubectl(['delete', 'namespace', opNs, '--ignore-not-found', '--wait=true', '--timeout=180s']);
  await kubectl(['delete', 'crd', '--ignore-not-found', '--wait=true', ...CRD_NAMES]);
  for (const kind of ['clusterrole', 'clusterrolebinding', 'validatingadmissionpolicy', 'validatingadmissionpolicybinding']) {
    await kubectl(['delete', kind, '-l', `app.kubernetes.io/instance=${INSTALL_RELEASE}`, '--ignore-not-found']);
  }
};

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

/**
 * Upgrades from the previous release (test/upgrade/previous-release.json, v0.1.0): its chart, its
 * manifests and its image, built from its own source by the same image build, installed with keys in
 * use; then the working tree's, as the install guide tells users to upgrade. Nothing of a key may
 * change, and in deployment mode no token request may fail.
 */
describe('upgrade from the previous release, with keys in use', () => {
  const appNs = 'upgrade-app';
  const previous = previousRelease();
  const custom = () => kc.makeApiClient(CustomObjectsApi);
  let client: TokenClient | undefined;

  /** What must survive an upgrade, per ApiKey: its id and secret in its Secret, and its status's id and hash. */
  const keySnapshot = async (version = 'v1') => {
    const list = await custom().listNamespacedCustomObject({ group: 'apikeys.dev', version, namespace: appNs, plural: 'apikeys' }) as
      { items: { metadata: { name: string }; status?: { keyId?: string; secretHash?: string; secretName?: string } }[] };
    const out: Record<string, { keyId?: string; secretHash?: string; id: string; secret: string; tokenUrl: string }> = {};
    for (const k of list.items) {
      const secret = await core.readNamespacedSecret({ name: k.status?.secretName ?? k.metadata.name, namespace: appNs });
      const field = (f: string) => Buffer.from(secret.data?.[f] ?? '', 'base64').toString();
      out[k.metadata.name] = {
        keyId: k.status?.keyId, secretHash: k.status?.secretHash, id: field(SECRET_KEYS.id), secret: field(SECRET_KEYS.secret), tokenUrl: field(SECRET_KEYS.tokenUrl),
      };
    }
    return out;
  };
  const signingKids = async () => (JSON.parse(Buffer.from((await core.readNamespacedSecret({ name: SIGNING_KEYS_SECRET, namespace: opNs }))
    .data?.[SIGNING_KEYS_DATA_KEY] ?? '', 'base64').toString()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

  /** Two Deployments and five keys, as the previous release knows them (v1alpha1); two keys rotated once. */
  const createKeys = async () => {
    await kubectl(['create', 'namespace', appNs]);
    const create = (plural: string, body: object) =>
      custom().createNamespacedCustomObject({ group: 'apikeys.dev', version: 'v1alpha1', namespace: appNs, plural, body });
    for (const [name, audience] of [['upgraded', 'https://upgraded.example.com'], ['collected', 'https://collected.example.com']]) {
      await create('deployments', { apiVersion: 'apikeys.dev/v1alpha1', kind: 'Deployment', metadata: { name }, spec: { audiences: [audience] } });
    }
    const keys = [['ci-1', 'upgraded'], ['ci-2', 'upgraded'], ['ci-3', 'upgraded'], ['gc-1', 'collected'], ['gc-2', 'collected']];
    for (const [name, deployment] of keys) {
      await create('apikeys', { apiVersion: 'apikeys.dev/v1alpha1', kind: 'ApiKey', metadata: { name }, spec: { deploymentRef: { name: deployment }, permissions: ['deploy'] } });
    }
    for (const [name] of keys) await kubectl(['wait', '-n', appNs, '--for=create', `secret/${name ?? ''}`, '--timeout=60s']);
    for (const name of ['ci-2', 'gc-2']) {
      const before = (await keySnapshot('v1alpha1'))[name]?.secret;
      await kubectl(['annotate', `apikeys.v1alpha1.apikeys.dev/${name}`, '-n', appNs, '--overwrite', `apikeys.dev/rotate=${Date.now()}`]);
      await waitFor(`${name} rotated`, async () => (await keySnapshot('v1alpha1'))[name]?.secret !== before, 60_000, []);
    }
  };

  /** The token client on ci-1 (introspecting as ci-3), its first token kept in the Pod, and its loop running. */
  const startClient = async (name: string) => {
    client = await startTokenClient({
      core, kubectl: state.binaries.kubectl, kubeconfig: state.kubeconfig, namespace: appNs, name, secret: 'ci-1', introspectAs: 'ci-3',
    });
    await waitFor('a first token', async () => (await client?.token())?.status === 200, 60_000, []);
    expect(await client.introspect()).toEqual({ status: 200, active: true });
    await client.startLoop();
    return client;
  };

  /** After an upgrade: the same keys, the token minted before still active, every key's secret still gets a token. */
  const expectKeysKept = async (before: Awaited<ReturnType<typeof keySnapshot>>, kidsBefore: string[]) => {
    // The new controller has taken the Lease and passed over every key before anything is compared.
    await leaseTakenBy((await componentPods('controller'))[0]?.metadata?.name ?? 'none');
    await sleep(5000);
    const after = await keySnapshot();
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    expect(after).toEqual(before);
    for (const k of Object.values(after)) expect(k.secret).toMatch(/^aks_/);
    expect(await signingKids()).toEqual(expect.arrayContaining(kidsBefore));
    expect(await client?.introspect()).toEqual({ status: 200, active: true });
    expect(await client?.token()).toEqual({ status: 200 });
    console.log(`upgrade kept ${Object.keys(after).length} keys (ids, secrets, status ids and hashes) and ${kidsBefore.length} signing keys`);
    return Object.keys(after).length;
  };

  /** The keys read through every version the working tree's CRDs serve: the same objects. */
  const expectReadableThroughEveryVersion = async () => {
    const crd = parse(readFileSync(join(ROOT, 'crds', 'apikeys.dev_apikeys.yaml'), 'utf8')) as { spec: { versions: { name: string; served: boolean }[] } };
    const versions = crd.spec.versions.filter((v) => v.served).map((v) => v.name);
    // v1 stored, v1alpha1 still served (deprecated): the objects the previous release made through v1alpha1 read the same through both.
    expect(versions.sort()).toEqual(['v1', 'v1alpha1']);
    const seen = new Map<string, string>();
    for (const version of versions) {
      const list = await custom().listNamespacedCustomObject({ group: 'apikeys.dev', version, namespace: appNs, plural: 'apikeys' }) as
        { apiVersion: string; items: { metadata: { name: string; uid: string }; spec: unknown; status?: { keyId?: string } }[] };
      expect(list.apiVersion).toBe(`apikeys.dev/${version}`);
      const view = JSON.stringify(list.items.map((i) => [i.metadata.name, i.metadata.uid, i.spec, i.status?.keyId]).sort());
      seen.set(version, view);
    }
    expect(new Set(seen.values()).size, [...seen.keys()].join(', ')).toBe(1);
    return versions;
  };

  /**
   * `kubectl apikey migrate`, as the guide says to run after the upgrade: the objects the previous
   * release stored as v1alpha1 rewritten as v1, every CRD's storedVersions ["v1"], the keys unchanged.
   */
  const expectMigrated = async (before: Awaited<ReturnType<typeof keySnapshot>>) => {
    const storedVersions = async () => Promise.all(CRD_NAMES.map(async (name) =>
      (JSON.parse((await kubectl(['get', 'crd', name, '-o', 'json'])).stdout) as { status: { storedVersions: string[] } }).status.storedVersions));
    expect(await storedVersions()).toEqual(CRD_NAMES.map(() => ['v1alpha1', 'v1']));
    const migrated = await runPlugin(['migrate'], { kubeconfig: state.kubeconfig, namespace: false });
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(await storedVersions()).toEqual(CRD_NAMES.map(() => ['v1']));
    expect(await keySnapshot()).toEqual(before);
    await expectReadableThroughEveryVersion();
    expect(await client?.token()).toEqual({ status: 200 });
  };

  /** The garbage collector still deletes a Deployment's keys and their Secrets. */
  const expectCollected = async () => {
    await custom().deleteNamespacedCustomObject({ group: 'apikeys.dev', version: 'v1', namespace: appNs, plural: 'deployments', name: 'collected' });
    await waitFor('gc-1 and gc-2 and their Secrets collected', async () => {
      const keys = Object.keys(await keySnapshot());
      const secrets = (await core.listNamespacedSecret({ namespace: appNs })).items.map((x) => x.metadata?.name);
      return !keys.some((k) => k.startsWith('gc-')) && !secrets.some((n) => n?.startsWith('gc-'));
    }, 60_000, []);
  };

  const teardown = async () => {
    await client?.stopLoop().catch(() => undefined);
    client = undefined;
    await removeOperator([appNs]);
  };

  beforeAll(async () => {
    await loadImage(state, releaseArchive);
    // The working tree's image under the tag its chart and manifests name by default (its appVersion).
    await tagImage(state, `${IMAGE}:dev`, `${IMAGE}:${currentVersion}`);
  }, 120_000);
  afterAll(teardown, 300_000);

  it(`helm upgrade from ${previous.tag}'s chart and image to the working tree's (deployment mode): no failed token request, every key kept, tokens minted before still verify, GC still works, the old objects read through v1 and v1alpha1 and kubectl apikey migrate moves them to v1`, async () => {
    const chart = join(releaseDir, 'charts', 'apikey-operator');
    // As a user installs a release: its chart, whose default image tag is its appVersion.
    const values = ['--set', 'image.pullPolicy=Never', '--set', 'tokenServer.mode=deployment', '--set', 'tokenServer.replicas=2'];
    await helm(['install', INSTALL_RELEASE, chart, '--namespace', opNs, '--create-namespace', ...values]);
    await rolledOut();
    const images = async () => [...new Set((await core.listNamespacedPod({ namespace: opNs })).items.flatMap((p) => p.spec?.containers.map((c) => c.image)))];
    expect(await images()).toEqual([`${IMAGE_NAME}:${previous.version}`]);
    await createKeys();
    const before = await keySnapshot('v1alpha1');
    const kids = await signingKids();
    const c = await startClient('upgrade-loop');
    const started = Date.now();
    const upgraded = await failuresOf(c, `helm upgrade from ${previous.tag} to the working tree (deployment mode)`, async () => {
      // The install guide's command: the release's values kept, the new chart's defaults for everything else.
      await helm(['upgrade', INSTALL_RELEASE, CHART_DIR, '-n', opNs, '--reset-then-reuse-values']);
      await rolledOut();
    });
    console.log(`helm upgrade from ${previous.tag}: every Pod Ready in ${seconds(started)}`);
    expect(await images()).toEqual([`${IMAGE_NAME}:${currentVersion}`]);
    expect(upgraded.failed, JSON.stringify(upgraded.reasons)).toBe(0);
    expect(upgraded.ok).toBeGreaterThan(10);
    await expectKeysKept(before, kids);
    await expectReadableThroughEveryVersion();
    await expectMigrated(before);
    await expectCollected();
  }, 600_000);

  it(`kubectl apply of ${previous.tag}'s manifests/install, then the working tree's (sidecar mode, as the manifests run it): every key kept, tokens minted before still verify, the old objects migrated to v1 (the failed requests are printed)`, async () => {
    await teardown();
    await kubectl(['apply', '-f', join(releaseDir, 'manifests', 'install')]);
    await rolledOut();
    await createKeys();
    const before = await keySnapshot('v1alpha1');
    const kids = await signingKids();
    const c = await startClient('apply-loop');
    const applied = await failuresOf(c, `kubectl apply from ${previous.tag}'s manifests to the working tree's (sidecar mode: the one Pod is replaced)`, async () => {
      await kubectl(['apply', '-f', INSTALL_DIR]);
      await rolledOut();
    });
    const pod = (await componentPods('controller'))[0];
    expect(pod?.spec?.containers.map((x) => x.image)).toEqual([`${IMAGE_NAME}:${currentVersion}`, `${IMAGE_NAME}:${currentVersion}`]);
    expect(applied.ok).toBeGreaterThan(0);
    // Sidecar mode has one token server, in the one controller Pod: whether requests fail while it is
    // replaced depends on the rollout's timing (printed above, not asserted; deployment mode is the one
    // promised to drop none). Every one after it succeeds.
    const steady = await failuresOf(c, 'nothing happens, after the kubectl apply upgrade (sidecar mode)', () => sleep(2000));
    expect(steady.failed, JSON.stringify(steady.reasons)).toBe(0);
    await expectKeysKept(before, kids);
    await expectReadableThroughEveryVersion();
    await expectMigrated(before);
    await expectCollected();
  }, 600_000);
});

/**
 * Issue 22 in Pods: the chart's signing.pkcs11 values with SoftHSM's module and a token of this
 * test's own, made on the host in a temporary folder and mounted into both programs' Pods by
 * hostPath (with the libcrypto the module links against, which the slim image lacks). The controller
 * generates the key in the token from its Pod, the token server signs through the module in its own
 * Pod, and a Pod verifies a token against the JWKS with jose.
 */
describe('PKCS#11 signing in Pods: SoftHSM mounted into the controller and the token server', () => {
  const appNs = 'hsm-app';
  let hsm: SoftHsm | undefined;

  afterAll(async () => {
    await removeOperator([appNs]);
    hsm?.cleanup();
  }, 300_000);

  it('generates the signing key in the token from the controller Pod, signs through the module in the token server Pod, and a token verifies against the JWKS with jose', async () => {
    const started = Date.now();
    hsm = await createSoftHsm();
    // What the module needs beside it: the libcrypto it links against, copied into the token's folder.
    const lib = join(hsm.dir, 'lib');
    mkdirSync(lib);
    copyFileSync(SOFTHSM_MODULE, join(lib, 'libsofthsm2.so'));
    const libcrypto = (await exec('ldd', [SOFTHSM_MODULE], { encoding: 'utf8' })).stdout.match(/libcrypto\.so\.3 => (\S+)/)?.[1] ?? '';
    copyFileSync(libcrypto, join(lib, 'libcrypto.so.3'));
    // The programs run as 65532: the token's files are theirs (the controller writes new keys there).
    await exec('chown', ['-R', '65532:65532', hsm.dir]);
    await kubectl(['create', 'namespace', opNs]);
    await core.createNamespacedSecret({ namespace: opNs, body: {
      metadata: { name: 'hsm-pin' }, stringData: { pin: readFileSync(hsm.pinFile, 'utf8').trim() },
    } });
    // The token's folder mounted at the same path, so that the host's softhsm2.conf (and its tokendir) is right in the Pods too.
    await helm(['install', INSTALL_RELEASE, CHART_DIR, '--namespace', opNs,
      '--set', 'image.tag=dev', '--set', 'image.pullPolicy=Never', '--set', 'tokenServer.mode=deployment', '--set', 'tokenServer.replicas=1',
      '--set', 'signing.pkcs11.enabled=true', '--set', `signing.pkcs11.module=${join(lib, 'libsofthsm2.so')}`,
      '--set', `signing.pkcs11.tokenLabel=${hsm.label}`, '--set', 'signing.pkcs11.pinSecret.name=hsm-pin',
      '--set-json', `signing.pkcs11.volumes=${JSON.stringify([{ name: 'softhsm', hostPath: { path: hsm.dir, type: 'Directory' } }])}`,
      '--set-json', `signing.pkcs11.volumeMounts=${JSON.stringify([{ name: 'softhsm', mountPath: hsm.dir }])}`,
      '--set-json', `signing.pkcs11.env=${JSON.stringify([{ name: 'SOFTHSM2_CONF', value: hsm.env.SOFTHSM2_CONF }, { name: 'LD_LIBRARY_PATH', value: lib }])}`]);
    await rolledOut();
    console.log(`chart with signing.pkcs11 (SoftHSM): every Pod Ready in ${seconds(started)}`);
    const controller = await componentPods('controller');
    const servers = await componentPods('token-server');
    expect([controller.length, servers.length]).toEqual([1, 1]);
    await expectHardened([...controller, ...servers]);

    // The controller made the key in the token: the Secret has its public half and label only.
    const set = JSON.parse(Buffer.from((await core.readNamespacedSecret({ name: SIGNING_KEYS_SECRET, namespace: opNs }))
      .data?.[SIGNING_KEYS_DATA_KEY] ?? '', 'base64').toString()) as { keys: { kid: string; alg: string; pkcs11?: { label: string; id: string }; privateJwk?: unknown }[] };
    expect(set.keys).toHaveLength(1);
    const key = set.keys[0];
    expect(key?.privateJwk).toBeUndefined();
    expect(key?.pkcs11?.label).toBe(`apikey-operator-${key?.pkcs11?.id ?? ''}`);
    expect(hsm.objects().filter((o) => o.id === key?.pkcs11?.id).sort((a, b) => a.class.localeCompare(b.class))).toEqual([
      expect.objectContaining({ class: 'private', label: key?.pkcs11?.label, token: true, sensitive: true, extractable: false, valueRefused: true }),
      expect.objectContaining({ class: 'public', label: key?.pkcs11?.label }),
    ]);

    // A workload's token, from a Pod, verified there against the token server's JWKS with jose (the image's own).
    await kubectl(['create', 'namespace', appNs]);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.createNamespacedCustomObject({ group: 'apikeys.dev', version: 'v1', namespace: appNs, plural: 'deployments', body: {
      apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: 'hsm' }, spec: { audiences: ['https://hsm.example.com'] },
    } });
    await custom.createNamespacedCustomObject({ group: 'apikeys.dev', version: 'v1', namespace: appNs, plural: 'apikeys', body: {
      apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'hsm-ci' }, spec: { deploymentRef: { name: 'hsm' }, permissions: ['deploy'] },
    } });
    await kubectl(['wait', '-n', appNs, '--for=create', 'secret/hsm-ci', '--timeout=60s']);
    await kubectl(['wait', '-n', appNs, '--for=create', `configmap/${CA_BUNDLE_CONFIGMAP}`, '--timeout=60s']);
    const verify = `import https from 'node:https';
import fs from 'node:fs';
import { createLocalJWKSet, jwtVerify } from 'jose';
const env = process.env;
const ca = fs.readFileSync('/ca/${CA_BUNDLE_KEY}');
const call = (url, body) => new Promise((resolve, reject) => {
  const req = https.request(url, { method: body ? 'POST' : 'GET', ca, headers: { 'content-type': 'application/json' } }, (res) => {
    let data = ''; res.on('data', (c) => { data += c; }); res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(data) }));
  });
  req.on('error', reject); req.end(body);
});
let answer = { status: 0 };
for (let i = 0; i < 60 && answer.status !== 200; i++) {
  answer = await call(env.TOKEN_URL, JSON.stringify({ grant_type: 'client_credentials', client_id: env.API_KEY_ID, client_secret: env.API_KEY_SECRET, audience: env.AUDIENCE })).catch((e) => ({ status: 0, json: { error: e.code } }));
  if (answer.status !== 200) await new Promise((r) => setTimeout(r, 1000));
}
if (answer.status !== 200) { console.log(JSON.stringify({ status: answer.status, error: answer.json?.error })); process.exit(1); }
const jwks = await call(env.TOKEN_URL.replace(/\\/oauth\\/token$/, '/.well-known/jwks.json'));
const { protectedHeader, payload } = await jwtVerify(answer.json.access_token, createLocalJWKSet(jwks.json), { audience: env.AUDIENCE, typ: 'at+jwt' });
console.log(JSON.stringify({ status: answer.status, alg: protectedHeader.alg, kid: protectedHeader.kid, jwks: jwks.json.keys.map((k) => k.kid), privateMembers: jwks.json.keys.filter((k) => 'd' in k).length, sub: payload.sub }));`;
    await core.createNamespacedPod({ namespace: appNs, body: {
      metadata: { name: 'hsm-verifier' },
      spec: {
        restartPolicy: 'Never', automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'verifier', image: 'apikey-operator:dev', imagePullPolicy: 'Never', workingDir: '/app',
          command: ['node', '--input-type=module', '-e', verify],
          envFrom: [{ secretRef: { name: 'hsm-ci' } }],
          volumeMounts: [{ name: 'ca', mountPath: '/ca', readOnly: true }],
          securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        }],
        volumes: [{ name: 'ca', configMap: { name: CA_BUNDLE_CONFIGMAP } }],
      },
    } });
    const pod = await waitForPod(core, appNs, 'hsm-verifier', (p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''), 180_000);
    const logs = (await core.readNamespacedPodLog({ name: 'hsm-verifier', namespace: appNs })).trim();
    expect(pod.status?.phase, logs).toBe('Succeeded');
    expect(JSON.parse(logs)).toMatchObject({ status: 200, alg: 'ES256', kid: key?.kid, jwks: [key?.kid], privateMembers: 0 });
    // The token server signed through the module: its PKCS#11 metrics say so, from its Pod.
    const metrics = await core.connectGetNamespacedPodProxyWithPath({
      name: `${servers[0]?.metadata?.name ?? ''}:9090`, namespace: opNs, path: 'metrics',
    });
    expect(String(metrics)).toMatch(/^apikey_operator_pkcs11_up 1$/m);
    expect(String(metrics)).toMatch(/^apikey_operator_pkcs11_sign_duration_seconds_count [1-9]/m);
    console.log(`PKCS#11 in Pods (SoftHSM): key made in the token, token signed and verified, ${seconds(started)} in all`);
  }, 600_000);
});

describe('the operator on the node, from the built image', () => {
  const release = INSTALL_RELEASE;
  const appNs = 'app';
  const controllerPod = async () => (await componentPods('controller'))[0];
  let client: TokenClient;
  const failuresDuring = (what: string, disruption: () => Promise<void>) => failuresOf(client, what, disruption);

  beforeAll(async () => {
    // pullPolicy Never: the image must be the one loaded into the node; nothing may be pulled.
    // The token server asks DPoP clients for a server nonce (the DPoP Job example does the round trip);
    // requests without a proof are not concerned.
    await helm(['install', release, CHART_DIR, '--namespace', opNs, '--create-namespace',
      '--set', 'image.tag=dev', '--set', 'image.pullPolicy=Never', '--set-json', 'tokenServer.extraArgs=["--dpop-require-nonce"]']);
    // A second tag of the same image, for upgrades that change the tag.
    await tagImage(state, `${IMAGE}:dev`, `${IMAGE}:dev2`);
  }, 120_000);

  it('runs the controller and the token server (sidecar mode) Ready, as a non-root user on read-only root filesystems', async () => {
    const started = Date.now();
    await waitFor('the controller Pod', async () => (await controllerPod()) !== undefined, 60_000, []);
    const pod = await waitForPod(core, opNs, (await controllerPod())?.metadata?.name ?? '', isReady, 120_000);
    console.log(`chart's controller Pod Ready in ${seconds(started)}`);
    expect((pod.status?.containerStatuses ?? []).map((c) => c.name).sort()).toEqual(['controller', 'token-server']);
    await expectHardened([pod]);
  });

  it('lets the controller take the leader Lease', async () => {
    await leaseTakenBy((await controllerPod())?.metadata?.name ?? 'none');
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

    // Over TLS, as the chart's defaults make it: the Secret's TOKEN_URL is the token Service's https://
    // address, and the Job verified the server with the operator's CA bundle ConfigMap of its namespace.
    const secret = await core.readNamespacedSecret({ name: 'ci-deployer', namespace: appNs });
    const tokenUrl = Buffer.from(secret.data?.TOKEN_URL ?? '', 'base64').toString();
    expect(tokenUrl).toBe(`https://${release}-token.${opNs}.svc:8080/oauth/token`);
    const jobPod = (await core.listNamespacedPod({ namespace: appNs, labelSelector: 'job-name=fetch-token' })).items[0];
    expect(jobPod?.spec?.volumes?.map((v) => v.configMap?.name)).toContain(CA_BUNDLE_CONFIGMAP);
    const bundle = (await core.readNamespacedConfigMap({ name: CA_BUNDLE_CONFIGMAP, namespace: appNs })).data?.[CA_BUNDLE_KEY] ?? '';
    expect(bundle).toMatch(/^-----BEGIN CERTIFICATE-----/);
    // The key's secret never shows in the log of any container that handled it.

    const apiKeySecret = Buffer.from(secret.data?.API_KEY_SECRET ?? '', 'base64').toString();
    expect(apiKeySecret).toMatch(/^aks_/);
    const pod = await controllerPod();
    for (const container of ['controller', 'token-server']) {
      const log = await core.readNamespacedPodLog({ name: pod?.metadata?.name ?? '', namespace: opNs, container });
      expect(log.length, container).toBeGreaterThan(0);
      expect(log.includes(apiKeySecret), container).toBe(false);
    }
  });

  it('runs the DPoP Job example as a real Job with a requireDPoP key: the nonce round trip, a token bound to its in-memory key (cnf.jkt); a token request without a proof is refused invalid_dpop_proof', async () => {
    // The example key, as a second key that requires DPoP (ci-deployer stays a plain key for the tests below).
    const apiKey = parse(readFileSync(join(ROOT, 'manifests/examples/apikey-ci.yaml'), 'utf8')) as { metadata: { name: string }; spec: Record<string, unknown> };
    apiKey.metadata.name = 'ci-deployer-dpop';
    apiKey.spec.requireDPoP = true;
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: 'apikeys.dev', version: 'v1', namespace: appNs, plural: 'apikeys', body: apiKey });
    await kubectl(['wait', '-n', appNs, '--for=create', 'secret/ci-deployer-dpop', '--timeout=60s']);
    // The example as it is, but for the image (the built one, under the tag the chart runs here) and its key's Secret.
    const job = parse(readFileSync(join(ROOT, 'manifests/examples/job-dpop-token.yaml'), 'utf8')) as V1Job;
    const container = job.spec?.template.spec?.containers[0];
    expect(container?.envFrom?.map((e) => e.secretRef?.name)).toEqual(['ci-deployer']);
    if (container) {
      container.image = `${IMAGE_NAME}:dev`;
      container.imagePullPolicy = 'Never';
      container.envFrom = [{ secretRef: { name: 'ci-deployer-dpop' } }];
    }
    await kc.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: appNs, body: job });
    const done = await kubectl(['wait', '-n', appNs, '--for=condition=Complete', 'job/fetch-dpop-token', '--timeout=120s'])
      .then(() => 'Complete', async () => JSON.stringify((await kc.makeApiClient(BatchV1Api).readNamespacedJob({ name: 'fetch-dpop-token', namespace: appNs })).status));
    const logs = (await kubectl(['logs', '-n', appNs, 'job/fetch-dpop-token'])).stdout;
    expect(done, logs).toBe('Complete');
    expect(logs.trim()).toMatch(/^fetched a DPoP-bound token for key ak_\w+, valid for \d+s, bound to key [\w-]{43}$/);
    // The token server (--dpop-require-nonce) asked for a nonce, and the Job sent its proof again with it.
    const pod = await controllerPod();
    expect(pod?.spec?.containers.find((c) => c.name === 'token-server')?.args).toContain('--dpop-require-nonce');
    const metrics = String(await core.connectGetNamespacedPodProxyWithPath({ name: `${pod?.metadata?.name ?? ''}:9090`, namespace: opNs, path: 'metrics' }));
    expect(metrics).toMatch(/^apikey_operator_token_failures_total\{reason="use_dpop_nonce"\} [1-9]/m);
    // The same key's secret without a proof, from a Pod through the token Service: no token.
    const plain = await startTokenClient({
      core, kubectl: state.binaries.kubectl, kubeconfig: state.kubeconfig, namespace: appNs, name: 'dpop-plain', secret: 'ci-deployer-dpop',
    });
    expect(await plain.token()).toEqual({ status: 400, error: 'invalid_dpop_proof' });
    await core.deleteNamespacedPod({ name: 'dpop-plain', namespace: appNs });
    const secret = Buffer.from((await core.readNamespacedSecret({ name: 'ci-deployer-dpop', namespace: appNs })).data?.API_KEY_SECRET ?? '', 'base64').toString();
    expect(secret).toMatch(/^aks_/);
    expect(logs.includes(secret)).toBe(false);
  }, 300_000);

  it('answers a Pod that fetches tokens in a loop, in sidecar mode, but not while its only Pod is replaced (the failures are printed)', async () => {
    client = await startTokenClient({
      core, kubectl: state.binaries.kubectl, kubeconfig: state.kubeconfig, namespace: appNs, name: 'token-loop', secret: 'ci-deployer',
    });
    // The server's certificate is the operator CA's: a client that trusts only the public CAs refuses it.
    const untrusted = await client.tokenWithoutCa();
    expect(untrusted.status, JSON.stringify(untrusted)).toBe(0);
    expect(untrusted.error).toMatch(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/);
    expect(await client.token()).toEqual({ status: 200 });
    await client.startLoop();
    const steady = await failuresDuring('nothing happens (sidecar mode)', () => sleep(2000));
    expect(steady.failed, JSON.stringify(steady.reasons)).toBe(0);
    expect(steady.ok).toBeGreaterThan(5);
    // The default runs the token server in the controller's one Pod: these are what its users should expect.
    const deleted = await failuresDuring('the controller Pod is deleted (sidecar mode)', async () => deletePod((await controllerPod())?.metadata?.name ?? ''));
    const upgraded = await failuresDuring('helm upgrade changes the image tag (sidecar mode)', async () => {
      await helm(['upgrade', release, CHART_DIR, '-n', opNs, '--reuse-values', '--set', 'image.tag=dev2']);
      await rolledOut();
    });
    expect(deleted.ok + upgraded.ok).toBeGreaterThan(0);
  }, 300_000);

  it('runs, after helm upgrade to tokenServer.mode=deployment, the controller and two token servers Ready by their own probes, non-root, read-only, without capabilities', async () => {
    const started = Date.now();
    await failuresDuring('helm upgrade from sidecar to deployment mode', async () => {
      await helm(['upgrade', release, CHART_DIR, '-n', opNs, '--reuse-values',
        '--set', 'tokenServer.mode=deployment', '--set', 'tokenServer.replicas=2', '--set', 'image.tag=dev']);
      await rolledOut();
    });
    console.log(`helm upgrade to deployment mode: every Pod Ready in ${seconds(started)} (3 s of it counting requests after)`);
    const controller = await componentPods('controller');
    const servers = await componentPods('token-server');
    expect(controller.map((p) => p.spec?.containers.map((c) => c.name))).toEqual([['controller']]);
    expect(servers.map((p) => p.spec?.containers.map((c) => c.name))).toEqual([['token-server'], ['token-server']]);
    for (const pod of [...controller, ...servers]) {
      expect(isReady(pod), pod.metadata?.name).toBe(true);
      for (const c of pod.spec?.containers ?? []) expect(c.readinessProbe?.httpGet?.path, c.name).toBe('/readyz');
    }
    await expectHardened([...controller, ...servers]);
    await leaseTakenBy(controller[0]?.metadata?.name ?? 'none');
  }, 300_000);

  it('answers every token request in deployment mode while the controller Pod, then each token server Pod, is deleted, and during a helm upgrade of the image tag', async () => {
    const failed: Record<string, number> = {};
    failed.controller = (await failuresDuring('the controller Pod is deleted (deployment mode)', async () =>
      deletePod((await controllerPod())?.metadata?.name ?? ''))).failed;
    for (const [i, pod] of (await componentPods('token-server')).entries()) {
      failed[`token server ${i + 1}`] = (await failuresDuring(`token server Pod ${i + 1} of 2 is deleted (deployment mode)`, () =>
        deletePod(pod.metadata?.name ?? ''))).failed;
    }
    failed.upgrade = (await failuresDuring('helm upgrade changes the image tag (deployment mode)', async () => {
      await helm(['upgrade', release, CHART_DIR, '-n', opNs, '--reuse-values', '--set', 'image.tag=dev2']);
      await rolledOut();
    })).failed;
    expect(failed).toEqual({ 'controller': 0, 'token server 1': 0, 'token server 2': 0, 'upgrade': 0 });
    expect((await componentPods('token-server')).map((p) => p.spec?.containers[0]?.image)).toEqual([`${IMAGE_NAME}:dev2`, `${IMAGE_NAME}:dev2`]);
  }, 300_000);

  it('runs the web console (console.enabled) from the image Ready by its own probe, hardened, its own token good only for its sign-out list, and serves its sign-in through its Service', async () => {
    // The issuer's name does not resolve (the node's DNS forwards nothing): nothing is sent anywhere,
    // and the console must still start, be Ready and say at sign-in that the provider is unreachable.
    const issuer = 'https://idp.invalid';
    const clientSecret = `console-${randomBytes(12).toString('hex')}`;
    await core.createNamespacedSecret({ namespace: opNs, body: {
      metadata: { name: 'console-oidc' }, stringData: { 'client-secret': clientSecret },
    } });
    const started = Date.now();
    await helm(['upgrade', release, CHART_DIR, '-n', opNs, '--reuse-values', '--set', 'console.enabled=true',
      '--set', `console.oidc.issuerURL=${issuer}`, '--set', 'console.oidc.clientID=apikey-console',
      '--set', 'console.oidc.clientSecret.existingSecret=console-oidc', '--set', 'console.publicURL=https://console.example.com']);
    await rolledOut();
    console.log(`helm upgrade with console.enabled: every Pod Ready in ${seconds(started)}`);

    const [pod, ...others] = await componentPods('console');
    expect(others).toEqual([]);
    expect(pod && isReady(pod)).toBe(true);
    const container = pod?.spec?.containers[0];
    // Ready once it has a session key (the Secret the controller makes, mounted) and has read the sign-out list; alive by /healthz.
    expect([container?.readinessProbe?.httpGet?.path, container?.livenessProbe?.httpGet?.path]).toEqual(['/readyz', '/healthz']);
    await expectHardened(pod ? [pod] : []);

    // Its ServiceAccount's token, mounted by the chart (not automounted) where the kubelet would put it,
    // serves only its sign-out list (sessions live sealed in their cookies; a sign-out must reach every replica).
    expect(pod?.spec?.automountServiceAccountToken).toBe(false);
    expect((pod?.spec?.volumes ?? []).filter((v) => v.projected?.sources?.some((s) => s.serviceAccountToken)).map((v) => v.name)).toEqual(['kube-root-ca']);
    const [consoleProcess] = containerProcesses(pod?.status?.containerStatuses?.[0]?.containerID ?? '');
    const accountDir = pathInContainer(consoleProcess?.pid ?? 0, '/var/run/secrets/kubernetes.io/serviceaccount');
    expect(readdirSync(accountDir).filter((f) => !f.startsWith('..')).sort()).toEqual(['ca.crt', 'namespace', 'token']);
    // Its ServiceAccount's rights beyond every account's (asking who it is and what it may do): get, list,
    // watch and patch of the one sign-out ConfigMap of the operator's namespace; none on keys or Secrets,
    // there or in an app's namespace.
    const account = `system:serviceaccount:${opNs}:${pod?.spec?.serviceAccountName ?? ''}`;
    for (const namespace of [opNs, appNs]) {
      const rules = (await kubectl(['auth', 'can-i', '--list', '-n', namespace, `--as=${account}`])).stdout;
      // The Resources column; rows of non-resource URLs start with their own column ([/api/*]).
      const rows = rules.split('\n').slice(1).map((l) => l.trim()).filter((l) => l && !l.startsWith('['));
      expect(rows.map((l) => l.split(/\s+/)[0]).sort(), `${namespace}:\n${rules}`).toEqual([
        ...namespace === opNs ? ['configmaps'] : [],
        'selfsubjectaccessreviews.authorization.k8s.io', 'selfsubjectreviews.authentication.k8s.io', 'selfsubjectrulesreviews.authorization.k8s.io',
      ]);
      const configMaps = rows.find((l) => l.startsWith('configmaps '))?.match(/^configmaps\s+\[\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]$/);
      if (namespace === opNs) {
        expect([configMaps?.[1], configMaps?.[2]?.split(' ').sort()], rules).toEqual([SIGN_OUTS_CONFIGMAP, ['get', 'list', 'patch', 'watch']]);
      }
    }

    // A browser's requests, from a Pod, through cluster DNS and the console's Service.
    const service = (await core.listNamespacedService({ namespace: opNs, labelSelector: 'app.kubernetes.io/component=console' })).items;
    expect(service.map((s) => s.spec?.ports?.map((p) => p.port))).toEqual([[80]]);
    const base = `http://${service[0]?.metadata?.name ?? ''}.${opNs}.svc`;
    const visit = `const get = async (path) => {
  const r = await fetch(${JSON.stringify(base)} + path, { redirect: 'manual' });
  return { status: r.status, location: r.headers.get('location'), csp: r.headers.get('content-security-policy'),
    frame: r.headers.get('x-frame-options'), body: await r.text() };
};
(async () => {
  const seen = {};
  for (const path of ['/', '/auth/sign-in?next=%2F']) seen[path] = await get(path);
  console.log(JSON.stringify(seen));
})().catch((e) => { console.log(JSON.stringify({ error: String(e), cause: String(e.cause) })); process.exit(1); });`;
    await core.createNamespacedPod({ namespace: appNs, body: {
      metadata: { name: 'console-visitor' },
      spec: {
        restartPolicy: 'Never', automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'visitor', image: 'apikey-operator:dev', imagePullPolicy: 'Never', command: ['node', '-e', visit],
          securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        }],
      },
    } });
    const visitor = await waitForPod(core, appNs, 'console-visitor', (p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''));
    const logs = await core.readNamespacedPodLog({ name: 'console-visitor', namespace: appNs });
    expect(visitor.status?.phase, logs).toBe('Succeeded');
    const seen = JSON.parse(logs) as Record<string, { status: number; location: string | null; csp: string | null; frame: string | null; body: string }>;
    // Without a session: to the sign-in, with the console's security headers.
    expect(seen['/']).toEqual({ status: 303, location: '/auth/sign-in?next=%2F', csp: CSP, frame: 'DENY', body: '' });
    // The sign-in contacts the identity provider only now: that it cannot be reached is the page's message.
    expect(seen['/auth/sign-in?next=%2F']).toMatchObject({ status: 502, location: null, csp: CSP, frame: 'DENY' });
    expect(seen['/auth/sign-in?next=%2F']?.body).toContain(`The identity provider ${issuer} could not be reached`);
    const consoleLog = await core.readNamespacedPodLog({ name: pod?.metadata?.name ?? '', namespace: opNs });
    expect(consoleLog).toContain('console sign-in failed');
    expect(consoleLog.includes(clientSecret)).toBe(false);
  }, 300_000);

  it('keeps a console session across the deletion of the console Pod: the cookie the old Pod sealed opens in the new one, with the keys of the Secret the controller keeps, and no trip to the identity provider', async () => {
    // The session as the console makes it at sign-in (its own SealedSessionStore, sealed with the session
    // keys Secret's current key), for a person whose Kubernetes credential is a ServiceAccount token in
    // place of an ID token: the provider here is unreachable (idp.invalid), so no sign-in can happen on
    // the node; test/console-sessions.test.ts signs in through a real provider and restarts consoles.
    const keysText = Buffer.from((await core.readNamespacedSecret({ name: SESSION_KEYS_SECRET, namespace: opNs })).data?.[SESSION_KEYS_FILE] ?? '', 'base64').toString();
    const keysFile = parseSessionKeysFile(keysText);
    expect(keysFile.keys.length).toBeGreaterThan(0);
    const sealer = new Sealer({ keyring: {
      sealing: () => sealingKey(keysFile.keys, Date.now(), keysFile.publishLeadMs),
      opening: (id) => keysFile.keys.find((k) => k.id === id)?.key,
      lifetimeMs: keysFile.lifetimeMs,
    } });
    const store = new SealedSessionStore({
      sealer, signOuts: { synced: true, isSignedOut: () => false, record: () => Promise.resolve() }, ttlMs: 3600_000, idleMs: 3600_000,
    });
    await kubectl(['create', 'serviceaccount', '-n', appNs, 'console-person']);
    await kubectl(['create', 'rolebinding', '-n', appNs, 'console-person-view', `--clusterrole=${release}-view`, `--serviceaccount=${appNs}:console-person`]);
    const credential = (await kubectl(['create', 'token', '-n', appNs, 'console-person', '--duration=1h'])).stdout.trim();
    const person = 'node-console-person';
    const cookie = store.cookieValue(store.signIn(undefined, person, { idToken: credential }, Date.now() + 3600_000));
    await core.createNamespacedSecret({ namespace: appNs, body: { metadata: { name: 'console-browser-cookie' }, stringData: { cookie } } });

    // A browser in a Pod: its cookie jar in memory, updated from every answer's Set-Cookie; the test drives it over the Pod proxy.
    const service = (await core.listNamespacedService({ namespace: opNs, labelSelector: 'app.kubernetes.io/component=console' })).items[0];
    const browser = `let jar = process.env.COOKIE;
require('http').createServer(async (req, res) => {
  if (req.url === '/ready') return res.end('ok');
  const withCookie = req.url === '/visit';
  try {
    const r = await fetch(${JSON.stringify(`http://${service?.metadata?.name ?? ''}.${opNs}.svc`)} + '/?namespace=${appNs}',
      { redirect: 'manual', headers: withCookie ? { cookie: '${SESSION_COOKIE}=' + jar } : {} });
    const body = await r.text();
    const set = (r.headers.get('set-cookie') ?? '').match(/^${SESSION_COOKIE}=([^;]*)/)?.[1];
    const resealed = withCookie && set !== undefined && set !== '' && set !== jar;
    if (resealed) jar = set;
    res.end(JSON.stringify({ status: r.status, location: r.headers.get('location'), person: body.includes(${JSON.stringify(person)}), listed: body.includes('airflow-prod'), resealed }));
  } catch (e) { res.end(JSON.stringify({ error: String(e), cause: String(e.cause) })); }
}).listen(8080);`;
    await core.createNamespacedPod({ namespace: appNs, body: {
      metadata: { name: 'console-browser' },
      spec: {
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'browser', image: 'apikey-operator:dev', imagePullPolicy: 'Never', command: ['node', '-e', browser],
          env: [{ name: 'COOKIE', valueFrom: { secretKeyRef: { name: 'console-browser-cookie', key: 'cookie' } } }],
          securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1 },
        }],
      },
    } });
    await waitForPod(core, appNs, 'console-browser', isReady);
    // A request the Service cannot carry yet (the node's Service rules not yet updated for a new Pod) is
    // sent again; the jar changes only on an answer.
    const visit = async (path: 'visit' | 'visit-without-cookie') => {
      const since = Date.now();
      for (;;) {
        const seen = JSON.parse((await kubectl(['get', '--raw', `/api/v1/namespaces/${appNs}/pods/console-browser:8080/proxy/${path}`])).stdout) as Record<string, unknown>;
        if (!('error' in seen) || Date.now() - since > 60_000) return seen;
        await sleep(500);
      }
    };
    const signedIn = { status: 200, location: null, person: true, listed: true, resealed: true };

    // The page needs the session: without the cookie, to the sign-in.
    expect(await visit('visit-without-cookie')).toMatchObject({ status: 303, location: `/auth/sign-in?next=${encodeURIComponent(`/?namespace=${appNs}`)}` });
    expect(await visit('visit')).toEqual(signedIn);
    const [before] = await componentPods('console');
    const started = Date.now();
    await deletePod(before?.metadata?.name ?? '');
    const [after, ...others] = await componentPods('console');
    console.log(`console Pod deleted: its replacement Ready in ${seconds(started)}`);
    expect(others).toEqual([]);
    expect(after?.metadata?.name).not.toBe(before?.metadata?.name);
    // The cookie the deleted Pod sealed last, from the same jar: still signed in, the page listed with the person's credential.
    expect(await visit('visit')).toEqual(signedIn);
    expect(await visit('visit')).toEqual(signedIn);
    // The new Pod never sent anyone to the provider (it would have logged the unreachable provider).
    const log = await core.readNamespacedPodLog({ name: after?.metadata?.name ?? '', namespace: opNs });
    expect(log).not.toContain('console sign-in failed');
    expect(log.includes(credential)).toBe(false);
    await core.deleteNamespacedPod({ name: 'console-browser', namespace: appNs });
  }, 300_000);

  it('runs manifests/install, applied with kubectl after helm uninstall, the same way: Pods Ready, non-root, the Lease taken, its own CA and serving certificate made, tokens served over TLS', async () => {
    await client.stopLoop();
    await helm(['uninstall', release, '-n', opNs]);
    await waitFor('the release\'s Pods gone', async () => (await core.listNamespacedPod({ namespace: opNs })).items.length === 0, 120_000, []);
    // helm uninstall leaves the controller's CA and serving certificate (it did not make them): removed,
    // manifests/install starts as on a new cluster and must make its own, while the client Pod (which
    // reads its mounted bundle at each request) keeps running and gets the new CA from the kubelet.
    const caBefore = (await core.readNamespacedConfigMap({ name: CA_BUNDLE_CONFIGMAP, namespace: appNs })).data?.[CA_BUNDLE_KEY];
    await kubectl(['delete', 'secret', '-n', opNs, CA_SECRET, `${release}-token-tls`]);
    // The manifests name the image by the chart's appVersion: the same image, under that tag.
    const operator = parseAllDocuments(readFileSync(join(INSTALL_DIR, '02-operator.yaml'), 'utf8')).map((d) => d.toJS() as V1Deployment)
      .find((o) => o.kind === 'Deployment');
    const image = operator?.spec?.template.spec?.containers[0]?.image ?? '';
    expect(image).toMatch(new RegExp(`^${IMAGE_NAME}:\\d`));
    await tagImage(state, `${IMAGE}:dev`, `docker.io/library/${image}`);
    const started = Date.now();
    await kubectl(['apply', '-f', INSTALL_DIR]);
    await rolledOut();
    console.log(`kubectl apply -f manifests/install/: controller Pod Ready in ${seconds(started)}`);
    const pod = await controllerPod();
    expect(pod?.spec?.containers.map((c) => [c.name, c.image])).toEqual([['controller', image], ['token-server', image]]);
    await expectHardened(pod ? [pod] : []);
    await leaseTakenBy(pod?.metadata?.name ?? 'none');
    // Its own CA, published in the app's namespace, and a serving certificate it signed.
    const caSecret = await core.readNamespacedSecret({ name: CA_SECRET, namespace: opNs });
    const caNow = Buffer.from(caSecret.data?.[CA_BUNDLE_KEY] ?? '', 'base64').toString();
    expect(caNow).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(caNow).not.toBe(caBefore);
    await waitFor('the new CA bundle in the app\'s namespace', async () =>
      (await core.readNamespacedConfigMap({ name: CA_BUNDLE_CONFIGMAP, namespace: appNs })).data?.[CA_BUNDLE_KEY] === caNow, 30_000, []);
    const tls = await core.readNamespacedSecret({ name: `${release}-token-tls`, namespace: opNs });
    expect(new X509Certificate(Buffer.from(tls.data?.['tls.crt'] ?? '', 'base64')).checkIssued(new X509Certificate(caNow))).toBe(true);
    // The token Service is a new one, with a new ClusterIP: the client reaches it once the node's
    // Service rules have it and cluster DNS (5 s cache) no longer answers with the old address, and
    // trusts it once the kubelet has updated the client's mounted bundle (its Pod sync, syncFrequency
    // 10 s here, 1 minute by default).
    const applied = Date.now();
    let answer = await client.token();
    while (answer.status !== 200 && Date.now() - applied < 150_000) {
      await sleep(250);
      answer = await client.token();
    }
    console.log(`the first token through manifests/install's new Service, with its new CA, ${seconds(applied)} after its Pods were Ready`);
    expect(answer).toEqual({ status: 200 });
  }, 300_000);

  it('keeps the long-running worker example fetching tokens across a rotation past its grace period, as the kubelet updates its mounted Secret (the delay is printed)', async () => {
    await kubectl(['patch', 'apikey', 'ci-deployer', '-n', appNs, '--type=merge', '-p', JSON.stringify({ spec: { rotation: { gracePeriod: '1m' } } })]);
    const worker = parse(readFileSync(join(ROOT, 'manifests/examples/long-running-worker.yaml'), 'utf8')) as V1Deployment;
    // The example's own knobs: a token request every second, so that a refused one would show at once.
    for (const e of worker.spec?.template.spec?.containers[0]?.env ?? []) {
      if (e.name === 'TOKEN_REFRESH_SECONDS' || e.name === 'TOKEN_RETRY_SECONDS') e.value = '1';
    }
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: appNs, body: worker });
    await kubectl(['rollout', 'status', '-n', appNs, 'deployment/dag-sync', '--timeout=120s']);
    const pod = (await core.listNamespacedPod({ namespace: appNs, labelSelector: 'app.kubernetes.io/name=dag-sync' })).items[0];
    const logLines = async () => (await kubectl(['logs', '-n', appNs, pod?.metadata?.name ?? '', '--timestamps'])).stdout.split('\n').filter(Boolean)
      .map((l) => ({ at: Date.parse(l.slice(0, l.indexOf(' '))), text: l.slice(l.indexOf(' ') + 1) }));
    await waitFor('the worker\'s first token', async () => (await logLines()).some((l) => l.text.startsWith('fetched an access token')), 60_000, []);

    const secretNow = async () => Buffer.from((await core.readNamespacedSecret({ name: 'ci-deployer', namespace: appNs })).data?.API_KEY_SECRET ?? '', 'base64').toString();
    const before = await secretNow();
    await kubectl(['annotate', 'apikey', 'ci-deployer', '-n', appNs, '--overwrite', `apikeys.dev/rotate=${Date.now()}`]);
    await waitFor('the rotated Secret', async () => (await secretNow()) !== before, 30_000, []);
    const rotatedAt = Date.now();
    const after = await secretNow();
    // The file as the kubelet wrote it, in the node's mount namespace.
    const file = `/proc/${state.node?.holder?.pid ?? 0}/root${nodeLayout(dir).kubeletRoot}/pods/${pod?.metadata?.uid ?? ''}/volumes/kubernetes.io~secret/apikey/API_KEY_SECRET`;
    await waitFor('the kubelet to update the mounted Secret', () => Promise.resolve(readFileSync(file, 'utf8') === after), 180_000, []);
    console.log(`the kubelet updated the mounted Secret's files ${seconds(rotatedAt)} after the rotation (syncFrequency 10s)`);

    const key = await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: 'apikeys.dev', version: 'v1', namespace: appNs, plural: 'apikeys', name: 'ci-deployer',
    }) as { status?: { previousSecretValidUntil?: string } };
    const graceEnds = Date.parse(key.status?.previousSecretValidUntil ?? '');
    expect(graceEnds - rotatedAt).toBeGreaterThan(40_000);
    await sleep(Math.max(0, graceEnds + 5000 - Date.now()));
    // The previous secret is refused now: a Pod that took it from its environment gets no token.
    expect(await client.token()).toEqual({ status: 401, error: 'invalid_client' });
    const lines = await logLines();
    expect(lines.filter((l) => !l.text.startsWith('fetched an access token')).map((l) => l.text)).toEqual([]);
    expect(lines.filter((l) => l.at > graceEnds).length).toBeGreaterThan(2);
  }, 300_000);

  it('refuses new tokens at once to a Pod whose key\'s Deployment is deleted, and introspection says its token is inactive', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const create = (plural: string, body: object) =>
      custom.createNamespacedCustomObject({ group: 'apikeys.dev', version: 'v1', namespace: appNs, plural, body });
    await create('deployments', {
      apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: 'staging' },
      spec: { audiences: ['https://airflow-staging.example.com'] },
    });
    await create('apikeys', {
      apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'staging-ci' },
      spec: { deploymentRef: { name: 'staging' }, permissions: ['deploy'] },
    });
    // A resource server introspects with a key of its own, of another Deployment in the namespace.
    await create('apikeys', {
      apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'prod-introspector' },
      spec: { deploymentRef: { name: 'airflow-prod' }, permissions: ['read'] },
    });
    for (const s of ['staging-ci', 'prod-introspector']) await kubectl(['wait', '-n', appNs, '--for=create', `secret/${s}`, '--timeout=60s']);
    const holder = await startTokenClient({
      core, kubectl: state.binaries.kubectl, kubeconfig: state.kubeconfig, namespace: appNs, name: 'token-holder',
      secret: 'staging-ci', introspectAs: 'prod-introspector',
    });
    expect(await holder.token()).toEqual({ status: 200 });
    expect(await holder.introspect()).toEqual({ status: 200, active: true });

    await custom.deleteNamespacedCustomObject({ group: 'apikeys.dev', version: 'v1', namespace: appNs, plural: 'deployments', name: 'staging' });
    const deletedAt = Date.now();
    // At once: the token server learns of the deletion by its watch; a busy machine may delay that by a moment.
    let refused = await holder.token();
    while (refused.status === 200 && Date.now() - deletedAt < 2000) refused = await holder.token();
    console.log(`the first refused token request after the Deployment's deletion: ${refused.status} ${refused.error ?? ''}, ${seconds(deletedAt)} after it`);
    // unauthorized_client while the key still exists, invalid_client once the garbage collector removed it.
    expect(refused).toEqual({ status: refused.status === 401 ? 401 : 400, error: refused.status === 401 ? 'invalid_client' : 'unauthorized_client' });
    expect(await holder.introspect()).toEqual({ status: 200, active: false });
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
