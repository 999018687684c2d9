/**
 * The controller limited to some namespaces (--namespaces, with the chart's
 * watchNamespaces RBAC: rights only there), and the shipped examples applied
 * with kubectl as a user would.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, kubectl } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { ROOT } from './support/paths.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import { createApiKey, createDeployment, credentialsOf, getApiKey, getSecret, waitForReady } from './support/resources.ts';

let opNs: Awaited<ReturnType<typeof createNamespace>>;
let watched: Awaited<ReturnType<typeof createNamespace>>;
let other: Awaited<ReturnType<typeof createNamespace>>;
let identity: OperatorIdentity;
let controller: RunningProcess;

beforeAll(async () => {
  opNs = await createNamespace('op');
  watched = await createNamespace('watched');
  other = await createNamespace('other');
  identity = await installOperatorIdentity(opNs.name, [`watchNamespaces={${watched.name}}`]);
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: opNs.name, args: ['--namespaces', watched.name],
  });
});

afterAll(async () => {
  await controller?.stop();
  await identity?.cleanup();
  for (const n of [watched, other, opNs]) await n?.cleanup();
});

describe('a controller watching some namespaces, with rights only there', () => {
  it('has no rights on Secrets or ApiKeys in other namespaces', async () => {
    const as = `system:serviceaccount:${opNs.name}:${identity.controllerServiceAccount}`;
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
