/**
 * Issue 22: signing keys that never leave a PKCS#11 token. Debian's SoftHSM
 * is the token (a temporary one of this file's own, test/support/softhsm.ts);
 * the real controller and token servers run against it on the real control
 * plane, as the chart's ServiceAccounts. In order:
 * - an installation that starts with keys in the Secret (token servers
 *   already given the token, as the migration guide says);
 * - the controller switched to PKCS#11: a key made in the token (sensitive,
 *   not extractable), the Secret holding its public JWK and label only,
 *   published ahead, signing from its activation; tokens of the old key still
 *   verify throughout;
 * - failures: the token removed, a wrong PIN, a missing module: not ready,
 *   503 temporarily_unavailable with Retry-After, a log line and a metric;
 *   recovery on its own;
 * - a rotation inside the token, and the retired key's objects destroyed
 *   there once the plan drops it (and no other object);
 * - the switch back to keys in the Secret, with no failed verification.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNING_KEYS_SECRET } from '../src/api/index.ts';
import { activeKey, parseSigningKeySet, SIGNING_KEYS_DATA_KEY, type SigningKeySet } from '../src/shared/signing-keys.ts';
import { createNamespace, type TestNamespace } from './support/cluster.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { startController, startTokenServer, waitForHttp, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, createApiKey, createDeployment, type Credentials, credentialsOf, getSecret, secretPath, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { createSoftHsm, type SoftHsm } from './support/softhsm.ts';
import { issued, requestToken, scrapeMetrics } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const AUDIENCE = uniqueAudience('hsm');
/** A new key signs this long after the controller writes it: short, so that the test sees both sides. */
const LEAD = '4s';

let ns: TestNamespace;
let identity: OperatorIdentity;
let hsm: SoftHsm;
let server: TokenServerProcess;
let controller: RunningProcess | undefined;
let ci: Credentials;
/** Every token issued, with the kid that signed it: each must verify against the JWKS until the end. */
const tokens: { token: string; kid: string; issuer: string }[] = [];

async function signingKeys(): Promise<SigningKeySet> {
  const s = await getSecret(identity.namespace, SIGNING_KEYS_SECRET);
  return parseSigningKeySet(Buffer.from(s!.data![SIGNING_KEYS_DATA_KEY]!, 'base64').toString('utf8'));
}

async function startControllerWith(pkcs11: boolean): Promise<RunningProcess> {
  await controller?.stop();
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, env: hsm.env,
    args: ['--token-url', `${server.url}/oauth/token`, '--signing-key-publish-lead', LEAD, ...(pkcs11 ? hsm.flags() : [])],
  });
  return controller;
}

async function issue(s: TokenServerProcess = server): Promise<{ token: string; kid: string }> {
  const token = await issued(s, ci);
  const t = { token, kid: decodeProtectedHeader(token).kid!, issuer: s.url };
  tokens.push(t);
  return t;
}

/** Every token issued so far verifies against the token server's JWKS now (what a resource server sees). */
async function allVerify(): Promise<void> {
  const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json() as JSONWebKeySet;
  const keySet = createLocalJWKSet(jwks);
  for (const t of tokens) {
    await expect(jwtVerify(t.token, keySet, { issuer: t.issuer, audience: AUDIENCE, typ: 'at+jwt' }), `token of ${t.kid}`).resolves.toBeTruthy();
  }
}

/** Waits until the active key of the Secret is `kid`'s successor of `source`, and returns it. */
async function activeOf(source: 'pkcs11' | 'secret', afterMs: number) {
  return waitFor(`a ${source} key active`, async () => {
    const set = await signingKeys();
    const k = activeKey(set, Date.now());
    return k && (source === 'pkcs11' ? !!k.pkcs11 : !!k.privateJwk) && Date.parse(k.createdAt) >= afterMs - 1000 ? k : undefined;
  }, 30_000, 200);
}

