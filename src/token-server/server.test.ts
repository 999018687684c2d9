/**
 * The token server's HTTP behaviour, in process, over real HTTP, with a
 * MemoryKeyStore in place of the watches (test/token-server.test.ts runs the
 * real process against a real control plane).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import fc from 'fast-check';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApiKey } from '../api/index.ts';
import { generateSecret, hashSecret } from '../keys/format.ts';
import { createLogger } from '../shared/log.ts';
import { DEFAULT_ROTATION, planSigningKeys, type SigningKeySet } from '../shared/signing-keys.ts';
import { apiKeyFixture, deploymentObject, type KeyFixture } from './fixtures.ts';
import { identityHeader } from './authz.ts';
import { startTokenServer, type RunningTokenServer } from './main.ts';
import { MAX_HEADER_BYTES } from './server.ts';
import { MemoryKeyStore } from './memory-key-store.ts';

const ISSUER = 'http://issuer.test';
const AUDIENCE = 'https://api.example';
const DEFAULT_AUDIENCE = 'https://default.example';
const log = createLogger({ level: 'silent' });

let signingKeys: SigningKeySet;
beforeAll(async () => { signingKeys = await planSigningKeys(undefined, DEFAULT_ROTATION); });

interface World {
  server: RunningTokenServer;
  store: MemoryKeyStore;
  url: string;
  key: KeyFixture;
  other: KeyFixture;
}

const dep = deploymentObject('team-a', 'airflow', { audiences: [AUDIENCE, 'https://second.example'], maxTokenTTL: '24h' });
const otherDep = deploymentObject('team-b', 'airflow');
let w: World;

async function serve(store: MemoryKeyStore, limits = {}, issuer = `${ISSUER}/`): Promise<RunningTokenServer> {
  return startTokenServer({
    kc: new KubeConfig(), port: 0, metricsPort: 0, host: '127.0.0.1', issuer, audiences: [DEFAULT_AUDIENCE],
    operatorNamespace: 'op', namespaces: [], logLevel: 'silent',
  }, { store, log, defaultMetrics: false, limits });
}

beforeEach(async () => {
  const key = apiKeyFixture(dep, 'ci', { spec: { permissions: ['deploy', 'read'] } });
  const other = apiKeyFixture(otherDep, 'ci');
  const store = new MemoryKeyStore({ deployments: [dep, otherDep], apiKeys: [key.apiKey, other.apiKey], signingKeys });
  const server = await serve(store, { freeFailures: 3 });
  w = { server, store, url: `http://127.0.0.1:${server.port}`, key, other };
});
afterEach(async () => { await w.server.close(); });

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const form = (body: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString(),
});
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function post(path: string, init: RequestInit, dispatcher?: Agent) {
  const r = await undiciFetch(w.url + path, { ...init, dispatcher } as never);
  const text = await r.text();
  let body: Record<string, unknown> = {};
  try { body = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body, text };
}

const token = (init: RequestInit, dispatcher?: Agent) => post('/oauth/token', init, dispatcher);
const creds = () => ({ client_id: w.key.keyId, client_secret: w.key.secret });
const seedRequest = () => ({ ...creds(), audience: AUDIENCE, grant_type: 'client_credentials' });

async function getToken(): Promise<string> {
  const r = await token(json(seedRequest()));
  expect(r.status).toBe(200);
  return r.body.access_token as string;
}

describe('POST /oauth/token with client credentials', () => {
  it('answers the seed\'s JSON request with a Bearer token and no-store', async () => {
    const r = await token(json(seedRequest()));
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('pragma')).toBe('no-cache');
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.body).toEqual({ access_token: expect.any(String) as unknown, token_type: 'Bearer', expires_in: 86400, scope: 'deploy read' });
  });

  it('issues a token that jose verifies against the JWKS, with the RFC 9068 header and the contract\'s claims', async () => {
    const jwks = await (await fetch(`${w.url}/.well-known/jwks.json`)).json() as JSONWebKeySet;
    const now = Math.floor(Date.now() / 1000);
    const { payload, protectedHeader } = await jwtVerify(await getToken(), createLocalJWKSet(jwks), {
      issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt',
    });
    expect(protectedHeader).toMatchObject({ typ: 'at+jwt', alg: 'ES256', kid: signingKeys.keys[0]!.kid });
    expect(payload).toMatchObject({ sub: w.key.keyId, client_id: w.key.keyId, aud: AUDIENCE, scope: 'deploy read', deployment: 'team-a/airflow' });
    expect(payload.exp! - payload.iat!).toBe(86400);
    expect(Math.abs(payload.iat! - now)).toBeLessThanOrEqual(1);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ['a form body with client_secret_post', () => form({ grant_type: 'client_credentials', ...creds() })],
    ['a form body with HTTP Basic', () => form({ grant_type: 'client_credentials' }, { authorization: basic(w.key.keyId, w.key.secret) })],
    ['a JSON body with HTTP Basic', () => ({ ...json({ grant_type: 'client_credentials' }), headers: { 'content-type': 'application/json', authorization: basic(w.key.keyId, w.key.secret) } })],
    ['HTTP Basic with the same client_id in the body', () => form({ grant_type: 'client_credentials', client_id: w.key.keyId }, { authorization: basic(w.key.keyId, w.key.secret) })],
    ['a charset in the Content-Type', () => ({ ...form({ grant_type: 'client_credentials', ...creds() }), headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' } })],
    ['unknown parameters, which are ignored', () => json({ ...seedRequest(), extra: 'x', nested: { a: 1 } })],
  ])('accepts %s', async (_what, init) => {
    const r = await token(init());
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token as string).sub).toBe(w.key.keyId);
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['no audience: the Deployment\'s first', {}, 'aud', AUDIENCE],
    ['`audience`', { audience: 'https://second.example' }, 'aud', 'https://second.example'],
    ['RFC 8707 `resource`', { resource: 'https://second.example' }, 'aud', 'https://second.example'],
    ['a narrower scope', { scope: 'read' }, 'scope', 'read'],
  ])('honours %s', async (_what, extra, claim, value) => {
    const r = await token(json({ grant_type: 'client_credentials', ...creds(), ...extra }));
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token as string)[claim]).toBe(value);
  });

  it('uses the server\'s default audience for a Deployment that sets none', async () => {
    const r = await token(json({ grant_type: 'client_credentials', client_id: w.other.keyId, client_secret: w.other.secret }));
    expect(decodeJwt(r.body.access_token as string).aud).toBe(DEFAULT_AUDIENCE);
  });

  it.each<[string, string, number, () => RequestInit]>([
    ['no grant_type', 'invalid_request', 400, () => json(creds())],
    ['an unsupported grant_type', 'unsupported_grant_type', 400, () => json({ ...seedRequest(), grant_type: 'password' })],
    ['no client credentials', 'invalid_client', 401, () => json({ grant_type: 'client_credentials' })],
    ['a wrong secret', 'invalid_client', 401, () => json({ ...seedRequest(), client_secret: generateSecret() })],
    ['an unknown key id', 'invalid_client', 401, () => json({ ...seedRequest(), client_id: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa' })],
    ['Basic and client_secret in the body', 'invalid_request', 400, () => form({ grant_type: 'client_credentials', ...creds() }, { authorization: basic(w.key.keyId, w.key.secret) })],
    ['Basic and another client_id in the body', 'invalid_request', 400, () => form({ grant_type: 'client_credentials', client_id: w.other.keyId }, { authorization: basic(w.key.keyId, w.key.secret) })],
    ['a scope beyond the key\'s permissions', 'invalid_scope', 400, () => json({ ...seedRequest(), scope: 'deploy admin' })],
    ['an audience the Deployment does not allow', 'invalid_target', 400, () => json({ ...seedRequest(), audience: 'https://evil.example' })],
    ['a repeated grant_type', 'invalid_request', 400, () => ({ ...form({}), body: `grant_type=client_credentials&grant_type=client_credentials&client_id=${w.key.keyId}&client_secret=${w.key.secret}` })],
  ])('answers %s with %s (%i)', async (_what, error, status, init) => {
    const r = await token(init());
    expect(r.status).toBe(status);
    expect(r.body.error).toBe(error);
    expect(typeof r.body.error_description).toBe('string');
    expect(r.text).not.toContain(w.key.secret);
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('asks for Basic credentials again when Basic credentials were wrong', async () => {
    const r = await token(form({ grant_type: 'client_credentials' }, { authorization: basic(w.key.keyId, generateSecret()) }));
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it.each<[string, (k: ApiKey) => ApiKey, string, number]>([
    ['Ready=False', (k) => ({ ...k, status: { ...k.status, conditions: [{ type: 'Ready', status: 'False', reason: 'SecretConflict', message: '', lastTransitionTime: '2030-01-01T00:00:00Z' }] } }), 'unauthorized_client', 400],
    ['past spec.expiresAt', (k) => ({ ...k, spec: { ...k.spec, expiresAt: new Date(Date.now() - 1000).toISOString() } }), 'invalid_client', 401],
    ['owned by a Deployment of the same name that was re-created', (k) => ({ ...k, metadata: { ...k.metadata, ownerReferences: [{ ...k.metadata.ownerReferences![0]!, uid: 'old-uid' }] } }), 'unauthorized_client', 400],
    ['being deleted', (k) => ({ ...k, metadata: { ...k.metadata, deletionTimestamp: new Date() } }), 'invalid_client', 401],
  ])('refuses a key that is %s, even with the right secret', async (_what, change, error, status) => {
    w.store.putApiKey(change(w.key.apiKey));
    const r = await token(json(seedRequest()));
    expect(r.status).toBe(status);
    expect(r.body.error).toBe(error);
  });

  it('stops issuing as soon as the key or its Deployment leaves the cache', async () => {
    await getToken();
    w.store.deleteDeployment('team-a/airflow');
    expect((await token(json(seedRequest()))).body.error).toBe('unauthorized_client');
    w.store.deleteKey(w.key.keyId);
    expect((await token(json(seedRequest()))).body.error).toBe('invalid_client');
  });

  it('caps the lifetime by the key\'s tokenTTL, the Deployment\'s maxTokenTTL and the key\'s expiresAt', async () => {
    w.store.putDeployment({ ...dep, spec: { ...dep.spec, maxTokenTTL: '1h' } });
    expect((await token(json(seedRequest()))).body.expires_in).toBe(3600);
    w.store.putApiKey({ ...w.key.apiKey, spec: { ...w.key.apiKey.spec, tokenTTL: '30m' } });
    expect((await token(json(seedRequest()))).body.expires_in).toBe(1800);
    w.store.putApiKey({ ...w.key.apiKey, spec: { ...w.key.apiKey.spec, expiresAt: new Date(Date.now() + 600_000).toISOString() } });
    const r = await token(json(seedRequest()));
    expect(r.body.expires_in).toBeGreaterThanOrEqual(598);
    expect(r.body.expires_in).toBeLessThanOrEqual(600);
    const claims = decodeJwt(r.body.access_token as string);
    expect(claims.exp).toBeLessThanOrEqual(Math.floor(Date.parse(w.key.apiKey.spec.expiresAt ?? '') / 1000) || Infinity);
  });

  it('accepts the previous secret during its grace period only, and its tokens end with the grace period', async () => {
    const fresh = generateSecret();
    const graceEnd = Date.now() + 5000;
    w.store.putApiKey({ ...w.key.apiKey, status: {
      ...w.key.apiKey.status, secretHash: hashSecret(fresh), previousSecretHash: hashSecret(w.key.secret),
      previousSecretValidUntil: new Date(graceEnd).toISOString(),
    } });
    const old = await token(json(seedRequest()));
    expect(old.status).toBe(200);
    expect(old.body.expires_in).toBeLessThanOrEqual(5);
    expect((await token(json({ ...seedRequest(), client_secret: fresh }))).status).toBe(200);
    w.store.putApiKey({ ...w.key.apiKey, status: {
      ...w.key.apiKey.status, secretHash: hashSecret(fresh), previousSecretHash: hashSecret(w.key.secret),
      previousSecretValidUntil: new Date(Date.now() - 1).toISOString(),
    } });
    expect((await token(json(seedRequest()))).body.error).toBe('invalid_client');
  });
});

describe('malformed requests', () => {
  const huge = 'x'.repeat(64 * 1024);
  it.each<[string, number, () => RequestInit]>([
    ['truncated JSON', 400, () => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_cred' })],
    ['a huge body', 413, () => json({ ...seedRequest(), pad: huge })],
    ['a huge form body', 413, () => form({ ...seedRequest(), pad: huge })],
    ['a wrong content type', 415, () => ({ method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })],
    ['no content type', 400, () => ({ method: 'POST', body: new Uint8Array([1, 2, 3]) })],
    ['an array body', 400, () => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' })],
    ['unicode in the key id', 401, () => json({ ...seedRequest(), client_id: 'ak_ünïcödé☃😀aaaaaaaaaaaaaaaaa' })],
    ['a lone surrogate escape', 401, () => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"client_id":"\\ud800","grant_type":"client_credentials"}' })],
    ['invalid UTF-8 bytes', 400, () => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new Uint8Array([0x67, 0x3d, 0xff, 0xfe]) })],
    ['missing fields', 400, () => json({})],
    ['a number where a string belongs', 400, () => json({ ...seedRequest(), client_id: 42 })],
    ['an object where a string belongs', 400, () => json({ ...seedRequest(), grant_type: { $ne: null } })],
    ['duplicated parameters', 400, () => ({ ...form({}), body: 'grant_type=client_credentials&scope=deploy&scope=read' })],
    ['a duplicated parameter as a JSON array', 400, () => json({ ...seedRequest(), client_id: [w.key.keyId, w.key.keyId] })],
    ['an empty Basic header', 401, () => ({ ...form({ grant_type: 'client_credentials' }), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' } })],
    ['a Basic header that is not base64', 401, () => ({ ...form({ grant_type: 'client_credentials' }), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ###' } })],
    ['a Bearer header on the token endpoint', 401, () => ({ ...form({ grant_type: 'client_credentials' }), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Bearer abc' } })],
    ['a secret with a bad checksum', 401, () => json({ ...seedRequest(), client_secret: `${w.key.secret.slice(0, -1)}${w.key.secret.endsWith('A') ? 'B' : 'A'}` })],
    ['a key id of another format', 401, () => json({ ...seedRequest(), client_id: 'AKIAIOSFODNN7EXAMPLE' })],
    ['a malformed percent-escape', 400, () => ({ ...form({}), body: 'grant_type=%zz' })],
    ['GET instead of POST', 405, () => ({ method: 'GET' })],
    ['a proto-pollution attempt', 400, () => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"__proto__":{"grant_type":"client_credentials"},"constructor":{"prototype":{}}}' })],
  ])('%s gets a 4xx (%i), never a 5xx, and the server stays up', async (_what, status, init) => {
    const r = await token(init());
    expect(r.status).toBe(status);
    expect(typeof r.body.error).toBe('string');
    expect((await fetch(`${w.url}/healthz`)).status).toBe(200);
    expect((await token(json(seedRequest()))).status).toBe(200);
  });

  it('answers a malformed HTTP request with 400 and stays up', async () => {
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve) => {
      const s = connect(w.server.port, '127.0.0.1', () => s.write('POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'));
      let data = '';
      s.on('data', (d: Buffer) => { data += d.toString(); });
      s.on('close', () => resolve(data));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${w.url}/healthz`)).status).toBe(200);
  });

  /** The raw answer of the server to `request`, read until it closes or answers. */
  async function raw(request: string): Promise<string> {
    const { connect } = await import('node:net');
    return new Promise<string>((resolve) => {
      const s = connect(w.server.port, '127.0.0.1', () => s.write(request));
      let data = '';
      s.on('data', (d: Buffer) => { data += d.toString(); if (/\r\n\r\n/.test(data)) s.end(); });
      s.on('error', () => resolve(data));
      s.on('close', () => resolve(data));
    });
  }

  it.each<[string, string]>([
    ['a header larger than 16 KiB', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`],
    ['an /authz query larger than 16 KiB', `GET /authz?deployment=team-a/airflow&pad=${'a'.repeat(MAX_HEADER_BYTES)} HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['a bearer token larger than 16 KiB', `GET /authz?deployment=team-a/airflow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`],
    ['thousands of small headers', `GET /healthz HTTP/1.1\r\nHost: x\r\n${'X: y\r\n'.repeat(4000)}\r\n`],
  ])('answers %s with 431 and stays up', async (_what, request) => {
    expect(await raw(request)).toMatch(/^HTTP\/1\.1 431/);
    expect((await fetch(`${w.url}/healthz`)).status).toBe(200);
  });

  it('answers /authz with a query of thousands of parameters just under the header limit without a 5xx', async () => {
    const query = `deployment=team-a/airflow&${Array.from({ length: 1500 }, (_, i) => `p${i}=1`).join('&')}`;
    const r = await fetch(`${w.url}/authz?${query}`, { headers: { authorization: `Bearer ${await getToken()}` } });
    expect(r.status).toBe(200);
  });

  it('survives clients that hang up in the middle of a body', async () => {
    const { connect } = await import('node:net');
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(w.server.port, '127.0.0.1', () => {
          s.write('POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"grant_');
          setTimeout(() => { s.resetAndDestroy(); resolve(); }, 5);
        });
      });
    }
    expect((await token(json(seedRequest()))).status).toBe(200);
  });

  it('answers unknown paths with 404', async () => {
    expect((await fetch(`${w.url}/nope`)).status).toBe(404);
  });
});

