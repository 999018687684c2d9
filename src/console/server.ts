/**
 * The console's HTTP server: server-rendered pages, one stylesheet, one
 * script, and a small JSON endpoint for live key status. Every request
 * passes the sign-in strategy's admission check (local mode: the Host
 * header), every page needs a signed-in session, every POST its session's
 * CSRF token, and every Kubernetes call is made with the person's own
 * credentials.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ApiKey, Deployment } from '../api/index.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../api/index.ts';
import { PluginError } from '../client/errors.ts';
import { requestToken, requireSafeTransport } from '../client/oauth.ts';
import type { Logger } from '../shared/log.ts';
import { SCRIPT, STYLE } from './assets.ts';
import type { Html } from './html.ts';
import {
  BodyTooLarge, cookies, readForm, redirect, requestUrl, securityHeaders, send, sendHtml, sendJson, sessionCookie,
} from './http.ts';
import type { PersonCredentials, SignIn, SignInTools } from './identity.ts';
import { waitForNewKey, revokeKey, rotateKey } from './key-actions.ts';
import { emptyForm, fieldOfRefusal, formValues, networksOf, validateKeyForm, type FieldErrors } from './key-form.ts';
import { addKeyPage } from './pages/add-key.ts';
import { deleteKeyPage } from './pages/delete-key.ts';
import { keyNetworksPage } from './pages/key-networks.ts';
import { revokeKeyPage } from './pages/revoke-key.ts';
import { deploymentPage, liveCells } from './pages/deployment.ts';
import { deploymentHref, deploymentsPage } from './pages/deployments.ts';
import { layout, type Frame } from './pages/layout.ts';
import { messagePage } from './pages/messages.ts';
import { revealGonePage, revealPage } from './pages/reveal.ts';
import { tokenPage } from './pages/token.ts';
import { PersonApi } from './person-api.ts';
import { Refusal, refusalOf } from './refusals.ts';
import { sameToken, SESSION_COOKIE, SessionStore, type ConsoleSession, type Reveal, type Sessions } from './sessions.ts';

export interface ConsoleOptions {
  signIn: SignIn;
  /**
   * The token endpoint as people reach it: in the curl of a new key, and where
   * /token exchanges the person's token. Unset: the curl uses the TOKEN_URL of
   * the key's Secret, and /token says it is not configured.
   */
  tokenUrl?: string;
  /** Mark the session cookie Secure (served over TLS, directly or behind a proxy). */
  secureCookies?: boolean;
  sessionTtlMs?: number;
  /** Where sessions live; default: this process's memory (sessions.ts). In-cluster mode with shared keys: their cookies (sealed-sessions.ts). */
  sessions?: Sessions;
  /** How often a Deployment page asks for fresh key status. */
  pollMs?: number;
  /** How long Create API Key and Rotate wait for the operator. */
  waitTimeoutMs?: number;
  log?: Logger;
}

export interface ConsoleServer {
  server: Server;
  sessions: Sessions;
}

/** A DNS-1123 name, as every namespace and object name is; anything else in a path is a 404. */
const NAME = '([a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)';
const ROUTES = {
  deployment: new RegExp(`^/deployments/${NAME}/${NAME}$`),
  newKey: new RegExp(`^/deployments/${NAME}/${NAME}/keys/new$`),
  keys: new RegExp(`^/deployments/${NAME}/${NAME}/keys$`),
  rotate: new RegExp(`^/deployments/${NAME}/${NAME}/keys/${NAME}/rotate$`),
  delete: new RegExp(`^/deployments/${NAME}/${NAME}/keys/${NAME}/delete$`),
  revoke: new RegExp(`^/deployments/${NAME}/${NAME}/keys/${NAME}/revoke$`),
  networks: new RegExp(`^/deployments/${NAME}/${NAME}/keys/${NAME}/networks$`),
  liveKeys: new RegExp(`^/api/deployments/${NAME}/${NAME}/keys$`),
  revealed: /^\/revealed\/([A-Za-z0-9_-]{10,64})$/,
};

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  session: ConsoleSession;
  person: PersonCredentials;
  api: PersonApi;
  form?: URLSearchParams;
  /** The session ended with this request: its cookie is cleared, not sealed again. */
  signedOut?: boolean;
}

