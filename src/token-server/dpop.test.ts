/**
 * DPoP (RFC 9449) at the token endpoint and introspection, in process over
 * real HTTP with a MemoryKeyStore: oauth4webapi (a strict third-party
 * client) gets DPoP-bound tokens and handles nonces; proofs made with jose
 * play every attack, each refused. The issuer is a name (http://issuer.test)
 * that the client reaches through a rewrite, as behind an ingress, so proofs
 * name the issuer's URL while the TCP connection goes to 127.0.0.1.
 * Token exchange and federated exchanges with DPoP: grants/*.test.ts; the
 * real control plane: test/dpop.test.ts.
 */
import { request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log.ts';
import { DEFAULT_ROTATION, planSigningKeys, type SigningKeySet } from '../shared/signing-keys.ts';
import { makeProof, oauthServer, proofKey, unsignedProof, type ProofKey } from '../../test/support/dpop.ts';
import { IAT_FUTURE_SECONDS, IAT_PAST_SECONDS } from './dpop-proof.ts';
import { apiKeyFixture, deploymentObject, type KeyFixture } from './fixtures.ts';
import { startTokenServer, type RunningTokenServer } from './main.ts';
import { MemoryKeyStore } from './memory-key-store.ts';
import { TrustedProxies } from './proxies.ts';

const ISSUER = 'http://issuer.test';
const TOKEN_URL = `${ISSUER}/oauth/token`;
const AUDIENCE = 'https://api.example';
const log = createLogger({ level: 'silent' });

const dep = deploymentObject('team-a', 'airflow', { audiences: [AUDIENCE] });
const strictDep = deploymentObject('team-a', 'strict', { audiences: ['https://strict.example'], requireDPoP: true });

let signingKeys: SigningKeySet;
let keyA: ProofKey;
let keyB: ProofKey;
beforeAll(async () => {
  signingKeys = await planSigningKeys(undefined, DEFAULT_ROTATION);
  [keyA, keyB] = await Promise.all([proofKey('ES256'), proofKey('EdDSA')]);
});

let server: RunningTokenServer | undefined;
let base = '';
afterEach(async () => { await server?.close(); server = undefined; });

interface Keys { ci: KeyFixture; strict: KeyFixture; ofStrictDep: KeyFixture }

async function serve(opts: { requireNonce?: boolean; replayCacheSize?: number; trustedProxies?: string[]; tokenUrls?: string[] } = {}): Promise<Keys> {
  const keys: Keys = {
    ci: apiKeyFixture(dep, 'ci', { spec: { permissions: ['deploy', 'read'] } }),
    strict: apiKeyFixture(dep, 'strict', { spec: { requireDPoP: true } }),
    ofStrictDep: apiKeyFixture(strictDep, 'ci'),
  };
  const store = new MemoryKeyStore({ deployments: [dep, strictDep], apiKeys: [keys.ci, keys.strict, keys.ofStrictDep].map((k) => k.apiKey), signingKeys });
  server = await startTokenServer({
    kc: new KubeConfig(), port: 0, host: '127.0.0.1', issuer: ISSUER, audiences: ['https://default.example'],
    operatorNamespace: 'op', namespaces: [], logLevel: 'silent',
    dpopRequireNonce: opts.requireNonce, dpopReplayCacheSize: opts.replayCacheSize, dpopTokenUrls: opts.tokenUrls,
    trustedProxies: new TrustedProxies(opts.trustedProxies ?? ['127.0.0.1']),
  }, { store, log, defaultMetrics: false });
  base = `http://127.0.0.1:${server.port}`;
  return keys;
}

const { as, options } = oauthServer(ISSUER, () => base);

/** A client credentials request as oauth4webapi makes it, with DPoP when `dpop` is given. */
async function o4wToken(key: KeyFixture, dpop?: oauth.DPoPHandle): Promise<oauth.TokenEndpointResponse> {
  const client = { client_id: key.keyId };
  const request = () => oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(key.secret), {}, { ...options, DPoP: dpop });
  return oauth.processClientCredentialsResponse(as, client, await request());
}

/** A raw client credentials request with the given DPoP header(s). */
async function rawToken(key: KeyFixture, dpop: string | string[] | undefined) {
  const headers = new Headers({
    'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${key.keyId}:${key.secret}`).toString('base64')}`,
  });
  for (const d of dpop === undefined ? [] : Array.isArray(dpop) ? dpop : [dpop]) headers.append('dpop', d);
  const r = await fetch(`${base}/oauth/token`, { method: 'POST', headers, body: 'grant_type=client_credentials' });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: JSON.parse(text) as Record<string, unknown> };
}

