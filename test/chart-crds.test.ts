/**
 * The chart's CRDs through a release's life, on a control plane of this file's own: the suite's
 * shared one has the CRDs from crds/, and deleting them there would delete every other test's keys.
 *
 * `helm package` makes an archive that `helm install` accepts; the CRDs are templates of the
 * release, so `helm upgrade` upgrades them; `helm uninstall` keeps them, and the keys in them, with
 * crds.keep and deletes them without it; CRDs that Helm did not install (an earlier chart's crds/
 * folder, `kubectl apply -f crds/`) are adopted with --take-ownership, as the chart's README says.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { CHART_CRDS_DIR, CHART_DIR, CRDS_DIR } from '../scripts/render-manifests.ts';
import { down, up, type ClusterState } from './cluster/controlplane.ts';
import { kubectl as sharedKubectl } from './support/cluster.ts';
import { parseManifests } from './support/helm.ts';
import { run, type Run } from './support/run.ts';
import { waitFor } from './support/wait.ts';

const CRDS = ['apikeys.apikeys.dev', 'audienceclaims.apikeys.dev', 'deployments.apikeys.dev', 'federatedcredentials.apikeys.dev'];
const KEEP = 'helm.sh/resource-policy';

const tmp = mkdtempSync(join(tmpdir(), 'chart-crds-'));
let cluster: ClusterState;
let archive: string;

beforeAll(async () => {
  cluster = await up(join(tmp, 'cluster'), { log: () => undefined });
}, 300_000);

afterAll(async () => {
  if (cluster) await down(cluster.dir);
  rmSync(tmp, { recursive: true, force: true });
});

/** helm against this file's control plane. */
function helm(args: string[]): Promise<Run> {
  return run(cluster.binaries.helm, [...args, '--kubeconfig', cluster.kubeconfig]);
}

const kubectl = (args: string[], input?: string) => sharedKubectl(args, { kubeconfig: cluster.kubeconfig, input });

async function crd(name: string): Promise<V1CustomResourceDefinition | undefined> {
  const r = await kubectl(['get', 'crd', name, '-o', 'json', '--ignore-not-found']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim() ? JSON.parse(r.stdout) as V1CustomResourceDefinition : undefined;
}

/** The release that owns a CRD in Helm's eyes, and whether helm uninstall keeps it. */
async function ownership(name: string): Promise<{ release?: string; namespace?: string; keep?: string; managedBy?: string }> {
  const c = await crd(name);
  const a = c?.metadata?.annotations ?? {};
  return {
    release: a['meta.helm.sh/release-name'], namespace: a['meta.helm.sh/release-namespace'], keep: a[KEEP],
    managedBy: c?.metadata?.labels?.['app.kubernetes.io/managed-by'],
  };
}

async function waitForEstablished(): Promise<void> {
  const r = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...CRDS.map((n) => `crd/${n}`)]);
  expect(r.code, r.stderr).toBe(0);
}

/** A Deployment and an ApiKey in `ns`, as a user would create them. */
async function createKey(ns: string): Promise<void> {
  const r = await kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'List', items: [
      { apiVersion: 'apikeys.dev/v1', kind: 'Deployment', metadata: { name: 'airflow' }, spec: {} },
      { apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'ci' }, spec: { deploymentRef: { name: 'airflow' } } },
    ],
  }));
  expect(r.code, r.stderr).toBe(0);
}

async function keyExists(ns: string): Promise<boolean> {
  const r = await kubectl(['get', 'apikeys.apikeys.dev', 'ci', '-n', ns, '-o', 'name']);
  return r.code === 0 && r.stdout.trim() === 'apikey.apikeys.dev/ci';
}

/** A copy of the chart whose ApiKey CRD has one more short name: a CRD change an upgrade must apply. */
function chartWithChangedCrd(): string {
  const dir = join(tmp, 'chart-next');
  cpSync(CHART_DIR, dir, { recursive: true });
  const file = join(dir, 'files', 'crds', 'apikeys.dev_apikeys.yaml');
  const doc = parseYaml(readFileSync(file, 'utf8')) as V1CustomResourceDefinition;
  doc.spec.names.shortNames = [...(doc.spec.names.shortNames ?? []), 'aknext'];
  writeFileSync(file, stringifyYaml(doc));
  return dir;
}

