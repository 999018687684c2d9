/**
 * The move from apikeys.dev/v1alpha1 to apikeys.dev/v1 on a control plane of this file's own (the
 * suite's shared one has this release's CRDs, and replacing them there would disturb every other
 * test): a cluster with the previous release's CRDs (v1alpha1 only, derived from crds/ by dropping
 * v1) and objects of every kind, then this release's CRDs applied over them. The objects read the
 * same through both versions, v1alpha1 answers with its deprecation warning, the controller (on v1)
 * makes the old key Ready and keeps the old audience claim, and `kubectl apikey migrate`, run as a
 * process, rewrites every object so that etcd holds it as apikeys.dev/v1 and sets every CRD's
 * status.storedVersions to ["v1"]. A second run writes nothing; a cluster without the CRDs gets a
 * clear error.
 */
import { request } from 'node:https';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { audienceClaimName } from '../src/api/claims.ts';
import { CRDS_DIR } from '../scripts/render-manifests.ts';
import { bearerTokenKubeconfig, down, up, type ClusterState } from './cluster/controlplane.ts';
import { kubectl as sharedKubectl } from './support/cluster.ts';
import { renderChart } from './support/helm.ts';
import { runPlugin } from './support/plugin.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

const GROUP = 'apikeys.dev';
/** Every kind, with the plural etcd keys it under and one object of it made before the upgrade. */
const KINDS = [
  { kind: 'Deployment', plural: 'deployments' },
  { kind: 'ApiKey', plural: 'apikeys' },
  { kind: 'FederatedCredential', plural: 'federatedcredentials' },
  { kind: 'AudienceClaim', plural: 'audienceclaims' },
] as const;
const NS = 'team';
/** A namespace the controller does not watch: nothing but the migration rewrites what is in it. */
const IDLE_NS = 'idle';
const OP_NS = 'apikey-operator';
const AUDIENCE = 'https://migrate.example.test';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; [k: string]: unknown };
  spec?: Record<string, unknown>;
  status?: { keyId?: string; secretHash?: string; conditions?: { type: string; status: string }[]; [k: string]: unknown };
}
interface Crd {
  metadata: { name: string };
  spec: { versions: { name: string; storage: boolean; served: boolean; deprecated?: boolean; deprecationWarning?: string }[]; conversion?: unknown };
  status?: { storedVersions?: string[] };
}

const tmp = mkdtempSync(join(tmpdir(), 'api-v1-migration-'));
let cluster: ClusterState;
let controller: RunningProcess | undefined;

/** This release's CRD as the previous release had it: v1alpha1 only, and stored. */
function previousReleaseCrd(file: string): string {
  const crd = parseYaml(readFileSync(join(CRDS_DIR, file), 'utf8')) as { spec: { conversion?: unknown; versions: Record<string, unknown>[] } };
  delete crd.spec.conversion;
  crd.spec.versions = crd.spec.versions.filter((v) => v.name === 'v1alpha1').map((v) => {
    const { deprecated: _d, deprecationWarning: _w, ...rest } = v;
    return { ...rest, storage: true };
  });
  return JSON.stringify(crd);
}

const kubectl = (args: string[], input?: string) => sharedKubectl(args, { kubeconfig: cluster.kubeconfig, input });

