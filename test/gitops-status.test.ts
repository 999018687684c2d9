/**
 * What GitOps tools make of each kind in each state, asked of the real tools:
 * kstatus (sigs.k8s.io/cli-utils, as Flux, kpt and cli-utils' appliers wait)
 * and Argo CD's health check (manifests/argocd/health.lua, run by a Lua 5.1
 * interpreter), on objects the real controller brought into that state on
 * the real control plane. A state nothing changes without a person is
 * `Failed` and `Degraded`, so a wait ends with the reason instead of hanging
 * until its timeout; work under way is `InProgress` and `Progressing`.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ARGOCD_CM_PATCH, ARGOCD_HEALTH_LUA, ARGOCD_KINDS, argocdHealthPatch } from '../scripts/render-manifests.ts';
import type { ApiKey, Deployment, FederatedCredential } from '../src/api/index.ts';
import { KubeError, paths } from '../src/kube/client.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, createFederatedCredential, deploymentPath, federatedCredentialPath,
  getApiKey, getOrUndefined, readyOf, secretPath, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { argocdHealth, kstatus } from './support/status-tools.ts';
import { waitFor } from './support/wait.ts';

const ISSUER = 'https://ci.issuer.example.test';
const AUDIENCE = uniqueAudience('gitops');
const nextSecond = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 50));

type Obj = ApiKey | Deployment | FederatedCredential;

let ns: TestNamespace;
let quotaNs: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;

/** Waits until the object's Ready condition has `reason`, and returns the object as the apiserver has it. */
async function inState<T extends Obj>(path: string, reason: string, timeoutMs = 30_000): Promise<T> {
  return waitFor(`${path} ${reason}`, async () => {
    const o = await getOrUndefined<T>(path);
    return readyOf(o)?.reason === reason ? o : undefined;
  }, timeoutMs, 100);
}

/** Both tools' verdicts on one object. */
async function verdicts(o: object) {
  const [k] = await kstatus([o]);
  return { kstatus: k!, argocd: await argocdHealth(o) };
}

beforeAll(async () => {
  ns = await createNamespace('gitops');
  quotaNs = await createNamespace('gitops-quota');
  identity = await installOperatorIdentity();
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: ['--federation-issuers', ISSUER],
  });
  // Build the kstatus tool now, not inside a test's time budget.
  await kstatus([]);
});

afterAll(async () => {
  await controller?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
  await quotaNs?.cleanup();
});

