/**
 * Keyless CI on the real control plane: a local OIDC issuer over HTTPS (a
 * test CA, which the token server trusts through --federation-ca-file)
 * mints tokens shaped like GitHub Actions'; the controller and the token
 * server run with the chart's identities and --federation-issuers naming
 * that issuer only. A second issuer, over HTTPS from the same CA but not
 * allowed, counts every request it gets, to prove it is never contacted.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createRemoteJWKSet, decodeJwt, generateKeyPair, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment, FederatedCredential } from '../src/api/index.ts';
import { FEDERATED_REFUSAL } from '../src/token-server/grants/federated-exchange.ts';
import { createNamespace, kubectl, serviceAccountToken, type TestNamespace } from './support/cluster.ts';
import { makeIssuerCa, TestOidcIssuer, type IssuerCa } from './support/federation-issuer.ts';
import { bindTokenRequester, installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { recordSecret, startController, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, createApiKey, createDeployment, createFederatedCredential, type Credentials, credentialsOf, deploymentPath,
  federatedCredentialPath, getFederatedCredential, getSecret, readyOf, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { authz, form, introspect, postFrom, scrapeMetrics, type Answer } from './support/token-client.ts';
import { ROOT } from './support/paths.ts';
import { waitFor } from './support/wait.ts';

const exec = promisify(execFile);

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const MAIN_SUBJECT = 'repo:acme/airflow-dags:ref:refs/heads/main';
const MAIN_CLAIMS = "claims.repository == 'acme/airflow-dags' && claims.ref == 'refs/heads/main' && claims.workflow == 'deploy'";
const AUDIENCE = uniqueAudience('fed-airflow');

let ca: IssuerCa;
let github: TestOidcIssuer;
let stranger: TestOidcIssuer;
let ns: TestNamespace;
let elsewhere: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let airflow: Deployment;
let observer: Credentials & { audience: string };

/** Every test's client address is its own, so one test's refusals never throttle another's requests. */
let nextAddress = 10;
const newAddress = () => `127.0.0.${nextAddress++}`;

/** An RFC 8693 exchange; both bearer tokens are recorded, so the final log scan proves neither was ever logged. */
async function exchange(subjectToken: string, extra: Record<string, string> = {}, from = '127.0.0.1'): Promise<Answer> {
  recordSecret(subjectToken);
  const r = await postFrom(from, `${server.url}/oauth/token`, form({
    grant_type: EXCHANGE, subject_token: subjectToken, subject_token_type: JWT_TYPE, deployment: `${ns.name}/airflow`, ...extra,
  }));
  if (typeof r.body.access_token === 'string') recordSecret(r.body.access_token);
  return r;
}

/** A GitHub Actions token of acme/airflow-dags on main, for the token server's audience. */
const mainToken = (extra: Parameters<TestOidcIssuer['claims']>[0] = {}) => github.mint(github.claims({ aud: server.url, ...extra }));

const fcReady = (namespace: string, name: string, reason: string) =>
  waitFor(`FederatedCredential ${namespace}/${name} ${reason}`, async () => {
    const fc = await getFederatedCredential(namespace, name);
    return readyOf(fc)?.reason === reason ? fc : undefined;
  });

/** Waits until the token server's watch knows the credential: the first exchange it answers 200. */
const exchanged = (subjectToken: () => Promise<string>, extra: Record<string, string> = {}) =>
  waitFor('a federated token', async () => {
    const r = await exchange(await subjectToken(), extra, newAddress());
    return r.status === 200 ? r.body.access_token as string : undefined;
  }, 15_000, 100);

