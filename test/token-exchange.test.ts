/**
 * Issue 6, server side: RFC 8693 token exchange of a Kubernetes identity for
 * a temporary Deployment token, on the real control plane. The real
 * controller and the real token server run as the chart's ServiceAccounts;
 * the people are ServiceAccounts with TokenRequest tokens, bound to the
 * chart's own requester ClusterRoles; every subject token goes through a real
 * TokenReview and every decision through a real SubjectAccessReview.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { createRemoteJWKSet, decodeJwt, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment } from '../src/api/index.ts';
import { adminKubeConfig, createNamespace, kubectl, serviceAccountToken, type TestNamespace } from './support/cluster.ts';
import { bindTokenRequester, installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { MAIN, startController, startTokenServer, waitForHttp, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, createApiKey, createDeployment, type Credentials, credentialsOf, deploymentPath, getDeployment, getSecret, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { authz, basic, exchangeReviews, form, introspect, postFrom, type Answer } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const exec = promisify(execFile);
const AUDIENCE = uniqueAudience('airflow');
const SECOND = uniqueAudience('airflow-api');
const SHORT_LIVED = uniqueAudience('short-lived');
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** --user-token-ttl of the token server under test (the default is 1h). */
const USER_TTL = 30 * 60;

let ns: TestNamespace;
let elsewhere: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let airflow: Deployment;
let observer: Credentials;
/** Subject tokens (TokenRequest) of: a deployer, a reader, an account with no binding at all. */
const subject = { deployer: '', reader: '', stranger: '' };

const core = () => adminKubeConfig().makeApiClient(CoreV1Api);

/**
 * A token exchange from a client address: the server throttles addresses whose exchanges fail,
 * so the tests that fail on purpose each come from an address of their own.
 */
function exchange(token: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}, from = '127.0.0.1',
  url = server.url): Promise<Answer> {
  return postFrom(from, `${url}/oauth/token`, form({
    grant_type: EXCHANGE, subject_token: token, subject_token_type: ACCESS_TOKEN, deployment: `${ns.name}/airflow`, ...extra,
  }, headers));
}

/** A token of the apiserver's form with a signature nobody made: each one a TokenReview the apiserver must refuse. */
function forgedToken(): string {
  const [header, payload] = subject.deployer.split('.');
  return `${header}.${payload}.${randomBytes(256).toString('base64url')}`;
}

async function userToken(token: string, extra: Record<string, string> = {}): Promise<string> {
  const r = await exchange(token, extra);
  expect(r.status, r.text).toBe(200);
  return r.body.access_token as string;
}

beforeAll(async () => {
  ns = await createNamespace('tx');
  elsewhere = await createNamespace('txelse');
  // The chart's ServiceAccounts and RBAC, its ClusterRoles for people included.
  identity = await installOperatorIdentity();
  server = await startTokenServer({
    kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false, args: ['--user-token-ttl', '30m'],
  });
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  await waitForHttp(`${server.url}/readyz`, server);
  airflow = await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE, SECOND], maxTokenTTL: '24h' });
  await createDeployment(elsewhere.name, 'airflow', { audiences: [uniqueAudience('elsewhere')] });
  await createApiKey(ns.name, 'observer', { deploymentRef: { name: 'airflow' }, permissions: ['read'] });
  await waitForReady(ns.name, 'observer');
  observer = credentialsOf((await getSecret(ns.name, 'observer'))!);

  subject.deployer = await serviceAccountToken(ns.name, 'deployer');
  subject.reader = await serviceAccountToken(ns.name, 'reader');
  subject.stranger = await serviceAccountToken(ns.name, 'stranger');
  await bindTokenRequester(identity, ns.name, ns.name, 'deployer', 'deployment-token-requester');
  await bindTokenRequester(identity, ns.name, ns.name, 'reader', 'deployment-read-token-requester');
});

afterAll(async () => {
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  for (const n of [ns, elsewhere]) await n?.cleanup();
});

