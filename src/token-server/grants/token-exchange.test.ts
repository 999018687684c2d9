/**
 * RFC 8693 token exchange in process, over real HTTP, with a MemoryKeyStore and
 * a reviewer that plays the apiserver's TokenReview and SubjectAccessReview
 * (test/token-exchange.test.ts does it against the real control plane).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { oauthServer, proofKey } from '../../../test/support/dpop.ts';
import { createLogger } from '../../shared/log.ts';
import { DEFAULT_ROTATION, planSigningKeys, type SigningKeySet } from '../../shared/signing-keys.ts';
import { apiKeyFixture, deploymentObject, type KeyFixture } from '../fixtures.ts';
import { startTokenServer, type RunningTokenServer } from '../main.ts';
import { MemoryKeyStore } from '../memory-key-store.ts';
import type { FailureLimiterOptions } from '../ratelimit.ts';
import {
  ReviewRefused, ReviewUnavailable, type DeploymentAccess, type KubeUser, type ReviewAsker, type SubjectReviewer,
} from '../reviews.ts';
import { TOKEN_EXCHANGE_GRANT as TOKEN_EXCHANGE } from '../../api/index.ts';
import { jwtExpiry, parseDeploymentRef } from './token-exchange.ts';

const ISSUER = 'http://issuer.test';
const AUDIENCE = 'https://api.example';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const log = createLogger({ level: 'silent' });

/**
 * The apiserver's part: which token is whose, and who may create which
 * subresource of which Deployment; and the cache's part as a throttled
 * client sees it: a question asked before is answered, any other refused.
 */
class FakeReviewer implements SubjectReviewer {
  users = new Map<string, KubeUser>();
  rbac = new Set<string>();
  reviews: string[] = [];
  down = false;
  private readonly asked = new Set<string>();

  authenticate(token: string, asker?: ReviewAsker): Promise<KubeUser | undefined> {
    if (!this.ask(`token ${token}`, asker)) return Promise.reject(new ReviewRefused('throttled'));
    this.reviews.push('token');
    if (this.down) return Promise.reject(new ReviewUnavailable('the Kubernetes API did not answer the TokenReview'));
    return Promise.resolve(this.users.get(token));
  }

  mayCreate(user: KubeUser, a: DeploymentAccess, asker?: ReviewAsker): Promise<boolean> {
    const question = `${user.username} ${a.namespace}/${a.name} ${a.subresource}`;
    if (!this.ask(question, asker)) return Promise.reject(new ReviewRefused('throttled'));
    this.reviews.push(`access ${a.subresource}`);
    return Promise.resolve(this.rbac.has(question));
  }

  private ask(question: string, asker: ReviewAsker | undefined): boolean {
    if (asker?.cachedOnly && !this.asked.has(question)) return false;
    this.asked.add(question);
    return true;
  }
}

let signingKeys: SigningKeySet;
beforeAll(async () => { signingKeys = await planSigningKeys(undefined, DEFAULT_ROTATION); });

const dep = deploymentObject('team-a', 'airflow', { audiences: [AUDIENCE, 'https://second.example'], maxTokenTTL: '24h' });
const secret = deploymentObject('team-a', 'secret-project', { audiences: [AUDIENCE] });
const short = deploymentObject('team-a', 'short', { audiences: [AUDIENCE], maxTokenTTL: '10m' });
const ALICE = 'alice-token';
const READER = 'reader-token';
let server: RunningTokenServer;
let store: MemoryKeyStore;
let reviewer: FakeReviewer;
let url: string;
let observer: KeyFixture;

async function serve(userTokenTtlMs?: number, exchangeLimits?: FailureLimiterOptions): Promise<void> {
  store = new MemoryKeyStore({ deployments: [dep, secret, short], apiKeys: [observer.apiKey], signingKeys });
  server = await startTokenServer({
    kc: new KubeConfig(), port: 0, metricsPort: 0, host: '127.0.0.1', issuer: ISSUER, audiences: ['https://default.example'],
    operatorNamespace: 'op', namespaces: [], logLevel: 'silent', userTokenTtlMs,
  }, { store, log, defaultMetrics: false, reviewer, exchangeLimits });
  url = `http://127.0.0.1:${server.port}`;
}

