/**
 * The federated token exchange in process, over real HTTP, with a
 * MemoryKeyStore and the issuer's keys given as a local key set (test/
 * federation.test.ts does it against the real control plane and an HTTPS
 * issuer). Without a Kubernetes reviewer: federation alone turns the grant on.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { createLocalJWKSet, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { oauthServer, proofKey } from '../../../test/support/dpop.ts';
import type { FederatedCredential, FederatedCredentialSpec } from '../../api/index.ts';
import { API_VERSION, TOKEN_EXCHANGE_GRANT } from '../../api/index.ts';
import { createLogger } from '../../shared/log.ts';
import { DEFAULT_ROTATION, planSigningKeys, type SigningKeySet } from '../../shared/signing-keys.ts';
import { apiKeyFixture, deploymentObject } from '../fixtures.ts';
import { IssuerKeys } from '../issuer-keys.ts';
import { startTokenServer, type RunningTokenServer } from '../main.ts';
import { MemoryKeyStore } from '../memory-key-store.ts';
import { FEDERATED_REFUSAL } from './federated-exchange.ts';
import { MAX_EXTERNAL_TOKEN_BYTES } from '../../federation/claims-expression.ts';

const ISSUER = 'http://token-server.test';
const GITHUB = 'https://token.actions.githubusercontent.com';
const AUDIENCE = 'https://airflow.example';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const SUBJECT = 'repo:acme/airflow-dags:ref:refs/heads/main';
const log = createLogger({ level: 'silent' });

const dep = deploymentObject('team-a', 'airflow', { audiences: [AUDIENCE], maxTokenTTL: '24h' });
const other = deploymentObject('team-b', 'airflow', { audiences: ['https://other.example'] });
const sibling = deploymentObject('team-a', 'sibling', { audiences: ['https://sibling.example'] });
// Of another Deployment of the namespace, so that it outlives team-a/airflow.
const observer = apiKeyFixture(sibling, 'observer');

function credential(name: string, spec: Partial<FederatedCredentialSpec> = {}, owner = dep): FederatedCredential {
  return {
    apiVersion: API_VERSION, kind: 'FederatedCredential',
    metadata: {
      namespace: owner.metadata.namespace, name, uid: `uid-${name}`, creationTimestamp: new Date('2026-01-01T00:00:00Z'),
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'Deployment', name: owner.metadata.name!, uid: owner.metadata.uid! }],
    },
    spec: { deploymentRef: { name: owner.metadata.name! }, issuer: GITHUB, subject: SUBJECT, permissions: ['deploy', 'read'], tokenTTL: '20m', ...spec },
  };
}

let signingKeys: SigningKeySet;
let githubKey: CryptoKey;
let keySet: ReturnType<typeof createLocalJWKSet>;
let server: RunningTokenServer;
let store: MemoryKeyStore;
let url: string;

beforeAll(async () => {
  signingKeys = await planSigningKeys(undefined, DEFAULT_ROTATION);
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  githubKey = privateKey;
  keySet = createLocalJWKSet({ keys: [{ ...await exportJWK(publicKey), kid: 'gh', alg: 'ES256' }] });
});

beforeEach(async () => {
  store = new MemoryKeyStore({
    deployments: [dep, other, sibling], apiKeys: [observer.apiKey], signingKeys,
    federatedCredentials: [credential('ci'), credential('evil', { subject: undefined, claims: "claims.repository == 'evil/repo'" }, other)],
  });
  const federation = new IssuerKeys({ issuers: new Set([GITHUB]), log, keySets: new Map([[GITHUB, keySet]]) });
  server = await startTokenServer({
    kc: new KubeConfig(), port: 0, metricsPort: 0, host: '127.0.0.1', issuer: ISSUER, audiences: ['https://default.example'],
    operatorNamespace: 'op', namespaces: [], logLevel: 'silent',
  }, { store, log, defaultMetrics: false, federation });
  url = `http://127.0.0.1:${server.port}`;
});

afterEach(async () => { await server.close(); });

const now = () => Math.floor(Date.now() / 1000);
const githubClaims = (extra: JWTPayload = {}): JWTPayload => ({
  iss: GITHUB, aud: ISSUER, sub: SUBJECT, repository: 'acme/airflow-dags', ref: 'refs/heads/main', iat: now(), nbf: now() - 5, exp: now() + 300, ...extra,
});
const mint = (claims: JWTPayload = githubClaims()) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'gh' }).sign(githubKey);

async function post(path: string, body: Record<string, string>, headers: Record<string, string> = {}) {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });
  const text = await r.text();
  return { status: r.status, text, body: JSON.parse(text) as Record<string, unknown> };
}
const exchange = async (token?: string, extra: Record<string, string> = {}) => post('/oauth/token', {
  grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token ?? await mint(), subject_token_type: JWT_TYPE, deployment: 'team-a/airflow', ...extra,
});
const introspect = (token: string) => post('/oauth/introspect', { token }, {
  authorization: `Basic ${Buffer.from(`${observer.keyId}:${observer.secret}`).toString('base64')}`,
});

describe('the federated token exchange', () => {
  it('refuses a subject token longer than 12 KiB before decoding it, though it would match', async () => {
    const fits = await mint(githubClaims({ pad: 'x'.repeat(6000) }));
    const over = await mint(githubClaims({ pad: 'x'.repeat(9300) }));
    expect(over.length).toBeGreaterThan(MAX_EXTERNAL_TOKEN_BYTES);
    expect((await exchange(fits)).status).toBe(200);
    const r = await exchange(over);
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: 'invalid_grant', error_description: FEDERATED_REFUSAL });
  });

  it('issues the RFC 9068 token of the Deployment through the matching credential', async () => {
    const r = await exchange();
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 1200, scope: 'deploy read' });
    expect(decodeJwt(r.body.access_token as string)).toMatchObject({
      iss: ISSUER, sub: SUBJECT, client_id: 'federated:team-a/ci', federated_issuer: GITHUB, aud: AUDIENCE,
      deployment: 'team-a/airflow', deployment_uid: dep.metadata.uid,
    });
  });

  it.each<[string, () => Promise<string>, Record<string, string>?]>([
    ['another branch', () => mint(githubClaims({ sub: 'repo:acme/airflow-dags:ref:refs/heads/dev' }))],
    ['a token of another Deployment\'s credential', () => mint(githubClaims({ sub: 'repo:evil/repo:ref:refs/heads/main', repository: 'evil/repo' }))],
    ['a Deployment that does not exist', () => mint(), { deployment: 'team-a/nowhere' }],
    ['a token without iat', () => mint(githubClaims({ iat: undefined }))],
    ['a subject shaped like an API key id', async () => {
      store.putFederatedCredential(credential('keyish', { subject: undefined, claims: "claims.repository == 'keyish'" }));
      return mint(githubClaims({ sub: observer.keyId, repository: 'keyish' }));
    }],
  ])('refuses %s with the one refusal', async (_what, token, extra) => {
    const r = await exchange(await token(), extra);
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: 'invalid_grant', error_description: FEDERATED_REFUSAL });
  });

  it('refuses a scope beyond the credential\'s permissions', async () => {
    store.putFederatedCredential(credential('ci', { permissions: ['read'] }));
    expect((await exchange(undefined, { scope: 'deploy' })).body.error).toBe('invalid_scope');
  });

  it('is answered unsupported_token_type for an id_token when federation is off', async () => {
    await server.close();
    server = await startTokenServer({
      kc: new KubeConfig(), port: 0, metricsPort: 0, host: '127.0.0.1', issuer: ISSUER, audiences: [], operatorNamespace: 'op', namespaces: [], logLevel: 'silent',
    }, { store, log, defaultMetrics: false, reviewer: { authenticate: () => Promise.resolve(undefined), mayCreate: () => Promise.resolve(false) } });
    url = `http://127.0.0.1:${server.port}`;
    const r = await exchange(undefined, { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' });
    expect(r.body.error).toBe('invalid_request');
    expect(r.body.error_description).toContain('--federation-issuers');
  });
});

describe('a federated token at introspection', () => {
  it.each<[string, () => void]>([
    ['its credential is deleted', () => store.deleteFederatedCredential('team-a/ci')],
    ['its credential is re-created under the same name', () => store.putFederatedCredential({ ...credential('ci'), metadata: { ...credential('ci').metadata, uid: 'another' } })],
    ['its Deployment is deleted', () => store.deleteDeployment('team-a/airflow')],
  ])('is inactive once %s', async (_what, change) => {
    const t = (await exchange()).body.access_token as string;
    expect((await introspect(t)).body).toMatchObject({ active: true, client_id: 'federated:team-a/ci', federated_issuer: GITHUB });
    change();
    expect((await introspect(t)).body).toEqual({ active: false });
  });
});

describe('a federated exchange with DPoP (RFC 9449), through oauth4webapi', () => {
  const { as, options } = oauthServer(ISSUER, () => url);
  const o4wExchange = async (dpop?: oauth.DPoPHandle) => oauth.processGenericTokenEndpointResponse(as, { client_id: 'ci' },
    await oauth.genericTokenEndpointRequest(as, { client_id: 'ci' }, oauth.None(), TOKEN_EXCHANGE_GRANT, {
      subject_token: await mint(), subject_token_type: JWT_TYPE, deployment: 'team-a/airflow',
    }, { ...options, DPoP: dpop }));

  it('binds the token to the proof key, and introspection shows it', async () => {
    const dpop = oauth.DPoP({}, (await proofKey()).pair);
    const t = await o4wExchange(dpop);
    expect(t.token_type).toBe('dpop');
    const jkt = await dpop.calculateThumbprint();
    expect(decodeJwt(t.access_token)).toMatchObject({ client_id: 'federated:team-a/ci', cnf: { jkt } });
    expect((await introspect(t.access_token)).body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
  });

  it('refuses a bearer exchange through a credential that requires DPoP, and its bearer tokens issued before', async () => {
    const before = (await o4wExchange()).access_token;
    store.putFederatedCredential(credential('ci', { requireDPoP: true }));
    const r = await exchange();
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_dpop_proof');
    expect((await introspect(before)).body).toEqual({ active: false });
    expect((await o4wExchange(oauth.DPoP({}, (await proofKey()).pair))).token_type).toBe('dpop');
  });
});
