/**
 * The console as a person runs it: `kubectl apikey console` (or
 * `apikey-operator console`) as a process with their kubeconfig, and the
 * sign-in URL it prints on a line of its own on stdout.
 */
import { request as httpRequest } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import { MAIN, PLUGIN, startProcess, type RunningProcess } from './processes.ts';
import { waitFor } from './wait.ts';

export interface ConsoleProcess extends RunningProcess {
  /** The one-time sign-in URL it printed. */
  signInUrl: string;
  /** http://127.0.0.1:PORT */
  base: string;
}

const SIGN_IN_LINE = /^(http:\/\/127\.0\.0\.1:\d+)\/sign-in\?code=[\w-]+$/m;

export interface ConsoleOptions {
  kubeconfig: string;
  program?: 'plugin' | 'apikey-operator';
  args?: string[];
  /** The plugin opens a browser unless --no-open; the tests pass it unless this is true. */
  open?: boolean;
  env?: Record<string, string | undefined>;
}

export async function startConsole(opts: ConsoleOptions): Promise<ConsoleProcess> {
  const argv = opts.program === 'apikey-operator'
    ? [MAIN, 'console', '--kubeconfig', opts.kubeconfig, ...(opts.args ?? [])]
    : [PLUGIN, 'console', ...(opts.open ? [] : ['--no-open']), '--kubeconfig', opts.kubeconfig, ...(opts.args ?? [])];
  const p = startProcess('console', argv, { KUBECONFIG: undefined, APIKEY_OPERATOR_TOKEN_URL: undefined, ...opts.env });
  let stdout = '';
  p.child.stdout!.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  try {
    const m = await waitFor('the console\'s sign-in URL', () => {
      if (!p.isRunning()) return Promise.reject(new Error(`the console exited:\n${p.logs().slice(-2000)}`));
      return Promise.resolve(SIGN_IN_LINE.exec(stdout) ?? undefined);
    }, 30_000, 50);
    return Object.assign(p, { signInUrl: m[0], base: m[1]! });
  } catch (err) {
    await p.kill();
    throw err;
  }
}

/** Every route of the console in both modes, with names that exist in `ns` where a route takes them. */
export function consoleRoutes(ns: string, deployment: string, key: string): { method: string; path: string }[] {
  const d = `/deployments/${ns}/${deployment}`;
  return [
    ...['/', '/?namespace=default', '/token', d, `${d}/keys/new`, `${d}/keys/${key}/delete`, `/api/deployments/${ns}/${deployment}/keys`,
      '/revealed/AAAAAAAAAAAAAAAAAAAAAA', '/static/console.css', '/static/console.js', '/healthz', '/no/such/page',
      '/sign-in?code=x', '/auth/sign-in?next=/token', '/auth/callback?code=x&state=y', '/auth/signed-out']
      .map((path) => ({ method: 'GET', path })),
    ...['/sign-out', '/token', `${d}/keys`, `${d}/keys/${key}/rotate`, `${d}/keys/${key}/delete`, '/auth/sign-in']
      .map((path) => ({ method: 'POST', path })),
    { method: 'PUT', path: '/' },
    { method: 'DELETE', path: d },
  ];
}

/**
 * Cookie headers the console did not set: what other servers of the host,
 * scripts of other sites on the same domain, or an attacker's client send.
 * `session` is a real session cookie (name=value) to add to some of them.
 */
export function foreignCookieHeaders(session?: string): string[] {
  const headers = [
    'theme=50%', 'a=%E0%A4%A', '=x', 'novalue', ';;;', 'apikey_console_session=%',
    'apikey_console_session="quoted"', 'apikey_console_signin=%zz', `apikey_console_signin=${'A'.repeat(3000)}`,
    `x=${'%'.repeat(4000)}`, 'constructor=1; __proto__=2; toString=3; hasOwnProperty=4',
    `${Array.from({ length: 500 }, (_, i) => `c${i}=v%${i}`).join('; ')}`,
  ];
  return session ? [...headers, ...headers.map((h) => `${h}; ${session}`), ...headers.map((h) => `${session}; ${h}`)] : headers;
}

/** The status of `method path` with `cookie`, sent as is (fetch would not send some of them). */
export function statusWithCookie(base: string, method: string, path: string, cookie: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = method === 'GET' ? undefined : 'csrf=x&name=y&confirm=z';
    // A connection of its own for each request: nothing of one answer can reach the next.
    const req = httpRequest(`${base}${path}`, {
      method, agent: false,
      headers: { cookie, connection: 'close', ...body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) } : {} },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Hosts a test browser may reach: loopback only (the provider's pages ask for web fonts). Returns what was refused, so nothing leaves the machine. */
export async function loopbackOnly(context: BrowserContext): Promise<string[]> {
  const elsewhere: string[] = [];
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === '127.0.0.1') return route.continue();
    elsewhere.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  return elsewhere;
}

/**
 * Opens `path` of an in-cluster console at `base` in a fresh browser context
 * and signs `person` in on the OIDC provider's page (issuer `issuer`). The
 * browser does not know the test CA (the console, which talks to the
 * provider server-side, does, and verifies it).
 */
export async function signInWithOidc(browser: Browser, base: string, issuer: string, person: string, path = '/'): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await loopbackOnly(context);
  const page = await context.newPage();
  await page.goto(`${base}${path}`);
  expect(page.url().startsWith(`${issuer}/interaction/`), page.url()).toBe(true);
  await page.getByLabel('User name').fill(person);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}${path}`);
  return { context, page };
}
