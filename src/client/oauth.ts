/**
 * The OAuth client of the token endpoint that the kubectl plugin and the
 * console share: a form POST (client credentials with HTTP Basic, or an RFC
 * 8693 token exchange), the token response, the rule that a Kubernetes
 * credential travels only over HTTPS or to this machine, and errors that say
 * what the server answered, or why it could not be reached and how to reach
 * it from outside the cluster. No error message ever holds the secret or a
 * token.
 */
import { PluginError, PluginUsageError } from './errors.ts';
import type { DpopKey } from './dpop-key.ts';

export const TOKEN_URL_ENV = 'APIKEY_OPERATOR_TOKEN_URL';

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  issued_token_type?: string;
  [k: string]: unknown;
}

export const PORT_FORWARD_HINT =
  'from outside the cluster, port-forward the token Service (kubectl -n apikey-operator port-forward svc/apikey-operator-token 8080:8080) ' +
  `and pass --token-url http://localhost:8080/oauth/token (or set ${TOKEN_URL_ENV})`;

/** A token endpoint URL; a bare origin (http://localhost:8080) gets the /oauth/token path. */
export function tokenEndpoint(value: string, from: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new PluginUsageError(`${from} is not a URL: "${value}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PluginUsageError(`${from} must be an http or https URL`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/oauth/token';
  return u.toString();
}

/**
 * Whether `url` names this machine: localhost (and *.localhost, RFC 6761),
 * 127.0.0.0/8, ::1 or an IPv4-mapped loopback. Judged on the URL alone,
 * without resolving anything, so that nothing is sent before the answer.
 */
export function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
  const v6 = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : undefined;
  return v6 === '::1' || v6 === '0:0:0:0:0:0:0:1' || /^::ffff:(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|7f[0-9a-f]{2}:[0-9a-f]{1,4})$/.test(v6 ?? '');
}

/**
 * Refuses to send a Kubernetes credential in the clear: over plain HTTP it
 * may go only to this machine (a port-forward), anywhere else only over
 * HTTPS. Whoever reads it on the way could act as the user in the cluster.
 */
export function requireSafeTransport(url: string, from: string): void {
  if (new URL(url).protocol === 'https:' || isLoopbackUrl(url)) return;
  throw new PluginUsageError(
    `refusing to send your Kubernetes credential over plain HTTP to ${new URL(url).host} (${from}): anyone on the way could ` +
    'read it and act as you in the cluster. Use an https:// token URL, or port-forward the token Service and use it on ' +
    'localhost: kubectl -n apikey-operator port-forward svc/apikey-operator-token 8080:8080, then ' +
    '--token-url http://localhost:8080/oauth/token');
}

export interface TokenRequest {
  url: string;
  params: Record<string, string | undefined>;
  basic?: { id: string; secret: string };
  /** Added to the message when the endpoint cannot be reached. */
  unreachableHint: string;
  /** Ask for a DPoP-bound token (RFC 9449) with proofs of this key; a use_dpop_nonce answer is retried once with the nonce. */
  dpop?: DpopKey;
}

export async function requestToken(req: TokenRequest): Promise<TokenResponse> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(req.params)) if (v !== undefined && v !== '') body.set(k, v);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded', accept: 'application/json',
  };
  if (req.basic) {
    // RFC 6749 2.3.1: form-urlencode each part before joining them.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${enc(req.basic.id)}:${enc(req.basic.secret)}`).toString('base64')}`;
  }
  const send = async (nonce?: string): Promise<Response> => {
    if (req.dpop) headers.dpop = req.dpop.proof(req.url, nonce);
    try {
      return await fetch(req.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(30_000), redirect: 'error' });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = (err as Error).name === 'TimeoutError' ? 'no answer within 30s' : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new PluginError(`cannot reach the token endpoint at ${req.url} (${why}); ${req.unreachableHint}`);
    }
  };
  let res = await send();
  const nonce = res.headers.get('dpop-nonce');
  if (req.dpop && res.status === 400 && nonce) {
    // RFC 9449 8: the server wants its nonce in the proof; once.
    await res.body?.cancel();
    res = await send(nonce);
  }
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch { /* not JSON */ }
  if (res.ok && typeof json?.access_token === 'string') return json as TokenResponse;
  if (json && typeof json.error === 'string') {
    const desc = typeof json.error_description === 'string' ? `: ${json.error_description}` : '';
    const retry = res.status === 429 && res.headers.get('retry-after') ? ` (retry after ${res.headers.get('retry-after')}s)` : '';
    throw new PluginError(`the token endpoint at ${req.url} refused: ${json.error}${desc}${retry}`);
  }
  throw new PluginError(
    `the token endpoint at ${req.url} answered HTTP ${res.status} without a token response; is it the token endpoint (…/oauth/token) of apikey-operator?`);
}
