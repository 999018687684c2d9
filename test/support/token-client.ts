/**
 * The token server's endpoints as a client uses them over HTTP: a token for an API key
 * (client_credentials, as the seed's JSON request), waiting until the server's watch knows a key,
 * introspection, /authz, and the server's count of the reviews behind token exchanges.
 */
import { Agent, request as httpRequest } from 'node:http';
import { decodeJwt } from 'jose';
import { waitFor } from './wait.ts';

/** What a client needs to reach it: a running token server or anything else with its base URL. */
export interface TokenServer { url: string }

/** A token server whose /metrics can be read: it is on a port of its own. */
export interface ObservedTokenServer extends TokenServer { metricsUrl: string }

/** The server's /metrics, as Prometheus scrapes it. */
export async function scrapeMetrics(server: ObservedTokenServer): Promise<string> {
  const r = await fetch(server.metricsUrl);
  if (r.status !== 200) throw new Error(`${server.metricsUrl} answered ${r.status}`);
  return r.text();
}

/** An API key as its credentials Secret hands it to a client. */
export interface KeyCredentials { keyId: string; secret: string; audience: string }

/** An answer of the token server; `body` is its JSON, or {} when it is not JSON. */
export interface Answer { status: number; headers: Headers; text: string; body: Record<string, unknown> }

export async function post(url: string, init: { headers?: Record<string, string>; body?: string | Uint8Array } = {}): Promise<Answer> {
  const r = await fetch(url, { method: 'POST', ...init });
  const text = await r.text();
  let body: Record<string, unknown> = {};
  try { body = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, body };
}

/** Connections kept open per local address, so that a burst from one address does not open a socket per request. */
const fromAgent = new Agent({ keepAlive: true, maxSockets: 256 });

/**
 * `post`, from a chosen local address (any of 127.0.0.0/8 on loopback): the server counts
 * clients by address, so a test can be several clients at once.
 */
export function postFrom(localAddress: string, url: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', localAddress, agent: fromAgent, headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try { body = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON */ }
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve({ status: res.statusCode ?? 0, headers, text, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export const json = (o: unknown, headers: Record<string, string> = {}) =>
  ({ headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(o) });
export const form = (o: Record<string, string>, headers: Record<string, string> = {}) =>
  ({ headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(o).toString() });
export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** The seed's client_credentials request, as JSON fields. */
export const clientCredentials = (key: KeyCredentials, extra: Record<string, unknown> = {}) =>
  ({ client_id: key.keyId, client_secret: key.secret, audience: key.audience, grant_type: 'client_credentials', ...extra });

export function requestToken(server: TokenServer, key: KeyCredentials, extra: Record<string, unknown> = {}): Promise<Answer> {
  return post(`${server.url}/oauth/token`, json(clientCredentials(key, extra)));
}

/** Waits until the server issues a token for `key` (a new key reaches it through its watch a moment later). */
export function issued(server: TokenServer, key: KeyCredentials): Promise<string> {
  return waitFor(`a token for ${key.keyId} from ${server.url}`, async () => {
    const r = await requestToken(server, key);
    return r.status === 200 ? r.body.access_token as string : undefined;
  }, 10_000, 20);
}

/** RFC 7662 introspection of `token`, authenticated as the API key `caller`: the answer's JSON. */
export async function introspect(server: TokenServer, token: string, caller: KeyCredentials): Promise<Record<string, unknown>> {
  const r = await post(`${server.url}/oauth/introspect`, form({ token }, { authorization: basic(caller.keyId, caller.secret) }));
  return r.body;
}

/**
 * /authz with `token` as the bearer, asked as a proxy that protects
 * `deployment` (default: the Deployment the token names); for `permission`
 * if given, else for the server's default.
 */
export function authz(server: TokenServer, token: string, permission?: string, deployment?: string): Promise<Response> {
  const q = new URLSearchParams({ deployment: deployment ?? deploymentClaimOf(token) });
  if (permission !== undefined) q.set('permission', permission);
  return fetch(`${server.url}/authz?${q.toString()}`, { headers: { authorization: `Bearer ${token}` } });
}

function deploymentClaimOf(token: string): string {
  try {
    const claim = decodeJwt(token).deployment;
    return typeof claim === 'string' ? claim : 'none/none';
  } catch {
    return 'none/none';
  }
}

/** The server's count of token-exchange reviews of one kind and outcome, from /metrics. */
export async function exchangeReviews(server: ObservedTokenServer, review: 'token' | 'access', outcome: string): Promise<number> {
  const text = await scrapeMetrics(server);
  const line = text.split('\n').find((l) => l.startsWith('apikey_operator_token_exchange_reviews_total{')
    && l.includes(`review="${review}"`) && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
