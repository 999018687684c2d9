/**
 * The chart's admission policies on the real control plane. People are ServiceAccounts (TokenRequest
 * tokens) bound to the chart's roles in one namespace: an editor with the chart's edit and view roles
 * and no token right, a reader who may also get read tokens, a deployer who may get every token.
 * Creating or changing an ApiKey takes the right to get the tokens it grants; the token server may
 * write status.lastUsedAt of an ApiKey and nothing else, with its own credentials.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, KEY_ID_ANNOTATION, type ApiKey, type ApiKeyStatus, type FederatedCredential } from '../src/api/index.ts';
import { COMPROMISED_ANNOTATION, compromiseAnnotation } from '../src/api/compromise.ts';
import { KubeClient, KubeError } from '../src/kube/client.ts';
import { loadKubeConfig } from '../src/kube/config.ts';
import { createNamespace, kubectl, serviceAccountKubeconfig, uniqueName, type TestNamespace } from './support/cluster.ts';
import { bindTokenRequester, installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { runPlugin } from './support/plugin.ts';
import { startController, type RunningProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, createFederatedCredential, federatedCredentialPath, getApiKey,
  getFederatedCredential, readyOf, waitForReady,
} from './support/resources.ts';
import { waitFor } from './support/wait.ts';

type Person = 'editor' | 'reader' | 'deployer';
type Permission = 'deploy' | 'read';

const PEOPLE: Person[] = ['editor', 'reader', 'deployer'];

let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let tokenServer: KubeClient;
const people = {} as Record<Person, KubeClient>;
const kubeconfigs = {} as Record<Person, string>;
const dir = mkdtempSync(join(tmpdir(), 'admission-policies-'));

const userOf = (who: Person) => `system:serviceaccount:${ns.name}:${who}`;

/** The policy's refusal when `who` lacks the right that `permission` needs, for Deployment airflow. */
function missingRight(permission: Permission, who: Person, what = 'an ApiKey'): string {
  const right = permission === 'deploy' ? 'deployments/token' : 'deployments/readtoken or deployments/token';
  return `ValidatingAdmissionPolicy '${identity.release}-apikey-operator-apikey-permissions' with binding ` +
    `'${identity.release}-apikey-operator-apikey-permissions' denied request: ${what} with the ${permission} permission needs ` +
    `create on ${right} (apikeys.dev) of Deployment ${ns.name}/airflow, which ${userOf(who)} does not have`;
}

/** The token server policy's refusal. */
function tokenServerRefusal(reason: string): string {
  const policy = `${identity.release}-apikey-operator-token-server-writes`;
  return `ValidatingAdmissionPolicy '${policy}' with binding '${policy}' denied request: ${reason}`;
}

/** undefined when the write succeeds; the message when the apiserver refuses it (403); any other error is thrown. */
async function refusal(write: Promise<unknown>): Promise<string | undefined> {
  try {
    await write;
    return undefined;
  } catch (err) {
    if (err instanceof KubeError && err.status === 403) return err.message;
    throw err;
  }
}

function apiKey(name: string, permissions?: Permission[]): object {
  return { apiVersion: API_VERSION, kind: 'ApiKey', metadata: { name }, spec: { deploymentRef: { name: 'airflow' }, permissions } };
}

const createAs = (who: Person, name: string, permissions?: Permission[], query?: Record<string, string>) =>
  people[who].create<ApiKey>(apiKeyPath(ns.name), apiKey(name, permissions), query);

const patchAs = (who: Person, name: string, patch: object) => people[who].mergePatch<ApiKey>(apiKeyPath(ns.name, name), patch);

