/**
 * Issue 4 end to end: the real controller and two real token-server
 * replicas, each with the chart's ServiceAccount and RBAC, on the real
 * control plane; real clients (curl | jq, openid-client, jose) on the other
 * side. Credentials come from the Secrets the controller writes, as a CI job
 * would get them with envFrom.
 */
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { promisify } from 'node:util';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNING_KEYS_SECRET } from '../src/api/index.ts';
import { generateSecret } from '../src/keys/format.ts';
import { activeKey, parseSigningKeySet, planSigningKeys, SIGNING_KEYS_DATA_KEY } from '../src/shared/signing-keys.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { startController, startTokenServer, waitForHttp, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, type Credentials, credentialsOf, deploymentPath, eventsFor, getApiKey, getSecret, readyOf, secretPath,
  uniqueAudience, waitForReady,
} from './support/resources.ts';
import {
  authz, basic, clientCredentials, exchangeReviews, form, introspect, issued, json, post, requestToken, scrapeMetrics, type Answer,
} from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const exec = promisify(execFile);
const AUDIENCE = uniqueAudience('airflow');
type Server = TokenServerProcess;

let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let a: Server;
let b: Server;
let ci: Credentials;
const seen: string[] = [];

function record(c: Credentials): Credentials {
  seen.push(c.secret);
  return c;
}

/** A key the controller made: created, Ready, its Secret read as a job would. */
async function key(name: string, spec: Parameters<typeof createApiKey>[2] = { deploymentRef: { name: 'airflow' } }): Promise<Credentials> {
  await createApiKey(ns.name, name, spec);
  await waitForReady(ns.name, name);
  return record(credentialsOf((await getSecret(ns.name, name))!));
}

/** A POST from another local address (127.0.0.2): another client, as far as the server can tell. */
function postFrom(localAddress: string, url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  ns = await createNamespace('e2e');
  identity = await installOperatorIdentity();
  // The token servers first (not ready until the controller writes signing keys), so that the
  // controller can write their URL into every credentials Secret.
  a = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false });
  b = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false,
    args: ['--issuer', a.url] });
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace,
    args: ['--token-url', `${a.url}/oauth/token`, '--audiences', 'https://default.example.test'],
  });
  await waitForHttp(`${a.url}/readyz`, a);
  await waitForHttp(`${b.url}/readyz`, b);
  await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  ci = await key('ci', { deploymentRef: { name: 'airflow' }, permissions: ['deploy', 'read'] });
  // Ready in the apiserver is not yet in both servers' caches: the tests below ask once.
  await issued(a, ci);
  await issued(b, ci);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), controller?.stop()]);
  await identity?.cleanup();
  await ns?.cleanup();
});

describe('getting a token', () => {
  it('works with the seed\'s curl request exactly, piped to jq -r .access_token, with the Secret\'s values', async () => {
    expect(ci.tokenUrl).toBe(`${a.url}/oauth/token`);
    expect(ci.audience).toBe(AUDIENCE);
    // The seed's request, its JSON literal filled in with the Secret's values; $URL from the Secret too.
    const data = JSON.stringify({ client_id: ci.keyId, client_secret: ci.secret, audience: ci.audience, grant_type: 'client_credentials' });
    const script = `curl -s -X POST $URL -H 'content-type: application/json' -d '${data}' | jq -r .access_token`;
    const { stdout } = await exec('sh', ['-c', script], { env: { PATH: process.env.PATH, URL: ci.tokenUrl } });
    const t = stdout.trim();
    expect(t).toMatch(/^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/);
    expect(decodeJwt(t).sub).toBe(ci.keyId);
  });

  it('gives a JWT that jose verifies through the discovered jwks_uri: iss, aud, a 24h exp, typ at+jwt and the claims', async () => {
    const t = await issued(a, ci);
    const meta = await (await fetch(`${a.url}/.well-known/oauth-authorization-server`)).json() as { issuer: string; jwks_uri: string };
    const { payload, protectedHeader } = await jwtVerify(t, createRemoteJWKSet(new URL(meta.jwks_uri)), {
      issuer: meta.issuer, audience: AUDIENCE, typ: 'at+jwt', requiredClaims: ['iat', 'exp', 'jti', 'sub'],
    });
    const now = Math.floor(Date.now() / 1000);
    expect(protectedHeader).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    expect(protectedHeader.kid).toEqual(expect.any(String));
    expect(payload.iss).toBe(a.url);
    expect(payload.exp! - payload.iat!).toBe(24 * 3600);
    expect(Math.abs(payload.iat! - now)).toBeLessThanOrEqual(2);
    expect(payload).toMatchObject({ sub: ci.keyId, client_id: ci.keyId, aud: AUDIENCE, scope: 'deploy read', deployment: `${ns.name}/airflow` });
  });

  it('works for openid-client through discovery with client_secret_basic', async () => {
    const config = await oidc.discovery(new URL(a.url), ci.keyId, undefined, oidc.ClientSecretBasic(ci.secret), {
      execute: [oidc.allowInsecureRequests],
    });
    expect(config.serverMetadata().token_endpoint).toBe(`${a.url}/oauth/token`);
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: AUDIENCE });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('read');
    expect(tokens.expires_in).toBe(86400);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: ci.keyId, scope: 'read', aud: AUDIENCE });
  });

  it('is served by either replica, and each verifies the other\'s tokens', async () => {
    const fromB = await issued(b, ci);
    expect(decodeJwt(fromB).iss).toBe(a.url);
    expect((await introspect(a, fromB, ci)).active).toBe(true);
    expect((await authz(b, await issued(a, ci), 'read')).status).toBe(200);
  });
});

