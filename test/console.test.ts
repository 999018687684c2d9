/**
 * Issue 13: the web console in local mode, in a real browser (Debian's
 * chromium, headless), on the real control plane with the real controller and
 * token server. People are ServiceAccounts with TokenRequest kubeconfigs,
 * bound to the chart's own roles for people; the admin's kubeconfig (a client
 * certificate) is the person without a bearer token. Every page is checked
 * with axe-core and weighed as the browser loaded it.
 */
import { request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterState, createNamespace, kubectl, serviceAccountKubeconfig, type TestNamespace } from './support/cluster.ts';
import { launchBrowser, measureFirstLoad, pageWeight, seriousViolations } from './support/browser.ts';
import { consoleRoutes, foreignCookieHeaders, startConsole, statusWithCookie, type ConsoleProcess } from './support/console.ts';
import { freePort } from './cluster/controlplane.ts';
import { runPlugin } from './support/plugin.ts';
import { bindTokenRequester, installOperatorIdentity, type OperatorIdentity } from './support/operator.ts';
import { logDir, recordSecret, startController, startTokenServer, waitForHttp, type RunningProcess, type TokenServerProcess } from './support/processes.ts';
import {
  adminClient, apiKeyPath, createApiKey, createDeployment, credentialsOf, getApiKey, getSecret, uniqueAudience, waitForReady,
} from './support/resources.ts';
import { requestToken } from './support/token-client.ts';
import { waitFor } from './support/wait.ts';

const AUDIENCE = uniqueAudience('console');
/** Where the screenshots go: the run's log folder, or docs/ when APIKEY_OPERATOR_SCREENSHOTS names it. */
const SHOTS = process.env.APIKEY_OPERATOR_SCREENSHOTS ?? join(logDir(), 'screenshots');
const LIMIT = 150 * 1024;

let ns: TestNamespace;
let forbidden: TestNamespace;
let identity: OperatorIdentity;
let controller: RunningProcess;
let server: TokenServerProcess;
let browser: Browser;
let dir: string;
const consoles: ConsoleProcess[] = [];
/** What each page weighed, by name, for the closing log line. */
const weights: Record<string, number> = {};
/** Every request any page made that left the console's origin. */
const foreign: string[] = [];

/** A RoleBinding of one of the chart's ClusterRoles for people (view, edit) in the test namespace. */
async function bindChartRole(sa: string, role: 'view' | 'edit'): Promise<void> {
  const r = await kubectl(['create', 'rolebinding', `${sa}-${role}`, '-n', ns.name,
    `--clusterrole=${identity.release}-apikey-operator-${role}`, `--serviceaccount=${ns.name}:${sa}`]);
  expect(r.code, r.stderr).toBe(0);
}

/** Waits until the apiserver's authorizer knows a new binding. */
async function allowed(sa: string, attrs: Record<string, string>): Promise<void> {
  await waitFor(`${sa} may ${attrs.verb} ${attrs.resource}`, async () => {
    const review = await adminClient().create<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
      spec: { user: `system:serviceaccount:${ns.name}:${sa}`, groups: ['system:serviceaccounts', 'system:authenticated'], resourceAttributes: { namespace: ns.name, ...attrs } },
    });
    return review.status?.allowed === true;
  }, 10_000, 50);
}

/** A signed-in browser context of a console: the printed URL, opened once. */
async function signIn(c: ConsoleProcess): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('request', (r) => { if (!r.url().startsWith(c.base) && !r.url().startsWith('data:')) foreign.push(r.url()); });
  await page.goto(c.signInUrl);
  // The sign-in page moves on by itself to a clean URL.
  await page.waitForURL(`${c.base}/`);
  return { context, page };
}

/** axe-core finds nothing serious or critical, and the first load stays under the limit. */
async function checkPage(page: Page, name: string): Promise<void> {
  await page.waitForLoadState('load');
  expect(await seriousViolations(page), `axe-core on ${name}`).toEqual([]);
  weights[name] = await pageWeight(page);
  expect(weights[name], `${name} weighs ${weights[name]} bytes`).toBeLessThan(LIMIT);
}