beforeAll(async () => {
  ns = await createNamespace('admission');
  identity = await installOperatorIdentity();
  await createDeployment(ns.name, 'airflow');
  for (const who of PEOPLE) {
    // Edit rights on the operator's resources, as the chart's roles give them to namespace editors.
    for (const role of ['view', 'edit']) {
      const r = await kubectl(['create', 'rolebinding', `${who}-${role}`, '-n', ns.name,
        `--clusterrole=${identity.release}-apikey-operator-${role}`, `--serviceaccount=${ns.name}:${who}`]);
      expect(r.code, r.stderr).toBe(0);
    }
    kubeconfigs[who] = await serviceAccountKubeconfig(ns.name, who, dir);
    people[who] = new KubeClient(loadKubeConfig({ kubeconfig: kubeconfigs[who] }));
  }
  await bindTokenRequester(identity, ns.name, ns.name, 'reader', 'deployment-read-token-requester');
  await bindTokenRequester(identity, ns.name, ns.name, 'deployer', 'deployment-token-requester');
  tokenServer = new KubeClient(loadKubeConfig({ kubeconfig: identity.tokenServerKubeconfig }));
  // The apiserver picks up new policies and bindings through its own watches: wait until a dry run
  // shows both the policy and every person's roles in force.
  await waitFor('the admission policy and the people\'s roles in force', async () =>
    (await refusal(createAs('editor', 'probe', ['read'], { dryRun: 'All' })))?.includes(missingRight('read', 'editor'))
    && await refusal(createAs('reader', 'probe', ['read'], { dryRun: 'All' })) === undefined
    && await refusal(createAs('deployer', 'probe', ['deploy'], { dryRun: 'All' })) === undefined, 30_000, 200);
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
});

