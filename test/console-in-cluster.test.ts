/**
 * Issue 13: the console's in-cluster mode, in a real browser (Debian's
 * chromium, headless), on the real control plane. People sign in at a real
 * OpenID Connect provider (oidc-provider over TLS, test/support/oidc-provider.ts)
 * that the test apiserver trusts through its structured authentication
 * configuration, and the console calls the apiserver with their ID tokens:
 * the console process has no identity of its own at all (no kubeconfig, no
 * ServiceAccount), so whatever it manages to do was done as the person, and
 * RBAC decides what each person sees.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Agent, request as undiciRequest } from 'undici';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './cluster/controlplane.ts';
import { adminClient, createApiKey, createDeployment, getApiKey, uniqueAudience, waitForReady } from './support/resources.ts';
import { launchBrowser, seriousViolations } from './support/browser.ts';
import { clusterState, createNamespace, kubectl, type TestNamespace } from './support/cluster.ts';
import { OIDC_PREFIX, trustIssuer } from './support/oidc-issuer.ts';
import { startOidcProvider, type TestOidcProvider } from './support/oidc-provider.ts';
import { installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { consoleRoutes, foreignCookieHeaders, loopbackOnly, signInWithOidc, statusWithCookie } from './support/console.ts';
import {
  MAIN, recordSecret, startController, startProcess, startTokenServer, waitForHttp, type RunningProcess, type TokenServerProcess,
} from './support/processes.ts';
import { waitFor } from './support/wait.ts';

const CLIENT_ID = 'apikey-console';
const CLIENT_SECRET = 'in-cluster-console-test-client-secret';
const AUDIENCE = uniqueAudience('console-oidc');

let provider: TestOidcProvider;
let trust: { restore(): void } | undefined;
let ns: TestNamespace;
let other: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let consoleProcess: RunningProcess;
let browser: Browser;
let base: string;
/** A second console whose client id the API server does not accept as an audience. */
let untrusted: RunningProcess;
let untrustedBase: string;

/** A RoleBinding in `namespace` of `clusterRole` to an OIDC user or group (the apiserver's `oidc:` names). */
async function bind(namespace: string, name: string, clusterRole: string, subject: { user: string } | { group: string }): Promise<void> {
  const who = 'user' in subject ? `--user=${OIDC_PREFIX}${subject.user}` : `--group=${OIDC_PREFIX}${subject.group}`;
  const r = await kubectl(['create', 'rolebinding', name, '-n', namespace, `--clusterrole=${clusterRole}`, who]);
  expect(r.code, r.stderr).toBe(0);
}

/** Waits until the apiserver's authorizer knows a new binding. */
async function allowed(user: string, groups: string[], attrs: Record<string, string>): Promise<void> {
  await waitFor(`${user} may ${attrs.verb} ${attrs.resource}`, async () => {
    const review = await adminClient().create<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
      spec: { user, groups: [...groups, 'system:authenticated'], resourceAttributes: { namespace: ns.name, ...attrs } },
    });
    return review.status?.allowed === true;
  }, 10_000, 50);
}

