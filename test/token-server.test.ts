/**
 * The token server alone, as a real process on the real control plane,
 * authenticated as the chart's token-server ServiceAccount (its RBAC rendered
 * from the chart). The test plays the controller's part as the admin: it
 * writes the Deployment, the ApiKey with its ownerReference and its status
 * (through the status subresource), and the signing keys Secret, exactly in
 * the shapes the controller writes. test/token-server.e2e.test.ts runs the
 * real controller alongside.
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKey, ApiKeyStatus, Deployment } from '../src/api/index.ts';
import { ACCESS_TOKEN_TYPE, API_VERSION, SIGNING_KEYS_SECRET, SIGNING_KEYS_SECRET_TYPE, TOKEN_EXCHANGE_GRANT } from '../src/api/index.ts';
import { generateKeyId, generateSecret, hashSecret } from '../src/keys/format.ts';
import { KubeClient, KubeError } from '../src/kube/client.ts';
import { loadKubeConfig } from '../src/kube/config.ts';
import { metaTime } from '../src/kube/types.ts';
import { DEFAULT_ROTATION, planSigningKeys, SIGNING_KEYS_DATA_KEY, type SigningKeySet } from '../src/shared/signing-keys.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { MAIN, recordSecret, startProcess, startTokenServer, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, claimAudiences, createDeployment, deploymentPath, getApiKey, getDeployment, secretPath, uniqueAudience,
} from './support/resources.ts';
import {
  authz, clientCredentials, introspect, issued, json, post, postFrom, requestToken, scrapeMetrics, type KeyCredentials,
} from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

type Server = TokenServerProcess;
let ns: TestNamespace;
let identity: OperatorIdentity;
let server: Server;
let keys: SigningKeySet;
const AUDIENCE = uniqueAudience('airflow');

/** A key the test made in the controller's place; its audience is the one its Secret would hold. */
interface Key extends KeyCredentials { name: string; apiKey: ApiKey }

async function writeSigningKeys(set: SigningKeySet): Promise<void> {
  const body = {
    apiVersion: 'v1', kind: 'Secret', type: SIGNING_KEYS_SECRET_TYPE,
    metadata: { name: SIGNING_KEYS_SECRET, namespace: identity.namespace },
    data: { [SIGNING_KEYS_DATA_KEY]: Buffer.from(JSON.stringify(set)).toString('base64') },
  };
  await adminClient().apply(secretPath(identity.namespace, SIGNING_KEYS_SECRET), body, 'test');
}

/** What the controller does for a new key: ownerReference, then a Ready status with the key id and secret hash. */
async function createKey(name: string, dep: Deployment, spec: Partial<ApiKey['spec']> = {}, status: Partial<ApiKeyStatus> = {}): Promise<Key> {
  const keyId = generateKeyId();
  const secret = generateSecret();
  recordSecret(secret);
  const c = adminClient();
  await c.create<ApiKey>(apiKeyPath(ns.name), {
    apiVersion: API_VERSION, kind: 'ApiKey',
    metadata: { name, ownerReferences: [{ apiVersion: API_VERSION, kind: 'Deployment', name: dep.metadata.name!, uid: dep.metadata.uid! }] },
    spec: { deploymentRef: { name: dep.metadata.name! }, ...spec },
  });
  const apiKey = await patchStatus(name, {
    keyId, secretName: name, secretHash: hashSecret(secret),
    conditions: [{ type: 'Ready', status: 'True', reason: 'SecretReady', message: 'ready', lastTransitionTime: metaTime() }],
    ...status,
  });
  return { name, keyId, secret, audience: dep.spec.audiences?.[0] ?? AUDIENCE, apiKey };
}

function patchStatus(name: string, status: Partial<ApiKeyStatus>): Promise<ApiKey> {
  return adminClient().mergePatch<ApiKey>(`${apiKeyPath(ns.name, name)}/status`, { status });
}

/** Polls until the server refuses `k`, and returns how long that took after `t0`. */
async function refusedWithin(k: Key, t0: number): Promise<number> {
  await waitFor(`${k.name} refused`, async () => (await requestToken(server, k)).status !== 200, 10_000, 10);
  return Date.now() - t0;
}

