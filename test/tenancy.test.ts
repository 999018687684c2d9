/**
 * Multi-tenant security on the real control plane: what an editor of one
 * namespace can do to another team's Deployments and keys, tried as an
 * attacker would, against the controller running with the chart's identity.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsSecret, type AudienceClaim } from '../src/api/index.ts';
import { secretMatchesHash } from '../src/keys/format.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearerTokenKubeconfig } from './cluster/controlplane.ts';
import { adminKubeConfig, clusterState, createNamespace, kubectl, serviceAccountToken, type TestNamespace } from './support/cluster.ts';
import { bindTokenRequester, installOperatorIdentity, startOperator, type OperatorIdentity, type RunningOperator } from './support/operator.ts';
import { recordSecret, startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import { authz, form, introspect, issued, post, requestToken, type KeyCredentials } from './support/token-client.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, deploymentPath, eventsFor, getApiKey, getDeployment,
  getSecret, readyOf, secretPath, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { waitFor } from './support/wait.ts';

let victim: TestNamespace;
let evil: TestNamespace;
let operator: RunningOperator;
let identity: OperatorIdentity;
let server: TokenServerProcess;

beforeAll(async () => {
  victim = await createNamespace('victim');
  evil = await createNamespace('evil');
  operator = await startOperator();
  ({ identity, server } = operator);
});

afterAll(async () => {
  await operator?.stop();
  for (const n of [victim, evil]) await n?.cleanup();
});

/** creationTimestamp has a resolution of one second: a later claimant is created in a later second. */
const nextSecond = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 50));

/** A Ready key's credentials, read from its Secret. */
async function keyOf(ns: string, name: string, audience: string): Promise<KeyCredentials> {
  await waitForReady(ns, name);
  const c = credentialsOf((await getSecret(ns, name))!);
  return { keyId: c.keyId, secret: c.secret, audience };
}

const deploymentReady = (ns: string, name: string, reason: string) =>
  waitFor(`Deployment ${ns}/${name} ${reason}`, async () => {
    const d = await getDeployment(ns, name);
    return readyOf(d)?.reason === reason ? d : undefined;
  });

describe('a custom audience', () => {
  const aud = `https://airflow-prod-${Date.now()}.example.test`;

  it('belongs to the Deployment that claimed it first; a later claimant is AudienceConflict, naming only the audience', async () => {
    await createDeployment(victim.name, 'prod', { audiences: [aud] });
    await deploymentReady(victim.name, 'prod', 'Ready');
    await nextSecond();
    await createDeployment(evil.name, 'copycat', { audiences: ['https://evil.example.test', aud] });
    const d = await deploymentReady(evil.name, 'copycat', 'AudienceConflict');
    expect(readyOf(d)?.status).toBe('False');
    expect(readyOf(d)?.message).toContain(aud);
    expect(readyOf(d)?.message).not.toContain(victim.name);
    const events = await waitFor('AudienceConflict event', async () => {
      const e = (await eventsFor(evil.name, 'copycat')).filter((x) => x.reason === 'AudienceConflict');
      return e.length ? e : undefined;
    });
    expect(events[0]!.type).toBe('Warning');
    expect(events[0]!.note).not.toContain(victim.name);
    // The owner is untouched.
    expect(readyOf(await getDeployment(victim.name, 'prod'))?.reason).toBe('Ready');
  });

  it('gets no token at another team\'s audience: the token server refuses it to every Deployment but the owner', async () => {
    await createApiKey(victim.name, 'prod-ci', { deploymentRef: { name: 'prod' } });
    await createApiKey(evil.name, 'copycat-ci', { deploymentRef: { name: 'copycat' } });
    const owner = await keyOf(victim.name, 'prod-ci', aud);
    const thief = await keyOf(evil.name, 'copycat-ci', aud);
    const ownerToken = await issued(server, owner);
    // The thief's own audience works; the stolen one does not, and the refusal names no one.
    await issued(server, { ...thief, audience: 'https://evil.example.test' });
    const refused = await requestToken(server, thief);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');
    expect(refused.text).not.toContain(victim.name);
    // A proxy protecting the owner's audience or Deployment lets only the owner's tokens in.
    const thiefToken = (await requestToken(server, { ...thief, audience: 'https://evil.example.test' })).body.access_token as string;
    const byAudience = (t: string) => fetch(`${server.url}/authz?audience=${encodeURIComponent(aud)}`, { headers: { authorization: `Bearer ${t}` } });
    expect((await byAudience(ownerToken)).status).toBe(200);
    expect((await byAudience(thiefToken)).status).toBe(403);
    expect((await authz(server, ownerToken, 'deploy', `${victim.name}/prod`)).status).toBe(200);
    expect((await authz(server, thiefToken, 'deploy', `${victim.name}/prod`)).status).toBe(403);
    // A proxy that names no Deployment is told what is missing instead of letting any token in.
    const unnamed = await fetch(`${server.url}/authz`, { headers: { authorization: `Bearer ${ownerToken}` } });
    expect(unnamed.status).toBe(400);
    expect(await unnamed.text()).toContain('deployment=namespace/name');
  });

  it('passes to the next claimant when its owner is deleted', async () => {
    await adminClient().delete(deploymentPath(victim.name, 'prod'));
    await deploymentReady(evil.name, 'copycat', 'Ready');
    await issued(server, await keyOf(evil.name, 'copycat-ci', aud));
  });

  it('is shared when it is one of the operator\'s default audiences: listing it claims nothing', async () => {
    // startController's --audiences: the operator's shared default audience.
    await createDeployment(victim.name, 'uses-default', { audiences: ['https://api.example.test'] });
    await createDeployment(evil.name, 'uses-default-too', { audiences: ['https://api.example.test'] });
    await deploymentReady(victim.name, 'uses-default', 'Ready');
    await deploymentReady(evil.name, 'uses-default-too', 'Ready');
  });
});