async function introspect(caller: KeyFixture, token: string): Promise<Record<string, unknown>> {
  const r = await fetch(`${base}/oauth/introspect`, {
    method: 'POST', body: new URLSearchParams({ token }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${caller.keyId}:${caller.secret}`).toString('base64')}` },
  });
  return await r.json() as Record<string, unknown>;
}

describe('DPoP at the token endpoint, with oauth4webapi', () => {
  it('binds a client credentials token to the proof key: token_type DPoP, cnf.jkt the RFC 7638 thumbprint', async () => {
    const keys = await serve();
    const dpop = oauth.DPoP({}, keyA.pair);
    const t = await o4wToken(keys.ci, dpop);
    expect(t.token_type).toBe('dpop');
    expect(decodeJwt(t.access_token).cnf).toEqual({ jkt: await dpop.calculateThumbprint() });
    expect(await introspect(keys.ci, t.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: await dpop.calculateThumbprint() } });
  });

  it('takes proofs of an Ed25519 key (EdDSA) as well', async () => {
    const keys = await serve();
    const dpop = oauth.DPoP({}, keyB.pair);
    const t = await o4wToken(keys.ci, dpop);
    expect(decodeJwt(t.access_token).cnf).toEqual({ jkt: await dpop.calculateThumbprint() });
  });

  it('still issues bearer tokens without a proof, with no cnf', async () => {
    const keys = await serve();
    const t = await o4wToken(keys.ci);
    expect(t.token_type).toBe('bearer');
    expect(decodeJwt(t.access_token).cnf).toBeUndefined();
    expect(await introspect(keys.ci, t.access_token)).toMatchObject({ active: true, token_type: 'Bearer' });
    expect((await introspect(keys.ci, t.access_token)).cnf).toBeUndefined();
  });

  it('with --dpop-require-nonce, answers use_dpop_nonce with a DPoP-Nonce, which oauth4webapi retries with', async () => {
    const keys = await serve({ requireNonce: true });
    const dpop = oauth.DPoP({}, keyA.pair);
    let nonceError: unknown;
    try {
      await o4wToken(keys.ci, dpop);
    } catch (err) {
      nonceError = err;
    }
    expect(oauth.isDPoPNonceError(nonceError)).toBe(true);
    const t = await o4wToken(keys.ci, dpop);
    expect(t.token_type).toBe('dpop');
    expect(decodeJwt(t.access_token).cnf).toEqual({ jkt: await dpop.calculateThumbprint() });
  });

  it('accepts a proof with a nonce of an earlier answer, and refuses a made-up nonce with a fresh one', async () => {
    const keys = await serve({ requireNonce: true });
    const first = await rawToken(keys.ci, await makeProof(keyA, { url: TOKEN_URL }));
    expect(first.status).toBe(400);
    expect(first.body.error).toBe('use_dpop_nonce');
    const nonce = first.headers.get('dpop-nonce')!;
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const made = await rawToken(keys.ci, await makeProof(keyA, { url: TOKEN_URL, nonce: 'made-up' }));
    expect(made.status).toBe(400);
    expect(made.body.error).toBe('use_dpop_nonce');
    expect(made.headers.get('dpop-nonce')).toBe(nonce);
    const ok = await rawToken(keys.ci, await makeProof(keyA, { url: TOKEN_URL, nonce }));
    expect(ok.status).toBe(200);
    expect(ok.body.token_type).toBe('DPoP');
  });
});