describe('RFC 6749 5.2 errors, each from the input that causes it', () => {
  it.each<[string, string, number, () => Promise<Answer>]>([
    ['invalid_request', 'no grant_type', 400, () => post(`${a.url}/oauth/token`, json({ client_id: ci.keyId, client_secret: ci.secret }))],
    ['invalid_request', 'a repeated parameter', 400, () => post(`${a.url}/oauth/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&grant_type=client_credentials&client_id=${ci.keyId}&client_secret=${ci.secret}` })],
    ['invalid_request', 'two client authentication methods', 400, () => post(`${a.url}/oauth/token`, form({ grant_type: 'client_credentials', client_secret: ci.secret }, { authorization: basic(ci.keyId, ci.secret) }))],
    ['invalid_client', 'a wrong secret', 401, () => requestToken(a, { ...ci, secret: generateSecret() })],
    ['invalid_client', 'an unknown key id', 401, () => requestToken(a, { ...ci, keyId: 'ak_aaaaaaaaaaaaaaaaaaaaaaaaaa' })],
    ['invalid_client', 'no client authentication', 401, () => post(`${a.url}/oauth/token`, json({ grant_type: 'client_credentials' }))],
    ['unsupported_grant_type', 'grant_type=password', 400, () => requestToken(a, ci, { grant_type: 'password' })],
    ['unsupported_grant_type', 'grant_type=authorization_code', 400, () => requestToken(a, ci, { grant_type: 'authorization_code', code: 'x' })],
    ['invalid_scope', 'a scope beyond the key\'s permissions', 400, () => requestToken(a, ci, { scope: 'deploy admin' })],
    ['invalid_target', 'an audience the Deployment does not allow', 400, () => requestToken(a, ci, { audience: 'https://elsewhere.example' })],
  ])('%s for %s (HTTP %i)', async (error, _input, status, send) => {
    const r = await send();
    expect(r.status).toBe(status);
    expect(r.body.error).toBe(error);
    expect(typeof r.body.error_description).toBe('string');
    expect(JSON.stringify(r.body)).not.toContain(ci.secret);
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('unauthorized_client for a key whose Deployment is gone (the key outlived it: orphan deletion)', async () => {
    await createDeployment(ns.name, 'orphaning', { audiences: [uniqueAudience('orphaning')] });
    const c = await key('orphaned', { deploymentRef: { name: 'orphaning' } });
    await issued(a, c);
    await adminClient().request('DELETE', deploymentPath(ns.name, 'orphaning'), { body: { propagationPolicy: 'Orphan' } });
    const r = await waitFor('refused', async () => {
      const x = await requestToken(a, c);
      return x.status !== 200 ? x : undefined;
    }, 5000, 20);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('unauthorized_client');
    expect(r.body.error_description).toMatch(/Deployment .*orphaning/);
    // Orphaned means kept: the controller must not put the ownerReference back on a Deployment being
    // deleted, or the garbage collector deletes the key after all.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const kept = await getApiKey(ns.name, 'orphaned');
    expect(kept, 'the orphaned ApiKey still exists').toBeDefined();
    expect(kept!.metadata.ownerReferences ?? []).toEqual([]);
    expect(readyOf(kept)?.reason).toBe('DeploymentNotFound');
  });

  it('invalid_client with WWW-Authenticate: Basic when wrong Basic credentials were used', async () => {
    const r = await post(`${a.url}/oauth/token`, form({ grant_type: 'client_credentials' }, { authorization: basic(ci.keyId, generateSecret()) }));
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it('invalid_grant for a token exchange whose subject_token fails its TokenReview (RFC 8693)', async () => {
    const r = await post(`${a.url}/oauth/token`, form({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'bogus-kubernetes-token',
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', deployment: `${ns.name}/airflow`,
    }));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_grant');
    expect(typeof r.body.error_description).toBe('string');
    expect(r.headers.get('cache-control')).toBe('no-store');
    // The apiserver said so: a real TokenReview, counted by the server.
    expect(await exchangeReviews(a, 'token', 'unauthenticated')).toBe(1);
  });
});

describe('malformed requests', () => {
  const raw = (body: string | Uint8Array, type?: string, headers: Record<string, string> = {}) =>
    () => post(`${a.url}/oauth/token`, { headers: { ...(type ? { 'content-type': type } : {}), ...headers }, body });
  it.each<[string, number, () => Promise<Answer>]>([
    ['truncated JSON', 400, raw('{"client_id":"ak_', 'application/json')],
    ['a huge body (1 MiB)', 413, raw(JSON.stringify({ pad: 'x'.repeat(1 << 20) }), 'application/json')],
    ['a wrong content type', 415, raw('client_id=x', 'text/plain')],
    ['no content type', 400, raw(new TextEncoder().encode('client_id=x'))],
    ['an array body', 400, raw('[{"grant_type":"client_credentials"}]', 'application/json')],
    ['unicode in every field', 401, raw(JSON.stringify({ client_id: 'ak_☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃☃', client_secret: 'aks_💥', audience: 'ü', grant_type: 'client_credentials' }), 'application/json')],
    ['invalid UTF-8', 400, raw(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31]), 'application/json')],
    ['missing fields', 400, raw('{}', 'application/json')],
    ['a null client_id', 401, raw(JSON.stringify({ grant_type: 'client_credentials', client_id: null, client_secret: null }), 'application/json')],
    ['duplicated parameters', 400, raw('grant_type=client_credentials&client_id=a&client_id=b', 'application/x-www-form-urlencoded')],
    ['an empty Basic header', 401, raw('grant_type=client_credentials', 'application/x-www-form-urlencoded', { authorization: 'Basic ' })],
    ['a secret with a bad checksum', 401, () => requestToken(a, { ...ci, secret: ci.secret.slice(0, -1) + (ci.secret.endsWith('0') ? '1' : '0') })],
    ['a key id of another format', 401, () => requestToken(a, { ...ci, keyId: 'AKIAIOSFODNN7EXAMPLE' })],
    ['a malformed percent-escape', 400, raw('grant_type=%E0%A4%A', 'application/x-www-form-urlencoded')],
  ])('%s gets a 4xx (%i), never a 5xx, and the server stays up', async (_what, status, send) => {
    const r = await send();
    expect(r.status).toBe(status);
    expect(typeof r.body.error).toBe('string');
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    expect((await requestToken(a, ci)).status).toBe(200);
    expect(a.isRunning()).toBe(true);
  });

  it('has not logged a stack trace for any of them', () => {
    expect(a.logs()).not.toMatch(/"level":"error"/);
  });
});

describe('revocation by deletion', () => {
  it.each<[string, (name: string) => Promise<unknown>]>([
    ['the ApiKey', (name) => adminClient().delete(apiKeyPath(ns.name, name))],
    ['its Deployment', (name) => adminClient().delete(deploymentPath(ns.name, `dep-${name}`))],
  ])('deleting %s stops issuance within a second, and introspection says active:false', async (_what, remove) => {
    const name = `gone-${Date.now() % 100_000}`;
    await createDeployment(ns.name, `dep-${name}`, { audiences: [uniqueAudience('gone')] });
    const c = await key(name, { deploymentRef: { name: `dep-${name}` } });
    const t = await issued(a, c);
    expect((await introspect(a, t, ci)).active).toBe(true);
    await remove(name);
    // Measured from the apiserver's answer to the delete: the watch event cannot come before it.
    const t0 = Date.now();
    await waitFor('refused', async () => (await requestToken(a, c)).status !== 200, 5000, 10);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await introspect(a, t, ci)).toEqual({ active: false });
    // Replica b has a watch of its own.
    const onB = await waitFor('inactive on b', async () => {
      const r = await introspect(b, t, ci);
      return r.active === false ? r : undefined;
    }, 1000, 10);
    expect(onB).toEqual({ active: false });
    expect((await authz(a, t)).status).toBe(401);
  });
});

