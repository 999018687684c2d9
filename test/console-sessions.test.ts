/**
 * Issue 20.5: the in-cluster console's sessions survive its restart and are
 * shared by replicas without session affinity. On the real control plane,
 * with a real OpenID Connect provider (oidc-provider, test/support/oidc-provider.ts)
 * and a real headless Chromium:
 *
 * - the controller (with --console-sessions) makes the session keys Secret
 *   and rotates it, and makes the sign-out ConfigMap;
 * - the test plays the kubelet: it copies the Secret's keys.json into a file
 *   whenever the Secret changes, as a mounted Secret is updated in place;
 * - two console processes share that file and the sign-out list, with the
 *   console ServiceAccount's own chart RBAC (the sign-out list only), behind
 *   a loopback proxy that sends each request to the other replica than the
 *   one before (and the OIDC callback to the other replica than the one that
 *   began the sign-in).
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './cluster/controlplane.ts';
import { launchBrowser } from './support/browser.ts';
import { clusterState, createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { consoleRoutes, signInWithOidc } from './support/console.ts';
import { OIDC_PREFIX, trustIssuer } from './support/oidc-issuer.ts';
import { startOidcProvider, type TestOidcProvider } from './support/oidc-provider.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { MAIN, recordSecret, startController, startProcess, waitForHttp, type RunningProcess } from './support/processes.ts';
import { adminClient, createDeployment, uniqueAudience } from './support/resources.ts';
import { waitFor } from './support/wait.ts';

const CLIENT_ID = 'apikey-console-replicas';
const CLIENT_SECRET = 'console-sessions-test-client-secret';
const SESSION_COOKIE = 'apikey_console_session';
const KEYS_SECRET = 'apikey-operator-console-session-keys';
const SIGN_OUTS = 'apikey-operator-console-sign-outs';

let provider: TestOidcProvider;
let trust: { restore(): void } | undefined;
let ns: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let browser: Browser;
let dir: string;
let keysFile: string;
let kubeletTimer: NodeJS.Timeout | undefined;
/** The keys.json last copied from the Secret into keysFile. */
let mountedKeys = '';
const replicas: { port: number; base: string; process?: RunningProcess }[] = [];
let proxy: Server;
let base: string;
/** Which replica (0 or 1) answered each request through the proxy: `METHOD path -> replica`. */
const served: { method: string; path: string; replica: number }[] = [];