/** Signs `person` in at the console, starting at `path`. */
const signIn = (person: string, path = '/') => signInWithOidc(browser, base, provider.issuer, person, path);

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const untrustedPort = await freePort();
  untrustedBase = `http://127.0.0.1:${untrustedPort}`;
  provider = await startOidcProvider({
    clients: [
      { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${base}/auth/callback`], postLogoutRedirectUris: [`${base}/auth/signed-out`] },
      { clientId: 'untrusted-console', clientSecret: CLIENT_SECRET, redirectUris: [`${untrustedBase}/auth/callback`] },
    ],
  });
  trust = await trustIssuer(provider, CLIENT_ID);

  ns = await createNamespace('console-oidc');
  other = await createNamespace('console-oidc-other');
  identity = await installOperatorIdentity();
  // The controller first: it makes the signing keys the token server needs to be ready.
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  server = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace });
  await createDeployment(ns.name, 'airflow', { description: 'Production Airflow', audiences: [AUDIENCE] });
  await createDeployment(other.name, 'other-airflow', { audiences: [uniqueAudience('console-oidc-other')] });
  await createApiKey(ns.name, 'observer', { deploymentRef: { name: 'airflow' }, description: 'dashboard', permissions: ['read'] });

  // alice (a user binding): the chart's view and edit roles, get on Secrets, and the token requester role.
  const role = (r: string) => `${identity.release}-apikey-operator-${r}`;
  await bind(ns.name, 'alice-view', role('view'), { user: 'alice' });
  await bind(ns.name, 'alice-edit', role('edit'), { user: 'alice' });
  expect((await kubectl(['create', 'role', 'secret-reader', '-n', ns.name, '--verb=get', '--resource=secrets'])).code).toBe(0);
  expect((await kubectl(['create', 'rolebinding', 'alice-secret-reader', '-n', ns.name, '--role=secret-reader', `--user=${OIDC_PREFIX}alice`])).code).toBe(0);
  await bind(ns.name, 'alice-token', role('deployment-token-requester'), { user: 'alice' });
  // bob (through his group, from the ID token's groups claim): the chart's view role only. carol: nothing.
  await bind(ns.name, 'viewers-view', role('view'), { group: 'viewers' });
  await allowed(`${OIDC_PREFIX}alice`, [], { verb: 'create', group: 'apikeys.dev', resource: 'apikeys' });
  await allowed(`${OIDC_PREFIX}alice`, [], { verb: 'get', group: '', resource: 'secrets' });
  await allowed(`${OIDC_PREFIX}alice`, [], { verb: 'create', group: 'apikeys.dev', resource: 'deployments', subresource: 'token', name: 'airflow' });
  await allowed(`${OIDC_PREFIX}bob`, [`${OIDC_PREFIX}viewers`], { verb: 'list', group: 'apikeys.dev', resource: 'apikeys' });
  await waitForReady(ns.name, 'observer');

  recordSecret(CLIENT_SECRET);
  const state = clusterState();
  // No kubeconfig and no pod environment: the console has no Kubernetes identity of its own.
  const startConsole = (name: string, clientId: string, url: string, listen: number) => startProcess(name, [
    MAIN, 'console', '--oidc-issuer-url', provider.issuer, '--oidc-client-id', clientId, '--oidc-ca-file', provider.caFile,
    '--oidc-scopes', 'openid,email,groups', '--public-url', url, '--host', '127.0.0.1', '--port', String(listen),
    '--namespace', ns.name, '--apiserver-url', state.server, '--apiserver-ca-file', join(state.dir, 'pki', 'ca.crt'), '--token-url', `${server.url}/oauth/token`,
  ], { KUBECONFIG: undefined, KUBERNETES_SERVICE_HOST: undefined, APIKEY_OPERATOR_OIDC_CLIENT_SECRET: CLIENT_SECRET });
  consoleProcess = startConsole('console-in-cluster', CLIENT_ID, base, port);
  untrusted = startConsole('console-in-cluster-untrusted', 'untrusted-console', untrustedBase, untrustedPort);
  await waitForHttp(`${base}/healthz`, consoleProcess);
  await waitForHttp(`${untrustedBase}/healthz`, untrusted);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await consoleProcess?.stop();
  await untrusted?.stop();
  await Promise.all([server?.stop(), controller?.stop()]);
  trust?.restore();
  await provider?.stop();
  await identity?.cleanup();
  for (const n of [ns, other]) await n?.cleanup();
});

describe('the console in in-cluster mode, signed in with OpenID Connect', () => {
  let alice: { context: BrowserContext; page: Page };

  afterAll(async () => { await alice?.context.close(); });

  it('sends a visitor to the identity provider, and back to the page they asked for, signed in under the name the API server gives them', async () => {
    alice = await signIn('alice', `/deployments/${ns.name}/airflow`);
    const { context, page } = alice;
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}alice`);
    expect(await page.locator('tr[data-key="observer"]').count()).toBe(1);
    // The provider's cookies share the host (cookies ignore ports): the console's are those named apikey_console_*.
    const cookies = (await context.cookies(base)).filter((c) => c.name.startsWith('apikey_console'));
    expect(cookies.map((c) => c.name)).toEqual(['apikey_console_session']);
    const [session] = cookies;
    // A random id: the ID token stays on the server.
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(session!.value).not.toMatch(/^eyJ/);
    expect(session!.value.length).toBeLessThan(100);
  });

  it('lets alice create an API key in her namespace: the console has no rights of its own, so it made the call with her ID token', async () => {
    const { page } = alice;
    await page.getByRole('button', { name: 'Add API Key' }).click();
    await page.getByLabel('Name', { exact: true }).fill('ci-deployer');
    await page.getByLabel('Description').fill('made by alice through OIDC');
    await page.getByRole('button', { name: 'Create API Key' }).click();
    await page.waitForURL(/\/revealed\//);
    const keyId = (await page.locator('#key-id').textContent())!.trim();
    const secret = (await page.locator('#key-secret').textContent())!.trim();
    recordSecret(secret);
    expect(keyId).toMatch(/^ak_[a-z2-7]{26}$/);
    expect(secret).toMatch(/^aks_/);
    expect((await getApiKey(ns.name, 'ci-deployer'))?.spec.description).toBe('made by alice through OIDC');
  });

  it('gives alice a temporary token on /token by exchanging her ID token: its subject is her OIDC name', async () => {
    const { page } = alice;
    await page.goto(`${base}/token`);
    await page.getByLabel('Deployment').selectOption(`${ns.name}/airflow`);
    await page.getByRole('button', { name: 'Get token' }).click();
    await page.waitForLoadState('load');
    const token = (await page.locator('#token').textContent())!.trim();
    recordSecret(token);
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`)), { audience: AUDIENCE });
    expect(payload.sub).toBe(`${OIDC_PREFIX}alice`);
  });

  it('tells alice what she may not do in a namespace where she has no rights', async () => {
    const { page } = alice;
    const r = await page.goto(`${base}/deployments/${other.name}/other-airflow`);
    expect(r?.status()).toBe(403);
    expect(await page.getByText(`You may not get Deployments in ${other.name}.`).count()).toBe(1);
  });

  it('refuses a forged POST without the session\'s CSRF token', async () => {
    const r = await alice.page.request.post(`${base}/deployments/${ns.name}/airflow/keys`, { form: { name: 'forged', permissions: 'deploy' }, maxRedirects: 0 });
    expect(r.status()).toBe(403);
    expect(await getApiKey(ns.name, 'forged')).toBeUndefined();
  });

  it('signs alice out of the console and of the provider by its client id: the ID token is in no URL and no request, and the next visit asks her to sign in again', async () => {
    const { page } = alice;
    const requests: { method: string; url: string; body: string }[] = [];
    page.on('request', (r) => { requests.push({ method: r.method(), url: r.url(), body: r.postData() ?? '' }); });
    await page.goto(`${base}/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    // The provider asks whether to end its session too.
    await page.waitForURL(`${provider.issuer}/**`);
    await page.getByRole('button', { name: /yes/i }).click();
    await page.waitForURL(`${base}/auth/signed-out`);
    expect(await page.getByRole('heading', { name: 'Signed out' }).count()).toBe(1);
    expect(await seriousViolations(page)).toEqual([]);
    expect((await alice.context.cookies(base)).filter((c) => c.name.startsWith('apikey_console'))).toEqual([]);

    // The end-session request names the console's client, and nothing of the person's.
    const endSession = requests.find((r) => r.url.startsWith(`${provider.issuer}/session/end?`));
    expect(endSession, JSON.stringify(requests.map((r) => `${r.method} ${r.url}`))).toBeDefined();
    expect(Object.fromEntries(new URL(endSession!.url).searchParams)).toEqual({
      client_id: CLIENT_ID, post_logout_redirect_uri: `${base}/auth/signed-out`,
    });
    // No ID token (a JWT) and no id_token_hint in any URL the browser asked for, nor in any body it sent.
    for (const r of requests) {
      expect(r.url).not.toMatch(/eyJ[\w-]+\.eyJ|id_token_hint/);
      expect(r.body).not.toMatch(/eyJ[\w-]+\.eyJ|id_token_hint/);
    }
    // Nor in the history the browser keeps (the session's entries, read from the DevTools protocol).
    const cdp = await alice.context.newCDPSession(page);
    const history = await cdp.send('Page.getNavigationHistory');
    for (const e of history.entries) expect(e.url).not.toMatch(/eyJ[\w-]+\.eyJ|id_token_hint/);
    await cdp.detach();

    await page.goto(`${base}/`);
    expect(page.url().startsWith(`${provider.issuer}/interaction/`)).toBe(true);
  });
});