/** An HTTP GET with a chosen Host header: what a page of another site reaches after DNS rebinding. */
function getWithHost(base: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}/`, { headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString('utf8'); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let alice: ConsoleProcess;
let aliceKubeconfig: string;
let viewerKubeconfig: string;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'console-test-'));
  ns = await createNamespace('console');
  forbidden = await createNamespace('console-other');
  identity = await installOperatorIdentity();
  // The token server is ready once the controller has made the signing key.
  server = await startTokenServer({ kubeconfig: identity.tokenServerKubeconfig, operatorNamespace: identity.namespace, waitReady: false });
  controller = await startController({ kubeconfig: identity.controllerKubeconfig, operatorNamespace: identity.namespace });
  await waitForHttp(`${server.url}/readyz`, server);
  await createDeployment(ns.name, 'airflow', { description: 'Production Airflow; CI deploys DAGs to it', audiences: [AUDIENCE] });
  await createDeployment(forbidden.name, 'secret-airflow', { audiences: [uniqueAudience('other')] });
  await createApiKey(ns.name, 'observer', { deploymentRef: { name: 'airflow' }, description: 'dashboard', permissions: ['read'] });

  // alice: the chart's view and edit roles, the token requester, and get on Secrets (to see a new secret once).
  aliceKubeconfig = await serviceAccountKubeconfig(ns.name, 'alice', dir);
  await bindChartRole('alice', 'view');
  await bindChartRole('alice', 'edit');
  await kubectl(['create', 'role', 'secret-reader', '-n', ns.name, '--verb=get', '--resource=secrets']);
  await kubectl(['create', 'rolebinding', 'alice-secret-reader', '-n', ns.name, '--role=secret-reader', `--serviceaccount=${ns.name}:alice`]);
  await bindTokenRequester(identity, ns.name, ns.name, 'alice', 'deployment-token-requester');
  // viewer: the chart's view role only.
  viewerKubeconfig = await serviceAccountKubeconfig(ns.name, 'viewer', dir);
  await bindChartRole('viewer', 'view');
  await allowed('alice', { verb: 'create', group: 'apikeys.dev', resource: 'apikeys' });
  await allowed('alice', { verb: 'get', group: '', resource: 'secrets' });
  await allowed('viewer', { verb: 'list', group: 'apikeys.dev', resource: 'apikeys' });
  await waitForReady(ns.name, 'observer');

  browser = await launchBrowser();
  alice = await startConsole({ kubeconfig: aliceKubeconfig, args: ['--token-url', `${server.url}/oauth/token`] });
  consoles.push(alice);
});

afterAll(async () => {
  console.log(`console page weights (bytes, first load): ${JSON.stringify(weights)}`);
  await browser?.close();
  await Promise.all(consoles.map((c) => c.stop()));
  await Promise.all([server?.stop(), controller?.stop()]);
  await identity?.cleanup();
  for (const n of [ns, forbidden]) await n?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kubectl apikey console (local mode)', () => {
  it('prints a sign-in URL on a line of its own that signs in once, then leaves a clean URL', async () => {
    expect(alice.signInUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/sign-in\?code=/);
    const { context, page } = await signIn(alice);
    expect(await page.getByText(`system:serviceaccount:${ns.name}:alice`).count()).toBe(1);
    await context.close();
    // The same URL a second time: refused, and no session.
    const again = await browser.newContext();
    const p2 = await again.newPage();
    const r = await p2.goto(alice.signInUrl);
    expect(r?.status()).toBe(403);
    expect(await p2.getByRole('heading', { name: 'This sign-in link cannot be used' }).count()).toBe(1);
    const home = await p2.goto(`${alice.base}/`);
    expect(home?.status()).toBe(401);
    await checkPage(p2, 'sign-in');
    await again.close();
  });

  it('refuses a request whose Host is not the loopback address it serves (DNS rebinding)', async () => {
    const port = new URL(alice.base).port;
    for (const host of ['attacker.example', `attacker.example:${port}`, `localhost:${port}`]) {
      const r = await getWithHost(alice.base, host);
      expect(r.status, host).toBe(421);
      expect(r.body).toContain('answers only requests for');
    }
    expect((await getWithHost(alice.base, `127.0.0.1:${port}`)).status).toBe(401);
  });
});

/** Every process's command line on this host that holds `secret`: what `ps` shows any local user. */
function commandLinesHolding(secret: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (argv.includes(secret)) found.push(`${pid}: ${argv.replace(/\0/g, ' ')}`);
    } catch { /* gone, or not ours to read */ }
  }
  return found;
}

describe('local mode on a shared host', () => {
  it('opens the browser on a private file that moves on to the sign-in URL: the one-time code is in no command line', async () => {
    // An xdg-open that records what it was given, in place of the desktop's.
    const bin = mkdtempSync(join(dir, 'bin-'));
    const record = join(bin, 'argv');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${record}.tmp && mv ${record}.tmp ${record}\n`, { mode: 0o755 });
    const c = await startConsole({ kubeconfig: aliceKubeconfig, open: true, env: { PATH: `${bin}:/usr/bin:/bin`, XDG_RUNTIME_DIR: undefined } });
    consoles.push(c);
    const code = new URL(c.signInUrl).searchParams.get('code')!;
    await waitFor('xdg-open to be run', () => Promise.resolve(existsSync(record) || undefined), 10_000, 50);
    const argv = readFileSync(record, 'utf8').trim().split('\n');
    expect(argv).toHaveLength(1);
    expect(argv[0]).toMatch(/^file:\/\//);
    expect(argv[0]).not.toContain(code);
    expect(commandLinesHolding(code)).toEqual([]);
    // The file and its folder are this user's alone.
    const file = fileURLToPath(argv[0]!);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(file)).mode & 0o777).toBe(0o700);
    expect(statSync(file).uid).toBe(process.getuid!());
    expect(readFileSync(file, 'utf8')).toContain(c.signInUrl);
    // The real browser opens the file as the desktop's would, and lands signed in on a clean URL.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(argv[0]!);
    await page.waitForURL(`${c.base}/`);
    expect(await page.getByText(`system:serviceaccount:${ns.name}:alice`).count()).toBe(1);
    // The code is used: its file is gone.
    await waitFor('the sign-in file to be deleted', () => Promise.resolve(!existsSync(dirname(file)) || undefined), 10_000, 50);
    await context.close();
  });

  it('keeps two consoles of one host apart in one browser: the session cookie\'s name carries the port', async () => {
    const a = await startConsole({ kubeconfig: aliceKubeconfig });
    const v = await startConsole({ kubeconfig: viewerKubeconfig });
    consoles.push(a, v);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(a.signInUrl);
    await page.waitForURL(`${a.base}/`);
    await page.goto(v.signInUrl);
    await page.waitForURL(`${v.base}/`);
    expect((await page.goto(`${a.base}/`))?.status()).toBe(200);
    expect(await page.getByText(`system:serviceaccount:${ns.name}:alice`).count()).toBe(1);
    expect((await page.goto(`${v.base}/`))?.status()).toBe(200);
    expect(await page.getByText(`system:serviceaccount:${ns.name}:viewer`).count()).toBe(1);
    const names = (await context.cookies(a.base)).map((c) => c.name).sort();
    expect(names).toEqual([`apikey_console_session_${new URL(a.base).port}`, `apikey_console_session_${new URL(v.base).port}`].sort());
    for (const c of await context.cookies(a.base)) expect(c).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await context.close();
  });

  it('ignores cookies it did not set, on every route: never a 5xx, and the person stays signed in', async () => {
    const c = await startConsole({ kubeconfig: aliceKubeconfig });
    consoles.push(c);
    const { context, page } = await signIn(c);
    const session = (await context.cookies(c.base)).find((k) => k.name.startsWith('apikey_console_session'))!;
    for (const cookie of foreignCookieHeaders(`${session.name}=${session.value}`)) {
      for (const r of consoleRoutes(ns.name, 'airflow', 'observer')) {
        const status = await statusWithCookie(c.base, r.method, r.path, cookie);
        expect(status, `${r.method} ${r.path} with Cookie: ${cookie.slice(0, 80)}`).toBeLessThan(500);
      }
    }
    await context.addCookies([{ name: 'theme', value: '50%', url: c.base }]);
    expect((await page.goto(`${c.base}/deployments/${ns.name}/airflow`))?.status()).toBe(200);
    expect(await page.getByText(`system:serviceaccount:${ns.name}:alice`).count()).toBe(1);
    await context.close();
  });
});