let dep: Deployment;
let observer: Key;

beforeAll(async () => {
  ns = await createNamespace('ts');
  identity = await installOperatorIdentity();
  keys = await planSigningKeys(undefined, DEFAULT_ROTATION);
  await writeSigningKeys(keys);
  dep = await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  // No controller runs here: the test claims the custom audiences in its place.
  await claimAudiences(identity.namespace, dep);
  observer = await createKey('observer', dep);
  server = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace });
});

afterAll(async () => {
  await server?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
});

describe('the token server on a real control plane, as the chart\'s ServiceAccount', () => {
  it('issues a token for a key it learnt from its watch, verifiable through the discovered jwks_uri', async () => {
    const k = await createKey('ci', dep, { permissions: ['deploy', 'read'] });
    const token = await issued(server, k);
    const meta = await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json() as { jwks_uri: string; issuer: string };
    expect(meta.issuer).toBe(server.url);
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(meta.jwks_uri)), {
      issuer: server.url, audience: AUDIENCE, typ: 'at+jwt',
    });
    expect(protectedHeader.kid).toBe(keys.keys[0]!.kid);
    expect(payload).toMatchObject({ sub: k.keyId, client_id: k.keyId, scope: 'deploy read', deployment: `${ns.name}/airflow` });
    expect(payload.exp! - payload.iat!).toBe(86400);
  });

  it('serves /metrics on --metrics-port only: the token port, which clients reach, answers it with 404', async () => {
    await issued(server, await createKey('counted', dep));
    const onTokenPort = await fetch(`${server.url}/metrics`);
    expect(onTokenPort.status).toBe(404);
    expect(await onTokenPort.text()).not.toContain('apikey_operator_');
    expect(await scrapeMetrics(server)).toMatch(/^apikey_operator_tokens_issued_total\{grant_type="client_credentials"\} [1-9]\d*$/m);
  });

  it('can read the signing keys Secret and no other Secret, and cannot change ApiKeys beyond their status', async () => {
    const sa = new KubeClient(loadKubeConfig({ kubeconfig: identity.tokenServerKubeconfig }));
    const status = (p: Promise<unknown>) => p.then(() => 200, (e: unknown) => (e instanceof KubeError ? e.status : -1));
    // What it needs.
    expect(await status(sa.get(secretPath(identity.namespace, SIGNING_KEYS_SECRET)))).toBe(200);
    expect(await status(sa.get(secretPath(identity.namespace), { fieldSelector: `metadata.name=${SIGNING_KEYS_SECRET}` }))).toBe(200);
    expect(await status(sa.get(apiKeyPath(ns.name)))).toBe(200);
    expect(await status(sa.get(deploymentPath(ns.name)))).toBe(200);
    // Nothing more.
    await adminClient().create(secretPath(identity.namespace), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'other' }, stringData: { x: 'y' } });
    await adminClient().create(secretPath(ns.name), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, stringData: { x: 'y' } });
    expect(await status(sa.get(secretPath(identity.namespace, 'other')))).toBe(403);
    expect(await status(sa.get(secretPath(identity.namespace)))).toBe(403);
    expect(await status(sa.get(secretPath(ns.name, 'creds')))).toBe(403);
    expect(await status(sa.get(secretPath(ns.name)))).toBe(403);
    expect(await status(sa.get('/api/v1/secrets'))).toBe(403);
    // Its one write to an ApiKey (the compromise mark) is narrowed by the chart's admission policy, which
    // the apiserver picks up through its own watch: wait until a dry run shows it in force.
    await waitFor('the token server\'s admission policy in force', async () =>
      await status(sa.mergePatch(`${apiKeyPath(ns.name, 'observer')}?dryRun=All`, { spec: { permissions: ['deploy', 'read'] } })) === 403, 30_000, 200);
    expect(await status(sa.mergePatch(apiKeyPath(ns.name, 'observer'), { spec: { permissions: ['deploy', 'read'] } }))).toBe(403);
    expect(await status(sa.delete(apiKeyPath(ns.name, 'observer')))).toBe(403);
    expect(await status(sa.mergePatch(deploymentPath(ns.name, 'airflow'), { spec: { maxTokenTTL: '1h' } }))).toBe(403);
    expect(await status(sa.mergePatch(secretPath(identity.namespace, SIGNING_KEYS_SECRET), { metadata: { labels: { x: 'y' } } }))).toBe(403);
  });

  it.each<[string, (k: Key, d: Deployment) => Promise<unknown>]>([
    ['the ApiKey is deleted', (k) => adminClient().delete(apiKeyPath(ns.name, k.name))],
    ['the Deployment is deleted', (_k, d) => adminClient().delete(deploymentPath(ns.name, d.metadata.name))],
    ['the key turns Ready=False', (k) => patchStatus(k.name, { conditions: [{ type: 'Ready', status: 'False', reason: 'SecretConflict', message: 'conflict', lastTransitionTime: metaTime() }] })],
    ['the key\'s expiresAt is set in the past', (k) => adminClient().mergePatch(apiKeyPath(ns.name, k.name), { spec: { expiresAt: metaTime(new Date(Date.now() - 1000)) } })],
    ['the secret is rotated with no grace period', (k) => patchStatus(k.name, { secretHash: hashSecret(generateSecret()) })],
  ])('stops issuing within a second and introspection says active:false when %s', async (what, change) => {
    const d = await createDeployment(ns.name, `d-${what.length}-${Date.now() % 100000}`, { audiences: [uniqueAudience('d')] });
    await claimAudiences(identity.namespace, d);
    const k = await createKey(`k-${what.length}-${Date.now() % 100000}`, d);
    const peer = await createKey(`p-${what.length}-${Date.now() % 100000}`, dep);
    const token = await issued(server, k);
    await issued(server, peer);
    expect((await introspect(server, token, peer)).active).toBe(true);
    // Measured from the apiserver's answer to the write: the watch event cannot come before it.
    await change(k, d);
    expect(await refusedWithin(k, Date.now())).toBeLessThan(1000);
    expect(await introspect(server, token, peer)).toEqual({ active: false });
    expect((await authz(server, token)).status).toBe(401);
  });

  it('still applies a deletion within a second after 45 s without a single watch event', async () => {
    // client-node's watches have stalled on quiet resources (1.x could hang; 2.0.0 ends each after 30 s, then backs off): measure it.
    const k = await createKey('quiet', dep);
    await issued(server, k);
    // The lastUsedAt write (within 5 s) is the last event; then nothing for at least 40 s.
    await new Promise((r) => setTimeout(r, 45_000));
    await adminClient().delete(apiKeyPath(ns.name, k.name));
    expect(await refusedWithin(k, Date.now())).toBeLessThan(1000);
  }, 90_000);

  it('tells a client with the right secret of an expired key when it expired; a wrong secret learns what an unknown key learns', async () => {
    const d = await createDeployment(ns.name, 'expiring', { audiences: [uniqueAudience('expiring')] });
    await claimAudiences(identity.namespace, d);
    const expiresAt = new Date(Math.ceil((Date.now() + 2000) / 1000) * 1000);
    const k = await createKey('expiring', d, { expiresAt: metaTime(expiresAt) });
    await issued(server, k);
    const expiredCount = async () => Number(new RegExp(
      `^apikey_operator_token_expired_key_refusals_total\\{namespace="${ns.name}",deployment="expiring"\\} (\\d+)$`, 'm',
    ).exec(await scrapeMetrics(server))?.[1] ?? 0);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt.getTime() - Date.now() + 50)));

    const right = await requestToken(server, k);
    expect(right.status).toBe(401);
    expect(right.body).toEqual({ error: 'invalid_client', error_description: `the API key expired at ${expiresAt.toISOString()}` });
    expect(await expiredCount()).toBe(1);

    // A wrong secret of the expired key and any secret of a key id nobody has: the same answer, byte for byte.
    const wrong = await requestToken(server, { ...k, secret: generateSecret() });
    const unknown = await requestToken(server, { ...k, keyId: generateKeyId(), secret: generateSecret() });
    for (const r of [wrong, unknown]) {
      expect(r.status).toBe(401);
      expect(r.text).toBe('{"error":"invalid_client","error_description":"client authentication failed"}');
      expect(r.text).not.toMatch(/expire/i);
    }
    expect([...wrong.headers].filter(([h]) => h !== 'date')).toEqual([...unknown.headers].filter(([h]) => h !== 'date'));
    // Over HTTP Basic too.
    const basicRight = await post(`${server.url}/oauth/token`, {
      headers: { authorization: `Basic ${Buffer.from(`${k.keyId}:${k.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(basicRight.body.error_description).toBe(`the API key expired at ${expiresAt.toISOString()}`);
    // Only the clients that proved the secret are counted.
    expect(await expiredCount()).toBe(2);
  });

  it('refuses a key whose ownerReference names an earlier Deployment of the same name', async () => {
    const recreatedAudience = uniqueAudience('recreated');
    const d = await createDeployment(ns.name, 'recreated', { audiences: [recreatedAudience] });
    await claimAudiences(identity.namespace, d);
    const k = await createKey('orphan', d);
    await issued(server, k);
    await adminClient().request('DELETE', deploymentPath(ns.name, 'recreated'), { body: { propagationPolicy: 'Orphan' } });
    await waitFor('Deployment gone', async () => (await getDeployment(ns.name, 'recreated')) === undefined, 20_000);
    await createDeployment(ns.name, 'recreated', { audiences: [recreatedAudience] });
    // While the Deployment is gone the answer is unauthorized_client too ("no longer exists"):
    // wait for the one that says the key belongs to an earlier Deployment.
    const refused = await waitFor('refused for an earlier Deployment', async () => {
      const r = await requestToken(server, k);
      return /does not belong to the current Deployment/.test(String(r.body.error_description)) ? r : undefined;
    }, 5000, 20);
    expect(refused.body.error).toBe('unauthorized_client');
  });

  it('honours the previous secret during its grace period and not after it', async () => {
    const k = await createKey('rotated', dep);
    const oldToken = await issued(server, k);
    const fresh = generateSecret();
    recordSecret(fresh);
    // Long enough for the issued() below, whose misses until the watch brings the new hash are
    // throttled like any client's (1 s, then 2 s, ...).
    const graceEnd = new Date(Math.ceil((Date.now() + 8000) / 1000) * 1000);
    await patchStatus(k.name, {
      secretHash: hashSecret(fresh), previousSecretHash: hashSecret(k.secret), previousSecretValidUntil: metaTime(graceEnd),
      lastRotationTime: metaTime(),
    });
    const newKey = { ...k, secret: fresh };
    await issued(server, newKey);
    const during = await requestToken(server, k);
    expect(during.status).toBe(200);
    // A token of the previous secret ends with its grace period.
    expect(decodeJwt(during.body.access_token as string).exp).toBeLessThanOrEqual(graceEnd.getTime() / 1000);
    expect((await introspect(server, oldToken, observer)).active).toBe(true);
    await new Promise((r) => setTimeout(r, graceEnd.getTime() - Date.now() + 50));
    expect((await requestToken(server, k)).body.error).toBe('invalid_client');
    expect(await introspect(server, oldToken, observer)).toEqual({ active: false });
    expect((await requestToken(server, newKey)).status).toBe(200);
  });

  it('caps a previous secret\'s grace by the key\'s rotation.gracePeriod: a forged previousSecretValidUntil far ahead is not honoured', async () => {
    const k = await createKey('forged-grace', dep, { rotation: { gracePeriod: '8s' } });
    await issued(server, k);
    const fresh = generateSecret();
    recordSecret(fresh);
    const rotated = new Date(Math.floor(Date.now() / 1000) * 1000);
    await patchStatus(k.name, {
      secretHash: hashSecret(fresh), previousSecretHash: hashSecret(k.secret), previousSecretValidUntil: '2099-01-01T00:00:00Z',
      lastRotationTime: metaTime(rotated),
    });
    await issued(server, { ...k, secret: fresh });
    // Within the 8 s the old secret still works, and its token ends with the grace, not in 2099.
    const during = await requestToken(server, k);
    expect(during.status).toBe(200);
    expect(decodeJwt(during.body.access_token as string).exp).toBeLessThanOrEqual(rotated.getTime() / 1000 + 8);
    await new Promise((r) => setTimeout(r, rotated.getTime() + 8000 - Date.now() + 100));
    expect((await requestToken(server, k)).body.error).toBe('invalid_client');
    expect((await requestToken(server, { ...k, secret: fresh })).status).toBe(200);
  });

  it('records status.lastUsedAt in the background, as an update of the field manager apikey-operator, at most once a minute', async () => {
    const k = await createKey('used', dep);
    const t0 = Date.now();
    await issued(server, k);
    const used = await waitFor('lastUsedAt', async () => {
      const a = await getApiKey(ns.name, k.name);
      return a?.status?.lastUsedAt ? a : undefined;
    }, 20_000, 200);
    expect(Date.parse(used.status!.lastUsedAt!)).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) * 1000);
    const entry = used.metadata.managedFields?.find((f) => f.manager === 'apikey-operator' && f.operation === 'Update' && f.subresource === 'status');
    expect((entry?.fieldsV1 as { 'f:status'?: Record<string, unknown> } | undefined)?.['f:status']).toHaveProperty('f:lastUsedAt');
    // Nothing else of the status changed.
    expect(used.status?.secretHash).toBe(k.apiKey.status?.secretHash);
    for (let i = 0; i < 5; i++) expect((await requestToken(server, k)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 6000));
    expect((await getApiKey(ns.name, k.name))?.status?.lastUsedAt).toBe(used.status?.lastUsedAt);
  });

  it('signs with a new key set written to the Secret, through its watch, without a restart', async () => {
    const next = await planSigningKeys(undefined, { ...DEFAULT_ROTATION, algorithm: 'EdDSA' });
    const before = await issued(server, observer);
    await writeSigningKeys({ version: 1, keys: [...keys.keys.map((k) => ({ ...k, retireAt: metaTime(), expireAt: metaTime(new Date(Date.now() + 86_400_000)) })), ...next.keys] });
    const after = await waitFor('new signing key', async () => {
      const t = await issued(server, observer);
      return decodeProtectedHeader(t).kid === next.keys[0]!.kid ? t : undefined;
    }, 5000, 20);
    expect(decodeProtectedHeader(after).alg).toBe('EdDSA');
    const jwks = createLocalJWKSet(await (await fetch(`${server.url}/.well-known/jwks.json`)).json() as never);
    for (const t of [before, after]) {
      await expect(jwtVerify(t, jwks, { issuer: server.url, audience: AUDIENCE })).resolves.toBeDefined();
    }
    expect(decodeJwt(before).sub).toBe(observer.keyId);
  });

  it('counts failures behind a trusted proxy per forwarded client, and believes no one else\'s X-Forwarded-For', async () => {
    const k = await createKey('behind-proxy', dep);
    await issued(server, k);
    const proxied = await startTokenServer({
      kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, args: ['--trusted-proxies', '127.0.0.1'],
    });
    try {
      const attempt = (xff: string, secret: string) =>
        post(`${proxied.url}/oauth/token`, json(clientCredentials({ ...k, secret }), { 'x-forwarded-for': xff })).then((r) => r.status);
      const wrong = generateSecret();
      const attacker: number[] = [];
      for (let i = 0; i < 20; i++) attacker.push(await attempt('198.51.100.66', wrong));
      expect(attacker.filter((c) => c === 429).length).toBeGreaterThanOrEqual(10);
      // The attacker's wrong secrets are slowed down, the right secret from the same address is not...
      expect(await attempt('198.51.100.66', wrong)).toBe(429);
      expect(await attempt('198.51.100.66', k.secret)).toBe(200);
      // ...nor the pipeline behind the same proxy.
      expect(await attempt('203.0.113.10', k.secret)).toBe(200);
      // The server without --trusted-proxies ignores the header: everything there comes from 127.0.0.1.
      expect((await post(`${server.url}/oauth/token`, json(clientCredentials(k), { 'x-forwarded-for': '198.51.100.66' }))).status).toBe(200);
    } finally {
      await proxied.stop();
    }
  });

  it('believes X-Forwarded-For from the trusted proxy\'s own address only: a forged one from elsewhere moves no throttle and no log line', async () => {
    const k = await createKey('forged-xff', dep);
    await issued(server, k);
    const proxied = await startTokenServer({
      kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, args: ['--trusted-proxies', '127.0.0.2'],
    });
    try {
      const from = (local: string, xff: string | undefined, body: unknown) =>
        postFrom(local, `${proxied.url}/oauth/token`, json(body, xff === undefined ? {} : { 'x-forwarded-for': xff })).then((r) => r.status);
      const wrong = clientCredentials({ ...k, secret: generateSecret() });
      // A Pod at 127.0.0.3, not the proxy, spreads its wrong secrets over forged addresses: all count as 127.0.0.3...
      const spread: number[] = [];
      for (let i = 0; i < 20; i++) spread.push(await from('127.0.0.3', `198.51.100.${i + 1}`, wrong));
      expect(spread.filter((c) => c === 429).length).toBeGreaterThanOrEqual(10);
      // ...and pins no one else: it names 127.0.0.4 in the header, whose own first mistake is an ordinary 401.
      for (let i = 0; i < 10; i++) await from('127.0.0.3', '127.0.0.4', wrong);
      expect(await from('127.0.0.4', undefined, wrong)).toBe(401);
      // Through the real proxy the header is believed: a fresh forwarded client is not throttled.
      expect(await from('127.0.0.2', '203.0.113.50', wrong)).toBe(401);
      // Failed token exchanges are logged with their address: the log names 127.0.0.3, never the forged one.
      const exchange = {
        grant_type: TOKEN_EXCHANGE_GRANT, subject_token: 'not-a-kubernetes-token', subject_token_type: ACCESS_TOKEN_TYPE,
        deployment: `${ns.name}/${dep.metadata.name}`,
      };
      for (let i = 0; i < 8; i++) await from('127.0.0.3', '198.51.100.99', exchange);
      await waitFor('the throttled exchange in the log', () => Promise.resolve(/token exchange failures/.test(proxied.logs())), 10_000, 100);
      const lines = proxied.logs().split('\n').filter((l) => l.includes('token exchange failures'));
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines) expect((JSON.parse(l) as { address: string }).address).toBe('127.0.0.3');
      expect(proxied.logs()).not.toContain('198.51.100.');
    } finally {
      await proxied.stop();
    }
  });

  it('refuses to start with a --trusted-proxies range broader than 16 addresses, saying what to trust instead', async () => {
    for (const [cidr, count] of [['10.0.0.0/8', '16777216'], ['127.0.0.0/24', '256'], ['fd00::/64', '18446744073709551616']] as const) {
      const p = startProcess('token-server', [MAIN, 'token-server', '--kubeconfig', identity.tokenServerKubeconfig, '--trusted-proxies', `127.0.0.1,${cidr}`]);
      expect(await p.exited).toBe(2);
      expect(p.logs()).toContain(`error: --trusted-proxies: ${cidr} is too broad: it covers ${count} addresses, and any client at one of them could forge X-Forwarded-For. ` +
        'Trust only the proxies\' own addresses (at most 16 per entry: an IPv4 /28 or an IPv6 /124)');
    }
    // The chart's default, none, and the loudly named override start; the override is logged as a warning.
    const broad = await startTokenServer({
      kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, args: ['--trusted-proxies', '127.0.0.0/8', '--insecure-broad-trusted-proxies'],
    });
    try {
      expect(broad.logs()).toMatch(/"level":"warn".*--insecure-broad-trusted-proxies: X-Forwarded-For is believed from ranges wider than 16 addresses/);
    } finally {
      await broad.stop();
    }
  });

  it('refuses to start with a --trusted-proxies value that is not an address or CIDR', async () => {
    const p = startProcess('token-server', [MAIN, 'token-server', '--kubeconfig', identity.tokenServerKubeconfig, '--trusted-proxies', '10.0.0.0/99']);
    expect(await p.exited).toBe(2);
    expect(p.logs()).toContain('error: --trusted-proxies: not an IP address or CIDR: "10.0.0.0/99"');
  });

  it('stops on SIGTERM with exit code 0 after finishing, and no log line holds a secret', async () => {
    const logs = server.logs();
    for (const s of [observer.secret]) expect(logs).not.toContain(s);
    expect(logs).toContain('caches synced');
    await server.stop();
    expect(await server.exited).toBe(0);
    expect(server.logs()).toContain('token server stopped');
  });
});
