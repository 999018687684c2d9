/**
 * In-cluster mode: people sign in with OpenID Connect at the identity provider
 * the API server trusts, and every Kubernetes call of their session is made
 * with their own ID token as the bearer token. The console's ServiceAccount
 * plays no part in that: its only right is its sign-out list (sign-outs.ts).
 *
 * A sign-in in progress keeps nothing on the server: its state, nonce, PKCE
 * verifier and the page to return to travel sealed (sealed.ts: encrypted and
 * authenticated, with an expiry) in a cookie scoped to the callback path.
 * With the shared session keys (keyring.ts), the callback may land on any
 * replica, or on a console restarted since the sign-in began. Each replica
 * answers a callback's state once; a callback replayed to another replica
 * fails at the provider, which takes an authorization code once.
 * Anyone can start sign-ins, before any check of who they are; since a
 * started sign-in takes no memory and no slot, no number of them, from one
 * address or from many, can keep anyone else from signing in (a flood is an
 * ordinary load of cheap requests). Only a completed sign-in makes a session,
 * and the store bounds those per person and in all (sessions.ts), or they
 * live sealed in their cookies (sealed-sessions.ts). The cookie
 * is SameSite=Lax: the provider's redirect back is a cross-site navigation,
 * on which the browser withholds the SameSite=Strict session cookie. For the
 * same reason the callback answers with a page that moves on by itself (a
 * same-site navigation) instead of a redirect, so that the new Strict session
 * cookie is sent with the first page; where it moves on to is always a page of
 * the console (redirects.ts).
 *
 * Sign-out ends the console's session, then ends the provider's with
 * RP-Initiated Logout 1.0, naming the console by its client_id and never
 * sending the ID token: the ID token is a live Kubernetes credential, and a
 * URL (id_token_hint in a query) is kept in the browser's history and in the
 * provider's access logs (oidc.ts says why the form is a GET). The page
 * allows that one form action to the provider's end-session endpoint in its
 * Content-Security-Policy, and the console's own script submits it (the
 * button does, without script).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KubeClient, KubeError, selfSubjectReview } from '../kube/client.ts';
import type { Logger } from '../shared/log.ts';
import { html } from './html.ts';
import { cookies, CSP, redirectAway, sendHtml } from './http.ts';
import type { BearerToken, PersonCredentials, SignIn, SignInRoute, SignInTools } from './identity.ts';
import { bearerKubeConfig, CALLBACK_PATH, type InClusterSettings } from './in-cluster-options.ts';
import { OidcRelyingParty, SignInError, type PendingSignIn, type SignOutForm } from './oidc.ts';
import { messagePage } from './pages/messages.ts';
import { movingOn } from './pages/moving-on.ts';
import { localTarget } from './redirects.ts';
import { Sealer } from './sealed.ts';
import { SessionTooLarge } from './sealed-sessions.ts';
import type { ConsoleSession } from './sessions.ts';

export const SIGN_IN_PATH = '/auth/sign-in';
export const SIGNED_OUT_PATH = '/auth/signed-out';
/** The cookie naming a sign-in in progress; Lax, so that it comes back with the provider's redirect. */
export const PENDING_COOKIE = 'apikey_console_signin';
/** How long a person has to sign in at the provider. */
const PENDING_TTL_MS = 10 * 60_000;
/** The purpose a pending sign-in is sealed for (sealed.ts). */
const PENDING_PURPOSE = 'apikey-console oidc pending sign-in v1';
/**
 * States of completed sign-ins remembered until their cookie expires, so that
 * a callback is answered once (the provider also takes a code once). One per
 * completed callback; past this many the oldest is forgotten.
 */
const MAX_USED_STATES = 50_000;
/** Kubernetes clients kept for reuse of their connections, one per ID token; past this many the oldest goes. */
const MAX_PEOPLE = 1000;

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
  /** Seals pending sign-ins; default: a key of this process's own (a restart or another replica cannot open them). */
  sealer?: Sealer;
}

/** A pending sign-in as opened from its cookie: sealed by this console, so only its shape is checked. */
function pendingOf(v: unknown): PendingSignIn | undefined {
  const p = v as Partial<PendingSignIn> | undefined;
  return p && typeof p.state === 'string' && typeof p.nonce === 'string' && typeof p.codeVerifier === 'string' && typeof p.returnTo === 'string'
    ? { state: p.state, nonce: p.nonce, codeVerifier: p.codeVerifier, returnTo: p.returnTo } : undefined;
}

/**
 * The page after sign-out: a form that sends the console's client_id (never
 * the ID token) to the provider's end-session endpoint. The console's own
 * script submits it at once; the button does the same without script. The
 * page's CSP lets its forms go to that one endpoint's origin, no further.
 */