describe('a ServiceAccount bound to the chart\'s deployment-token-requester', () => {
  it('gets a token of its Deployment: sub its user name, the Deployment, every permission, the audience, typ at+jwt, --user-token-ttl', async () => {
    const r = await exchange(subject.deployer);
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toMatchObject({ token_type: 'Bearer', issued_token_type: ACCESS_TOKEN, expires_in: USER_TTL, scope: 'deploy read' });
    const meta = await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json() as
      { issuer: string; jwks_uri: string; grant_types_supported: string[] };
    expect(meta.grant_types_supported).toContain(EXCHANGE);
    const { payload, protectedHeader } = await jwtVerify(r.body.access_token as string, createRemoteJWKSet(new URL(meta.jwks_uri)), {
      issuer: meta.issuer, audience: AUDIENCE, typ: 'at+jwt', requiredClaims: ['iat', 'exp', 'jti', 'sub', 'client_id'],
    });
    expect(protectedHeader.kid).toEqual(expect.any(String));
    const now = Math.floor(Date.now() / 1000);
    expect(Math.abs(payload.iat! - now)).toBeLessThanOrEqual(2);
    expect(payload.exp! - payload.iat!).toBe(USER_TTL);
    expect(payload).toMatchObject({
      sub: `system:serviceaccount:${ns.name}:deployer`, client_id: 'kubernetes', aud: AUDIENCE, scope: 'deploy read',
      deployment: `${ns.name}/airflow`, deployment_uid: airflow.metadata.uid,
    });
    // No key id, and no actor: the user acts as themselves.
    expect(payload).not.toHaveProperty('act');
    expect(payload).not.toHaveProperty('may_act');
    expect(payload).not.toHaveProperty('cred_fp');
  });

  it('gets one with a real OAuth client (oauth4webapi: discovery, token exchange, RFC 9068 validation as a resource server)', async () => {
    const issuer = new URL(server.url);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    const client: oauth.Client = { client_id: 'kubectl' };
    const response = await oauth.genericTokenEndpointRequest(as, client, oauth.None(), EXCHANGE, {
      subject_token: subject.deployer, subject_token_type: JWT_TYPE, requested_token_type: ACCESS_TOKEN,
      deployment: `${ns.name}/airflow`, resource: SECOND, scope: 'read',
    }, { [oauth.allowInsecureRequests]: true });
    const tokens = await oauth.processGenericTokenEndpointResponse(as, client, response);
    expect(tokens).toMatchObject({ token_type: 'bearer', scope: 'read', issued_token_type: ACCESS_TOKEN });
    const request = new Request('https://airflow-api.example.test/dags', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const claims = await oauth.validateJwtAccessToken(as, request, SECOND, { [oauth.allowInsecureRequests]: true });
    expect(claims).toMatchObject({ sub: `system:serviceaccount:${ns.name}:deployer`, scope: 'read', client_id: 'kubernetes' });
  });

  it('gets one with curl, as the README shows, piped to jq -r .access_token', async () => {
    const script = 'curl -s -X POST "$URL/oauth/token" -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange ' +
      '--data-urlencode "subject_token=$K8S_TOKEN" -d subject_token_type=urn:ietf:params:oauth:token-type:access_token ' +
      '-d "deployment=$NS/airflow" -d scope=deploy | jq -r .access_token';
    const { stdout } = await exec('sh', ['-c', script], {
      env: { PATH: process.env.PATH, URL: server.url, K8S_TOKEN: subject.deployer, NS: ns.name },
    });
    expect(decodeJwt(stdout.trim())).toMatchObject({ scope: 'deploy', deployment: `${ns.name}/airflow` });
  });

  it('gets access_denied (403) for a Deployment of a namespace where it has no binding', async () => {
    const r = await exchange(subject.deployer, { deployment: `${elsewhere.name}/airflow` });
    expect(r.status).toBe(403);
    expect(r.body.error).toBe('access_denied');
    expect(r.body.error_description).toMatch(/deployments\/token/);
  });

  it('gets invalid_target for a Deployment it may ask for that does not exist, and for an audience the Deployment does not list', async () => {
    const asks: Record<string, string>[] = [{ deployment: `${ns.name}/no-such-deployment` }, { audience: 'https://elsewhere.example.test' }];
    for (const extra of asks) {
      const r = await exchange(subject.deployer, extra);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_target');
    }
  });

  it('asks the apiserver once for a burst of the same exchange (the reviews are cached briefly)', async () => {
    const fresh = await serviceAccountToken(ns.name, 'deployer');
    const before = [await exchangeReviews(server, 'token', 'authenticated'), await exchangeReviews(server, 'access', 'allowed')];
    const answers = await Promise.all(Array.from({ length: 20 }, () => exchange(fresh)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(await exchangeReviews(server, 'token', 'authenticated')).toBe(before[0]! + 1);
    // One more SubjectAccessReview at most (none when this user's answer is still cached).
    expect(await exchangeReviews(server, 'access', 'allowed')).toBeLessThanOrEqual(before[1]! + 1);
    expect(await exchangeReviews(server, 'token', 'cached')).toBeGreaterThanOrEqual(19);
  });
});

describe('a flood of random subject tokens from one address', () => {
  const FLOODER = '127.0.0.2';
  const HONEST = '127.0.0.3';

  it('leaves an honest client at another address all of its 200 exchanges, and the flooder gets 429 slow_down after a few failures', async () => {
    // The honest client: 10 workers, 20 exchanges each, with 20 fresh tokens (20 TokenReviews to ask during the flood).
    const honestTokens = await Promise.all(Array.from({ length: 20 }, () => serviceAccountToken(ns.name, 'deployer')));
    const before = {
      authenticated: await exchangeReviews(server, 'token', 'authenticated'),
      unauthenticated: await exchangeReviews(server, 'token', 'unauthenticated'),
    };
    let flooding = true;
    const flood: Answer[] = [];
    // 200 at once, more than the 128 reviews the server allows in flight; a 429 is retried after 10 ms
    // regardless of Retry-After (a tight loop would only measure how busy the test keeps the CPU).
    const flooders = Array.from({ length: 200 }, async () => {
      while (flooding) {
        const a = await exchange(forgedToken(), {}, {}, FLOODER);
        flood.push(a);
        if (a.status === 429) await sleep(10);
      }
    });
    await sleep(300);
    const t0 = Date.now();
    const honest = (await Promise.all(Array.from({ length: 10 }, async (_, w) => {
      const answers: Answer[] = [];
      for (let i = 0; i < 20; i++) answers.push(await exchange(honestTokens[(w * 20 + i) % 20]!, {}, {}, HONEST));
      return answers;
    }))).flat();
    const honestMs = Date.now() - t0;
    flooding = false;
    await Promise.all(flooders);

    expect(honest.filter((a) => a.status !== 200).map((a) => a.text)).toEqual([]);
    expect(honest).toHaveLength(200);
    // The flooder: a few reviews (its share in flight, then the failures that throttle it), then 429 without a review.
    const failed = flood.filter((a) => a.status === 400);
    const throttled = flood.filter((a) => a.status === 429);
    expect(failed.length + throttled.length).toBe(flood.length);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length).toBeLessThanOrEqual(40);
    expect(throttled.length).toBeGreaterThan(flood.length * 0.9);
    for (const a of throttled) {
      expect(a.body.error).toBe('slow_down');
      expect(Number(a.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect(await exchangeReviews(server, 'token', 'unauthenticated') - before.unauthenticated).toBe(failed.length);
    // Approvals stayed cached during the denial flood: one TokenReview per honest token for each 10 s an
    // approval lives (a loaded machine may take longer than 10 s for the 200). Had the thousands of
    // denials pushed approvals out, nearly every one of the 200 exchanges would have needed a review.
    const lifetimes = 1 + Math.floor(honestMs / 10_000);
    const approvals = await exchangeReviews(server, 'token', 'authenticated') - before.authenticated;
    expect(approvals, `${flood.length} flood requests during ${honestMs} ms`).toBeGreaterThanOrEqual(honestTokens.length);
    expect(approvals, `${flood.length} flood requests during ${honestMs} ms`).toBeLessThanOrEqual(honestTokens.length * lifetimes);
    expect(lifetimes).toBeLessThanOrEqual(4);

    // Throttled now: a further failing attempt is 429 with Retry-After, and a token the cache approved still passes.
    const again = await exchange(forgedToken(), {}, {}, FLOODER);
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // (Approved just now from the honest address: on a loaded machine the flood's approvals may have lived out their 10 s.)
    expect((await exchange(honestTokens[0]!, {}, {}, HONEST)).status).toBe(200);
    expect((await exchange(honestTokens[0]!, {}, {}, FLOODER)).status).toBe(200);
    // A token never reviewed would need the apiserver, which this address may not ask for now.
    expect((await exchange(await serviceAccountToken(ns.name, 'deployer'), {}, {}, FLOODER)).status).toBe(429);
    expect(server.logs()).toContain('token exchange failures: this address is answered from the review cache only for a while');
  });
});

describe('an account without the role', () => {
  const FROM = '127.0.0.11';

  it('is denied: access_denied (403)', async () => {
    const r = await exchange(subject.stranger, {}, {}, FROM);
    expect(r.status).toBe(403);
    expect(r.body.error).toBe('access_denied');
  });

  it('cannot tell a Deployment that does not exist from one it may not use: the answers are byte-identical', async () => {
    const ask = (deployment: string) => exchange(subject.stranger, { deployment, audience: 'https://nowhere.example.test', scope: 'deploy' }, {}, FROM);
    const forbidden = await ask(`${ns.name}/airflow`);
    const missing = await ask(`${ns.name}/no-such-deployment`);
    const otherNs = await ask(`no-such-namespace/airflow`);
    const headers = (a: Answer) => [...a.headers.entries()].filter(([k]) => k !== 'date');
    for (const a of [missing, otherNs]) {
      expect(a.status).toBe(forbidden.status);
      expect(a.text).toBe(forbidden.text);
      expect(headers(a)).toEqual(headers(forbidden));
    }
    expect(forbidden.text).not.toContain('airflow');
  });
});

describe('subject tokens Kubernetes does not accept are invalid_grant, through a real TokenReview', () => {
  const FROM = '127.0.0.12';

  it.each<[string, () => Promise<string>]>([
    ['a token of the apiserver\'s form signed by someone else', async () => {
      // The claims of a real ServiceAccount token, re-signed with a key the apiserver never saw.
      const real = decodeJwt(subject.deployer);
      const { privateKey } = await generateKeyPair('RS256');
      return new SignJWT(real).setProtectedHeader({ alg: 'RS256', kid: 'not-the-apiservers' }).sign(privateKey);
    }],
    ['an expired token (signed by someone else too: TokenRequest refuses lifetimes under 600 s, so a real one cannot expire here)', async () => {
      const real = decodeJwt(subject.deployer);
      const { privateKey } = await generateKeyPair('ES256');
      const past = Math.floor(Date.now() / 1000) - 3600;
      return new SignJWT({ ...real, iat: past - 600, nbf: past - 600, exp: past }).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    }],
    ['a string that is no token at all', () => Promise.resolve('not-a-kubernetes-token')],
  ])('%s', async (_what, make) => {
    const before = await exchangeReviews(server, 'token', 'unauthenticated');
    const r = await exchange(await make(), {}, {}, FROM);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_grant');
    expect(await exchangeReviews(server, 'token', 'unauthenticated')).toBe(before + 1);
  });

  it('a revoked token (its ServiceAccount deleted and re-created), and one the server accepted before within the cache\'s 10 s', async () => {
    const used = await serviceAccountToken(ns.name, 'revoked');
    const unused = await serviceAccountToken(ns.name, 'revoked');
    await bindTokenRequester(identity, ns.name, ns.name, 'revoked', 'deployment-token-requester');
    await userToken(used);
    await core().deleteNamespacedServiceAccount({ name: 'revoked', namespace: ns.name });
    await serviceAccountToken(ns.name, 'revoked');
    // The apiserver checks the ServiceAccount's uid in the token against the current object.
    const fresh = await waitFor('the unused token refused', async () => {
      const r = await exchange(unused, {}, {}, '127.0.0.13');
      return r.status === 400 ? r : undefined;
    }, 12_000, 100);
    expect(fresh.body.error).toBe('invalid_grant');
    const t0 = Date.now();
    await waitFor('the used token refused', async () => (await exchange(used, {}, {}, '127.0.0.13')).body.error === 'invalid_grant', 15_000, 250);
    expect(Date.now() - t0).toBeLessThan(11_000);
  });
});

describe('the scope split', () => {
  it('gives an account bound to deployment-read-token-requester read, and not deploy', async () => {
    const r = await exchange(subject.reader);
    expect(r.status, r.text).toBe(200);
    expect(r.body.scope).toBe('read');
    expect(decodeJwt(r.body.access_token as string)).toMatchObject({ sub: `system:serviceaccount:${ns.name}:reader`, scope: 'read' });
    expect((await authz(server, r.body.access_token as string, 'read')).status).toBe(200);
    expect((await authz(server, r.body.access_token as string, 'deploy')).status).toBe(403);
  });

  it('refuses deploy to it with invalid_scope, since RBAC allows it read only', async () => {
    const r = await exchange(subject.reader, { scope: 'deploy' });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_scope');
    expect((await exchange(subject.reader, { scope: 'deploy read' })).body.error).toBe('invalid_scope');
  });

  it('lets RBAC tell the two apart: can-i create deployments/token no, deployments/readtoken yes', async () => {
    const can = async (sub: string) => (await kubectl(['auth', 'can-i', 'create', `deployments.apikeys.dev/airflow`, `--subresource=${sub}`,
      '-n', ns.name, `--as=system:serviceaccount:${ns.name}:reader`])).stdout.trim();
    expect([await can('token'), await can('readtoken')]).toEqual(['no', 'yes']);
  });
});

describe('user tokens at /authz and introspection', () => {
  it('are live like key tokens, with the user as subject', async () => {
    const t = await userToken(subject.deployer);
    const r = await authz(server, t, 'deploy');
    expect(r.status).toBe(200);
    expect(r.headers.get('x-auth-subject')).toBe(`system:serviceaccount:${ns.name}:deployer`);
    expect(r.headers.get('x-auth-deployment')).toBe(`${ns.name}/airflow`);
    expect(await introspect(server, t, observer)).toMatchObject({
      active: true, sub: `system:serviceaccount:${ns.name}:deployer`, client_id: 'kubernetes', scope: 'deploy read',
      deployment: `${ns.name}/airflow`, aud: AUDIENCE,
    });
  });

  it('go inactive at once when their Deployment is deleted, and stay so when one of the same name is created again', async () => {
    await createDeployment(ns.name, 'short-lived', { audiences: [SHORT_LIVED] });
    const t = await waitFor('a token', async () => {
      const r = await exchange(subject.deployer, { deployment: `${ns.name}/short-lived` });
      return r.status === 200 ? r.body.access_token as string : undefined;
    }, 10_000, 50);
    expect((await authz(server, t, 'deploy')).status).toBe(200);
    expect((await introspect(server, t, observer)).active).toBe(true);
    await adminClient().delete(deploymentPath(ns.name, 'short-lived'));
    const t0 = Date.now();
    await waitFor('inactive', async () => (await authz(server, t, 'deploy')).status === 401, 5000, 10);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await introspect(server, t, observer)).toEqual({ active: false });
    await waitFor('gone', async () => (await getDeployment(ns.name, 'short-lived')) === undefined, 20_000);
    await createDeployment(ns.name, 'short-lived', { audiences: [SHORT_LIVED] });
    await waitFor('a new token for the new Deployment', async () => (await exchange(subject.deployer, { deployment: `${ns.name}/short-lived` })).status === 200, 10_000, 50);
    expect((await authz(server, t, 'deploy')).status).toBe(401);
    expect(await introspect(server, t, observer)).toEqual({ active: false });
  });
});

describe('the token server', () => {
  it.each([['25h', /at most 24h/], ['1d', /must be a duration/]])('refuses to start with --user-token-ttl %s', async (ttl, message) => {
    const r = await exec(process.execPath, [MAIN, 'token-server', '--user-token-ttl', ttl]).then(
      () => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('with --token-review-audiences, exchanges only subject tokens bound to one of those audiences', async () => {
    const FROM = '127.0.0.14';
    const OURS = 'https://tokens.example.test';
    const bound = await startTokenServer({
      kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace,
      args: ['--token-review-audiences', `https://other.example.test,${OURS}`],
    });
    try {
      const forUs = await serviceAccountToken(ns.name, 'deployer', [OURS]);
      const ok = await exchange(forUs, {}, {}, FROM, bound.url);
      expect(ok.status, ok.text).toBe(200);
      expect(decodeJwt(ok.body.access_token as string).sub).toBe(`system:serviceaccount:${ns.name}:deployer`);
      // A token for the apiserver (what kubectl holds) is not accepted there...
      const apiserverToken = await exchange(subject.deployer, {}, {}, FROM, bound.url);
      expect(apiserverToken.status).toBe(400);
      expect(apiserverToken.body.error).toBe('invalid_grant');
      // ...and a token bound to the token server's audience is not accepted by a server that asks for the apiserver's.
      expect((await exchange(forUs, {}, {}, FROM)).body.error).toBe('invalid_grant');
      expect(bound.logs()).toContain(OURS);
    } finally {
      await bound.stop();
    }
  });

  it('refuses mixed authentication: an API key with a token exchange is invalid_request', async () => {
    const r = await exchange(subject.deployer, {}, { authorization: basic(observer.keyId, observer.secret) });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_request');
  });

  it('logs who got a token, and never a subject token or an access token', () => {
    const logs = server.logs();
    expect(logs).toContain('temporary user token issued');
    expect(logs).toContain(`system:serviceaccount:${ns.name}:deployer`);
    for (const t of Object.values(subject)) expect(logs).not.toContain(t);
    expect(logs).not.toMatch(/eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}/);
    expect(logs).not.toMatch(/"level":"error"/);
  });
});