describe('brute-force protection', () => {
  const from = (address: string) => new Agent({ localAddress: address });
  let attacker: Agent;
  let legit: Agent;
  beforeEach(() => { attacker = from('127.0.0.1'); legit = from('127.0.0.2'); });
  afterEach(async () => { await attacker.close(); await legit.close(); });

  it('answers wrong secrets 429 with Retry-After after a few failures', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
    const blocked = await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker);
    expect(blocked.status).toBe(429);
    expect(blocked.body.error).toBe('slow_down');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('never throttles the right secret, even from the address that flooded wrong ones (a shared NAT)', async () => {
    for (let i = 0; i < 20; i++) await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker);
    expect((await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker)).status).toBe(429);
    expect((await token(json(seedRequest()), attacker)).status).toBe(200);
    expect((await token(json(seedRequest()), legit)).status).toBe(200);
    // Still throttled for wrong secrets afterwards: a success does not reset the attacker's count.
    expect((await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker)).status).toBe(429);
  });

  it('lets wrong secrets through to a plain 401 again once the delay has passed', async () => {
    for (let i = 0; i < 5; i++) await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker);
    const blocked = await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker);
    expect(blocked.status).toBe(429);
    await new Promise((r) => setTimeout(r, Number(blocked.headers.get('retry-after')) * 1000 + 50));
    expect((await token(json({ ...seedRequest(), client_secret: generateSecret() }), attacker)).status).toBe(401);
  });
});

