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
 */
import { isPermission, PERMISSIONS } from '../api/index.ts';
import type { ServerContext } from './context.ts';
import { parseBearer } from './params.ts';
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

export function authorize(ctx: ServerContext, authorization: string | undefined, query: URLSearchParams, nowMs: number): AuthzAnswer {
  const permission = query.get('permission') ?? 'deploy';
  if (!isPermission(permission)) return badRequest(ctx, `unknown permission; known: ${PERMISSIONS.join(', ')}`);
  const audience = query.get('audience');
  const deployment = query.get('deployment');
  const problem = protectedTargetProblem(ctx, deployment, audience);
  if (problem) return badRequest(ctx, problem);
  const token = parseBearer(authorization);
  if (!token) {
    ctx.metrics.authzDecision('unauthenticated');
    return { status: 401, headers: { 'www-authenticate': `Bearer ${REALM}` }, body: '{"error":"unauthenticated"}' };
  }
  const verdict = tokenVerdict(ctx, token, nowMs);
  if (!verdict.live) {
    ctx.metrics.authzDecision('unauthenticated');
    return {
      status: 401,
      headers: { 'www-authenticate': `Bearer ${REALM}, error="invalid_token", error_description="the access token is invalid, expired or revoked"` },
      body: '{"error":"invalid_token"}',
    };
  }
  const { claims, permissions } = verdict.token;
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
      'x-auth-subject': headerSafe(claims.sub),
      'x-auth-deployment': claims.deployment,
      'x-auth-scope': [...permissions].join(' '),
    },
    body: '{"allowed":true}',
  };
}

/**
 * A subject as a header value: key ids and most Kubernetes user names are
 * printable ASCII and go as they are; a user name with other characters (an
 * OIDC name in another script) is percent-encoded as UTF-8 (RFC 3986), since
 * a header cannot carry it as it is.
 */
export function headerSafe(subject: string): string {
  return /^[\x20-\x7e]*$/.test(subject) ? subject : encodeURIComponent(subject);
}