describe('sign-in as an attacker would try it', () => {
  /**
   * `next` values as they appear in a link (already percent-encoded where a
   * browser would need it): every way a browser could read a path as another
   * host, and absolute URLs.
   */
  const NEXT = [
    '/%09/evil.example/phish', '/%0A/evil.example/phish', '/%0D%0A/evil.example/phish', '/%09%09/evil.example', '%09//evil.example',
    '/%5Cevil.example', '/%5C/evil.example', '%5C%5Cevil.example', '/%2F/evil.example', '%2F%2Fevil.example', '/%2F%2Fevil.example',
    '//evil.example', '///evil.example', '/.//evil.example', '/a/..//evil.example', '/%2e%2e//evil.example',
    'https://evil.example/', 'https:evil.example', 'http://127.0.0.1:9/', '%20//evil.example', 'javascript:alert(document.domain)',
    'JaVaScRiPt%3Aalert(1)', 'data:text/html,hi', '/deployments%0D%0ALocation:%20https://evil.example',
  ];

  it.each(NEXT)('after signing in with next=%s, the browser is on the console\'s own origin and went nowhere else', async (next) => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const elsewhere = await loopbackOnly(context);
    const page = await context.newPage();
    const navigations: string[] = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    page.on('dialog', (d) => { navigations.push(`dialog:${d.message()}`); void d.dismiss(); });
    await page.goto(`${base}/auth/sign-in?next=${next}`);
    await page.getByLabel('User name').fill('alice');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Wait for the page after the callback's, or for a sign that the browser left.
    await waitFor('the page after sign-in', () => Promise.resolve(
      elsewhere.length > 0 || navigations.some((u) => !u.startsWith(base) && !u.startsWith(provider.issuer))
        || (page.url().startsWith(base) && !page.url().startsWith(`${base}/auth/`)) || undefined), 20_000, 50);
    await page.waitForLoadState('load');
    expect(elsewhere).toEqual([]);
    expect(navigations.filter((u) => !u.startsWith(base) && !u.startsWith(provider.issuer))).toEqual([]);
    expect(new URL(page.url()).origin).toBe(base);
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}alice`);
    await context.close();
  });

  it('returns to the page asked for when next is a page of the console, query and all', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    await loopbackOnly(context);
    const page = await context.newPage();
    await page.goto(`${base}/auth/sign-in?next=${encodeURIComponent(`/?namespace=${ns.name}`)}`);
    await page.getByLabel('User name').fill('alice');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/?namespace=${ns.name}`);
    await context.close();
  });

  it('lets a person sign in right after 50,000 sign-ins were started from one address: a started sign-in holds nothing on the server', async () => {
    const agent = new Agent({ connections: 32, pipelining: 1 });
    const started = performance.now();
    const statuses = new Map<number, number>();
    let sent = 0;
    try {
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (sent < 50_000) {
          sent++;
          const r = await undiciRequest(`${base}/auth/sign-in?next=/`, { dispatcher: agent });
          await r.body.dump();
          statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
        }
      }));
    } finally {
      await agent.close();
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`50,000 sign-in starts from one address in ${seconds.toFixed(1)} s (${Math.round(50_000 / seconds)}/s): ${JSON.stringify([...statuses])}`);
    expect([...statuses.keys()]).toEqual([303]);
    const { context, page } = await signIn('bob', `/deployments/${ns.name}/airflow`);
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}bob`);
    await context.close();
  }, 300_000);

  it('ignores cookies it did not set, on every route: never a 5xx, and a signed-in person stays signed in', async () => {
    const { context, page } = await signIn('bob', '/');
    const session = (await context.cookies(base)).find((c) => c.name === 'apikey_console_session')!;
    for (const cookie of foreignCookieHeaders(`${session.name}=${session.value}`)) {
      for (const r of consoleRoutes(ns.name, 'airflow', 'observer')) {
        const status = await statusWithCookie(base, r.method, r.path, cookie);
        expect(status, `${r.method} ${r.path} with Cookie: ${cookie.slice(0, 80)}`).toBeLessThan(500);
      }
    }
    // In the browser: another site's cookie on the same host is no reason to fail.
    await context.addCookies([{ name: 'theme', value: '50%', url: base }, { name: 'lang', value: '%E0%A4%A', url: base }]);
    const r = await page.goto(`${base}/deployments/${ns.name}/airflow`);
    expect(r?.status()).toBe(200);
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}bob`);
    await context.close();
  });
});