describe('rotation', () => {
  it('accepts the old secret during the grace period and not after it; its tokens end with it; lastUsedAt survives', async () => {
    const old = await key('rotating', { deploymentRef: { name: 'airflow' }, rotation: { gracePeriod: '8s' } });
    const oldToken = await issued(a, old);
    await waitFor('lastUsedAt', async () => (await getApiKey(ns.name, 'rotating'))?.status?.lastUsedAt, 20_000, 200);
    await adminClient().mergePatch(apiKeyPath(ns.name, 'rotating'), { metadata: { annotations: { 'apikeys.dev/rotate': new Date().toISOString() } } });
    const fresh = record(credentialsOf(await waitFor('the new secret', async () => {
      const s = await getSecret(ns.name, 'rotating');
      return s && credentialsOf(s).secret !== old.secret ? s : undefined;
    })));
    const rotated = (await getApiKey(ns.name, 'rotating'))!;
    const graceEnd = Date.parse(rotated.status!.previousSecretValidUntil!);
    expect(graceEnd - Date.now()).toBeGreaterThan(2000);
    expect(rotated.status?.lastUsedAt).toBeDefined();
    expect(fresh.keyId).toBe(old.keyId);

    expect((await issued(a, fresh))).toBeTruthy();
    const during = await requestToken(a, old);
    expect(during.status).toBe(200);
    expect(decodeJwt(during.body.access_token as string).exp).toBeLessThanOrEqual(graceEnd / 1000);
    expect((await introspect(a, oldToken, ci)).active).toBe(true);

    await new Promise((r) => setTimeout(r, graceEnd - Date.now() + 100));
    const after = await requestToken(a, old);
    expect(after.status).toBe(401);
    expect(after.body.error).toBe('invalid_client');
    expect(await introspect(a, oldToken, ci)).toEqual({ active: false });
    expect((await requestToken(a, fresh)).status).toBe(200);
    await waitFor('previous hash dropped', async () => !(await getApiKey(ns.name, 'rotating'))?.status?.previousSecretHash, 10_000);
    expect((await requestToken(a, old)).status).toBe(401);
  });
});