describe('DPoP proofs the token endpoint refuses (invalid_dpop_proof, 400, no token)', () => {
  const now = () => Math.floor(Date.now() / 1000);
  it.each<[string, () => Promise<string | string[]>]>([
    ['a proof for another URL', () => makeProof(keyA, { url: 'http://issuer.test/oauth/introspect' })],
    ['a proof for another host', () => makeProof(keyA, { url: 'http://127.0.0.1/oauth/token' })],
    ['a proof for another method', () => makeProof(keyA, { url: TOKEN_URL, method: 'GET' })],
    ['a stale proof (iat too old)', () => makeProof(keyA, { url: TOKEN_URL, iat: now() - IAT_PAST_SECONDS - 5 })],
    ['a proof from the future', () => makeProof(keyA, { url: TOKEN_URL, iat: now() + IAT_FUTURE_SECONDS + 30 })],
    ['an unsigned proof (alg none)', () => Promise.resolve(unsignedProof(keyA, TOKEN_URL))],
    ['a proof of the wrong typ', () => makeProof(keyA, { url: TOKEN_URL, typ: 'JWT' })],
    ['a proof without jti', () => makeProof(keyA, { url: TOKEN_URL, claims: { jti: undefined } })],
    ['two DPoP headers', async () => [await makeProof(keyA, { url: TOKEN_URL }), await makeProof(keyA, { url: TOKEN_URL })]],
    ['a proof that is not a JWS', () => Promise.resolve('not-a-proof')],
    ['a proof of 5000 bytes', () => Promise.resolve('a'.repeat(5000))],
  ])('refuses %s', async (_what, proof) => {
    const keys = await serve();
    const r = await rawToken(keys.ci, await proof());
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_dpop_proof');
    expect(r.body.access_token).toBeUndefined();
  });

  it('takes a proof for a URL of --dpop-token-urls (the in-cluster TOKEN_URL), and no other', async () => {
    const inCluster = 'http://apikey-operator-token.op.svc:8080/oauth/token';
    const keys = await serve({ tokenUrls: [inCluster] });
    expect((await rawToken(keys.ci, await makeProof(keyA, { url: inCluster }))).status).toBe(200);
    expect((await rawToken(keys.ci, await makeProof(keyA, { url: TOKEN_URL }))).status).toBe(200);
    const other = await rawToken(keys.ci, await makeProof(keyA, { url: 'http://elsewhere.op.svc:8080/oauth/token' }));
    expect(other.status).toBe(400);
    expect(other.body.error).toBe('invalid_dpop_proof');
  });

  it('refuses a proof signed by another key than the one in its jwk', async () => {
    const keys = await serve();
    const other = await proofKey('ES256');
    const r = await rawToken(keys.ci, await makeProof(other, { url: TOKEN_URL, jwk: keyA.publicJwk }));
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('signature') as string });
  });

  it('refuses a proof made with a shared secret (HS256) and one whose jwk carries the private key', async () => {
    const keys = await serve();
    const { SignJWT, exportJWK } = await import('jose');
    const hs = await new SignJWT({ jti: 'x', htm: 'POST', htu: TOKEN_URL, iat: now() })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct' } }).sign(new TextEncoder().encode('secret'));
    const withPrivate = await makeProof(keyA, { url: TOKEN_URL, jwk: await exportJWK(keyA.privateKey) });
    for (const proof of [hs, withPrivate]) {
      const r = await rawToken(keys.ci, proof);
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_dpop_proof');
    }
  });

  it('refuses a replayed proof (the same jti), and takes the next one', async () => {
    const keys = await serve();
    const proof = await makeProof(keyA, { url: TOKEN_URL });
    expect((await rawToken(keys.ci, proof)).status).toBe(200);
    const replay = await rawToken(keys.ci, proof);
    expect(replay.status).toBe(400);
    expect(replay.body).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('used before') as string });
    expect((await rawToken(keys.ci, await makeProof(keyA, { url: TOKEN_URL }))).status).toBe(200);
  });

  it('does not spend a proof on a request whose client fails to authenticate', async () => {
    const keys = await serve();
    const proof = await makeProof(keyA, { url: TOKEN_URL });
    const wrong = await rawToken({ ...keys.ci, secret: `${keys.ci.secret.slice(0, -2)}xx` }, proof);
    expect(wrong.status).toBe(401);
    expect((await rawToken(keys.ci, proof)).status).toBe(200);
  });

});

describe('spec.requireDPoP', () => {
  it('refuses a bearer request for a key that requires DPoP, and binds its DPoP request', async () => {
    const keys = await serve();
    const bearer = await rawToken(keys.strict, undefined);
    expect(bearer.status).toBe(400);
    expect(bearer.body).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringContaining('requires DPoP') as string });
    const t = await o4wToken(keys.strict, oauth.DPoP({}, keyA.pair));
    expect(t.token_type).toBe('dpop');
  });

  it('refuses a bearer request for a key whose Deployment requires DPoP', async () => {
    const keys = await serve();
    const r = await rawToken(keys.ofStrictDep, undefined);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_dpop_proof');
    expect((await rawToken(keys.ofStrictDep, await makeProof(keyA, { url: TOKEN_URL }))).status).toBe(200);
  });
});