describe('a custom audience, first come first served by the time of the claim', () => {
  const X = uniqueAudience('payments');
  const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
  const userToken = (subjectToken: string, deployment: string, audience: string) => post(`${server.url}/oauth/token`, form({
    grant_type: EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN, deployment, audience,
  }));
  const byAudience = (t: string, audience: string) =>
    fetch(`${server.url}/authz?audience=${encodeURIComponent(audience)}`, { headers: { authorization: `Bearer ${t}` } });

  it('cannot be taken by an older Deployment of another team, by client_credentials or token exchange; the holder is never disturbed', async () => {
    // Team A's Deployment is the older one, by far.
    await createDeployment(evil.name, 'old', { audiences: [uniqueAudience('evil-own')] });
    await createApiKey(evil.name, 'old-ci', { deploymentRef: { name: 'old' } });
    await nextSecond();
    // Team B claims X and uses it.
    await createDeployment(victim.name, 'payments', { audiences: [X] });
    await deploymentReady(victim.name, 'payments', 'Ready');
    await createApiKey(victim.name, 'payments-ci', { deploymentRef: { name: 'payments' } });
    const owner = await keyOf(victim.name, 'payments-ci', X);
    const ownerToken = await issued(server, owner);

    // Team A adds X to its older Deployment.
    const thiefKey = await keyOf(evil.name, 'old-ci', X);
    await adminClient().mergePatch(deploymentPath(evil.name, 'old'), { spec: { audiences: [...(await getDeployment(evil.name, 'old'))!.spec.audiences!, X] } });
    const d = await deploymentReady(evil.name, 'old', 'AudienceConflict');
    expect(readyOf(d)?.message).toContain(X);
    expect(readyOf(d)?.message).not.toContain(victim.name);
    // client_credentials: refused.
    const refused = await requestToken(server, thiefKey);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');
    // Token exchange, by a person of team A with every token right on its Deployment: refused.
    await bindTokenRequester(identity, evil.name, evil.name, 'team-a-deployer', 'deployment-token-requester', 'old');
    const person = await serviceAccountToken(evil.name, 'team-a-deployer');
    recordSecret(person);
    const exchanged = await userToken(person, `${evil.name}/old`, X);
    expect(exchanged.status, exchanged.text).toBe(400);
    expect(exchanged.body.error).toBe('invalid_target');
    // It still gets its own audience by exchange, and that token is no good at X.
    const own = await userToken(person, `${evil.name}/old`, (await getDeployment(evil.name, 'old'))!.spec.audiences![0]!);
    expect(own.status, own.text).toBe(200);
    recordSecret(own.body.access_token as string);
    expect((await byAudience(own.body.access_token as string, X)).status).toBe(403);
    // The holder is undisturbed: Ready, its live token still passes, and new tokens are issued.
    await nextSecond();
    expect(readyOf(await getDeployment(victim.name, 'payments'))?.reason).toBe('Ready');
    expect((await byAudience(ownerToken, X)).status).toBe(200);
    expect((await authz(server, ownerToken, 'deploy', `${victim.name}/payments`)).status).toBe(200);
    expect((await requestToken(server, owner)).status).toBe(200);
    // The claim is an object the apiserver holds, naming team B's Deployment.
    const claims = await adminClient().get<{ items: AudienceClaim[] }>(`/apis/apikeys.dev/v1/namespaces/${identity.namespace}/audienceclaims`);
    expect(claims.items.filter((c) => c.spec.audience === X).map((c) => c.spec.holder))
      .toEqual([{ namespace: victim.name, name: 'payments', uid: (await getDeployment(victim.name, 'payments'))!.metadata.uid }]);
  });

  it('ends the tokens its Deployment minted for it once the Deployment stops listing it, at /authz and introspection at once', async () => {
    const [Y, Z] = [uniqueAudience('dropped'), uniqueAudience('kept')];
    await createDeployment(victim.name, 'two', { audiences: [Y, Z] });
    await deploymentReady(victim.name, 'two', 'Ready');
    await createApiKey(victim.name, 'two-ci', { deploymentRef: { name: 'two' } });
    const key = await keyOf(victim.name, 'two-ci', Y);
    const forY = await issued(server, key);
    const forZ = await issued(server, { ...key, audience: Z });
    const observer = await keyOf(victim.name, 'two-ci', Z);
    expect((await byAudience(forY, Y)).status).toBe(200);
    expect((await introspect(server, forY, observer)).active).toBe(true);
    await adminClient().mergePatch(deploymentPath(victim.name, 'two'), { spec: { audiences: [Z] } });
    const t0 = Date.now();
    await waitFor('the token for the dropped audience inactive', async () => (await byAudience(forY, Y)).status === 401, 5000, 10);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await introspect(server, forY, observer)).toEqual({ active: false });
    expect((await authz(server, forY, 'deploy')).status).toBe(401);
    // The token for the audience it still holds lives on.
    expect((await byAudience(forZ, Z)).status).toBe(200);
    // The controller releases the claim, so the audience is free for whoever lists it next.
    await waitFor('the claim of the dropped audience released', async () => {
      const claims = await adminClient().get<{ items: AudienceClaim[] }>(`/apis/apikeys.dev/v1/namespaces/${identity.namespace}/audienceclaims`);
      return !claims.items.some((c) => c.spec.audience === Y);
    }, 10_000, 100);
  });

  it('passes, once released, to a Deployment that lists it next, and the earlier holder\'s tokens for it are dead', async () => {
    const W = uniqueAudience('handover');
    await createDeployment(victim.name, 'first', { audiences: [W] });
    await deploymentReady(victim.name, 'first', 'Ready');
    await createApiKey(victim.name, 'first-ci', { deploymentRef: { name: 'first' } });
    const firstToken = await issued(server, await keyOf(victim.name, 'first-ci', W));
    await createDeployment(evil.name, 'second', { audiences: [W] });
    await deploymentReady(evil.name, 'second', 'AudienceConflict');
    await adminClient().mergePatch(deploymentPath(victim.name, 'first'), { spec: { audiences: [uniqueAudience('first-other')] } });
    await deploymentReady(evil.name, 'second', 'Ready');
    expect((await byAudience(firstToken, W)).status).toBe(401);
    // And the first cannot take it back by listing it again: the second holds it now.
    await adminClient().mergePatch(deploymentPath(victim.name, 'first'), { spec: { audiences: [W] } });
    await deploymentReady(victim.name, 'first', 'AudienceConflict');
    expect(readyOf(await getDeployment(evil.name, 'second'))?.reason).toBe('Ready');
  });
});

