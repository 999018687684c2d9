/**
 * A private federation issuer: another Kubernetes cluster's ServiceAccount
 * issuer. Cluster B is a second control plane from the test bed; its
 * published JWKS (/openid/v1/jwks) is given to cluster A's token server as a
 * file (--federation-issuer-jwks), as a mounted Secret would be, and a Pod
 * identity of B (a TokenRequest bound to a Pod of B) gets a Deployment token
 * of A through a FederatedCredential. The token server never contacts B; the
 * controller allows B's issuer without reading the file.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest, down, up, type ClusterState } from './cluster/controlplane.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { MAIN, recordSecret, startController, startProcess, startTokenServer, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import { createDeployment, createFederatedCredential, getFederatedCredential, readyOf, uniqueAudience } from './support/resources.ts';
import { form, postFrom, scrapeMetrics, type Answer } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** The audience the FederatedCredential wants, and B's TokenRequest asks for. */
const FED_AUDIENCE = 'https://cluster-a.example.test/apikey-operator';
const AUDIENCE = uniqueAudience('private-issuer');

let b: ClusterState;
let dir: string;
let bIssuer: string;
let bJwks: { keys: JWK[] };
let jwksFile: string;
let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
/** A key that is not B's, for tokens that claim B's issuer. */
let other: { privateKey: CryptoKey; jwk: JWK };

/** An admin request to cluster B; throws on anything but 2xx. */
async function inB<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await adminRequest(b, method, path, body);
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} on cluster B: ${r.status} ${r.body.slice(0, 300)}`);
  return JSON.parse(r.body) as T;
}

/** A TokenRequest in cluster B for ServiceAccount ci/builder, bound to the Pod ci/builder-pod. */
async function podToken(audiences = [FED_AUDIENCE]): Promise<string> {
  const pod = await inB<{ metadata: { uid: string } }>('GET', '/api/v1/namespaces/ci/pods/builder-pod');
  const tr = await inB<{ status: { token: string } }>('POST', '/api/v1/namespaces/ci/serviceaccounts/builder/token', {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    spec: { audiences, expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'builder-pod', uid: pod.metadata.uid } },
  });
  recordSecret(tr.status.token);
  return tr.status.token;
}

/** A token shaped like B's, claiming B's issuer, but signed with `other`'s key. */
async function otherToken(): Promise<string> {
  const real = decodeJwt(await podToken());
  const t = await new SignJWT({ ...real, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 })
    .setProtectedHeader({ alg: 'ES256', kid: other.jwk.kid! }).sign(other.privateKey);
  recordSecret(t);
  return t;
}

/** Each exchange from a loopback address of its own: the refusals this file provokes on purpose never throttle the next request. */
let nextAddress = 0;
const newAddress = () => `127.0.${Math.floor(nextAddress / 250) + 1}.${(nextAddress++ % 250) + 2}`;

async function exchange(subjectToken: string): Promise<Answer> {
  const r = await postFrom(newAddress(), `${server.url}/oauth/token`, form({
    grant_type: EXCHANGE, subject_token: subjectToken, subject_token_type: JWT_TYPE, deployment: `${ns.name}/airflow`,
  }));
  if (typeof r.body.access_token === 'string') recordSecret(r.body.access_token);
  return r;
}

/** Replaces the JWKS file the way a Secret or ConfigMap volume does: a new file swapped in at once. */
function writeJwks(content: string): void {
  const tmp = `${jwksFile}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, jwksFile);
}

const accepted = async (token: () => Promise<string>) => (await exchange(await token())).status === 200;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'private-issuer-'));
  b = await up(join(dir, 'cluster-b'), { log: () => undefined });
  const discovery = await inB<{ issuer: string; jwks_uri: string }>('GET', '/.well-known/openid-configuration');
  bIssuer = discovery.issuer;
  bJwks = await inB<{ keys: JWK[] }>('GET', '/openid/v1/jwks');
  jwksFile = join(dir, 'cluster-b.jwks.json');
  writeJwks(JSON.stringify(bJwks));
  await inB('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ci' } });
  await inB('POST', '/api/v1/namespaces/ci/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'builder' } });
  // B has no node: the Pod stays Pending, which is all a Pod-bound token needs of it.
  await inB('POST', '/api/v1/namespaces/ci/pods', {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'builder-pod' },
    spec: { serviceAccountName: 'builder', containers: [{ name: 'build', image: 'example.invalid/build:1' }] },
  });
  const pair = await generateKeyPair('ES256');
  other = { privateKey: pair.privateKey, jwk: { ...await exportJWK(pair.publicKey), kid: 'not-cluster-b', alg: 'ES256', use: 'sig' } };

  ns = await createNamespace('priviss');
  identity = await installOperatorIdentity();
  // The controller is given a path it cannot read: it needs only the issuer.
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace,
    args: ['--federation-issuer-jwks', `${bIssuer}=/nonexistent/only-the-token-server-reads-this.json`],
  });
  server = await startTokenServer({
    kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, args: ['--federation-issuer-jwks', `${bIssuer}=${jwksFile}`],
  });
  await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  await createFederatedCredential(ns.name, 'cluster-b-builder', {
    deploymentRef: { name: 'airflow' }, issuer: bIssuer, audience: FED_AUDIENCE, subject: 'system:serviceaccount:ci:builder',
    claims: "claims['kubernetes.io']['pod']['name'] == 'builder-pod'", permissions: ['deploy'], tokenTTL: '10m',
  });
}, 300_000);

