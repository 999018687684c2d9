/**
 * Proves the test control plane is a real one: CRD schemas are enforced, the
 * garbage collector runs, and RBAC is on for ServiceAccount tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, createNamespace, kubectl, serviceAccountKubeconfig, type TestNamespace } from './support/cluster.ts';
import { waitFor } from './support/wait.ts';

let ns: TestNamespace;
const tmp = mkdtempSync(join(tmpdir(), 'cp-test-'));
beforeAll(async () => { ns = await createNamespace('cp'); });
afterAll(async () => { await ns.cleanup(); rmSync(tmp, { recursive: true, force: true }); });

describe('the test control plane', () => {
  it('runs Node 24 from the node devDependency under npm scripts', () => {
    console.log(`tests run on ${process.version}`);
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });

  it('installs a CRD, which becomes Established and rejects an object that violates its schema', async () => {
    const kc = adminKubeConfig();
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const name = 'widgets.controlplane.test';
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name },
        spec: {
          group: 'controlplane.test',
          scope: 'Namespaced',
          names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
          versions: [{
            name: 'v1', served: true, storage: true,
            schema: { openAPIV3Schema: {
              type: 'object',
              properties: { spec: { type: 'object', required: ['size'], properties: {
                size: { type: 'integer', minimum: 1 },
              } } },
            } },
          }],
        },
      },
    });
    try {
      await waitFor('CRD Established', async () => {
        const crd = await ext.readCustomResourceDefinition({ name });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      }, 60_000, 100);
      const co = kc.makeApiClient(CustomObjectsApi);
      const create = (size: unknown) => co.createNamespacedCustomObject({
        group: 'controlplane.test', version: 'v1', namespace: ns.name, plural: 'widgets',
        body: { apiVersion: 'controlplane.test/v1', kind: 'Widget', metadata: { name: `w${String(size)}` }, spec: { size } },
      });
      // Discovery of the new resource can lag Established by a moment.
      await waitFor('CR accepted', async () => create(3).then(() => true, () => false), 20_000, 100);
      const err = await create(0).then(() => undefined, (e: unknown) => e as { code: number; body: string });
      expect(err?.code).toBe(422);
      expect(err?.body).toContain('spec.size');
      expect(err?.body).toContain('should be greater than or equal to 1');
    } finally {
      await ext.deleteCustomResourceDefinition({ name });
    }
  });

  it('garbage-collects a ConfigMap whose owner was deleted', async () => {
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'dependent', ownerReferences: [{
        apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!,
      }] } },
    });
    await core.deleteNamespacedConfigMap({ namespace: ns.name, name: 'owner' });
    await waitFor('dependent deleted', async () =>
      core.readNamespacedConfigMap({ namespace: ns.name, name: 'dependent' }).then(() => false, (e: unknown) => (e as { code: number }).code === 404),
    60_000, 100);
  });

  it('denies a ServiceAccount token without a Role, and allows it once a RoleBinding is added', async () => {
    const kubeconfig = await serviceAccountKubeconfig(ns.name, 'reader', tmp);
    const asSa = new KubeConfig();
    asSa.loadFromFile(kubeconfig);
    const core = asSa.makeApiClient(CoreV1Api);
    const denied = await core.listNamespacedConfigMap({ namespace: ns.name }).then(() => undefined, (e: unknown) => e as { code: number });
    expect(denied?.code).toBe(403);
    expect((await kubectl(['auth', 'can-i', 'list', 'configmaps', '-n', ns.name], { kubeconfig })).stdout.trim()).toBe('no');

    const rbac = adminKubeConfig().makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: ns.name, body: {
      metadata: { name: 'cm-reader' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
    } });
    await rbac.createNamespacedRoleBinding({ namespace: ns.name, body: {
      metadata: { name: 'cm-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns.name }],
    } });
    await waitFor('RBAC allows', async () =>
      core.listNamespacedConfigMap({ namespace: ns.name }).then(() => true, () => false), 10_000, 100);
    // Still no more than the Role grants.
    const stillDenied = await core.listNamespacedSecret({ namespace: ns.name }).then(() => undefined, (e: unknown) => e as { code: number });
    expect(stillDenied?.code).toBe(403);
  });
});