describe('POST /oauth/introspect', () => {
  const introspect = (tok: string, id = w.key.keyId, secret = w.key.secret) =>
    post('/oauth/introspect', form({ token: tok }, { authorization: basic(id, secret) }));

  it('describes a live token of the caller\'s namespace', async () => {
    const t = await getToken();
    const r = await introspect(t);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      active: true, sub: w.key.keyId, client_id: w.key.keyId, aud: AUDIENCE, iss: ISSUER, scope: 'deploy read',
      token_type: 'Bearer', deployment: 'team-a/airflow',
    });
  });

  it('says only active:false about a token of another namespace', async () => {
    const r = await introspect(await getToken(), w.other.keyId, w.other.secret);
    expect(r.body).toEqual({ active: false });
  });

  it.each<[string, () => void]>([
    ['the key is deleted', () => w.store.deleteKey(w.key.keyId)],
    ['the Deployment is gone', () => w.store.deleteDeployment('team-a/airflow')],
    ['the key expired', () => w.store.putApiKey({ ...w.key.apiKey, spec: { ...w.key.apiKey.spec, expiresAt: new Date(Date.now() - 1).toISOString() } })],
    ['the secret was rotated without grace', () => w.store.putApiKey({ ...w.key.apiKey, status: { ...w.key.apiKey.status, secretHash: hashSecret(generateSecret()) } })],
    ['the grace period of its secret ended', () => w.store.putApiKey({ ...w.key.apiKey, status: {
      ...w.key.apiKey.status, secretHash: hashSecret(generateSecret()), previousSecretHash: hashSecret(w.key.secret),
      previousSecretValidUntil: new Date(Date.now() - 1).toISOString() } })],
  ])('says active:false at once when %s', async (_what, change) => {
    const t = await getToken();
    // A key of another Deployment in the same namespace asks, so that it outlives the change.
    const peerDep = deploymentObject('team-a', 'superset');
    const peer = apiKeyFixture(peerDep, 'peer');
    w.store.putDeployment(peerDep);
    w.store.putApiKey(peer.apiKey);
    expect((await introspect(t, peer.keyId, peer.secret)).body.active).toBe(true);
    change();
    const r = await introspect(t, peer.keyId, peer.secret);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ active: false });
  });

  it('keeps a token active during the grace period of the secret it was issued with', async () => {
    const t = await getToken();
    w.store.putApiKey({ ...w.key.apiKey, status: {
      ...w.key.apiKey.status, secretHash: hashSecret(generateSecret()), previousSecretHash: hashSecret(w.key.secret),
      previousSecretValidUntil: new Date(Date.now() + 60_000).toISOString() } });
    const peer = apiKeyFixture(dep, 'peer');
    w.store.putApiKey(peer.apiKey);
    expect((await introspect(t, peer.keyId, peer.secret)).body.active).toBe(true);
  });

  it.each([
    ['a token whose signature was altered', async () => { const t = await getToken(); return `${t.slice(0, -4)}AAAA`; }],
    ['garbage', () => Promise.resolve('garbage')],
  ])('says active:false about %s', async (_what, make) => {
    expect((await introspect(await make())).body).toEqual({ active: false });
  });

  it('says active:false about a token of another issuer, even one signed with the same keys', async () => {
    const other = await serve(w.store, {}, 'http://other-issuer.test');
    try {
      const r = await fetch(`http://127.0.0.1:${other.port}/oauth/token`, json(seedRequest()));
      const t = ((await r.json()) as { access_token: string }).access_token;
      expect(decodeJwt(t).iss).toBe('http://other-issuer.test');
      expect((await introspect(t)).body).toEqual({ active: false });
    } finally {
      await other.close();
    }
  });

  it('requires the caller to authenticate', async () => {
    const r = await post('/oauth/introspect', form({ token: 'x' }));
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('invalid_client');
  });

  it('requires a token parameter', async () => {
    const r = await post('/oauth/introspect', form({}, { authorization: basic(w.key.keyId, w.key.secret) }));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_request');
  });
});

