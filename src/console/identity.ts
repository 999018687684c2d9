/**
 * Who the console acts as: always the signed-in person, never itself. A
 * sign-in strategy (local: the person's kubeconfig; in-cluster: OpenID
 * Connect) signs people in with its own routes and, for every request of a
 * signed-in session, builds the person's Kubernetes client. Everything else
 * in the console is the same in both modes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeClient } from '../kube/client.ts';
import type { Html } from './html.ts';
import type { ConsoleSession, Sessions } from './sessions.ts';

/** The person's own bearer token, for the token exchange of /token, or why there is none. */
export type BearerToken = { token: string } | { unavailable: string };

export interface PersonCredentials {
  /** Shown in the header: the Kubernetes user name when known. */
  displayName: string;
  /** Makes every Kubernetes call with the person's credentials. */
  client: KubeClient;
  /** The credential the person authenticates with, when it is a bearer token. */
  bearerToken(): Promise<BearerToken>;
  /** The namespace to show first when the person may not list across namespaces (local: the context's). */
  defaultNamespace?: string;
}

/** What the console lends a strategy's routes. */
export interface SignInTools {
  sessions: Sessions;
  /** The session of this request's cookie, if live. */
  sessionOf(req: IncomingMessage): ConsoleSession | undefined;
  /** Sets the session cookie (HttpOnly, SameSite=Strict, Secure behind TLS). */
  setSessionCookie(res: ServerResponse, session: ConsoleSession): void;
  clearSessionCookie(res: ServerResponse): void;
  redirect(res: ServerResponse, location: string): void;
  /** A page in the console's layout, e.g. to say why sign-in failed. */
  page(res: ServerResponse, status: number, title: string, body: Html): void;
}

export interface SignInRoute {
  method: 'GET' | 'POST';
  /** Exact path, e.g. /sign-in or /callback. */
  path: string;
  handle(req: IncomingMessage, res: ServerResponse, url: URL, tools: SignInTools): Promise<void> | void;
}

export interface SignIn {
  /** 'local' or 'in-cluster', shown in the footer. */
  readonly mode: string;
  /** Requests answered before any session is required: sign-in, its callback. */
  readonly routes: readonly SignInRoute[];
  /** What a visitor without a live session gets: a redirect to sign-in, or a page saying how to sign in. */
  signInRequired(req: IncomingMessage, res: ServerResponse, url: URL, tools: SignInTools): void | Promise<void>;
  /** The person's credentials for a signed-in session; undefined when they can no longer be used. */
  credentials(session: ConsoleSession): PersonCredentials | undefined;
  /** A check of every request before anything else (local mode: the Host header); a refusal is answered as given. */
  admit?(req: IncomingMessage): { status: number; message: string } | undefined;
  /** The session cookie's name, when not SESSION_COOKIE (local mode: with the port, so consoles on one host keep apart). */
  sessionCookieName?(): string;
  /** Called when a person signs out (after the session is gone), e.g. to tell the identity provider. */
  signedOut?(session: ConsoleSession, res: ServerResponse, tools: SignInTools): boolean | Promise<boolean>;
}
