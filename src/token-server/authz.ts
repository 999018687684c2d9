/**
 * GET /authz for a reverse proxy's forward-auth (nginx auth_request, Traefik
 * forwardAuth, Envoy ext_authz): the proxy passes the client's Authorization
 * header and says which Deployment it protects, with `?deployment=ns/name`
 * or `?audience=` (a custom audience, which belongs to one Deployment); 200
 * with X-Auth-Subject and X-Auth-Deployment when the bearer token is live,
 * is for that Deployment and carries the permission asked for
 * (`?permission=`, default deploy), 401 when it is missing, invalid or dead,
 * 403 when it is live but for another Deployment or audience, or lacks the
 * permission. A proxy that names neither, or only a shared default audience
 * (which every Deployment without audiences of its own has), gets 400: a
 * token of any Deployment would otherwise pass. Any method and any path
 * below /authz/ are accepted, since Envoy forwards the original ones.
 *
 * A DPoP-bound token (RFC 9449) passes only as `Authorization: DPoP` with a
 * proof of its key for the client's own request, which the proxy forwards
 * (authz-dpop.ts); as Bearer it is 401. An unbound token as DPoP is 401 too.
 *
 * Each of `deployment`, `audience` and `permission` may appear once: a
 * repeated one is 400, so a client whose query a proxy forwards cannot
 * append its own `&permission=read` or `&deployment=` and have either copy
 * win. The identity headers are encoded with identityHeader(), so that two
 * different subjects never give the same header value.
 */
import { isPermission, PERMISSIONS } from '../api/index.ts';
import type { ServerContext } from './context.ts';
import { parseBearer } from './params.ts';
import { checkAuthzProof, dpopChallenge, type AuthzRequest } from './authz-dpop.ts';
import { tokenVerdict } from './token-status.ts';

export interface AuthzAnswer {
  status: 200 | 400 | 401 | 403;
  headers: Record<string, string>;
  body: string;
}

const REALM = 'realm="apikey-operator"';

const badRequest = (ctx: ServerContext, description: string): AuthzAnswer => {
  ctx.metrics.authzDecision('bad_request');
  return { status: 400, headers: {}, body: JSON.stringify({ error: 'invalid_request', error_description: description }) };
};

/** Why the proxy's question cannot be answered safely, or undefined when it can. */
function protectedTargetProblem(ctx: ServerContext, deployment: string | null, audience: string | null): string | undefined {
  if (deployment === null && audience === null) {
    return 'name the protected Deployment: add deployment=namespace/name (or audience=, a custom audience) to the /authz URL';
  }
  if (deployment !== null && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(deployment)) {
    return 'deployment must be namespace/name';
  }
  if (deployment === null && audience !== null && ctx.defaultAudiences.includes(audience)) {
    return 'this audience is shared by every Deployment without audiences of its own: add deployment=namespace/name';
  }
  return undefined;
}

/** The parameters /authz reads; each may appear at most once. */
const SINGLE_PARAMETERS = ['deployment', 'audience', 'permission'] as const;

/** `Authorization: Bearer <token>` or `DPoP <token>` (RFC 9449 7.1), or undefined. */
function parseAccessToken(header: string | undefined): { scheme: 'Bearer' | 'DPoP'; token: string } | undefined {
  const bearer = parseBearer(header);
  if (bearer) return { scheme: 'Bearer', token: bearer };
  if (!header || header.length < 6 || header.slice(0, 5).toLowerCase() !== 'dpop ') return undefined;
  const token = parseBearer(`Bearer ${header.slice(5)}`);
  return token ? { scheme: 'DPoP', token } : undefined;
}

/** Both challenges (RFC 9449 7.2): this endpoint takes bearer and DPoP tokens. */
const CHALLENGES = `Bearer ${REALM}, ${dpopChallenge()}`;