describe('bearer tokens of a credential that comes to require DPoP', () => {
  it('are no longer active at introspection once the key requires DPoP', async () => {
    const keys = await serve();
    const bearer = (await o4wToken(keys.ci)).access_token;
    const bound = (await o4wToken(keys.ci, oauth.DPoP({}, keyA.pair))).access_token;
    expect(await introspect(keys.strict, bearer)).toMatchObject({ active: true });
    await server!.close();
    server = undefined;
    // The same key, now with spec.requireDPoP.
    const strictCi = { ...keys.ci, apiKey: { ...keys.ci.apiKey, spec: { ...keys.ci.apiKey.spec, requireDPoP: true } } };
    const s = new MemoryKeyStore({ deployments: [dep, strictDep], apiKeys: [strictCi.apiKey, keys.strict.apiKey], signingKeys });
    server = await startTokenServer({
      kc: new KubeConfig(), port: 0, host: '127.0.0.1', issuer: ISSUER, audiences: ['https://default.example'],
      operatorNamespace: 'op', namespaces: [], logLevel: 'silent',
    }, { store: s, log, defaultMetrics: false });
    base = `http://127.0.0.1:${server.port}`;
    expect(await introspect(keys.strict, bearer)).toEqual({ active: false });
    expect(await introspect(keys.strict, bound)).toMatchObject({ active: true, token_type: 'DPoP' });
  });
});

