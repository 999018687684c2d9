/**
 * The console's in-cluster mode settings: which identity provider people sign
 * in at (the same one the API server trusts), the console's public URL, and
 * the API server it calls with their ID tokens. The client secret comes from
 * a file (a mounted Secret) or the environment, never from the command line
 * (where `ps` would show it), and is never logged.
 */
import { readFileSync } from 'node:fs';
import { parseDuration } from '../shared/duration.ts';
import { KubeConfig } from '../kube/kubeconfig.ts';
import { CLIENT_SECRET_ENV, csv, UsageError } from '../client/options.ts';
import type { OidcSettings } from './oidc.ts';

export { CLIENT_SECRET_ENV };

/** Where a pod's ServiceAccount CA would be: also where the chart mounts the kube-root-ca.crt ConfigMap. */
export const IN_CLUSTER_CA_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

// The flags themselves are in src/client/options.ts (IN_CLUSTER_CONSOLE_FLAGS), with the console's others.

/** The path the identity provider redirects back to, under the public URL. */
export const CALLBACK_PATH = '/auth/callback';


export interface Apiserver {
  server: string;
  caFile: string;
}

export interface InClusterSettings {
  oidc: OidcSettings;
  /** The console's public origin and path prefix, without a trailing slash. */
  publicUrl: string;
  apiserver: Apiserver;
  /** Cookies are Secure when people reach the console over HTTPS (behind an Ingress that ends TLS too). */
  secureCookies: boolean;
}

/** Whether the flags select in-cluster mode. */
export const isInClusterMode = (f: Record<string, string | undefined>): boolean => Boolean(f['oidc-issuer-url']);

function required(f: Record<string, string | undefined>, name: string): string {
  const v = f[name];
  if (!v) throw new UsageError(`--${name} is required in in-cluster mode (with --oidc-issuer-url)`);
  return v;
}

function httpUrl(name: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`--${name} must be a URL, not "${value}"`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UsageError(`--${name} must be an http(s) URL, not "${value}"`);
  return u;
}

/** The in-cluster settings from parsed flags (`f`) and the environment; a missing or wrong one is a UsageError. */
export function inClusterSettings(f: Record<string, string | undefined>, env: NodeJS.ProcessEnv = process.env): InClusterSettings {
  const issuer = httpUrl('oidc-issuer-url', required(f, 'oidc-issuer-url'));
  if (issuer.protocol !== 'https:') throw new UsageError('--oidc-issuer-url must be an https URL: the API server accepts only https issuers');
  const clientId = required(f, 'oidc-client-id');
  const publicUrl = httpUrl('public-url', required(f, 'public-url')).href.replace(/\/$/, '');

  let clientSecret = env[CLIENT_SECRET_ENV] ?? '';
  const secretFile = f['oidc-client-secret-file'];
  if (secretFile) {
    try {
      clientSecret = readFileSync(secretFile, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`--oidc-client-secret-file ${secretFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (!clientSecret) throw new UsageError(`in-cluster mode needs the client secret: --oidc-client-secret-file, or ${CLIENT_SECRET_ENV}`);

  const scopes = csv(f['oidc-scopes']);
  if (!scopes.includes('openid')) scopes.unshift('openid');

  return {
    oidc: {
      issuerUrl: issuer.href.replace(/\/$/, ''),
      clientId,
      clientSecret,
      redirectUri: `${publicUrl}${CALLBACK_PATH}`,
      scopes,
      ...f['oidc-ca-file'] ? { caFile: f['oidc-ca-file'] } : {},
    },
    publicUrl,
    apiserver: apiserverOf(f, env),
    secureCookies: publicUrl.startsWith('https:'),
  };
}

/** --apiserver-url and --apiserver-ca-file, else the pod's: the kubernetes Service from the environment and the cluster's CA. */
export function apiserverOf(f: Record<string, string | undefined>, env: NodeJS.ProcessEnv = process.env): Apiserver {
  const caFile = f['apiserver-ca-file'] || IN_CLUSTER_CA_FILE;
  if (f['apiserver-url']) return { server: httpUrl('apiserver-url', f['apiserver-url']).href.replace(/\/$/, ''), caFile };
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new UsageError('--apiserver-url is required outside a pod (KUBERNETES_SERVICE_HOST is not set)');
  return { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, caFile };
}

/**
 * A kubeconfig, in memory, that calls `apiserver` as the bearer of `token`
 * (the person's ID token) and nothing else: no client certificate, no
 * ServiceAccount token of the console's own.
 */
export function bearerKubeConfig(apiserver: Apiserver, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'cluster', server: apiserver.server, caFile: apiserver.caFile, skipTLSVerify: false }],
    users: [{ name: 'person', token }],
    contexts: [{ name: 'person', cluster: 'cluster', user: 'person' }],
    currentContext: 'person',
  });
  return kc;
}

/** Sessions sealed in their cookies with the shared keys (sealed-sessions.ts), and where sign-outs are listed. */
export interface SharedSessionSettings {
  keysFile: string;
  idleMs: number;
  signOuts: { name: string; namespace: string | undefined };
}

/** --session-lifetime, in ms. */
export function sessionLifetimeOf(f: Record<string, string | undefined>): number {
  return durationOf(f, 'session-lifetime', '8h');
}

function durationOf(f: Record<string, string | undefined>, name: string, fallback: string): number {
  const ms = parseDuration(f[name] || fallback);
  if (ms === undefined || ms < 60_000) throw new UsageError(`--${name} must be a duration of a minute or more, such as 8h or 30m`);
  return ms;
}

/** The shared-session settings, when --session-keys-file is given; undefined otherwise (sessions in memory). */
export function sharedSessionSettings(f: Record<string, string | undefined>): SharedSessionSettings | undefined {
  const keysFile = f['session-keys-file'];
  if (!keysFile) return undefined;
  const name = f['sign-outs-configmap'];
  if (!name || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) throw new UsageError('--sign-outs-configmap must be a ConfigMap name');
  return { keysFile, idleMs: durationOf(f, 'session-idle-timeout', '1h'), signOuts: { name, namespace: f['sign-outs-namespace'] || undefined } };
}