afterAll(async () => {
  await controller?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('creating an ApiKey', () => {
  const CASES: [sentence: string, who: Person, permissions: Permission[] | undefined, missing: Permission | undefined][] = [
    ['an editor without a token right is refused a key without permissions, which the CRD makes a deploy key', 'editor', undefined, 'deploy'],
    ['an editor without a token right is refused a read key', 'editor', ['read'], 'read'],
    ['an editor without a token right is refused a deploy and read key, for deploy first', 'editor', ['deploy', 'read'], 'deploy'],
    ['a reader may create a read key', 'reader', ['read'], undefined],
    ['a reader is refused a deploy key', 'reader', ['deploy'], 'deploy'],
    ['a reader is refused a key without permissions (deploy)', 'reader', undefined, 'deploy'],
    ['a reader is refused a deploy and read key', 'reader', ['deploy', 'read'], 'deploy'],
    ['a deployer may create a key without permissions (deploy)', 'deployer', undefined, undefined],
    ['a deployer may create a read key', 'deployer', ['read'], undefined],
    ['a deployer may create a deploy and read key', 'deployer', ['deploy', 'read'], undefined],
  ];

  it.each(CASES)('%s', async (_sentence, who, permissions, missing) => {
    const name = uniqueName(who);
    const refused = await refusal(createAs(who, name, permissions));
    if (missing) {
      expect(refused).toContain(missingRight(missing, who));
      expect(await getApiKey(ns.name, name)).toBeUndefined();
    } else {
      expect(refused).toBeUndefined();
      expect((await getApiKey(ns.name, name))?.spec.permissions).toEqual(permissions ?? ['deploy']);
    }
  });

  it('is refused by kubectl apikey create with the policy\'s reason, not advice to check RBAC', async () => {
    const r = await runPlugin(['create', 'plugin-key', '--deployment', 'airflow', '--permissions', 'read'],
      { kubeconfig: kubeconfigs.editor, namespace: ns.name });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`error: forbidden: cannot create apikeys.apikeys.dev "plugin-key" in namespace "${ns.name}": ` +
      `an ApiKey with the read permission needs create on deployments/readtoken or deployments/token (apikeys.dev) of Deployment ${ns.name}/airflow`);
    expect(r.stderr).not.toContain('auth can-i');
  });

  it('lets a deployer\'s key become Ready: the controller\'s own write to it (its ownerReference) changes no spec', async () => {
    await createAs('deployer', 'deployer-ci');
    const ready = await waitForReady(ns.name, 'deployer-ci');
    expect(ready.metadata.ownerReferences?.map((r) => `${r.kind}/${r.name}`)).toEqual(['Deployment/airflow']);
  });
});

describe('changing an ApiKey', () => {
  beforeAll(async () => {
    await createAs('deployer', 'deploy-key', ['deploy', 'read']);
    await createAs('reader', 'read-key', ['read']);
    await waitForReady(ns.name, 'deploy-key');
  });

  it('refuses a reader who would make a read key a deploy key', async () => {
    expect(await refusal(patchAs('reader', 'read-key', { spec: { permissions: ['read', 'deploy'] } }))).toContain(missingRight('deploy', 'reader'));
    expect((await getApiKey(ns.name, 'read-key'))?.spec.permissions).toEqual(['read']);
  });

  it('refuses a reader any change to the spec of a deploy key, even its description: every spec field shapes what the key grants', async () => {
    for (const spec of [{ description: 'mine now' }, { tokenTTL: '1h' }, { expiresAt: '2099-01-01T00:00:00Z' }, { secretTemplate: { labels: { copy: 'me' } } }]) {
      expect(await refusal(patchAs('reader', 'deploy-key', { spec })), JSON.stringify(spec)).toContain(missingRight('deploy', 'reader'));
    }
  });

  it('lets a reader change the spec of a read key', async () => {
    expect(await refusal(patchAs('reader', 'read-key', { spec: { description: 'dashboards' } }))).toBeUndefined();
  });

  it('lets a reader take deploy away from a key, leaving it what the reader may grant', async () => {
    await createAs('deployer', 'shrinking', ['deploy', 'read']);
    expect(await refusal(patchAs('reader', 'shrinking', { spec: { permissions: ['read'] } }))).toBeUndefined();
  });

  it('lets an editor label or rotate a deploy key: the new secret goes into the same Secret, to the same readers', async () => {
    const before = (await getApiKey(ns.name, 'deploy-key'))!;
    expect(await refusal(patchAs('editor', 'deploy-key', { metadata: { labels: { team: 'data' } } }))).toBeUndefined();
    expect(await refusal(patchAs('editor', 'deploy-key', { metadata: { annotations: { 'apikeys.dev/rotate': 'by-editor' } } }))).toBeUndefined();
    const rotated = await waitFor('the rotation', async () => {
      const ak = await getApiKey(ns.name, 'deploy-key');
      return ak?.status?.rotateAnnotation === 'by-editor' ? ak : undefined;
    });
    expect(rotated.status?.secretHash).not.toBe(before.status?.secretHash);
    expect(rotated.status?.secretName).toBe(before.status?.secretName);
  });
});

describe('a FederatedCredential', () => {
  const ISSUER = 'https://token.actions.githubusercontent.com';
  const A_FEDERATED_CREDENTIAL = 'a FederatedCredential';
  const credential = (name: string, permissions?: Permission[]) => ({
    apiVersion: API_VERSION, kind: 'FederatedCredential', metadata: { name },
    spec: { deploymentRef: { name: 'airflow' }, issuer: ISSUER, subject: 'repo:acme/airflow-dags:ref:refs/heads/main', permissions },
  });
  const createFcAs = (who: Person, name: string, permissions?: Permission[]) =>
    people[who].create<FederatedCredential>(federatedCredentialPath(ns.name), credential(name, permissions));

  it.each<[string, Person, Permission[] | undefined, Permission | undefined]>([
    ['an editor without a token right is refused one without permissions (deploy)', 'editor', undefined, 'deploy'],
    ['an editor without a token right is refused a read one', 'editor', ['read'], 'read'],
    ['a reader may create a read one', 'reader', ['read'], undefined],
    ['a reader is refused a deploy one', 'reader', ['deploy'], 'deploy'],
    ['a deployer may create a deploy and read one', 'deployer', ['deploy', 'read'], undefined],
  ])('takes the right to get the tokens it grants, as a key does: %s', async (_sentence, who, permissions, missing) => {
    const name = uniqueName(`fc-${who}`);
    const refused = await refusal(createFcAs(who, name, permissions));
    if (missing) {
      expect(refused).toContain(missingRight(missing, who, A_FEDERATED_CREDENTIAL));
      expect(await getFederatedCredential(ns.name, name)).toBeUndefined();
    } else {
      expect(refused).toBeUndefined();
    }
  });

  it('refuses a reader who would let another repository in through a deploy credential', async () => {
    await createFcAs('deployer', 'deploy-fc', ['deploy']);
    const patch = { spec: { subject: 'repo:reader/own-repo:ref:refs/heads/main' } };
    expect(await refusal(people.reader.mergePatch(federatedCredentialPath(ns.name, 'deploy-fc'), patch)))
      .toContain(missingRight('deploy', 'reader', A_FEDERATED_CREDENTIAL));
  });

  it('lets the token server set status.lastUsedAt and nothing else of it', async () => {
    await createFederatedCredential(ns.name, 'used-fc', { deploymentRef: { name: 'airflow' }, issuer: ISSUER, subject: 'repo:a/b:ref:refs/heads/main' });
    // The controller (without --federation-issuers) has written its status: IssuerNotAllowed.
    await waitFor('its status', async () => readyOf(await getFederatedCredential(ns.name, 'used-fc'))?.reason === 'IssuerNotAllowed');
    const path = `${federatedCredentialPath(ns.name, 'used-fc')}/status`;
    const at = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    expect(await refusal(tokenServer.mergePatch(path, { status: { lastUsedAt: at } }))).toBeUndefined();
    expect((await getFederatedCredential(ns.name, 'used-fc'))?.status?.lastUsedAt).toBe(at);
    const conditions = [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'trust me', lastTransitionTime: at }];
    expect(await refusal(tokenServer.mergePatch(path, { status: { conditions } }))).toContain(
      tokenServerRefusal('the token server may change only status.lastUsedAt of a FederatedCredential, not status.conditions'));
    expect(readyOf(await getFederatedCredential(ns.name, 'used-fc'))?.reason).toBe('IssuerNotAllowed');
  });
});