export function authorize(ctx: ServerContext, request: AuthzRequest, query: URLSearchParams, nowMs: number): AuthzAnswer {
  for (const name of SINGLE_PARAMETERS) {
    if (query.getAll(name).length > 1) return badRequest(ctx, `the parameter ${name} must not be included more than once`);
  }
  const permission = query.get('permission') ?? 'deploy';
  if (!isPermission(permission)) return badRequest(ctx, `unknown permission; known: ${PERMISSIONS.join(', ')}`);
  const audience = query.get('audience');
  const deployment = query.get('deployment');
  const problem = protectedTargetProblem(ctx, deployment, audience);
  if (problem) return badRequest(ctx, problem);
  const presented = parseAccessToken(request.headers.authorization);
  if (!presented) {
    ctx.metrics.authzDecision('unauthenticated');
    return { status: 401, headers: { 'www-authenticate': CHALLENGES }, body: '{"error":"unauthenticated"}' };
  }
  const { scheme, token } = presented;
  const verdict = tokenVerdict(ctx, token, nowMs);
  if (!verdict.live) {
    ctx.metrics.authzDecision('unauthenticated');
    const description = 'the access token is invalid, expired or revoked';
    return {
      status: 401,
      headers: {
        'www-authenticate': scheme === 'DPoP' ? dpopChallenge('invalid_token', description)
          : `Bearer ${REALM}, error="invalid_token", error_description="${description}"`,
      },
      body: '{"error":"invalid_token"}',
    };
  }
  const { claims, permissions } = verdict.token;
  // RFC 9449 7: a bound token only as DPoP with a proof of its key; an unbound one never as DPoP.
  if ((scheme === 'DPoP') !== !!claims.cnf) {
    ctx.metrics.authzDecision('unauthenticated');
    const description = claims.cnf ? 'the access token is DPoP-bound: present it as Authorization: DPoP with a DPoP proof'
      : 'the access token is not DPoP-bound: present it as Authorization: Bearer';
    return { status: 401, headers: { 'www-authenticate': dpopChallenge('invalid_token', description) }, body: JSON.stringify({ error: 'invalid_token', error_description: description }) };
  }
  if (scheme === 'DPoP') {
    const proof = checkAuthzProof(ctx, request, token, claims, nowMs);
    if (!proof.ok) {
      ctx.metrics.authzDecision('unauthenticated');
      return { status: 401, headers: proof.headers, body: proof.body };
    }
  }
  const audOk = audience === null || (Array.isArray(claims.aud) ? claims.aud.includes(audience) : claims.aud === audience);
  if (!permissions.has(permission) || !audOk || (deployment !== null && deployment !== claims.deployment)) {
    ctx.metrics.authzDecision('forbidden');
    return {
      status: 403,
      headers: { 'www-authenticate': `Bearer ${REALM}, error="insufficient_scope", scope="${permission}"` },
      body: '{"error":"insufficient_scope"}',
    };
  }
  ctx.metrics.authzDecision('allow');
  return {
    status: 200,
    headers: {
      'x-auth-subject': identityHeader(claims.sub),
      'x-auth-deployment': identityHeader(claims.deployment),
      'x-auth-scope': [...permissions].join(' '),
    },
    body: '{"allowed":true}',
  };
}

/** Characters an identity header carries as they are: visible ASCII but `%`. */
const VERBATIM = /^[\x21-\x24\x26-\x7e]*$/;

/**
 * An identity (a subject, a Deployment) as a header value, one-to-one: every
 * visible ASCII character but `%` goes as it is, and every other character
 * (space, `%`, control characters, anything beyond ASCII) is percent-encoded
 * as its UTF-8 bytes (RFC 3986 2.1), so `decodeURIComponent` gives the
 * identity back. Key ids, ServiceAccount names and most user names are
 * unchanged. Since `%` itself is encoded, `a%41` and `aA` stay apart, and a
 * space is encoded so that a proxy trimming a header value cannot merge
 * " alice" with "alice". A lone UTF-16 surrogate (JSON allows one) is
 * encoded as its own three bytes, never as U+FFFD, so it too stays apart.
 */
export function identityHeader(identity: string): string {
  if (VERBATIM.test(identity)) return identity;
  let out = '';
  for (const ch of identity) {
    if (VERBATIM.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of utf8(ch.codePointAt(0)!)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The UTF-8 bytes of a code point, a lone surrogate included (as its three-byte form). */
function utf8(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}