/** The keys file of the Secret, as the controller wrote it. */
async function secretKeys(): Promise<{ text: string; ids: string[] }> {
  const s = await adminClient().get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${identity.namespace}/secrets/${KEYS_SECRET}`);
  const text = Buffer.from(s.data?.['keys.json'] ?? '', 'base64').toString('utf8');
  return { text, ids: (JSON.parse(text) as { keys: { id: string }[] }).keys.map((k) => k.id) };
}

/** What the kubelet does for a mounted Secret: the new content replaces the old one at once (written aside, renamed). */
async function syncMount(): Promise<void> {
  const { text } = await secretKeys();
  if (text === mountedKeys) return;
  writeFileSync(`${keysFile}.new`, text);
  renameSync(`${keysFile}.new`, keysFile);
  mountedKeys = text;
}

async function startReplica(i: number): Promise<void> {
  const r = replicas[i]!;
  const state = clusterState();
  r.process = startProcess(`console-replica-${i}`, [
    MAIN, 'console', '--oidc-issuer-url', provider.issuer, '--oidc-client-id', CLIENT_ID, '--oidc-ca-file', provider.caFile,
    '--oidc-scopes', 'openid,email,groups', '--public-url', base, '--host', '127.0.0.1', '--port', String(r.port), '--namespace', ns.name,
    '--apiserver-url', state.server, '--apiserver-ca-file', join(state.dir, 'pki', 'ca.crt'),
    '--session-keys-file', keysFile, '--kubeconfig', identity.consoleKubeconfig!, '--sign-outs-namespace', identity.namespace,
  ], { KUBERNETES_SERVICE_HOST: undefined, APIKEY_OPERATOR_OIDC_CLIENT_SECRET: CLIENT_SECRET });
  await waitForHttp(`${r.base}/readyz`, r.process);
}

/**
 * Each request goes to the other replica than the one before; the OIDC
 * callback goes to the other replica than the one that began that sign-in,
 * and the page of a new secret to the other replica than the POST that made
 * it (matched by nothing but order: one at a time here).
 */
function startProxy(port: number): Promise<Server> {
  let next = 0;
  let signInReplica = 0;
  let postReplica = 0;
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    let replica = next;
    next = 1 - next;
    if (path.startsWith('/auth/sign-in')) signInReplica = replica;
    if (path.startsWith('/auth/callback')) replica = 1 - signInReplica;
    if (req.method === 'POST') postReplica = replica;
    if (path.startsWith('/revealed/')) replica = 1 - postReplica;
    served.push({ method: req.method ?? '', path: path.split('?')[0]!, replica });
    const upstream = httpRequest({ host: '127.0.0.1', port: replicas[replica]!.port, method: req.method, path, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => { res.writeHead(502).end(); });
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

/** Signs `person` in through the proxy, starting at `path`. */
const signIn = (person: string, path = '/') => signInWithOidc(browser, base, provider.issuer, person, path);

const sessionOf = async (context: BrowserContext) => (await context.cookies(base)).find((c) => c.name === SESSION_COOKIE)!;

/** GET `path` of `url` with `cookie` (name=value) and no redirects followed: status and Location. */
function get(url: string, path: string, cookie: string): Promise<{ status: number; location?: string; setCookie: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { agent: false, headers: { cookie, connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, setCookie: res.headers['set-cookie'] ?? [], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether `cookie` is a live session on replica `i`: the Deployments page answers 200 (not a redirect to sign in). */
async function liveOn(i: number, cookie: string): Promise<boolean> {
  const r = await get(replicas[i]!.base, '/', cookie);
  if (r.status === 200) return true;
  expect(r.status, r.body.slice(0, 200)).toBe(303);
  expect(r.location).toMatch(/^\/auth\/sign-in\?next=/);
  return false;
}

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    replicas.push({ port, base: `http://127.0.0.1:${port}` });
  }
  const proxyPort = await freePort();
  base = `http://127.0.0.1:${proxyPort}`;
  provider = await startOidcProvider({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${base}/auth/callback`], postLogoutRedirectUris: [`${base}/auth/signed-out`] }],
  });
  trust = await trustIssuer(provider, CLIENT_ID);
  ns = await createNamespace('console-sessions');
  identity = await installOperatorIdentity({
    console: { enabled: true, publicURL: base, oidc: { issuerURL: provider.issuer, clientID: CLIENT_ID, clientSecret: { existingSecret: 'console-oidc' } } },
  });
  // Keys rotate every minute, seal 5 s after they are made (every replica has read them by then), and open
  // for ten minutes after they stop sealing: long enough for this file's sessions.
  controller = await startController({
    kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace,
    args: ['--console-sessions', '--console-session-lifetime', '10m', '--console-session-key-rotation', '1m', '--console-session-key-publish-lead', '5s'],
  });
  await createDeployment(ns.name, 'airflow', { audiences: [uniqueAudience('console-sessions')] });
  const view = `${identity.release}-apikey-operator-view`;
  for (const person of ['alice', 'bob', 'carol']) {
    expect((await kubectl(['create', 'rolebinding', `${person}-view`, '-n', ns.name, `--clusterrole=${view}`, `--user=${OIDC_PREFIX}${person}`])).code).toBe(0);
  }
  // alice may also create keys and read their Secrets.
  expect((await kubectl(['create', 'rolebinding', 'alice-edit', '-n', ns.name, `--clusterrole=${identity.release}-apikey-operator-edit`, `--user=${OIDC_PREFIX}alice`])).code).toBe(0);
  expect((await kubectl(['create', 'role', 'secret-reader', '-n', ns.name, '--verb=get', '--resource=secrets'])).code).toBe(0);
  expect((await kubectl(['create', 'rolebinding', 'alice-secrets', '-n', ns.name, '--role=secret-reader', `--user=${OIDC_PREFIX}alice`])).code).toBe(0);
  expect((await kubectl(['create', 'rolebinding', 'alice-token', '-n', ns.name, `--clusterrole=${identity.release}-apikey-operator-deployment-token-requester`,
    `--user=${OIDC_PREFIX}alice`])).code).toBe(0);

  dir = mkdtempSync(join(tmpdir(), 'console-sessions-'));
  keysFile = join(dir, 'keys.json');
  await waitFor('the controller made the session keys', () => secretKeys().then((k) => k.ids.length > 0, () => false), 30_000, 200);
  await syncMount();
  kubeletTimer = setInterval(() => { void syncMount().catch(() => undefined); }, 500);
  recordSecret(CLIENT_SECRET);
  proxy = await startProxy(proxyPort);
  await Promise.all([startReplica(0), startReplica(1)]);
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  clearInterval(kubeletTimer);
  await browser?.close();
  for (const r of replicas) await r.process?.stop();
  await new Promise((resolve) => proxy ? proxy.close(resolve) : resolve(undefined));
  await controller?.stop();
  trust?.restore();
  await provider?.stop();
  await identity?.cleanup();
  await ns?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('console sessions shared by replicas and kept across restarts', () => {
  let alice: { context: BrowserContext; page: Page };
  afterAll(async () => { await alice?.context.close(); });

  it('makes the session keys Secret and the sign-out ConfigMap in the operator namespace, and the console\'s own account may touch nothing else', async () => {
    const cm = await adminClient().get<{ metadata: { labels?: Record<string, string> } }>(`/api/v1/namespaces/${identity.namespace}/configmaps/${SIGN_OUTS}`);
    expect(cm.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('apikey-operator');
    const keys = JSON.parse((await secretKeys()).text) as { keys: { id: string; key: string; created: number }[]; lifetimeMs: number; publishLeadMs: number };
    expect(keys).toMatchObject({ lifetimeMs: 600_000, publishLeadMs: 5000 });
    for (const k of keys.keys) expect(Buffer.from(k.key, 'base64')).toHaveLength(32);
    const can = async (verb: string, resource: string, name?: string) => {
      const r = await kubectl(['auth', 'can-i', verb, resource + (name ? `/${name}` : ''), '-n', identity.namespace], { kubeconfig: identity.consoleKubeconfig! });
      return r.stdout.trim();
    };
    expect(await can('patch', 'configmaps', SIGN_OUTS)).toBe('yes');
    expect(await can('patch', 'configmaps', 'something-else')).toBe('no');
    expect(await can('get', 'secrets', KEYS_SECRET)).toBe('no');
    expect(await can('create', 'configmaps')).toBe('no');
  });

  it('signs in through two replicas that take turns, the OIDC callback on the other replica than the sign-in began on, and every page after holds the session', async () => {
    served.length = 0;
    alice = await signIn('alice', `/deployments/${ns.name}/airflow`);
    const { context, page } = alice;
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}alice`);
    const begin = served.find((s) => s.path === '/auth/sign-in')!;
    const callback = served.find((s) => s.path === '/auth/callback')!;
    expect(callback.replica).toBe(1 - begin.replica);
    for (let i = 0; i < 6; i++) {
      const r = await page.goto(`${base}/deployments/${ns.name}/airflow?visit=${i}`);
      expect(r?.status()).toBe(200);
      expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}alice`);
    }
    const after = served.slice(served.indexOf(callback) + 1).filter((s) => s.path.startsWith('/deployments/'));
    expect(new Set(after.map((s) => s.replica))).toEqual(new Set([0, 1]));
    // The cookie: HttpOnly, SameSite=Strict, for the whole console, within what a browser keeps.
    const cookie = await sessionOf(context);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/', secure: false });
    const size = `${cookie.name}=${cookie.value}`.length;
    console.log(`session cookie with an ID token of the test provider: ${size} bytes (name=value)`);
    expect(size).toBeLessThan(4000);
    // Sealed: nothing of the ID token (a JWT) or the person's name can be read from it.
    expect(cookie.value).not.toMatch(/eyJ|alice/);
  });

  it('creates a key on one replica and shows its secret once on the other: the secret waits in the sealed cookie, and a reload on either replica says it is gone', async () => {
    const { page } = alice;
    await page.goto(`${base}/deployments/${ns.name}/airflow`);
    await page.getByRole('button', { name: 'Add API Key' }).click();
    await page.getByLabel('Name', { exact: true }).fill('across-replicas');
    served.length = 0;
    await page.getByRole('button', { name: 'Create API Key' }).click();
    await page.waitForURL(/\/revealed\//, { timeout: 90_000 }).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${page.url()}\n${(await page.locator('main').textContent())?.slice(0, 500)}`);
    });
    const secret = (await page.locator('#key-secret').textContent())!.trim();
    recordSecret(secret);
    expect(secret).toMatch(/^aks_/);
    const post = served.find((s) => s.method === 'POST')!;
    const shown = served.find((s) => s.path.startsWith('/revealed/'))!;
    expect(shown.replica).toBe(1 - post.replica);
    // Shown once: the answer sealed the session again without it.
    const cookie = `${SESSION_COOKIE}=${(await sessionOf(alice.context)).value}`;
    for (const i of [0, 1]) expect((await get(replicas[i]!.base, new URL(page.url()).pathname, cookie)).status).toBe(410);
  });

  it('keeps alice signed in when both console processes are killed and new ones started: she goes on without signing in again', async () => {
    const { page } = alice;
    for (const r of replicas) await r.process!.kill();
    await Promise.all([startReplica(0), startReplica(1)]);
    const navigations: string[] = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    for (let i = 0; i < 4; i++) {
      const r = await page.goto(`${base}/deployments/${ns.name}/airflow?after-restart=${i}`);
      expect(r?.status()).toBe(200);
      expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}alice`);
    }
    expect(navigations.filter((u) => u.startsWith(provider.issuer))).toEqual([]);
  });

  it('signs bob out on replica 0, after which a copy of his cookie fails on replica 1 (and on 0), while alice\'s session goes on', async () => {
    const { context, page } = await signIn('bob');
    const cookie = await sessionOf(context);
    const copy = `${SESSION_COOKIE}=${cookie.value}`;
    expect(await liveOn(0, copy)).toBe(true);
    expect(await liveOn(1, copy)).toBe(true);
    // Sign out on replica 0 itself (the browser sends its cookie to any port of the host).
    await page.goto(`${replicas[0]!.base}/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${provider.issuer}/**`);
    const signedOutAt = performance.now();
    expect(await liveOn(0, copy)).toBe(false);
    await waitFor('replica 1 to refuse the signed-out cookie', async () => !await liveOn(1, copy), 10_000, 20);
    console.log(`the sign-out reached the other replica within ${Math.round(performance.now() - signedOutAt)} ms`);
    const list = await adminClient().get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${identity.namespace}/configmaps/${SIGN_OUTS}`);
    expect(Object.keys(list.data ?? {}).filter((k) => k.startsWith('s.'))).toHaveLength(1);
    const aliceCookie = await sessionOf(alice.context);
    expect(await liveOn(1, `${SESSION_COOKIE}=${aliceCookie.value}`)).toBe(true);
    await context.close();
  });

  it('goes on opening a session sealed under the previous key after the controller rotates, and seals it again under the new key', async () => {
    const { context, page } = await signIn('carol');
    const before = await sessionOf(context);
    const oldKey = before.value.slice(0, 8);
    expect((await secretKeys()).ids).toContain(oldKey);
    // The controller makes a new key when the newest is a minute old (--console-session-key-rotation 1m); it seals 5 s later.
    const resealed = (x: { status: number; setCookie: string[] }) => x.status === 200
      && x.setCookie.some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !c.startsWith(`${SESSION_COOKIE}=${oldKey}`));
    await waitFor('both replicas to seal with a newer key', async () => {
      const answers = await Promise.all([0, 1].map((i) => get(replicas[i]!.base, '/', `${SESSION_COOKIE}=${before.value}`)));
      for (const a of answers) expect(a.status).toBe(200);
      return answers.every(resealed) || undefined;
    }, 90_000, 250);
    const r = await page.goto(`${base}/?rotated=1`);
    expect(r?.status()).toBe(200);
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}carol`);
    const after = (await sessionOf(context)).value.slice(0, 8);
    expect(after).not.toBe(oldKey);
    expect((await secretKeys()).ids.slice(0, 2)).toContain(after);
    expect((await secretKeys()).ids).toContain(oldKey);
    await context.close();
  }, 150_000);

  it('refuses a cookie sealed by a retired key with a clean sign-in, never an error', async () => {
    const { context } = await signIn('carol');
    const old = await sessionOf(context);
    const oldKey = old.value.slice(0, 8);
    // Retire carol's key, as the controller does once a key's sessions have all expired; first wait until
    // a newer key seals (made a minute after his, sealing 5 s later), so that new sessions have a key.
    await waitFor('a newer key that seals', async () => {
      const k = JSON.parse((await secretKeys()).text) as { keys: { id: string; created: number }[] };
      return k.keys.findIndex((x) => x.id === oldKey) > 0 && Date.now() - k.keys[0]!.created > 8000 || undefined;
    }, 90_000, 500);
    const now = JSON.parse((await secretKeys()).text) as { keys: { id: string }[] };
    const kept = { ...now, keys: now.keys.filter((k) => k.id !== oldKey) };
    const r = await kubectl(['patch', 'secret', KEYS_SECRET, '-n', identity.namespace, '--type=merge', '-p',
      JSON.stringify({ data: { 'keys.json': Buffer.from(JSON.stringify(kept)).toString('base64') } })]);
    expect(r.code, r.stderr).toBe(0);
    for (const i of [0, 1]) await waitFor(`replica ${i} to drop the retired key`, async () => !await liveOn(i, `${SESSION_COOKIE}=${old.value}`), 15_000, 100);
    // In the browser: the console sends carol to sign in again (the provider knows her still: no form), and she is back.
    const page = await context.newPage();
    const res = await page.goto(`${base}/`);
    expect(res?.status()).toBe(200);
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}carol`);
    expect((await sessionOf(context)).value.slice(0, 8)).not.toBe(oldKey);
    await context.close();
  }, 150_000);

  it('is not ready, and says it is starting, while it has no session key: never a 5xx other than that 503, never a crash', async () => {
    const port = await freePort();
    const state = clusterState();
    const p = startProcess('console-without-keys', [
      MAIN, 'console', '--oidc-issuer-url', provider.issuer, '--oidc-client-id', CLIENT_ID, '--oidc-ca-file', provider.caFile,
      '--public-url', base, '--host', '127.0.0.1', '--port', String(port), '--apiserver-url', state.server,
      '--apiserver-ca-file', join(state.dir, 'pki', 'ca.crt'), '--session-keys-file', join(dir, 'no-such-file.json'),
      '--kubeconfig', identity.consoleKubeconfig!, '--sign-outs-namespace', identity.namespace,
    ], { KUBERNETES_SERVICE_HOST: undefined, APIKEY_OPERATOR_OIDC_CLIENT_SECRET: CLIENT_SECRET });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, p);
      const ready = await get(`http://127.0.0.1:${port}`, '/readyz', '');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatch(/no session key/);
      const good = `${SESSION_COOKIE}=${(await sessionOf(alice.context)).value}`;
      for (const path of ['/', '/auth/sign-in', `/deployments/${ns.name}/airflow`]) {
        const r = await get(`http://127.0.0.1:${port}`, path, good);
        expect(r.status).toBe(503);
        expect(r.body).toContain('The console is starting');
      }
      expect(p.child.exitCode).toBeNull();
    } finally {
      await p.stop();
    }
  });

  it('refuses tampered, truncated, oversized, foreign-key and garbage session cookies on every route of both replicas: a redirect to sign in or a plain refusal, never a 5xx', async () => {
    // A session of its own: an earlier test retired a key that alice's may have been sealed with.
    const { context } = await signIn('alice');
    const good = (await sessionOf(context)).value;
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const bad = [
      flip(good, 3), flip(good, 20), flip(good, Math.floor(good.length / 2)), flip(good, good.length - 1),
      good.slice(0, -1), good.slice(0, 40), `${good}A`, `${good}${good}`.slice(0, 4096), 'AAAAAAAA' + good.slice(8), `zzzzzzzz${good.slice(8)}`,
      'A'.repeat(5000), 'not a cookie', '', '\u00e9t\u00e9', 'eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.',
    ];
    for (const value of bad) {
      for (const i of [0, 1]) {
        for (const route of consoleRoutes(ns.name, 'airflow', 'nothing').filter((r) => r.method === 'GET')) {
          const r = await get(replicas[i]!.base, route.path, `${SESSION_COOKIE}=${value}`);
          expect(r.status, `${route.path} with ${value.slice(0, 30)}`).toBeLessThan(500);
          if (route.path === '/' || route.path.startsWith('/deployments/')) {
            expect(`${r.status} ${r.location}`, `${route.path} with ${value.slice(0, 30)}`).toMatch(/^303 \/auth\/sign-in\?next=/);
          }
        }
      }
    }
    // And the good one still works on both.
    expect(await liveOn(0, `${SESSION_COOKIE}=${good}`)).toBe(true);
    expect(await liveOn(1, `${SESSION_COOKIE}=${good}`)).toBe(true);
    await context.close();
  });
});
