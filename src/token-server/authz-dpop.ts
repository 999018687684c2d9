/**
 * The DPoP part of /authz (RFC 9449 section 7): a DPoP-bound token is good
 * only as `Authorization: DPoP <token>` with a proof, made by the key the
 * token is bound to (`cnf.jkt`), for the very request the client sent to the
 * proxy: its method and URL (`htm`, `htu`), the token's hash (`ath`), a fresh
 * `iat`, and a `jti` not used before (the replay cache).
 *
 * /authz is asked by the proxy, not by the client, so the client's method
 * and URL come from headers the proxy sets, read in this order:
 *   - method: X-Forwarded-Method (Traefik, nginx with proxy_set_header),
 *     X-Original-Method (ingress-nginx), else for a path below /authz/ (Envoy
 *     ext_authz with path_prefix /authz) the method of the request itself;
 *   - URL: X-Original-URL (ingress-nginx: the whole URL), else
 *     X-Forwarded-Proto + X-Forwarded-Host (else Host) + X-Forwarded-Uri
 *     (else, below /authz/, the rest of the path); query and fragment are
 *     ignored, as in `htu`.
 * These headers are believed only from a TCP peer in --trusted-proxies (the
 * same rule as X-Forwarded-For): from anyone else a DPoP token is refused,
 * since a client that called /authz itself could name any URL.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AccessTokenClaims } from './access-token.ts';
import type { ServerContext } from './context.ts';
import { PATHS } from './discovery.ts';
import { DPOP_ALGORITHMS } from './dpop-proof.ts';
import { OAuthError, UseDpopNonce } from './oauth-errors.ts';

/** What the proxy's request to /authz tells about the client's own request. */
export interface AuthzRequest {
  /** The TCP peer: the proxy. */
  peer: string | undefined;
  method: string;
  /** The path of the request to /authz, without its query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The DPoP headers, as Node lists them. */
  dpop: readonly string[] | undefined;
}

/** The DPoP challenge of RFC 9449 7.1, with an error when there is one. */
export function dpopChallenge(error?: string, description?: string): string {
  let c = `DPoP realm="apikey-operator", algs="${DPOP_ALGORITHMS.join(' ')}"`;
  if (error) c += `, error="${error}"`;
  if (description) c += `, error_description="${description.replace(/["\\]/g, '')}"`;
  return c;
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v);

/** The client's method and URL as the proxy forwarded them, or why they cannot be known. */
export function forwardedRequest(ctx: ServerContext, r: AuthzRequest): { method: string; url: string } | { problem: string } {
  if (!r.peer || !ctx.proxies.trusts(r.peer)) {
    return { problem: 'DPoP tokens need the proxy that asks /authz to be in the token server\'s --trusted-proxies' };
  }
  const h = r.headers;
  const below = r.path.startsWith(`${PATHS.authz}/`) ? r.path.slice(PATHS.authz.length) : undefined;
  const method = one(h['x-forwarded-method']) ?? one(h['x-original-method']) ?? (below === undefined ? undefined : r.method);
  let url = one(h['x-original-url']);
  if (url === undefined) {
    const proto = one(h['x-forwarded-proto']);
    const host = one(h['x-forwarded-host']) ?? one(h.host);
    const uri = one(h['x-forwarded-uri']) ?? below;
    if (proto !== undefined && host !== undefined && uri !== undefined && uri.startsWith('/')) url = `${proto}://${host}${uri}`;
  }
  if (method === undefined || url === undefined) {
    return { problem: 'the proxy did not forward the request\'s method and URL (X-Forwarded-Method, -Proto, -Host and -Uri, or X-Original-Method and -URL)' };
  }
  return { method, url };
}

export type DpopVerdict = { ok: true } | { ok: false; headers: Record<string, string>; body: string };

/** Whether the request proves possession of the key `claims.cnf.jkt` names (see the module header). */
export function checkAuthzProof(ctx: ServerContext, r: AuthzRequest, token: string, claims: AccessTokenClaims, nowMs: number): DpopVerdict {
  const refuse = (error: string, description: string, extra: Record<string, string> = {}): DpopVerdict => ({
    ok: false, headers: { 'www-authenticate': dpopChallenge(error, description), ...extra }, body: JSON.stringify({ error, error_description: description }),
  });
  if (!r.dpop || r.dpop.length === 0) return refuse('invalid_dpop_proof', 'a DPoP-bound token needs a DPoP proof with it');
  const target = forwardedRequest(ctx, r);
  if ('problem' in target) return refuse('invalid_dpop_proof', target.problem);
  try {
    const proof = ctx.dpop.check(r.dpop, target.method, target.url, nowMs, token)!;
    if (proof.jkt !== claims.cnf!.jkt) return refuse('invalid_dpop_proof', 'the DPoP proof is not made by the key the token is bound to');
    ctx.dpop.commit(proof, nowMs);
    return { ok: true };
  } catch (err) {
    if (err instanceof UseDpopNonce) return refuse('use_dpop_nonce', err.message, { 'dpop-nonce': err.nonce });
    if (err instanceof OAuthError) return refuse(err.error, err.message, err.headers);
    throw err;
  }
}
