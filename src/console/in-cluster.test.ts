/**
 * In-cluster sign-in through the console's own server, against a real OIDC
 * provider (test/support/oidc-provider.ts), without a browser: the redirects,
 * the cookies and what the session keeps. The API server is unreachable here
 * on purpose: the person's name then falls back to their ID token's email.
 */
import { createServer, type AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcProvider, type TestOidcProvider } from '../../test/support/oidc-provider.ts';
import type { InClusterSettings } from './in-cluster-options.ts';
import { InClusterSignIn, PENDING_COOKIE } from './in-cluster.ts';
import { createConsoleServer, type ConsoleServer } from './server.ts';
import { SESSION_COOKIE } from './sessions.ts';

const ID_TOKEN_TTL_SECONDS = 120;
let provider: TestOidcProvider;
let settings: InClusterSettings;
let signIn: InClusterSignIn;
let consoleServer: ConsoleServer;
let base: string;

async function get(path: string, cookie = ''): Promise<{ status: number; location: string; cookies: string[]; body: string }> {
  const r = await fetch(`${base}${path}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: r.status, location: r.headers.get('location') ?? '', cookies: r.headers.getSetCookie(), body: await r.text() };
}

const cookieNamed = (cookies: string[], name: string) => cookies.find((c) => c.startsWith(`${name}=`));
const pair = (cookie: string | undefined) => (cookie ?? '').split(';')[0]!;

/** Signs alice in from /auth/sign-in?next=`next` to the callback's answer. */
async function signInAsAlice(next: string) {
  const started = await get(`/auth/sign-in?next=${encodeURIComponent(next)}`);
  const pending = cookieNamed(started.cookies, PENDING_COOKIE);
  const back = await provider.signIn(started.location, 'alice');
  const callback = await get(`${back.pathname}${back.search}`, pair(pending));
  return { started, pending, back, callback };
}

beforeAll(async () => {
  // A free port first: the console's address is the redirect URI the provider registers.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  base = `http://127.0.0.1:${port}`;
  provider = await startOidcProvider({
    clients: [{ clientId: 'apikey-console', clientSecret: 'unit-secret', redirectUris: [`${base}/auth/callback`] }],
    idTokenTtlSeconds: ID_TOKEN_TTL_SECONDS,
  });
  settings = {
    oidc: {
      issuerUrl: provider.issuer, clientId: 'apikey-console', clientSecret: 'unit-secret', redirectUri: `${base}/auth/callback`,
      scopes: ['openid', 'email', 'groups'], caFile: provider.caFile,
    },
    publicUrl: base,
    apiserver: { server: 'https://127.0.0.1:1', caFile: provider.caFile },
    secureCookies: false,
  };
  signIn = new InClusterSignIn({ settings });
  consoleServer = createConsoleServer({ signIn });
  await new Promise<void>((r) => consoleServer.server.listen(port, '127.0.0.1', r));
});

afterAll(async () => {
  consoleServer?.server.closeAllConnections();
  await new Promise((r) => consoleServer?.server.close(r));
  await signIn?.close();
  await provider?.stop();
});