beforeAll(async () => {
  hsm = await createSoftHsm();
  ns = await createNamespace('hsm');
  identity = await installOperatorIdentity();
  server = await startTokenServer({
    kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, env: hsm.env, waitReady: false, args: hsm.flags(),
  });
  await startControllerWith(false);
  await waitForHttp(`${server.url}/readyz`, server);
  await createDeployment(ns.name, 'airflow', { audiences: [AUDIENCE] });
  await createApiKey(ns.name, 'ci', { deploymentRef: { name: 'airflow' } });
  await waitForReady(ns.name, 'ci');
  ci = credentialsOf((await getSecret(ns.name, 'ci'))!);
  await waitFor('ci in the token server', async () => (await requestToken(server, ci)).status === 200, 10_000, 100);
});

afterAll(async () => {
  await controller?.stop();
  await server?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
  hsm?.cleanup();
});

describe('signing keys in a PKCS#11 token (SoftHSM), on the real control plane', () => {
  it('starts with keys in the Secret; the token server, given the token, signs them in process', async () => {
    const set = await signingKeys();
    expect(set.keys).toHaveLength(1);
    expect(set.keys[0]!.privateJwk).toBeDefined();
    const { kid } = await issue();
    expect(kid).toBe(set.keys[0]!.kid);
    await allVerify();
    expect(hsm.objects()).toEqual([]);
  });

  it('switches to PKCS#11: a key generated in the token, published ahead, signing from its activation, the old tokens still verifying', async () => {
    const before = await signingKeys();
    const oldKid = before.keys[0]!.kid;
    const t0 = Date.now();
    await startControllerWith(true);
    const next = await waitFor('a PKCS#11 key published', async () => (await signingKeys()).keys.find((k) => k.pkcs11), 30_000, 200);
    // Published before it signs: the JWKS has both, and the old key still signs.
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json() as JSONWebKeySet;
    if (Date.parse(next.activateAt) > Date.now() + 500) {
      expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, next.kid]));
      expect((await issue()).kid).toBe(oldKid);
    }
    const active = await activeOf('pkcs11', t0);
    expect(active.kid).toBe(next.kid);
    await waitFor('the token server signing with the PKCS#11 key', async () => (await issue()).kid === next.kid, 20_000, 200);
    await allVerify();
    // Verified by a real client through discovery, too.
    const { protectedHeader } = await jwtVerify(tokens.at(-1)!.token, createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`)),
      { issuer: server.url, audience: AUDIENCE });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: next.kid });
  });

  it('keeps the private key in the token: sensitive, not extractable, its value refused; the Secret holds no private member', async () => {
    const set = await signingKeys();
    const k = set.keys.find((x) => x.pkcs11)!;
    expect(k.privateJwk).toBeUndefined();
    expect(k.pkcs11!.label).toBe(`apikey-operator-${k.pkcs11!.id}`);
    for (const r of set.keys) expect(r.publicJwk).not.toHaveProperty('d');
    // The raw Secret: not one `d` member anywhere for the PKCS#11 key.
    const raw = JSON.parse(Buffer.from((await getSecret(identity.namespace, SIGNING_KEYS_SECRET))!.data![SIGNING_KEYS_DATA_KEY]!, 'base64').toString()) as
      { keys: Record<string, unknown>[] };
    expect(JSON.stringify(raw.keys.find((x) => x.kid === k.kid))).not.toMatch(/"d"/);
    const objects = hsm.objects().filter((o) => o.id === k.pkcs11!.id);
    expect(objects.map((o) => o.class).sort()).toEqual(['private', 'public']);
    expect(objects.find((o) => o.class === 'private')).toMatchObject({
      label: k.pkcs11!.label, token: true, sensitive: true, extractable: false, valueRefused: true,
    });
  });

  it('turns not ready and answers 503 temporarily_unavailable while the token is removed, with a log line and a metric, and recovers', async () => {
    // Ready with the PKCS#11 key first (a new active key is not ready until the 2 s probe has seen it).
    await waitForHttp(`${server.url}/readyz`, server, 15_000);
    hsm.remove();
    try {
      await waitFor('not ready', async () => (await fetch(`${server.url}/readyz`)).status === 503, 15_000, 100);
      const r = await waitFor('a refusal', async () => {
        const a = await requestToken(server, ci);
        return a.status !== 200 && a;
      }, 15_000, 100);
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('temporarily_unavailable');
      expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
      await waitFor('the log line', () => Promise.resolve(/PKCS#11 token unavailable \(key_missing\)/.test(server.logs())), 10_000, 100);
      expect(await scrapeMetrics(server)).toMatch(/^apikey_operator_pkcs11_errors_total\{operation="(probe|sign)",problem="key_missing"\} [1-9]/m);
    } finally {
      hsm.restore();
    }
    await waitForHttp(`${server.url}/readyz`, server, 30_000);
    await issue();
    expect(await scrapeMetrics(server)).toMatch(/^apikey_operator_pkcs11_up 1$/m);
    await allVerify();
  });

  it('a token server with a wrong PIN is not ready and answers temporarily_unavailable; it logs in once the PIN file is right', async () => {
    hsm.setPinFile('000000000000');
    let other: TokenServerProcess | undefined;
    try {
      other = await startTokenServer({
        kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, env: hsm.env, waitReady: false, args: hsm.flags(),
      });
      await waitFor('the wrong PIN refused', () => Promise.resolve(/problem":"pin_incorrect"/.test(other!.logs())), 20_000, 100);
      await waitForHttp(`${other.url}/readyz`, other, 20_000, 503);
      await waitFor('caches synced', () => Promise.resolve(/caches synced/.test(other!.logs())), 20_000, 100);
      expect((await fetch(`${other.url}/readyz`)).status).toBe(503);
      const r = await requestToken(other, ci);
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('temporarily_unavailable');
      expect(r.headers.get('retry-after')).toBeTruthy();
      const metrics = await scrapeMetrics(other);
      expect(metrics).toMatch(/^apikey_operator_pkcs11_up 0$/m);
      expect(metrics).toMatch(/^apikey_operator_pkcs11_errors_total\{operation="connect",problem="pin_incorrect"\} [1-9]/m);
      hsm.restorePin();
      await waitForHttp(`${other.url}/readyz`, other, 40_000);
      expect((await issue(other)).kid).toBe(activeKey(await signingKeys(), Date.now())!.kid);
      // The PIN itself is in no log line (the final log scan checks every process's log for it too).
      expect(other.logs()).not.toContain(readFileSync(hsm.pinFile, 'utf8').trim());
    } finally {
      hsm.restorePin();
      await other?.stop();
    }
  });

  it('a token server whose module is missing is not ready, says so, and answers temporarily_unavailable', async () => {
    const flags = hsm.flags();
    flags[1] = '/nonexistent/libpkcs11.so';
    const other = await startTokenServer({
      kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, env: hsm.env, waitReady: false, args: flags,
    });
    try {
      await waitFor('module_missing logged', () => Promise.resolve(/PKCS#11 token unavailable \(module_missing\)/.test(other.logs())), 20_000, 100);
      await waitForHttp(`${other.url}/readyz`, other, 20_000, 503);
      await waitFor('caches synced', () => Promise.resolve(/caches synced/.test(other.logs())), 20_000, 100);
      expect((await fetch(`${other.url}/readyz`)).status).toBe(503);
      const r = await requestToken(other, ci);
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('temporarily_unavailable');
      expect(await scrapeMetrics(other)).toMatch(/^apikey_operator_pkcs11_errors_total\{operation="connect",problem="module_missing"\} [1-9]/m);
    } finally {
      await other.stop();
    }
  });

  it('destroys a PKCS#11 key\'s objects in the token once the plan drops it (every token it signed expired), and no other object', async () => {
    // A rotation inside the token: a new algorithm rolls over at once (still published ahead).
    const first = activeKey(await signingKeys(), Date.now())!;
    expect(first.pkcs11).toBeDefined();
    const t0 = Date.now();
    await controller?.stop();
    controller = await startController({
      kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace, env: hsm.env,
      args: ['--token-url', `${server.url}/oauth/token`, '--signing-key-publish-lead', LEAD, '--signing-algorithm', 'EdDSA', ...hsm.flags()],
    });
    const second = await activeOf('pkcs11', t0);
    expect(second.alg).toBe('EdDSA');
    await waitFor('the token server signing with the EdDSA key', async () => (await issue()).kid === second.kid, 20_000, 200);
    const retired = (await signingKeys()).keys.find((k) => k.kid === first.kid)!;
    expect(Date.parse(retired.expireAt!) - Date.now()).toBeGreaterThan(23 * 3600_000);
    const idsInToken = () => hsm.objects().map((o) => `${o.class}:${o.id}`).sort();
    expect(idsInToken()).toEqual([`private:${first.pkcs11!.id}`, `private:${second.pkcs11!.id}`, `public:${first.pkcs11!.id}`, `public:${second.pkcs11!.id}`].sort());

    // A day later, as far as the plan can tell: the retired key's expireAt moved into the past, as if every
    // token it signed had expired (its tokens leave the list that must verify).
    const s = (await getSecret(identity.namespace, SIGNING_KEYS_SECRET))!;
    const set = await signingKeys();
    const past = new Date(Date.now() - 1000).toISOString();
    const edited = { ...set, keys: set.keys.map((k) => (k.kid === first.kid ? { ...k, expireAt: past } : k)) };
    await adminClient().replace(secretPath(identity.namespace, SIGNING_KEYS_SECRET), {
      ...s, data: { ...s.data, [SIGNING_KEYS_DATA_KEY]: Buffer.from(JSON.stringify(edited)).toString('base64') },
    });
    tokens.splice(0, tokens.length, ...tokens.filter((t) => t.kid !== first.kid));
    await waitFor('the expired key dropped from the Secret', async () => !(await signingKeys()).keys.some((k) => k.kid === first.kid), 20_000, 200);
    await waitFor('its objects destroyed in the token', () => Promise.resolve(!idsInToken().some((o) => o.endsWith(first.pkcs11!.id))), 10_000, 100);
    // Only those: the active key's pair stays, and it still signs.
    expect(idsInToken()).toEqual([`private:${second.pkcs11!.id}`, `public:${second.pkcs11!.id}`]);
    expect(controller.logs()).toMatch(new RegExp(`destroyed an expired signing key in the PKCS#11 token.*${first.kid}|${first.kid}.*destroyed an expired signing key`));
    expect((await issue()).kid).toBe(second.kid);
    await allVerify();
  });

  it('switches back to keys in the Secret the same way: the PKCS#11 key stays published, every token still verifies', async () => {
    const pkcs11Kid = activeKey(await signingKeys(), Date.now())!.kid;
    const t0 = Date.now();
    await startControllerWith(false);
    const back = await activeOf('secret', t0);
    const set = await signingKeys();
    expect(set.keys.find((k) => k.kid === pkcs11Kid)).toMatchObject({ retireAt: back.activateAt, expireAt: expect.any(String) as unknown });
    await waitFor('the token server signing with the Secret key again', async () => (await issue()).kid === back.kid, 20_000, 200);
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json() as JSONWebKeySet;
    expect(jwks.keys.map((k) => k.kid)).toContain(pkcs11Kid);
    for (const k of jwks.keys) expect(k).not.toHaveProperty('d');
    await allVerify();
    expect(new Set(tokens.map((t) => t.kid)).size).toBeGreaterThanOrEqual(3);
  });
});