beforeAll(async () => {
  ca = makeIssuerCa();
  github = await TestOidcIssuer.start(ca);
  stranger = await TestOidcIssuer.start(ca);
  ns = await createNamespace('fed');
  elsewhere = await createNamespace('fedelse');
  identity = await installOperatorIdentity();
  const federation = ['--federation-issuers', github.url];
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, args: federation });
  server = await startTokenServer({
    kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, args: [...federation, '--federation-ca-file', ca.caFile],
  });
  airflow = await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  await createDeployment(elsewhere.name, 'airflow', { audiences: [uniqueAudience('fed-elsewhere')] });
  await createApiKey(ns.name, 'observer', { deploymentRef: { name: 'airflow' }, permissions: ['read'] });
  await waitForReady(ns.name, 'observer');
  observer = { ...credentialsOf((await getSecret(ns.name, 'observer'))!), audience: AUDIENCE };
  await createFederatedCredential(ns.name, 'ci', {
    deploymentRef: { name: 'airflow' }, issuer: github.url, subject: MAIN_SUBJECT, claims: MAIN_CLAIMS,
    permissions: ['deploy', 'read'], tokenTTL: '30m', description: 'GitHub Actions: deploy from main',
  });
}, 300_000);

afterAll(async () => {
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  for (const n of [ns, elsewhere]) await n?.cleanup();
  await Promise.all([github?.stop(), stranger?.stop()]);
  ca?.cleanup();
});

