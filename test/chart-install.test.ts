/**
 * The chart and the plain manifests install into a real control plane: every object they render is
 * created, the pods they would run pass the restricted Pod Security Standard (checked by the
 * apiserver with a server-side dry run, since no kubelet runs here), and `helm uninstall` removes
 * everything it installed. The CRDs here are the suite's own (crds/), so these releases leave them
 * out (crds.enabled=false); test/chart-crds.test.ts installs, upgrades and uninstalls the chart's
 * CRDs on a control plane of its own.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { CHART_DIR, INSTALL_DIR, INSTALL_NAMESPACE, renderInstallManifests } from '../scripts/render-manifests.ts';
import { clusterState, createNamespace, kubectl, uniqueName } from './support/cluster.ts';
import {
  DEFAULT_KINDS_WITHOUT_CRDS, WITHOUT_CRDS, helm, kindCounts, objectsOfKind, parseManifests, type KubeObject,
} from './support/helm.ts';
import { waitFor } from './support/wait.ts';

const tmp = mkdtempSync(join(tmpdir(), 'chart-install-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const RESTRICTED = 'pod-security.kubernetes.io/enforce=restricted';
const CRDS = ['deployments.apikeys.dev', 'apikeys.apikeys.dev', 'federatedcredentials.apikeys.dev', 'audienceclaims.apikeys.dev'].map((n) => `customresourcedefinition.apiextensions.k8s.io/${n}`);

/** `kubectl get -f` of the objects in `file`: the names of those that exist. */
async function existing(file: string): Promise<string[]> {
  const r = await kubectl(['get', '-f', file, '-o', 'name', '--ignore-not-found']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

/** Asks the apiserver to admit (dry run) a Pod of each Deployment, in a namespace enforcing `restricted`. */
async function expectPodsAdmitted(objects: KubeObject[]): Promise<void> {
  const deployments = objectsOfKind<V1Deployment>(objects, 'Deployment');
  expect(deployments.length).toBeGreaterThan(0);
  for (const d of deployments) {
    const pod = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `${d.metadata?.name}-admission`, namespace: d.metadata?.namespace, labels: d.spec?.template.metadata?.labels },
      spec: d.spec?.template.spec,
    };
    const r = await kubectl(['create', '--dry-run=server', '-o', 'name', '-f', '-'], { input: JSON.stringify(pod) });
    expect(r.code, `${d.metadata?.name}: ${r.stderr}`).toBe(0);
    expect(r.stderr).not.toContain('PodSecurity');
  }
}

const INSTALLS: [string, (watched: string[]) => object, Record<string, number>][] = [
  ['the default values', () => ({}), DEFAULT_KINDS_WITHOUT_CRDS],
  ['the token server as its own autoscaled Deployment behind NetworkPolicies', () => ({
    tokenServer: { mode: 'deployment', autoscaling: { enabled: true } }, networkPolicy: { enabled: true },
  }), { ...DEFAULT_KINDS_WITHOUT_CRDS, ServiceAccount: 2, Deployment: 2, PodDisruptionBudget: 1, HorizontalPodAutoscaler: 1, NetworkPolicy: 2 }],
  ['two watched namespaces', (watched) => ({ watchNamespaces: watched }),
    // No ClusterRole for namespaces: the CA bundle goes only to the watched ones.
    { ...DEFAULT_KINDS_WITHOUT_CRDS, ClusterRole: 7, ClusterRoleBinding: 1, RoleBinding: 6 }],
  ['two controllers with a PodDisruptionBudget, spread over nodes, with extra volumes and labels', () => ({
    controller: { replicas: 2, podDisruptionBudget: { enabled: true }, extraArgs: ['--resync=1h'] },
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', matchLabelKeys: ['pod-template-hash'] }],
    volumes: [{ name: 'ca', configMap: { name: 'ca-bundle', optional: true } }],
    volumeMounts: [{ name: 'ca', mountPath: '/etc/ssl/extra', readOnly: true }],
    global: { commonLabels: { team: 'platform' } },
    serviceAccount: { controller: { annotations: { 'iam.example.com/role': 'apikey-operator' } } },
  }), { ...DEFAULT_KINDS_WITHOUT_CRDS, PodDisruptionBudget: 1 }],
  ['the console in in-cluster mode, with an Ingress, behind NetworkPolicies', () => ({
    console: {
      enabled: true,
      oidc: { issuerURL: 'https://idp.example.com', clientID: 'apikey-console', clientSecret: { existingSecret: 'console-oidc' }, caConfigMap: 'idp-ca' },
      ingress: { enabled: true, host: 'console.example.com', tls: [{ secretName: 'console-tls', hosts: ['console.example.com'] }] },
    },
    networkPolicy: { enabled: true },
    // Role and RoleBinding: the console's own token may touch its sign-out list only.
  }), { ...DEFAULT_KINDS_WITHOUT_CRDS, ServiceAccount: 3, Deployment: 2, Service: 4, Ingress: 1, NetworkPolicy: 2,
    Role: DEFAULT_KINDS_WITHOUT_CRDS.Role! + 1, RoleBinding: DEFAULT_KINDS_WITHOUT_CRDS.RoleBinding! + 1 }],
];