/** How each kind in each state is set up; each returns the object's path and the Ready reason it reaches. */
const SETUPS: Record<string, () => Promise<{ path: string; reason: string }>> = {
  'Deployment Ready': async () => {
    await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
    return { path: deploymentPath(ns.name, 'airflow'), reason: 'Ready' };
  },
  'Deployment AudienceConflict': async () => {
    await inState(deploymentPath(ns.name, 'airflow'), 'Ready');
    await nextSecond();
    await createDeployment(ns.name, 'rival', { audiences: [AUDIENCE] });
    return { path: deploymentPath(ns.name, 'rival'), reason: 'AudienceConflict' };
  },
  'ApiKey Ready': async () => {
    await createApiKey(ns.name, 'ready', { deploymentRef: { name: 'airflow' } });
    return { path: apiKeyPath(ns.name, 'ready'), reason: 'SecretReady' };
  },
  'ApiKey Issuing (its Secret refused by a ResourceQuota)': async () => {
    // A quota of no Secrets (its status written here: this control plane runs no quota controller)
    // refuses the key's Secret: its first status write (Issuing) lands, its Secret write does not,
    // and the controller retries with backoff.
    const quotas = paths.collection('', 'v1', 'resourcequotas', quotaNs.name);
    const none = { 'count/secrets': '0' };
    await adminClient().create(quotas, { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'no-secrets' }, spec: { hard: none } });
    await adminClient().mergePatch(`${quotas}/no-secrets/status`, { status: { hard: none, used: none } });
    await waitFor('the quota refuses Secrets', () => adminClient().create(secretPath(quotaNs.name), {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'probe' },
    }, { dryRun: 'All' }).then(() => false, (err: unknown) => err instanceof KubeError && err.status === 403));
    await createDeployment(quotaNs.name, 'airflow');
    await createApiKey(quotaNs.name, 'issuing', { deploymentRef: { name: 'airflow' } });
    return { path: apiKeyPath(quotaNs.name, 'issuing'), reason: 'Issuing' };
  },
  'ApiKey Expired': async () => {
    await createApiKey(ns.name, 'expired', { deploymentRef: { name: 'airflow' }, expiresAt: '2020-01-01T00:00:00Z' });
    return { path: apiKeyPath(ns.name, 'expired'), reason: 'Expired' };
  },
  'ApiKey DeploymentNotFound (its Deployment deleted, the key orphaned)': async () => {
    await createDeployment(ns.name, 'gone');
    await createApiKey(ns.name, 'orphaned', { deploymentRef: { name: 'gone' } });
    await waitForReady(ns.name, 'orphaned');
    await adminClient().request('DELETE', deploymentPath(ns.name, 'gone'), { body: { propagationPolicy: 'Orphan' } });
    return { path: apiKeyPath(ns.name, 'orphaned'), reason: 'DeploymentNotFound' };
  },
  'ApiKey DeploymentNotFound (created before its Deployment)': async () => {
    await createApiKey(ns.name, 'early', { deploymentRef: { name: 'later' } });
    return { path: apiKeyPath(ns.name, 'early'), reason: 'DeploymentNotFound' };
  },
  'ApiKey SecretConflict': async () => {
    await adminClient().create(secretPath(ns.name), {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'someone-elses' }, stringData: { note: 'not a key' },
    });
    await createApiKey(ns.name, 'taken', { deploymentRef: { name: 'airflow' }, secretName: 'someone-elses' });
    return { path: apiKeyPath(ns.name, 'taken'), reason: 'SecretConflict' };
  },
  'ApiKey KeyIdConflict': async () => {
    const first = await waitForReady(ns.name, 'ready');
    await nextSecond();
    await createApiKey(ns.name, 'copy', { deploymentRef: { name: 'airflow' } });
    await waitForReady(ns.name, 'copy');
    // A status restored from a backup (or written by hand) claims the first key's id.
    await adminClient().mergePatch(`${apiKeyPath(ns.name, 'copy')}/status`, { status: { keyId: first.status!.keyId } });
    return { path: apiKeyPath(ns.name, 'copy'), reason: 'KeyIdConflict' };
  },
  'FederatedCredential Ready': async () => {
    await createFederatedCredential(ns.name, 'ci', { deploymentRef: { name: 'airflow' }, issuer: ISSUER, subject: 'repo:acme/dags:ref:refs/heads/main' });
    return { path: federatedCredentialPath(ns.name, 'ci'), reason: 'Ready' };
  },
  'FederatedCredential InvalidExpression': async () => {
    await createFederatedCredential(ns.name, 'bad-cel', { deploymentRef: { name: 'airflow' }, issuer: ISSUER, claims: 'claims.repository ==' });
    return { path: federatedCredentialPath(ns.name, 'bad-cel'), reason: 'InvalidExpression' };
  },
  'FederatedCredential IssuerNotAllowed': async () => {
    await createFederatedCredential(ns.name, 'stranger', {
      deploymentRef: { name: 'airflow' }, issuer: 'https://not-allowed.example.test', subject: 'someone',
    });
    return { path: federatedCredentialPath(ns.name, 'stranger'), reason: 'IssuerNotAllowed' };
  },
  'FederatedCredential DeploymentNotFound': async () => {
    await createFederatedCredential(ns.name, 'nowhere', { deploymentRef: { name: 'missing' }, issuer: ISSUER, subject: 'someone' });
    return { path: federatedCredentialPath(ns.name, 'nowhere'), reason: 'DeploymentNotFound' };
  },
};