describe('people with fewer rights, signed in with OpenID Connect', () => {
  it('shows bob, a viewer through his group, the keys with disabled buttons and what he may not do', async () => {
    const { context, page } = await signIn('bob', `/deployments/${ns.name}/airflow`);
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}bob`);
    expect(await page.locator('tr[data-key="observer"]').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Add API Key' }).isDisabled()).toBe(true);
    await page.locator('tr[data-key="observer"]').getByText('Edit').click();
    expect(await page.locator('tr[data-key="observer"]').getByRole('button', { name: 'Rotate' }).isDisabled()).toBe(true);
    expect(await page.locator('tr[data-key="observer"]').getByRole('button', { name: 'Delete API Key' }).isDisabled()).toBe(true);
    expect(await page.getByText(`You may not create ApiKeys in ${ns.name}`).count()).toBe(1);
    await context.close();
  });

  it('tells carol, who has no rights at all, what is missing instead of showing an empty page', async () => {
    const { context, page } = await signIn('carol');
    expect(await page.locator('.who strong').textContent()).toBe(`${OIDC_PREFIX}carol`);
    expect(await page.getByText('You may not list Deployments across all namespaces.').count()).toBeGreaterThan(0);
    const r = await page.goto(`${base}/?namespace=${ns.name}`);
    expect(r?.status()).toBe(403);
    expect(await page.getByText(`You may not list Deployments in ${ns.name}.`).count()).toBe(1);
    await context.close();
  });

  it('says why a sign-in failed, on an accessible page, when the callback was not started by this browser', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const r = await page.goto(`${base}/auth/callback?code=stolen&state=guessed`);
    expect(r?.status()).toBe(400);
    expect(await page.getByText('This sign-in was not started here').count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Try again' }).getAttribute('href')).toBe('/auth/sign-in');
    expect(await seriousViolations(page)).toEqual([]);
    expect(await page.content()).not.toContain('stolen');
    await context.close();
  });

  it('says so when the provider signs a person in but the API server does not accept ID tokens for the console\'s client id', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${untrustedBase}/`);
    await page.getByLabel('User name').fill('alice');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${untrustedBase}/auth/callback?**`);
    expect(await page.getByText('the Kubernetes API server does not accept your ID token').count()).toBe(1);
    expect(await page.getByText(`for ID tokens whose audience is untrusted-console`).count()).toBe(1);
    expect((await context.cookies(untrustedBase)).filter((c) => c.name === 'apikey_console_session')).toEqual([]);
    await context.close();
  });

  it('never writes the client secret or a person\'s token in its log', () => {
    for (const p of [consoleProcess, untrusted]) {
      const log = readFileSync(p.logFile, 'utf8');
      expect(log).not.toContain(CLIENT_SECRET);
      expect(log).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\./);
    }
  });
});