describe('a FederatedCredential', () => {
  it('is Ready, owned by its Deployment, with observedGeneration; kubectl shows its Deployment, Issuer, Subject and Ready', async () => {
    const fc = await fcReady(ns.name, 'ci', 'Ready');
    expect(readyOf(fc)?.status).toBe('True');
    expect(fc.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Deployment', name: 'airflow', uid: airflow.metadata.uid })]);
    expect(fc.status?.observedGeneration).toBe(fc.metadata.generation);
    const r = await kubectl(['get', 'federatedcredentials', '-n', ns.name]);
    expect(r.stdout.split('\n')[0]).toMatch(/^NAME\s+DEPLOYMENT\s+ISSUER\s+SUBJECT\s+READY\s+AGE$/);
    expect(r.stdout).toContain(MAIN_SUBJECT);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['neither subject nor claims, which would trust every token of its issuer', { subject: undefined }, /set subject, claims or both/],
    ['an issuer that is not https', { issuer: 'http://token.actions.githubusercontent.com' }, /issuer must be an https URL/],
    ['an issuer with a query', { issuer: 'https://issuer.example?x=1' }, /issuer must be an https URL/],
  ])('is refused by the apiserver with %s', async (_what, change, message) => {
    const spec = { deploymentRef: { name: 'airflow' }, issuer: github.url, subject: MAIN_SUBJECT, ...change };
    const r = await kubectl(['apply', '-n', ns.name, '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'apikeys.dev/v1', kind: 'FederatedCredential', metadata: { name: 'refused' }, spec }),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });

  it('keeps its deploymentRef: the apiserver refuses to point it at another Deployment', async () => {
    const r = await kubectl(['patch', 'federatedcredential', 'ci', '-n', ns.name, '--type=merge', '-p', '{"spec":{"deploymentRef":{"name":"other"}}}']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('deploymentRef is immutable');
  });

  it('is DeploymentNotFound when its Deployment does not exist', async () => {
    await createFederatedCredential(ns.name, 'orphan', { deploymentRef: { name: 'nowhere' }, issuer: github.url, subject: MAIN_SUBJECT });
    const fc = await fcReady(ns.name, 'orphan', 'DeploymentNotFound');
    expect(readyOf(fc)?.status).toBe('False');
  });

  it('with a bad CEL expression is InvalidExpression with the compiler\'s message, and nothing crashes', async () => {
    await createFederatedCredential(ns.name, 'bad-cel', { deploymentRef: { name: 'airflow' }, issuer: github.url, claims: "claims.repository == 'acme/airflow-dags' &&" });
    const fc = await fcReady(ns.name, 'bad-cel', 'InvalidExpression');
    expect(readyOf(fc)?.status).toBe('False');
    expect(readyOf(fc)?.message).toMatch(/^spec\.claims: Unexpected token/);
    // Both programs go on: the valid credential of the same Deployment still works.
    await exchanged(() => mainToken());
    expect(controller.isRunning()).toBe(true);
    expect(server.isRunning()).toBe(true);
    expect((await fetch(`http://127.0.0.1:${controller.healthPort}/healthz`)).status).toBe(200);
  });
});

describe('a matching GitHub Actions token', () => {
  it('gets a token of the Deployment with a real OAuth client (oauth4webapi), which verifies against the JWKS', async () => {
    await exchanged(() => mainToken());
    const issuer = new URL(server.url);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    const client: oauth.Client = { client_id: 'github-actions' };
    const response = await oauth.genericTokenEndpointRequest(as, client, oauth.None(), EXCHANGE, {
      subject_token: await mainToken(), subject_token_type: JWT_TYPE, requested_token_type: ACCESS_TOKEN, deployment: `${ns.name}/airflow`,
    }, { [oauth.allowInsecureRequests]: true });
    const tokens = await oauth.processGenericTokenEndpointResponse(as, client, response);
    expect(tokens).toMatchObject({ token_type: 'bearer', scope: 'deploy read', expires_in: 1800, issued_token_type: ACCESS_TOKEN });
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(as.jwks_uri!)), {
      issuer: server.url, audience: AUDIENCE, typ: 'at+jwt', requiredClaims: ['iat', 'exp', 'jti', 'sub', 'client_id'],
    });
    expect(payload).toMatchObject({
      sub: MAIN_SUBJECT, client_id: `federated:${ns.name}/ci`, federated_issuer: github.url, scope: 'deploy read',
      deployment: `${ns.name}/airflow`, deployment_uid: airflow.metadata.uid,
    });
    expect(payload.exp! - payload.iat!).toBe(1800);
    const request = new Request('https://airflow.example.test/dags', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const claims = await oauth.validateJwtAccessToken(as, request, AUDIENCE, { [oauth.allowInsecureRequests]: true });
    expect(claims).toMatchObject({ sub: MAIN_SUBJECT, client_id: `federated:${ns.name}/ci` });
  });

  it('is accepted as an id_token too, narrowed by scope, and is live at introspection and /authz', async () => {
    const r = await exchange(await mainToken(), { subject_token_type: ID_TOKEN_TYPE, scope: 'read' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.scope).toBe('read');
    const t = r.body.access_token as string;
    expect(await introspect(server, t, observer)).toMatchObject({
      active: true, sub: MAIN_SUBJECT, client_id: `federated:${ns.name}/ci`, scope: 'read', federated_issuer: github.url,
    });
    expect((await authz(server, t, 'read')).status).toBe(200);
    expect((await authz(server, t, 'deploy')).status).toBe(403);
  });

  it('records status.lastUsedAt on the FederatedCredential', async () => {
    await exchanged(() => mainToken());
    const fc = await waitFor('lastUsedAt', async () => {
      const f = await getFederatedCredential(ns.name, 'ci');
      return f?.status?.lastUsedAt ? f : undefined;
    }, 20_000, 200);
    expect(Date.now() - Date.parse(fc.status!.lastUsedAt!)).toBeLessThan(60_000);
    // The controller's status is untouched by it.
    expect(readyOf(fc)?.reason).toBe('Ready');
  });
});

describe('the one refusal', () => {
  const HS256_KEY = () => new TextEncoder().encode(github.publicKeyPem);
  it.each<[string, () => Promise<string>]>([
    ['another repository', () => github.mint(github.claims({ aud: server.url, repository: 'acme/other' }))],
    ['another branch', () => github.mint(github.claims({ aud: server.url, ref: 'refs/heads/feature' }))],
    ['the right subject with a claim the expression refuses', () => github.mint(github.claims({ aud: server.url, workflow: 'lint' }))],
    ['an expired token', () => github.mint(github.claims({ aud: server.url, issuedAgo: 600, expiresIn: -300 }))],
    ['a token older than the maximum age, though unexpired', () => github.mint(github.claims({ aud: server.url, issuedAgo: 7200, expiresIn: 600 }))],
    ['a wrong audience', () => github.mint(github.claims({ aud: 'https://someone-else.example.test' }))],
    ['an unknown kid, signed by a foreign key', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      return github.mint(github.claims({ aud: server.url }), { kid: 'foreign', key: privateKey });
    }],
    ['HS256 signed with the issuer\'s public key as the secret', () => github.mint(github.claims({ aud: server.url }), { alg: 'HS256', key: HS256_KEY() })],
    ['alg none', () => Promise.resolve(github.unsigned(github.claims({ aud: server.url })))],
  ])('is given to %s', async (_what, token) => {
    await exchanged(() => mainToken());
    const r = await exchange(await token(), {}, newAddress());
    expect(r.status, r.text).toBe(400);
    expect(r.body).toEqual({ error: 'invalid_grant', error_description: FEDERATED_REFUSAL });
  });

  it('is given to an issuer not in --federation-issuers, which is never fetched, and to a token claiming the allowed issuer with another\'s key', async () => {
    await createFederatedCredential(ns.name, 'stranger', { deploymentRef: { name: 'airflow' }, issuer: stranger.url, subject: MAIN_SUBJECT });
    const fc = await fcReady(ns.name, 'stranger', 'IssuerNotAllowed');
    expect(readyOf(fc)?.message).toContain(stranger.url);
    await sleep(500);
    const strangerToken = () => stranger.mint(stranger.claims({ aud: server.url }));
    // As an id_token it can only be an external token: the one refusal.
    const asIdToken = await exchange(await strangerToken(), { subject_token_type: ID_TOKEN_TYPE }, newAddress());
    expect(asIdToken.body).toEqual({ error: 'invalid_grant', error_description: FEDERATED_REFUSAL });
    // As a JWT of an issuer not listed it is taken for a Kubernetes token, which the apiserver does not accept.
    const asJwt = await exchange(await strangerToken(), { subject_token_type: JWT_TYPE }, newAddress());
    expect(asJwt.status).toBe(400);
    expect(asJwt.body.error).toBe('invalid_grant');
    // The stranger's key with the allowed issuer's name is checked with the allowed issuer's keys only.
    const forged = await stranger.mint(stranger.claims({ aud: server.url }), { iss: github.url });
    expect((await exchange(forged, {}, newAddress())).body).toEqual({ error: 'invalid_grant', error_description: FEDERATED_REFUSAL });
    expect(stranger.requestCount).toBe(0);
    expect(github.requests.get('/.well-known/openid-configuration')).toBeGreaterThanOrEqual(1);
  });

  it('is given to a credential of another namespace: it grants nothing for this namespace\'s Deployment', async () => {
    await createFederatedCredential(elsewhere.name, 'evil', {
      deploymentRef: { name: 'airflow' }, issuer: github.url, claims: "claims.repository == 'evil/repo'",
    });
    const evilToken = () => github.mint(github.claims({ aud: server.url, owner: 'evil', repository: 'evil/repo' }));
    // It works for its own namespace's Deployment ...
    await exchanged(evilToken, { deployment: `${elsewhere.name}/airflow` });
    // ... and for this one's, never.
    const r = await exchange(await evilToken(), {}, newAddress());
    expect(r.body).toEqual({ error: 'invalid_grant', error_description: FEDERATED_REFUSAL });
  });

  it('is counted in the metrics, and throttles an address that keeps failing while its valid tokens still pass', async () => {
    const from = newAddress();
    const wrong = async () => github.mint(github.claims({ aud: server.url, repository: 'acme/other' }));
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await exchange(await wrong(), {}, from)).status);
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    const throttled = await exchange(await wrong(), {}, from);
    expect(throttled.status).toBe(429);
    expect(throttled.body.error).toBe('slow_down');
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await exchange(await mainToken(), {}, from)).status).toBe(200);
    const metrics = await scrapeMetrics(server);
    expect(metrics).toMatch(/apikey_operator_token_failures_total\{reason="federated_token_refused"\} [1-9]/);
    expect(metrics).toMatch(/apikey_operator_federation_issuer_fetches_total\{document="discovery",result="ok"\} [1-9]/);
  });
});

describe('a federated token', () => {
  async function shortLived(name: string): Promise<{ dep: Deployment; token: string }> {
    const dep = await createDeployment(ns.name, name, { audiences: [uniqueAudience(name)] });
    await createFederatedCredential(ns.name, `${name}-ci`, { deploymentRef: { name }, issuer: github.url, subject: MAIN_SUBJECT });
    await fcReady(ns.name, `${name}-ci`, 'Ready');
    const token = await exchanged(() => mainToken(), { deployment: `${ns.name}/${name}` });
    expect((await authz(server, token, 'deploy')).status).toBe(200);
    expect((await introspect(server, token, observer)).active).toBe(true);
    return { dep, token };
  }

  async function stopsAtOnce(name: string, token: string): Promise<void> {
    const t0 = Date.now();
    await waitFor('inactive', async () => (await authz(server, token, 'deploy')).status === 401, 5000, 10);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await introspect(server, token, observer)).toEqual({ active: false });
    const r = await exchange(await mainToken(), { deployment: `${ns.name}/${name}` }, newAddress());
    expect(r.status).toBe(400);
  }

  it('goes inactive at once, and no new one is issued, when its FederatedCredential is deleted', async () => {
    const { token } = await shortLived('fc-deleted');
    await adminClient().delete(federatedCredentialPath(ns.name, 'fc-deleted-ci'));
    await stopsAtOnce('fc-deleted', token);
    expect(decodeJwt(token).client_id).toBe(`federated:${ns.name}/fc-deleted-ci`);
  });

  it('issued to a feature branch goes inactive at once when its FederatedCredential is narrowed to main', async () => {
    const name = 'narrowed';
    await createDeployment(ns.name, name, { audiences: [uniqueAudience(name)] });
    const feature = 'repo:acme/airflow-dags:ref:refs/heads/feature-x';
    await createFederatedCredential(ns.name, `${name}-ci`, {
      deploymentRef: { name }, issuer: github.url, subject: feature, permissions: ['deploy', 'read'],
    });
    await fcReady(ns.name, `${name}-ci`, 'Ready');
    const featureToken = () => mainToken({ sub: feature, ref: 'refs/heads/feature-x' });
    const token = await exchanged(featureToken, { deployment: `${ns.name}/${name}` });
    expect((await authz(server, token, 'deploy')).status).toBe(200);
    expect((await introspect(server, token, observer)).active).toBe(true);
    await adminClient().mergePatch(federatedCredentialPath(ns.name, `${name}-ci`), { spec: { subject: MAIN_SUBJECT } });
    await waitFor('the feature branch\'s token inactive', async () => (await authz(server, token, 'deploy')).status === 401, 5000, 10);
    expect(await introspect(server, token, observer)).toEqual({ active: false });
    expect((await exchange(await featureToken(), { deployment: `${ns.name}/${name}` }, newAddress())).status).toBe(400);
    // main, which the credential now trusts, gets a token, which is live.
    const mainOnly = await exchanged(() => mainToken(), { deployment: `${ns.name}/${name}` });
    expect((await authz(server, mainOnly, 'deploy')).status).toBe(200);
    // Narrowing the permissions ends it in turn; a change of the description does not.
    await adminClient().mergePatch(federatedCredentialPath(ns.name, `${name}-ci`), { spec: { description: 'main only' } });
    await sleep(500);
    expect((await authz(server, mainOnly, 'deploy')).status).toBe(200);
    await adminClient().mergePatch(federatedCredentialPath(ns.name, `${name}-ci`), { spec: { permissions: ['read'] } });
    await waitFor('the token inactive once the permissions are narrowed', async () => (await authz(server, mainOnly, 'read')).status === 401, 5000, 10);
    expect(await introspect(server, mainOnly, observer)).toEqual({ active: false });
  });

  it('goes inactive at once, and no new one is issued, when its Deployment is deleted; the credential goes with it', async () => {
    const { token } = await shortLived('dep-deleted');
    await adminClient().delete(deploymentPath(ns.name, 'dep-deleted'));
    await stopsAtOnce('dep-deleted', token);
    await waitFor('the credential garbage-collected', async () => (await getFederatedCredential(ns.name, 'dep-deleted-ci')) === undefined, 30_000, 200);
  });
});