beforeEach(async () => {
  // Of another Deployment of the namespace, so that it outlives team-a/airflow.
  observer = apiKeyFixture(secret, 'observer');
  reviewer = new FakeReviewer();
  reviewer.users.set(ALICE, { username: 'alice@example.com', groups: ['devs'] });
  reviewer.users.set(READER, { username: 'system:serviceaccount:team-a:reader' });
  reviewer.rbac.add('alice@example.com team-a/airflow token');
  reviewer.rbac.add('alice@example.com team-a/short token');
  reviewer.rbac.add('system:serviceaccount:team-a:reader team-a/airflow readtoken');
  await serve();
});
afterEach(async () => { await server.close(); });

const exchangeBody = (extra: Record<string, string> = {}) => ({
  grant_type: TOKEN_EXCHANGE, subject_token: ALICE, subject_token_type: ACCESS_TOKEN, deployment: 'team-a/airflow', ...extra,
});

async function post(path: string, body: Record<string, string>, headers: Record<string, string> = {}) {
  const r = await fetch(url + path, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString(),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, body: JSON.parse(text) as Record<string, unknown> };
}

const exchange = (extra: Record<string, string> = {}, headers: Record<string, string> = {}) => post('/oauth/token', exchangeBody(extra), headers);

async function exchanged(extra: Record<string, string> = {}): Promise<string> {
  const r = await exchange(extra);
  expect(r.status, r.text).toBe(200);
  return r.body.access_token as string;
}