describe('the kubectl apikey console command', () => {
  it.each([
    [['--port', 'abc'], '--port must be a port number'],
    [['--port', '70000'], '--port must be a port number'],
    [['extra'], 'unexpected argument "extra"'],
  ])('refuses %j with exit code 2 and one line', async (args, message) => {
    const r = await runPlugin(['console', '--no-open', ...args], { kubeconfig: aliceKubeconfig, namespace: false });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('listens on the --port asked for, opens no browser where none can be found, and stops on Ctrl-C', async () => {
    const port = await freePort();
    // No xdg-open on this PATH: the console says nothing of it and goes on.
    const c = await startConsole({ kubeconfig: aliceKubeconfig, open: true, args: ['--port', String(port)], env: { PATH: '/nonexistent' } });
    consoles.push(c);
    expect(c.base).toBe(`http://127.0.0.1:${port}`);
    expect((await fetch(`${c.base}/healthz`)).status).toBe(200);
    c.child.kill('SIGINT');
    expect(await c.exited).toBe(0);
    await expect(fetch(`${c.base}/healthz`)).rejects.toThrow();
  });
});

describe('the seed flow in the browser, as a person with edit rights', () => {
  let context: BrowserContext;
  let page: Page;
  let first: { keyId: string; secret: string };
  let console2: ConsoleProcess;

  beforeAll(async () => {
    // A console of its own: the first one's sign-in link was used.
    console2 = await startConsole({ kubeconfig: aliceKubeconfig, args: ['--token-url', `${server.url}/oauth/token`] });
    consoles.push(console2);
    ({ context, page } = await signIn(console2));
  });
  afterAll(async () => { await context?.close(); });

  it('lists the Deployments the person may see, with key counts and Ready', async () => {
    await checkPage(page, 'deployments');
    const row = page.getByRole('row', { name: new RegExp(`${ns.name} airflow`) });
    await expect(row.getByRole('link', { name: 'airflow' }).count()).resolves.toBe(1);
    expect(await row.textContent()).toMatch(/Production Airflow/);
  });

  it('opens the Deployment, adds an API key, and shows its id and secret once', async () => {
    await page.getByRole('link', { name: 'airflow', exact: true }).click();
    await page.waitForURL(`${console2.base}/deployments/${ns.name}/airflow`);
    await checkPage(page, 'deployment');
    await page.getByRole('button', { name: 'Add API Key' }).click();
    await checkPage(page, 'add-api-key');
    await page.getByLabel('Name', { exact: true }).fill('ci-deployer');
    await page.getByLabel('Description').fill('GitHub Actions deploy job');
    await page.getByRole('button', { name: 'Create API Key' }).click();
    await page.waitForURL(/\/revealed\//);
    await checkPage(page, 'create-result');
    const keyId = (await page.locator('#key-id').textContent())!.trim();
    const secret = (await page.locator('#key-secret').textContent())!.trim();
    recordSecret(secret);
    expect(keyId).toMatch(/^ak_[a-z2-7]{26}$/);
    expect(secret).toMatch(/^aks_[0-9A-Za-z]{49}$/);
    first = { keyId, secret };
    expect(await page.getByText('This is the only time the console shows this secret').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Copy secret' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Copy key id' }).count()).toBe(1);
    const curl = (await page.locator('#curl').textContent())!;
    expect(curl).toContain(`${server.url}/oauth/token`);
    expect(curl).toContain(`"audience":"${AUDIENCE}"`);
    expect(curl).toContain(`"client_id":"${keyId}"`);
    expect(await page.locator('#secret-name').textContent()).toBe('ci-deployer');
    // The screenshot shows the page as it is, with the secret blanked out where it appears.
    await page.evaluate((s) => {
      const doc = (globalThis as unknown as { document: { querySelectorAll(q: string): Iterable<{ textContent: string | null }> } }).document;
      for (const el of doc.querySelectorAll('#key-secret, #curl')) el.textContent = (el.textContent ?? '').replace(s, `aks_${'•'.repeat(24)}`);
    }, secret);
    await page.screenshot({ path: join(SHOTS, 'console-create-result.png'), fullPage: true });
    // The view is gone once seen: a reload does not show the secret again.
    const again = await page.reload();
    expect(again?.status()).toBe(410);
    expect(await page.content()).not.toContain(secret);
  });

  it('fetches a token with that id and secret from the token server, which verifies against the JWKS', async () => {
    const r = await waitFor('a token for the new key', async () => {
      const a = await requestToken(server, { ...first, audience: AUDIENCE });
      return a.status === 200 ? a : undefined;
    }, 15_000, 100);
    const { payload } = await jwtVerify(r.body.access_token as string, createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`)), { audience: AUDIENCE });
    expect(payload.sub).toBe(first.keyId);
  });

  it('shows the key Ready, and its last-used time arrives without a reload', async () => {
    await page.goto(`${console2.base}/deployments/${ns.name}/airflow`);
    const row = page.locator('tr[data-key="ci-deployer"]');
    expect(await row.locator('[data-field=ready]').textContent()).toContain('Ready');
    expect(await row.locator('[data-field=keyId]').textContent()).toBe(first.keyId);
    await page.evaluate(() => { (globalThis as unknown as { stillHere: boolean }).stillHere = true; });
    // The token just fetched: the token server writes lastUsedAt within seconds, the page polls it.
    await row.locator('[data-field=lastUsed] time').waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { stillHere?: boolean }).stillHere)).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'console-deployment.png'), fullPage: true });
    // On a phone's width: still usable, still no serious axe-core violation.
    const size = page.viewportSize()!;
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await seriousViolations(page), 'axe-core on a narrow Deployment page').toEqual([]);
    // The page itself never scrolls sideways; only the keys table does, inside its card.
    expect(await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth)).toBe(390);
    await page.screenshot({ path: join(SHOTS, 'console-deployment-narrow.png'), fullPage: true });
    await page.setViewportSize(size);
  });

  it('rotates from the Edit menu, by keyboard alone, and shows the new secret once and until when the old one works', async () => {
    const row = page.locator('tr[data-key="ci-deployer"]');
    // Enter opens the menu, Tab reaches Rotate, whose focus is visible, and Enter presses it.
    await row.locator('summary').focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = (globalThis as unknown as { document: { activeElement: { textContent: string } | null } }).document.activeElement;
      const style = el && (globalThis as unknown as { getComputedStyle(e: unknown): { outlineStyle: string; outlineWidth: string } }).getComputedStyle(el);
      return { text: el?.textContent, outline: style?.outlineStyle, width: style?.outlineWidth };
    });
    expect(focused).toEqual({ text: 'Rotate', outline: 'solid', width: '3px' });
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/revealed\//);
    await checkPage(page, 'rotate-result');
    const secret = (await page.locator('#key-secret').textContent())!.trim();
    recordSecret(secret);
    expect(secret).toMatch(/^aks_/);
    expect(secret).not.toBe(first.secret);
    expect((await page.locator('#key-id').textContent())!.trim()).toBe(first.keyId);
    expect(await page.getByText('The previous secret keeps working until').count()).toBe(1);
    // Both work during the grace period.
    for (const s of [secret, first.secret]) {
      const r = await waitFor('a token with the rotated key', async () => {
        const a = await requestToken(server, { keyId: first.keyId, secret: s, audience: AUDIENCE });
        return a.status === 200 ? a : undefined;
      }, 15_000, 100);
      expect(r.status).toBe(200);
    }
  });

  it('revokes from the Edit menu once the key\'s name is typed: the key issues nothing more, its tokens die, and Rotate recovers it', async () => {
    const creds = credentialsOf((await getSecret(ns.name, 'ci-deployer'))!);
    const key = { keyId: creds.keyId, secret: creds.secret, audience: AUDIENCE };
    const token = await waitFor('a token of ci-deployer', async () => {
      const a = await requestToken(server, key);
      return a.status === 200 ? a.body.access_token as string : undefined;
    }, 15_000, 100);
    recordSecret(token);
    await page.goto(`${console2.base}/deployments/${ns.name}/airflow`);
    const url = `${console2.base}/deployments/${ns.name}/airflow/keys/ci-deployer/revoke`;
    // A forged POST (no CSRF token) revokes nothing.
    const forged = await page.request.post(url, { form: { confirm: 'ci-deployer' }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    const row = page.locator('tr[data-key="ci-deployer"]');
    await row.getByText('Edit').click();
    await row.getByRole('button', { name: 'Revoke API Key' }).click();
    await checkPage(page, 'revoke-confirmation');
    const button = page.getByRole('button', { name: 'Revoke API Key' });
    expect(await button.isDisabled()).toBe(true);
    await page.getByLabel('Reason (optional)').fill('shown in a screen share');
    await page.getByLabel(/Type the key's name/).fill('ci-deployer');
    await button.click();
    await page.waitForURL(`${console2.base}/deployments/${ns.name}/airflow`);
    expect(await page.getByText('Revoked API Key ci-deployer').count()).toBe(1);
    const ak = (await getApiKey(ns.name, 'ci-deployer'))!;
    expect(ak.status?.compromise).toMatchObject({ source: 'console', reason: 'shown in a screen share', secretHash: ak.status?.secretHash });
    expect((await requestToken(server, key)).status).toBe(401);
    const r = await fetch(`${server.url}/authz?deployment=${ns.name}/airflow`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(401);
    await waitFor('the row showing Compromised', async () => (await row.textContent())?.includes('Compromised'), 15_000, 200);
    // Rotate recovers it: a new secret that works.
    await row.getByText('Edit').click();
    await row.getByRole('button', { name: 'Rotate' }).click();
    await page.waitForURL(/\/revealed\//);
    const secret = (await page.locator('#key-secret').textContent())!.trim();
    recordSecret(secret);
    expect(await page.getByText('The previous secret no longer works').count()).toBe(1);
    const fresh = await waitFor('a token with the new secret', async () => {
      const a = await requestToken(server, { ...key, secret });
      return a.status === 200 ? a : undefined;
    }, 15_000, 100);
    recordSecret(fresh.body.access_token as string);
    expect((await requestToken(server, key)).status).toBe(401);
  });

  it('deletes from the Edit menu only once the key\'s name is typed, and the key and its Secret are gone', async () => {
    await page.goto(`${console2.base}/deployments/${ns.name}/airflow`);
    const row = page.locator('tr[data-key="ci-deployer"]');
    await row.getByText('Edit').click();
    await row.getByRole('button', { name: 'Delete API Key' }).click();
    await checkPage(page, 'delete-confirmation');
    const button = page.getByRole('button', { name: 'Delete API Key' });
    expect(await button.isDisabled()).toBe(true);
    await page.getByLabel(/Type the key's name/).fill('ci-deploye');
    expect(await button.isDisabled()).toBe(true);
    // The server checks too: the button forced on, with the wrong name, deletes nothing.
    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { disabled: boolean } } }).document;
      doc.querySelector('form button[type=submit].danger').disabled = false;
    });
    await button.click();
    await page.waitForLoadState('load');
    expect(await page.getByText('exactly to delete it. Nothing was deleted.').count()).toBe(1);
    expect(await getApiKey(ns.name, 'ci-deployer')).toBeDefined();
    await page.getByLabel(/Type the key's name/).fill('ci-deployer');
    await button.click();
    await page.waitForURL(`${console2.base}/deployments/${ns.name}/airflow`);
    expect(await page.getByText('Deleted API Key ci-deployer').count()).toBe(1);
    expect(await page.locator('tr[data-key="ci-deployer"]').count()).toBe(0);
    await waitFor('ApiKey and Secret ci-deployer gone', async () =>
      (await getApiKey(ns.name, 'ci-deployer')) === undefined && (await getSecret(ns.name, 'ci-deployer')) === undefined, 60_000, 200);
  });

  it('shows the apiserver\'s refusal next to the field it is about', async () => {
    await page.goto(`${console2.base}/deployments/${ns.name}/airflow/keys/new`);
    await page.getByLabel('Name', { exact: true }).fill('observer');
    await page.getByRole('button', { name: 'Create API Key' }).click();
    await page.waitForLoadState('load');
    expect(await page.locator('#name-error').textContent()).toContain('already exists');
    expect(await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await checkPage(page, 'add-api-key-with-errors');
  });

  it('edits a key\'s allowed networks from the Edit menu: a CIDR not in canonical form is refused with what to write, then saved', async () => {
    await page.goto(`${console2.base}/deployments/${ns.name}/airflow`);
    const row = page.locator('tr[data-key="observer"]');
    expect(await row.locator('td[data-field="allowedNetworks"]').textContent()).toBe('anywhere');
    await row.getByText('Edit').click();
    await row.getByRole('button', { name: 'Allowed networks' }).click();
    // A GET form: the URL ends in "?".
    await page.waitForURL(/\/deployments\/[^/]+\/airflow\/keys\/observer\/networks\??$/);
    await checkPage(page, 'key-networks');
    expect(await page.getByText('Deployment airflow allows: anywhere.').count()).toBe(1);
    const field = page.getByLabel('Allowed networks (optional)');
    await field.fill('127.0.0.0/8\n10.1.2.3/16');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForLoadState('load');
    expect(await page.locator('#allowedNetworks-error').textContent()).toContain('10.1.2.3/16 is not in canonical form: write 10.1.0.0/16');
    expect(await field.getAttribute('aria-invalid')).toBe('true');
    expect((await getApiKey(ns.name, 'observer'))!.spec.allowedNetworks).toBeUndefined();
    await checkPage(page, 'key-networks-with-errors');
    await field.fill('127.0.0.0/8\n::1/128');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(`${console2.base}/deployments/${ns.name}/airflow`);
    expect(await page.getByText('API Key observer may now be used only from 127.0.0.0/8, ::1/128').count()).toBe(1);
    expect(await page.locator('tr[data-key="observer"] td[data-field="allowedNetworks"]').textContent()).toBe('127.0.0.0/8, ::1/128');
    expect((await getApiKey(ns.name, 'observer'))!.spec.allowedNetworks).toEqual(['127.0.0.0/8', '::1/128']);
    // The form shows the stored list; emptied, the key may be used from anywhere again.
    await page.goto(`${console2.base}/deployments/${ns.name}/airflow/keys/observer/networks`);
    expect(await field.inputValue()).toBe('127.0.0.0/8\n::1/128');
    await field.fill('');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(`${console2.base}/deployments/${ns.name}/airflow`);
    expect((await getApiKey(ns.name, 'observer'))!.spec.allowedNetworks).toBeUndefined();
  });

  it('creates a key with allowed networks from the Add API Key form', async () => {
    await page.goto(`${console2.base}/deployments/${ns.name}/airflow/keys/new`);
    await page.getByLabel('Name', { exact: true }).fill('office-only');
    await page.getByLabel('Allowed networks (optional)').fill('127.0.0.0/8, 2001:db8::/48');
    await page.getByRole('button', { name: 'Create API Key' }).click();
    await page.waitForURL(/\/revealed\//);
    recordSecret((await page.locator('#key-secret').textContent())!.trim());
    expect((await getApiKey(ns.name, 'office-only'))!.spec.allowedNetworks).toEqual(['127.0.0.0/8', '2001:db8::/48']);
  });

  it('gives a temporary token on /token with the person\'s own identity, which verifies against the JWKS', async () => {
    await page.goto(`${console2.base}/token`);
    await checkPage(page, 'token');
    await page.getByLabel('Deployment').selectOption(`${ns.name}/airflow`);
    await page.getByRole('button', { name: 'Get token' }).click();
    await page.waitForLoadState('load');
    const token = (await page.locator('#token').textContent())!.trim();
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`)), { audience: AUDIENCE });
    expect(payload.sub).toBe(`system:serviceaccount:${ns.name}:alice`);
    expect(await page.locator('#token-scope').textContent()).toBe(payload.scope);
    expect(await page.locator('#token-expiry time').getAttribute('datetime')).toBeTruthy();
    expect(await page.getByRole('button', { name: 'Copy token' }).count()).toBe(1);
    await checkPage(page, 'token-result');
  });

  it('refuses a forged POST without the CSRF token, or from another site', async () => {
    const url = `${console2.base}/deployments/${ns.name}/airflow/keys`;
    const r = await page.request.post(url, { form: { name: 'forged', permissions: 'deploy' }, maxRedirects: 0 });
    expect(r.status()).toBe(403);
    expect(await r.text()).toContain('CSRF token');
    const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
    const other = await page.request.post(url, { form: { name: 'forged', permissions: 'deploy', csrf: csrf! }, headers: { origin: 'http://attacker.example' }, maxRedirects: 0 });
    expect(other.status()).toBe(403);
    expect(await getApiKey(ns.name, 'forged')).toBeUndefined();
  });

  it('loads every page under 150 KB with no request outside the console', async () => {
    const state = await context.storageState();
    for (const path of ['/', `/deployments/${ns.name}/airflow`, `/deployments/${ns.name}/airflow/keys/new`, '/token']) {
      const load = await measureFirstLoad(browser, state, `${console2.base}${path}`);
      expect(load.bytes, path).toBeLessThan(LIMIT);
      expect(load.foreign).toEqual([]);
    }
    expect(foreign).toEqual([]);
  });
});