describe('helm install', () => {
  it.each(INSTALLS)('with %s creates every object, and helm uninstall removes them and leaves the CRDs', async (_name, values, kinds) => {
    const ns = await createNamespace('chart');
    const watched = [await createNamespace('watched'), await createNamespace('watched')];
    const release = uniqueName('apikey-operator');
    try {
      expect((await kubectl(['label', 'namespace', ns.name, RESTRICTED])).code).toBe(0);
      const install = await helm(['install', release, CHART_DIR, '--namespace', ns.name], { ...WITHOUT_CRDS, ...values(watched.map((w) => w.name)) });
      expect(install.code, install.stderr).toBe(0);
      expect(install.stdout).toContain(`https://${release}-token.${ns.name}.svc:8080/oauth/token`);
      expect(install.stdout).toContain('apikey-operator-ca.crt');
      expect(install.stdout).not.toContain('PLAIN HTTP');

      const manifest = (await helm(['get', 'manifest', release, '--namespace', ns.name])).stdout;
      const objects = parseManifests(manifest);
      expect(kindCounts(objects)).toEqual(kinds);
      const file = join(tmp, `${release}.yaml`);
      writeFileSync(file, manifest);
      expect((await existing(file)).length).toBe(objects.length);
      await expectPodsAdmitted(objects);

      const uninstall = await helm(['uninstall', release, '--namespace', ns.name]);
      expect(uninstall.code, uninstall.stderr).toBe(0);
      await waitFor('every object deleted', async () => (await existing(file)).length === 0, 60_000);
      const crds = await kubectl(['get', ...CRDS, '-o', 'name']);
      expect(crds.stdout.split('\n').filter(Boolean)).toEqual(CRDS);
    } finally {
      await helm(['uninstall', release, '--namespace', ns.name, '--ignore-not-found']);
      for (const n of [ns, ...watched]) await n.cleanup();
    }
  });
});

describe('kubectl apply -f manifests/install/', () => {
  it('installs the operator into the namespace apikey-operator, which admits its pods under the restricted standard', async () => {
    const operator = join(INSTALL_DIR, '02-operator.yaml');
    const namespace = join(INSTALL_DIR, '00-namespace.yaml');
    // The rest of the suite uses the CRDs installed from crds/: never apply stale copies over them.
    expect(readFileSync(join(INSTALL_DIR, '01-crds.yaml'), 'utf8'), 'run node_modules/.bin/node scripts/render-manifests.ts')
      .toBe(renderInstallManifests(clusterState().binaries.helm)['01-crds.yaml']);
    try {
      const r = await kubectl(['apply', '-f', INSTALL_DIR]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('PodSecurity');
      expect(r.stdout).toContain(`namespace/${INSTALL_NAMESPACE}`);
      for (const crd of CRDS) expect(r.stdout).toContain(crd);

      const objects = parseManifests(readFileSync(operator, 'utf8'));
      expect(objects.every((o) => o.metadata.namespace === undefined || o.metadata.namespace === INSTALL_NAMESPACE)).toBe(true);
      expect((await existing(operator)).length).toBe(objects.length);
      const labels = await kubectl(['get', 'namespace', INSTALL_NAMESPACE, '-o', 'jsonpath={.metadata.labels}']);
      expect(JSON.parse(labels.stdout)).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
      await expectPodsAdmitted(objects);
    } finally {
      // The CRDs stay: the rest of the suite uses them.
      const d = await kubectl(['delete', '-f', operator, '-f', namespace, '--ignore-not-found', '--timeout=120s']);
      expect(d.code, d.stderr).toBe(0);
    }
    expect(await existing(operator)).toEqual([]);
  });
});