describe('brute force', () => {
  it('throttles 1,000 wrong secrets for one key id, none succeeds, and the key\'s own client elsewhere is not locked out', async () => {
    const victim = await key('victim');
    const statuses = new Map<number, number>();
    let retryAfter = 0;
    const body = (secret: string) => JSON.stringify(clientCredentials({ ...victim, secret }));
    const wrong = Array.from({ length: 1000 }, () => generateSecret());
    for (let i = 0; i < wrong.length; i += 10) {
      await Promise.all(wrong.slice(i, i + 10).map(async (s) => {
        const r = await requestToken(a, { ...victim, secret: s });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 429) retryAfter = Math.max(retryAfter, Number(r.headers.get('retry-after')));
      }));
    }
    expect(statuses.get(200)).toBeUndefined();
    expect([...statuses.keys()].sort()).toEqual([401, 429]);
    expect(statuses.get(429)).toBeGreaterThanOrEqual(950);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    // From the attacker's own address (a shared NAT, an ingress), the right secret still succeeds at once:
    // throttling sheds wrong secrets, it never locks the key's owner out.
    expect(await postFrom('127.0.0.1', `${a.url}/oauth/token`, body(victim.secret))).toBe(200);
    expect(await postFrom('127.0.0.1', `${a.url}/oauth/token`, body(generateSecret()))).toBe(429);
    // The key's real client, at another address, gets its token at once.
    expect(await postFrom('127.0.0.2', `${a.url}/oauth/token`, body(victim.secret))).toBe(200);
    // And another replica does not share this replica's penalty.
    expect((await requestToken(b, victim)).status).toBe(200);
    const metrics = await scrapeMetrics(a);
    expect(metrics).toMatch(/apikey_operator_token_failures_total\{reason="rate_limited"\} \d{3}/);
    expect(metrics).not.toContain(victim.keyId);
  });
});

