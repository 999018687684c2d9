/**
 * In-cluster mode: people sign in with OpenID Connect at the identity provider
 * the API server trusts, and every Kubernetes call of their session is made
 * with their own ID token as the bearer token. The console's ServiceAccount
 * plays no part: it needs no RBAC at all.
 *
 * The sign-in's state, nonce and PKCE verifier wait in a short-lived pending
 * session of their own, named by a SameSite=Lax cookie scoped to the callback
 * path: the provider's redirect back is a cross-site navigation, on which the
 * browser withholds the SameSite=Strict session cookie. For the same reason
 * the callback answers with a page that moves on by itself (a same-site
 * navigation) instead of a redirect, so that the new Strict session cookie is
 * sent with the first page. Sign-out moves on to the provider's end-session
 * endpoint the same way, since a form's redirect to another site is stopped by
 * the console's Content-Security-Policy (form-action 'self').
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KubeClient, KubeError, selfSubjectReview } from '../kube/client.ts';
import type { Logger } from '../shared/log.ts';
import { html } from './html.ts';
import { cookies, sendHtml } from './http.ts';
import type { BearerToken, PersonCredentials, SignIn, SignInRoute, SignInTools } from './identity.ts';
import { bearerKubeConfig, CALLBACK_PATH, type InClusterSettings } from './in-cluster-options.ts';
import { localPath, OidcRelyingParty, SignInError, type PendingSignIn } from './oidc.ts';
import { messagePage } from './pages/messages.ts';
import type { ConsoleSession } from './sessions.ts';

export const SIGN_IN_PATH = '/auth/sign-in';
export const SIGNED_OUT_PATH = '/auth/signed-out';
/** The cookie naming a sign-in in progress; Lax, so that it comes back with the provider's redirect. */
export const PENDING_COOKIE = 'apikey_console_signin';
/** How long a person has to sign in at the provider. */
const PENDING_TTL_MS = 10 * 60_000;
/**
 * Sign-ins are started by anyone who opens the console, before any check of who
 * they are: past this many sessions the console starts no more, so that a
 * flood of sign-in requests cannot fill its memory.
 */
export const MAX_SESSIONS = 50_000;

/** What a signed-in session keeps: the ID token, server-side only. */
interface OidcSessionData extends Record<string, unknown> {
  idToken: string;
}

const headerValues = (h: number | string | string[] | undefined): string[] => (h === undefined ? [] : Array.isArray(h) ? h : [String(h)]);

const isOidcData = (d: Record<string, unknown> | undefined): d is OidcSessionData => typeof d?.idToken === 'string';

export interface InClusterSignInOptions {
  settings: InClusterSettings;
  /** The namespace shown when a person may not list Deployments across namespaces. */
  defaultNamespace?: string;
  log?: Logger;
  /** For tests: the relying party to use instead of one made from the settings. */
  relyingParty?: OidcRelyingParty;
  /** Live sessions (signed in or signing in) past which no sign-in starts; default MAX_SESSIONS. */
  maxSessions?: number;
}

/**
 * A page that moves on to `next` by itself (and with a link, for a browser
 * that does not): a navigation the page makes, not a redirect of the request.
 */
function movingOn(res: ServerResponse, heading: string, linkText: string, next: string): void {
  sendHtml(res, 200, '<!doctype html>\n' + html`<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=${next}">
<title>${heading} · apikey-operator console</title>
<link rel="stylesheet" href="/static/console.css">
</head><body><main id="main"><h1>${heading}</h1><p><a class="button" href="${next}">${linkText}</a></p></main></body></html>`.text);
}

export class InClusterSignIn implements SignIn {
  readonly mode = 'in-cluster';
  readonly routes: readonly SignInRoute[];
  private readonly settings: InClusterSettings;
  private readonly rp: OidcRelyingParty;
  private readonly defaultNamespace: string | undefined;
  private readonly log: Logger | undefined;
  private readonly maxSessions: number;
  /** One client per signed-in session, so its connections are reused; gone with the session. */
  private readonly people = new WeakMap<ConsoleSession, PersonCredentials>();

  constructor(o: InClusterSignInOptions) {
    this.settings = o.settings;
    this.rp = o.relyingParty ?? new OidcRelyingParty(o.settings.oidc);
    this.defaultNamespace = o.defaultNamespace;
    this.log = o.log;
    this.maxSessions = o.maxSessions ?? MAX_SESSIONS;
    this.routes = [
      { method: 'GET', path: SIGN_IN_PATH, handle: (req, res, url, tools) => this.begin(req, res, url, tools) },
      { method: 'GET', path: CALLBACK_PATH, handle: (req, res, url, tools) => this.complete(req, res, url, tools) },
      { method: 'GET', path: SIGNED_OUT_PATH, handle: (_req, res, _url, tools) => this.signedOutPage(res, tools) },
    ];
  }

  signInRequired(req: IncomingMessage, res: ServerResponse, url: URL, tools: SignInTools): void {
    // After sign-in, back to the page asked for (a form's POST cannot be replayed: back to its page's GET).
    const next = req.method === 'GET' ? `${url.pathname}${url.search}` : '/';
    tools.redirect(res, `${SIGN_IN_PATH}?next=${encodeURIComponent(next)}`);
  }