describe('the token server', () => {
  const statusPatch = (status: Record<string, unknown>) =>
    tokenServer.mergePatch<ApiKey>(`${apiKeyPath(ns.name, 'used')}/status`, { status });
  let stored: ApiKeyStatus;

  beforeAll(async () => {
    await createApiKey(ns.name, 'used', { deploymentRef: { name: 'airflow' } });
    stored = (await waitForReady(ns.name, 'used')).status!;
  });

  it('may set status.lastUsedAt, as it records a key\'s use', async () => {
    const at = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    expect(await refusal(statusPatch({ lastUsedAt: at }))).toBeUndefined();
    const ak = (await getApiKey(ns.name, 'used'))!;
    expect(ak.status?.lastUsedAt).toBe(at);
    expect({ ...ak.status, lastUsedAt: undefined }).toEqual({ ...stored, lastUsedAt: undefined });
  });

  it.each([
    ['replace the secret hash', { secretHash: 'sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, 'secretHash'],
    ['mark the key not Ready', {
      conditions: [{ type: 'Ready', status: 'False', reason: 'Revoked', message: 'by the token server', lastTransitionTime: '2026-01-01T00:00:00Z' }],
    }, 'conditions'],
    ['remove the key id', { keyId: null }, 'keyId'],
    ['extend the previous secret\'s grace period, along with lastUsedAt', {
      previousSecretValidUntil: '2099-01-01T00:00:00Z', lastUsedAt: '2026-01-01T00:00:00Z',
    }, 'previousSecretValidUntil'],
  ])('may not %s', async (_what, status, field) => {
    expect(await refusal(statusPatch(status))).toContain(
      tokenServerRefusal(`the token server may change only status.lastUsedAt of an ApiKey, not status.${field}`));
    const ak = (await getApiKey(ns.name, 'used'))!;
    expect({ ...ak.status, lastUsedAt: undefined }).toEqual({ ...stored, lastUsedAt: undefined });
  });

  it('may mark an ApiKey compromised with its own credentials, and change nothing else with that mark', async () => {
    const path = apiKeyPath(ns.name, 'marked');
    await createApiKey(ns.name, 'marked', { deploymentRef: { name: 'airflow' } }, { team: 'data' });
    const before = await waitForReady(ns.name, 'marked');
    const mark = compromiseAnnotation({ secretHash: before.status!.secretHash!, reportedAt: '2026-01-01T00:00:00Z', source: 'secret-scanning' });
    const onlyStatus = tokenServerRefusal(
      'the token server may only update the status of an ApiKey (status.lastUsedAt) and set its annotation apikeys.dev/compromised, nothing else of it');
    // Beside the mark: a label, another annotation changed or removed, the spec, the owner reference.
    for (const metadata of [
      { labels: { owned: 'yes' }, annotations: { [COMPROMISED_ANNOTATION]: mark } },
      { annotations: { [COMPROMISED_ANNOTATION]: mark, team: 'other' } },
      { annotations: { [COMPROMISED_ANNOTATION]: mark, team: null } },
      { annotations: { [COMPROMISED_ANNOTATION]: mark }, ownerReferences: null },
    ]) {
      expect(await refusal(tokenServer.mergePatch(path, { metadata })), JSON.stringify(metadata)).toContain(onlyStatus);
    }
    expect(await refusal(tokenServer.mergePatch(path, { metadata: { annotations: { [COMPROMISED_ANNOTATION]: mark } }, spec: { tokenTTL: '1h' } })))
      .toMatch(/ValidatingAdmissionPolicy '.*-(token-server-writes|apikey-permissions)' .* denied request/);
    // The mark alone, as the secret-scanning endpoint writes it (src/token-server/secret-scanning/marker.ts).
    expect(await refusal(tokenServer.mergePatch(path, { metadata: { uid: before.metadata.uid, annotations: { [COMPROMISED_ANNOTATION]: mark } } })))
      .toBeUndefined();
    // Never removed by the token server: only the key's owners rotate it away.
    expect(await refusal(tokenServer.mergePatch(path, { metadata: { annotations: { [COMPROMISED_ANNOTATION]: null } } }))).toContain(onlyStatus);
    const after = (await getApiKey(ns.name, 'marked'))!;
    // Besides the controller's own key-id annotation (written when the key got its id), only the mark was added.
    const annotations = Object.fromEntries(Object.entries(after.metadata.annotations ?? {}).filter(([k]) => k !== KEY_ID_ANNOTATION));
    expect(annotations).toEqual({ team: 'data', [COMPROMISED_ANNOTATION]: mark });
    expect(after.metadata.labels?.owned).toBeUndefined();
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.ownerReferences).toEqual(before.metadata.ownerReferences);
  });

  it('may write nothing of an ApiKey itself, even when RBAC would let it', async () => {
    // A grant beyond the chart's: the policy stands behind RBAC, not instead of it.
    const role = `${identity.release}-too-much`;
    for (const args of [
      ['create', 'role', role, '-n', ns.name, '--verb=patch,delete', '--resource=apikeys.apikeys.dev'],
      ['create', 'rolebinding', role, '-n', ns.name, `--role=${role}`, `--serviceaccount=${identity.namespace}:${identity.tokenServerServiceAccount}`],
    ]) {
      const r = await kubectl(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const onlyStatus = tokenServerRefusal(
      'the token server may only update the status of an ApiKey (status.lastUsedAt) and set its annotation apikeys.dev/compromised, nothing else of it');
    const path = apiKeyPath(ns.name, 'used');
    // RBAC's refusal, until the apiserver sees the binding; then the policy's.
    await waitFor('the policy refusing what RBAC allows', async () =>
      (await refusal(tokenServer.mergePatch(path, { metadata: { labels: { owned: 'yes' } } })))?.includes(onlyStatus), 10_000, 100);
    // A spec change is refused by both policies (the token server has no token rights); either may answer.
    expect(await refusal(tokenServer.mergePatch(path, { spec: { permissions: ['deploy', 'read'] } })))
      .toMatch(/ValidatingAdmissionPolicy '.*-(token-server-writes|apikey-permissions)' .* denied request/);
    expect(await refusal(tokenServer.delete(path))).toContain(onlyStatus);
    const ak = (await adminClient().get<ApiKey>(path));
    expect(ak.metadata.labels?.owned).toBeUndefined();
    expect(ak.spec.permissions).toEqual(['deploy']);
  });
});

describe('a status', () => {
  let wildcard: KubeClient;
  const statusRefusal = (kind: string, name: string, who: string) =>
    `ValidatingAdmissionPolicy '${identity.release}-apikey-operator-status-writes' with binding ` +
    `'${identity.release}-apikey-operator-status-writes' denied request: only the apikey-operator (its controller and token server) ` +
    `may write the status of ${kind} ${ns.name}/${name}, not ${who}`;

  beforeAll(async () => {
    // A tenant given every verb on every resource of the group in its namespace (a wildcard role, as
    // some clusters hand out), status subresources included.
    for (const args of [
      ['create', 'role', 'everything', '-n', ns.name, '--verb=*', '--resource=apikeys.apikeys.dev,apikeys.apikeys.dev/status,'
        + 'deployments.apikeys.dev,deployments.apikeys.dev/status,federatedcredentials.apikeys.dev,federatedcredentials.apikeys.dev/status'],
      ['create', 'serviceaccount', 'wildcard', '-n', ns.name],
      ['create', 'rolebinding', 'wildcard-everything', '-n', ns.name, '--role=everything', `--serviceaccount=${ns.name}:wildcard`],
    ]) {
      const r = await kubectl(args);
      expect(r.code, r.stderr).toBe(0);
    }
    wildcard = new KubeClient(loadKubeConfig({ kubeconfig: await serviceAccountKubeconfig(ns.name, 'wildcard', dir) }));
    await createApiKey(ns.name, 'target', { deploymentRef: { name: 'airflow' } });
    await waitForReady(ns.name, 'target');
  });

  it('of an ApiKey is refused to anyone but the operator: a wildcard role cannot plant a secret with a grace period of its own', async () => {
    const before = (await getApiKey(ns.name, 'target'))!.status!;
    const forged = { previousSecretHash: 'sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', previousSecretValidUntil: '2099-01-01T00:00:00Z' };
    const who = `system:serviceaccount:${ns.name}:wildcard`;
    // RBAC allows it (the role is in force once the apiserver answers with the policy rather than RBAC).
    await waitFor('the policy answering, not RBAC', async () =>
      (await refusal(wildcard.mergePatch(`${apiKeyPath(ns.name, 'target')}/status`, { status: forged })))?.includes(statusRefusal('ApiKey', 'target', who)),
    10_000, 100);
    expect(await refusal(wildcard.replace(`${apiKeyPath(ns.name, 'target')}/status`,
      { ...(await getApiKey(ns.name, 'target'))!, status: { ...before, ...forged } }))).toContain(statusRefusal('ApiKey', 'target', who));
    expect((await getApiKey(ns.name, 'target'))!.status).toEqual(before);
    // Everything else the role allows still works: the policy is about the status alone.
    expect(await refusal(wildcard.mergePatch(apiKeyPath(ns.name, 'target'), { metadata: { labels: { touched: 'yes' } } }))).toBeUndefined();
  });

  it('of a Deployment or a FederatedCredential is refused likewise: a wildcard role cannot mark one Ready', async () => {
    await createFederatedCredential(ns.name, 'status-ci', { deploymentRef: { name: 'airflow' }, issuer: 'https://ci.example.test', subject: 'x' });
    const who = `system:serviceaccount:${ns.name}:wildcard`;
    const ready = { conditions: [{ type: 'Ready', status: 'True', reason: 'Forged', message: 'by hand', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    expect(await refusal(wildcard.mergePatch(`/apis/apikeys.dev/v1/namespaces/${ns.name}/deployments/airflow/status`, { status: ready })))
      .toContain(statusRefusal('Deployment', 'airflow', who));
    expect(await refusal(wildcard.mergePatch(`${federatedCredentialPath(ns.name, 'status-ci')}/status`, { status: ready })))
      .toContain(statusRefusal('FederatedCredential', 'status-ci', who));
    expect(readyOf(await getFederatedCredential(ns.name, 'status-ci'))?.reason).not.toBe('Forged');
  });

  it('is still written by the operator\'s controller, and lastUsedAt by its token server', async () => {
    // The controller's status writes go through: a new key becomes Ready (waitForReady above), and so does this one.
    await createApiKey(ns.name, 'after-policy', { deploymentRef: { name: 'airflow' } });
    expect(readyOf(await waitForReady(ns.name, 'after-policy'))?.status).toBe('True');
    const at = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    expect(await refusal(tokenServer.mergePatch(`${apiKeyPath(ns.name, 'after-policy')}/status`, { status: { lastUsedAt: at } }))).toBeUndefined();
  });
});