describe('the packaged chart and its CRDs', () => {
  it('packages into an archive with the chart\'s metadata, the CRDs, the schema and the README', async () => {
    const r = await helm(['package', CHART_DIR, '--destination', tmp]);
    expect(r.code, r.stderr).toBe(0);
    archive = join(tmp, 'apikey-operator-0.2.0.tgz');
    expect(r.stdout).toContain(archive);
    const files = execFileSync('tar', ['tzf', archive], { encoding: 'utf8' }).split('\n');
    expect(files).toEqual(expect.arrayContaining([
      'apikey-operator/Chart.yaml', 'apikey-operator/values.yaml', 'apikey-operator/values.schema.json', 'apikey-operator/README.md',
      'apikey-operator/templates/crds.yaml', ...CRDS.map((n) => `apikey-operator/files/crds/apikeys.dev_${n.split('.')[0]}.yaml`),
    ]));
    expect(files.filter((f) => f.startsWith('apikey-operator/crds/'))).toEqual([]);
    const chart = parseYaml((await helm(['show', 'chart', archive])).stdout) as {
      name: string; home: string; sources: string[]; maintainers: { name: string }[]; keywords: string[];
    };
    expect(chart.name).toBe('apikey-operator');
    for (const url of [chart.home, ...chart.sources]) expect(url).toMatch(/^https:\/\//);
    expect(chart.sources).toHaveLength(1);
    expect(chart.maintainers.map((m) => m.name)).toEqual(['apikey-operator maintainers']);
    expect(chart.keywords.length).toBeGreaterThan(3);
    // The archive carries the copies of crds/ byte for byte.
    for (const n of ['apikeys.dev_apikeys.yaml', 'apikeys.dev_audienceclaims.yaml', 'apikeys.dev_deployments.yaml', 'apikeys.dev_federatedcredentials.yaml']) {
      expect(readFileSync(join(CHART_CRDS_DIR, n), 'utf8')).toBe(readFileSync(join(CRDS_DIR, n), 'utf8'));
    }
  });

  it('installs from the archive, with the CRDs as objects of the release that helm uninstall keeps', async () => {
    const r = await helm(['install', 'keys', archive, '--namespace', 'apikeys', '--create-namespace']);
    expect(r.code, r.stderr).toBe(0);
    const manifest = parseManifests((await helm(['get', 'manifest', 'keys', '--namespace', 'apikeys'])).stdout);
    expect(manifest.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata.name).sort()).toEqual(CRDS);
    await waitForEstablished();
    for (const n of CRDS) {
      expect(await ownership(n)).toEqual({ release: 'keys', namespace: 'apikeys', keep: 'keep', managedBy: 'Helm' });
    }
    expect((await kubectl(['create', 'namespace', 'team-a'])).code).toBe(0);
    await createKey('team-a');
    expect(await keyExists('team-a')).toBe(true);
  });

  it('upgrades the CRDs with helm upgrade, to a changed chart and back to the archive', async () => {
    const next = await helm(['upgrade', 'keys', chartWithChangedCrd(), '--namespace', 'apikeys']);
    expect(next.code, next.stderr).toBe(0);
    expect((await crd('apikeys.apikeys.dev'))?.spec.names.shortNames).toEqual(['ak', 'aknext']);
    const back = await helm(['upgrade', 'keys', archive, '--namespace', 'apikeys']);
    expect(back.code, back.stderr).toBe(0);
    expect((await crd('apikeys.apikeys.dev'))?.spec.names.shortNames).toEqual(['ak']);
    expect(await keyExists('team-a')).toBe(true);
  });

  it('keeps the CRDs and every key in them on helm uninstall (crds.keep), and a reinstall of the same release takes them back', async () => {
    const r = await helm(['uninstall', 'keys', '--namespace', 'apikeys']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kept due to the resource policy/);
    expect((await kubectl(['get', 'deployments.apps', '-n', 'apikeys', '-o', 'name'])).stdout.trim()).toBe('');
    for (const n of CRDS) expect(await crd(n)).toBeDefined();
    expect(await keyExists('team-a')).toBe(true);

    // The kept CRDs still name the release "keys": another release may not take them silently.
    const other = await helm(['install', 'other', archive, '--namespace', 'other', '--create-namespace']);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/invalid ownership metadata/);
    await helm(['uninstall', 'other', '--namespace', 'other', '--ignore-not-found']);

    const again = await helm(['install', 'keys', archive, '--namespace', 'apikeys']);
    expect(again.code, again.stderr).toBe(0);
    expect(await keyExists('team-a')).toBe(true);
    const gone = await helm(['uninstall', 'keys', '--namespace', 'apikeys']);
    expect(gone.code, gone.stderr).toBe(0);
  });

  it('adopts CRDs that Helm did not install with --take-ownership, and with crds.keep=false helm uninstall deletes them and every key', async () => {
    // CRDs as an earlier chart (crds/ folder) or kubectl apply -f crds/ leave them: no Helm metadata.
    const del = await kubectl(['delete', 'crd', ...CRDS, '--timeout=120s']);
    expect(del.code, del.stderr).toBe(0);
    const applied = await kubectl(['apply', '--server-side', '-f', CRDS_DIR]);
    expect(applied.code, applied.stderr).toBe(0);
    await waitForEstablished();
    await createKey('team-a');

    const old = await helm(['install', 'legacy', archive, '--namespace', 'legacy', '--create-namespace',
      '--set', 'crds.enabled=false', '--set', 'crds.keep=false']);
    expect(old.code, old.stderr).toBe(0);
    const upgrade = ['upgrade', 'legacy', archive, '--namespace', 'legacy', '--reuse-values', '--set', 'crds.enabled=true'];
    const refused = await helm(upgrade);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/invalid ownership metadata/);
    const adopted = await helm([...upgrade, '--take-ownership']);
    expect(adopted.code, adopted.stderr).toBe(0);
    for (const n of CRDS) {
      expect(await ownership(n)).toEqual({ release: 'legacy', namespace: 'legacy', keep: undefined, managedBy: 'Helm' });
    }
    expect(await keyExists('team-a')).toBe(true);

    const r = await helm(['uninstall', 'legacy', '--namespace', 'legacy']);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('the CRDs deleted', async () => (await Promise.all(CRDS.map(crd))).every((c) => c === undefined), 150_000, 250);
    const keys = await kubectl(['get', 'apikeys.apikeys.dev', '-A', '-o', 'name']);
    expect(keys.code).not.toBe(0);
    expect(keys.stderr).toMatch(/doesn't have a resource type|not found/);
    // Two CRD deletions (up to 120 s and 150 s of their own) and four helm runs. The apiserver's
    // deletion of the uninstalled CRDs took more than 60 s in one of three runs this session (once
    // alone on a quiet machine), for a reason not found yet; it passed in 88 s the other times.
  }, 300_000);
});
