/**
 * A real OpenID Connect identity provider for the tests: panva's
 * oidc-provider over HTTPS (a certificate of a test CA), with a few test
 * people and a test-only sign-in page in place of the library's development
 * interactions. A browser signs in on that page; `signIn` does the same with
 * plain HTTP requests (following redirects, keeping the provider's cookies),
 * for tests without a browser.
 *
 * The ID token carries `sub` (the person's name) and `groups`, which the test
 * apiserver maps to `oidc:<name>` and `oidc:<group>` (oidc-issuer.ts).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';
import { Agent, fetch as undiciFetch } from 'undici';
import { makeTestCa } from './test-ca.ts';

/** The people of the test provider: their name is their subject, and their groups go in the ID token. */
export const TEST_PEOPLE: Record<string, { groups: string[]; email: string }> = {
  alice: { groups: ['developers'], email: 'alice@example.test' },
  bob: { groups: ['viewers'], email: 'bob@example.test' },
  carol: { groups: [], email: 'carol@example.test' },
};

export interface OidcClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /** Where the provider may send the browser after sign-out (RP-initiated logout); default: none. */
  postLogoutRedirectUris?: string[];
}

export interface TestOidcProvider {
  /** The issuer URL (https://127.0.0.1:PORT). */
  issuer: string;
  /** The test CA that signed the provider's serving certificate. */
  caFile: string;
  caPem: string;
  /** An undici dispatcher that trusts the test CA. */
  agent: Agent;
  /**
   * Signs `person` in at an authorization URL (as a browser would: the
   * provider's redirects, its sign-in form, its cookies) and returns the URL
   * the provider redirects back to, with the code and state.
   */
  signIn(authorizationUrl: string, person: string): Promise<URL>;
  /**
   * An ID token signed with the provider's own key, without any sign-in: only
   * for finding out whether an apiserver trusts the provider yet.
   */
  mintIdToken(o: { sub: string; audience: string; groups?: string[]; expiresIn?: string }): Promise<string>;
  stop(): Promise<void>;
}

const LOGIN_PAGE = (uid: string, error = '') => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider: sign in</title></head>
<body><main><h1>Sign in (test identity provider)</h1>
${error ? `<p role="alert">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label for="login">User name</label> <input id="login" name="login" autocomplete="username" required>
<button type="submit">Sign in</button>
</form></main></body></html>`;

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) body += String(chunk);
  return new URLSearchParams(body);
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

export async function startOidcProvider(o: { clients: OidcClient[]; idTokenTtlSeconds?: number }): Promise<TestOidcProvider> {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-provider-'));
  const ca = makeTestCa(dir, 'apikey-operator-oidc-test-ca');
  const tls = ca.serving('oidc-provider');
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = 'test-oidc-signing-key';
  const signingJwk: JWK = { ...await exportJWK(privateKey), kid, alg: 'RS256', use: 'sig' };

  // Listen first: the issuer URL carries the port.
  const server: Server = createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('the OIDC provider has no port');
  const issuer = `https://127.0.0.1:${address.port}`;

  const configuration: Configuration = {
    clients: o.clients.map((c) => ({
      client_id: c.clientId, client_secret: c.clientSecret, redirect_uris: c.redirectUris,
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
      post_logout_redirect_uris: c.postLogoutRedirectUris ?? [],
    })),
    jwks: { keys: [signingJwk] },
    cookies: { keys: ['test-oidc-provider-cookie-key'] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'groups', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    // Kubernetes reads the groups from the ID token, not from the userinfo endpoint.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    ttl: {
      IdToken: o.idTokenTtlSeconds ?? 3600, AccessToken: 3600, AuthorizationCode: 60,
      Interaction: 600, Session: 3600, Grant: 3600,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, id) => {
      const person = TEST_PEOPLE[id];
      if (!person) return undefined;
      return { accountId: id, claims: () => ({ sub: id, email: person.email, email_verified: true, groups: person.groups }) };
    },
    // A first-party client: every person consents to the scopes asked for, without a consent page.
    loadExistingGrant: async (ctx) => {
      const { client, session, params } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const existing = session.grantIdFor(client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(typeof params?.scope === 'string' ? params.scope : 'openid');
      grant.addOIDCClaims(['email', 'email_verified', 'groups']);
      await grant.save();
      session.ensureClientContainer(client.clientId);
      session.grantIdFor(client.clientId, grant.jti);
      return grant;
    },
  };
  const provider = new Provider(issuer, configuration);
  const oidc = provider.callback();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    const login = /^\/interaction\/([^/]+)(\/login)?$/.exec(url.pathname);
    if (!login) {
      void oidc(req, res);
      return;
    }
    void (async () => {
      try {
        const details = await provider.interactionDetails(req, res);
        if (req.method === 'GET') return send(res, 200, LOGIN_PAGE(details.uid));
        const name = (await formBody(req)).get('login') ?? '';
        if (!TEST_PEOPLE[name]) return send(res, 200, LOGIN_PAGE(details.uid, 'No such person.'));
        await provider.interactionFinished(req, res, { login: { accountId: name } }, { mergeWithLastSubmission: false });
      } catch (err) {
        send(res, 400, `<!doctype html><p>${(err as Error).message}</p>`);
      }
    })();
  });

  const agent = new Agent({ connect: { ca: ca.caPem() } });

  async function signIn(authorizationUrl: string, person: string): Promise<URL> {
    const cookies = new Map<string, string>();
    const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const request = async (url: string, init: { method?: string; body?: string } = {}) => {
      const r = await undiciFetch(url, {
        dispatcher: agent, redirect: 'manual', method: init.method ?? 'GET', body: init.body,
        headers: { cookie: cookieHeader(), ...init.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {} },
      });
      for (const c of r.headers.getSetCookie()) {
        const [pair = ''] = c.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      await r.arrayBuffer();
      return r;
    };
    let url = authorizationUrl;
    for (let hop = 0; hop < 10; hop++) {
      if (!url.startsWith(issuer)) return new URL(url);
      const page = new URL(url);
      const r = /^\/interaction\/[^/]+$/.test(page.pathname)
        ? await request(`${url}/login`, { method: 'POST', body: new URLSearchParams({ login: person }).toString() })
        : await request(url);
      const location = r.headers.get('location');
      if (!location) throw new Error(`the provider answered ${r.status} at ${page.pathname} instead of redirecting`);
      url = new URL(location, url).href;
    }
    throw new Error('too many redirects while signing in');
  }

  return {
    issuer,
    caFile: ca.caFile,
    caPem: ca.caPem(),
    agent,
    signIn,
    mintIdToken: ({ sub, audience, groups = [], expiresIn = '5m' }) => new SignJWT({ groups })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer).setAudience(audience).setSubject(sub).setIssuedAt().setExpirationTime(expiresIn)
      .sign(privateKey),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await agent.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