describe('people with fewer rights', () => {
  it('shows a viewer the keys with disabled buttons, and says what is missing', async () => {
    const c = await startConsole({ kubeconfig: viewerKubeconfig });
    consoles.push(c);
    const { context, page } = await signIn(c);
    // Not allowed across namespaces: the console says so and shows the context's namespace.
    expect(await page.getByText('You may not list Deployments across all namespaces.').count()).toBe(1);
    await page.getByRole('link', { name: 'airflow', exact: true }).click();
    await page.waitForLoadState('load');
    await checkPage(page, 'deployment-view-only');
    expect(await page.locator('tr[data-key="observer"]').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Add API Key' }).isDisabled()).toBe(true);
    await page.locator('tr[data-key="observer"]').getByText('Edit').click();
    expect(await page.getByRole('button', { name: 'Rotate' }).isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Delete API Key' }).isDisabled()).toBe(true);
    expect(await page.getByText(`You may not create ApiKeys in ${ns.name}`).count()).toBe(1);
    // A POST anyway (with the CSRF token): the apiserver refuses, and the page says what is missing.
    const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
    const r = await page.request.post(`${c.base}/deployments/${ns.name}/airflow/keys`, { form: { name: 'sneaky', permissions: 'read', csrf: csrf! } });
    expect(r.status()).toBe(403);
    expect(await r.text()).toContain(`You may not create ApiKeys in ${ns.name}.`);
    // A namespace with no rights at all.
    const other = await page.goto(`${c.base}/?namespace=${forbidden.name}`);
    expect(other?.status()).toBe(403);
    expect(await page.getByText(`You may not list Deployments in ${forbidden.name}.`).count()).toBe(1);
    await checkPage(page, 'deployments-forbidden');
    const dep = await page.goto(`${c.base}/deployments/${forbidden.name}/secret-airflow`);
    expect(dep?.status()).toBe(403);
    expect(await page.getByText(`You may not get Deployments in ${forbidden.name}.`).count()).toBe(1);
    await context.close();
  });

  it('explains on /token that a client certificate cannot be exchanged (apikey-operator console, admin kubeconfig)', async () => {
    const c = await startConsole({ kubeconfig: clusterState().kubeconfig, program: 'apikey-operator', args: ['--token-url', `${server.url}/oauth/token`] });
    consoles.push(c);
    const { context, page } = await signIn(c);
    await page.goto(`${c.base}/token`);
    await checkPage(page, 'token-client-certificate');
    expect(await page.getByText('signs in with a client certificate, not a bearer token').count()).toBe(1);
    expect(await page.getByText('This page needs token-based credentials').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Get token' }).isDisabled()).toBe(true);
    await context.close();
  });
});

describe('keys near or past their expiry', () => {
  it('marks a key the controller says expires soon, and an expired one, and the mark arrives without a reload', async () => {
    const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
    const day = 86_400_000;
    // The controller runs with the default thresholds: 30, 7 and 1 days before spec.expiresAt.
    await createApiKey(ns.name, 'expires-soon', { deploymentRef: { name: 'airflow' }, expiresAt: rfc3339(Date.now() + 3 * day) });
    await createApiKey(ns.name, 'expires-later', { deploymentRef: { name: 'airflow' }, expiresAt: rfc3339(Date.now() + 60 * day) });
    await createApiKey(ns.name, 'expired', { deploymentRef: { name: 'airflow' }, expiresAt: rfc3339(Date.now() + 3000) });
    await waitForReady(ns.name, 'expires-soon');
    await waitForReady(ns.name, 'expires-later');
    await waitFor('expired', async () => (await getApiKey(ns.name, 'expired'))?.status?.conditions?.some((c) => c.reason === 'Expired') || undefined, 20_000);

    const c = await startConsole({ kubeconfig: viewerKubeconfig });
    consoles.push(c);
    const { context, page } = await signIn(c);
    await page.goto(`${c.base}/deployments/${ns.name}/airflow`);
    await checkPage(page, 'deployment-expiring-keys');
    const expires = (key: string) => page.locator(`tr[data-key="${key}"] [data-field=expires]`);
    await expect(expires('expires-soon').locator('.badge.warn').textContent()).resolves.toBe('Expires soon');
    expect(await expires('expires-soon').locator('.badge.warn').getAttribute('title')).toMatch(/less than 168h from now/);
    await expect(expires('expired').locator('.badge.bad').textContent()).resolves.toBe('Expired');
    expect(await expires('expires-later').locator('.badge').count()).toBe(0);
    expect(await expires('expires-later').locator('time').count()).toBe(1);
    expect(await expires('observer').textContent()).toBe('never');

    // Moved within a threshold: the controller warns, and the page's polling shows it.
    await adminClient().mergePatch(apiKeyPath(ns.name, 'expires-later'), { spec: { expiresAt: rfc3339(Date.now() + 2 * day) } });
    await expires('expires-later').locator('.badge.warn').waitFor({ timeout: 30_000 });
    await context.close();
  });
});