describe('GET /authz (forward-auth)', () => {
  /** /authz as a proxy protecting team-a/airflow asks it (unless the query names its own target). */
  const authz = (query: string, authorization?: string) => {
    const q = new URLSearchParams(query);
    if (!q.has('deployment') && !q.has('audience')) q.set('deployment', 'team-a/airflow');
    return fetch(`${w.url}/authz?${q.toString()}`, { headers: authorization ? { authorization } : {} });
  };

  it('allows a live token with the permission, naming its subject and Deployment', async () => {
    const r = await authz('?permission=deploy', `Bearer ${await getToken()}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-auth-subject')).toBe(w.key.keyId);
    expect(r.headers.get('x-auth-deployment')).toBe('team-a/airflow');
  });

  it('asks for deploy when no permission is named, and accepts any path below /authz/ and any method', async () => {
    const t = await getToken();
    const r = await fetch(`${w.url}/authz/api/v1/dags?x=1&deployment=team-a/airflow`, { method: 'POST', headers: { authorization: `Bearer ${t}` }, body: 'ignored' });
    expect(r.status).toBe(200);
  });

  it.each<[string, number, () => Promise<string | undefined>]>([
    ['no token', 401, () => Promise.resolve(undefined)],
    ['a malformed token', 401, () => Promise.resolve('Bearer nope')],
    ['a Basic header', 401, () => Promise.resolve(basic(w.key.keyId, w.key.secret))],
    ['a token without the permission', 403, async () => {
      const r = await token(json({ ...seedRequest(), scope: 'read' }));
      return `Bearer ${r.body.access_token as string}`;
    }],
  ])('answers %s with %i', async (_what, status, header) => {
    const r = await authz('?permission=deploy', await header());
    expect(r.status).toBe(status);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  it('answers 401 at once when the key is deleted', async () => {
    const t = await getToken();
    w.store.deleteKey(w.key.keyId);
    expect((await authz('', `Bearer ${t}`)).status).toBe(401);
  });

  it('answers 403 when the proxy requires another audience or Deployment', async () => {
    const t = `Bearer ${await getToken()}`;
    expect((await authz(`?audience=${encodeURIComponent(AUDIENCE)}`, t)).status).toBe(200);
    expect((await authz('?audience=https%3A%2F%2Fother.example', t)).status).toBe(403);
    expect((await authz('?deployment=team-a%2Fairflow', t)).status).toBe(200);
    expect((await authz('?deployment=team-a%2Fother', t)).status).toBe(403);
  });

  it('answers 401 for a token naming an audience its Deployment lost to an earlier claimant, and issues none for it', async () => {
    const t = `Bearer ${await getToken()}`;
    expect((await authz('', t)).status).toBe(200);
    w.store.putDeployment(dep, [AUDIENCE]);
    expect((await authz('', t)).status).toBe(401);
    const r = await token(json(seedRequest()));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_target');
  });

  it('answers 400 for an unknown permission', async () => {
    expect((await authz('?permission=admin', `Bearer ${await getToken()}`)).status).toBe(400);
  });

  it.each([
    ['names no Deployment and no audience', '', 'deployment=namespace/name'],
    ['names only the shared default audience, which every Deployment without audiences has', `?audience=${encodeURIComponent(DEFAULT_AUDIENCE)}`, 'shared'],
    ['names a Deployment that is not namespace/name', '?deployment=airflow', 'namespace/name'],
  ])('answers 400 to a proxy that %s, saying what is missing', async (_what, query, says) => {
    const r = await fetch(`${w.url}/authz${query}`, { headers: { authorization: `Bearer ${await getToken()}` } });
    expect(r.status).toBe(400);
    const body = await r.json() as { error: string; error_description: string };
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toContain(says);
  });

  it.each([
    ['a permission a client appended behind the proxy', 'deployment=team-a/airflow&permission=deploy&permission=read'],
    ['the same permission twice', 'deployment=team-a/airflow&permission=read&permission=read'],
    ['a second Deployment', 'deployment=team-a/airflow&deployment=team-b/airflow'],
    ['a second audience', `audience=${encodeURIComponent(AUDIENCE)}&audience=${encodeURIComponent('https://second.example')}`],
    ['a repeated name that is percent-encoded', 'deployment=team-a/airflow&permission=deploy&%70ermission=read'],
  ])('answers 400 to %s, whichever copy would have won', async (_what, query) => {
    const r = await fetch(`${w.url}/authz?${query}`, { headers: { authorization: `Bearer ${await getToken()}` } });
    expect(r.status).toBe(400);
    const body = await r.json() as { error: string; error_description: string };
    expect(body).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/must not be included more than once/) as unknown });
    expect(r.headers.get('x-auth-subject')).toBeNull();
  });
});

describe('identity headers', () => {
  it.each<[string, string]>([
    ['an API key id', 'ak_01jd0000000000000000000000'],
    ['a ServiceAccount', 'system:serviceaccount:team-a:deployer'],
    ['a GitHub Actions subject', 'repo:acme/airflow-dags:ref:refs/heads/main'],
  ])('leave %s as it is', (_what, subject) => {
    expect(identityHeader(subject)).toBe(subject);
  });

  it.each<[string, string, string]>([
    ['a percent sign', 'a%41', 'a%2541'],
    ['a space', 'alice smith', 'alice%20smith'],
    ['a name in another script', 'oidc:渡辺', 'oidc:%E6%B8%A1%E8%BE%BA'],
    ['a control character', 'a\r\nX-Injected: 1', 'a%0D%0AX-Injected:%201'],
    ['a lone surrogate, not as U+FFFD', 'a\ud800', 'a%ED%A0%80'],
  ])('percent-encode %s', (_what, subject, header) => {
    expect(identityHeader(subject)).toBe(header);
  });

  it('never give two different subjects the same header value (the encoding is one-to-one)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (a, b) => {
      fc.pre(a !== b);
      expect(identityHeader(a)).not.toBe(identityHeader(b));
    }), { numRuns: 2000 });
    // The pairs the old encoding merged: a subject that looks encoded and the one it encodes.
    expect(identityHeader('a%41')).not.toBe(identityHeader('aA'));
    expect(identityHeader('%E6%B8%A1')).not.toBe(identityHeader('渡'));
  });

  it('give the subject back with decodeURIComponent, and are always a valid header value', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (subject) => {
      const header = identityHeader(subject);
      expect(header).toMatch(/^[\x21-\x7e]*$/);
      expect(decodeURIComponent(header)).toBe(subject);
    }), { numRuns: 2000 });
  });
});

describe('discovery, JWKS, health and metrics', () => {
  it.each(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'])('%s describes the endpoints', async (path) => {
    const doc = await (await fetch(w.url + path)).json() as Record<string, unknown>;
    expect(doc).toMatchObject({
      issuer: ISSUER,
      token_endpoint: `${ISSUER}/oauth/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      introspection_endpoint: `${ISSUER}/oauth/introspect`,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  });

  it('publishes the signing keys with a short cache lifetime and no private member', async () => {
    const r = await fetch(`${w.url}/.well-known/jwks.json`);
    expect(r.headers.get('cache-control')).toBe('public, max-age=60');
    const jwks = await r.json() as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([signingKeys.keys[0]!.kid]);
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('is live and ready', async () => {
    expect((await fetch(`${w.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${w.url}/readyz`)).status).toBe(200);
  });

  it.each<[string, string, string, string]>([
    ['GET', '/oauth/token', 'POST', 'invalid_request'],
    ['GET', '/oauth/introspect', 'POST', 'invalid_request'],
    ['POST', '/.well-known/jwks.json', 'GET, HEAD', 'method_not_allowed'],
    ['POST', '/readyz', 'GET, HEAD', 'method_not_allowed'],
  ])('answers %s %s with 405 and Allow: %s', async (method, path, allow, error) => {
    const r = await post(path, { method });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe(allow);
    expect(r.body.error).toBe(error);
  });

  const metricsUrl = () => `http://127.0.0.1:${w.server.metricsPort}/metrics`;

  it('serves /metrics on the metrics port only: the token port answers 404', async () => {
    expect(w.server.metricsPort).toBeGreaterThan(0);
    expect(w.server.metricsPort).not.toBe(w.server.port);
    const onTokenPort = await fetch(`${w.url}/metrics`);
    expect(onTokenPort.status).toBe(404);
    expect(await onTokenPort.text()).not.toContain('apikey_operator_');
    const onMetricsPort = await fetch(metricsUrl());
    expect(onMetricsPort.status).toBe(200);
    expect(onMetricsPort.headers.get('content-type')).toContain('text/plain');
  });

  it.each<[string, string, number]>([
    ['POST', '/metrics', 405],
    ['GET', '/oauth/token', 404],
    ['GET', '/healthz', 404],
  ])('answers %s %s on the metrics port with %i', async (method, path, status) => {
    const r = await fetch(`http://127.0.0.1:${w.server.metricsPort}${path}`, { method });
    expect(r.status).toBe(status);
  });

  it('counts tokens and failures with bounded labels only, never a key id or secret', async () => {
    await getToken();
    await token(json({ ...seedRequest(), client_secret: generateSecret() }));
    const text = await (await fetch(metricsUrl())).text();
    expect(text).toMatch(/apikey_operator_tokens_issued_total\{grant_type="client_credentials"\} 1/);
    expect(text).toMatch(/apikey_operator_token_failures_total\{reason="wrong_secret"\} 1/);
    expect(text).toMatch(/apikey_operator_token_server_request_duration_seconds_count\{route="token",code="200"\} 1/);
    expect(text).toMatch(/apikey_operator_token_server_cached_objects\{resource="apikeys"\} 2/);
    expect(text).not.toContain(w.key.keyId);
    expect(text).not.toContain('aks_');
  });
});

describe('a server without signing keys', () => {
  let server: RunningTokenServer;
  afterAll(async () => { await server.close(); });

  it('is not ready and answers token requests with 503 temporarily_unavailable', async () => {
    server = await serve(new MemoryKeyStore({ deployments: [dep], apiKeys: [w.key.apiKey] }));
    const url = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const r = await fetch(`${url}/oauth/token`, json(seedRequest()));
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: string }).error).toBe('temporarily_unavailable');
  });
});