describe('/authz with DPoP-bound tokens (the proxy forwards the proof, the method and the URL)', () => {
  const APP = 'https://app.example/api/runs';

  /** What oauth4webapi sends to the protected app for `method url`: its Authorization and DPoP headers. */
  async function clientRequest(token: string, dpop: oauth.DPoPHandle, method = 'GET', url = `${APP}?page=2`): Promise<Headers> {
    let sent: Headers | undefined;
    await oauth.protectedResourceRequest(token, method, new URL(url), new Headers(), null, {
      DPoP: dpop,
      [oauth.customFetch]: (_u: string, init: RequestInit) => { sent = new Headers(init.headers); return Promise.resolve(new Response('{}')); },
    });
    return sent!;
  }

  /** The proxy's question to /authz, Traefik style, about a client request to `method url`. */
  async function authz(client: Headers, forwarded: Record<string, string> = {}, path = '/authz?deployment=team-a/airflow') {
    const headers: Record<string, string> = {
      'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example', 'x-forwarded-uri': '/api/runs?page=2', ...forwarded,
    };
    for (const name of ['authorization', 'dpop']) if (client.has(name)) headers[name] = client.get(name)!;
    const r = await fetch(base + path, { headers });
    return { status: r.status, challenge: r.headers.get('www-authenticate') ?? '', body: await r.json() as Record<string, unknown> };
  }

  async function boundToken(keys: Keys, key = keyA) {
    const dpop = oauth.DPoP({}, key.pair);
    return { dpop, token: (await o4wToken(keys.ci, dpop)).access_token };
  }

  it('allows a bound token with a proof of its key for the forwarded request, made by oauth4webapi', async () => {
    const keys = await serve();
    const { dpop, token } = await boundToken(keys);
    const sent = await clientRequest(token, dpop);
    expect(sent.get('authorization')).toBe(`DPoP ${token}`);
    const r = await authz(sent);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });

  it('reads nginx\'s X-Original-Method and X-Original-URL, and Envoy\'s own method and path below /authz/', async () => {
    const keys = await serve();
    const { dpop, token } = await boundToken(keys);
    const nginx = await clientRequest(token, dpop, 'POST');
    const r = await fetch(`${base}/authz?deployment=team-a/airflow`, {
      headers: { authorization: nginx.get('authorization')!, dpop: nginx.get('dpop')!, 'x-original-method': 'POST', 'x-original-url': `${APP}?page=2` },
    });
    expect(r.status).toBe(200);
    // Envoy's ext_authz keeps the method, prefixes the path and keeps Host, which fetch() cannot set: node:http.
    const envoy = await clientRequest(token, dpop, 'PUT');
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpRequest(`${base}/authz/api/runs?page=2&deployment=team-a/airflow`, {
        method: 'PUT',
        headers: { authorization: envoy.get('authorization')!, dpop: envoy.get('dpop')!, host: 'app.example', 'x-forwarded-proto': 'https' },
      }, (res) => { res.resume(); resolve(res.statusCode); });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
  });

  it.each<[string, (keys: Keys) => Promise<{ sent: Headers; forwarded?: Record<string, string> }>, string]>([
    ['a replayed proof (the same jti)', async (keys) => {
      const { dpop, token } = await boundToken(keys);
      const sent = await clientRequest(token, dpop);
      expect((await authz(sent)).status).toBe(200);
      return { sent };
    }, 'invalid_dpop_proof'],
    ['a proof for another URL', async (keys) => {
      const { dpop, token } = await boundToken(keys);
      return { sent: await clientRequest(token, dpop, 'GET', 'https://app.example/api/other') };
    }, 'invalid_dpop_proof'],
    ['a proof for another host', async (keys) => {
      const { dpop, token } = await boundToken(keys);
      return { sent: await clientRequest(token, dpop), forwarded: { 'x-forwarded-host': 'evil.example' } };
    }, 'invalid_dpop_proof'],
    ['a proof for another method', async (keys) => {
      const { dpop, token } = await boundToken(keys);
      return { sent: await clientRequest(token, dpop, 'DELETE') };
    }, 'invalid_dpop_proof'],
    ['a token bound to key A with a proof of key B', async (keys) => {
      const { token } = await boundToken(keys, keyA);
      return { sent: await clientRequest(token, oauth.DPoP({}, keyB.pair)) };
    }, 'invalid_dpop_proof'],
    ['a proof made for another token (ath)', async (keys) => {
      const { dpop, token } = await boundToken(keys);
      const other = (await o4wToken(keys.ci, dpop)).access_token;
      const sent = await clientRequest(other, dpop);
      sent.set('authorization', `DPoP ${token}`);
      return { sent };
    }, 'invalid_dpop_proof'],
    ['a stale proof', async (keys) => {
      const { token } = await boundToken(keys);
      const proof = await makeProof(keyA, { method: 'GET', url: APP, accessToken: token, iat: Math.floor(Date.now() / 1000) - IAT_PAST_SECONDS - 5 });
      return { sent: new Headers({ authorization: `DPoP ${token}`, dpop: proof }) };
    }, 'invalid_dpop_proof'],
    ['a bound token without a proof', async (keys) => {
      const { token } = await boundToken(keys);
      return { sent: new Headers({ authorization: `DPoP ${token}` }) };
    }, 'invalid_dpop_proof'],
    ['a bound token presented as Bearer', async (keys) => {
      const { dpop, token } = await boundToken(keys);
      const sent = await clientRequest(token, dpop);
      sent.set('authorization', `Bearer ${token}`);
      return { sent };
    }, 'invalid_token'],
    ['a bearer token presented as DPoP', async (keys) => {
      const token = (await o4wToken(keys.ci)).access_token;
      const sent = await clientRequest(token, oauth.DPoP({}, keyA.pair));
      return { sent };
    }, 'invalid_token'],
  ])('refuses %s (401)', async (_what, setup, error) => {
    const keys = await serve();
    const { sent, forwarded } = await setup(keys);
    const r = await authz(sent, forwarded);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe(error);
    expect(r.challenge).toMatch(new RegExp(`^DPoP .*error="${error}"`));
  });

  it('does not ask for a nonce at /authz, even with --dpop-require-nonce: the client holds the token endpoint\'s nonces, not the app\'s', async () => {
    const keys = await serve({ requireNonce: true });
    const dpop = oauth.DPoP({}, keyA.pair);
    const t = await o4wToken(keys.ci, dpop).catch(() => o4wToken(keys.ci, dpop));
    expect((await authz(await clientRequest(t.access_token, dpop))).status).toBe(200);
  });

  it('believes the forwarded method and URL only from a proxy in --trusted-proxies', async () => {
    const keys = await serve({ trustedProxies: ['192.0.2.1'] });
    const { dpop, token } = await boundToken(keys);
    const r = await authz(await clientRequest(token, dpop));
    expect(r.status).toBe(401);
    expect(r.body.error_description).toMatch(/--trusted-proxies/);
  });

  it('still allows bearer tokens as before, and challenges with both schemes when there is no token', async () => {
    const keys = await serve();
    const token = (await o4wToken(keys.ci)).access_token;
    expect((await authz(new Headers({ authorization: `Bearer ${token}` }))).status).toBe(200);
    const none = await authz(new Headers());
    expect(none.status).toBe(401);
    expect(none.challenge).toMatch(/^Bearer realm="apikey-operator", DPoP realm="apikey-operator", algs="ES256 /);
  });
});
