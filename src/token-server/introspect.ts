/**
 * POST /oauth/introspect (RFC 7662). The caller authenticates as an API key
 * (HTTP Basic, or client_secret_post) and learns about tokens of Deployments
 * in its own namespace only; any other token, and every dead one, is
 * `{"active":false}` with nothing more, so the answer reveals nothing about
 * other namespaces. Temporary user tokens (token exchange) and federated tokens are
 * answered the same way as API-key tokens. A DPoP-bound token is
 * `token_type: DPoP` with its `cnf` (RFC 9449 6.2).
 */
import { PERMISSIONS } from '../api/index.ts';
import { authenticateClient } from './client-auth.ts';
import type { RequestInfo, ServerContext } from './context.ts';
import { InvalidRequest } from './oauth-errors.ts';
import { single, type Params } from './params.ts';
import { tokenVerdict } from './token-status.ts';

export const INACTIVE = '{"active":false}';

/** The JSON body of the introspection response; throws an OAuthError for a bad request or caller. */
export function introspect(ctx: ServerContext, req: RequestInfo, params: Params): string {
  const caller = authenticateClient(ctx, req, params);
  const token = single(params, 'token');
  if (token === undefined) throw new InvalidRequest('the parameter token is required', 'missing_parameter');
  const verdict = tokenVerdict(ctx, token, req.nowMs);
  const active = verdict.live && verdict.token.deployment.namespace === caller.key.namespace;
  ctx.metrics.introspection(active);
  if (!verdict.live || !active) return INACTIVE;
  const { claims, key, federated, permissions } = verdict.token;
  return JSON.stringify({
    active: true,
    scope: (key?.permissions ?? federated?.permissions ?? PERMISSIONS).filter((p) => permissions.has(p)).join(' '),
    client_id: claims.client_id,
    sub: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    // RFC 9449 6.2: a DPoP-bound token says so, with the thumbprint of its key.
    token_type: claims.cnf ? 'DPoP' : 'Bearer',
    deployment: claims.deployment,
    ...(claims.federated_issuer ? { federated_issuer: claims.federated_issuer } : {}),
    ...(claims.cnf ? { cnf: { jkt: claims.cnf.jkt } } : {}),
  });
}