describe('the Kubernetes-identity exchange, with federation on', () => {
  it('still turns a ServiceAccount token (a JWT of an issuer not in --federation-issuers) into a user token', async () => {
    const token = await serviceAccountToken(ns.name, 'deployer');
    await bindTokenRequester(identity, ns.name, ns.name, 'deployer', 'deployment-token-requester');
    const r = await exchange(token, {}, newAddress());
    expect(r.status, r.text).toBe(200);
    expect(decodeJwt(r.body.access_token as string)).toMatchObject({ sub: `system:serviceaccount:${ns.name}:deployer`, client_id: 'kubernetes' });
  });
});

describe('the GitHub Actions example', () => {
  it('runs its workflow step in a shell with curl and jq, and deploys through the example FederatedCredential with no stored secret', async () => {
    const example = parseYaml(readFileSync(join(ROOT, 'manifests/examples/federatedcredential-github.yaml'), 'utf8')) as FederatedCredential;
    // The example as it is, but for this test's issuer and Deployment.
    await createFederatedCredential(ns.name, example.metadata.name!, { ...example.spec, issuer: github.url, deploymentRef: { name: 'airflow' } });
    await fcReady(ns.name, example.metadata.name!, 'Ready');
    const workflow = parseYaml(readFileSync(join(ROOT, 'manifests/examples/github-actions/deploy-dags.yml'), 'utf8')) as {
      permissions: Record<string, string>; jobs: { deploy: { environment: string; steps: { name?: string; run?: string }[] } };
    };
    expect(workflow.permissions['id-token']).toBe('write');
    const step = workflow.jobs.deploy.steps.find((s) => s.name === 'Get a token of the Deployment')!;
    // What GitHub puts into a job of acme/airflow-dags, workflow deploy-dags.yml, on main, in its environment.
    github.runnerClaims = { sub: `repo:acme/airflow-dags:environment:${workflow.jobs.deploy.environment}`, workflowFile: 'deploy-dags.yml' };
    const githubEnv = join(ca.dir, 'github-env');
    await waitFor('the workflow step succeeds', async () => {
      const r = await exec('/bin/sh', ['-c', step.run!], {
        env: {
          PATH: process.env.PATH, CURL_CA_BUNDLE: ca.caFile, GITHUB_ENV: githubEnv,
          ACTIONS_ID_TOKEN_REQUEST_URL: github.runnerRequestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: github.runnerRequestToken,
          TOKEN_URL: `${server.url}/oauth/token`, AUDIENCE: server.url, DEPLOYMENT: `${ns.name}/airflow`,
        },
      }).then(() => true, () => false);
      return r;
    }, 15_000, 200);
    const line = readFileSync(githubEnv, 'utf8').trim().split('\n').at(-1)!;
    expect(line).toMatch(/^ACCESS_TOKEN=ey/);
    const token = line.slice('ACCESS_TOKEN='.length);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      sub: 'repo:acme/airflow-dags:environment:prod', client_id: `federated:${ns.name}/github-deploy-dags`, scope: 'deploy',
      federated_issuer: github.url, deployment: `${ns.name}/airflow`,
    });
    expect(claims.exp! - claims.iat!).toBe(15 * 60);
    expect((await authz(server, token, 'deploy')).status).toBe(200);
  });
});
