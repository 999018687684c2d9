/**
 * The console as an OpenID Connect relying party (in-cluster mode): the
 * authorization code flow with PKCE, through openid-client. Sign-in keeps its
 * state, nonce and PKCE verifier in the person's pending session (server-side)
 * and the callback checks all three; the ID token it gets is what the console
 * then presents to the API server, which trusts the same issuer.
 *
 * Discovery happens at the first sign-in and is retried at the next one when
 * the identity provider could not be reached, so the console starts even
 * while its provider is down. Nothing here ever logs or returns in an error a
 * code, a token or the client secret.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { localTarget } from './redirects.ts';

export interface OidcSettings {
  /** The issuer URL, exactly as in the ID tokens' `iss` (and in the API server's authentication configuration). */
  issuerUrl: string;
  clientId: string;
  clientSecret: string;
  /** Where the provider sends the browser back: the console's public URL and its callback path. */
  redirectUri: string;
  scopes: string[];
  /** A PEM bundle of CAs to trust for the provider, added to the system's; default: the system's only. */
  caFile?: string;
}

/** What sign-in keeps in the pending session until the callback: every value is checked there. */
export interface PendingSignIn {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** The console page to show after sign-in (a path of the console, redirects.ts). */
  returnTo: string;
}

/**
 * RP-Initiated Logout 1.0 as a form the browser submits with GET: where to
 * (without a query), and its fields (the endpoint's own query parameters
 * first, then the console's client_id and where to come back; never the ID token).
 */
export interface SignOutForm {
  action: string;
  fields: [name: string, value: string][];
}

export interface SignedInPerson {
  /** The raw ID token: the bearer token of every Kubernetes call made for the person. */
  idToken: string;
  /** The ID token's `sub` and, when present, `email` / `name`, for display until the API server says who this is. */
  subject: string;
  /** When the ID token expires (ms since the epoch): the session ends then. */
  expiresAt: number;
}

/** Why signing in failed, in words for the person; never carries a code or a token. */
export class SignInError extends Error {
  override readonly name = 'SignInError';
  /** 502 when the identity provider could not be reached, 403 when the API server refuses the ID token, else 400. */
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

export class OidcRelyingParty {
  private readonly settings: OidcSettings;
  private readonly agent: Agent;
  private discovered: Promise<client.Configuration> | undefined;

  constructor(settings: OidcSettings) {
    this.settings = settings;
    const ca = settings.caFile ? [...rootCertificates, readFileSync(settings.caFile, 'utf8')] : undefined;
    this.agent = new Agent({ connect: ca ? { ca } : {} });
  }

  get issuerUrl(): string {
    return this.settings.issuerUrl;
  }

  /** The provider's configuration, discovered once; a failed discovery is tried again next time. */
  configuration(): Promise<client.Configuration> {
    this.discovered ??= client.discovery(
      new URL(this.settings.issuerUrl), this.settings.clientId, this.settings.clientSecret, undefined,
      { [client.customFetch]: (url, options) => undiciFetch(url, { ...options, dispatcher: this.agent }) },
    ).catch((err: unknown) => {
      this.discovered = undefined;
      throw new SignInError(`The identity provider ${this.settings.issuerUrl} could not be reached or did not describe itself: ${messageOf(err)}`, 502);
    });
    return this.discovered;
  }

  /** Starts a sign-in: the URL to send the browser to, and what the callback will check. */
  async beginSignIn(returnTo: string): Promise<{ authorizationUrl: string; pending: PendingSignIn }> {
    const config = await this.configuration();
    const pending: PendingSignIn = {
      state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier(), returnTo: localTarget(returnTo),
    };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: this.settings.scopes.join(' '),
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    });
    return { authorizationUrl: url.href, pending };
  }

  /**
   * Completes a sign-in from the callback's query (`search`, e.g. `?code=..&state=..`):
   * checks the state, exchanges the code with the PKCE verifier, and verifies
   * the ID token (issuer, audience, signature, expiry, nonce).
   */
  async completeSignIn(search: string, pending: PendingSignIn | undefined): Promise<SignedInPerson> {
    if (!pending) throw new SignInError('This sign-in was not started here, or it was already completed. Sign in again.');
    const config = await this.configuration();
    const callback = new URL(this.settings.redirectUri);
    callback.search = search;
    const providerError = callback.searchParams.get('error');
    if (providerError) {
      const description = callback.searchParams.get('error_description');
      throw new SignInError(`The identity provider did not sign you in: ${providerError}${description ? ` (${description})` : ''}.`);
    }
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true,
      });
    } catch (err) {
      throw new SignInError(`Sign-in could not be completed: ${messageOf(err)}`);
    }
    const claims = tokens.claims();
    if (!tokens.id_token || !claims) throw new SignInError('The identity provider returned no ID token.');
    const label = [claims.email, claims.name, claims.sub].find((v): v is string => typeof v === 'string' && v !== '') ?? claims.sub;
    return { idToken: tokens.id_token, subject: label, expiresAt: claims.exp * 1000 };
  }

  /**
   * How to end the session at the provider too (RP-Initiated Logout 1.0), or
   * undefined when the provider offers no end-session endpoint. The console
   * names itself by its client_id, which the specification allows in place of
   * id_token_hint: the ID token is a live Kubernetes credential and never
   * leaves the console, so nothing of the person's is in the URL. The request
   * is a GET (a top-level navigation), not a POST: a provider's session
   * cookie is commonly SameSite=Lax, which a browser sends with a cross-site
   * GET navigation but not with a cross-site POST, so a POST could not end
   * the provider's session (oidc-provider accepts only GET by default for
   * that reason); with client_id alone the query holds nothing secret.
   */
  async signOutForm(postLogoutRedirectUri: string): Promise<SignOutForm | undefined> {
    let config: client.Configuration;
    try {
      config = await this.configuration();
    } catch {
      return undefined;
    }
    const endpoint = config.serverMetadata().end_session_endpoint;
    if (typeof endpoint !== 'string') return undefined;
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return undefined;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
    const fields: SignOutForm['fields'] = [...url.searchParams].filter(([k]) => k !== 'client_id' && k !== 'post_logout_redirect_uri');
    fields.push(['client_id', this.settings.clientId], ['post_logout_redirect_uri', postLogoutRedirectUri]);
    url.search = '';
    url.hash = '';
    return { action: url.href, fields };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** An error's message, without anything after a newline (a response body could follow). */
function messageOf(err: unknown): string {
  const e = err as { message?: unknown; cause?: { message?: unknown; code?: unknown } };
  const own = typeof e?.message === 'string' ? e.message.split('\n')[0] : String(err);
  const cause = typeof e?.cause?.code === 'string' ? e.cause.code : typeof e?.cause?.message === 'string' ? e.cause.message.split('\n')[0] : undefined;
  return cause && !own?.includes(cause) ? `${own} (${cause})` : own ?? 'unknown error';
}