describe('token exchange', () => {
  it('turns a Kubernetes identity into an RFC 9068 token of the Deployment: sub the user name, client_id kubernetes, no key id, 1h', async () => {
    const r = await exchange();
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(Object.keys(r.body).sort()).toEqual(['access_token', 'expires_in', 'issued_token_type', 'scope', 'token_type']);
    expect(r.body).toMatchObject({ token_type: 'Bearer', issued_token_type: ACCESS_TOKEN, expires_in: 3600, scope: 'deploy read' });
    const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json() as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(r.body.access_token as string, createLocalJWKSet(jwks), {
      issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt',
    });
    expect(protectedHeader.kid).toBe(signingKeys.keys[0]!.kid);
    expect(payload).toEqual({
      iss: ISSUER, sub: 'alice@example.com', client_id: 'kubernetes', aud: AUDIENCE, iat: expect.any(Number) as number,
      exp: payload.iat! + 3600, jti: expect.any(String) as string, scope: 'deploy read', deployment: 'team-a/airflow',
      deployment_uid: dep.metadata.uid,
    });
  });

  it('echoes a requested_token_type of jwt as the issued_token_type', async () => {
    expect((await exchange({ requested_token_type: JWT_TYPE, subject_token_type: JWT_TYPE })).body.issued_token_type).toBe(JWT_TYPE);
  });

  it('takes the JSON body, as the client credentials grant does', async () => {
    const r = await fetch(`${url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(exchangeBody()) });
    expect(r.status).toBe(200);
  });

  it.each<[string, Record<string, string>, string, string]>([
    ['an audience the Deployment lists', { audience: 'https://second.example' }, 'https://second.example', 'deploy read'],
    ['an RFC 8707 resource', { resource: 'https://second.example' }, 'https://second.example', 'deploy read'],
    ['a narrower scope', { scope: 'read' }, AUDIENCE, 'read'],
  ])('honours %s', async (_what, extra, aud, scope) => {
    expect(decodeJwt(await exchanged(extra))).toMatchObject({ aud, scope });
  });

  it('gives read and only read to a user allowed create on deployments/readtoken alone', async () => {
    const r = await exchange({ subject_token: READER });
    expect(r.status).toBe(200);
    expect(r.body.scope).toBe('read');
    const denied = await exchange({ subject_token: READER, scope: 'deploy' });
    expect(denied.status).toBe(400);
    expect(denied.body.error).toBe('invalid_scope');
    expect(denied.body.error_description).toMatch(/beyond what RBAC allows you/);
  });

  it('asks deployments/token first, and deployments/readtoken only when that is refused', async () => {
    await exchanged();
    expect(reviewer.reviews).toEqual(['token', 'access token']);
    reviewer.reviews = [];
    await exchanged({ subject_token: READER });
    expect(reviewer.reviews).toEqual(['token', 'access token', 'access readtoken']);
  });

  it('caps the lifetime at the Deployment\'s maxTokenTTL and at the subject token\'s exp', async () => {
    expect(decodeJwt(await exchanged({ deployment: 'team-a/short' }))).toSatisfy((p: { exp: number; iat: number }) => p.exp - p.iat === 600);
    const now = Math.floor(Date.now() / 1000);
    const expiring = `${b64({ alg: 'none' })}.${b64({ sub: 'x', exp: now + 120 })}.sig`;
    reviewer.users.set(expiring, { username: 'alice@example.com' });
    const p = decodeJwt(await exchanged({ subject_token: expiring, subject_token_type: JWT_TYPE }));
    expect(p.exp).toBe(now + 120);
  });

  it('uses --user-token-ttl', async () => {
    await server.close();
    await serve(15 * 60_000);
    expect((await exchange()).body.expires_in).toBe(900);
  });

  it.each<[string, Record<string, string>, Record<string, string>, number, string]>([
    ['no subject_token', { subject_token: '' }, {}, 400, 'invalid_request'],
    ['no subject_token_type', { subject_token_type: '' }, {}, 400, 'invalid_request'],
    ['a SAML subject_token_type', { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }, {}, 400, 'invalid_request'],
    ['a refresh token asked for', { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, {}, 400, 'invalid_request'],
    ['an actor_token', { actor_token: 'x', actor_token_type: ACCESS_TOKEN }, {}, 400, 'invalid_request'],
    ['no deployment', { deployment: '' }, {}, 400, 'invalid_request'],
    ['a deployment without its namespace', { deployment: 'airflow' }, {}, 400, 'invalid_request'],
    ['a deployment that is no Kubernetes name', { deployment: 'team-a/Air flow' }, {}, 400, 'invalid_request'],
    ['an unknown scope', { scope: 'admin' }, {}, 400, 'invalid_scope'],
    ['client authentication with HTTP Basic', {}, { authorization: 'Basic YWs6eA==' }, 400, 'invalid_request'],
    ['a client_secret', { client_id: 'x', client_secret: 'y' }, {}, 400, 'invalid_request'],
    ['the subject token as a Bearer header', {}, { authorization: `Bearer ${ALICE}` }, 400, 'invalid_request'],
    ['a subject_token the apiserver does not accept', { subject_token: 'bogus' }, {}, 400, 'invalid_grant'],
    ['a subject_token with spaces', { subject_token: 'not a token' }, {}, 400, 'invalid_grant'],
    ['a Deployment the user may not get tokens for', { deployment: 'team-a/secret-project' }, {}, 403, 'access_denied'],
    ['an audience the Deployment does not list', { audience: 'https://elsewhere.example' }, {}, 400, 'invalid_target'],
    ['a Deployment that does not exist, to a user allowed it', { deployment: 'team-a/gone' }, {}, 400, 'invalid_target'],
  ])('refuses %s', async (what, extra, headers, status, error) => {
    if (what.endsWith('allowed it')) reviewer.rbac.add('alice@example.com team-a/gone token');
    const r = await exchange(extra, headers);
    expect(r.status, r.text).toBe(status);
    expect(r.body.error).toBe(error);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.text).not.toContain(ALICE);
  });

  it('accepts a bare client_id (a public client naming itself) and still issues client_id kubernetes', async () => {
    expect(decodeJwt(await exchanged({ client_id: 'my-cli' })).client_id).toBe('kubernetes');
  });

  it('answers a missing Deployment exactly as a forbidden one, and looks neither up before RBAC said yes', async () => {
    const forbidden = await exchange({ deployment: 'team-a/secret-project', audience: 'https://nowhere.example', scope: 'deploy' });
    const missing = await exchange({ deployment: 'team-a/no-such-thing', audience: 'https://nowhere.example', scope: 'deploy' });
    expect(forbidden.status).toBe(403);
    expect(missing.text).toBe(forbidden.text);
    expect(missing.status).toBe(forbidden.status);
    const headers = (h: Headers) => [...h.entries()].filter(([k]) => k !== 'date');
    expect(headers(missing.headers)).toEqual(headers(forbidden.headers));
    expect(forbidden.text).not.toContain('secret-project');
  });

  it('refuses a user whose name holds control characters', async () => {
    reviewer.users.set('newline', { username: 'alice\nX-Injected: 1' });
    reviewer.rbac.add('alice\nX-Injected: 1 team-a/airflow token');
    expect((await exchange({ subject_token: 'newline' })).body.error).toBe('invalid_grant');
  });

  it('refuses a user whose name has the form of an API key id', async () => {
    reviewer.users.set('lookalike', { username: observer.keyId });
    reviewer.rbac.add(`${observer.keyId} team-a/airflow token`);
    expect((await exchange({ subject_token: 'lookalike' })).body.error).toBe('invalid_grant');
  });

  it('answers 503 temporarily_unavailable with Retry-After when the apiserver does not answer', async () => {
    reviewer.down = true;
    const r = await exchange();
    expect(r.status).toBe(503);
    expect(r.body.error).toBe('temporarily_unavailable');
    expect(r.headers.get('retry-after')).toBe('1');
  });

  it('is listed in discovery, with the auth method none', async () => {
    const doc = await (await fetch(`${url}/.well-known/oauth-authorization-server`)).json() as Record<string, string[]>;
    expect(doc.grant_types_supported).toEqual(['client_credentials', TOKEN_EXCHANGE]);
    expect(doc.token_endpoint_auth_methods_supported).toContain('none');
  });

  it('is counted under its grant type, with bounded failure reasons', async () => {
    await exchanged();
    await exchange({ subject_token: 'bogus' });
    await exchange({ deployment: 'team-a/secret-project' });
    const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
    expect(text).toContain(`apikey_operator_tokens_issued_total{grant_type="${TOKEN_EXCHANGE}"} 1`);
    expect(text).toContain('apikey_operator_token_failures_total{reason="invalid_grant"} 1');
    expect(text).toContain('apikey_operator_token_failures_total{reason="access_denied"} 1');
    expect(text).not.toContain('alice');
  });
});

describe('failed exchanges from one client address', () => {
  /** Exchanges of tokens Kubernetes never issued until the address is throttled; the answers' statuses. */
  async function fail(times: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < times; i++) statuses.push((await exchange({ subject_token: `bogus-${i}` })).status);
    return statuses;
  }

  it('are free five times, then the address gets 429 slow_down with Retry-After and costs Kubernetes no review', async () => {
    expect(await fail(6)).toEqual(Array(6).fill(400));
    const reviews = reviewer.reviews.length;
    const r = await exchange({ subject_token: 'bogus-again' });
    expect(r.status).toBe(429);
    expect(r.body.error).toBe('slow_down');
    expect(r.body.error_description).toMatch(/failed token exchanges from this address/);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(reviewer.reviews.length).toBe(reviews);
    // A refusal the cache already knows is a failing attempt too: 429, not its old answer.
    expect((await exchange({ subject_token: 'bogus-0' })).status).toBe(429);
    expect((await exchange({ deployment: 'team-a/secret-project' })).status).toBe(429);
  });

  it('leave an approved subject token working at a throttled address, and a new one waiting', async () => {
    await exchanged();
    await fail(6);
    const r = await exchange();
    expect(r.status, r.text).toBe(200);
    // READER's token was never reviewed: that would need the apiserver, which the address may not ask now.
    expect((await exchange({ subject_token: READER })).status).toBe(429);
  });

  it('are forgotten once the penalty is over: the address may ask Kubernetes again', async () => {
    await server.close();
    await serve(undefined, { baseDelayMs: 50 });
    await fail(6);
    expect((await exchange({ subject_token: READER })).status).toBe(429);
    await new Promise((r) => setTimeout(r, 60));
    expect((await exchange({ subject_token: READER })).status).toBe(200);
  });
});

describe('user tokens at /authz and introspection', () => {
  const introspect = (t: string) => post('/oauth/introspect', { token: t }, {
    authorization: `Basic ${Buffer.from(`${observer.keyId}:${observer.secret}`).toString('base64')}`,
  });
  const authz = (t: string, q = '') => fetch(`${url}/authz?deployment=team-a/airflow&${q.replace(/^\?/, '')}`, { headers: { authorization: `Bearer ${t}` } });

  it('are live like key tokens, with their permissions', async () => {
    const t = await exchanged();
    const r = await authz(t);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-auth-subject')).toBe('alice@example.com');
    expect(r.headers.get('x-auth-deployment')).toBe('team-a/airflow');
    expect((await introspect(t)).body).toMatchObject({
      active: true, sub: 'alice@example.com', client_id: 'kubernetes', scope: 'deploy read', deployment: 'team-a/airflow',
    });
    const read = await exchanged({ subject_token: READER });
    expect((await authz(read, '?permission=read')).status).toBe(200);
    expect((await authz(read, '?permission=deploy')).status).toBe(403);
  });

  it('give a user name beyond ASCII to a proxy percent-encoded in X-Auth-Subject', async () => {
    reviewer.users.set('unicode', { username: 'oidc:渡辺' });
    reviewer.rbac.add('oidc:渡辺 team-a/airflow token');
    const t = await exchanged({ subject_token: 'unicode' });
    expect(decodeJwt(t).sub).toBe('oidc:渡辺');
    const r = await authz(t);
    expect(r.status).toBe(200);
    expect(decodeURIComponent(r.headers.get('x-auth-subject')!)).toBe('oidc:渡辺');
  });

  it('die with their Deployment, and are not inherited by one re-created under the same name', async () => {
    const t = await exchanged();
    store.deleteDeployment('team-a/airflow');
    expect((await authz(t)).status).toBe(401);
    expect((await introspect(t)).body).toEqual({ active: false });
    store.putDeployment(deploymentObject('team-a', 'airflow', { audiences: [AUDIENCE] }));
    expect((await authz(t)).status).toBe(401);
    expect((await introspect(t)).body).toEqual({ active: false });
    expect((await authz(await exchanged())).status).toBe(200);
  });

  it('are inactive to a key of another namespace', async () => {
    const otherDep = deploymentObject('team-b', 'x');
    const other = apiKeyFixture(otherDep, 'other');
    store.putDeployment(otherDep);
    store.putApiKey(other.apiKey);
    const r = await post('/oauth/introspect', { token: await exchanged() }, {
      authorization: `Basic ${Buffer.from(`${other.keyId}:${other.secret}`).toString('base64')}`,
    });
    expect(r.body).toEqual({ active: false });
  });
});

describe('the pieces', () => {
  it.each([
    ['team-a/airflow', { namespace: 'team-a', name: 'airflow' }],
    ['ns/a.b-c', { namespace: 'ns', name: 'a.b-c' }],
  ])('parses %s', (v, expected) => {
    expect(parseDeploymentRef(v)).toEqual(expected);
  });

  it.each(['airflow', '/airflow', 'ns/', 'ns/a/b', 'NS/a', `${'n'.repeat(64)}/a`, 'ns/-a'])('refuses the reference %j', (v) => {
    expect(() => parseDeploymentRef(v)).toThrow(/namespace\/name/);
  });

  it('reads exp of a JWT-shaped token and nothing of any other', () => {
    expect(jwtExpiry(`${b64({})}.${b64({ exp: 12.7 })}.x`)).toBe(12);
    expect(jwtExpiry(`${b64({})}.${b64({ exp: '12' })}.x`)).toBeUndefined();
    expect(jwtExpiry('opaque-token')).toBeUndefined();
    expect(jwtExpiry('a.%%%.c')).toBeUndefined();
  });
});

function b64(o: object): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

describe('token exchange with DPoP (RFC 9449), through oauth4webapi', () => {
  const { as, options } = oauthServer(ISSUER, () => url);
  const o4wExchange = async (dpop?: oauth.DPoPHandle, deployment = 'team-a/airflow') => oauth.processGenericTokenEndpointResponse(
    as, { client_id: 'cli' }, await oauth.genericTokenEndpointRequest(as, { client_id: 'cli' }, oauth.None(), TOKEN_EXCHANGE, {
      subject_token: ALICE, subject_token_type: ACCESS_TOKEN, deployment,
    }, { ...options, DPoP: dpop }));

  it('binds the user token to the proof key', async () => {
    const dpop = oauth.DPoP({}, (await proofKey()).pair);
    const t = await o4wExchange(dpop);
    expect(t.token_type).toBe('dpop');
    expect(decodeJwt(t.access_token)).toMatchObject({ client_id: 'kubernetes', cnf: { jkt: await dpop.calculateThumbprint() } });
  });

  it('refuses a bearer exchange for a Deployment that requires DPoP', async () => {
    store.putDeployment({ ...dep, spec: { ...dep.spec, requireDPoP: true } });
    const r = await exchange();
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_dpop_proof');
    expect((await o4wExchange(oauth.DPoP({}, (await proofKey()).pair))).token_type).toBe('dpop');
  });
});