export function createConsoleServer(opts: ConsoleOptions): ConsoleServer {
  const ttl = opts.sessionTtlMs ?? 8 * 3600_000;
  const sessions: Sessions = opts.sessions ?? new SessionStore({ ttlMs: ttl });
  const pollMs = opts.pollMs ?? 3000;
  const waitMs = opts.waitTimeoutMs ?? 60_000;
  const { signIn, log } = opts;

  const page = (res: ServerResponse, status: number, frame: Omit<Frame, 'mode'>, body: Html) =>
    sendHtml(res, status, layout({ ...frame, mode: signIn.mode }, body));

  const cookieName = (): string => signIn.sessionCookieName?.() ?? SESSION_COOKIE;
  const tools: SignInTools = {
    sessions,
    sessionOf: (req) => sessions.get(cookies(req)[cookieName()]),
    setSessionCookie: (res, s) => res.setHeader('set-cookie', sessionCookie(cookieName(), sessions.cookieValue(s), {
      secure: opts.secureCookies ?? false, maxAgeSeconds: Math.max(1, Math.floor((s.expiresAt - Date.now()) / 1000)),
    })),
    clearSessionCookie: (res) => res.setHeader('set-cookie', sessionCookie(cookieName(), '', { secure: opts.secureCookies ?? false, maxAgeSeconds: 0 })),
    redirect,
    page: (res, status, title, body) => page(res, status, { title }, body),
  };

  const frameOf = (c: Ctx, title: string, active?: Frame['active']): Omit<Frame, 'mode'> => {
    const flash = c.session.flash;
    c.session.flash = undefined;
    return { title, active, flash, person: { name: c.person.displayName, csrf: c.session.csrf } };
  };
  const refusalPage = (c: Ctx, r: Refusal, title = 'Not possible') =>
    page(c.res, r.status, frameOf(c, title), messagePage(title, r.message));

  /**
   * A session that lives in its cookie goes out with every answer, sealed
   * again as the answer leaves it (its idle time, a flash message shown or
   * set, a secret held or taken): just before the headers are written,
   * whichever way the answer ends (a page, a redirect, JSON).
   */
  function carrySession(c: Ctx): void {
    const writeHead = c.res.writeHead.bind(c.res) as (...args: unknown[]) => ServerResponse;
    c.res.writeHead = ((...args: unknown[]) => {
      if (!c.signedOut) tools.setSessionCookie(c.res, c.session);
      return writeHead(...args);
    });
  }

  // -- Deployments ------------------------------------------------------------------------------

  /** The Deployments the person may list: of one namespace, or of all; narrowed to their default namespace when all is refused. */
  async function visibleDeployments(c: Ctx, namespace: string | undefined): Promise<{ deployments: Deployment[]; namespace?: string; notice?: string; error?: string }> {
    try {
      return { deployments: await c.api.listDeployments(namespace), namespace };
    } catch (err) {
      const r = refusalOf(err, { verb: 'list', what: 'Deployments', namespace });
      if (namespace !== undefined || r.status !== 403 || !c.person.defaultNamespace) return { deployments: [], namespace, error: r.message };
      const fallback = c.person.defaultNamespace;
      try {
        return { deployments: await c.api.listDeployments(fallback), namespace: fallback, notice: `${r.message} Showing namespace ${fallback}; choose another above.` };
      } catch (err2) {
        return { deployments: [], namespace: fallback, error: `${r.message} ${refusalOf(err2, { verb: 'list', what: 'Deployments', namespace: fallback }).message}` };
      }
    }
  }

  async function deploymentsRoute(c: Ctx): Promise<void> {
    const asked = c.url.searchParams.get('namespace')?.trim() || undefined;
    if (asked !== undefined && !new RegExp(`^${NAME}$`).test(asked)) {
      page(c.res, 400, frameOf(c, 'Deployments', 'deployments'), deploymentsPage({ deployments: [], namespace: asked, error: `"${asked}" is not a namespace name.` }));
      return;
    }
    const v = await visibleDeployments(c, asked);
    page(c.res, v.error ? 403 : 200, frameOf(c, 'Deployments', 'deployments'), deploymentsPage(v));
  }

  async function deploymentRoute(c: Ctx, ns: string, name: string): Promise<void> {
    let deployment: Deployment;
    try {
      deployment = await c.api.getDeployment(ns, name);
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'get', what: 'Deployments', namespace: ns, name }), `Deployment ${name}`);
      return;
    }
    const [keys, rights] = await Promise.all([
      c.api.listApiKeys(ns, name).then((k) => ({ k }), (err: unknown) => ({ error: refusalOf(err, { verb: 'list', what: 'ApiKeys', namespace: ns }).message })),
      c.api.can([
        { verb: 'create', group: 'apikeys.dev', resource: 'apikeys', namespace: ns },
        { verb: 'patch', group: 'apikeys.dev', resource: 'apikeys', namespace: ns },
        { verb: 'delete', group: 'apikeys.dev', resource: 'apikeys', namespace: ns },
        { verb: 'get', group: '', resource: 'secrets', namespace: ns },
      ]),
    ]);
    page(c.res, 200, frameOf(c, `Deployment ${name}`, 'deployments'), deploymentPage({
      deployment, keys: 'k' in keys ? keys.k : [], keysError: 'error' in keys ? keys.error : undefined,
      rights: { create: rights[0]!, rotate: rights[1]!, delete: rights[2]!, readSecrets: rights[3]! }, csrf: c.session.csrf, pollMs,
    }));
  }

  async function liveKeysRoute(c: Ctx, ns: string, name: string): Promise<void> {
    try {
      const keys = await c.api.listApiKeys(ns, name);
      sendJson(c.res, 200, { keys: keys.map((k) => ({ name: k.metadata.name, cells: liveCells(k) })) });
    } catch (err) {
      const r = refusalOf(err, { verb: 'list', what: 'ApiKeys', namespace: ns });
      sendJson(c.res, r.status, { error: r.message });
    }
  }

  // -- Add API Key ------------------------------------------------------------------------------

  function newKeyRoute(c: Ctx, ns: string, dep: string): void {
    page(c.res, 200, frameOf(c, 'Add API Key', 'deployments'), addKeyPage({ namespace: ns, deployment: dep, values: emptyForm(), errors: {}, csrf: c.session.csrf }));
  }

  function hold(c: Ctx, kind: Reveal['kind'], ns: string, dep: string, name: string, creds: { keyId: string; secret: string; secretName: string; audience: string; tokenUrl: string }, previousValidUntil?: string): string {
    const id = sessions.hold(c.session, {
      kind, namespace: ns, deployment: dep, name, keyId: creds.keyId, secret: creds.secret, secretName: creds.secretName,
      audience: creds.audience, tokenUrl: opts.tokenUrl ?? creds.tokenUrl, previousValidUntil,
    });
    return `/revealed/${id}`;
  }

  async function createKeyRoute(c: Ctx, ns: string, dep: string): Promise<void> {
    const values = formValues(c.form!);
    const { spec, errors } = validateKeyForm(values, dep);
    const again = (status: number) =>
      page(c.res, status, frameOf(c, 'Add API Key', 'deployments'), addKeyPage({ namespace: ns, deployment: dep, values, errors, csrf: c.session.csrf }));
    if (!spec) return again(422);
    try {
      await c.api.createApiKey(ns, values.name, spec);
    } catch (err) {
      const r = refusalOf(err, { verb: 'create', what: 'ApiKeys', namespace: ns, name: values.name });
      const field = r.invalid ? fieldOfRefusal(r.invalid, r.invalid === 'exists') : 'form';
      errors[field] = r.invalid === 'exists' ? `An API key named "${values.name}" already exists in ${ns}; choose another name.` : r.message;
      return again(r.status);
    }
    try {
      const { creds } = await waitForNewKey(c.api, ns, values.name, waitMs);
      redirect(c.res, hold(c, 'created', ns, dep, values.name, creds));
    } catch (err) {
      c.session.flash = refusalOf(err, { verb: 'get', what: 'ApiKeys', namespace: ns, name: values.name }).message;
      redirect(c.res, deploymentHref(ns, dep));
    }
  }

  function revealedRoute(c: Ctx, id: string): void {
    const r = sessions.take(c.session, id);
    if (!r) {
      page(c.res, 410, frameOf(c, 'Secret no longer shown'), revealGonePage());
      return;
    }
    page(c.res, 200, frameOf(c, r.kind === 'rotated' ? 'Key rotated' : 'Key created', 'deployments'), revealPage(r));
  }

  // -- Edit: Rotate, Revoke, Delete API Key -----------------------------------------------------

  async function rotateRoute(c: Ctx, ns: string, dep: string, name: string): Promise<void> {
    try {
      const { key, creds } = await rotateKey(c.api, ns, name, waitMs);
      redirect(c.res, hold(c, 'rotated', ns, dep, name, creds, key.status?.previousSecretValidUntil));
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'update', what: 'ApiKeys', namespace: ns, name }), `Rotate ${name}`);
    }
  }

  async function deleteFormRoute(c: Ctx, ns: string, name: string): Promise<void> {
    try {
      const k = await c.api.getApiKey(ns, name);
      page(c.res, 200, frameOf(c, `Delete ${name}`, 'deployments'), deleteKeyPage(k, c.session.csrf));
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'get', what: 'ApiKeys', namespace: ns, name }), `Delete ${name}`);
    }
  }

  async function deleteRoute(c: Ctx, ns: string, dep: string, name: string): Promise<void> {
    let k;
    try {
      k = await c.api.getApiKey(ns, name);
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'get', what: 'ApiKeys', namespace: ns, name }), `Delete ${name}`);
      return;
    }
    if ((c.form!.get('confirm') ?? '').trim() !== name) {
      page(c.res, 422, frameOf(c, `Delete ${name}`, 'deployments'),
        deleteKeyPage(k, c.session.csrf, `Type the key's name, ${name}, exactly to delete it. Nothing was deleted.`));
      return;
    }
    try {
      await c.api.deleteApiKey(ns, name);
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'delete', what: 'ApiKeys', namespace: ns, name }), `Delete ${name}`);
      return;
    }
    c.session.flash = `Deleted API Key ${name}; its Secret goes with it.`;
    redirect(c.res, deploymentHref(ns, dep));
  }

  async function revokeFormRoute(c: Ctx, ns: string, name: string): Promise<void> {
    try {
      const k = await c.api.getApiKey(ns, name);
      page(c.res, 200, frameOf(c, `Revoke ${name}`, 'deployments'), revokeKeyPage(k, c.session.csrf));
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'get', what: 'ApiKeys', namespace: ns, name }), `Revoke ${name}`);
    }
  }

  /** Revoke API Key: the same report of a leak as `kubectl apikey revoke` (key-actions.ts revokeKey). */
  async function revokeRoute(c: Ctx, ns: string, dep: string, name: string): Promise<void> {
    if ((c.form!.get('confirm') ?? '').trim() !== name) {
      try {
        const k = await c.api.getApiKey(ns, name);
        page(c.res, 422, frameOf(c, `Revoke ${name}`, 'deployments'),
          revokeKeyPage(k, c.session.csrf, `Type the key's name, ${name}, exactly to revoke it. Nothing was revoked.`));
      } catch (err) {
        refusalPage(c, refusalOf(err, { verb: 'get', what: 'ApiKeys', namespace: ns, name }), `Revoke ${name}`);
      }
      return;
    }
    try {
      const now = await revokeKey(c.api, ns, name, (c.form!.get('reason') ?? '').trim(), waitMs);
      c.session.flash = now
        ? `Revoked API Key ${name}: it issues no tokens, and its tokens stopped working. Rotate it to use it again.`
        : `API Key ${name} was already revoked. Rotate it to use it again.`;
      redirect(c.res, deploymentHref(ns, dep));
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'update', what: 'ApiKeys', namespace: ns, name }), `Revoke ${name}`);
    }
  }

  async function networksRoute(c: Ctx, ns: string, dep: string, name: string): Promise<void> {
    const title = `Allowed networks of ${name}`;
    let key: ApiKey;
    try {
      key = await c.api.getApiKey(ns, name);
    } catch (err) {
      refusalPage(c, refusalOf(err, { verb: 'get', what: 'ApiKeys', namespace: ns, name }), title);
      return;
    }
    const deployment = await c.api.getDeployment(ns, key.spec.deploymentRef.name).catch(() => undefined);
    const view = { key, deployment, value: (key.spec.allowedNetworks ?? []).join('\n'), errors: {} as FieldErrors, csrf: c.session.csrf };
    if (c.req.method !== 'POST') {
      page(c.res, 200, frameOf(c, title, 'deployments'), keyNetworksPage(view));
      return;
    }
    const typed = c.form!.get('allowedNetworks') ?? '';
    const again = (status: number, errors: FieldErrors) => page(c.res, status, frameOf(c, title, 'deployments'), keyNetworksPage({ ...view, value: typed, errors }));
    const networks = networksOf(typed);
    if ('error' in networks) return again(422, { allowedNetworks: networks.error });
    try {
      await c.api.setAllowedNetworks(ns, name, networks.list);
    } catch (err) {
      const r = refusalOf(err, { verb: 'patch', what: 'ApiKeys', namespace: ns, name });
      return again(r.status, r.invalid ? { allowedNetworks: r.message } : { form: r.message });
    }
    c.session.flash = networks.list.length
      ? `API Key ${name} may now be used only from ${networks.list.join(', ')} (and what its Deployment allows).`
      : `API Key ${name} may now be used from anywhere its Deployment allows.`;
    redirect(c.res, deploymentHref(ns, dep));
  }

  // -- /token -----------------------------------------------------------------------------------

  async function tokenRoute(c: Ctx): Promise<void> {
    const listed = await visibleDeployments(c, undefined);
    let unavailable: string | undefined;
    if (!opts.tokenUrl) unavailable = 'This console was started without the token endpoint\'s URL (--token-url), so it cannot exchange your token.';
    const bearer = unavailable ? undefined : await c.person.bearerToken();
    if (bearer && 'unavailable' in bearer) unavailable = bearer.unavailable;
    const view = {
      deployments: listed.deployments, csrf: c.session.csrf, unavailable, listError: listed.error,
      chosen: c.form?.get('deployment') ?? undefined, scope: c.form?.get('scope') ?? undefined,
    };
    if (c.req.method !== 'POST' || unavailable || !bearer || !('token' in bearer)) {
      page(c.res, 200, frameOf(c, 'Token', 'token'), tokenPage(view));
      return;
    }
    const chosen = view.chosen ?? '';
    if (!new RegExp(`^${NAME}/${NAME}$`).test(chosen)) {
      page(c.res, 422, frameOf(c, 'Token', 'token'), tokenPage({ ...view, error: 'Choose a Deployment.' }));
      return;
    }
    const scope = view.scope === 'deploy' || view.scope === 'read' ? view.scope : undefined;
    try {
      requireSafeTransport(opts.tokenUrl!, '--token-url');
      const t = await requestToken({
        url: opts.tokenUrl!,
        params: { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: bearer.token, subject_token_type: ACCESS_TOKEN_TYPE, deployment: chosen, scope },
        unreachableHint: 'is the token server running?',
      });
      page(c.res, 200, frameOf(c, 'Token', 'token'), tokenPage({
        ...view,
        result: {
          token: t.access_token, scope: t.scope ?? '', deployment: chosen,
          expiresAt: new Date(Date.now() + (t.expires_in ?? 0) * 1000).toISOString(),
        },
      }));
    } catch (err) {
      const message = err instanceof PluginError ? err.message : 'The token endpoint could not be asked.';
      page(c.res, 502, frameOf(c, 'Token', 'token'), tokenPage({ ...view, error: message }));
    }
  }

  // -- dispatch ---------------------------------------------------------------------------------

  async function signedIn(c: Ctx): Promise<void> {
    const { req, url } = c;
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if (req.method === 'GET') {
      if (p === '/') return deploymentsRoute(c);
      if (p === '/token') return tokenRoute(c);
      if ((m = ROUTES.deployment.exec(p))) return deploymentRoute(c, m[1]!, m[2]!);
      if ((m = ROUTES.newKey.exec(p))) return newKeyRoute(c, m[1]!, m[2]!);
      if ((m = ROUTES.delete.exec(p))) return deleteFormRoute(c, m[1]!, m[3]!);
      if ((m = ROUTES.revoke.exec(p))) return revokeFormRoute(c, m[1]!, m[3]!);
      if ((m = ROUTES.networks.exec(p))) return networksRoute(c, m[1]!, m[2]!, m[3]!);
      if ((m = ROUTES.liveKeys.exec(p))) return liveKeysRoute(c, m[1]!, m[2]!);
      if ((m = ROUTES.revealed.exec(p))) return revealedRoute(c, m[1]!);
    } else if (req.method === 'POST') {
      if (p === '/token') return tokenRoute(c);
      if (p === '/sign-out') {
        try {
          await sessions.end(c.session);
        } catch (err) {
          log?.warn({ err: (err as Error).message }, 'console sign-out could not be recorded');
          page(c.res, 503, frameOf(c, 'Not signed out'), messagePage('Not signed out',
            'Your sign-out could not be recorded, so your session still works. Try again in a moment.'));
          return;
        }
        c.signedOut = true;
        tools.clearSessionCookie(c.res);
        if (signIn.signedOut && await signIn.signedOut(c.session, c.res, tools)) return;
        page(c.res, 200, { title: 'Signed out' }, messagePage('Signed out', 'You are signed out of the console.', false));
        return;
      }
      if ((m = ROUTES.keys.exec(p))) return createKeyRoute(c, m[1]!, m[2]!);
      if ((m = ROUTES.rotate.exec(p))) return rotateRoute(c, m[1]!, m[2]!, m[3]!);
      if ((m = ROUTES.delete.exec(p))) return deleteRoute(c, m[1]!, m[2]!, m[3]!);
      if ((m = ROUTES.revoke.exec(p))) return revokeRoute(c, m[1]!, m[2]!, m[3]!);
      if ((m = ROUTES.networks.exec(p))) return networksRoute(c, m[1]!, m[2]!, m[3]!);
    }
    page(c.res, 404, frameOf(c, 'Not found'), messagePage('Not found', `There is no page at ${p}.`));
  }

  /** A POST of another origin, or without this session's CSRF token, changes nothing. */
  function csrfRefusal(req: IncomingMessage, form: URLSearchParams, session: ConsoleSession): string | undefined {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      const host = req.headers.host ?? '';
      if (origin !== `http://${host}` && origin !== `https://${host}`) return 'The request came from another site and was refused.';
    }
    if (!sameToken(form.get('csrf') ?? undefined, session.csrf)) {
      return 'The form was refused: its CSRF token is missing or does not belong to your session. Reload the page and try again.';
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL | undefined): Promise<void> {
    securityHeaders(res);
    const refusal = signIn.admit?.(req);
    if (refusal) {
      send(res, refusal.status, 'text/plain; charset=utf-8', `${refusal.message}\n`);
      return;
    }
    if (!url) {
      send(res, 400, 'text/plain; charset=utf-8', 'The request\'s target is not a URL.\n');
      return;
    }
    if (req.method === 'GET' && url.pathname === '/static/console.css') {
      send(res, 200, 'text/css; charset=utf-8', STYLE, { 'cache-control': 'public, max-age=3600' });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/static/console.js') {
      send(res, 200, 'text/javascript; charset=utf-8', SCRIPT, { 'cache-control': 'public, max-age=3600' });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/healthz') {
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    }
    const unavailable = sessions.unavailable();
    if (req.method === 'GET' && url.pathname === '/readyz') {
      send(res, unavailable ? 503 : 200, 'text/plain; charset=utf-8', unavailable ? `not ready: ${unavailable}\n` : 'ok\n');
      return;
    }
    if (unavailable) {
      page(res, 503, { title: 'Starting' }, messagePage('The console is starting', `${unavailable} Try again in a moment.`));
      return;
    }
    const route = signIn.routes.find((r) => r.method === req.method && r.path === url.pathname);
    if (route) {
      await route.handle(req, res, url, tools);
      return;
    }
    const session = tools.sessionOf(req);
    const person = session?.signedIn ? signIn.credentials(session) : undefined;
    if (!session || !person) {
      if (session?.signedIn) sessions.drop(session);
      if (url.pathname.startsWith('/api/')) {
        sendJson(res, 401, { error: 'not signed in' });
        return;
      }
      // A sign-out without a session has nothing left to do.
      await signIn.signInRequired(req, res, url, tools);
      return;
    }
    const c: Ctx = { req, res, url, session, person, api: new PersonApi(person.client) };
    if (sessions.inCookie) carrySession(c);
    if (req.method === 'POST') {
      c.form = await readForm(req);
      const why = csrfRefusal(req, c.form, session);
      if (why) {
        page(res, 403, frameOf(c, 'Refused'), messagePage('Refused', why));
        return;
      }
    } else if (req.method !== 'GET') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, POST' });
      return;
    }
    await signedIn(c);
  }

  const server = createServer((req, res) => {
    const started = performance.now();
    const url = requestUrl(req);
    handle(req, res, url).catch((err: unknown) => {
      log?.error({ err, path: url?.pathname }, 'console request failed');
      if (res.headersSent) { res.destroy(); return; }
      const status = err instanceof BodyTooLarge ? 413 : 500;
      sendHtml(res, status, layout({ title: 'Error', mode: signIn.mode },
        messagePage('Something went wrong', status === 413 ? 'The form was too large.' : 'The console could not answer this request; see its log.')));
    }).finally(() => {
      // Only the path: a query may hold a one-time sign-in code.
      log?.debug({ method: req.method, path: url?.pathname, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'console request');
    });
  });
  return { server, sessions };
}
