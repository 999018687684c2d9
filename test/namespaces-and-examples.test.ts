/**
 * The controller limited to some namespaces (--namespaces, with the chart's
 * watchNamespaces RBAC: rights only there), and the shipped examples applied
 * with kubectl as a user would.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterState, createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { ROOT } from './support/paths.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import { adminClient, createApiKey, createDeployment, credentialsOf, getApiKey, getSecret, waitForReady } from './support/resources.ts';

let watched: TestNamespace;
let other: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;

beforeAll(async () => {
  watched = await createNamespace('watched');
  other = await createNamespace('other');
  identity = await installOperatorIdentity({ watchNamespaces: [watched.name] });
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: ['--namespaces', watched.name],
  });
});

afterAll(async () => {
  await controller?.stop();
  await identity?.cleanup();
  for (const n of [watched, other]) await n?.cleanup();
});

describe('a controller watching some namespaces, with rights only there', () => {
  it('has no rights on Secrets or ApiKeys in other namespaces', async () => {
    const as = `system:serviceaccount:${identity.namespace}:${identity.controllerServiceAccount}`;
    const can = async (verb: string, res: string, ns: string) =>
      (await kubectl(['auth', 'can-i', verb, res, '-n', ns, '--as', as])).stdout.trim();
    expect(await can('create', 'secrets', watched.name)).toBe('yes');
    expect(await can('create', 'secrets', other.name)).toBe('no');
    expect(await can('list', 'apikeys.apikeys.dev', other.name)).toBe('no');
  });

  it('reconciles keys in its namespaces and leaves the others alone', async () => {
    await createDeployment(watched.name, 'dep');
    await createDeployment(other.name, 'dep');
    await createApiKey(watched.name, 'mine', { deploymentRef: { name: 'dep' } });
    await createApiKey(other.name, 'theirs', { deploymentRef: { name: 'dep' } });
    await waitForReady(watched.name, 'mine');
    await sleep(2_000);
    expect((await getApiKey(other.name, 'theirs'))?.status).toBeUndefined();
    expect(await getSecret(other.name, 'theirs')).toBeUndefined();
    expect(controller.isRunning()).toBe(true);
  });
});

describe('manifests/examples', () => {
  it('apply with kubectl, and their keys become Ready with the documented Secrets', async () => {
    const files = readdirSync(join(ROOT, 'manifests/examples')).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(['deployment.yaml', 'apikey-ci.yaml', 'apikey-rotated.yaml']));
    const r = await kubectl(['apply', '-n', watched.name, '-f', join(ROOT, 'manifests/examples')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('deployment.apikeys.dev/airflow-prod created');
    const ci = await waitForReady(watched.name, 'ci-deployer');
    const dash = await waitForReady(watched.name, 'dashboard-reader');
    expect(ci.spec.permissions).toEqual(['deploy']);
    expect(dash.spec.permissions).toEqual(['read']);
    const s = (await getSecret(watched.name, 'dashboard-reader-credentials'))!;
    expect(s.metadata?.labels?.team).toBe('data-platform');
    expect(s.metadata?.annotations?.['secrets.example.com/sync-to']).toBe('vault://kv/airflow/dashboard');
    expect(credentialsOf(s).audience).toBe('https://airflow-prod.example.com');
    expect(dash.spec.rotation).toEqual({ every: '2160h', gracePeriod: '24h' });
  });
});

describe('in a pod', () => {
  it('the controller runs from the ServiceAccount files and KUBERNETES_SERVICE_* alone, in the ServiceAccount\'s namespace', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pod-root-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    try {
      // What the kubelet mounts: the token, the cluster CA, the namespace.
      const kc = new KubeConfig();
      kc.loadFromFile(identity.controllerKubeconfig);
      writeFileSync(join(sa, 'token'), kc.getCurrentUser()!.token!);
      writeFileSync(join(sa, 'ca.crt'), Buffer.from(kc.getCurrentCluster()!.caData!, 'base64'));
      writeFileSync(join(sa, 'namespace'), identity.namespace);
      await controller.stop();
      const server = new URL(clusterState().server);
      const inPod = await startController({
        kubeconfig: '', operatorNamespace: '', raw: true,
        args: ['--namespaces', watched.name, '--leader-elect-lease-duration', '3s'],
        env: { KUBECONFIG: undefined, APIKEY_OPERATOR_POD_ROOT: root, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
      });
      controller = inPod;
      await createApiKey(watched.name, 'from-pod', { deploymentRef: { name: 'dep' } });
      await waitForReady(watched.name, 'from-pod', 60_000);
      const lease = await adminClient().get<{ spec: { holderIdentity: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/${identity.namespace}/leases/apikey-operator-controller`);
      expect(lease.spec.holderIdentity).toBeTruthy();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});