/** [state, kstatus, Argo CD]: what each tool must say. */
const EXPECTED: [string, string, string][] = [
  ['Deployment Ready', 'Current', 'Healthy'],
  ['Deployment AudienceConflict', 'Failed', 'Degraded'],
  ['ApiKey Ready', 'Current', 'Healthy'],
  ['ApiKey Issuing (its Secret refused by a ResourceQuota)', 'InProgress', 'Progressing'],
  ['ApiKey Expired', 'Failed', 'Degraded'],
  ['ApiKey DeploymentNotFound (its Deployment deleted, the key orphaned)', 'Failed', 'Degraded'],
  ['ApiKey DeploymentNotFound (created before its Deployment)', 'Failed', 'Degraded'],
  ['ApiKey SecretConflict', 'Failed', 'Degraded'],
  ['ApiKey KeyIdConflict', 'Failed', 'Degraded'],
  ['FederatedCredential Ready', 'Current', 'Healthy'],
  ['FederatedCredential InvalidExpression', 'Failed', 'Degraded'],
  ['FederatedCredential IssuerNotAllowed', 'Failed', 'Degraded'],
  ['FederatedCredential DeploymentNotFound', 'Failed', 'Degraded'],
];

const objects = new Map<string, Obj>();

describe('each kind in each state, as the real controller leaves it', () => {
  beforeAll(async () => {
    // In order: later setups lean on earlier ones (the Deployment airflow, the key ready).
    const reached: [string, { path: string; reason: string }][] = [];
    for (const [state, setup] of Object.entries(SETUPS)) reached.push([state, await setup()]);
    for (const [state, { path, reason }] of reached) objects.set(state, await inState(path, reason));
  });

  it('covers every state it sets up', () => {
    expect(EXPECTED.map(([s]) => s).sort()).toEqual(Object.keys(SETUPS).sort());
  });

  it.each(EXPECTED)('%s: kstatus %s, Argo CD %s, each with the reason\'s message', async (state, want, health) => {
    const o = objects.get(state)!;
    const ready = readyOf(o)!;
    const v = await verdicts(o);
    expect(v.kstatus.status).toBe(want);
    expect(v.argocd.status).toBe(health);
    if (want === 'Current') {
      expect(v.argocd.message).toBe(ready.message);
    } else {
      // Failed and InProgress carry the condition's own words: the reason and what to do.
      expect(v.kstatus.message).toBe(ready.message);
      expect(v.argocd.message).toBe(`${ready.reason}: ${ready.message}`);
    }
    expect(o.status?.observedGeneration).toBe(o.metadata.generation);
  });
});

describe('leaving a state', () => {
  it('a key created before its Deployment turns Current and Healthy once the Deployment exists', async () => {
    await createDeployment(ns.name, 'later');
    const ak = await inState<ApiKey>(apiKeyPath(ns.name, 'early'), 'SecretReady');
    expect(await verdicts(ak)).toMatchObject({ kstatus: { status: 'Current' }, argocd: { status: 'Healthy' } });
  });

  it('a key being issued turns Current and Healthy once its Secret may be written', async () => {
    await adminClient().delete(paths.object('', 'v1', 'resourcequotas', quotaNs.name, 'no-secrets'));
    const ak = await inState<ApiKey>(apiKeyPath(quotaNs.name, 'issuing'), 'SecretReady', 60_000);
    expect(await verdicts(ak)).toMatchObject({ kstatus: { status: 'Current' }, argocd: { status: 'Healthy' } });
  });

  it('an expired key turns Current and Healthy once spec.expiresAt is moved into the future', async () => {
    await adminClient().mergePatch(apiKeyPath(ns.name, 'expired'), { spec: { expiresAt: '2999-01-01T00:00:00Z' } });
    const ak = await inState<ApiKey>(apiKeyPath(ns.name, 'expired'), 'SecretReady');
    expect(await verdicts(ak)).toMatchObject({ kstatus: { status: 'Current' }, argocd: { status: 'Healthy' } });
  });
});