/** An admin request to this file's apiserver that also returns the response headers. */
function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: string; warning?: string }> {
  const pki = join(cluster.dir, 'pki');
  return new Promise((resolve, reject) => {
    const req = request(`${cluster.server}${path}`, {
      method, ca: readFileSync(join(pki, 'ca.crt')), cert: readFileSync(join(pki, 'admin.crt')), key: readFileSync(join(pki, 'admin.key')),
      headers: body === undefined ? {} : { 'content-type': 'application/json' }, timeout: 10_000,
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, warning: res.headers.warning }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

async function get(version: string, plural: string, name: string, ns: string): Promise<Obj> {
  const r = await api('GET', `/apis/${GROUP}/${version}/namespaces/${ns}/${plural}/${name}`);
  expect(r.status, r.body).toBe(200);
  return JSON.parse(r.body) as Obj;
}

async function crd(plural: string): Promise<Crd> {
  const r = await api('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.${GROUP}`);
  expect(r.status, r.body).toBe(200);
  return JSON.parse(r.body) as Crd;
}

/** What etcd holds under a key, read through its v3 JSON gateway: the bytes the apiserver stored. */
async function etcdValue(key: string): Promise<Obj> {
  const r = await fetch(`http://127.0.0.1:${cluster.ports.etcdClient}/v3/kv/range`, {
    method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }),
  });
  expect(r.status).toBe(200);
  const kvs = ((await r.json()) as { kvs?: { value: string }[] }).kvs ?? [];
  expect(kvs, key).toHaveLength(1);
  return JSON.parse(Buffer.from(kvs[0]!.value, 'base64').toString('utf8')) as Obj;
}

const etcdKey = (plural: string, ns: string, name: string) => `/registry/${GROUP}/${plural}/${ns}/${name}`;
const where = (plural: string) => (plural === 'audienceclaims' ? OP_NS : NS);
const nameOf = (plural: string) => (plural === 'audienceclaims' ? audienceClaimName(AUDIENCE) : 'old');

const migrate = (args: string[] = [], kubeconfig = cluster.kubeconfig) => runPlugin(['migrate', ...args], { kubeconfig, namespace: false });

const ready = (o: Obj) => o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

beforeAll(async () => {
  cluster = await up(join(tmp, 'cluster'), { log: () => undefined });
  // The previous release's CRDs, and an object of every kind written through v1alpha1.
  const old = readdirSync(CRDS_DIR).filter((f) => f.endsWith('.yaml')).map(previousReleaseCrd).join('\n');
  let r = await kubectl(['apply', '-f', '-'], old);
  expect(r.code, r.stderr).toBe(0);
  r = await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  expect(r.code, r.stderr).toBe(0);
  for (const ns of [NS, OP_NS, IDLE_NS]) expect((await kubectl(['create', 'namespace', ns])).code).toBe(0);
  const v1alpha1 = `${GROUP}/v1alpha1`;
  const dep = { apiVersion: v1alpha1, kind: 'Deployment', metadata: { name: 'old' }, spec: { audiences: [AUDIENCE] } };
  r = await kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(dep));
  expect(r.code, r.stderr).toBe(0);
  r = await kubectl(['apply', '-n', IDLE_NS, '-f', '-'], JSON.stringify({ ...dep, metadata: { name: 'idle' } }));
  expect(r.code, r.stderr).toBe(0);
  const created = await get('v1alpha1', 'deployments', 'old', NS);
  const objects = [
    { apiVersion: v1alpha1, kind: 'ApiKey', metadata: { name: 'old', namespace: NS }, spec: { deploymentRef: { name: 'old' }, description: 'made before the upgrade' } },
    {
      apiVersion: v1alpha1, kind: 'FederatedCredential', metadata: { name: 'old', namespace: NS },
      spec: { deploymentRef: { name: 'old' }, issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:acme/dags:environment:prod' },
    },
    {
      apiVersion: v1alpha1, kind: 'AudienceClaim', metadata: { name: audienceClaimName(AUDIENCE), namespace: OP_NS },
      spec: { audience: AUDIENCE, holder: { namespace: NS, name: 'old', uid: created.metadata.uid } },
    },
  ];
  r = await kubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
  expect(r.code, r.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  await controller?.kill();
  if (cluster) await down(cluster.dir);
  rmSync(tmp, { recursive: true, force: true });
});

describe('moving a cluster from apikeys.dev/v1alpha1 to v1', () => {
  it('before the upgrade, etcd holds every object as apikeys.dev/v1alpha1 and the CRDs have stored only it', async () => {
    for (const { plural } of KINDS) {
      expect((await etcdValue(etcdKey(plural, where(plural), nameOf(plural)))).apiVersion).toBe(`${GROUP}/v1alpha1`);
      expect((await crd(plural)).status?.storedVersions).toEqual(['v1alpha1']);
    }
  });

  it('migrate refuses, writing nothing, while the CRDs still store v1alpha1', async () => {
    const r = await migrate();
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(/^error: the CRD deployments\.apikeys\.dev stores v1alpha1, not v1: upgrade the CRDs to this release first/);
    expect((await etcdValue(etcdKey('apikeys', NS, 'old'))).apiVersion).toBe(`${GROUP}/v1alpha1`);
  });

  it("after this release's CRDs are applied, every object reads the same through v1 and v1alpha1, which warns", async () => {
    const r = await kubectl(['apply', '-f', CRDS_DIR]);
    expect(r.code, r.stderr).toBe(0);
    expect((await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s'])).code).toBe(0);
    for (const { kind, plural } of KINDS) {
      const [ns, name] = [where(plural), nameOf(plural)];
      const alpha = await waitFor(`${kind} served as v1`, async () => {
        const v1 = await api('GET', `/apis/${GROUP}/v1/namespaces/${ns}/${plural}/${name}`);
        return v1.status === 200 ? get('v1alpha1', plural, name, ns) : undefined;
      }, 30_000, 200);
      const v1 = await get('v1', plural, name, ns);
      expect(v1.apiVersion).toBe(`${GROUP}/v1`);
      expect(alpha.apiVersion).toBe(`${GROUP}/v1alpha1`);
      expect({ ...v1, apiVersion: '' }).toStrictEqual({ ...alpha, apiVersion: '' });
      const warned = await api('GET', `/apis/${GROUP}/v1alpha1/namespaces/${ns}/${plural}/${name}`);
      expect(warned.warning).toBe(`299 - "${GROUP}/v1alpha1 ${kind} is deprecated; use ${GROUP}/v1 ${kind}"`);
      expect((await api('GET', `/apis/${GROUP}/v1/namespaces/${ns}/${plural}/${name}`)).warning).toBeUndefined();
      // Upgrading the CRDs rewrote nothing: etcd still holds the old version, and storedVersions says so.
      expect((await etcdValue(etcdKey(plural, ns, name))).apiVersion).toBe(`${GROUP}/v1alpha1`);
      expect((await crd(plural)).status?.storedVersions).toEqual(['v1alpha1', 'v1']);
    }
    // kubectl shows the warning to a person who still writes v1alpha1.
    const k = await kubectl(['get', `apikeys.v1alpha1.${GROUP}`, 'old', '-n', NS]);
    expect(k.code, k.stderr).toBe(0);
    expect(k.stderr).toContain(`Warning: ${GROUP}/v1alpha1 ApiKey is deprecated; use ${GROUP}/v1 ApiKey`);
  });

  it('the controller on v1 makes the old key and a new one Ready, and keeps the old audience claim', async () => {
    controller = await startController({ kubeconfig: cluster.kubeconfig, operatorNamespace: OP_NS, args: ['--namespaces', NS] });
    const claimBefore = await get('v1', 'audienceclaims', audienceClaimName(AUDIENCE), OP_NS);
    const r = await kubectl(['apply', '-n', NS, '-f', '-'],
      JSON.stringify({ apiVersion: `${GROUP}/v1`, kind: 'ApiKey', metadata: { name: 'new' }, spec: { deploymentRef: { name: 'old' } } }));
    expect(r.code, r.stderr).toBe(0);
    for (const name of ['old', 'new']) {
      const k = await waitFor(`ApiKey ${name} Ready`, async () => { const o = await get('v1', 'apikeys', name, NS); return ready(o) && o; }, 60_000, 200);
      expect(k.status?.keyId).toMatch(/^\S+$/);
      expect(k.metadata.ownerReferences).toEqual([expect.objectContaining({ apiVersion: `${GROUP}/v1`, kind: 'Deployment', name: 'old' })]);
    }
    const claim = await get('v1', 'audienceclaims', audienceClaimName(AUDIENCE), OP_NS);
    expect(claim.metadata.uid).toBe(claimBefore.metadata.uid);
    expect(claim.spec).toStrictEqual(claimBefore.spec);
  });

  it("with the chart's admission policies, a cluster-admin outside system:masters is stopped at AudienceClaims, by --dry-run already", async () => {
    const policies = (await renderChart('apikey-operator', OP_NS))
      .filter((o) => o.kind === 'ValidatingAdmissionPolicy' || o.kind === 'ValidatingAdmissionPolicyBinding');
    expect(policies.length).toBeGreaterThanOrEqual(8);
    let r = await kubectl(['apply', '-f', '-'], policies.map((o) => JSON.stringify(o)).join('\n'));
    expect(r.code, r.stderr).toBe(0);
    expect((await kubectl(['create', 'serviceaccount', 'platform-admin', '-n', OP_NS])).code).toBe(0);
    r = await kubectl(['create', 'clusterrolebinding', 'platform-admin', '--clusterrole', 'cluster-admin', `--serviceaccount=${OP_NS}:platform-admin`]);
    expect(r.code, r.stderr).toBe(0);
    const token = await kubectl(['create', 'token', 'platform-admin', '-n', OP_NS]);
    expect(token.code, token.stderr).toBe(0);
    const kubeconfig = join(tmp, 'platform-admin.kubeconfig');
    writeFileSync(kubeconfig, bearerTokenKubeconfig({
      cluster: { server: cluster.server, 'certificate-authority': join(cluster.dir, 'pki', 'ca.crt') },
      token: token.stdout.trim(), user: 'platform-admin', namespace: OP_NS,
    }), { mode: 0o600 });
    // The policies take a moment to load; until then the dry run passes.
    const refused = await waitFor('the AudienceClaims policy to refuse the dry run', async () => {
      const m = await migrate(['--dry-run'], kubeconfig);
      return m.code === 1 && m;
    }, 30_000, 500);
    expect(refused.stderr).toBe(
      `error: forbidden: cannot update audienceclaims.apikeys.dev "${audienceClaimName(AUDIENCE)}" in namespace "${OP_NS}": ` +
      `only the apikey-operator's controller may write AudienceClaims, which say who holds a custom audience; not system:serviceaccount:${OP_NS}:platform-admin; ` +
      'the stored versions of audienceclaims.apikeys.dev were left as they are: run kubectl apikey migrate again once this is fixed\n');
    // The three other kinds passed RBAC and admission (dry run: nothing written).
    for (const plural of ['deployments', 'apikeys', 'federatedcredentials']) expect(refused.stdout).toContain(`${plural}.${GROUP}: would rewrite`);
  });

  it('--dry-run reports what it would migrate and changes nothing', async () => {
    const idleVersion = (await get('v1', 'deployments', 'idle', IDLE_NS)).metadata.resourceVersion;
    const r = await migrate(['--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    for (const { plural } of KINDS) expect(r.stdout).toContain(`${plural}.${GROUP}: would rewrite`);
    expect(r.stdout).toContain('Dry run done: 4 CRDs to migrate');
    // Nothing the controller writes: still stored as v1alpha1, at the same resourceVersion.
    expect((await etcdValue(etcdKey('deployments', IDLE_NS, 'idle'))).apiVersion).toBe(`${GROUP}/v1alpha1`);
    expect((await get('v1', 'deployments', 'idle', IDLE_NS)).metadata.resourceVersion).toBe(idleVersion);
    for (const { plural } of KINDS) expect((await crd(plural)).status?.storedVersions).toEqual(['v1alpha1', 'v1']);
  });

  it('migrate rewrites every object as v1 in etcd, unchanged, and sets status.storedVersions to ["v1"]', async () => {
    const before = new Map<string, Obj>();
    for (const { plural } of KINDS) before.set(plural, await get('v1', plural, nameOf(plural), where(plural)));
    const newKey = await get('v1', 'apikeys', 'new', NS);
    const r = await migrate();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const { plural } of KINDS) {
      expect(r.stdout).toMatch(new RegExp(`${plural}\\.apikeys\\.dev: rewrote \\d+ objects? .*status\\.storedVersions is now \\[v1\\]`));
      expect((await crd(plural)).status?.storedVersions).toEqual(['v1']);
      const stored = await etcdValue(etcdKey(plural, where(plural), nameOf(plural)));
      expect(stored.apiVersion).toBe(`${GROUP}/v1`);
      const after = await get('v1', plural, nameOf(plural), where(plural));
      const b = before.get(plural)!;
      // The same object: uid, spec and status; only its resourceVersion (and managedFields' time) moved.
      expect(after.metadata.uid).toBe(b.metadata.uid);
      expect(after.spec).toStrictEqual(b.spec);
      expect(after.status).toStrictEqual(b.status);
    }
    expect(r.stdout).toContain(`Done: every object of the 4 CRDs is stored as ${GROUP}/v1`);
    expect((await etcdValue(etcdKey('deployments', IDLE_NS, 'idle'))).apiVersion).toBe(`${GROUP}/v1`);
    expect(r.stdout).toContain(`deployments.${GROUP}: rewrote 2 objects`);
    // The key written after the upgrade was stored as v1 already: its write was a no-op.
    expect((await get('v1', 'apikeys', 'new', NS)).metadata.resourceVersion).toBe(newKey.metadata.resourceVersion);
    expect((await etcdValue(etcdKey('apikeys', NS, 'new'))).apiVersion).toBe(`${GROUP}/v1`);
    // The keys stay Ready with their ids and secrets.
    const old = await get('v1', 'apikeys', 'old', NS);
    expect(ready(old)).toBe(true);
    expect([old.status?.keyId, old.status?.secretHash]).toEqual([before.get('apikeys')!.status?.keyId, before.get('apikeys')!.status?.secretHash]);
  });

  it('a second migrate is a no-op', async () => {
    const rv = new Map<string, string | undefined>();
    for (const { plural } of KINDS) rv.set(plural, (await get('v1', plural, nameOf(plural), where(plural))).metadata.resourceVersion);
    const r = await migrate();
    expect(r.code, r.stderr).toBe(0);
    for (const { plural } of KINDS) {
      expect(r.stdout).toContain(`${plural}.${GROUP}: stored as v1 only; nothing to do`);
      expect((await get('v1', plural, nameOf(plural), where(plural))).metadata.resourceVersion).toBe(rv.get(plural));
      expect((await crd(plural)).status?.storedVersions).toEqual(['v1']);
    }
    expect(r.stdout).toContain('Nothing to do');
  });

  it('migrate against a cluster without the CRDs says so and exits 1', async () => {
    const r = await migrate([], join(tmp, 'no-crds-kubeconfig'));
    // A kubeconfig file that does not exist is refused before anything else.
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: cannot load the kubeconfig/);
    // This file's cluster without the CRDs: delete them (the objects go with them).
    await controller?.kill();
    controller = undefined;
    expect((await kubectl(['delete', '-f', CRDS_DIR, '--wait=true'])).code).toBe(0);
    const gone = await migrate();
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: the CRD deployments\.apikeys\.dev is not installed in the cluster at https:\/\/127\.0\.0\.1:\d+ \(context "[^"]+"\): nothing to migrate; install or upgrade apikey-operator first/);
    expect(gone.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});