  credentials(session: ConsoleSession): PersonCredentials | undefined {
    const data = session.signedIn?.data;
    if (!session.signedIn || !isOidcData(data)) return undefined;
    let person = this.people.get(session);
    if (!person) {
      const idToken = data.idToken;
      person = {
        displayName: session.signedIn.displayName,
        client: new KubeClient(bearerKubeConfig(this.settings.apiserver, idToken)),
        bearerToken: (): Promise<BearerToken> => Promise.resolve({ token: idToken }),
        ...this.defaultNamespace ? { defaultNamespace: this.defaultNamespace } : {},
      };
      this.people.set(session, person);
    }
    return person;
  }

  async signedOut(session: ConsoleSession, res: ServerResponse, _tools: SignInTools): Promise<boolean> {
    const data = session.signedIn?.data;
    if (!isOidcData(data)) return false;
    const url = await this.rp.signOutUrl(data.idToken, `${this.settings.publicUrl}${SIGNED_OUT_PATH}`);
    if (!url) return false;
    // Not a redirect: the console's CSP (form-action 'self') stops a form's redirect to another site.
    movingOn(res, 'Signed out of the console', 'Sign out at the identity provider too', url);
    return true;
  }

  async close(): Promise<void> {
    await this.rp.close();
  }

  private pendingCookie(value: string, maxAgeSeconds: number): string {
    return [
      `${PENDING_COOKIE}=${value}`, `Path=${CALLBACK_PATH}`, 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeSeconds}`,
      ...this.settings.secureCookies ? ['Secure'] : [],
    ].join('; ');
  }

  private async begin(_req: IncomingMessage, res: ServerResponse, url: URL, tools: SignInTools): Promise<void> {
    // Creating a session first forgets the expired ones, so the count is of live sessions.
    const pending = tools.sessions.create();
    if (tools.sessions.size > this.maxSessions) {
      tools.sessions.destroy(pending.id);
      res.setHeader('retry-after', '60');
      tools.page(res, 503, 'Sign-in unavailable', messagePage('Sign-in unavailable', 'Too many sign-ins are in progress. Try again in a minute.', false));
      return;
    }
    pending.expiresAt = Math.min(pending.expiresAt, Date.now() + PENDING_TTL_MS);
    let started: Awaited<ReturnType<OidcRelyingParty['beginSignIn']>>;
    try {
      started = await this.rp.beginSignIn(localPath(url.searchParams.get('next')));
    } catch (err) {
      tools.sessions.destroy(pending.id);
      this.failed(res, tools, err);
      return;
    }
    pending.pending.oidc = started.pending;
    res.setHeader('set-cookie', this.pendingCookie(pending.id, PENDING_TTL_MS / 1000));
    tools.redirect(res, started.authorizationUrl);
  }

  private async complete(req: IncomingMessage, res: ServerResponse, url: URL, tools: SignInTools): Promise<void> {
    const waiting = tools.sessions.get(cookies(req)[PENDING_COOKIE]);
    // A sign-in completes once: its pending session goes whatever happens next.
    if (waiting) tools.sessions.destroy(waiting.id);
    const pending = waiting?.pending.oidc as PendingSignIn | undefined;
    let person: Awaited<ReturnType<OidcRelyingParty['completeSignIn']>>;
    try {
      person = await this.rp.completeSignIn(url.search, pending);
    } catch (err) {
      res.setHeader('set-cookie', this.pendingCookie('', 0));
      this.failed(res, tools, err);
      return;
    }
    const data: OidcSessionData = { idToken: person.idToken };
    let name: string;
    try {
      name = await this.kubernetesName(person.idToken) ?? person.subject;
    } catch (err) {
      res.setHeader('set-cookie', this.pendingCookie('', 0));
      this.failed(res, tools, err);
      return;
    }
    const session = tools.sessions.signIn(tools.sessionOf(req), name, data, person.expiresAt);
    tools.setSessionCookie(res, session);
    res.setHeader('set-cookie', [...headerValues(res.getHeader('set-cookie')), this.pendingCookie('', 0)]);
    movingOn(res, 'Signed in', 'Continue to the console', localPath(pending?.returnTo));
  }

  /**
   * The name RBAC knows the person by, as the API server maps the ID token's
   * claims (SelfSubjectReview); undefined when the API server cannot be asked
   * now (the pages will say so). An API server that refuses the token is a
   * failed sign-in: nothing would work, and the reason is its configuration.
   */
  private async kubernetesName(idToken: string): Promise<string | undefined> {
    const client = new KubeClient(bearerKubeConfig(this.settings.apiserver, idToken));
    try {
      return (await selfSubjectReview(client)).username;
    } catch (err) {
      if (err instanceof KubeError && err.status === 401) {
        throw new SignInError(`The identity provider signed you in, but the Kubernetes API server does not accept your ID token: it must trust ` +
          `the issuer ${this.settings.oidc.issuerUrl} for ID tokens whose audience is ${this.settings.oidc.clientId}. Ask your cluster's administrator.`, 403);
      }
      return undefined;
    }
  }

  private signedOutPage(res: ServerResponse, tools: SignInTools): void {
    tools.page(res, 200, 'Signed out', html`<h1>Signed out</h1>
<p>You are signed out of the console and of your identity provider.</p>
<p><a class="button" href="${SIGN_IN_PATH}">Sign in again</a></p>`);
  }

  private failed(res: ServerResponse, tools: SignInTools, err: unknown): void {
    if (!(err instanceof SignInError)) throw err;
    this.log?.warn({ issuer: this.rp.issuerUrl, reason: err.message }, 'console sign-in failed');
    tools.page(res, err.status, 'Sign-in failed', html`${messagePage('Sign-in failed', err.message, false)}
<p><a class="button" href="${SIGN_IN_PATH}">Try again</a></p>`);
  }
}