describe('an object the controller has not looked at yet', () => {
  it('is InProgress and Progressing, whatever its conditions say, until observedGeneration catches up', async () => {
    await controller.stop();
    await adminClient().mergePatch(apiKeyPath(ns.name, 'ready'), { spec: { description: 'changed while the controller is down' } });
    const ak = (await getApiKey(ns.name, 'ready'))!;
    expect(ak.metadata.generation).toBeGreaterThan(ak.status!.observedGeneration!);
    expect(readyOf(ak)?.status).toBe('True');
    const v = await verdicts(ak);
    expect(v.kstatus).toEqual({ status: 'InProgress', message: `ApiKey generation is ${ak.metadata.generation}, but latest observed generation is ${ak.status!.observedGeneration}` });
    expect(v.argocd).toEqual({ status: 'Progressing', message: `Waiting for the controller to observe generation ${ak.metadata.generation}` });
  });

  it.each<[string, () => Promise<Obj>]>([
    ['Deployment', () => createDeployment(ns.name, 'new-dep')],
    ['ApiKey', () => createApiKey(ns.name, 'new-key', { deploymentRef: { name: 'airflow' } })],
    ['FederatedCredential', () => createFederatedCredential(ns.name, 'new-fc', { deploymentRef: { name: 'airflow' }, issuer: ISSUER, subject: 's' })],
  ])('a new %s is InProgress and Progressing, never Current before the controller wrote its status', async (kind, create) => {
    const created = await create();
    const path = { Deployment: deploymentPath, ApiKey: apiKeyPath, FederatedCredential: federatedCredentialPath }[kind]!(ns.name, created.metadata.name);
    const o = (await getOrUndefined<Obj>(path))!;
    expect(o.status).toEqual({ observedGeneration: 0 });
    const v = await verdicts(o);
    expect(v.kstatus).toEqual({ status: 'InProgress', message: `${kind} generation is 1, but latest observed generation is 0` });
    expect(v.argocd).toEqual({ status: 'Progressing', message: 'Waiting for the controller to observe generation 1' });
  });
});

describe('the Argo CD health check on objects no controller wrote', () => {
  const base = { apiVersion: 'apikeys.dev/v1', kind: 'ApiKey', metadata: { name: 'k', namespace: 'n', generation: 1 } };
  const cond = (type: string, status: string, reason = 'R', message = 'm') =>
    ({ type, status, reason, message, lastTransitionTime: '2026-01-01T00:00:00Z' });

  it.each<[string, object, string, string]>([
    ['no status yet', base, 'Progressing', 'Waiting for the apikey-operator controller to write a status'],
    ['being deleted', { ...base, metadata: { ...base.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } }, 'Progressing', 'Being deleted'],
    ['a status with no observedGeneration (lastUsedAt only)', { ...base, status: { lastUsedAt: '2026-01-01T00:00:00Z' } },
      'Progressing', 'Waiting for the controller to observe generation 1'],
    ['Ready=False from a controller that writes no Stalled', { ...base, status: { observedGeneration: 1, conditions: [cond('Ready', 'False', 'Expired', 'gone')] } },
      'Degraded', 'Expired: gone'],
    ['Ready=Unknown and nothing else', { ...base, status: { observedGeneration: 1, conditions: [cond('Ready', 'Unknown', 'Issuing', 'writing')] } },
      'Progressing', 'Issuing: writing'],
    ['no conditions at all', { ...base, status: { observedGeneration: 1, conditions: [] } }, 'Progressing',
      'Waiting for the apikey-operator controller to write a status'],
    ['a condition without a type, a reason or a message', { ...base, status: { observedGeneration: 1, conditions: [{ status: 'True' }, { type: 'Stalled', status: 'True' }] } },
      'Degraded', ''],
    ['a message with quotes, backslashes, newlines and non-ASCII text', { ...base, status: { observedGeneration: 1,
      conditions: [cond('Stalled', 'True', 'SecretConflict', 'Secret "a\\b"\nexists — ünïcode')] } }, 'Degraded', 'SecretConflict: Secret "a\\b"\nexists — ünïcode'],
  ])('%s', async (_what, obj, status, message) => {
    expect(await argocdHealth(obj)).toEqual({ status, message });
  });
});

describe('manifests/argocd/argocd-cm-health.yaml', () => {
  it('is what scripts/render-manifests.ts renders from health.lua now, with one key per kind', () => {
    const text = readFileSync(ARGOCD_CM_PATCH, 'utf8');
    expect(text, 'run node_modules/.bin/node scripts/render-manifests.ts').toBe(argocdHealthPatch());
    const cm = parse(text) as { metadata: { name: string }; data: Record<string, string> };
    expect(cm.metadata.name).toBe('argocd-cm');
    expect(Object.keys(cm.data)).toEqual(ARGOCD_KINDS.map((k) => `resource.customizations.health.apikeys.dev_${k}`));
    for (const lua of Object.values(cm.data)) expect(lua).toBe(readFileSync(ARGOCD_HEALTH_LUA, 'utf8'));
  });
});