describe('a Secret planted before a key\'s first pass', () => {
  it('cannot make the key adopt another key\'s id: it is replaced with new credentials, SecretModified', async () => {
    await createDeployment(victim.name, 'airflow');
    await createApiKey(victim.name, 'ci', { deploymentRef: { name: 'airflow' } });
    const victimKey = await waitForReady(victim.name, 'ci');
    const victimId = victimKey.status!.keyId!;

    // The attacker's key exists before its Deployment, so the controller leaves it alone for now.
    const mine = await createApiKey(evil.name, 'stolen', { deploymentRef: { name: 'later' } });
    await waitFor('stolen reports DeploymentNotFound', async () => readyOf(await getApiKey(evil.name, 'stolen'))?.reason === 'DeploymentNotFound');
    const planted = credentialsSecret(mine, { keyId: victimId, secret: 'aks_planted', tokenUrl: 'http://x', audience: 'x' });
    await adminClient().create(secretPath(evil.name), planted);
    await createDeployment(evil.name, 'later');

    const ak = await waitForReady(evil.name, 'stolen');
    expect(ak.status!.keyId).not.toBe(victimId);
    const c = credentialsOf((await getSecret(evil.name, 'stolen'))!);
    expect(c.keyId).toBe(ak.status!.keyId);
    expect(secretMatchesHash(c.secret, ak.status!.secretHash)).toBe(true);
    const events = await waitFor('SecretModified', async () => {
      const e = (await eventsFor(evil.name, 'stolen')).filter((x) => x.reason === 'SecretModified');
      return e.length ? e : undefined;
    });
    expect(events[0]!.type).toBe('Warning');
    // The victim's key keeps its id, its secret and Ready.
    const after = (await getApiKey(victim.name, 'ci'))!;
    expect(after.status!.keyId).toBe(victimId);
    expect(after.status!.secretHash).toBe(victimKey.status!.secretHash);
    expect(readyOf(after)?.status).toBe('True');
  });
});