describe('in-cluster sign-in', () => {
  it('sends a visitor without a session to sign in, remembering the page they asked for', async () => {
    const r = await get('/deployments/team-a/airflow');
    expect(r.status).toBe(303);
    expect(r.location).toBe('/auth/sign-in?next=%2Fdeployments%2Fteam-a%2Fairflow');
  });

  it('starts the code flow at the provider, its checks sealed in a Lax cookie scoped to the callback', async () => {
    const r = await get('/auth/sign-in?next=/token');
    expect(r.status).toBe(303);
    const asked = new URL(r.location);
    expect(asked.origin).toBe(provider.issuer);
    expect(asked.searchParams.get('code_challenge_method')).toBe('S256');
    const pending = cookieNamed(r.cookies, PENDING_COOKIE);
    expect(pending).toMatch(/; Path=\/auth\/callback; HttpOnly; SameSite=Lax; Max-Age=600$/);
    // Sealed: neither the state nor the nonce can be read in it.
    expect(pending).not.toContain(asked.searchParams.get('state'));
    expect(pending).not.toContain(asked.searchParams.get('nonce'));
  });

  it('completes a sign-in once, with a Strict session cookie that expires with the ID token, and moves on to the page asked for', async () => {
    const { pending, back, callback } = await signInAsAlice('/token');
    expect(callback.status).toBe(200);
    expect(callback.body).toContain('<meta http-equiv="refresh" content="0;url=/token">');
    const session = cookieNamed(callback.cookies, SESSION_COOKIE);
    expect(session).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const maxAge = Number(/Max-Age=(\d+)/.exec(session!)![1]);
    expect(maxAge).toBeGreaterThan(ID_TOKEN_TTL_SECONDS - 10);
    expect(maxAge).toBeLessThanOrEqual(ID_TOKEN_TTL_SECONDS);
    expect(cookieNamed(callback.cookies, PENDING_COOKIE)).toMatch(/Max-Age=0/);

    const id = pair(session).split('=')[1]!;
    const stored = consoleServer.sessions.get(id)!;
    const idToken = stored.signedIn!.data.idToken as string;
    expect(stored.expiresAt).toBe(decodeJwt(idToken).exp! * 1000);
    // The API server could not be asked who this is: the ID token's email names the person.
    expect(stored.signedIn!.displayName).toBe('alice@example.test');

    const person = signIn.credentials(stored)!;
    expect(await person.bearerToken()).toEqual({ token: idToken });
    expect(await person.client.authHeaders()).toEqual({ Authorization: `Bearer ${idToken}` });
    expect(person.client.url('/api').href).toBe('https://127.0.0.1:1/api');
    expect(signIn.credentials(stored)).toBe(person);

    // The same callback again: its pending sign-in is gone.
    const again = await get(`${back.pathname}${back.search}`, pair(pending));
    expect(again.status).toBe(400);
    expect(again.body).toContain('This sign-in was not started here');
  });

  it('never returns to another site after sign-in', async () => {
    const { callback } = await signInAsAlice('//evil.example/');
    expect(callback.body).toContain('<meta http-equiv="refresh" content="0;url=/">');
  });

  it('starts a sign-in whatever next holds: too long once percent-encoded, or not a path, it is ignored', async () => {
    for (const next of [`/${'é'.repeat(1000)}`, '/'.repeat(5000), '\u0000', '%', 'http://[']) {
      const r = await get(`/auth/sign-in?next=${encodeURIComponent(next)}`);
      expect(r.status, next.slice(0, 20)).toBe(303);
      expect(cookieNamed(r.cookies, PENDING_COOKIE)!.length).toBeLessThan(4000);
    }
  });

  it('keeps nothing on the server for a sign-in in progress: thousands started from one address take no session, and a person still signs in', async () => {
    const before = consoleServer.sessions.size;
    const url = `${base}/auth/sign-in`;
    for (let i = 0; i < 2000; i += 50) {
      const statuses = await Promise.all(Array.from({ length: 50 }, () => fetch(url, { redirect: 'manual' }).then((r) => r.status)));
      expect(new Set(statuses)).toEqual(new Set([303]));
    }
    expect(consoleServer.sessions.size).toBe(before);
    const { callback } = await signInAsAlice('/token');
    expect(callback.status).toBe(200);
    expect(consoleServer.sessions.size).toBe(before + 1);
  });

  it('opens no pending sign-in it did not seal: a changed, foreign or garbled cookie is a sign-in not started here', async () => {
    const started = await get('/auth/sign-in?next=/token');
    const sealed = pair(cookieNamed(started.cookies, PENDING_COOKIE)).split('=')[1]!;
    const back = await provider.signIn(started.location, 'alice');
    const flipped = `${sealed.slice(0, 20)}${sealed[20] === 'A' ? 'B' : 'A'}${sealed.slice(21)}`;
    for (const cookie of [`${PENDING_COOKIE}=${flipped}`, `${PENDING_COOKIE}=${'A'.repeat(200)}`, `${PENDING_COOKIE}=%zz`, `${PENDING_COOKIE}=${sealed}x`]) {
      const r = await get(`${back.pathname}${back.search}`, cookie);
      expect(r.status, cookie).toBe(400);
      expect(r.body).toContain('This sign-in was not started here');
    }
  });

  it('lets a signed-in person in with the session cookie alone', async () => {
    const { callback } = await signInAsAlice('/');
    const r = await get('/token', pair(cookieNamed(callback.cookies, SESSION_COOKIE)));
    expect(r.status).toBe(200);
    expect(r.body).toContain('alice@example.test');
  });
});