describe('a malformed or deleted signing-keys Secret', () => {
  type Stored = { metadata: { resourceVersion: string }; data: Record<string, string> };
  const path = () => secretPath(identity.namespace, SIGNING_KEYS_SECRET);
  const kidsOf = (s: Stored) => parseSigningKeySet(Buffer.from(s.data[SIGNING_KEYS_DATA_KEY]!, 'base64').toString('utf8')).keys.map((k) => k.kid);
  const jwksKids = async (s: TokenServerProcess) =>
    ((await (await fetch(`${s.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string; d?: string; k?: string }[] }).keys;
  const readKids = async () => {
    try { return kidsOf(await adminClient().get<Stored>(path())); } catch { return undefined; }
  };

  /** Tokens keep coming with the good keys, a token from before stays live, and the JWKS never changes. */
  async function keepsServing(kids: string[], before: string): Promise<void> {
    for (const s of [a, b]) {
      const t = await issued(s, ci);
      expect(kids).toContain(decodeProtectedHeader(t).kid);
      expect((await jwksKids(s)).map((k) => k.kid).sort()).toEqual([...kids].sort());
      expect((await introspect(s, before, ci)).active).toBe(true);
    }
  }

  it('costs no key: the token servers keep serving with the good keys, and the controller writes them back, with a Warning', async () => {
    const good = await adminClient().get<Stored>(path());
    const kids = kidsOf(good);
    const before = await issued(a, ci);
    // A key set whose kid is no thumbprint and whose public JWK is a symmetric secret.
    const forged = { version: 1, keys: [{ kid: 'forged', alg: 'ES256', privateJwk: { kty: 'oct', k: 'c2VjcmV0' },
      publicJwk: { kty: 'oct', k: 'c2VjcmV0', kid: 'forged' }, createdAt: new Date().toISOString(), activateAt: new Date().toISOString() }] };
    await adminClient().replace(path(), { ...good, data: { [SIGNING_KEYS_DATA_KEY]: Buffer.from(JSON.stringify(forged)).toString('base64') } });
    await keepsServing(kids, before);
    await waitFor('the good keys written back', async () => (await readKids())?.join() === kids.join(), 10_000, 50);
    const warning = await waitFor('a SigningKeysInvalid Warning', async () =>
      (await eventsFor(identity.namespace, SIGNING_KEYS_SECRET)).find((e) => e.reason === 'SigningKeysInvalid' && e.note.includes('restored')));
    expect(warning.type).toBe('Warning');
    expect(warning.note).toContain('kid is not an RFC 7638');
    await keepsServing(kids, before);
    for (const s of [a, b]) for (const k of await jwksKids(s)) expect(k.d ?? k.k).toBeUndefined();

    // Deleted: the same keys come back, and nothing in between signed with another.
    await adminClient().delete(path());
    await keepsServing(kids, before);
    await waitFor('the Secret written again with the same keys', async () => (await readKids())?.join() === kids.join(), 10_000, 50);
    await keepsServing(kids, before);
    expect(controller.logs()).toContain('was deleted; restored the');
  });
});

describe('signing-key rotation with two replicas', () => {
  /**
   * The controller plans rotations with src/shared/signing-keys.ts and publishes a new key an hour
   * (--signing-key-publish-lead, at least as long as verifiers cache the JWKS) before it signs. The
   * test compresses time: it writes, in the controller's place, the plan that same function makes
   * with a 4 s publish lead, and verifies with jose remote JWKS sets whose cache is 2 s (shorter
   * than the lead, as in production 10 min < 1 h). The controller leaves a plan with a pending key
   * alone, so the Secret is what the token servers see.
   */
  it('keeps tokens signed before and after verifying against both replicas\' JWKS throughout', async () => {
    const path = secretPath(identity.namespace, SIGNING_KEYS_SECRET);
    const secret = await adminClient().get<{ metadata: { resourceVersion: string }; data: Record<string, string> }>(path);
    const before = parseSigningKeySet(Buffer.from(secret.data[SIGNING_KEYS_DATA_KEY]!, 'base64').toString('utf8'));
    const current = activeKey(before)!;
    const now = Date.now();
    const lead = 4000;
    const plan = await planSigningKeys(before, {
      algorithm: 'ES256', rotateEveryMs: now - Date.parse(current.activateAt), publishLeadMs: lead,
      maxTokenLifetimeMs: 24 * 3600_000, clockSkewMs: 60_000,
    }, now);
    const next = plan.keys.at(-1)!;
    expect(next.kid).not.toBe(current.kid);
    const jwks: Record<string, JWTVerifyGetKey> = {};
    for (const s of [a, b]) jwks[s.url] = createRemoteJWKSet(new URL(`${s.url}/.well-known/jwks.json`), { cacheMaxAge: 2000, cooldownDuration: 500 });
    const tokens: string[] = [];
    const verifyAll = async () => {
      for (const t of tokens) {
        for (const set of Object.values(jwks)) await jwtVerify(t, set, { issuer: a.url, audience: AUDIENCE, typ: 'at+jwt' });
      }
    };
    tokens.push(await issued(a, ci), await issued(b, ci));
    await verifyAll();

    await adminClient().replace(path, { ...secret, data: { [SIGNING_KEYS_DATA_KEY]: Buffer.from(JSON.stringify(plan)).toString('base64') } });
    const activation = Date.parse(next.activateAt);
    // Both replicas publish the new key through their watch, well before it signs.
    for (const s of [a, b]) {
      await waitFor(`${s.url} publishes the next key`, async () => {
        const set = await (await fetch(`${s.url}/.well-known/jwks.json`)).json() as { keys: { kid: string }[] };
        return set.keys.some((k) => k.kid === next.kid);
      }, 2000, 20);
    }
    expect(Date.now()).toBeLessThan(activation);
    const kidsSeen = new Set<string>();
    while (Date.now() < activation + 3000) {
      for (const s of [a, b]) {
        const sent = Date.now();
        const t = await issued(s, ci);
        const answered = Date.now();
        const kid = decodeProtectedHeader(t).kid!;
        kidsSeen.add(kid);
        // The new key signs only from its activation: a token answered before it is the old key's,
        // one asked for after it the new key's.
        if (answered < activation - 200) expect(kid).toBe(current.kid);
        if (sent > activation + 200) expect(kid).toBe(next.kid);
        tokens.push(t);
      }
      await verifyAll();
      const published = await (await fetch(`${b.url}/.well-known/jwks.json`)).json() as { keys: { kid: string }[] };
      expect(published.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([current.kid, next.kid]));
      await new Promise((r) => setTimeout(r, 250));
    }
    expect([...kidsSeen].sort()).toEqual([current.kid, next.kid].sort());
    // The controller has not replaced the plan.
    const after = await adminClient().get<{ data: Record<string, string> }>(path);
    expect(parseSigningKeySet(Buffer.from(after.data[SIGNING_KEYS_DATA_KEY]!, 'base64').toString('utf8')).keys.map((k) => k.kid))
      .toEqual(plan.keys.map((k) => k.kid));
  });
});

describe('logs', () => {
  it('of the controller and both token servers hold none of the secrets the suite saw', async () => {
    expect(readyOf(await getApiKey(ns.name, 'ci'))?.status).toBe('True');
    for (const p of [controller, a, b]) {
      const logs = p.logs();
      expect(logs.length).toBeGreaterThan(0);
      for (const s of seen) expect(logs).not.toContain(s);
      expect(logs).not.toMatch(/aks_[0-9A-Za-z]{49}/);
      expect(logs).not.toMatch(/eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}/);
    }
  });
});