function signOutAtProvider(res: ServerResponse, form: SignOutForm): void {
  res.setHeader('content-security-policy', CSP.replace("form-action 'self'", `form-action 'self' ${new URL(form.action).origin}`));
  sendHtml(res, 200, '<!doctype html>\n' + html`<html lang="en"><head><meta charset="utf-8">
<title>Signed out of the console · apikey-operator console</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head><body><main id="main"><h1>Signed out of the console</h1>
<form method="get" action="${form.action}" data-auto-submit>
${form.fields.map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">
`)}<button class="button" type="submit">Sign out at the identity provider too</button>
</form></main></body></html>`.text);
}

export class InClusterSignIn implements SignIn {
  readonly mode = 'in-cluster';
  readonly routes: readonly SignInRoute[];
  private readonly settings: InClusterSettings;
  private readonly rp: OidcRelyingParty;
  private readonly defaultNamespace: string | undefined;
  private readonly log: Logger | undefined;
  /** Seals pending sign-ins into their cookie: with the shared keys, or a key of this process's own. */
  private readonly sealer: Sealer;
  /** state -> when its pending sign-in would have expired (insertion order: oldest first). */
  private readonly usedStates = new Map<string, number>();
  /** One client per ID token (a session's, whichever store holds it), so its connections are reused; the oldest goes first. */
  private readonly people = new Map<string, PersonCredentials>();

  constructor(o: InClusterSignInOptions) {
    this.settings = o.settings;
    this.rp = o.relyingParty ?? new OidcRelyingParty(o.settings.oidc);
    this.sealer = o.sealer ?? new Sealer();
    this.defaultNamespace = o.defaultNamespace;
    this.log = o.log;
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
    const idToken = data.idToken;
    let person = this.people.get(idToken);
    if (!person || person.displayName !== session.signedIn.displayName) {
      person = {
        displayName: session.signedIn.displayName,
        client: new KubeClient(bearerKubeConfig(this.settings.apiserver, idToken)),
        bearerToken: (): Promise<BearerToken> => Promise.resolve({ token: idToken }),
        ...this.defaultNamespace ? { defaultNamespace: this.defaultNamespace } : {},
      };
      this.people.set(idToken, person);
      if (this.people.size > MAX_PEOPLE) this.people.delete(this.people.keys().next().value!);
    }
    return person;
  }

  async signedOut(session: ConsoleSession, res: ServerResponse, _tools: SignInTools): Promise<boolean> {
    const data = session.signedIn?.data;
    if (isOidcData(data)) this.people.delete(data.idToken);
    const form = await this.rp.signOutForm(`${this.settings.publicUrl}${SIGNED_OUT_PATH}`);
    if (!form) return false;
    signOutAtProvider(res, form);
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
    let started: Awaited<ReturnType<OidcRelyingParty['beginSignIn']>>;
    try {
      started = await this.rp.beginSignIn(localTarget(url.searchParams.get('next')));
    } catch (err) {
      this.failed(res, tools, err);
      return;
    }
    res.setHeader('set-cookie', this.pendingCookie(this.sealer.seal(PENDING_PURPOSE, started.pending, PENDING_TTL_MS), PENDING_TTL_MS / 1000));
    redirectAway(res, new URL(started.authorizationUrl));
  }

  private async complete(req: IncomingMessage, res: ServerResponse, url: URL, tools: SignInTools): Promise<void> {
    // A sign-in completes once: its cookie goes whatever happens next (and the provider takes a code once).
    res.setHeader('set-cookie', this.pendingCookie('', 0));
    const pending = this.takeOnce(pendingOf(this.sealer.open(PENDING_PURPOSE, cookies(req)[PENDING_COOKIE])));
    let person: Awaited<ReturnType<OidcRelyingParty['completeSignIn']>>;
    let name: string;
    try {
      person = await this.rp.completeSignIn(url.search, pending);
      name = await this.kubernetesName(person.idToken) ?? person.subject;
    } catch (err) {
      this.failed(res, tools, err);
      return;
    }
    const data: OidcSessionData = { idToken: person.idToken };
    let session: ConsoleSession;
    try {
      session = tools.sessions.signIn(tools.sessionOf(req), name, data, person.expiresAt);
    } catch (err) {
      this.failed(res, tools, err instanceof SessionTooLarge ? new SignInError(err.message) : err);
      return;
    }
    const cleared = headerValues(res.getHeader('set-cookie'));
    tools.setSessionCookie(res, session);
    res.setHeader('set-cookie', [...headerValues(res.getHeader('set-cookie')), ...cleared]);
    movingOn(res, 'Signed in', 'Continue to the console', pending!.returnTo);
  }

  /** `pending` the first time its state is seen here, else undefined. */
  private takeOnce(pending: PendingSignIn | undefined): PendingSignIn | undefined {
    if (!pending || this.usedStates.has(pending.state)) return undefined;
    const now = Date.now();
    for (const [state, until] of this.usedStates) {
      if (until > now && this.usedStates.size < MAX_USED_STATES) break;
      this.usedStates.delete(state);
    }
    this.usedStates.set(pending.state, now + PENDING_TTL_MS);
    return pending;
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
