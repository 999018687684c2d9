/**
 * Local mode: the console runs on the person's machine, on a loopback
 * address, with their kubeconfig (its context, exec plugins and all). Sign-in
 * is a one-time code in the printed URL, exchanged once for the session
 * cookie; a second use of the URL does nothing. Every request must name
 * exactly the address it serves in its Host header, so that a web page whose
 * DNS name is re-pointed at 127.0.0.1 (DNS rebinding) cannot drive it.
 *
 * What this mode assumes of the host (docs/guides/console.md says it to
 * people): whoever can read the code before it is used (it is printed on the
 * person's own terminal, and handed to the browser in a private file, never
 * in a command line: main.ts) can sign in once; the browser sends the session
 * cookie to every server on 127.0.0.1 whatever its port (cookies ignore
 * ports, and on http a cookie cannot be `Secure`, so neither can it be
 * `__Host-`), so a local server of someone else that the person's browser
 * visits could read it and, since any local user can connect to the port, use
 * it. The cookie's name carries the port, so two consoles on one host never
 * overwrite each other's sessions.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tokenEndpoint } from '../client/oauth.ts';
import { UsageError } from '../client/options.ts';
import { KubeClient } from '../kube/client.ts';
import type { KubeConfig } from '../kube/kubeconfig.ts';
import { html } from './html.ts';
import type { BearerToken, PersonCredentials, SignIn, SignInRoute, SignInTools } from './identity.ts';
import { messagePage } from './pages/messages.ts';
import { movingOn } from './pages/moving-on.ts';
import { PersonApi } from './person-api.ts';
import { randomId, sameToken, SESSION_COOKIE, type ConsoleSession } from './sessions.ts';

export const SIGN_IN_PATH = '/sign-in';

/** The kubeconfig's credential as a bearer token, or why it is none (a client certificate cannot be presented to anyone else). */
export async function kubeconfigBearerToken(kc: KubeConfig, client: KubeClient = new KubeClient(kc)): Promise<BearerToken> {
  let headers: Record<string, string>;
  try {
    headers = await client.authHeaders();
  } catch (err) {
    return { unavailable: `Your kubeconfig's credentials could not be loaded: ${(err as Error).message}` };
  }
  const auth = headers.authorization ?? headers.Authorization;
  if (auth?.startsWith('Bearer ') && auth.length > 7) return { token: auth.slice(7) };
  const user = kc.getCurrentUser();
  const how = user?.certData || user?.certFile ? 'a client certificate' : user?.username ? 'a user name and password' : 'no credentials';
  return {
    unavailable: `Your kubeconfig context "${kc.getCurrentContext()}" signs in with ${how}, not a bearer token, so there is no token of yours ` +
      'to exchange: the token server checks who you are with a TokenReview, which verifies bearer tokens only (a client certificate is ' +
      'checked by the API server during the TLS handshake and cannot be shown to anyone else). This page needs token-based credentials: ' +
      'a context that uses OIDC, an exec plugin or a ServiceAccount token. Or create an API key for the Deployment instead.',
  };
}

export interface LocalSignInOptions {
  kc: KubeConfig;
  /** The namespace shown when the person may not list across namespaces: -n, else the context's. */
  defaultNamespace: string;
}

export class LocalSignIn implements SignIn {
  readonly mode = 'local';
  readonly routes: readonly SignInRoute[];
  private readonly kc: KubeConfig;
  private readonly client: KubeClient;
  private readonly defaultNamespace: string;
  /** The one-time sign-in code; undefined once used. */
  private code: string | undefined = randomId();
  /** host:port the console serves, set once it listens. */
  private origin: string | undefined;
  private port: number | undefined;
  private codeTaken!: () => void;
  /** Resolves once the one-time code has been used (main.ts then deletes the file that held it for the browser). */
  readonly codeUsed = new Promise<void>((resolve) => { this.codeTaken = resolve; });

  constructor(opts: LocalSignInOptions) {
    this.kc = opts.kc;
    this.client = new KubeClient(opts.kc);
    this.defaultNamespace = opts.defaultNamespace;
    this.routes = [{ method: 'GET', path: SIGN_IN_PATH, handle: (req, res, url, tools) => this.signIn(req, res, url, tools) }];
  }

  /** Called once the server listens: the only Host accepted from then on. */
  listening(host: string, port: number): void {
    this.origin = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.port = port;
  }

  /** With the port: the browser sends one host's cookies to every port of it, and two consoles must not share a name. */
  sessionCookieName(): string {
    return `${SESSION_COOKIE}_${this.port ?? 0}`;
  }

  /** The URL to print: it signs in once. */
  signInUrl(): string {
    if (!this.origin || !this.code) throw new Error('the console is not listening, or its sign-in code was used');
    return `http://${this.origin}${SIGN_IN_PATH}?code=${this.code}`;
  }

  admit(req: IncomingMessage): { status: number; message: string } | undefined {
    if (this.origin && req.headers.host === this.origin) return undefined;
    return {
      status: 421,
      message: `This console answers only requests for http://${this.origin ?? '127.0.0.1'}/ (the Host header was "${req.headers.host ?? ''}"). ` +
        'Open the URL that kubectl apikey console printed.',
    };
  }

  private async signIn(req: IncomingMessage, res: ServerResponse, url: URL, tools: SignInTools): Promise<void> {
    const given = url.searchParams.get('code') ?? undefined;
    if (!this.code || !sameToken(given, this.code)) {
      tools.page(res, 403, 'Sign-in link used', messagePage('This sign-in link cannot be used',
        'A sign-in link works once, and this one was used already or is wrong. Stop the console (Ctrl-C) and start it again for a new link.', false));
      return;
    }
    this.code = undefined;
    this.codeTaken();
    const user = await new PersonApi(this.client).whoAmI();
    const name = user ?? this.kc.getCurrentUser()?.name ?? this.kc.getCurrentContext();
    const session = tools.sessions.signIn(tools.sessionOf(req), name, {});
    tools.setSessionCookie(res, session);
    // A clean URL: the code does not stay in the address bar or the history. A page that moves on, not
    // a redirect: opened from the sign-in file (file://), a redirect would arrive without the Strict cookie.
    movingOn(res, 'Signed in', 'Continue to the console', '/');
  }

  signInRequired(_req: IncomingMessage, res: ServerResponse, _url: URL, tools: SignInTools): void {
    tools.page(res, 401, 'Sign in', html`<h1>Sign in</h1>
<p class="notice info">Open the sign-in URL that <code>kubectl apikey console</code> printed in your terminal. It works once; to sign in again, restart the console.</p>`);
  }

  credentials(session: ConsoleSession): PersonCredentials | undefined {
    if (!session.signedIn) return undefined;
    return {
      displayName: session.signedIn.displayName,
      client: this.client,
      bearerToken: () => kubeconfigBearerToken(this.kc, this.client),
      defaultNamespace: this.defaultNamespace,
    };
  }
}

/** Whether `host` is a loopback address literal: the local console never listens anywhere else. */
export function isLoopbackHost(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1';
}

/** --token-url as the plugin reads it (a bare origin gets /oauth/token), or undefined; anything but an http(s) URL is a usage error. */
export function consoleTokenUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    return tokenEndpoint(value, '--token-url');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