afterAll(async () => {
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  await ns?.cleanup();
  if (b) await down(b.dir);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a private issuer: another cluster\'s ServiceAccount tokens, trusted through its published JWKS given as a file', () => {
  it('is an https issuer the controller allows: the FederatedCredential is Ready, not IssuerNotAllowed', async () => {
    expect(bIssuer).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const fc = await waitFor('the credential Ready', async () => {
      const f = await getFederatedCredential(ns.name, 'cluster-b-builder');
      return readyOf(f)?.reason === 'Ready' ? f : undefined;
    });
    expect(readyOf(fc)?.status).toBe('True');
  });

  it('gives a Pod identity of cluster B a Deployment token of cluster A, and never contacts B', async () => {
    const subject = await podToken();
    expect(decodeJwt(subject)).toMatchObject({ iss: bIssuer, sub: 'system:serviceaccount:ci:builder', 'kubernetes.io': { pod: { name: 'builder-pod' } } });
    const token = await waitFor('a federated token', async () => {
      const r = await exchange(subject);
      return r.status === 200 ? r.body.access_token as string : undefined;
    }, 15_000, 100);
    expect(decodeJwt(token)).toMatchObject({ sub: 'system:serviceaccount:ci:builder', deployment: `${ns.name}/airflow`, scope: 'deploy', aud: AUDIENCE });
    const metrics = await scrapeMetrics(server);
    expect(metrics).toMatch(/apikey_operator_federation_issuer_fetches_total\{document="jwks_file",result="ok"\} 1/);
    expect(metrics).not.toMatch(/document="discovery"/);
    expect(server.logs()).toContain('private federation issuer keys loaded');
  });

  it('refuses a token of B for another audience, one not bound to the credential\'s Pod, and a token claiming B\'s issuer signed by another key', async () => {
    expect((await exchange(await podToken(['https://elsewhere.example.test']))).status).toBe(400);
    const unbound = await inB<{ status: { token: string } }>('POST', '/api/v1/namespaces/ci/serviceaccounts/builder/token', {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [FED_AUDIENCE], expirationSeconds: 600 },
    });
    recordSecret(unbound.status.token);
    expect((await exchange(unbound.status.token)).body.error).toBe('invalid_grant');
    const forged = await exchange(await otherToken());
    expect(forged.status).toBe(400);
    expect(forged.body.error).toBe('invalid_grant');
  });

  it('rotates without a restart: a key added to the file is accepted, a key removed is refused', async () => {
    // Step one of a rotation: B's key and the new key both listed.
    writeJwks(JSON.stringify({ keys: [...bJwks.keys, other.jwk] }));
    await waitFor('the added key accepted', () => accepted(otherToken), 15_000, 200);
    expect(await accepted(podToken)).toBe(true);
    // Step two: B's old key removed.
    writeJwks(JSON.stringify({ keys: [other.jwk] }));
    await waitFor('the removed key refused', async () => !await accepted(podToken), 15_000, 200);
    expect(await accepted(otherToken)).toBe(true);
    // And back, for the tests that follow.
    writeJwks(JSON.stringify(bJwks));
    await waitFor('B\'s key accepted again', () => accepted(podToken), 15_000, 200);
    expect(await accepted(otherToken)).toBe(false);
  });

  it('keeps the previous keys when the file is changed to something malformed, and says so in its log; it does not crash', async () => {
    writeJwks('{"keys": [ {"kty": "EC", "d": "this-is-no-place-for-a-private-key"');
    await waitFor('the refusal logged', () => Promise.resolve(server.logs().includes('the changed JWKS file of a private federation issuer does not load')), 15_000, 200);
    expect(server.logs()).toContain(`"why":"${jwksFile}: not valid JSON"`);
    expect(server.logs()).not.toContain('this-is-no-place-for-a-private-key');
    expect(server.isRunning()).toBe(true);
    expect(await accepted(podToken)).toBe(true);
    expect(await scrapeMetrics(server)).toMatch(/apikey_operator_federation_issuer_fetches_total\{document="jwks_file",result="error"\} [1-9]/);
    writeJwks(JSON.stringify(bJwks));
  });

  it('refuses to start with a JWKS file that does not load or an issuer that is not https, saying which', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }));
    for (const [value, message] of [
      [`${bIssuer}=${bad}`, `error: --federation-issuer-jwks: ${bad}: key 0 is not an RSA, EC or OKP public key (kty)`],
      [`${bIssuer}=${join(dir, 'missing.json')}`, `error: --federation-issuer-jwks: cannot read ${join(dir, 'missing.json')} (ENOENT)`],
      [`http://gitlab.internal=${jwksFile}`, 'error: --federation-issuer-jwks: "http://gitlab.internal" is not https'],
    ] as const) {
      const p = startProcess('token-server', [MAIN, 'token-server', '--kubeconfig', identity.tokenServerKubeconfig, '--federation-issuer-jwks', value]);
      expect(await p.exited).toBe(2);
      expect(p.logs()).toContain(message);
    }
  });
});