describe('a key id claimed by two ApiKeys', () => {
  it('stays with the first claimant; the later one is KeyIdConflict until the first is gone', async () => {
    await createDeployment(victim.name, 'dup');
    await createApiKey(victim.name, 'first', { deploymentRef: { name: 'dup' } });
    const first = await waitForReady(victim.name, 'first');
    await nextSecond();
    await createDeployment(evil.name, 'dup');
    await createApiKey(evil.name, 'second', { deploymentRef: { name: 'dup' } });
    const second = await waitForReady(evil.name, 'second');
    // A status written by hand (or restored from a backup) claims the first key's id.
    await adminClient().mergePatch(`${apiKeyPath(evil.name, 'second')}/status`, {
      status: { keyId: first.status!.keyId, secretHash: second.status!.secretHash },
    });
    const conflicted = await waitFor('second KeyIdConflict', async () => {
      const k = await getApiKey(evil.name, 'second');
      return readyOf(k)?.reason === 'KeyIdConflict' ? k : undefined;
    });
    expect(readyOf(conflicted)?.status).toBe('False');
    expect(readyOf(conflicted)?.message).not.toContain(victim.name);
    expect(readyOf(await getApiKey(victim.name, 'first'))?.status).toBe('True');
    // The token server keeps serving the first claimant, and never the second.
    const firstCreds = await keyOf(victim.name, 'first', 'https://api.example.test');
    await issued(server, firstCreds);
    const secondCreds = credentialsOf((await getSecret(evil.name, 'second'))!);
    const r = await requestToken(server, { keyId: first.status!.keyId!, secret: secondCreds.secret, audience: 'https://api.example.test' });
    expect(r.status).toBe(401);

    await adminClient().delete(apiKeyPath(victim.name, 'first'));
    await waitFor('second Ready again', async () => readyOf(await getApiKey(evil.name, 'second'))?.status === 'True');
  });
});


