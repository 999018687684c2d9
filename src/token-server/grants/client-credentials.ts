/**
 * RFC 6749 4.4, client credentials: an API key (id and secret) becomes an
 * access token for its Deployment. Synchronous from the parsed body to the
 * signed token: two Map lookups, one SHA-256, one signature; asynchronous
 * only when the signature is made by a PKCS#11 token.
 */
import type { RequestInfo, ServerContext } from '../context.ts';
import { accessTokenClaims, tokenResponse } from '../access-token.ts';
import { authenticateClient } from '../client-auth.ts';
import { dpopBinding } from '../dpop.ts';
import { tokenLifetimeSeconds } from '../keys.ts';
import { InvalidClient, TemporarilyUnavailable } from '../oauth-errors.ts';
import type { Params } from '../params.ts';
import { resolveAudiences, resolveScope } from './common.ts';
import type { Grant, TokenResult } from './types.ts';

export const CLIENT_CREDENTIALS = 'client_credentials';

export const clientCredentials: Grant = {
  type: CLIENT_CREDENTIALS,
  repeatable: ['resource'],
  handle(ctx: ServerContext, req: RequestInfo, params: Params): TokenResult | Promise<TokenResult> {
    const signingKey = ctx.store.signing.active(req.nowMs);
    if (!signingKey) throw new TemporarilyUnavailable('the token server has no signing key yet; retry shortly');
    const { key, deployment, match } = authenticateClient(ctx, req, params);
    const audiences = resolveAudiences(params, deployment, ctx.defaultAudiences);
    const scope = resolveScope(params, key.permissions, key.permissionSet, key.scope);
    const lifetime = tokenLifetimeSeconds(key, deployment, match, req.nowMs);
    if (lifetime <= 0) throw new InvalidClient('the API key (or the secret presented) expires now', 'key_expired');
    const jkt = dpopBinding(ctx, req.dpop, key.requireDpop || deployment.requireDpop, req.nowMs);
    const claims = accessTokenClaims({
      issuer: ctx.issuer,
      subject: key.keyId,
      clientId: key.keyId,
      audiences,
      scope,
      deployment: key.deployment,
      lifetimeSeconds: lifetime,
      nowMs: req.nowMs,
      credentialFingerprint: match === 'current' ? key.currentFp : key.previousFp,
      jkt,
    });
    const body = tokenResponse(signingKey, claims);
    if (typeof body !== 'string') {
      return body.then((b) => {
        ctx.lastUsed.touch(key, req.nowMs);
        return { body: b, claims };
      });
    }
    ctx.lastUsed.touch(key, req.nowMs);
    return { body, claims };
  },
};