describe('the token server in the chart\'s sidecar mode', () => {
  let sidecar: OperatorIdentity;
  let root: string;
  let writer: RunningProcess | undefined;
  let sidecarServer: (RunningProcess & { url: string }) | undefined;
  beforeAll(async () => {
    // A second release beside the first, both watching every namespace (which a real cluster never runs):
    // without its policies, whose status-writes policy would refuse the first release's controller.
    sidecar = await installOperatorIdentity({ tokenServerMode: 'sidecar', admissionPolicy: { enabled: false } });
    root = mkdtempSync(join(tmpdir(), 'sidecar-pod-'));
  });
  afterAll(async () => {
    await sidecarServer?.stop();
    await writer?.stop();
    await sidecar?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  const can = (token: string, ...args: string[]) => canI(root, token, ...args);

  it('runs with a token of its own ServiceAccount, which the controller requests for it, and may not read any Secret', async () => {
    // The in-memory volume the token-server container mounts as its ServiceAccount folder.
    const saDir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    writer = await startController({
      kubeconfig: sidecar.controllerKubeconfig, operatorNamespace: sidecar.namespace,
      args: ['--token-server-service-account', sidecar.tokenServerServiceAccount, '--token-server-token-dir', saDir, '--leader-elect=false'],
    });
    const token = await waitFor('the token server\'s token', () => {
      try { return Promise.resolve(readFileSync(join(saDir, 'token'), 'utf8') || undefined); } catch { return Promise.resolve(undefined); }
    });
    expect(readFileSync(join(saDir, 'namespace'), 'utf8')).toBe(sidecar.namespace);
    expect(readFileSync(join(saDir, 'ca.crt'), 'utf8')).toContain('BEGIN CERTIFICATE');
    // It is the token server's identity, not the controller's.
    const review = await adminClient().create<{ status: { user?: { username?: string } } }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token },
    });
    expect(review.status.user?.username).toBe(`system:serviceaccount:${sidecar.namespace}:${sidecar.tokenServerServiceAccount}`);
    for (const ns of [victim.name, sidecar.namespace]) {
      expect(await can(token, 'get', 'secrets', '-n', ns)).toBe('no');
      expect(await can(token, 'list', 'secrets', '-n', ns)).toBe('no');
      expect(await can(token, 'create', 'secrets', '-n', ns)).toBe('no');
    }
    expect(await can(token, 'get', 'secrets', '--all-namespaces')).toBe('no');
    expect(await can(token, 'create', 'serviceaccounts/token', '-n', sidecar.namespace)).toBe('no');
    expect(await can(token, 'list', 'apikeys.apikeys.dev', '--all-namespaces')).toBe('yes');
    // The controller may mint a token for that one ServiceAccount and no other.
    const controllerToken = await serviceAccountToken(sidecar.namespace, sidecar.controllerServiceAccount);
    expect(await can(controllerToken, 'create', `serviceaccounts/${sidecar.tokenServerServiceAccount}`, '--subresource', 'token', '-n', sidecar.namespace)).toBe('yes');
    expect(await can(controllerToken, 'create', `serviceaccounts/${sidecar.controllerServiceAccount}`, '--subresource', 'token', '-n', sidecar.namespace)).toBe('no');

    // The token server, started from those files alone as in its container, serves tokens.
    const server = new URL(clusterState().server);
    sidecarServer = await startTokenServer({
      kubeconfig: '', operatorNamespace: '', raw: true,
      env: { KUBECONFIG: undefined, APIKEY_OPERATOR_POD_ROOT: root, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
    });
    await createDeployment(victim.name, 'sidecar-dep', { audiences: [uniqueAudience('sidecar')] });
    await createApiKey(victim.name, 'sidecar-key', { deploymentRef: { name: 'sidecar-dep' } });
    const dep = (await getDeployment(victim.name, 'sidecar-dep'))!;
    await issued(sidecarServer, await keyOf(victim.name, 'sidecar-key', dep.spec.audiences![0]!));
  });
});

describe('the token server in the chart\'s own-Deployment mode', () => {
  it('may not read any Secret but its signing keys', async () => {
    const token = await serviceAccountToken(identity.namespace, identity.tokenServerServiceAccount);
    const dir = mkdtempSync(join(tmpdir(), 'can-i-'));
    try {
      const can = (...args: string[]) => canI(dir, token, ...args);
      expect(await can('get', 'secrets', '--all-namespaces')).toBe('no');
      expect(await can('get', 'secrets', '-n', identity.namespace)).toBe('no');
      expect(await can('get', 'secrets', '-n', victim.name)).toBe('no');
      expect(await can('create', 'serviceaccounts/token', '-n', identity.namespace)).toBe('no');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `kubectl auth can-i` answered for the bearer `token` alone. */
async function canI(dir: string, token: string, ...args: string[]): Promise<string> {
  const file = join(dir, 'kubeconfig-can-i');
  const cluster = { server: clusterState().server, 'certificate-authority-data': adminKubeConfig().getCurrentCluster()?.caData ?? '' };
  writeFileSync(file, bearerTokenKubeconfig({ cluster, token, user: 'can-i', namespace: 'default' }), { mode: 0o600 });
  return (await kubectl(['auth', 'can-i', ...args], { kubeconfig: file })).stdout.trim();
}
